//! Capability names — RFC 3501 §7.2.1 and the RFCs of each extension.

use super::core::Atom;

/// `capability = ("AUTH=" auth-type) / atom` — RFC 3501 §9
///
/// The names this server knows are variants, so code matches on them; parsing maps
/// their spellings case-insensitively, everything else is [`Capability::Other`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability<'a> {
    Imap4Rev1,
    StartTls,
    LoginDisabled,
    /// `AUTH=` mechanism — RFC 3501 §6.2.2
    Auth(Atom<'a>),
    /// RFC 4959
    SaslIr,
    /// RFC 2177
    Idle,
    /// RFC 4315
    UidPlus,
    /// RFC 6851
    Move,
    /// RFC 7888
    LiteralPlus,
    LiteralMinus,
    /// RFC 5161
    Enable,
    /// RFC 2342
    Namespace,
    /// RFC 6154
    SpecialUse,
    /// RFC 2971
    Id,
    /// RFC 3691
    Unselect,
    /// RFC 7162
    CondStore,
    /// RFC 4731
    ESearch,
    /// RFC 5258
    ListExtended,
    /// RFC 5819
    ListStatus,
    /// RFC 9051
    Imap4Rev2,
    /// RFC 7162 §3.2
    QResync,
    /// RFC 3516
    Binary,
    /// RFC 5182
    SearchRes,
    /// RFC 8438
    StatusSize,
    /// RFC 6855
    Utf8Accept,
    /// RFC 4978
    CompressDeflate,
    Other(Atom<'a>),
}

const KNOWN: [(&str, Capability<'static>); 25] = [
    ("IMAP4rev1", Capability::Imap4Rev1),
    ("STARTTLS", Capability::StartTls),
    ("LOGINDISABLED", Capability::LoginDisabled),
    ("SASL-IR", Capability::SaslIr),
    ("IDLE", Capability::Idle),
    ("UIDPLUS", Capability::UidPlus),
    ("MOVE", Capability::Move),
    ("LITERAL+", Capability::LiteralPlus),
    ("LITERAL-", Capability::LiteralMinus),
    ("ENABLE", Capability::Enable),
    ("NAMESPACE", Capability::Namespace),
    ("SPECIAL-USE", Capability::SpecialUse),
    ("ID", Capability::Id),
    ("UNSELECT", Capability::Unselect),
    ("CONDSTORE", Capability::CondStore),
    ("ESEARCH", Capability::ESearch),
    ("LIST-EXTENDED", Capability::ListExtended),
    ("LIST-STATUS", Capability::ListStatus),
    ("IMAP4rev2", Capability::Imap4Rev2),
    ("QRESYNC", Capability::QResync),
    ("BINARY", Capability::Binary),
    ("SEARCHRES", Capability::SearchRes),
    ("STATUS=SIZE", Capability::StatusSize),
    ("UTF8=ACCEPT", Capability::Utf8Accept),
    ("COMPRESS=DEFLATE", Capability::CompressDeflate),
];

impl<'a> Capability<'a> {
    /// The capability an atom names (`AUTH=PLAIN`, `condstore`, ...).
    pub fn from_atom(atom: Atom<'a>) -> Self {
        for (name, capability) in KNOWN {
            if atom.eq_ignore_ascii_case(name) {
                return capability;
            }
        }
        let text = atom.as_str();
        if text.len() > 5 && text[..5].eq_ignore_ascii_case("AUTH=") {
            if let Ok(mechanism) = Atom::try_from(text[5..].to_owned()) {
                return Self::Auth(mechanism);
            }
        }
        Self::Other(atom)
    }

    /// The wire name.
    pub fn to_wire(&self) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match self {
            Self::Auth(mechanism) => Cow::Owned(format!("AUTH={}", mechanism.as_str())),
            Self::Other(atom) => Cow::Borrowed(atom.as_str()),
            known => Cow::Borrowed(
                KNOWN
                    .iter()
                    .find(|(_, capability)| capability == known)
                    .map_or("IMAP4rev1", |(name, _)| name),
            ),
        }
    }
}
