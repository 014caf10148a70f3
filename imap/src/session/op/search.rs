//! SEARCH and UID SEARCH — RFC 3501 §6.4.4 — with ESEARCH results (RFC 4731), the
//! MODSEQ key (RFC 7162 §3.1.5), saved results (RFC 5182: `RETURN (SAVE)` and `$`),
//! and IMAP4rev2's ESEARCH-only answers (RFC 9051 §7.3.4).
//!
//! In an archive month (`session/archive.rs`) `TEXT` and `BODY` are answered by the
//! archive's full-text index, as the archive API answers them: every word of the
//! string must begin a word of the message.
//!
//! Every key is supported. Strings match as case-insensitive substrings of the
//! header values (raw and RFC 2047-decoded) or of the body text (the decoded text
//! parts, and the raw body for anything not decoded). Only UTF-8 and US-ASCII are
//! accepted as CHARSET (`NO [BADCHARSET]` otherwise, RFC 3501 §6.4.4). Dates compare
//! by day: the internal date in UTC, the Date header as written.

use std::collections::{HashMap, HashSet};
use std::num::{NonZeroU32, NonZeroU64};

use lifeboat_store::{Message, SystemFlags, UnixTime};

use super::super::archive;
use super::super::flags::has_keyword;
use super::super::view::{Current, MailboxView};
use super::super::{pace, Core, Disconnected, Output, Reply, Updates};
use crate::mime::Parsed;
use crate::types::{
    Code, Data, Date, ESearchItem, IString, Response, SearchKey, SearchReturnOption, SequenceSet,
    Tag,
};

/// Deepest key nesting evaluated; the parser already bounds it by `nesting_max`, this
/// keeps the evaluator's recursion bounded on its own terms.
const KEY_DEPTH_MAX: usize = 64;
const SECONDS_PER_DAY: i64 = 86_400;

/// What the keys need beyond metadata.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Needs {
    headers: bool,
    body: bool,
    modseq: bool,
}

fn needs(key: &SearchKey<'_>, needs: &mut Needs, depth: usize) {
    if depth == 0 {
        return;
    }
    match key {
        SearchKey::Bcc(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::Subject(_)
        | SearchKey::To(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => needs.headers = true,
        SearchKey::Body(_) | SearchKey::Text(_) => needs.body = true,
        SearchKey::ModSeq { .. } => needs.modseq = true,
        SearchKey::Not(inner) => self::needs(inner, needs, depth - 1),
        SearchKey::Or(left, right) => {
            self::needs(left, needs, depth - 1);
            self::needs(right, needs, depth - 1);
        }
        SearchKey::And(keys) => keys
            .iter()
            .for_each(|key| self::needs(key, needs, depth - 1)),
        _ => {}
    }
}

/// A message being tested.
struct Candidate<'c> {
    index: usize,
    uid: u32,
    message: &'c Message,
    recent: bool,
    parsed: Option<&'c Parsed<'c>>,
}

/// What sequence sets resolve against.
struct Bounds<'b> {
    count: u32,
    largest_uid: u32,
    /// The UIDs `$` stands for (RFC 5182).
    saved: &'b HashSet<u32>,
    /// In an archive month: the UIDs the full-text index finds for each `TEXT` or
    /// `BODY` string.
    text_hits: Option<&'b HashMap<Vec<u8>, HashSet<u32>>>,
}

/// Whether the keys use `$`.
fn uses_saved(key: &SearchKey<'_>, depth: usize) -> bool {
    if depth == 0 {
        return false;
    }
    match key {
        SearchKey::SequenceSet(set) | SearchKey::Uid(set) => set.is_saved(),
        SearchKey::Not(inner) => uses_saved(inner, depth - 1),
        SearchKey::Or(left, right) => uses_saved(left, depth - 1) || uses_saved(right, depth - 1),
        SearchKey::And(keys) => keys.iter().any(|key| uses_saved(key, depth - 1)),
        _ => false,
    }
}

/// The strings of the `TEXT` and `BODY` keys.
fn text_strings(key: &SearchKey<'_>, strings: &mut Vec<Vec<u8>>, depth: usize) {
    if depth == 0 {
        return;
    }
    match key {
        SearchKey::Text(needle) | SearchKey::Body(needle) => {
            strings.push(needle.as_bytes().to_vec());
        }
        SearchKey::Not(inner) => text_strings(inner, strings, depth - 1),
        SearchKey::Or(left, right) => {
            text_strings(left, strings, depth - 1);
            text_strings(right, strings, depth - 1);
        }
        SearchKey::And(keys) => keys
            .iter()
            .for_each(|key| text_strings(key, strings, depth - 1)),
        _ => {}
    }
}

