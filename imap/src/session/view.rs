//! The selected mailbox as this session's client knows it — RFC 3501 §2.3.1, §7.4.1.
//!
//! The client numbers messages 1..=N; the view keeps the UID behind every number the
//! client has been told about, in UID order, and changes the numbering only when it
//! tells the client (an untagged EXPUNGE or EXISTS).
//!
//! Invariants:
//! - `slots` is sorted by UID and holds exactly the messages announced to the client:
//!   slot `i` is message sequence number `i + 1`.
//! - A message removed by someone else stays in `slots`, marked `expunged`, until an
//!   EXPUNGE response may be sent (RFC 3501 §7.4.1: not during FETCH, STORE or
//!   SEARCH by sequence number, and never when no command is in progress); until then
//!   it keeps its number but is never fetched, searched or changed.
//! - `slot.modseq` is the modification sequence whose flags the client last saw, so a
//!   change by anyone else shows up as a difference at the next [`MailboxView::sync`].
//! - `highest_modseq` is the folder's HIGHESTMODSEQ when the view last compared
//!   itself with the folder: every change to a folder raises it (append, flag change,
//!   expunge), so an unchanged value means there is nothing to report.

use std::num::NonZeroU32;
use std::ops::RangeInclusive;

use lifeboat_store::{FolderId, Store};

use crate::recent::RecentMarks;

use super::flags::{defined_flags, fetch_flags, permanent_flags};
use super::text_of;
use crate::types::{
    Code, Condition, Data, FetchData, Response, SeqOrUid, Sequence, SequenceSet, Status,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    uid: u32,
    modseq: u64,
    /// `\Recent` for this session (see [`crate::recent`]).
    recent: bool,
    /// Removed from the folder; the client has not been told yet.
    expunged: bool,
}

/// A sequence number out of range — RFC 3501 §7.1.5 (answered BAD).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InvalidSequence;

/// The selected mailbox; see the module documentation.
#[derive(Clone, Debug)]
pub(crate) struct MailboxView {
    pub(crate) folder: FolderId,
    pub(crate) uidvalidity: u32,
    /// EXAMINE: nothing in the mailbox may change through this session.
    pub(crate) read_only: bool,
    slots: Vec<Slot>,
    highest_modseq: u64,
    /// Highest UID the view has seen: messages above it are new.
    last_uid: u32,
    /// Some slots are marked `expunged` and wait for an EXPUNGE response.
    expunge_pending: bool,
    /// Keywords announced in FLAGS; a new one is announced before it is first shown
    /// (RFC 3501 §7.2.6).
    keywords: Vec<String>,
}

/// What SELECT reports about the mailbox it opened.
pub(crate) struct Opened {
    pub(crate) view: MailboxView,
    pub(crate) exists: u32,
    pub(crate) first_unseen: Option<NonZeroU32>,
    pub(crate) uidnext: u32,
    pub(crate) highest_modseq: u64,
    /// Keywords in use, for FLAGS and PERMANENTFLAGS.
    pub(crate) keywords: Vec<String>,
}

/// A message of the view as the store has it now.
#[derive(Clone, Debug)]
pub(crate) struct Current {
    /// Index into the view (sequence number - 1).
    pub(crate) index: usize,
    pub(crate) uid: u32,
    pub(crate) message: lifeboat_store::Message,
}

impl MailboxView {
    /// Opens folder `id` of the state: every message in it; those no session has
    /// seen are recent, and taken for this session unless it is `read_only` (EXAMINE).
    pub(crate) fn open(
        state: &lifeboat_store::State,
        id: FolderId,
        read_only: bool,
        recent: &RecentMarks,
    ) -> Option<Opened> {
        let folder = state.folder(id)?;
        let last_uid = folder.uidnext.saturating_sub(1);
        let old_up_to = if read_only {
            recent.peek(folder)
        } else {
            recent.take(folder, last_uid)
        };
        let mut keywords: Vec<String> = Vec::new();
        let mut first_unseen = None;
        let mut slots = Vec::with_capacity(folder.messages.len());
        for (index, message) in folder.messages.values().enumerate() {
            slots.push(Slot {
                uid: message.uid,
                modseq: message.modseq,
                recent: message.uid > old_up_to,
                expunged: false,
            });
            if first_unseen.is_none()
                && !message
                    .flags
                    .system
                    .contains(lifeboat_store::SystemFlags::SEEN)
            {
                first_unseen = u32::try_from(index + 1).ok().and_then(NonZeroU32::new);
            }
            for keyword in &message.flags.keywords {
                if !keywords
                    .iter()
                    .any(|known| known.eq_ignore_ascii_case(keyword))
                {
                    keywords.push(keyword.clone());
                }
            }
        }
        keywords.sort();
        let exists = u32::try_from(slots.len()).unwrap_or(u32::MAX);
        Some(Opened {
            view: MailboxView {
                folder: id,
                uidvalidity: folder.uidvalidity,
                read_only,
                slots,
                highest_modseq: folder.highest_modseq,
                last_uid,
                expunge_pending: false,
                keywords: keywords.clone(),
            },
            exists,
            first_unseen,
            uidnext: folder.uidnext,
            highest_modseq: folder.highest_modseq,
            keywords,
        })
    }

