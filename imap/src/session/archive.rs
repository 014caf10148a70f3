//! The archive as IMAP mailboxes: a read-only namespace `#archive/` with one mailbox
//! per month, `#archive/2026-12`, holding the logged-in user's own archived mail (SPEC
//! §4: mail they sent or received, by envelope), so any mail client can search and
//! read it.
//!
//! - A month holds the archive entries accepted in it (UTC) whose envelope sender or
//!   a recipient is the user. UIDs are archive ids; the UIDVALIDITY of a month is
//!   `YYYYMM`, the same in every session and after a restart (ids never change).
//!   Entries whose id does not fit a UID (above 2^32 - 1, after some billions of
//!   stored items) are left out.
//! - Months are listed from the month of the oldest archive entry to the current
//!   one (retention bounds that to a few); `#archive` itself is `\Noselect`.
//! - Messages carry `\Seen` and no other flag; nothing there can change. STORE,
//!   EXPUNGE, MOVE, APPEND, CREATE, DELETE and RENAME answer NO with the reason; COPY
//!   out of the archive into a folder works.
//! - SEARCH's text keys (`TEXT`, `BODY`) are answered by the archive's full-text
//!   index ([`ArchiveIndex`]) as the archive API answers them: each word of the
//!   string must begin a word of the message, case and accents ignored.

use std::collections::HashSet;

use lifeboat_store::{
    ArchiveEntry, ArchiveId, ArchiveIndex, ArchiveQuery, Flags, Message, State, Store, SystemFlags,
    UnixTime,
};

use crate::types::Date;

/// The namespace prefix, delimiter included.
pub(crate) const PREFIX: &str = "#archive/";
/// The namespace's root level (`\Noselect`).
pub(crate) const ROOT: &str = "#archive";
/// Why a write into the archive is refused.
pub(crate) const READ_ONLY: &str = "The archive is read-only";
const SECONDS_PER_DAY: i64 = 86_400;

/// One month of the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Month {
    year: u16,
    month: u8,
}

impl Month {
    /// The month a store name names: `#archive/YYYY-MM`.
    pub(crate) fn from_name(name: &str) -> Option<Month> {
        let rest = name.strip_prefix(PREFIX)?;
        let (year, month) = rest.split_once('-')?;
        if year.len() != 4 || month.len() != 2 {
            return None;
        }
        let year: u16 = year.parse().ok()?;
        let month: u8 = month.parse().ok()?;
        Date::new(year, month, 1).ok()?;
        Some(Month { year, month })
    }

    /// The month a moment falls in (UTC).
    pub(crate) fn of(time: UnixTime) -> Option<Month> {
        let date = Date::from_days_since_epoch(time.div_euclid(SECONDS_PER_DAY))?;
        Some(Month {
            year: date.year(),
            month: date.month(),
        })
    }

    pub(crate) fn name(self) -> String {
        format!("{PREFIX}{:04}-{:02}", self.year, self.month)
    }

    /// `YYYYMM`: stable across sessions and restarts.
    pub(crate) fn uidvalidity(self) -> u32 {
        u32::from(self.year) * 100 + u32::from(self.month)
    }

    fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    fn start(self) -> UnixTime {
        Date::new(self.year, self.month, 1)
            .map_or(0, |date| date.days_since_epoch() * SECONDS_PER_DAY)
    }

    /// `[start, end)` in Unix seconds.
    pub(crate) fn range(self) -> (UnixTime, UnixTime) {
        (self.start(), self.next().start())
    }

    pub(crate) fn contains(self, time: UnixTime) -> bool {
        let (start, end) = self.range();
        (start..end).contains(&time)
    }
}

/// Whether a store name is in the archive namespace (or is its root).
pub(crate) fn is_archive_name(name: &str) -> bool {
    name == ROOT || name.starts_with(PREFIX)
}

