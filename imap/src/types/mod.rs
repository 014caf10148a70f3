//! Wire values shared by the parser and the encoder.
#![forbid(unsafe_code)]

pub mod body;
pub mod capability;
pub mod chars;
pub mod command;
pub mod core;
pub mod datetime;
pub mod flag;
pub mod mailbox;
pub mod response;
pub mod sequence;

pub use self::body::*;
pub use self::capability::Capability;
pub use self::command::*;
pub use self::core::*;
pub use self::datetime::{Date, DateTime};
pub use self::flag::*;
pub use self::mailbox::*;
pub use self::response::*;
pub use self::sequence::*;
