//! Client-to-server IMAP parsing: pure functions over bytes, no I/O.
//!
//! Entry points:
//! - [`framer::Framer`] splits the byte stream into command units (a command line
//!   plus the literals it announces), answers when a synchronizing literal needs a
//!   continuation request, and enforces [`Limits`]; a rejected command's remaining
//!   bytes, including non-synchronizing literal data, are discarded so they can never
//!   run as commands.
//! - [`command`] parses one unit into a [`Command`]; [`authenticate_data`] and
//!   [`idle_done`] parse the lines a client sends during AUTHENTICATE and IDLE.
//!
//! Invariants: every parser is a streaming nom parser (a prefix of valid input gives
//! [`DecodeError::Incomplete`], never a wrong result); recursion is bounded by
//! [`Limits::nesting_max`]; no parser reads a literal longer than
//! [`Limits::literal_bytes_max`]; NUL is refused in every string.
#![forbid(unsafe_code)]

mod command;
mod core;
mod error;
mod fetch;
pub mod framer;
mod search;

use std::fmt;

use crate::types::{AuthenticateData, Command, LiteralMode, Tag};

pub use self::command::{ID_FIELD_BYTES_MAX, ID_LINE_BYTES_MAX, ID_PAIRS_MAX, ID_VALUE_BYTES_MAX};

/// Default longest command line, CRLF included: RFC 7162 §4 asks servers to accept
/// lines of at least 8192 octets.
pub const LINE_BYTES_MAX_DEFAULT: usize = 8192;
/// Default largest literal: the default `limits.message_size_max` (SPEC §8).
pub const LITERAL_BYTES_MAX_DEFAULT: u32 = 50 * 1024 * 1024;
/// Room for the lines around a maximal literal in one command.
pub const COMMAND_OVERHEAD_BYTES_DEFAULT: usize = 64 * 1024;
/// Default deepest nesting of search keys (`NOT`, `OR`, parentheses).
pub const NESTING_MAX_DEFAULT: usize = 50;

/// Bounds on what one client command may make the server buffer or recurse into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest line (outside literal data), CRLF included.
    pub line_bytes_max: usize,
    /// Largest literal, in octets.
    pub literal_bytes_max: u32,
    /// Largest command unit: all lines and literals of one command.
    pub command_bytes_max: usize,
    /// Deepest nesting of search keys.
    pub nesting_max: usize,
}

impl Limits {
    /// The defaults with another literal size, and room for the lines around it.
    pub fn with_literal_bytes_max(literal_bytes_max: u32) -> Self {
        Self {
            literal_bytes_max,
            command_bytes_max: literal_bytes_max as usize + COMMAND_OVERHEAD_BYTES_DEFAULT,
            ..Self::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            line_bytes_max: LINE_BYTES_MAX_DEFAULT,
            literal_bytes_max: LITERAL_BYTES_MAX_DEFAULT,
            command_bytes_max: LITERAL_BYTES_MAX_DEFAULT as usize + COMMAND_OVERHEAD_BYTES_DEFAULT,
            nesting_max: NESTING_MAX_DEFAULT,
        }
    }
}

/// Why a command was refused. The server answers `tag BAD` (or `* BAD` without a
/// tag) with [`Reason::text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// Not valid by the grammar.
    Syntax,
    /// A well-formed command name this server does not know.
    UnknownCommand,
    /// The line does not start with a valid tag.
    InvalidTag,
    /// A mailbox name with CR, LF or longer than `MAILBOX_NAME_BYTES_MAX`.
    InvalidMailbox,
    /// NUL in a quoted string or a string literal (RFC 3501 §9 `CHAR8`, CVE-2019-11500).
    NulByte,
    /// Search keys nested deeper than `nesting_max`.
    NestingTooDeep,
    /// A line longer than `line_bytes_max`.
    LineTooLong,
    /// A literal larger than `literal_bytes_max` (`length_bytes` is `u64::MAX` when
    /// the number itself does not fit 32 bits).
    LiteralTooLarge {
        length_bytes: u64,
        mode: LiteralMode,
    },
    /// Lines and literals of one command add up to more than `command_bytes_max`.
    CommandTooLarge,
    /// The server holds as many message bytes in memory as it may
    /// (`limits.message_memory_max`): the literal being received was dropped; the
    /// client may try again later.
    Busy,
    /// The literal being received could not be written to a spill file for want of
    /// disk space: it was dropped; the client may try again later.
    NoSpace,
}

