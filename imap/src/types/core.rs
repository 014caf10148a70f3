//! Validated string newtypes of RFC 3501 §9.
//!
//! Invariant: every value of these types can be put on the wire in at least one of the
//! representations its ABNF rule allows. Constructors (`TryFrom`) check that; the only
//! unchecked constructors are crate-private and used by the parser right after it has
//! matched the bytes against the same rule.

use std::borrow::Cow;
use std::fmt;

use super::chars::{is_atom_char, is_tag_char, is_text_char};

/// Why a value was refused by a validated constructor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationError {
    /// The rule needs at least one octet.
    Empty,
    /// The octet at `position` is not allowed by the rule.
    InvalidByte { byte: u8, position: usize },
    /// Longer than the named limit allows.
    TooLong {
        length_bytes: usize,
        max_bytes: usize,
    },
    /// A number outside the rule's range (zero where `nz-number` is required, ...).
    OutOfRange,
    /// Not valid modified UTF-7 (RFC 3501 §5.1.3).
    InvalidUtf7,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty value"),
            Self::InvalidByte { byte, position } => {
                write!(f, "invalid byte 0x{byte:02x} at position {position}")
            }
            Self::TooLong {
                length_bytes,
                max_bytes,
            } => write!(f, "{length_bytes} bytes, more than {max_bytes}"),
            Self::OutOfRange => f.write_str("number out of range"),
            Self::InvalidUtf7 => f.write_str("invalid modified UTF-7"),
        }
    }
}

impl std::error::Error for ValidationError {}

fn check_all(bytes: &[u8], allowed: impl Fn(u8) -> bool) -> Result<(), ValidationError> {
    if bytes.is_empty() {
        return Err(ValidationError::Empty);
    }
    match bytes.iter().position(|&byte| !allowed(byte)) {
        Some(position) => Err(ValidationError::InvalidByte {
            byte: bytes[position],
            position,
        }),
        None => Ok(()),
    }
}

/// Longest tag accepted; tags are echoed in every tagged response.
pub const TAG_BYTES_MAX: usize = 64;

macro_rules! str_newtype {
    ($(#[$meta:meta])* $name:ident, $check:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name<'a>(Cow<'a, str>);

        impl<'a> $name<'a> {
            /// The wire form, always ASCII.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Detaches the value from the buffer it was parsed from.
            pub fn into_owned(self) -> $name<'static> {
                $name(Cow::Owned(self.0.into_owned()))
            }

            /// Only for bytes that were just matched against this type's rule.
            pub(crate) fn unvalidated(bytes: &'a [u8]) -> Self {
                debug_assert!(($check)(bytes).is_ok());
                // The rule admits only ASCII octets, so this cannot fail; the
                // fallback keeps release builds panic-free all the same.
                match std::str::from_utf8(bytes) {
                    Ok(text) => Self(Cow::Borrowed(text)),
                    Err(_) => Self(Cow::Owned(String::from_utf8_lossy(bytes).into_owned())),
                }
            }
        }

        impl<'a> TryFrom<&'a [u8]> for $name<'a> {
            type Error = ValidationError;
            fn try_from(bytes: &'a [u8]) -> Result<Self, Self::Error> {
                ($check)(bytes)?;
                Ok(Self::unvalidated(bytes))
            }
        }

        impl<'a> TryFrom<&'a str> for $name<'a> {
            type Error = ValidationError;
            fn try_from(text: &'a str) -> Result<Self, Self::Error> {
                ($check)(text.as_bytes())?;
                Ok(Self(Cow::Borrowed(text)))
            }
        }

        impl TryFrom<String> for $name<'static> {
            type Error = ValidationError;
            fn try_from(text: String) -> Result<Self, Self::Error> {
                ($check)(text.as_bytes())?;
                Ok(Self(Cow::Owned(text)))
            }
        }

        impl fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn check_tag(bytes: &[u8]) -> Result<(), ValidationError> {
    if bytes.len() > TAG_BYTES_MAX {
        return Err(ValidationError::TooLong {
            length_bytes: bytes.len(),
            max_bytes: TAG_BYTES_MAX,
        });
    }
    check_all(bytes, is_tag_char)
}

fn check_atom(bytes: &[u8]) -> Result<(), ValidationError> {
    check_all(bytes, is_atom_char)
}

