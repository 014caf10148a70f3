//! The lines of a SASL exchange after `AUTH` (RFC 5034 §4) and the PLAIN message
//! (RFC 4616 §2).

use lifeboat_net::wire::{base64_decode, base64_encode, decode_line, is_base64_text};
use memchr::memchr;
use nom::bytes::streaming::{tag, take_while};
use nom::Parser;

use super::error::{DecodeError, Reason};
use super::limits::USER_NAME_BYTES_MAX;
use super::primitives::{crlf, failure, Failure, Res};
use super::types::{Password, UserName};

/// A client's answer to a server challenge (`continue-req`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaslResponse {
    /// The decoded response (empty for an empty line).
    Data(Vec<u8>),
    /// `cancel-response = "*"`: the client abandons the exchange.
    Cancel,
}

impl SaslResponse {
    /// Appends the line, CRLF included. Decoding it gives back an equal value.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            SaslResponse::Data(bytes) => base64_encode(bytes, out),
            SaslResponse::Cancel => out.push(b'*'),
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Decodes one client line of a SASL exchange: `[base64] CRLF` or `cancel-response
/// CRLF` — the `*(CRLF [base64]) [CRLF cancel-response]` part of `auth-command`,
/// RFC 5034 §6. `line_bytes_max` bounds the line including its CRLF (RFC 5034 lets
/// responses exceed the command limit;
/// [`SASL_RESPONSE_LINE_BYTES_MAX`](super::limits::SASL_RESPONSE_LINE_BYTES_MAX)).
pub fn decode_sasl_response(
    input: &[u8],
    line_bytes_max: usize,
) -> Result<(SaslResponse, usize), DecodeError> {
    decode_line(input, line_bytes_max, client_response)
}

/// `cancel-response = "*"` or `[base64]` — RFC 5034 §6, then `CRLF`.
fn client_response(input: &[u8]) -> Res<'_, SaslResponse> {
    if let Ok((rest, _)) = (tag::<_, _, Failure<Reason>>(&b"*"[..]), crlf).parse(input) {
        return Ok((rest, SaslResponse::Cancel));
    }
    let (rest, text) = take_while(is_base64_text).parse(input)?;
    let (rest, ()) = crlf(rest)?;
    match base64_decode(text) {
        Some(bytes) => Ok((rest, SaslResponse::Data(bytes))),
        None => failure(Reason::InvalidBase64),
    }
}

/// The credentials a PLAIN message carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlainCredentials {
    /// The identity to act as, when the client names one (`authzid`).
    pub authzid: Option<UserName>,
    /// The identity whose password this is (`authcid`).
    pub authcid: UserName,
    /// The password.
    pub password: Password,
}

/// `message = [authzid] UTF8NUL authcid UTF8NUL passwd` — RFC 4616 §2. Identities are
/// limited to [`USER_NAME_BYTES_MAX`] bytes ("up to 255 octets", §2) and must be user
/// names; the password must be a [`Password`].
pub fn decode_plain(message: &[u8]) -> Result<PlainCredentials, Reason> {
    let first = memchr(0, message).ok_or(Reason::InvalidPlainMessage)?;
    let second = first + 1 + memchr(0, &message[first + 1..]).ok_or(Reason::InvalidPlainMessage)?;
    let (authzid, authcid, passwd) = (
        &message[..first],
        &message[first + 1..second],
        &message[second + 1..],
    );
    if authcid.len() > USER_NAME_BYTES_MAX || authzid.len() > USER_NAME_BYTES_MAX {
        return Err(Reason::TooLong);
    }
    let identity =
        |bytes: &[u8]| UserName::try_from(bytes).map_err(|_| Reason::InvalidPlainMessage);
    let authzid = match authzid {
        [] => None,
        bytes => Some(identity(bytes)?),
    };
    let authcid = identity(authcid)?;
    let password = Password::try_from(passwd).map_err(|_| Reason::InvalidPlainMessage)?;
    Ok(PlainCredentials {
        authzid,
        authcid,
        password,
    })
}

/// The PLAIN message for `credentials` (what a client sends), for tests and tools.
pub fn encode_plain(credentials: &PlainCredentials) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(authzid) = &credentials.authzid {
        out.extend_from_slice(authzid.as_str().as_bytes());
    }
    out.push(0);
    out.extend_from_slice(credentials.authcid.as_str().as_bytes());
    out.push(0);
    out.extend_from_slice(credentials.password.as_str().as_bytes());
    out
}
