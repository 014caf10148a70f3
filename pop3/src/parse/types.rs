//! Validated values carried by commands. Each is built only through `TryFrom` (or by
//! the decoder, which runs the same checks), so a value in hand is always valid and
//! always encodable.

use std::fmt;
use std::num::NonZeroU32;

use super::error::Reason;
use super::limits::{MECHANISM_BYTES_MAX, PASSWORD_BYTES_MAX, USER_NAME_BYTES_MAX};
use super::primitives::{is_lower_hex, is_name_char, utf8};

/// A message number: `msg` of RFC 1939 §5, counting from 1 within the maildrop as it
/// was when the session entered the TRANSACTION state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageNumber(NonZeroU32);

impl MessageNumber {
    /// The number.
    pub fn get(self) -> u32 {
        self.0.get()
    }

    /// The 0-based index into the maildrop.
    pub fn index(self) -> usize {
        self.0.get() as usize - 1
    }
}

impl TryFrom<u64> for MessageNumber {
    type Error = Reason;

    fn try_from(value: u64) -> Result<Self, Reason> {
        let value = u32::try_from(value).map_err(|_| Reason::NumberTooLarge)?;
        NonZeroU32::new(value)
            .map(MessageNumber)
            .ok_or(Reason::InvalidMessageNumber)
    }
}

impl fmt::Display for MessageNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The argument of `USER name` (RFC 1939 §7) and the `authcid` of PLAIN (RFC 4616
/// §2): the mailbox's address. Visible ASCII and UTF-8, no spaces, 1 to
/// [`USER_NAME_BYTES_MAX`] bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserName(String);

impl UserName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_user_name(bytes: &[u8]) -> Result<&str, Reason> {
    if bytes.is_empty() || !bytes.iter().all(|&b| is_name_char(b)) {
        return Err(Reason::Syntax);
    }
    if bytes.len() > USER_NAME_BYTES_MAX {
        return Err(Reason::TooLong);
    }
    utf8(bytes)
}

impl TryFrom<&[u8]> for UserName {
    type Error = Reason;

    fn try_from(bytes: &[u8]) -> Result<Self, Reason> {
        check_user_name(bytes).map(|name| UserName(name.to_string()))
    }
}

impl TryFrom<&str> for UserName {
    type Error = Reason;

    fn try_from(name: &str) -> Result<Self, Reason> {
        UserName::try_from(name.as_bytes())
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password: the argument of `PASS string` (RFC 1939 §7, which lets it contain
/// spaces) or the `passwd` of PLAIN (RFC 4616 §2). UTF-8 without NUL, CR or LF (so
/// that a `PASS` line can always carry it), 1 to [`PASSWORD_BYTES_MAX`] bytes.
/// `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The password.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_password(bytes: &[u8]) -> Result<&str, Reason> {
    if bytes.is_empty() {
        return Err(Reason::Syntax);
    }
    if bytes.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
        return Err(Reason::ControlCharacter);
    }
    if bytes.len() > PASSWORD_BYTES_MAX {
        return Err(Reason::TooLong);
    }
    utf8(bytes)
}

impl TryFrom<&[u8]> for Password {
    type Error = Reason;

    fn try_from(bytes: &[u8]) -> Result<Self, Reason> {
        check_password(bytes).map(|password| Password(password.to_string()))
    }
}

impl TryFrom<&str> for Password {
    type Error = Reason;

    fn try_from(password: &str) -> Result<Self, Reason> {
        Password::try_from(password.as_bytes())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// A SASL mechanism name, upper case: `sasl-mech = 1*20mech-char`, `mech-char =
/// UPPER-ALPHA / DIGIT / HYPHEN / UNDERSCORE` — RFC 4422 §3.1. Clients that send
/// lower case are accepted and the name is upper-cased.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mechanism(String);

impl Mechanism {
    /// `PLAIN` (RFC 4616), the one mechanism this server offers.
    pub fn plain() -> Mechanism {
        // Valid by inspection: five upper-case letters.
        Mechanism("PLAIN".to_string())
    }

    /// The name, upper case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_mechanism(bytes: &[u8]) -> Result<(), Reason> {
    let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if bytes.is_empty() || bytes.len() > MECHANISM_BYTES_MAX || !bytes.iter().all(|&b| valid(b)) {
        return Err(Reason::InvalidMechanism);
    }
    Ok(())
}

impl TryFrom<&[u8]> for Mechanism {
    type Error = Reason;

    fn try_from(bytes: &[u8]) -> Result<Self, Reason> {
        check_mechanism(bytes)?;
        // Checked above: ASCII only.
        Ok(Mechanism(
            String::from_utf8_lossy(bytes).to_ascii_uppercase(),
        ))
    }
}

impl TryFrom<&str> for Mechanism {
    type Error = Reason;

    fn try_from(name: &str) -> Result<Self, Reason> {
        Mechanism::try_from(name.as_bytes())
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `digest` of `APOP name digest`: 32 lower-case hexadecimal digits — RFC 1939 §7.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ApopDigest(String);

impl ApopDigest {
    /// The digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_apop_digest(bytes: &[u8]) -> Result<(), Reason> {
    if bytes.len() != 32 || !bytes.iter().all(|&b| is_lower_hex(b)) {
        return Err(Reason::Syntax);
    }
    Ok(())
}

impl TryFrom<&[u8]> for ApopDigest {
    type Error = Reason;

    fn try_from(bytes: &[u8]) -> Result<Self, Reason> {
        check_apop_digest(bytes)?;
        // Checked above: ASCII hex digits.
        Ok(ApopDigest(String::from_utf8_lossy(bytes).into_owned()))
    }
}

impl TryFrom<&str> for ApopDigest {
    type Error = Reason;

    fn try_from(digest: &str) -> Result<Self, Reason> {
        ApopDigest::try_from(digest.as_bytes())
    }
}
