//! Decode errors of the `parse` layer: small, `Copy`, no strings, so that they cost
//! nothing on the hot path. The session maps them to `-ERR` replies.

/// Why input could not be decoded: [`Incomplete`](DecodeError::Incomplete) (read
/// more), [`LineTooLong`](DecodeError::LineTooLong) (answer once and drop the input
/// through the next LF with [`skip_line`](super::skip_line)), or
/// [`Failed`](DecodeError::Failed) (answer and drop the line's bytes).
pub type DecodeError = lifeboat_net::wire::DecodeError<Reason>;

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

impl lifeboat_net::wire::Reason for Reason {
    const SYNTAX: Self = Reason::Syntax;
    const BARE_LINE_FEED: Self = Reason::BareLineFeed;
    const CONTROL_CHARACTER: Self = Reason::ControlCharacter;
}
