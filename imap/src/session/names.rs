//! Mailbox names between the wire and the store, and LIST patterns — RFC 3501 §5.1,
//! §6.3.8.
//!
//! The store names folders in UTF-8 with `/` as the hierarchy delimiter; the wire
//! carries modified UTF-7 (RFC 3501 §5.1.3), or UTF-8 once the client enabled
//! UTF8=ACCEPT (RFC 6855 §3) or IMAP4rev2 (RFC 9051 §5.1). Patterns are matched
//! against wire names, where the client wrote them.

use crate::types::{Mailbox, MAILBOX_NAME_BYTES_MAX};

/// The hierarchy delimiter (the store's).
pub(crate) const DELIMITER: char = '/';

/// Deepest hierarchy a new mailbox name may have.
pub(crate) const NAME_LEVELS_MAX: usize = 16;

/// Why a mailbox name cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameError {
    /// Not valid modified UTF-7.
    Encoding,
    /// Empty, an empty level (`a//b`), a wildcard, a control character, or too deep.
    Invalid,
}

/// The store's name for a mailbox the client named (in UTF-8 when `utf8`, else in
/// modified UTF-7). INBOX is case-insensitive, also as the first level of a longer
/// name; a trailing delimiter is dropped (RFC 3501 §6.3.3: `CREATE foo/` creates
/// `foo`).
pub(crate) fn to_store(mailbox: &Mailbox<'_>, utf8: bool) -> Result<String, NameError> {
    let mut name = if utf8 {
        String::from_utf8(mailbox.as_bytes().to_vec()).map_err(|_| NameError::Encoding)?
    } else {
        mailbox.to_utf8().map_err(|_| NameError::Encoding)?
    };
    if name.len() > 1 && name.ends_with(DELIMITER) {
        name.pop();
    }
    if name
        .get(..5)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("INBOX"))
    {
        // The first five bytes are ASCII, so byte 5 is a character boundary.
        let rest = &name[5..];
        if rest.is_empty() || rest.starts_with(DELIMITER) {
            name = format!("INBOX{rest}");
        }
    }
    if name.is_empty() {
        return Err(NameError::Invalid);
    }
    Ok(name)
}

/// Checks a name that is about to be created: no empty level, no wildcard, no
/// control character, at most [`NAME_LEVELS_MAX`] levels.
pub(crate) fn check_new(name: &str) -> Result<(), NameError> {
    let levels = name.split(DELIMITER);
    let mut count = 0;
    for level in levels {
        count += 1;
        if level.is_empty() || level.contains(['*', '%']) || level.chars().any(char::is_control) {
            return Err(NameError::Invalid);
        }
    }
    if count > NAME_LEVELS_MAX || Mailbox::from_utf8(name).is_err() {
        return Err(NameError::Invalid);
    }
    Ok(())
}

/// Every proper ancestor of a name: `a/b/c` → `a`, `a/b`.
pub(crate) fn ancestors(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(DELIMITER)
        .map(move |(position, _)| &name[..position])
}

/// The wire form of a store name: modified UTF-7, or UTF-8 when `utf8`. Names the
/// store holds are valid UTF-8 without NUL, CR or LF, short enough, so encoding
/// cannot fail; should one be over-long anyway, the fallback is the inbox rather
/// than a panic.
pub(crate) fn to_wire(name: &str, utf8: bool) -> Mailbox<'static> {
    if utf8 {
        Mailbox::try_from(name.as_bytes().to_vec()).unwrap_or(Mailbox::Inbox)
    } else {
        Mailbox::from_utf8(name).unwrap_or(Mailbox::Inbox)
    }
}

