//! Decode errors of the `parse` layer. Small, `Copy`, no strings: they are returned on
//! the hot path and mapped to replies by the session.

use super::reply::{EnhancedCode, ReplyCode};

/// Why a line could not be decoded: [`Incomplete`](DecodeError::Incomplete) (read
/// more), [`LineTooLong`](DecodeError::LineTooLong) (answer once and drop the input
/// through the next LF with [`skip_line`](super::skip_line)), or
/// [`Failed`](DecodeError::Failed) (answer and drop the line's bytes).
pub type DecodeError = lifeboat_net::wire::DecodeError<Reason>;

/// The reply a server sends for a decode error (RFC 5321 §4.2.2, RFC 3463 codes).
pub trait ErrorReply {
    /// Code, enhanced code and text. `Incomplete` is not an error to answer; it maps
    /// to a generic syntax error.
    fn reply(&self) -> (ReplyCode, EnhancedCode, &'static str);
}

impl ErrorReply for DecodeError {
    fn reply(&self) -> (ReplyCode, EnhancedCode, &'static str) {
        match self {
            DecodeError::Incomplete => Reason::Syntax.reply(),
            // RFC 5321 §4.5.3.1.10: "500 Line too long".
            DecodeError::LineTooLong => (
                ReplyCode::SYNTAX_ERROR,
                EnhancedCode::SYNTAX_ERROR,
                "Line too long",
            ),
            DecodeError::Failed { reason, .. } => reason.reply(),
        }
    }
}

/// What made a complete line invalid. Also the error of the `TryFrom` constructors of
/// the validated types, which run the same checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// The command word is not one this parser knows.
    #[error("command not recognized")]
    UnknownCommand,
    /// The line does not match the grammar of its command.
    #[error("syntax error")]
    Syntax,
    /// The line ended with LF not preceded by CR (RFC 5321 §2.3.8).
    #[error("line ended by a bare LF")]
    BareLineFeed,
    /// A CR or NUL inside the line.
    #[error("control character in line")]
    ControlCharacter,
    /// Bytes of 0x80 and above that are not valid UTF-8 (RFC 6531 §3.3, RFC 3629).
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A non-ASCII reverse-path without the SMTPUTF8 parameter (RFC 6531 §3.4).
    #[error("non-ASCII address without SMTPUTF8")]
    Utf8WithoutSmtpUtf8,
    /// Malformed path, mailbox or local part (RFC 5321 §4.1.2).
    #[error("invalid address")]
    InvalidAddress,
    /// Local part longer than 64 octets (RFC 5321 §4.5.3.1.1).
    #[error("local part too long")]
    LocalPartTooLong,
    /// Domain longer than 255 octets (RFC 5321 §4.5.3.1.2).
    #[error("domain too long")]
    DomainTooLong,
    /// Domain label longer than 63 octets (RFC 1035 §2.3.4).
    #[error("domain label too long")]
    LabelTooLong,
    /// Path longer than 256 octets (RFC 5321 §4.5.3.1.3).
    #[error("path too long")]
    PathTooLong,
    /// Malformed or unsupported address literal (RFC 5321 §4.1.3).
    #[error("invalid address literal")]
    AddressLiteral,
    /// A MAIL or RCPT parameter this server does not implement (RFC 5321 §4.1.1.11).
    #[error("parameter not recognized")]
    UnknownParameter,
    /// The same MAIL or RCPT parameter twice.
    #[error("duplicate parameter")]
    DuplicateParameter,
    /// A known parameter with a missing, extra or malformed value.
    #[error("invalid parameter value")]
    InvalidParameterValue,
    /// A number with more digits than its limit allows.
    #[error("number too large")]
    NumberTooLarge,
    /// Malformed or misplaced text argument.
    #[error("invalid text")]
    InvalidText,
    /// Malformed SASL mechanism name (RFC 4422 §3.1).
    #[error("invalid SASL mechanism name")]
    InvalidMechanism,
    /// Malformed base64 in an AUTH command or response (RFC 4954 §4).
    #[error("invalid base64")]
    InvalidBase64,
}

impl lifeboat_net::wire::Reason for Reason {
    const SYNTAX: Self = Reason::Syntax;
    const BARE_LINE_FEED: Self = Reason::BareLineFeed;
    const CONTROL_CHARACTER: Self = Reason::ControlCharacter;
}

