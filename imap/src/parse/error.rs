//! The error type threaded through the nom parsers.

use nom::error::{ErrorKind, FromExternalError};
use nom::IResult;

use super::Reason;

/// Carries why a parser gave up. Plain syntax errors are `nom::Err::Error` (so `alt`
/// may try the next branch); the specific reasons (NUL, nesting) are
/// `nom::Err::Failure`, which stops backtracking and reaches the caller intact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub(crate) reason: Reason,
}

impl<'a> nom::error::ParseError<&'a [u8]> for ParseError {
    fn from_error_kind(_input: &'a [u8], _kind: ErrorKind) -> Self {
        Self {
            reason: Reason::Syntax,
        }
    }

    fn append(_input: &'a [u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }

    fn or(self, other: Self) -> Self {
        if other.reason == Reason::Syntax {
            self
        } else {
            other
        }
    }
}

impl<'a, E> FromExternalError<&'a [u8], E> for ParseError {
    fn from_external_error(_input: &'a [u8], _kind: ErrorKind, _error: E) -> Self {
        Self {
            reason: Reason::Syntax,
        }
    }
}

pub(crate) type PResult<'a, O> = IResult<&'a [u8], O, ParseError>;

/// A plain syntax error: `alt` may still try another branch.
pub(crate) fn syntax<'a, O>() -> PResult<'a, O> {
    Err(nom::Err::Error(ParseError {
        reason: Reason::Syntax,
    }))
}

/// A definite failure: no other branch can match either.
pub(crate) fn failure<'a, O>(reason: Reason) -> PResult<'a, O> {
    Err(nom::Err::Failure(ParseError { reason }))
}

/// More input is needed (streaming semantics).
pub(crate) fn incomplete<'a, O>() -> PResult<'a, O> {
    Err(nom::Err::Incomplete(nom::Needed::Unknown))
}