/// A LIST pattern: reference and mailbox argument joined (RFC 3501 §6.3.8), with a
/// leading `INBOX` made upper-case so that it matches the inbox in any case.
pub(crate) fn pattern(reference: &[u8], mailbox: &[u8]) -> Vec<u8> {
    let mut pattern = Vec::with_capacity(reference.len() + mailbox.len());
    if mailbox.first() == Some(&(DELIMITER as u8)) || reference.is_empty() {
        // RFC 3501 §6.3.8: a mailbox argument starting with the delimiter is
        // absolute; the reference is ignored.
        pattern.extend_from_slice(mailbox);
    } else {
        pattern.extend_from_slice(reference);
        pattern.extend_from_slice(mailbox);
    }
    if pattern.len() >= 5
        && pattern[..5].eq_ignore_ascii_case(b"INBOX")
        && matches!(pattern.get(5), None | Some(b'/' | b'*' | b'%'))
    {
        pattern[..5].copy_from_slice(b"INBOX");
    }
    pattern.truncate(2 * MAILBOX_NAME_BYTES_MAX);
    pattern
}

/// Whether a wire name matches a pattern: `*` matches anything, `%` anything but the
/// delimiter (RFC 3501 §6.3.8). Dynamic programming over one row, so the time is
/// bounded by the product of the lengths (both bounded) however many wildcards.
pub(crate) fn matches(pattern: &[u8], name: &[u8]) -> bool {
    // reachable[j]: the pattern prefix read so far matches name[..j].
    let mut reachable = vec![false; name.len() + 1];
    reachable[0] = true;
    for &symbol in pattern {
        match symbol {
            b'*' => {
                for j in 1..=name.len() {
                    reachable[j] = reachable[j] || reachable[j - 1];
                }
            }
            b'%' => {
                for j in 1..=name.len() {
                    reachable[j] =
                        reachable[j] || (reachable[j - 1] && name[j - 1] != DELIMITER as u8);
                }
            }
            literal => {
                for j in (1..=name.len()).rev() {
                    reachable[j] = reachable[j - 1] && name[j - 1] == literal;
                }
                reachable[0] = false;
            }
        }
    }
    reachable[name.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(matches(b"*", b"a/b/c"));
        assert!(matches(b"%", b"abc"));
        assert!(!matches(b"%", b"a/b"));
        assert!(matches(b"a/%", b"a/b"));
        assert!(!matches(b"a/%", b"a/b/c"));
        assert!(matches(b"a*c", b"a/b/c"));
        assert!(matches(b"INBOX", b"INBOX"));
        assert!(!matches(b"INBOX", b"INBOX/x"));
        assert!(matches(b"", b""));
        assert!(!matches(b"", b"a"));
        assert!(matches(b"%%%*%", b"x"));
    }

    #[test]
    fn patterns() {
        assert_eq!(pattern(b"", b"inbox"), b"INBOX");
        assert_eq!(pattern(b"", b"inbox*"), b"INBOX*");
        assert_eq!(pattern(b"", b"inboxes"), b"inboxes");
        assert_eq!(pattern(b"a/", b"%"), b"a/%");
        assert_eq!(pattern(b"a/", b"/x"), b"/x");
    }

    #[test]
    fn store_names() {
        let name = |text: &str| to_store(&Mailbox::try_from(text).unwrap(), false);
        let utf8 = |text: &str| to_store(&Mailbox::try_from(text).unwrap(), true);
        assert_eq!(utf8("Entwürfe"), Ok("Entwürfe".to_string()));
        assert_eq!(utf8("A&B"), Ok("A&B".to_string()));
        assert_eq!(to_wire("Entwürfe", true).as_bytes(), "Entwürfe".as_bytes());
        assert_eq!(to_wire("Entwürfe", false).as_bytes(), b"Entw&APw-rfe");
        assert_eq!(name("inbox"), Ok("INBOX".to_string()));
        assert_eq!(name("Inbox/Sub"), Ok("INBOX/Sub".to_string()));
        assert_eq!(name("Inboxes"), Ok("Inboxes".to_string()));
        assert_eq!(name("a/b/"), Ok("a/b".to_string()));
        assert_eq!(name("Entw&APw-rfe"), Ok("Entwürfe".to_string()));
        assert_eq!(name("Inb&APw-x"), Ok("Inbüx".to_string()));
        assert_eq!(name("&AGE-"), Err(NameError::Encoding));
        assert!(check_new("a//b").is_err());
        assert!(check_new("/a").is_err());
        assert!(check_new("a*").is_err());
        assert!(check_new("a/b").is_ok());
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), vec!["a", "a/b"]);
    }
}
