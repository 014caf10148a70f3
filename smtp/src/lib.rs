//! Lifeboat's SMTP: the protocol parser and encoder (`parse`); the session state
//! machine, servers and relay are built on top of it.

pub mod parse;
pub mod relay;
pub mod session;