    /// Number of messages the client knows (EXISTS).
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Messages recent for this session and not expunged.
    pub(crate) fn recent_count(&self) -> u32 {
        let count = self
            .slots
            .iter()
            .filter(|slot| slot.recent && !slot.expunged)
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    pub(crate) fn uid(&self, index: usize) -> u32 {
        self.slots[index].uid
    }

    pub(crate) fn is_recent(&self, index: usize) -> bool {
        self.slots[index].recent
    }

    /// Sequence number of slot `index`.
    pub(crate) fn sequence_number(index: usize) -> NonZeroU32 {
        // Views hold at most u32::MAX - 1 messages (UIDs are u32 and never 0), so
        // index + 1 fits; the fallback only keeps release builds panic-free.
        u32::try_from(index + 1)
            .ok()
            .and_then(NonZeroU32::new)
            .unwrap_or(NonZeroU32::MAX)
    }

    /// The index of the message with `uid`, if the client knows it.
    pub(crate) fn index_of_uid(&self, uid: u32) -> Option<usize> {
        self.slots.binary_search_by_key(&uid, |slot| slot.uid).ok()
    }

    /// The highest UID the client knows (`*` in a UID set).
    fn largest_uid(&self) -> u32 {
        self.slots.last().map_or(0, |slot| slot.uid)
    }

    /// Slot indices a set of sequence numbers names, ascending. A number above the
    /// message count is an error unless it comes from `*` (so `1:*` on an empty
    /// mailbox is simply empty).
    pub(crate) fn resolve_sequence_set(
        &self,
        set: &SequenceSet,
    ) -> Result<Vec<usize>, InvalidSequence> {
        let count = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        for element in set.elements() {
            let explicit_max = match *element {
                Sequence::Single(SeqOrUid::Value(value)) => value.get(),
                Sequence::Range(SeqOrUid::Value(from), SeqOrUid::Value(to)) => {
                    from.get().max(to.get())
                }
                Sequence::Range(SeqOrUid::Value(value), SeqOrUid::Asterisk)
                | Sequence::Range(SeqOrUid::Asterisk, SeqOrUid::Value(value))
                    if count > 0 =>
                {
                    value.get()
                }
                _ => 0,
            };
            if explicit_max > count {
                return Err(InvalidSequence);
            }
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut indices = Vec::new();
        for range in set.ranges(count) {
            let (from, to) = clamp(range, 1, count);
            indices.extend((from..=to).map(|number| number as usize - 1));
        }
        Ok(indices)
    }

    /// Slot indices whose UIDs a UID set names, ascending (RFC 3501 §6.4.8: UIDs not
    /// in the mailbox are ignored; `*` is the highest UID in use).
    pub(crate) fn resolve_uid_set(&self, set: &SequenceSet) -> Vec<usize> {
        let largest = self.largest_uid();
        let mut indices = Vec::new();
        if self.slots.is_empty() {
            return indices;
        }
        for range in set.ranges(largest) {
            let start = self.slots.partition_point(|slot| slot.uid < *range.start());
            let end = self.slots.partition_point(|slot| slot.uid <= *range.end());
            indices.extend(start..end);
        }
        indices
    }

    /// The client has seen these flags (its own STORE or FETCH setting `\Seen`).
    pub(crate) fn note_modseq(&mut self, uid: u32, modseq: u64) {
        if let Some(index) = self.index_of_uid(uid) {
            self.slots[index].modseq = modseq;
        }
    }

    /// The messages at `indices` as stored now; expunged ones are left out.
    pub(crate) fn current(&self, store: &Store, indices: &[usize]) -> Vec<Current> {
        store.read(|state| {
            let Some(folder) = state.folder(self.folder) else {
                return Vec::new();
            };
            indices
                .iter()
                .filter(|&&index| !self.slots[index].expunged)
                .filter_map(|&index| {
                    let uid = self.slots[index].uid;
                    folder.messages.get(&uid).map(|message| Current {
                        index,
                        uid,
                        message: message.clone(),
                    })
                })
                .collect()
        })
    }

    /// Compares the view with the folder and reports what changed since the last
    /// call: expunges (only when `allow_expunge`), flag changes as FETCH responses,
    /// and new messages as EXISTS and RECENT — RFC 3501 §7.3, §7.4.1. `condstore`
    /// adds MODSEQ to FETCH responses (RFC 7162 §3.1.4.1).
    pub(crate) fn sync(
        &mut self,
        store: &Store,
        recent: &RecentMarks,
        allow_expunge: bool,
        condstore: bool,
        out: &mut Vec<u8>,
    ) {
        struct Changes {
            highest_modseq: u64,
            expunged: Vec<usize>,
            flags: Vec<(u32, lifeboat_store::Flags, u64)>,
            new: Vec<(u32, u64)>,
            /// New messages above this UID are recent for this session.
            old_up_to: u32,
        }
        let known_highest = self.highest_modseq;
        let changes = store.read(|state| {
            let Some(folder) = state.folder(self.folder) else {
                // Deleted (or its account removed): every message is gone.
                return Some(Changes {
                    highest_modseq: known_highest,
                    expunged: (0..self.slots.len()).collect(),
                    flags: Vec::new(),
                    new: Vec::new(),
                    old_up_to: u32::MAX,
                });
            };
            if folder.highest_modseq == known_highest {
                return None;
            }
            let mut expunged = Vec::new();
            let mut flags = Vec::new();
            for (index, slot) in self.slots.iter().enumerate() {
                if slot.expunged {
                    continue;
                }
                match folder.messages.get(&slot.uid) {
                    None => expunged.push(index),
                    Some(message) if message.modseq != slot.modseq => {
                        flags.push((slot.uid, message.flags.clone(), message.modseq));
                    }
                    Some(_) => {}
                }
            }
            let new: Vec<(u32, u64)> = folder
                .messages
                .range(self.last_uid.saturating_add(1)..)
                .map(|(uid, message)| (*uid, message.modseq))
                .collect();
            let old_up_to = match new.last() {
                None => u32::MAX,
                Some(_) if self.read_only => recent.peek(folder),
                Some(&(last, _)) => recent.take(folder, last),
            };
            Some(Changes {
                highest_modseq: folder.highest_modseq,
                expunged,
                flags,
                new,
                old_up_to,
            })
        });
        if let Some(changes) = changes {
            self.highest_modseq = changes.highest_modseq;
            for index in changes.expunged {
                self.slots[index].expunged = true;
                self.expunge_pending = true;
            }
            if allow_expunge {
                self.report_expunges(out);
            }
            self.announce_keywords(changes.flags.iter().map(|(_, flags, _)| flags), out);
            if !changes.new.is_empty() {
                let new_keywords: Vec<lifeboat_store::Flags> = store.read(|state| {
                    state.folder(self.folder).map_or_else(Vec::new, |folder| {
                        changes
                            .new
                            .iter()
                            .filter_map(|(uid, _)| folder.messages.get(uid))
                            .filter(|message| !message.flags.keywords.is_empty())
                            .map(|message| message.flags.clone())
                            .collect()
                    })
                });
                self.announce_keywords(new_keywords.iter(), out);
            }
            for (uid, flags, modseq) in changes.flags {
                let Some(index) = self.index_of_uid(uid) else {
                    continue;
                };
                self.slots[index].modseq = modseq;
                let mut items = vec![
                    FetchData::Flags(fetch_flags(&flags, self.slots[index].recent)),
                    FetchData::Uid(NonZeroU32::new(uid).unwrap_or(NonZeroU32::MIN)),
                ];
                if condstore {
                    if let Some(modseq) = std::num::NonZeroU64::new(modseq) {
                        items.push(FetchData::ModSeq(modseq));
                    }
                }
                Response::Data(Data::Fetch {
                    sequence_number: Self::sequence_number(index),
                    items,
                })
                .encode(out);
            }
            if !changes.new.is_empty() {
                for (uid, modseq) in changes.new {
                    self.last_uid = self.last_uid.max(uid);
                    self.slots.push(Slot {
                        uid,
                        modseq,
                        recent: uid > changes.old_up_to,
                        expunged: false,
                    });
                }
                let exists = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                Response::Data(Data::Exists(exists)).encode(out);
                Response::Data(Data::Recent(self.recent_count())).encode(out);
            }
        } else if allow_expunge {
            self.report_expunges(out);
        }
    }

    /// Sends EXPUNGE for every slot marked expunged, highest number first so that
    /// each number is still the one the client knows, and removes the slots.
    fn report_expunges(&mut self, out: &mut Vec<u8>) {
        if !self.expunge_pending {
            return;
        }
        for index in (0..self.slots.len()).rev() {
            if self.slots[index].expunged {
                Response::Data(Data::Expunge(Self::sequence_number(index))).encode(out);
            }
        }
        self.slots.retain(|slot| !slot.expunged);
        self.expunge_pending = false;
    }

    /// Sends FLAGS and PERMANENTFLAGS again when `flags` hold a keyword the client
    /// was not told about (RFC 3501 §7.2.6).
    pub(crate) fn announce_keywords<'f>(
        &mut self,
        flags: impl Iterator<Item = &'f lifeboat_store::Flags>,
        out: &mut Vec<u8>,
    ) {
        let mut learned = false;
        for flags in flags {
            for keyword in &flags.keywords {
                if !self
                    .keywords
                    .iter()
                    .any(|known| known.eq_ignore_ascii_case(keyword))
                {
                    self.keywords.push(keyword.clone());
                    learned = true;
                }
            }
        }
        if !learned {
            return;
        }
        self.keywords.sort();
        Response::Data(Data::Flags(defined_flags(&self.keywords))).encode(out);
        let permanent = if self.read_only {
            Vec::new()
        } else {
            permanent_flags(&self.keywords)
        };
        Response::Status(Status::untagged(
            Condition::Ok,
            Some(Code::PermanentFlags(permanent)),
            text_of("Flags permitted".to_string()),
        ))
        .encode(out);
    }

    /// FETCH data for the flags of a message as the client should see them.
    pub(crate) fn flags_item(
        &self,
        index: usize,
        flags: &lifeboat_store::Flags,
    ) -> FetchData<'static> {
        FetchData::Flags(fetch_flags(flags, self.slots[index].recent))
    }
}

