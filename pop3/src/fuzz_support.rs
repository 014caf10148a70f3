//! Checks run by the fuzz target `pop3_command` and by the corpus replay test.
