//! POP3 for Lifeboat portal mailboxes (RFC 1939, RFC 2449, RFC 2595, RFC 3206,
//! RFC 5034).
//!
//! Layers (ARCHITECTURE.md §3):
//! - [`parse`]: client lines to [`parse::Command`] and SASL responses, pure.
//! - [`encode`]: status lines, multi-line responses and messages to bytes, pure.
//! - [`session`]: the state machine, fed lines, returning replies and effects.
//! - [`server`]: [`Pop3Service`], the glue to sockets, TLS, the store and the clock.

pub mod encode;
#[doc(hidden)]
pub mod fuzz_support;
pub mod parse;
pub mod server;
pub mod session;

pub use server::{Pop3Config, Pop3Service};
