//! SEARCH keys — RFC 3501 §6.4.4 and §9, RFC 7162 §3.1.5, RFC 4731 §3.1.
//!
//! Invariant: recursion (`NOT`, `OR`, parentheses) is bounded by the explicit `depth`
//! argument, which starts at `nesting_max` and fails with
//! [`Reason::NestingTooDeep`] at zero, so no input can exhaust the stack.

use super::core::{
    astring, atom, date, mod_sequence_valzer, name, number, parenthesized_list, peek_byte, quoted,
    sequence_set_or_saved, sp,
};
use super::error::{failure, syntax, PResult};
use super::Reason;
use crate::types::{EntryType, ModSeqEntry, SearchKey, SearchReturnOption};

/// `search-key` — RFC 3501 §9 (with `search-modsequence` of RFC 7162 §7).
pub(crate) fn search_key(input: &[u8], depth: usize) -> PResult<'_, SearchKey<'_>> {
    if depth == 0 {
        return failure(Reason::NestingTooDeep);
    }
    let (_, first) = peek_byte(input)?;
    if first == b'(' {
        let (rest, keys) = parenthesized_list(input, false, |input| search_key(input, depth - 1))?;
        return Ok((rest, SearchKey::And(keys)));
    }
    if first == b'*' || first == b'$' || first.is_ascii_digit() {
        let (rest, set) = sequence_set_or_saved(input)?;
        return Ok((rest, SearchKey::SequenceSet(set)));
    }
    let (rest, word) = name(input)?;
    let mut upper = [0u8; 16];
    if word.len() > upper.len() {
        return syntax();
    }
    for (target, byte) in upper.iter_mut().zip(word) {
        *target = byte.to_ascii_uppercase();
    }
    let word = &upper[..word.len()];

    macro_rules! with_string {
        ($variant:ident) => {{
            let (rest, ()) = sp(rest)?;
            let (rest, value) = astring(rest)?;
            Ok((rest, SearchKey::$variant(value)))
        }};
    }
    macro_rules! with_date {
        ($variant:ident) => {{
            let (rest, ()) = sp(rest)?;
            let (rest, value) = date(rest)?;
            Ok((rest, SearchKey::$variant(value)))
        }};
    }

    match word {
        b"ALL" => Ok((rest, SearchKey::All)),
        b"ANSWERED" => Ok((rest, SearchKey::Answered)),
        b"BCC" => with_string!(Bcc),
        b"BEFORE" => with_date!(Before),
        b"BODY" => with_string!(Body),
        b"CC" => with_string!(Cc),
        b"DELETED" => Ok((rest, SearchKey::Deleted)),
        b"DRAFT" => Ok((rest, SearchKey::Draft)),
        b"FLAGGED" => Ok((rest, SearchKey::Flagged)),
        b"FROM" => with_string!(From),
        b"HEADER" => {
            let (rest, ()) = sp(rest)?;
            let (rest, field) = astring(rest)?;
            let (rest, ()) = sp(rest)?;
            let (rest, value) = astring(rest)?;
            Ok((rest, SearchKey::Header(field, value)))
        }
        b"KEYWORD" => {
            let (rest, ()) = sp(rest)?;
            let (rest, keyword) = atom(rest)?;
            Ok((rest, SearchKey::Keyword(keyword)))
        }
        b"LARGER" => {
            let (rest, ()) = sp(rest)?;
            let (rest, size) = number(rest)?;
            Ok((rest, SearchKey::Larger(size)))
        }
        b"MODSEQ" => search_modsequence(rest),
        b"NEW" => Ok((rest, SearchKey::New)),
        b"NOT" => {
            let (rest, ()) = sp(rest)?;
            let (rest, key) = search_key(rest, depth - 1)?;
            Ok((rest, SearchKey::Not(Box::new(key))))
        }
        b"OLD" => Ok((rest, SearchKey::Old)),
        b"ON" => with_date!(On),
        b"OR" => {
            let (rest, ()) = sp(rest)?;
            let (rest, left) = search_key(rest, depth - 1)?;
            let (rest, ()) = sp(rest)?;
            let (rest, right) = search_key(rest, depth - 1)?;
            Ok((rest, SearchKey::Or(Box::new(left), Box::new(right))))
        }
        b"RECENT" => Ok((rest, SearchKey::Recent)),
        b"SEEN" => Ok((rest, SearchKey::Seen)),
        b"SENTBEFORE" => with_date!(SentBefore),
        b"SENTON" => with_date!(SentOn),
        b"SENTSINCE" => with_date!(SentSince),
        b"SINCE" => with_date!(Since),
        b"SMALLER" => {
            let (rest, ()) = sp(rest)?;
            let (rest, size) = number(rest)?;
            Ok((rest, SearchKey::Smaller(size)))
        }
        b"SUBJECT" => with_string!(Subject),
        b"TEXT" => with_string!(Text),
        b"TO" => with_string!(To),
        b"UID" => {
            let (rest, ()) = sp(rest)?;
            let (rest, set) = sequence_set_or_saved(rest)?;
            Ok((rest, SearchKey::Uid(set)))
        }
        b"UNANSWERED" => Ok((rest, SearchKey::Unanswered)),
        b"UNDELETED" => Ok((rest, SearchKey::Undeleted)),
        b"UNDRAFT" => Ok((rest, SearchKey::Undraft)),
        b"UNFLAGGED" => Ok((rest, SearchKey::Unflagged)),
        b"UNKEYWORD" => {
            let (rest, ()) = sp(rest)?;
            let (rest, keyword) = atom(rest)?;
            Ok((rest, SearchKey::Unkeyword(keyword)))
        }
        b"UNSEEN" => Ok((rest, SearchKey::Unseen)),
        _ => syntax(),
    }
}

