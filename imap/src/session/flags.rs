//! Message flags between the wire (RFC 3501 §2.3.2) and the store.
//!
//! The store keeps system flags as bits and keywords as validated atoms; `\Recent`
//! is never stored (it belongs to a session, RFC 3501 §2.3.2).

use lifeboat_store::{Flags, SystemFlags};

use crate::types::{Atom, Flag, FlagFetch, FlagPerm};

/// Longest keyword accepted, in octets.
pub(crate) const KEYWORD_BYTES_MAX: usize = 128;
/// Most keywords one command may name.
pub(crate) const KEYWORDS_PER_COMMAND_MAX: usize = 64;

const SYSTEM: [(SystemFlags, Flag<'static>); 5] = [
    (SystemFlags::ANSWERED, Flag::Answered),
    (SystemFlags::FLAGGED, Flag::Flagged),
    (SystemFlags::DELETED, Flag::Deleted),
    (SystemFlags::SEEN, Flag::Seen),
    (SystemFlags::DRAFT, Flag::Draft),
];

/// Why flags from the client were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlagError {
    /// A `\`-flag that is not a system flag this server stores (answered BAD).
    UnknownSystemFlag,
    /// A keyword longer than [`KEYWORD_BYTES_MAX`] or too many of them (answered NO).
    TooMany,
}

/// The store's form of flags a client sent. `\Recent` is ignored: a client cannot set
/// it (RFC 3501 §2.3.2).
pub(crate) fn to_store(flags: &[Flag<'_>]) -> Result<Flags, FlagError> {
    let mut out = Flags::default();
    for flag in flags {
        match flag {
            Flag::Keyword(atom) => {
                if atom.as_str().len() > KEYWORD_BYTES_MAX {
                    return Err(FlagError::TooMany);
                }
                out.keywords.push(atom.as_str().to_string());
            }
            Flag::Extension(atom) if atom.eq_ignore_ascii_case("Recent") => {}
            Flag::Extension(_) => return Err(FlagError::UnknownSystemFlag),
            system => {
                if let Some((bit, _)) = SYSTEM.iter().find(|(_, known)| known == system) {
                    out.system = out.system.union(*bit);
                }
            }
        }
    }
    if out.keywords.len() > KEYWORDS_PER_COMMAND_MAX {
        return Err(FlagError::TooMany);
    }
    Ok(out.normalized())
}

/// The flags of a stored message for FETCH FLAGS, `\Recent` added when it is recent
/// for this session.
pub(crate) fn fetch_flags(flags: &Flags, recent: bool) -> Vec<FlagFetch<'static>> {
    let mut out: Vec<FlagFetch<'static>> = SYSTEM
        .iter()
        .filter(|(bit, _)| flags.system.contains(*bit))
        .map(|(_, flag)| FlagFetch::Flag(flag.clone()))
        .collect();
    out.extend(keywords(&flags.keywords).map(FlagFetch::Flag));
    if recent {
        out.push(FlagFetch::Recent);
    }
    out
}

/// Keywords as wire flags; one that is somehow not an atom is left out rather than
/// sent malformed.
fn keywords(keywords: &[String]) -> impl Iterator<Item = Flag<'static>> + '_ {
    keywords
        .iter()
        .filter_map(|keyword| Atom::try_from(keyword.clone()).ok().map(Flag::Keyword))
}

/// The FLAGS response of SELECT: the system flags and the keywords in use.
pub(crate) fn defined_flags(in_use: &[String]) -> Vec<Flag<'static>> {
    let mut out: Vec<Flag<'static>> = SYSTEM.iter().map(|(_, flag)| flag.clone()).collect();
    out.extend(keywords(in_use));
    out
}

/// PERMANENTFLAGS of SELECT: every flag, and `\*` (new keywords may be created).
pub(crate) fn permanent_flags(in_use: &[String]) -> Vec<FlagPerm<'static>> {
    let mut out: Vec<FlagPerm<'static>> = defined_flags(in_use)
        .into_iter()
        .map(FlagPerm::Flag)
        .collect();
    out.push(FlagPerm::Asterisk);
    out
}

/// Whether `flags` holds the keyword (case-insensitive, RFC 3501 §2.3.2).
pub(crate) fn has_keyword(flags: &Flags, keyword: &str) -> bool {
    flags
        .keywords
        .iter()
        .any(|known| known.eq_ignore_ascii_case(keyword))
}
