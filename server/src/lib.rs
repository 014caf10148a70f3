//! The library half of the `lifeboat` binary: configuration, shared by `serve` and the
//! management commands (and by tests).

pub mod config;
