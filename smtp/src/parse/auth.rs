//! SASL in SMTP (RFC 4954): mechanism names, the base64 of initial responses and
//! continuation lines, and the continuation line decoder.

use std::fmt;

use lifeboat_net::wire::{base64_decode, base64_encode, decode_line};
use nom::branch::alt;
use nom::bytes::streaming::{tag, take_while, take_while1};
use nom::combinator::{recognize, value};
use nom::Parser;

use super::error::{DecodeError, Reason};
use super::limits::MECHANISM_BYTES_MAX;
use super::primitives::{failure, parse_all, Failure, Res};

/// A SASL mechanism name (RFC 4422 §3.1): 1 to 20 of `A-Z 0-9 - _`. Held in upper
/// case; clients that send lower case are accepted (names compare case-insensitively
/// in practice, though RFC 4954 §4 spells them in upper case).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mechanism(String);

impl Mechanism {
    /// `PLAIN` (RFC 4616).
    pub fn plain() -> Self {
        Mechanism("PLAIN".to_owned())
    }

    /// `LOGIN` (draft-murchison-sasl-login).
    pub fn login() -> Self {
        Mechanism("LOGIN".to_owned())
    }

    /// The name, in upper case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Mechanism {
    type Error = Reason;

    fn try_from(text: &str) -> Result<Self, Reason> {
        parse_all(text.as_bytes(), sasl_mech)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_mech_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

/// `sasl-mech = 1*20mech-char` with `mech-char = UPPER-ALPHA / DIGIT / HYPHEN /
/// UNDERSCORE` — RFC 4422 §3.1, used by RFC 4954 §4 (lower case accepted).
pub(crate) fn sasl_mech(input: &[u8]) -> Res<'_, Mechanism> {
    let (rest, name) = take_while1(is_mech_char).parse(input)?;
    if name.len() > MECHANISM_BYTES_MAX {
        return failure(Reason::InvalidMechanism);
    }
    // The bytes are ASCII letters, digits, `-` and `_`.
    let name = String::from_utf8_lossy(name).to_ascii_uppercase();
    Ok((rest, Mechanism(name)))
}

fn is_base64_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/'
}

/// `base64 = base64-terminal / ( 1*(4base64-char) [base64-terminal] )` with
/// `base64-char = ALPHA / DIGIT / "+" / "/"` and `base64-terminal = (2base64-char "==")
/// / (3base64-char "=")` — RFC 4954 §4. Also accepts the empty string, which is how a
/// client sends an empty response on a continuation line. Returns the decoded octets.
pub(crate) fn base64(input: &[u8]) -> Res<'_, Vec<u8>> {
    let (rest, text) =
        recognize((take_while(is_base64_char), take_while(|b| b == b'='))).parse(input)?;
    match base64_decode(text) {
        Some(decoded) => Ok((rest, decoded)),
        None => failure(Reason::InvalidBase64),
    }
}

/// A client's line during a SASL exchange (RFC 4954 §4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AuthResponse {
    /// `*`: the client cancels the exchange; the server answers 501.
    Cancel,
    /// The decoded response (possibly empty).
    Response(Vec<u8>),
}

impl AuthResponse {
    /// Append the line, CRLF included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            AuthResponse::Cancel => out.push(b'*'),
            AuthResponse::Response(bytes) => base64_encode(bytes, out),
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// `( base64 / "*" ) CRLF` — RFC 4954 §4: a continuation line from the client.
fn auth_response(input: &[u8]) -> Res<'_, AuthResponse> {
    let (rest, response) = alt((
        value(AuthResponse::Cancel, tag(&b"*"[..])),
        base64.map(AuthResponse::Response),
    ))
    .parse(input)?;
    // No trailing white space here: it would be part of a base64 string.
    let (rest, _) = tag(&b"\r\n"[..])
        .parse(rest)
        .map_err(|_: nom::Err<Failure<Reason>>| {
            nom::Err::Failure(Failure(Reason::InvalidBase64))
        })?;
    Ok((rest, response))
}

/// Decode the client's line during an AUTH exchange. `line_bytes_max` is at least
/// [`AUTH_LINE_BYTES_MAX`](super::limits::AUTH_LINE_BYTES_MAX) to follow RFC 4954 §4.
/// Returns the response and the bytes consumed; errors as for
/// [`decode_command`](super::decode_command).
pub fn decode_auth_response(
    input: &[u8],
    line_bytes_max: usize,
) -> Result<(AuthResponse, usize), DecodeError> {
    decode_line(input, line_bytes_max, auth_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_lines() {
        assert_eq!(
            decode_auth_response(b"*\r\n", 100),
            Ok((AuthResponse::Cancel, 3))
        );
        assert_eq!(
            decode_auth_response(b"\r\n", 100),
            Ok((AuthResponse::Response(Vec::new()), 2))
        );
        assert_eq!(
            decode_auth_response(b"AHVzZXIAcGFzcw==\r\nQUIT\r\n", 100),
            Ok((AuthResponse::Response(b"\0user\0pass".to_vec()), 18))
        );
        assert_eq!(
            decode_auth_response(b"AHVzZXIAcGFzcw=", 100),
            Err(DecodeError::Incomplete)
        );
        assert!(matches!(
            decode_auth_response(b"AHVzZXIAcGFzcw=\r\n", 100),
            Err(DecodeError::Failed {
                reason: Reason::InvalidBase64,
                line_bytes: 17
            })
        ));
        assert!(matches!(
            decode_auth_response(b"** \r\n", 100),
            Err(DecodeError::Failed {
                reason: Reason::InvalidBase64,
                ..
            })
        ));
    }
}
