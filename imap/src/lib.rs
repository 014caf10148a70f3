//! IMAP4rev1 for Lifeboat: the wire types, the command parser and the response encoder.
//!
//! Layers (ARCHITECTURE.md §3):
//! - [`types`]: validated values that both directions share (`Tag`, `Atom`, `Mailbox`,
//!   `SequenceSet`, `Flag`, commands and responses). A value of these types is always
//!   encodable: invalid states are rejected by their `TryFrom` constructors.
//! - [`parse`]: streaming nom parsers from client bytes to [`types::Command`], and the
//!   [`parse::framer::Framer`] that splits the byte stream into command units and keeps
//!   the line and literal limits.
//! - [`encode`]: responses (and, for tests and clients, commands) to bytes.
//!
//! Nothing here performs I/O or reads a clock.

mod base64;
pub mod encode;
#[doc(hidden)]
pub mod fuzz_support;
pub mod mime;
pub mod parse;
pub mod server;
pub mod session;
pub mod types;

pub use server::{ImapConfig, ImapService};
