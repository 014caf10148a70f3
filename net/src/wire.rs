//! Pieces of the line protocols' wire formats that SMTP, POP3 and IMAP share, with no
//! protocol in them: the nom error type that carries a protocol's failure reason, CRLF
//! line framing, the strict base64 of SASL exchanges, and the set of session states a
//! command is legal in.
//!
//! Invariants:
//!
//! - [`decode_line`] never looks past `line_bytes_max` bytes, and its answer depends only
//!   on those bytes. A line ends only at CRLF; a bare LF ends it as a failure (so the
//!   caller can drop exactly that line), and a CR or NUL inside it is a failure.
//! - [`base64_decode`] accepts exactly one text for each octet string (RFC 4648 §3.5),
//!   so what a client sends is either what [`base64_encode`] writes or refused.

use std::marker::PhantomData;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use memchr::{memchr, memchr2};
use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Parser};

/// The failure reasons of a protocol's parsers, of which the shared pieces name a few.
pub trait Reason: Copy + Eq {
    /// The input does not match the grammar: what nom's own errors become.
    const SYNTAX: Self;
    /// A line ended by an LF not preceded by CR.
    const BARE_LINE_FEED: Self;
    /// A CR or NUL inside a line.
    const CONTROL_CHARACTER: Self;
}

/// The error of every parser of a protocol whose reasons are `R`. A recoverable
/// `Err::Error` means "this alternative does not match"; `Err::Failure` means "this is
/// the branch, and it is wrong for this reason", so `alt` does not hide the reason
/// behind a generic one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure<R>(pub R);

impl<I, R: Reason> ParseError<I> for Failure<R> {
    fn from_error_kind(_input: I, _kind: ErrorKind) -> Self {
        Failure(R::SYNTAX)
    }

    fn append(_input: I, _kind: ErrorKind, other: Self) -> Self {
        other
    }

    fn or(self, other: Self) -> Self {
        // Keep the more specific reason when `alt` runs out of alternatives.
        if other.0 == R::SYNTAX {
            self
        } else {
            other
        }
    }
}

/// The result of a parser over bytes that fails with [`Failure<R>`].
pub type Res<'a, O, R> = IResult<&'a [u8], O, Failure<R>>;

/// Fails the current branch for good, with a reason.
pub fn failure<'a, O, R>(reason: R) -> Res<'a, O, R> {
    Err(nom::Err::Failure(Failure(reason)))
}

/// Why a line could not be decoded. Not `#[non_exhaustive]`: these are all the
/// outcomes of line framing, and the sessions of other crates match on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError<R> {
    /// The input holds no complete line yet; nothing was consumed. Read more and call
    /// again with the same bytes plus the new ones.
    #[error("incomplete line")]
    Incomplete,
    /// No LF within the line length limit. The session answers once and drops the
    /// input through the next LF ([`skip_line`]).
    #[error("line too long")]
    LineTooLong,
    /// A complete line of `line_bytes` bytes (through its LF) that is not valid: the
    /// session answers and drops those bytes.
    #[error("{reason} ({line_bytes} bytes)")]
    Failed {
        /// What was wrong with it.
        reason: R,
        /// Length of the rejected line including its line ending.
        line_bytes: usize,
    },
}

/// Decodes the first line of `input` with `parser`, which must consume all of it,
/// CRLF included. Returns the value and the line's length; the rest of `input` is the
/// next line (pipelining). Never looks past `line_bytes_max` bytes.
pub fn decode_line<'a, O, R: Reason>(
    input: &'a [u8],
    line_bytes_max: usize,
    parser: impl Parser<&'a [u8], Output = O, Error = Failure<R>>,
) -> Result<(O, usize), DecodeError<R>> {
    parse_line(frame_line(input, line_bytes_max)?, parser)
}

