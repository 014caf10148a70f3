//! Mailbox names (RFC 3501 §5.1) and their modified UTF-7 form (RFC 3501 §5.1.3).
//!
//! Invariant: a [`Mailbox`] holds the name as it travels on the wire (modified UTF-7
//! for non-ASCII names), never contains NUL, CR or LF, and the name `INBOX` in any
//! case is always [`Mailbox::Inbox`] (RFC 3501 §5.1: "INBOX" is case-insensitive).

use std::borrow::Cow;
use std::fmt;

use super::core::ValidationError;

/// Longest mailbox name accepted, in wire octets.
pub const MAILBOX_NAME_BYTES_MAX: usize = 1024;

/// `mailbox = "INBOX" / astring` — RFC 3501 §9
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Mailbox<'a> {
    Inbox,
    Other(MailboxOther<'a>),
}

/// A mailbox name other than INBOX, in wire form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MailboxOther<'a>(Cow<'a, [u8]>);

impl MailboxOther<'_> {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

fn check_name(bytes: &[u8], max_bytes: usize) -> Result<(), ValidationError> {
    if bytes.len() > max_bytes {
        return Err(ValidationError::TooLong {
            length_bytes: bytes.len(),
            max_bytes,
        });
    }
    match bytes
        .iter()
        .position(|&byte| matches!(byte, 0 | b'\r' | b'\n'))
    {
        Some(position) => Err(ValidationError::InvalidByte {
            byte: bytes[position],
            position,
        }),
        None => Ok(()),
    }
}

impl<'a> Mailbox<'a> {
    fn from_cow(bytes: Cow<'a, [u8]>) -> Result<Self, ValidationError> {
        check_name(&bytes, MAILBOX_NAME_BYTES_MAX)?;
        if bytes.eq_ignore_ascii_case(b"INBOX") {
            Ok(Self::Inbox)
        } else {
            Ok(Self::Other(MailboxOther(bytes)))
        }
    }

    /// A mailbox from its human (UTF-8) name, encoded to modified UTF-7.
    pub fn from_utf8(name: &str) -> Result<Mailbox<'static>, ValidationError> {
        Mailbox::from_cow(Cow::Owned(encode_modified_utf7(name).into_bytes()))
    }

    /// The wire form (`INBOX` for the inbox).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inbox => b"INBOX",
            Self::Other(other) => &other.0,
        }
    }

    /// The human (UTF-8) name, decoded from modified UTF-7.
    pub fn to_utf8(&self) -> Result<String, ValidationError> {
        decode_modified_utf7(self.as_bytes())
    }

    pub fn is_inbox(&self) -> bool {
        matches!(self, Self::Inbox)
    }

    pub fn into_owned(self) -> Mailbox<'static> {
        match self {
            Self::Inbox => Mailbox::Inbox,
            Self::Other(other) => Mailbox::Other(MailboxOther(Cow::Owned(other.0.into_owned()))),
        }
    }
}

impl<'a> TryFrom<&'a [u8]> for Mailbox<'a> {
    type Error = ValidationError;
    fn try_from(bytes: &'a [u8]) -> Result<Self, Self::Error> {
        Self::from_cow(Cow::Borrowed(bytes))
    }
}

impl<'a> TryFrom<Cow<'a, [u8]>> for Mailbox<'a> {
    type Error = ValidationError;
    fn try_from(bytes: Cow<'a, [u8]>) -> Result<Self, Self::Error> {
        Self::from_cow(bytes)
    }
}

impl<'a> TryFrom<&'a str> for Mailbox<'a> {
    type Error = ValidationError;
    fn try_from(text: &'a str) -> Result<Self, Self::Error> {
        Self::from_cow(Cow::Borrowed(text.as_bytes()))
    }
}

impl TryFrom<Vec<u8>> for Mailbox<'static> {
    type Error = ValidationError;
    fn try_from(bytes: Vec<u8>) -> Result<Self, Self::Error> {
        Self::from_cow(Cow::Owned(bytes))
    }
}

impl fmt::Debug for Mailbox<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inbox => f.write_str("Inbox"),
            Self::Other(other) => write!(f, "Mailbox({:?})", String::from_utf8_lossy(&other.0)),
        }
    }
}

/// `list-mailbox = 1*list-char / string` — RFC 3501 §9: a LIST/LSUB pattern, which may
/// hold the wildcards `*` and `%`. May be empty (`LIST "" ""` asks for the delimiter).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ListMailbox<'a>(Cow<'a, [u8]>);

impl ListMailbox<'_> {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_owned(self) -> ListMailbox<'static> {
        ListMailbox(Cow::Owned(self.0.into_owned()))
    }
}

impl<'a> TryFrom<Cow<'a, [u8]>> for ListMailbox<'a> {
    type Error = ValidationError;
    fn try_from(bytes: Cow<'a, [u8]>) -> Result<Self, Self::Error> {
        check_name(&bytes, MAILBOX_NAME_BYTES_MAX)?;
        Ok(Self(bytes))
    }
}

impl<'a> TryFrom<&'a [u8]> for ListMailbox<'a> {
    type Error = ValidationError;
    fn try_from(bytes: &'a [u8]) -> Result<Self, Self::Error> {
        Self::try_from(Cow::Borrowed(bytes))
    }
}

impl<'a> TryFrom<&'a str> for ListMailbox<'a> {
    type Error = ValidationError;
    fn try_from(text: &'a str) -> Result<Self, Self::Error> {
        Self::try_from(Cow::Borrowed(text.as_bytes()))
    }
}