/// The months to list: from the oldest archive entry's to `now`'s. (One pass over
/// the archive's dates: ids follow arrival, but an entry's date is when its message
/// was accepted, which a re-delivery or an import can put earlier.)
pub(crate) fn months(state: &State, now: UnixTime) -> Vec<Month> {
    let Some(last) = Month::of(now) else {
        return Vec::new();
    };
    let first = state
        .archive()
        .map(|entry| entry.date)
        .min()
        .and_then(|date| Month::of(date.min(now)))
        .unwrap_or(last);
    let mut months = Vec::new();
    let mut month = first;
    while month <= last && months.len() < 1200 {
        months.push(month);
        month = month.next();
    }
    months
}

impl PartialOrd for Month {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Month {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.year, self.month).cmp(&(other.year, other.month))
    }
}

/// Whether `account` sent or received the entry (by envelope, SPEC §4).
pub(crate) fn is_participant(entry: &ArchiveEntry, account: &str) -> bool {
    std::iter::once(&entry.mail_from)
        .chain(&entry.rcpt_to)
        .any(|address| address.eq_ignore_ascii_case(account))
}

/// The UID of an entry, if its id fits one.
pub(crate) fn uid_of(id: ArchiveId) -> Option<u32> {
    u32::try_from(id.0).ok().filter(|&uid| uid != 0)
}

/// Whether the entry belongs in `account`'s mailbox for `month`.
pub(crate) fn belongs(entry: &ArchiveEntry, account: &str, month: Month) -> bool {
    month.contains(entry.date) && is_participant(entry, account) && uid_of(entry.id).is_some()
}

/// The UIDs of `account`'s mail in `month`, ascending.
pub(crate) fn uids(state: &State, account: &str, month: Month) -> Vec<u32> {
    state
        .archive()
        .filter(|entry| belongs(entry, account, month))
        .filter_map(|entry| uid_of(entry.id))
        .collect()
}

/// The entries of `account` in `month` with an id above `after`, ascending.
pub(crate) fn uids_above(state: &State, account: &str, month: Month, after: u32) -> Vec<u32> {
    state
        .archive_above(ArchiveId(u64::from(after)))
        .filter(|entry| belongs(entry, account, month))
        .filter_map(|entry| uid_of(entry.id))
        .collect()
}

/// An archived message as a mailbox message: `\Seen`, internal date the date it was
/// accepted.
pub(crate) fn message(entry: &ArchiveEntry) -> Message {
    Message {
        uid: uid_of(entry.id).unwrap_or(u32::MAX),
        body: entry.body,
        size: entry.size,
        internal_date: entry.date,
        flags: Flags {
            system: SystemFlags::SEEN,
            keywords: Vec::new(),
        },
        modseq: 1,
    }
}

/// The archive ids of `account`'s mail in `month` whose text has every word of
/// `text` (as the archive API searches: the index, or a scan without one).
pub(crate) fn text_matches(
    store: &Store,
    index: Option<&ArchiveIndex>,
    account: &str,
    month: Month,
    text: &str,
    limit: usize,
) -> HashSet<u32> {
    let (since, until) = month.range();
    let query = ArchiveQuery {
        text: Some(text.to_string()),
        since: Some(since),
        until: Some(until),
        participant: Some(account.to_string()),
        limit: limit.max(1),
        ..ArchiveQuery::default()
    };
    let hits = match index {
        Some(index) => index.search(&query),
        None => store.archive_search(&query),
    };
    hits.iter().filter_map(|entry| uid_of(entry.id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_names_and_ranges() {
        let month = Month::from_name("#archive/2026-12").unwrap();
        assert_eq!(month.name(), "#archive/2026-12");
        assert_eq!(month.uidvalidity(), 202_612);
        let (start, end) = month.range();
        assert_eq!(end - start, 31 * SECONDS_PER_DAY);
        assert_eq!(Month::of(start), Some(month));
        assert_eq!(Month::of(end - 1), Some(month));
        assert_eq!(Month::of(end).unwrap().name(), "#archive/2027-01");
        for bad in [
            "#archive/2026-13",
            "#archive/2026-1",
            "#archive/26-01",
            "#archive/2026-00",
            "#archive",
            "Archive/2026-01",
        ] {
            assert_eq!(Month::from_name(bad), None, "{bad}");
        }
        assert!(is_archive_name("#archive") && is_archive_name("#archive/x"));
        assert!(!is_archive_name("#archived"));
    }
}
