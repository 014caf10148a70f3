//! Character classes of RFC 5321 §4.1.2 and RFC 5234 Appendix B.1, and the nom error
//! type that carries a [`Reason`] (from `lifeboat_net::wire`, as is the line framing).

use nom::bytes::streaming::{tag, take_while};
use nom::Parser;

use super::error::Reason;

pub(crate) use lifeboat_net::wire::{failure, Failure};

/// The result of every parser in this module tree; see [`Failure`].
pub(crate) type Res<'a, O> = lifeboat_net::wire::Res<'a, O, Reason>;

/// Turn any error of a branch that has been committed to into a failure with `reason`,
/// keeping a more specific reason if the inner parser had one.
pub(crate) fn commit<'a, O>(result: Res<'a, O>, reason: Reason) -> Res<'a, O> {
    match result {
        Err(nom::Err::Error(Failure(Reason::Syntax)))
        | Err(nom::Err::Failure(Failure(Reason::Syntax))) => failure(reason),
        Err(nom::Err::Error(inner)) => Err(nom::Err::Failure(inner)),
        other => other,
    }
}

/// `ALPHA = %x41-5A / %x61-7A` — RFC 5234 Appendix B.1
pub(crate) fn is_alpha(byte: u8) -> bool {
    byte.is_ascii_alphabetic()
}

/// `DIGIT = %x30-39` — RFC 5234 Appendix B.1
pub(crate) fn is_digit(byte: u8) -> bool {
    byte.is_ascii_digit()
}

/// `Let-dig = ALPHA / DIGIT` — RFC 5321 §4.1.2
pub(crate) fn is_let_dig(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
}

/// `UTF8-non-ascii = UTF8-2 / UTF8-3 / UTF8-4` — RFC 6531 §3.3. Byte-wise this only
/// admits the bytes; the caller checks that the run is valid UTF-8.
pub(crate) fn is_utf8_non_ascii(byte: u8) -> bool {
    byte >= 0x80
}

/// `atext = ALPHA / DIGIT / "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" /
/// "/" / "=" / "?" / "^" / "_" / "`" / "{" / "|" / "}" / "~"` — RFC 5322 §3.2.3,
/// extended by `atext =/ UTF8-non-ascii` — RFC 6531 §3.3
pub(crate) fn is_atext(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'/'
                | b'='
                | b'?'
                | b'^'
                | b'_'
                | b'`'
                | b'{'
                | b'|'
                | b'}'
                | b'~'
        )
        || is_utf8_non_ascii(byte)
}

/// `qtextSMTP = %d32-33 / %d35-91 / %d93-126` — RFC 5321 §4.1.2, extended by
/// `qtextSMTP =/ UTF8-non-ascii` — RFC 6531 §3.3
pub(crate) fn is_qtext_smtp(byte: u8) -> bool {
    matches!(byte, 32..=33 | 35..=91 | 93..=126) || is_utf8_non_ascii(byte)
}

/// The second octet of `quoted-pairSMTP = %d92 %d32-126` — RFC 5321 §4.1.2
pub(crate) fn is_quoted_pair_char(byte: u8) -> bool {
    matches!(byte, 32..=126)
}

/// `esmtp-value = 1*(%d33-60 / %d62-126)` — RFC 5321 §4.1.2, extended by
/// `esmtp-value =/ UTF8-non-ascii` — RFC 6531 §3.3
pub(crate) fn is_esmtp_value_char(byte: u8) -> bool {
    matches!(byte, 33..=60 | 62..=126) || is_utf8_non_ascii(byte)
}

/// Characters of free text arguments (NOOP, HELP, VRFY, EXPN): visible ASCII, space,
/// horizontal tab and UTF-8.
pub(crate) fn is_text_char(byte: u8) -> bool {
    matches!(byte, b'\t' | 32..=126) || is_utf8_non_ascii(byte)
}

/// `SP = %x20` — RFC 5234 Appendix B.1
pub(crate) fn sp(input: &[u8]) -> Res<'_, ()> {
    tag(&b" "[..]).map(|_| ()).parse(input)
}

/// End of a command line: `CRLF`, after any trailing spaces or tabs. RFC 5321 has no
/// trailing white space in its grammar, but clients send it and it carries nothing.
pub(crate) fn end_of_line(input: &[u8]) -> Res<'_, ()> {
    (take_while(|b| b == b' ' || b == b'\t'), tag(&b"\r\n"[..]))
        .map(|_| ())
        .parse(input)
}

/// Validate a run of bytes as UTF-8 (RFC 3629), as RFC 6531 requires of every
/// UTF8-non-ascii sequence.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, Failure<Reason>> {
    std::str::from_utf8(bytes).map_err(|_| Failure(Reason::InvalidUtf8))
}

/// Parse all of `bytes` with `parser`, for the `TryFrom<&str>` constructors. The
/// streaming parsers need a terminator to know a token has ended; a CR, which no value
/// may contain, serves.
pub(crate) fn parse_all<O>(
    bytes: &[u8],
    mut parser: impl for<'a> Parser<&'a [u8], Output = O, Error = Failure<Reason>>,
) -> Result<O, Reason> {
    let mut buffer = Vec::with_capacity(bytes.len() + 1);
    buffer.extend_from_slice(bytes);
    buffer.push(b'\r');
    match parser.parse(&buffer) {
        Ok((rest, value)) if rest == b"\r" => Ok(value),
        Ok(_) => Err(Reason::Syntax),
        Err(nom::Err::Error(Failure(reason))) | Err(nom::Err::Failure(Failure(reason))) => {
            Err(reason)
        }
        Err(nom::Err::Incomplete(_)) => Err(Reason::Syntax),
    }
}
