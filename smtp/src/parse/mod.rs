//! The SMTP wire format: command lines, AUTH continuation lines, DATA bodies and
//! replies, as pure functions over bytes (no I/O, no clock, no session state).
//!
//! # Coverage
//!
//! | RFC | sections | what |
//! |---|---|---|
//! | RFC 5321 | §2.3.8, §4.1.1, §4.1.2, §4.1.4 | command lines, CRLF only; EHLO, HELO, MAIL, RCPT, DATA, RSET, VRFY, EXPN, HELP, NOOP, QUIT; paths, `<>`, `<Postmaster>`, source routes (parsed, dropped: §4.1.2, Appendix C), Dot-string / Quoted-string local parts, domains, IPv4 and IPv6 address literals (§4.1.3) |
//! | RFC 5321 | §4.2, §4.2.1 | reply lines, multiline replies: written by a server ([`encode_reply`]), read by a client ([`decode_reply`]) |
//! | RFC 5321 | §4.1.1.4, §4.5.2 | DATA end of data, dot-stuffing ([`DataDecoder`], [`encode_data`]) |
//! | RFC 5321 | §4.5.3.1 | size limits: [`limits`] |
//! | RFC 1870 | §3, §6 | `SIZE=` parameter, `SIZE` keyword |
//! | RFC 2034, RFC 3463 | §4; §2 | enhanced status codes in replies |
//! | RFC 2920 | §3 | pipelining: decoders report how many bytes they consumed and leave the rest |
//! | RFC 3030 | §2, §3 | `BDAT n [LAST]`, `BODY=BINARYMIME` |
//! | RFC 3461 | §4.1–§4.4 | `NOTIFY=`, `ORCPT=`, `RET=`, `ENVID=`, xtext |
//! | RFC 3207 | §4 | `STARTTLS` |
//! | RFC 4954 | §4, §5 | `AUTH mechanism [initial-response]`, continuation lines, `AUTH=` on MAIL |
//! | RFC 6152 | §2 | `BODY=7BIT` / `BODY=8BITMIME` |
//! | RFC 6531 | §3.3, §3.4 | `SMTPUTF8`, UTF-8 local parts and domains (valid UTF-8 only) |
//!
//! Not covered: LMTP's LHLO, TURN/ETRN/ATRN, XCLIENT and other vendor verbs, the
//! `MT-PRIORITY`, `REQUIRETLS`, `HOLDFOR` and `BY` parameters (they decode as
//! [`Reason::UnknownParameter`], which a session answers with 555), RFC 6533's
//! `utf-8-addr-xtext` forms, and IDNA2008 validation of U-labels beyond valid UTF-8.
//!
//! # Invariants
//!
//! - [`decode_command`] and [`decode_auth_response`] never look past `line_bytes_max`
//!   bytes, and their answer depends only on those bytes: feeding the same stream in
//!   any chunking gives the same sequence of results. `Incomplete` consumes nothing.
//! - A command line ends only at CRLF; a bare LF ends it as a failure (so a session can
//!   resynchronise), and a CR or NUL inside it is a failure.
//! - Every value a decoder returns satisfies its type's invariants: the same checks run
//!   in the decoder and in the `TryFrom` constructors, so the session never re-validates.
//! - [`Command::encode`] produces a line that decodes to an equal [`Command`].
//! - [`DataDecoder`] ends the data only at `<CRLF>.<CRLF>` (RFC 5321 §4.1.1.4). Once it
//!   sees a bare CR, bare LF or NUL it stops producing output but keeps scanning for that
//!   end, so the rest of a rejected message is never read as commands (SMTP smuggling).
//!   A successful decode outputs CR and LF only as CRLF pairs.
//!
//! # Use
//!
//! A session keeps one input buffer, decodes commands from its front, and after DATA
//! hands the bytes to a [`DataDecoder`] until the end of data:
//!
//! ```
//! use lifeboat_smtp::parse::{
//!     decode_command, Command, DataDecoder, DataStatus, DecodeError, ReversePath,
//! };
//!
//! let mut input: &[u8] = b"MAIL FROM:<> SIZE=12\r\nDATA\r\nHi\r\n..dot\r\n.\r\nQUIT\r\n";
//! let (command, consumed) = decode_command(input, 512).unwrap();
//! assert!(matches!(command, Command::Mail { from: ReversePath::Null, .. }));
//! input = &input[consumed..];
//! let (command, consumed) = decode_command(input, 512).unwrap();
//! assert_eq!(command, Command::Data);
//! input = &input[consumed..];
//!
//! let mut decoder = DataDecoder::new(50 * 1024 * 1024);
//! let mut message = Vec::new();
//! let DataStatus::End { consumed, outcome } = decoder.decode(input, &mut message) else {
//!     panic!("the whole body is in the buffer");
//! };
//! assert_eq!(outcome, Ok(10));
//! assert_eq!(message, b"Hi\r\n.dot\r\n");
//! input = &input[consumed..];
//!
//! assert_eq!(decode_command(input, 512), Ok((Command::Quit, 6)));
//! assert_eq!(decode_command(b"QU", 512), Err(DecodeError::Incomplete));
//! ```