fn clamp(range: RangeInclusive<u32>, low: u32, high: u32) -> (u32, u32) {
    ((*range.start()).max(low), (*range.end()).min(high))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(uids: &[u32]) -> MailboxView {
        MailboxView {
            folder: FolderId(1),
            uidvalidity: 1,
            read_only: false,
            slots: uids
                .iter()
                .map(|&uid| Slot {
                    uid,
                    modseq: 1,
                    recent: false,
                    expunged: false,
                })
                .collect(),
            highest_modseq: 1,
            last_uid: uids.last().copied().unwrap_or(0),
            expunge_pending: false,
            keywords: Vec::new(),
        }
    }

    fn set(text: &str) -> SequenceSet {
        SequenceSet::try_from(text).unwrap()
    }

    #[test]
    fn sequence_sets() {
        let view = view(&[3, 5, 9, 10]);
        assert_eq!(view.resolve_sequence_set(&set("1:*")), Ok(vec![0, 1, 2, 3]));
        assert_eq!(view.resolve_sequence_set(&set("*:3")), Ok(vec![2, 3]));
        assert_eq!(view.resolve_sequence_set(&set("2,4")), Ok(vec![1, 3]));
        assert_eq!(view.resolve_sequence_set(&set("5")), Err(InvalidSequence));
        assert_eq!(view.resolve_sequence_set(&set("5:*")), Err(InvalidSequence));
        let empty = super::tests::view(&[]);
        assert_eq!(empty.resolve_sequence_set(&set("1:*")), Ok(vec![]));
        assert_eq!(empty.resolve_sequence_set(&set("*")), Ok(vec![]));
        assert_eq!(empty.resolve_sequence_set(&set("1")), Err(InvalidSequence));
    }

    #[test]
    fn uid_sets() {
        let view = view(&[3, 5, 9, 10]);
        assert_eq!(view.resolve_uid_set(&set("1:*")), vec![0, 1, 2, 3]);
        assert_eq!(view.resolve_uid_set(&set("4:9")), vec![1, 2]);
        assert_eq!(view.resolve_uid_set(&set("11:*")), vec![3]);
        assert_eq!(view.resolve_uid_set(&set("1:2,6")), Vec::<usize>::new());
        assert_eq!(view.resolve_uid_set(&set("1:4294967295")), vec![0, 1, 2, 3]);
        assert_eq!(view.index_of_uid(9), Some(2));
    }
}