impl Reason {
    /// The reply a server sends for this reason: code, enhanced code (RFC 3463) and
    /// text.
    pub fn reply(&self) -> (ReplyCode, EnhancedCode, &'static str) {
        use EnhancedCode as E;
        use ReplyCode as R;
        match self {
            Reason::UnknownCommand => (R::SYNTAX_ERROR, E::INVALID_COMMAND, "Command unrecognized"),
            Reason::Syntax => (R::PARAMETER_SYNTAX_ERROR, E::SYNTAX_ERROR, "Syntax error"),
            Reason::BareLineFeed => (
                R::SYNTAX_ERROR,
                E::SYNTAX_ERROR,
                "Bare LF received; lines must end with CRLF",
            ),
            Reason::ControlCharacter => (
                R::SYNTAX_ERROR,
                E::SYNTAX_ERROR,
                "Control character in command line",
            ),
            Reason::InvalidUtf8 => (R::PARAMETER_SYNTAX_ERROR, E::SYNTAX_ERROR, "Invalid UTF-8"),
            // RFC 6531 §3.6.1 and RFC 5248: 553 with 5.6.7 for non-ASCII addresses
            // that cannot be accepted.
            Reason::Utf8WithoutSmtpUtf8 => (
                R::MAILBOX_NAME_NOT_ALLOWED,
                E::NON_ASCII_ADDRESS,
                "Non-ASCII address requires SMTPUTF8",
            ),
            Reason::InvalidAddress => (
                R::PARAMETER_SYNTAX_ERROR,
                E::BAD_ADDRESS_SYNTAX,
                "Invalid address syntax",
            ),
            Reason::LocalPartTooLong => (
                R::PARAMETER_SYNTAX_ERROR,
                E::BAD_ADDRESS_SYNTAX,
                "Local part too long",
            ),
            Reason::DomainTooLong => (
                R::PARAMETER_SYNTAX_ERROR,
                E::BAD_ADDRESS_SYNTAX,
                "Domain too long",
            ),
            Reason::LabelTooLong => (
                R::PARAMETER_SYNTAX_ERROR,
                E::BAD_ADDRESS_SYNTAX,
                "Domain label too long",
            ),
            // RFC 5321 §4.5.3.1.10: "501 Path too long".
            Reason::PathTooLong => (
                R::PARAMETER_SYNTAX_ERROR,
                E::BAD_ADDRESS_SYNTAX,
                "Path too long",
            ),
            Reason::AddressLiteral => (
                R::PARAMETER_SYNTAX_ERROR,
                E::BAD_ADDRESS_SYNTAX,
                "Invalid address literal",
            ),
            // RFC 5321 §4.2.3: "555 MAIL FROM/RCPT TO parameters not recognized or not
            // implemented".
            Reason::UnknownParameter => (
                R::PARAMETERS_NOT_RECOGNIZED,
                E::INVALID_ARGUMENTS,
                "Parameter not recognized",
            ),
            Reason::DuplicateParameter => (
                R::PARAMETER_SYNTAX_ERROR,
                E::INVALID_ARGUMENTS,
                "Duplicate parameter",
            ),
            Reason::InvalidParameterValue => (
                R::PARAMETER_SYNTAX_ERROR,
                E::INVALID_ARGUMENTS,
                "Invalid parameter value",
            ),
            Reason::NumberTooLarge => (
                R::PARAMETER_SYNTAX_ERROR,
                E::INVALID_ARGUMENTS,
                "Number too large",
            ),
            Reason::InvalidText => (R::PARAMETER_SYNTAX_ERROR, E::SYNTAX_ERROR, "Invalid text"),
            Reason::InvalidMechanism => (
                R::PARAMETER_SYNTAX_ERROR,
                E::INVALID_ARGUMENTS,
                "Invalid mechanism name",
            ),
            // RFC 4954 §4: "501 5.5.2 Cannot Base64-decode Client responses".
            Reason::InvalidBase64 => (
                R::PARAMETER_SYNTAX_ERROR,
                E::SYNTAX_ERROR,
                "Cannot Base64-decode client response",
            ),
        }
    }
}