#![forbid(unsafe_code)]

mod address;
mod auth;
#[doc(hidden)]
pub mod check;
mod command;
mod data;
mod error;
mod parameters;
mod primitives;
mod reply;
mod server_reply;

pub use address::{Address, AddressLiteral, Domain, ForwardPath, Host, LocalPart, ReversePath};
pub use auth::{decode_auth_response, AuthResponse, Mechanism};
pub use command::{decode_command, Command, Text};
pub use data::{encode_data, DataDecoder, DataError, DataStatus};
pub use error::{DecodeError, ErrorReply, Reason};
pub use lifeboat_net::wire::skip_line;
pub use parameters::{
    AuthIdentity, Body, EnvelopeId, MailAuth, MailParameters, Notify, NotifyWhen,
    OriginalRecipient, RcptParameters, Ret,
};
pub use reply::{encode_ehlo_reply, encode_reply, EhloKeyword, EnhancedCode, ReplyCode};
pub use server_reply::{decode_reply, ReplyError, ReplyFault, ServerReply};

/// Size limits of the protocol. Each names the RFC rule it comes from; the decoders
/// that take a configurable limit take it as an argument and these are the defaults.
pub mod limits {
    /// RFC 5321 §4.5.3.1.4: a command line, including the command word and the CRLF,
    /// is at most 512 octets. Servers may accept longer lines (the decoders take the
    /// limit as an argument): `limits.line_bytes_max` in the configuration.
    pub const COMMAND_LINE_BYTES_MAX: usize = 512;
    /// RFC 4954 §4: "12288 octets is considered to be a sufficient line length limit"
    /// for SASL responses, which may be longer than command lines.
    pub const AUTH_LINE_BYTES_MAX: usize = 12288;
    /// RFC 5321 §4.5.3.1.5: a reply line, including the code and the CRLF.
    pub const REPLY_LINE_BYTES_MAX: usize = 512;
    /// RFC 5321 §4.5.3.1.1: the local part of a mailbox.
    pub const LOCAL_PART_BYTES_MAX: usize = 64;
    /// RFC 5321 §4.5.3.1.2: a domain name or number.
    pub const DOMAIN_BYTES_MAX: usize = 255;
    /// RFC 1035 §2.3.4: one label of a domain name (checked for ASCII labels; U-labels
    /// are bounded by [`DOMAIN_BYTES_MAX`] only, as their A-label form is not computed).
    pub const LABEL_BYTES_MAX: usize = 63;
    /// RFC 5321 §4.5.3.1.3: a reverse-path or forward-path, including the angle
    /// brackets and any source route.
    pub const PATH_BYTES_MAX: usize = 256;
    /// RFC 1870 §3: `size-value ::= 1*20DIGIT`.
    pub const SIZE_DIGITS_MAX: usize = 20;
    /// BDAT chunk sizes: as many digits as a `u64` holds (RFC 3030 leaves it open).
    pub const CHUNK_SIZE_DIGITS_MAX: usize = 20;
    /// RFC 3461 §4.4: an ENVID is at most 100 characters (before xtext encoding).
    pub const ENVELOPE_ID_BYTES_MAX: usize = 100;
    /// RFC 3461 §4.2: an ORCPT value is at most 500 characters (xtext-encoded).
    pub const ORIGINAL_RECIPIENT_BYTES_MAX: usize = 500;
    /// RFC 4422 §3.1: a SASL mechanism name is 1 to 20 characters.
    pub const MECHANISM_BYTES_MAX: usize = 20;
}
