//! Character classes, and the nom error type that carries a [`Reason`] (from
//! `lifeboat_net::wire`, as is the line framing).

use nom::bytes::streaming::{tag, take_while1};
use nom::Parser;

use super::error::Reason;

pub(crate) use lifeboat_net::wire::{failure, Failure};

/// The result of every parser in this module tree; see [`Failure`].
pub(crate) type Res<'a, O> = lifeboat_net::wire::Res<'a, O, Reason>;

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
