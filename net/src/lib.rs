//! Lifeboat net (work in progress).