str_newtype!(
    /// `tag = 1*<any ASTRING-CHAR except "+">` — RFC 3501 §9, at most [`TAG_BYTES_MAX`].
    Tag,
    check_tag
);

str_newtype!(
    /// `atom = 1*ATOM-CHAR` — RFC 3501 §9
    Atom,
    check_atom
);

impl Atom<'_> {
    /// Case-insensitive comparison, as keywords and capability names compare.
    pub fn eq_ignore_ascii_case(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

/// `string = quoted / literal` content — RFC 3501 §4.3: any octets except NUL.
///
/// Used for `astring` and `string` values alike; the encoder picks atom, quoted or
/// literal form from the content. NUL is refused because RFC 3501 `CHAR8` excludes it
/// and because code that treats the value as a C string would truncate it
/// (CVE-2019-11500).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IString<'a>(Cow<'a, [u8]>);

impl<'a> IString<'a> {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The content as UTF-8, if it is.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    pub fn into_owned(self) -> IString<'static> {
        IString(Cow::Owned(self.0.into_owned()))
    }

    pub fn into_inner(self) -> Cow<'a, [u8]> {
        self.0
    }

    /// Only for bytes the parser has just checked to contain no NUL.
    pub(crate) fn unvalidated(bytes: Cow<'a, [u8]>) -> Self {
        debug_assert!(!bytes.contains(&0));
        Self(bytes)
    }
}

fn check_istring(bytes: &[u8]) -> Result<(), ValidationError> {
    match bytes.iter().position(|&byte| byte == 0) {
        Some(position) => Err(ValidationError::InvalidByte { byte: 0, position }),
        None => Ok(()),
    }
}

impl<'a> TryFrom<&'a [u8]> for IString<'a> {
    type Error = ValidationError;
    fn try_from(bytes: &'a [u8]) -> Result<Self, Self::Error> {
        check_istring(bytes)?;
        Ok(Self(Cow::Borrowed(bytes)))
    }
}

impl<'a> TryFrom<&'a str> for IString<'a> {
    type Error = ValidationError;
    fn try_from(text: &'a str) -> Result<Self, Self::Error> {
        Self::try_from(text.as_bytes())
    }
}

impl TryFrom<Vec<u8>> for IString<'static> {
    type Error = ValidationError;
    fn try_from(bytes: Vec<u8>) -> Result<Self, Self::Error> {
        check_istring(&bytes)?;
        Ok(Self(Cow::Owned(bytes)))
    }
}

impl TryFrom<String> for IString<'static> {
    type Error = ValidationError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::try_from(text.into_bytes())
    }
}

impl fmt::Debug for IString<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IString({:?})", String::from_utf8_lossy(&self.0))
    }
}

/// `nstring = string / nil` — RFC 3501 §9
pub type NString<'a> = Option<IString<'a>>;

/// `text = 1*TEXT-CHAR` — RFC 3501 §9 (UTF-8 allowed as in RFC 9051): human-readable
/// text of a status response. Never contains CR, LF or NUL.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Text<'a>(Cow<'a, str>);

impl Text<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_owned(self) -> Text<'static> {
        Text(Cow::Owned(self.0.into_owned()))
    }
}

fn check_text(bytes: &[u8]) -> Result<(), ValidationError> {
    check_all(bytes, is_text_char)
}

impl<'a> TryFrom<&'a str> for Text<'a> {
    type Error = ValidationError;
    fn try_from(text: &'a str) -> Result<Self, Self::Error> {
        check_text(text.as_bytes())?;
        Ok(Self(Cow::Borrowed(text)))
    }
}

impl TryFrom<String> for Text<'static> {
    type Error = ValidationError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        check_text(text.as_bytes())?;
        Ok(Self(Cow::Owned(text)))
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({:?})", self.0)
    }
}

/// A credential (password, SASL response). `Debug` never shows it, so commands can be
/// logged whole.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself; call sites are easy to audit by this name.
    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_exposed(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// How the client announced a literal — RFC 3501 §4.3, RFC 7888 §3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LiteralMode {
    /// `{n}`: the client waits for a continuation request before sending the octets.
    Sync,
    /// `{n+}` (LITERAL+): the octets follow at once.
    NonSync,
}
