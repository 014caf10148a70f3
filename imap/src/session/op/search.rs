//! SEARCH and UID SEARCH — RFC 3501 §6.4.4 — with ESEARCH results (RFC 4731) and the
//! MODSEQ key (RFC 7162 §3.1.5).
//!
//! Every key is supported. Strings match as case-insensitive substrings of the
//! header values (raw and RFC 2047-decoded) or of the body text (the decoded text
//! parts, and the raw body for anything not decoded). Only UTF-8 and US-ASCII are
//! accepted as CHARSET (`NO [BADCHARSET]` otherwise, RFC 3501 §6.4.4). Dates compare
//! by day: the internal date in UTC, the Date header as written.

use std::num::{NonZeroU32, NonZeroU64};

use lifeboat_store::{Message, SystemFlags, UnixTime};

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
struct Bounds {
    count: u32,
    largest_uid: u32,
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
    let store = core.store.clone();
    let view = &core.selected().view;
    let all: Vec<usize> = (0..view.len()).collect();
    let messages = view.current(&store, &all);
    let bounds = Bounds {
        count: u32::try_from(view.len()).unwrap_or(u32::MAX),
        largest_uid: view.len().checked_sub(1).map_or(0, |last| view.uid(last)),
    };
    let mut matched: Vec<(u32, u64)> = Vec::new();
    for (handled, current) in messages.iter().enumerate() {
        if matches(view, current, criteria, &wanted, &store, &bounds) {
            let number = if uid {
                current.uid
            } else {
                MailboxView::sequence_number(current.index).get()
            };
            matched.push((number, current.message.modseq));
        }
        pace(out, handled + 1).await?;
    }
    let numbers: Vec<u32> = matched.iter().map(|(number, _)| *number).collect();
    // RFC 7162 §3.1.5: with a MODSEQ key, the highest mod-sequence of the matches.
    let modseq = if wanted.modseq {
        matched
            .iter()
            .map(|(_, modseq)| *modseq)
            .max()
            .and_then(NonZeroU64::new)
    } else {
        None
    };
    match returns {
        None => Response::Data(Data::Search {
            numbers: numbers
                .iter()
                .filter_map(|&number| NonZeroU32::new(number))
                .collect(),
            modseq,
        })
        .encode(out.buffer()),
        Some(options) => {
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
    let options = if options.is_empty() {
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
        match store.body(current.message.body) {
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
        SearchKey::Body(needle) => body_contains(candidate, needle, false),
        SearchKey::Text(needle) => body_contains(candidate, needle, true),
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
