//! Server responses (and, for tests and clients, commands) to bytes — RFC 3501 §7, §9.
//!
//! Invariants: the output of every `encode` is syntactically valid for its ABNF rule
//! (strings take the atom, quoted or literal form their content needs); encoding
//! never fails and never panics; nothing here allocates beyond the output buffer,
//! except short temporary names.
#![forbid(unsafe_code)]

mod body;
mod command;
mod core;
mod response;

use crate::types::{Command, LiteralMode, Response};

use self::core::Out;
pub use self::core::QUOTED_BYTES_MAX;

impl Response<'_> {
    /// Appends the response, CRLF included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        response::response(&mut Out::new(out, LiteralMode::Sync), self);
    }

    /// The response as bytes (for tests and logs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl Command<'_> {
    /// Appends the command, CRLF included, literals written inline as `{n}` (the
    /// caller sends a literal's data after the continuation request).
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_with(out, LiteralMode::Sync);
    }

    /// As [`Command::encode`], with `{n+}` literals when `mode` is `NonSync`
    /// (LITERAL+, RFC 7888).
    pub fn encode_with(&self, out: &mut Vec<u8>, mode: LiteralMode) {
        command::command(&mut Out::new(out, mode), self);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// The continuation request for a synchronizing literal: `+ OK` CRLF — RFC 3501 §7.5.
pub const CONTINUE_LITERAL: &[u8] = b"+ OK\r\n";
