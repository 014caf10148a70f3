//! Lifeboat pop3 (work in progress).