pub(crate) async fn run(
    core: &mut Core,
    tag: &Tag<'_>,
    uid: bool,
    returns: Option<Vec<SearchReturnOption>>,
    charset: Option<IString<'_>>,
    criteria: &[SearchKey<'_>],
    out: &mut dyn Output,
) -> Result<Reply, Disconnected> {
    let updates = if uid {
        Updates::All
    } else {
        Updates::NoExpunge
    };
    if let Some(charset) = &charset {
        let name = charset.as_bytes();
        if !name.eq_ignore_ascii_case(b"UTF-8") && !name.eq_ignore_ascii_case(b"US-ASCII") {
            let supported = ["UTF-8", "US-ASCII"]
                .iter()
                .filter_map(|name| IString::try_from(*name).ok())
                .collect();
            return Ok(
                Reply::no(Some(Code::BadCharset(supported)), "Unsupported charset")
                    .with_updates(updates),
            );
        }
    }
    let mut wanted = Needs::default();
    for key in criteria {
        needs(key, &mut wanted, KEY_DEPTH_MAX);
    }
    if wanted.modseq {
        core.condstore = true;
    }
    let saving = returns
        .as_ref()
        .is_some_and(|options| options.contains(&SearchReturnOption::Save));
    let store = core.store.clone();
    let index = core.config.archive_index.clone();
    let view = &mut core.selected().view;
    if criteria.iter().any(|key| uses_saved(key, KEY_DEPTH_MAX)) && view.saved.is_none() {
        return Ok(Reply::no(Some(Code::NotSaved), "No search result saved").with_updates(updates));
    }
    // RFC 5182 §2.1: a SEARCH with SAVE that fails leaves nothing saved.
    if saving {
        view.saved = None;
    }
    let saved: HashSet<u32> = view.saved.iter().flatten().copied().collect();
    let all: Vec<usize> = (0..view.len()).collect();
    // Messages expunged by others but not yet reported are not searched.
    let mut messages = view.current(&store, &all);
    messages.retain(|current| !current.expunged);
    let text_hits = view.archive_month().map(|(month, account)| {
        let mut strings = Vec::new();
        for key in criteria {
            text_strings(key, &mut strings, KEY_DEPTH_MAX);
        }
        strings
            .into_iter()
            .map(|needle| {
                let text = String::from_utf8_lossy(&needle).into_owned();
                let hits = archive::text_matches(
                    &store,
                    index.as_deref(),
                    account,
                    month,
                    &text,
                    view.len(),
                );
                (needle, hits)
            })
            .collect::<HashMap<Vec<u8>, HashSet<u32>>>()
    });
    if text_hits.is_some() {
        // The index answers the text keys; only header keys need the message.
        wanted.body = false;
    }
    let bounds = Bounds {
        count: u32::try_from(view.len()).unwrap_or(u32::MAX),
        largest_uid: view.len().checked_sub(1).map_or(0, |last| view.uid(last)),
        saved: &saved,
        text_hits: text_hits.as_ref(),
    };
    // (number, uid, modseq) of each match, ascending.
    let mut matched: Vec<(u32, u32, u64)> = Vec::new();
    for (handled, current) in messages.iter().enumerate() {
        if matches(view, current, criteria, &wanted, &store, &bounds) {
            let number = if uid {
                current.uid
            } else {
                MailboxView::sequence_number(current.index).get()
            };
            matched.push((number, current.uid, current.message.modseq));
        }
        pace(out, handled + 1).await?;
    }
    let numbers: Vec<u32> = matched.iter().map(|(number, _, _)| *number).collect();
    let options = returns.clone().unwrap_or_default();
    let only_extremes = returns.is_some()
        && !options.is_empty()
        && options.iter().all(|option| {
            matches!(
                option,
                SearchReturnOption::Min | SearchReturnOption::Max | SearchReturnOption::Save
            )
        })
        && options
            .iter()
            .any(|option| matches!(option, SearchReturnOption::Min | SearchReturnOption::Max));
    // RFC 7162 §3.1.5 with RFC 4731: with RETURN (MIN) or (MAX) alone, the MODSEQ is
    // that of the message(s) returned; otherwise the highest of all matches.
    let returned: Vec<&(u32, u32, u64)> = if only_extremes {
        let mut returned = Vec::new();
        if options.contains(&SearchReturnOption::Min) {
            returned.extend(matched.first());
        }
        if options.contains(&SearchReturnOption::Max) {
            returned.extend(matched.last());
        }
        returned
    } else {
        matched.iter().collect()
    };
    let modseq = if wanted.modseq {
        returned
            .iter()
            .map(|(_, _, modseq)| *modseq)
            .max()
            .and_then(NonZeroU64::new)
    } else {
        None
    };
    if saving {
        // RFC 5182 §2.4: with MIN and/or MAX (and not ALL or COUNT), only those.
        view.saved = Some(returned.iter().map(|(_, uid, _)| *uid).collect());
    }
    let rev2 = core.rev2;
    match returns {
        None if !rev2 => Response::Data(Data::Search {
            numbers: numbers
                .iter()
                .filter_map(|&number| NonZeroU32::new(number))
                .collect(),
            modseq,
        })
        .encode(out.buffer()),
        // RFC 5182 §2.4: SAVE alone asks for no ESEARCH response.
        Some(options) if options == [SearchReturnOption::Save] => {}
        // RFC 9051 §6.4.4: IMAP4rev2 answers every SEARCH with ESEARCH.
        returns => {
            let options = returns.unwrap_or_default();
            Response::Data(Data::ESearch {
                tag: Some(tag.clone()),
                uid,
                items: esearch_items(&numbers, &options, modseq),
            })
            .encode(out.buffer());
        }
    }
    Ok(Reply::ok("SEARCH completed").with_updates(updates))
}

/// RFC 4731 §3.1: `RETURN ()` means ALL; MIN, MAX and ALL are left out when nothing
/// matched.
fn esearch_items(
    numbers: &[u32],
    options: &[SearchReturnOption],
    modseq: Option<NonZeroU64>,
) -> Vec<ESearchItem> {
    let all = [SearchReturnOption::All];
    let options = if options
        .iter()
        .all(|option| *option == SearchReturnOption::Save)
    {
        &all[..]
    } else {
        options
    };
    let mut items = Vec::new();
    for option in options {
        match option {
            SearchReturnOption::Min => {
                if let Some(min) = numbers.iter().min().copied().and_then(NonZeroU32::new) {
                    items.push(ESearchItem::Min(min));
                }
            }
            SearchReturnOption::Max => {
                if let Some(max) = numbers.iter().max().copied().and_then(NonZeroU32::new) {
                    items.push(ESearchItem::Max(max));
                }
            }
            SearchReturnOption::All => {
                if let Some(set) = SequenceSet::from_values(numbers) {
                    items.push(ESearchItem::All(set));
                }
            }
            SearchReturnOption::Count => {
                items.push(ESearchItem::Count(
                    u32::try_from(numbers.len()).unwrap_or(u32::MAX),
                ));
            }
            SearchReturnOption::Save => {}
        }
    }
    if let Some(modseq) = modseq {
        if !numbers.is_empty() {
            items.push(ESearchItem::ModSeq(modseq));
        }
    }
    items
}

/// Whether a message matches every key.
fn matches(
    view: &MailboxView,
    current: &Current,
    criteria: &[SearchKey<'_>],
    wanted: &Needs,
    store: &lifeboat_store::Store,
    bounds: &Bounds,
) -> bool {
    let bytes = if wanted.headers || wanted.body {
        match current.bytes(store) {
            Ok(bytes) => Some(bytes),
            // Expunged since the view was read: it matches nothing.
            Err(_) => return false,
        }
    } else {
        None
    };
    let raw: &[u8] = bytes.as_deref().unwrap_or_default();
    let parsed = if wanted.body {
        Some(Parsed::full(raw))
    } else if wanted.headers {
        Some(Parsed::headers_only(raw))
    } else {
        None
    };
    let candidate = Candidate {
        index: current.index,
        uid: current.uid,
        message: &current.message,
        recent: view.is_recent(current.index),
        parsed: parsed.as_ref(),
    };
    criteria
        .iter()
        .all(|key| evaluate(key, &candidate, bounds, KEY_DEPTH_MAX))
}

fn day_of(time: UnixTime) -> i64 {
    time.div_euclid(SECONDS_PER_DAY)
}

/// The day the message was sent by its Date header, else its internal date.
fn sent_day(candidate: &Candidate<'_>) -> i64 {
    candidate
        .parsed
        .and_then(Parsed::sent_date)
        .and_then(|(year, month, day)| Date::new(year, month, day).ok())
        .map_or_else(
            || day_of(candidate.message.internal_date),
            Date::days_since_epoch,
        )
}

fn lowercase(needle: &IString<'_>) -> String {
    String::from_utf8_lossy(needle.as_bytes()).to_lowercase()
}

/// Whether a header field called `name` contains `needle`; an empty needle asks only
/// that the field exists (RFC 3501 §6.4.4 HEADER).
fn header_contains(candidate: &Candidate<'_>, name: &str, needle: &IString<'_>) -> bool {
    let Some(parsed) = candidate.parsed else {
        return false;
    };
    let values = parsed.header_values(name);
    let needle = lowercase(needle);
    if needle.is_empty() {
        return !values.is_empty();
    }
    values
        .iter()
        .any(|value| value.to_lowercase().contains(&needle))
}

fn body_contains(candidate: &Candidate<'_>, needle: &IString<'_>, with_header: bool) -> bool {
    let Some(parsed) = candidate.parsed else {
        return false;
    };
    let needle = lowercase(needle);
    if with_header && parsed.header_text().to_lowercase().contains(&needle) {
        return true;
    }
    parsed
        .body_texts()
        .iter()
        .any(|text| text.to_lowercase().contains(&needle))
}

fn evaluate(key: &SearchKey<'_>, candidate: &Candidate<'_>, bounds: &Bounds, depth: usize) -> bool {
    if depth == 0 {
        return false;
    }
    let message = candidate.message;
    let system = message.flags.system;
    let internal_day = day_of(message.internal_date);
    match key {
        SearchKey::All => true,
        SearchKey::Answered => system.contains(SystemFlags::ANSWERED),
        SearchKey::Deleted => system.contains(SystemFlags::DELETED),
        SearchKey::Draft => system.contains(SystemFlags::DRAFT),
        SearchKey::Flagged => system.contains(SystemFlags::FLAGGED),
        SearchKey::Seen => system.contains(SystemFlags::SEEN),
        SearchKey::Unanswered => !system.contains(SystemFlags::ANSWERED),
        SearchKey::Undeleted => !system.contains(SystemFlags::DELETED),
        SearchKey::Undraft => !system.contains(SystemFlags::DRAFT),
        SearchKey::Unflagged => !system.contains(SystemFlags::FLAGGED),
        SearchKey::Unseen => !system.contains(SystemFlags::SEEN),
        SearchKey::Recent => candidate.recent,
        SearchKey::Old => !candidate.recent,
        SearchKey::New => candidate.recent && !system.contains(SystemFlags::SEEN),
        SearchKey::Keyword(keyword) => has_keyword(&message.flags, keyword.as_str()),
        SearchKey::Unkeyword(keyword) => !has_keyword(&message.flags, keyword.as_str()),
        SearchKey::Before(date) => internal_day < date.days_since_epoch(),
        SearchKey::On(date) => internal_day == date.days_since_epoch(),
        SearchKey::Since(date) => internal_day >= date.days_since_epoch(),
        SearchKey::SentBefore(date) => sent_day(candidate) < date.days_since_epoch(),
        SearchKey::SentOn(date) => sent_day(candidate) == date.days_since_epoch(),
        SearchKey::SentSince(date) => sent_day(candidate) >= date.days_since_epoch(),
        SearchKey::Larger(size) => message.size > u64::from(*size),
        SearchKey::Smaller(size) => message.size < u64::from(*size),
        SearchKey::Bcc(needle) => header_contains(candidate, "Bcc", needle),
        SearchKey::Cc(needle) => header_contains(candidate, "Cc", needle),
        SearchKey::From(needle) => header_contains(candidate, "From", needle),
        SearchKey::To(needle) => header_contains(candidate, "To", needle),
        SearchKey::Subject(needle) => header_contains(candidate, "Subject", needle),
        SearchKey::Header(name, needle) => {
            header_contains(candidate, &String::from_utf8_lossy(name.as_bytes()), needle)
        }
        SearchKey::Body(needle) | SearchKey::Text(needle) if bounds.text_hits.is_some() => bounds
            .text_hits
            .and_then(|hits| hits.get(needle.as_bytes()))
            .is_some_and(|hits| hits.contains(&candidate.uid)),
        SearchKey::Body(needle) => body_contains(candidate, needle, false),
        SearchKey::Text(needle) => body_contains(candidate, needle, true),
        SearchKey::Uid(set) | SearchKey::SequenceSet(set) if set.is_saved() => {
            bounds.saved.contains(&candidate.uid)
        }
        SearchKey::Uid(set) => set.contains(candidate.uid, bounds.largest_uid),
        SearchKey::SequenceSet(set) => set.contains(
            MailboxView::sequence_number(candidate.index).get(),
            bounds.count,
        ),
        SearchKey::ModSeq { modseq, .. } => message.modseq >= *modseq,
        SearchKey::Not(inner) => !evaluate(inner, candidate, bounds, depth - 1),
        SearchKey::Or(left, right) => {
            evaluate(left, candidate, bounds, depth - 1)
                || evaluate(right, candidate, bounds, depth - 1)
        }
        SearchKey::And(keys) => keys
            .iter()
            .all(|key| evaluate(key, candidate, bounds, depth - 1)),
    }
}