impl Reason {
    /// Human text for the BAD response.
    pub fn text(self) -> &'static str {
        match self {
            Self::Syntax => "Syntax error",
            Self::UnknownCommand => "Unknown command",
            Self::InvalidTag => "Invalid tag",
            Self::InvalidMailbox => "Invalid mailbox name",
            Self::NulByte => "NUL octet not allowed in strings",
            Self::NestingTooDeep => "Search keys nested too deeply",
            Self::LineTooLong => "Command line too long",
            Self::LiteralTooLarge { .. } => "Literal too large",
            Self::CommandTooLarge => "Command too large",
            Self::Busy => "Too much mail arriving at once, try again later",
            Self::NoSpace => "Not enough disk space",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// Why [`command`] (or another entry point) returned no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError<'a> {
    /// The input is a valid prefix; more bytes are needed.
    Incomplete,
    /// The input ends just after a literal header `{length}` / `{length+}`. For
    /// `Sync`, the client waits: the server sends a continuation request (`+ OK`)
    /// and reads on. The length is already within `literal_bytes_max`.
    Literal {
        tag: Tag<'a>,
        length: u32,
        mode: LiteralMode,
    },
    /// The command is invalid; `tag` when the line starts with one.
    Failed {
        tag: Option<Tag<'a>>,
        reason: Reason,
    },
}

impl fmt::Display for DecodeError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Incomplete => f.write_str("incomplete"),
            Self::Literal { length, .. } => write!(f, "waiting for a literal of {length} octets"),
            Self::Failed { reason, .. } => f.write_str(reason.text()),
        }
    }
}

/// The tag a line starts with, if it starts with a valid one followed by SP.
pub fn tag_of(input: &[u8]) -> Option<Tag<'_>> {
    match core::tag_rule(input) {
        Ok((rest, tag)) if rest.first() == Some(&b' ') => Some(tag),
        _ => None,
    }
}

/// Maps the end of a framed unit to the public error, for grammar results.
fn finish<'a, O>(unit: &'a [u8], result: error::PResult<'a, O>) -> Result<O, DecodeError<'a>> {
    match result {
        Ok((b"", value)) => Ok(value),
        // The unit is complete: a parser that wants more, or stops before its end,
        // saw a malformed command.
        Ok(_) | Err(nom::Err::Incomplete(_)) => Err(DecodeError::Failed {
            tag: tag_of(unit),
            reason: Reason::Syntax,
        }),
        Err(nom::Err::Error(error) | nom::Err::Failure(error)) => Err(DecodeError::Failed {
            tag: tag_of(unit),
            reason: error.reason,
        }),
    }
}

/// Finds the first complete unit of `input`, or why there is none.
fn unit<'a>(input: &'a [u8], limits: &Limits) -> Result<&'a [u8], DecodeError<'a>> {
    let mut cursor = framer::Cursor::default();
    match framer::scan_unit(input, limits, &mut cursor, false) {
        framer::UnitScan::Complete { length } => Ok(&input[..length]),
        framer::UnitScan::NeedMore => Err(DecodeError::Incomplete),
        framer::UnitScan::LiteralPending {
            length,
            mode,
            data_start,
        } => {
            if data_start < input.len() {
                return Err(DecodeError::Incomplete);
            }
            match tag_of(input) {
                Some(tag) => Err(DecodeError::Literal { tag, length, mode }),
                None => Err(DecodeError::Failed {
                    tag: None,
                    reason: Reason::InvalidTag,
                }),
            }
        }
        // Not produced without `announce`; nothing to report in any case.
        framer::UnitScan::SyncLiteral { .. } => Err(DecodeError::Incomplete),
        framer::UnitScan::Rejected { reason } => Err(DecodeError::Failed {
            tag: tag_of(input),
            reason,
        }),
    }
}

/// Parses the command at the start of `input`; on success, also returns how many
/// bytes it used (the unit, CRLF included).
///
/// `command = tag SP (command-any / command-auth / command-nonauth / command-select)
/// CRLF` — RFC 3501 §9
pub fn command<'a>(
    input: &'a [u8],
    limits: &Limits,
) -> Result<(usize, Command<'a>), DecodeError<'a>> {
    let unit = unit(input, limits)?;
    let parsed = finish(unit, command::command(unit, limits.nesting_max))?;
    Ok((unit.len(), parsed))
}

/// Parses a client line during AUTHENTICATE: `base64 CRLF` or `"*" CRLF` — RFC 3501
/// §6.2.2. Returns the bytes used.
pub fn authenticate_data<'a>(
    input: &'a [u8],
    limits: &Limits,
) -> Result<(usize, AuthenticateData), DecodeError<'a>> {
    let unit = unit(input, limits).map_err(untagged)?;
    let parsed = finish(unit, command::authenticate_data(unit)).map_err(untagged)?;
    Ok((unit.len(), parsed))
}

/// Parses the `DONE CRLF` that ends IDLE — RFC 2177 §3. Returns the bytes used.
pub fn idle_done<'a>(input: &'a [u8], limits: &Limits) -> Result<usize, DecodeError<'a>> {
    let unit = unit(input, limits).map_err(untagged)?;
    finish(unit, command::idle_done(unit)).map_err(untagged)?;
    Ok(unit.len())
}

/// Lines of an exchange in progress have no tag of their own, and announce no
/// literal (a line that seems to is simply invalid there).
fn untagged(error: DecodeError<'_>) -> DecodeError<'_> {
    match error {
        DecodeError::Failed { reason, .. } => DecodeError::Failed { tag: None, reason },
        DecodeError::Literal { .. } => DecodeError::Failed {
            tag: None,
            reason: Reason::Syntax,
        },
        DecodeError::Incomplete => DecodeError::Incomplete,
    }
}