/// Finds the first line of `input`, LF included, within `line_bytes_max` bytes.
///
/// A line that ends in a bare LF, or holds a CR or NUL before its end, is complete but
/// invalid: it fails with its length, so the caller can drop exactly it (RFC 5321
/// §2.3.8, RFC 1939 §3: lines end in CRLF).
fn frame_line<R: Reason>(input: &[u8], line_bytes_max: usize) -> Result<&[u8], DecodeError<R>> {
    let window = &input[..input.len().min(line_bytes_max)];
    let Some(lf) = memchr(b'\n', window) else {
        return Err(if !input.is_empty() && input.len() >= line_bytes_max {
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
        return Err(failed(R::BARE_LINE_FEED));
    }
    if memchr2(b'\r', 0, &line[..lf - 1]).is_some() {
        return Err(failed(R::CONTROL_CHARACTER));
    }
    Ok(line)
}

/// Runs `parser` over a framed line, which it must consume entirely. The line ends with CRLF, which no rule accepts inside itself, so a parser asking for
/// more input has met a line that does not fit its grammar.
fn parse_line<'a, O, R: Reason>(
    line: &'a [u8],
    mut parser: impl Parser<&'a [u8], Output = O, Error = Failure<R>>,
) -> Result<(O, usize), DecodeError<R>> {
    let failed = |reason| DecodeError::Failed {
        reason,
        line_bytes: line.len(),
    };
    match parser.parse(line) {
        Ok(([], value)) => Ok((value, line.len())),
        Ok(_) | Err(nom::Err::Incomplete(_)) => Err(failed(R::SYNTAX)),
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

/// Padded base64 with canonical decoding: RFC 4648 §4's alphabet, a multiple of four
/// characters, `=` only as the padding of the last group, unused bits zero (§3.5).
const SASL_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// A byte of base64 text: `ALPHA / DIGIT / "+" / "/"` (RFC 4648 §4) or the pad `"="`.
pub fn is_base64_text(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'=')
}

/// Decodes base64 as SASL exchanges carry it (RFC 4954 §4, RFC 5034 §4, RFC 3501
/// §9): strictly, as every client encodes canonically and anything else is more
/// likely an attack or a bug. `None` for any other text.
pub fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    SASL_BASE64.decode(text).ok()
}

/// Appends `bytes` in padded base64 (RFC 4648 §4).
pub fn base64_encode(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(SASL_BASE64.encode(bytes).as_bytes());
}

/// A session state's number, its bit in a [`States`] set: `self as u32` of a field-less
/// state enum with fewer than 32 variants.
pub trait StateIndex: Copy {
    /// The state's number.
    fn index(self) -> u32;
}

/// A set of a session's states `S`, for the table of which commands are legal where.
/// Built in constants from the states' numbers: `States::of(&[State::Ready as u32])`.
#[derive(Debug)]
pub struct States<S> {
    bits: u32,
    states: PhantomData<fn(S)>,
}

impl<S> Clone for States<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for States<S> {}

impl<S> PartialEq for States<S> {
    fn eq(&self, other: &Self) -> bool {
        self.bits == other.bits
    }
}

impl<S> Eq for States<S> {}

impl<S> States<S> {
    /// The set of the states numbered `indexes`.
    pub const fn of(indexes: &[u32]) -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < indexes.len() {
            assert!(indexes[i] < u32::BITS, "a state number is below 32");
            bits |= 1 << indexes[i];
            i += 1;
        }
        States {
            bits,
            states: PhantomData,
        }
    }

    /// The union of two sets.
    pub const fn or(self, other: Self) -> Self {
        States {
            bits: self.bits | other.bits,
            states: PhantomData,
        }
    }
}

impl<S: StateIndex> States<S> {
    /// Whether `state` is in the set.
    pub fn contains(self, state: S) -> bool {
        self.bits & (1 << state.index()) != 0
    }
}

#[cfg(test)]
mod tests {
    use nom::bytes::streaming::tag;

    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum TestReason {
        Syntax,
        BareLineFeed,
        ControlCharacter,
    }

    impl Reason for TestReason {
        const SYNTAX: Self = TestReason::Syntax;
        const BARE_LINE_FEED: Self = TestReason::BareLineFeed;
        const CONTROL_CHARACTER: Self = TestReason::ControlCharacter;
    }

    impl std::fmt::Display for TestReason {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }

    fn failed(reason: TestReason, line_bytes: usize) -> DecodeError<TestReason> {
        DecodeError::Failed { reason, line_bytes }
    }

