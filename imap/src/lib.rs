//! Lifeboat imap (work in progress).
