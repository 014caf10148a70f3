//! Decode errors of the `parse` layer: small, `Copy`, no strings, so that they cost
//! nothing on the hot path. The session maps them to `-ERR` replies.

/// Why input could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input holds no complete line yet; nothing was consumed. Read more and call
    /// again with the same bytes plus the new ones.
    #[error("incomplete line")]
    Incomplete,
    /// No line end within the line length limit. The session answers once and drops
    /// the input through the next LF ([`skip_line`](super::skip_line)).
    #[error("line too long")]
    LineTooLong,
    /// A complete line of `line_bytes` bytes (through its LF) that is not valid: the
    /// session answers and drops those bytes.
    #[error("{reason} ({line_bytes} bytes)")]
    Failed {
        /// What was wrong with it.
        reason: Reason,
        /// Length of the rejected line including its line ending.
        line_bytes: usize,
    },
}

/// What made a complete line invalid. Also the error of the `TryFrom` constructors of
/// the validated types, which run the same checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// The keyword is not a command this parser knows.
    #[error("unknown command")]
    UnknownCommand,
    /// The line does not match the grammar of its command.
    #[error("syntax error")]
    Syntax,
    /// The line ended with an LF not preceded by CR (RFC 1939 §3: lines end in CRLF).
    #[error("line ended by a bare LF")]
    BareLineFeed,
    /// A CR or NUL inside the line.
    #[error("control character in line")]
    ControlCharacter,
    /// Bytes of 0x80 and above that are not valid UTF-8 (RFC 3629).
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// Message number 0 (RFC 1939 §3: messages are numbered from 1).
    #[error("invalid message number")]
    InvalidMessageNumber,
    /// A number with more digits or a larger value than its type holds.
    #[error("number too large")]
    NumberTooLarge,
    /// A value longer than its limit (user name, password, SASL identity).
    #[error("value too long")]
    TooLong,
    /// Malformed SASL mechanism name (RFC 4422 §3.1).
    #[error("invalid SASL mechanism name")]
    InvalidMechanism,
    /// Malformed base64 in an AUTH command or response (RFC 5034 §4).
    #[error("invalid base64")]
    InvalidBase64,
    /// A PLAIN message that is not `[authzid] NUL authcid NUL passwd` (RFC 4616 §2).
    #[error("invalid PLAIN message")]
    InvalidPlainMessage,
}
