//! Lifeboat smtp (work in progress).
