//! Lifeboat web (work in progress).
