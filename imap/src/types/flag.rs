//! Message flags (RFC 3501 §2.3.2) and mailbox attributes (RFC 3501 §7.2.2,
//! RFC 5258 §3, RFC 6154 §2).

use super::core::{Atom, ValidationError};

/// `flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword /
/// flag-extension` — RFC 3501 §9
///
/// System flags compare case-insensitively (RFC 3501 §2.3.2), so `\SEEN` parses as
/// [`Flag::Seen`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Flag<'a> {
    Answered,
    Flagged,
    Deleted,
    Seen,
    Draft,
    /// `flag-keyword = atom`
    Keyword(Atom<'a>),
    /// `flag-extension = "\" atom` (the atom without the backslash), e.g. `\Recent`
    /// or a future system flag.
    Extension(Atom<'a>),
}

impl<'a> Flag<'a> {
    /// The flag from its backslash-less system name (`Seen`) or an extension.
    pub(crate) fn system(name: Atom<'a>) -> Self {
        const SYSTEM: [(&str, Flag<'static>); 5] = [
            ("Answered", Flag::Answered),
            ("Flagged", Flag::Flagged),
            ("Deleted", Flag::Deleted),
            ("Seen", Flag::Seen),
            ("Draft", Flag::Draft),
        ];
        for (system_name, flag) in SYSTEM {
            if name.eq_ignore_ascii_case(system_name) {
                return flag;
            }
        }
        Self::Extension(name)
    }

    /// The wire form: `\Seen`, `$Forwarded`, ...
    pub fn to_wire(&self) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match self {
            Self::Answered => Cow::Borrowed("\\Answered"),
            Self::Flagged => Cow::Borrowed("\\Flagged"),
            Self::Deleted => Cow::Borrowed("\\Deleted"),
            Self::Seen => Cow::Borrowed("\\Seen"),
            Self::Draft => Cow::Borrowed("\\Draft"),
            Self::Keyword(atom) => Cow::Borrowed(atom.as_str()),
            Self::Extension(atom) => Cow::Owned(format!("\\{}", atom.as_str())),
        }
    }

    pub fn into_owned(self) -> Flag<'static> {
        match self {
            Self::Answered => Flag::Answered,
            Self::Flagged => Flag::Flagged,
            Self::Deleted => Flag::Deleted,
            Self::Seen => Flag::Seen,
            Self::Draft => Flag::Draft,
            Self::Keyword(atom) => Flag::Keyword(atom.into_owned()),
            Self::Extension(atom) => Flag::Extension(atom.into_owned()),
        }
    }
}

impl<'a> TryFrom<&'a str> for Flag<'a> {
    type Error = ValidationError;
    /// `\Seen` → [`Flag::Seen`], `$Junk` → keyword, `\Other` → extension.
    fn try_from(text: &'a str) -> Result<Self, Self::Error> {
        match text.strip_prefix('\\') {
            Some(name) => Ok(Self::system(Atom::try_from(name)?)),
            None => Ok(Self::Keyword(Atom::try_from(text)?)),
        }
    }
}

/// `flag-fetch = flag / "\Recent"` — RFC 3501 §9
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FlagFetch<'a> {
    Flag(Flag<'a>),
    Recent,
}

/// `flag-perm = flag / "\*"` — RFC 3501 §9
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FlagPerm<'a> {
    Flag(Flag<'a>),
    /// `\*`: the client may create new keywords.
    Asterisk,
}

/// `mbx-list-flags` — RFC 3501 §9, with RFC 5258 §3 (`\NonExistent`, `\Subscribed`,
/// `\Remote`, `\HasChildren`, `\HasNoChildren`) and RFC 6154 §2 special-use attributes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListAttribute<'a> {
    NoInferiors,
    NoSelect,
    Marked,
    Unmarked,
    NonExistent,
    Subscribed,
    Remote,
    HasChildren,
    HasNoChildren,
    /// RFC 6154 §2
    All,
    Archive,
    Drafts,
    Flagged,
    Junk,
    Sent,
    Trash,
    /// `"\" atom` not listed above (the atom without the backslash).
    Extension(Atom<'a>),
}

impl ListAttribute<'_> {
    /// The wire form, with its backslash.
    pub fn to_wire(&self) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        Cow::Borrowed(match self {
            Self::NoInferiors => "\\Noinferiors",
            Self::NoSelect => "\\Noselect",
            Self::Marked => "\\Marked",
            Self::Unmarked => "\\Unmarked",
            Self::NonExistent => "\\NonExistent",
            Self::Subscribed => "\\Subscribed",
            Self::Remote => "\\Remote",
            Self::HasChildren => "\\HasChildren",
            Self::HasNoChildren => "\\HasNoChildren",
            Self::All => "\\All",
            Self::Archive => "\\Archive",
            Self::Drafts => "\\Drafts",
            Self::Flagged => "\\Flagged",
            Self::Junk => "\\Junk",
            Self::Sent => "\\Sent",
            Self::Trash => "\\Trash",
            Self::Extension(atom) => return Cow::Owned(format!("\\{}", atom.as_str())),
        })
    }
}
