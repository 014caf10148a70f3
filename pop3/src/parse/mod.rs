//! The POP3 client side of the wire: command lines and SASL response lines, as pure
//! functions over bytes (no I/O, no clock, no session state).
//!
//! # Coverage
//!
//! | RFC | sections | what |
//! |---|---|---|
//! | RFC 1939 | §3, §4–§7 | CRLF lines, case-insensitive keywords; USER, PASS (spaces allowed), APOP, QUIT, STAT, `LIST [msg]`, RETR, DELE, NOOP, RSET, `TOP msg n`, `UIDL [msg]` |
//! | RFC 2449 | §3, §4, §5 | `command = keyword *(SP param) CRLF`, 255-octet command lines, CAPA |
//! | RFC 2595 | §4 | STLS |
//! | RFC 5034 | §4, §6 | `AUTH mechanism [initial-response]`, `=` for an empty initial response, continuation lines, `*` to cancel; bare `AUTH` (mechanism listing, pre-RFC clients) |
//! | RFC 4616 | §2 | the PLAIN message ([`decode_plain`]) |
//! | RFC 4648 | §4 | base64, canonical and padded |
//!
//! Not covered: RFC 6856 (`UTF8`, `LANG`); user names may nevertheless be UTF-8.
//!
//! # Invariants
//!
//! - [`decode_command`] and [`decode_sasl_response`] never look past `line_bytes_max`
//!   bytes, and their answer depends only on those bytes: the same stream in any
//!   chunking decodes to the same sequence of results. `Incomplete` consumes nothing.
//! - A line ends only at CRLF; a bare LF ends it as a failure (so the caller can drop
//!   exactly that line), and a CR or NUL inside it is a failure.
//! - Every value a decoder returns satisfies its type's invariants: the decoders build
//!   values through the same `TryFrom` constructors callers use.
//! - [`Command::encode`] and [`SaslResponse::encode`] produce a line that decodes to
//!   an equal value.

#![forbid(unsafe_code)]

mod command;
mod error;
mod primitives;
mod sasl;
mod types;

pub use command::{decode_command, Command, Verb};
pub use error::{DecodeError, Reason};
pub use lifeboat_net::wire::skip_line;
pub use sasl::{decode_plain, decode_sasl_response, encode_plain, PlainCredentials, SaslResponse};
pub use types::{ApopDigest, Mechanism, MessageNumber, Password, UserName};

/// Size limits of the protocol. Each names the rule it comes from.
pub mod limits {
    /// RFC 2449 §4: "the maximum length of a command is increased from 47 characters
    /// (4 character command, single space, 40 character argument, CRLF) to 255
    /// octets, including the terminating CRLF."
    pub const COMMAND_LINE_BYTES_MAX: usize = 255;
    /// RFC 2449 §4: "Response lines may be up to 512 octets, including the
    /// terminating CRLF." Also the limit on each line of a CAPA response (§3).
    pub const RESPONSE_LINE_BYTES_MAX: usize = 512;
    /// SASL client responses are not commands and are not held to
    /// [`COMMAND_LINE_BYTES_MAX`] (RFC 5034 §4 bounds only the AUTH line with its
    /// initial response). The longest PLAIN message this server accepts is two
    /// identities of [`USER_NAME_BYTES_MAX`] and a password of
    /// [`PASSWORD_BYTES_MAX`] plus two NULs, 1536 bytes, 2048 in base64; this leaves
    /// room above that.
    pub const SASL_RESPONSE_LINE_BYTES_MAX: usize = 4096;
    /// RFC 4616 §2: identities of "up to 255 octets" must be accepted; the same bound
    /// applies to `USER name`.
    pub const USER_NAME_BYTES_MAX: usize = 255;
    /// The longest password the store accepts
    /// (`lifeboat_store::password::PASSWORD_BYTES_MAX`).
    pub const PASSWORD_BYTES_MAX: usize = 1024;
    /// RFC 4422 §3.1: a SASL mechanism name is 1 to 20 characters.
    pub const MECHANISM_BYTES_MAX: usize = 20;
    /// Message numbers are `u32`; ten digits hold every one.
    pub const MESSAGE_NUMBER_DIGITS_MAX: usize = 10;
    /// The line count of `TOP msg n` is a `u64`; twenty digits hold every one.
    pub const LINE_COUNT_DIGITS_MAX: usize = 20;
}