/// `search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer`,
/// `search-modseq-ext = SP entry-name SP entry-type-req` — RFC 7162 §7
fn search_modsequence(input: &[u8]) -> PResult<'_, SearchKey<'_>> {
    let (rest, ()) = sp(input)?;
    let (_, first) = peek_byte(rest)?;
    let (rest, entry) = if first == b'"' {
        let (rest, entry) = entry_name(rest)?;
        let (rest, ()) = sp(rest)?;
        let (rest, kind) = name(rest)?;
        let entry_type = if kind.eq_ignore_ascii_case(b"priv") {
            EntryType::Private
        } else if kind.eq_ignore_ascii_case(b"shared") {
            EntryType::Shared
        } else if kind.eq_ignore_ascii_case(b"all") {
            EntryType::All
        } else {
            return syntax();
        };
        let (rest, ()) = sp(rest)?;
        (
            rest,
            Some(ModSeqEntry {
                flag: entry,
                entry_type,
            }),
        )
    } else {
        (rest, None)
    };
    let (rest, modseq) = mod_sequence_valzer(rest)?;
    Ok((rest, SearchKey::ModSeq { entry, modseq }))
}

/// `entry-flag-name = DQUOTE "/flags/" attr-flag DQUOTE` — RFC 7162 §7
fn entry_name(input: &[u8]) -> PResult<'_, crate::types::Flag<'_>> {
    let (rest, content) = quoted(input)?;
    const PREFIX: &[u8] = b"/flags/";
    if content.len() <= PREFIX.len() || !content[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
        return syntax();
    }
    // The flag is the whole rest of the quoted string, so it is checked as a
    // complete value rather than with the streaming `flag` rule.
    let parsed = std::str::from_utf8(&content[PREFIX.len()..])
        .ok()
        .and_then(|text| {
            crate::types::Flag::try_from(text)
                .ok()
                .map(|flag| flag.into_owned())
        });
    match parsed {
        Some(parsed) => Ok((rest, parsed)),
        None => syntax(),
    }
}

/// `search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP
/// search-return-opt)] ")"` — RFC 4731 §3.1 (after `RETURN SP`).
pub(crate) fn search_return_options(input: &[u8]) -> PResult<'_, Vec<SearchReturnOption>> {
    parenthesized_list(input, true, |input| {
        let (rest, word) = name(input)?;
        let option = if word.eq_ignore_ascii_case(b"MIN") {
            SearchReturnOption::Min
        } else if word.eq_ignore_ascii_case(b"MAX") {
            SearchReturnOption::Max
        } else if word.eq_ignore_ascii_case(b"ALL") {
            SearchReturnOption::All
        } else if word.eq_ignore_ascii_case(b"COUNT") {
            SearchReturnOption::Count
        } else if word.eq_ignore_ascii_case(b"SAVE") {
            SearchReturnOption::Save
        } else {
            return syntax();
        };
        Ok((rest, option))
    })
}
