//! `VANISHED (EARLIER)` — RFC 7162 §3.2.5, §3.2.6: the UIDs expunged from a folder
//! after a mod-sequence, within the UIDs a client names, from the store's expunge
//! log; where the log no longer reaches back that far, every UID in that set that is
//! not in the folder now (RFC 7162 §3.2.6 lets VANISHED name UIDs the client never
//! saw, and a client ignores those).

use std::num::NonZeroU32;
use std::ops::RangeInclusive;

use lifeboat_store::{ExpungedSince, Folder, FolderId, Store};

use crate::types::{SeqOrUid, Sequence, SequenceSet};

/// The UIDs of `within` (all UIDs when `None`) expunged from `folder` after
/// `since`; `None` when there are none.
pub(crate) fn earlier(
    store: &Store,
    folder: FolderId,
    since: u64,
    within: Option<&SequenceSet>,
) -> Option<SequenceSet> {
    let ranges = store.read(|state| {
        let current = state.folder(folder)?;
        let highest_uid = current.uidnext.saturating_sub(1);
        let within = within.map_or_else(|| vec![1..=highest_uid], |set| set.ranges(highest_uid));
        Some(match state.expunged_since(folder, since) {
            ExpungedSince::Known(uids) => uids
                .into_iter()
                .filter(|uid| within.iter().any(|range| range.contains(uid)))
                .map(|uid| uid..=uid)
                .collect(),
            ExpungedSince::BeforeHorizon => intersect(&absent(current, highest_uid), &within),
        })
    })?;
    to_set(&merge(ranges))
}

/// The UIDs from 1 to `highest_uid` that are not in the folder, as ranges.
fn absent(folder: &Folder, highest_uid: u32) -> Vec<RangeInclusive<u32>> {
    let mut ranges = Vec::new();
    let mut next = 1u32;
    for &uid in folder.messages.keys() {
        if uid > next {
            ranges.push(next..=uid - 1);
        }
        next = uid.saturating_add(1);
    }
    if next <= highest_uid {
        ranges.push(next..=highest_uid);
    }
    ranges
}

/// The parts of `ranges` that lie in any of `within`.
fn intersect(
    ranges: &[RangeInclusive<u32>],
    within: &[RangeInclusive<u32>],
) -> Vec<RangeInclusive<u32>> {
    let mut out = Vec::new();
    for range in ranges {
        for window in within {
            let start = (*range.start()).max(*window.start());
            let end = (*range.end()).min(*window.end());
            if start <= end {
                out.push(start..=end);
            }
        }
    }
    out
}

/// Sorted, merged ranges.
fn merge(mut ranges: Vec<RangeInclusive<u32>>) -> Vec<RangeInclusive<u32>> {
    ranges.sort_unstable_by_key(|range| *range.start());
    let mut merged: Vec<RangeInclusive<u32>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if *range.start() <= last.end().saturating_add(1) => {
                if range.end() > last.end() {
                    *last = *last.start()..=*range.end();
                }
            }
            _ => merged.push(range),
        }
    }
    merged
}

fn to_set(ranges: &[RangeInclusive<u32>]) -> Option<SequenceSet> {
    let elements: Vec<Sequence> = ranges
        .iter()
        .filter_map(|range| {
            let start = NonZeroU32::new(*range.start())?;
            let end = NonZeroU32::new(*range.end())?;
            Some(if start == end {
                Sequence::Single(SeqOrUid::Value(start))
            } else {
                Sequence::Range(SeqOrUid::Value(start), SeqOrUid::Value(end))
            })
        })
        .collect();
    SequenceSet::new(elements).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(intersect(&[1..=4, 8..=9], &[3..=8]), vec![3..=4, 8..=8]);
        assert_eq!(merge(vec![5..=5, 1..=2, 3..=3]), vec![1..=3, 5..=5]);
        assert_eq!(to_set(&[1..=3, 5..=5]), SequenceSet::try_from("1:3,5").ok());
        assert_eq!(to_set(&[]), None);
    }
}
