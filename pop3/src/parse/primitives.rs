//! Character classes, the nom error type that carries a [`Reason`], and the line
//! framing shared by every line decoder.

use memchr::{memchr, memchr2};
use nom::bytes::streaming::{tag, take_while1};
use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Parser};

use super::error::{DecodeError, Reason};

/// The error of every parser in this module tree. A recoverable `Err::Error` means
/// "this alternative does not match"; `Err::Failure` means "this is the branch, and it
/// is wrong for this reason".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Failure(pub(crate) Reason);

impl<I> ParseError<I> for Failure {
    fn from_error_kind(_input: I, _kind: ErrorKind) -> Self {
        Failure(Reason::Syntax)
    }

    fn append(_input: I, _kind: ErrorKind, other: Self) -> Self {
        other
    }

    fn or(self, other: Self) -> Self {
        if other.0 == Reason::Syntax {
            self
        } else {
            other
        }
    }
}

pub(crate) type Res<'a, O> = IResult<&'a [u8], O, Failure>;

/// Fail the current branch for good, with a reason.
pub(crate) fn failure<'a, O>(reason: Reason) -> Res<'a, O> {
    Err(nom::Err::Failure(Failure(reason)))
}

/// `VCHAR = %x21-7E` — RFC 5234 Appendix B.1
pub(crate) fn is_vchar(byte: u8) -> bool {
    matches!(byte, 0x21..=0x7E)
}

/// `DIGIT = %x30-39` — RFC 5234 Appendix B.1
pub(crate) fn is_digit(byte: u8) -> bool {
    byte.is_ascii_digit()
}

/// `HEXDIG`, lower case as RFC 1939 §7 writes the APOP digest.
pub(crate) fn is_lower_hex(byte: u8) -> bool {
    matches!(byte, b'0'..=b'9' | b'a'..=b'f')
}

/// A byte of a parameter that may carry a user name: `VCHAR` or a byte of a UTF-8
/// sequence (checked as a whole by [`utf8`]). RFC 1939 only has printable ASCII;
/// addresses with UTF-8 local parts (RFC 6531) need the rest.
pub(crate) fn is_name_char(byte: u8) -> bool {
    is_vchar(byte) || byte >= 0x80
}

/// `SP = %x20` — RFC 5234 Appendix B.1
pub(crate) fn sp(input: &[u8]) -> Res<'_, ()> {
    tag(&b" "[..]).map(|_| ()).parse(input)
}

/// `CRLF = CR LF` — RFC 5234 Appendix B.1; every POP3 line ends with it (RFC 1939 §3).
pub(crate) fn crlf(input: &[u8]) -> Res<'_, ()> {
    tag(&b"\r\n"[..]).map(|_| ()).parse(input)
}

/// `param = 1*VCHAR` — RFC 2449 §3
pub(crate) fn param(input: &[u8]) -> Res<'_, &[u8]> {
    take_while1(is_vchar).parse(input)
}

/// Checks that `bytes` are UTF-8 (RFC 3629).
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, Reason> {
    std::str::from_utf8(bytes).map_err(|_| Reason::InvalidUtf8)
}

/// A decimal number of at most `digits_max` digits that fits `u64`.
pub(crate) fn number(input: &[u8], digits_max: usize) -> Res<'_, u64> {
    let (rest, digits) = take_while1(is_digit).parse(input)?;
    if digits.len() > digits_max {
        return failure(Reason::NumberTooLarge);
    }
    let mut value: u64 = 0;
    for digit in digits {
        value = match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit - b'0')))
        {
            Some(v) => v,
            None => return failure(Reason::NumberTooLarge),
        };
    }
    Ok((rest, value))
}

/// Finds the first line of `input`, LF included, within `line_bytes_max` bytes.
///
/// A line that ends in a bare LF, or holds a CR or NUL before its end, is complete
/// but invalid: it fails with its length, so the caller can drop exactly it.
pub(crate) fn frame_line(input: &[u8], line_bytes_max: usize) -> Result<&[u8], DecodeError> {
    let window = &input[..input.len().min(line_bytes_max)];
    let Some(lf) = memchr(b'\n', window) else {
        return Err(if input.len() >= line_bytes_max {
            DecodeError::LineTooLong
        } else {
            DecodeError::Incomplete
        });
    };
    let line = &input[..=lf];
    let failed = |reason| DecodeError::Failed {
        reason,
        line_bytes: line.len(),
    };
    if lf == 0 || line[lf - 1] != b'\r' {
        return Err(failed(Reason::BareLineFeed));
    }
    if memchr2(b'\r', 0, &line[..lf - 1]).is_some() {
        return Err(failed(Reason::ControlCharacter));
    }
    Ok(line)
}

/// Runs `parser` over a framed line (CRLF included), which it must consume entirely.
/// A parser asking for more input than a complete line holds has met a syntax error.
pub(crate) fn parse_line<'a, O>(
    line: &'a [u8],
    mut parser: impl FnMut(&'a [u8]) -> Res<'a, O>,
) -> Result<(O, usize), DecodeError> {
    let failed = |reason| DecodeError::Failed {
        reason,
        line_bytes: line.len(),
    };
    match parser(line) {
        Ok(([], value)) => Ok((value, line.len())),
        Ok(_) | Err(nom::Err::Incomplete(_)) => Err(failed(Reason::Syntax)),
        Err(nom::Err::Error(Failure(reason)) | nom::Err::Failure(Failure(reason))) => {
            Err(failed(reason))
        }
    }
}

/// After [`DecodeError::LineTooLong`]: how many bytes of `input` to drop to reach the
/// start of the next line, or `None` when all of it belongs to the long line (drop it
/// and call again with the next input).
pub fn skip_line(input: &[u8]) -> Option<usize> {
    memchr(b'\n', input).map(|lf| lf + 1)
}