    #[test]
    fn frame_line_finds_crlf_lines_within_the_limit() {
        let frame = |input: &'static [u8], max| frame_line::<TestReason>(input, max);
        assert_eq!(frame(b"NOOP\r\nQUIT\r\n", 512), Ok(&b"NOOP\r\n"[..]));
        assert_eq!(frame(b"NOOP\r", 512), Err(DecodeError::Incomplete));
        assert_eq!(frame(b"", 512), Err(DecodeError::Incomplete));
        assert_eq!(frame(b"NOOP", 4), Err(DecodeError::LineTooLong));
        assert_eq!(frame(b"NOOP\r\n", 5), Err(DecodeError::LineTooLong));
        assert_eq!(frame(b"NOOP\r\n", 6), Ok(&b"NOOP\r\n"[..]));
        assert_eq!(
            frame(b"NOOP\nQUIT\r\n", 512),
            Err(failed(TestReason::BareLineFeed, 5))
        );
        assert_eq!(frame(b"\n", 512), Err(failed(TestReason::BareLineFeed, 1)));
        assert_eq!(
            frame(b"NO\rOP\r\n", 512),
            Err(failed(TestReason::ControlCharacter, 7))
        );
        assert_eq!(
            frame(b"NO\0OP\r\n", 512),
            Err(failed(TestReason::ControlCharacter, 7))
        );
        assert_eq!(skip_line(b"long line\r\nNOOP\r\n"), Some(11));
        assert_eq!(skip_line(b"still the long line"), None);
    }

    #[test]
    fn parse_line_needs_the_whole_line_consumed() {
        let noop = |input| tag::<_, _, Failure<TestReason>>(&b"NOOP\r\n"[..]).parse(input);
        assert_eq!(parse_line(b"NOOP\r\n", noop), Ok((&b"NOOP\r\n"[..], 6)));
        assert_eq!(
            parse_line(b"NOOP \r\n", noop),
            Err(failed(TestReason::Syntax, 7))
        );
        let short = |input| tag::<_, _, Failure<TestReason>>(&b"NO"[..]).parse(input);
        assert_eq!(
            parse_line(b"NOOP\r\n", short),
            Err(failed(TestReason::Syntax, 6))
        );
        let control = |_| failure::<(), _>(TestReason::ControlCharacter);
        assert_eq!(
            parse_line(b"NOOP\r\n", control),
            Err(failed(TestReason::ControlCharacter, 6))
        );
    }

    #[test]
    fn base64_rfc_4648_test_vectors() {
        // RFC 4648 §10.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("\0user\0pass", "AHVzZXIAcGFzcw=="),
        ] {
            let mut out = b"prefix ".to_vec();
            base64_encode(plain.as_bytes(), &mut out);
            assert_eq!(out, format!("prefix {encoded}").as_bytes());
            assert_eq!(
                base64_decode(encoded.as_bytes()).as_deref(),
                Some(plain.as_bytes())
            );
            assert!(encoded.bytes().all(is_base64_text));
        }
    }

    #[test]
    fn base64_refuses_non_canonical_text() {
        for bad in [
            "Zg", "Zg=", "Zh==", "Z===", "Zm9=", "Zm9", "Zg==Zg==", "Zm9v!A==", "====", "Zm8=Zm8=",
        ] {
            assert_eq!(base64_decode(bad.as_bytes()), None, "{bad}");
        }
        assert!(!is_base64_text(b'!'));
        assert!(!is_base64_text(b' '));
    }

    #[derive(Clone, Copy, Debug)]
    enum TestState {
        First,
        Second,
        Third,
        Closed,
    }

    impl StateIndex for TestState {
        fn index(self) -> u32 {
            self as u32
        }
    }

    #[test]
    fn states_hold_exactly_their_members() {
        const FIRST: States<TestState> = States::of(&[TestState::First as u32]);
        const LATER: States<TestState> =
            States::of(&[TestState::Second as u32, TestState::Third as u32]);
        let all = FIRST.or(LATER);
        assert!(FIRST.contains(TestState::First));
        assert!(!FIRST.contains(TestState::Second));
        assert!(!LATER.contains(TestState::First));
        assert!(LATER.contains(TestState::Second) && LATER.contains(TestState::Third));
        assert!(all.contains(TestState::First) && all.contains(TestState::Third));
        assert!(!all.contains(TestState::Closed));
        assert_eq!(all, States::of(&[0, 1, 2]));
    }
}