impl fmt::Debug for ListMailbox<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ListMailbox({:?})", String::from_utf8_lossy(&self.0))
    }
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn base64_value(byte: u8) -> Option<u32> {
    match byte {
        b'A'..=b'Z' => Some(u32::from(byte - b'A')),
        b'a'..=b'z' => Some(u32::from(byte - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(byte - b'0') + 52),
        b'+' => Some(62),
        b',' => Some(63),
        _ => None,
    }
}

fn flush_utf16(run: &mut Vec<u16>, out: &mut String) {
    if run.is_empty() {
        return;
    }
    out.push('&');
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    for unit in run.drain(..) {
        for byte in unit.to_be_bytes() {
            bits = (bits << 8) | u32::from(byte);
            bit_count += 8;
            while bit_count >= 6 {
                bit_count -= 6;
                out.push(char::from(
                    BASE64_ALPHABET[((bits >> bit_count) & 0x3f) as usize],
                ));
            }
        }
    }
    if bit_count > 0 {
        out.push(char::from(
            BASE64_ALPHABET[((bits << (6 - bit_count)) & 0x3f) as usize],
        ));
    }
    out.push('-');
}

/// Encodes a UTF-8 mailbox name to modified UTF-7 — RFC 3501 §5.1.3.
pub fn encode_modified_utf7(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    for character in name.chars() {
        if (' '..='~').contains(&character) {
            flush_utf16(&mut run, &mut out);
            if character == '&' {
                out.push_str("&-");
            } else {
                out.push(character);
            }
        } else {
            let mut units = [0u16; 2];
            run.extend_from_slice(character.encode_utf16(&mut units));
        }
    }
    flush_utf16(&mut run, &mut out);
    out
}

/// Decodes a modified UTF-7 mailbox name to UTF-8 — RFC 3501 §5.1.3.
///
/// Strict: only the one canonical encoding of a name is accepted (printable ASCII
/// never shifted, no adjacent shifted runs, no padding bits), so two different wire
/// names never decode to the same UTF-8 name.
pub fn decode_modified_utf7(wire: &[u8]) -> Result<String, ValidationError> {
    let mut out = String::with_capacity(wire.len());
    let mut index = 0;
    while index < wire.len() {
        let byte = wire[index];
        if byte != b'&' {
            if !(0x20..=0x7e).contains(&byte) {
                return Err(ValidationError::InvalidUtf7);
            }
            out.push(char::from(byte));
            index += 1;
            continue;
        }
        index += 1;
        let end = wire[index..]
            .iter()
            .position(|&byte| byte == b'-')
            .ok_or(ValidationError::InvalidUtf7)?
            + index;
        if end == index {
            out.push('&');
            index = end + 1;
            continue;
        }
        let mut units: Vec<u16> = Vec::new();
        let mut bits: u32 = 0;
        let mut bit_count = 0;
        for &symbol in &wire[index..end] {
            let value = base64_value(symbol).ok_or(ValidationError::InvalidUtf7)?;
            bits = (bits << 6) | value;
            bit_count += 6;
            if bit_count >= 16 {
                bit_count -= 16;
                units.push(((bits >> bit_count) & 0xffff) as u16);
            }
        }
        if bit_count >= 6 || bits & ((1 << bit_count) - 1) != 0 {
            return Err(ValidationError::InvalidUtf7);
        }
        for decoded in char::decode_utf16(units) {
            let character = decoded.map_err(|_| ValidationError::InvalidUtf7)?;
            out.push(character);
        }
        index = end + 1;
    }
    if encode_modified_utf7(&out).as_bytes() != wire {
        return Err(ValidationError::InvalidUtf7);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf7_examples_of_rfc_3501() {
        // RFC 3501 §5.1.3 example.
        let wire = "~peter/mail/&U,BTFw-/&ZeVnLIqe-";
        let human = "~peter/mail/台北/日本語";
        assert_eq!(encode_modified_utf7(human), wire);
        assert_eq!(decode_modified_utf7(wire.as_bytes()).unwrap(), human);
        assert_eq!(encode_modified_utf7("A&B"), "A&-B");
        assert_eq!(decode_modified_utf7(b"A&-B").unwrap(), "A&B");
        assert_eq!(encode_modified_utf7("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(encode_modified_utf7("😀"), "&2D3eAA-");
        assert_eq!(decode_modified_utf7(b"&2D3eAA-").unwrap(), "😀");
    }

    #[test]
    fn utf7_rejects_non_canonical() {
        for bad in [
            &b"&"[..],
            b"&Jjo",
            b"&AGE-",       // shifted printable ASCII 'a'
            b"&APw-&APw-",  // adjacent runs
            b"&APx-",       // non-zero padding bits
            b"&2D0-",       // unpaired surrogate
            b"caf\xc3\xa9", // raw 8-bit
            b"&A=-",
        ] {
            assert!(
                decode_modified_utf7(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn inbox_is_case_insensitive() {
        assert!(Mailbox::try_from("inbox").unwrap().is_inbox());
        assert!(Mailbox::try_from("InBoX").unwrap().is_inbox());
        assert!(!Mailbox::try_from("INBOX.Sent").unwrap().is_inbox());
        assert_eq!(Mailbox::try_from("iNbOx").unwrap().as_bytes(), b"INBOX");
        assert!(Mailbox::try_from("a\r\nb").is_err());
    }
}
