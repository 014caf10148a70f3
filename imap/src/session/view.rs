//! The selected mailbox as this session's client knows it — RFC 3501 §2.3.1, §7.4.1.
//!
//! The client numbers messages 1..=N; the view keeps the UID behind every number the
//! client has been told about, in UID order, and changes the numbering only when it
//! tells the client (an untagged EXPUNGE, VANISHED or EXISTS).
//!
//! Invariants:
//! - `slots` is sorted by UID and holds exactly the messages announced to the client:
//!   slot `i` is message sequence number `i + 1`.
//! - A message removed by someone else stays in `slots`, marked `expunged`, until an
//!   EXPUNGE (or VANISHED) response may be sent (RFC 3501 §7.4.1: not during FETCH,
//!   STORE or SEARCH by sequence number, and never when no command is in progress).
//!   Until then it keeps its number, FETCH still returns it as it was and STORE
//!   leaves it alone (RFC 2180 §4.1.1, §4.2): the store keeps an expunged message
//!   readable while the view's [`FolderWatch`] has not caught up past its expunge,
//!   and the view moves its watch only up to what it has reported.
//! - `slot.modseq` is the modification sequence whose flags the client last saw, so a
//!   change by anyone else shows up as a difference at the next [`MailboxView::sync`].
//! - `highest_modseq` is the folder's HIGHESTMODSEQ when the view last compared
//!   itself with the folder: every change to a folder raises it (append, flag change,
//!   expunge), so an unchanged value means there is nothing to report.
//! - An archive month (`session/archive.rs`) is a view with no folder: read-only,
//!   no modification sequences, growing as mail is archived and shrinking with
//!   retention.

use std::num::{NonZeroU32, NonZeroU64};
use std::ops::RangeInclusive;

use lifeboat_store::{ArchiveId, BodyId, Bytes, FolderId, FolderWatch, Loc, Message, Store};

use crate::recent::RecentMarks;

use super::archive::{self, Month};
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
    /// The folder's modification sequence after that expunge (0 while present).
    expunged_at: u64,
}

impl Slot {
    fn new(uid: u32, modseq: u64, recent: bool) -> Slot {
        Slot {
            uid,
            modseq,
            recent,
            expunged: false,
            expunged_at: 0,
        }
    }
}

/// A sequence number out of range — RFC 3501 §7.1.5 (answered BAD).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InvalidSequence;

/// What the view shows.
#[derive(Debug)]
pub(crate) enum Source {
    /// A folder of the account, and the session's hold on what is expunged from it.
    Folder { id: FolderId, watch: FolderWatch },
    /// One month of the account's archived mail.
    Archive {
        month: Month,
        account: String,
        /// The oldest archive id when the view last looked (retention moves it).
        oldest: Option<ArchiveId>,
    },
}

/// What the responses of a sync look like (what the client enabled).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reporting {
    /// MODSEQ in FETCH responses for flag changes (RFC 7162 §3.1.4.1).
    pub(crate) condstore: bool,
    /// VANISHED instead of EXPUNGE (RFC 7162 §3.2.10).
    pub(crate) qresync: bool,
    /// No RECENT responses and no `\Recent` (RFC 9051 §7.4 leaves them out).
    pub(crate) rev2: bool,
}

/// The selected mailbox; see the module documentation.
#[derive(Debug)]
pub(crate) struct MailboxView {
    pub(crate) source: Source,
    pub(crate) uidvalidity: u32,
    /// EXAMINE, or an archive month: nothing in the mailbox may change through this
    /// session.
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
    /// `\Recent` is left out (IMAP4rev2).
    hide_recent: bool,
    /// The UIDs `SEARCH RETURN (SAVE)` saved last (RFC 5182); `None` before any.
    pub(crate) saved: Option<Vec<u32>>,
}

/// What SELECT reports about the mailbox it opened.
pub(crate) struct Opened {
    pub(crate) view: MailboxView,
    pub(crate) exists: u32,
    pub(crate) first_unseen: Option<NonZeroU32>,
    pub(crate) uidnext: u32,
    /// `None` for a mailbox without modification sequences (NOMODSEQ).
    pub(crate) highest_modseq: Option<u64>,
    /// Keywords in use, for FLAGS and PERMANENTFLAGS.
    pub(crate) keywords: Vec<String>,
}

/// Where a message's bytes are.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Body {
    /// A body the store names, of a message of the folder when the view was read (it
    /// may be expunged by another session before its bytes are read).
    Stored(BodyId, Option<FolderId>),
    /// An expunged message's, which the store keeps readable (RFC 2180 §4.1.1).
    At(Loc),
}

/// A message of the view as the store has it now.
#[derive(Clone, Debug)]
pub(crate) struct Current {
    /// Index into the view (sequence number - 1).
    pub(crate) index: usize,
    pub(crate) uid: u32,
    pub(crate) message: Message,
    pub(crate) body: Body,
    /// Expunged by someone else and not yet reported: shown as it was, never changed.
    pub(crate) expunged: bool,
}

impl Current {
    /// The message's octets.
    pub(crate) fn bytes(&self, store: &Store) -> lifeboat_store::Result<Bytes> {
        match self.body {
            Body::Stored(id, folder) => store.body(id).or_else(|error| {
                // Expunged by another session since the view was read (its commit is
                // applied on the writer's thread at any moment, and a FETCH of many
                // messages also yields between them): the store keeps it for this
                // session, which has not been told (RFC 2180 §4.1.1), where it lies now.
                folder
                    .and_then(|folder| {
                        store.read(|state| state.retained(folder, self.uid).map(|r| r.loc))
                    })
                    .map_or(Err(error), |loc| store.read_at(loc))
            }),
            Body::At(loc) => store.read_at(loc),
        }
    }
}

impl MailboxView {
    /// Opens folder `id`: every message in it; those no session has seen are
    /// recent, and taken for this session unless it is `read_only` (EXAMINE).
    pub(crate) fn open(
        store: &Store,
        id: FolderId,
        read_only: bool,
        recent: &RecentMarks,
        hide_recent: bool,
    ) -> Option<Opened> {
        // Taken before the folder is read, so that nothing expunged after the read
        // can be forgotten before the view holds it.
        let watch = store.watch_folder(id);
        let opened = store.read(|state| {
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
                slots.push(Slot::new(
                    message.uid,
                    message.modseq,
                    message.uid > old_up_to,
                ));
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
            Some((
                slots,
                keywords,
                first_unseen,
                folder.uidvalidity,
                folder.uidnext,
                folder.highest_modseq,
                last_uid,
            ))
        });
        let (slots, keywords, first_unseen, uidvalidity, uidnext, highest_modseq, last_uid) =
            opened?;
        watch.caught_up(highest_modseq);
        let exists = u32::try_from(slots.len()).unwrap_or(u32::MAX);
        Some(Opened {
            view: MailboxView {
                source: Source::Folder { id, watch },
                uidvalidity,
                read_only,
                slots,
                highest_modseq,
                last_uid,
                expunge_pending: false,
                keywords: keywords.clone(),
                hide_recent,
                saved: None,
            },
            exists,
            first_unseen,
            uidnext,
            highest_modseq: Some(highest_modseq),
            keywords,
        })
    }

    /// Opens `account`'s archive mailbox of `month` (always read-only).
    pub(crate) fn open_archive(store: &Store, account: &str, month: Month) -> Opened {
        let (uids, oldest) = store.read(|state| {
            (
                archive::uids(state, account, month),
                state.archive().next().map(|entry| entry.id),
            )
        });
        let last_uid = uids.last().copied().unwrap_or(0);
        let slots: Vec<Slot> = uids.iter().map(|&uid| Slot::new(uid, 1, false)).collect();
        let exists = u32::try_from(slots.len()).unwrap_or(u32::MAX);
        Opened {
            view: MailboxView {
                source: Source::Archive {
                    month,
                    account: account.to_string(),
                    oldest,
                },
                uidvalidity: month.uidvalidity(),
                read_only: true,
                slots,
                highest_modseq: 1,
                last_uid,
                expunge_pending: false,
                keywords: Vec::new(),
                hide_recent: true,
                saved: None,
            },
            exists,
            first_unseen: None,
            uidnext: last_uid.saturating_add(1),
            highest_modseq: None,
            keywords: Vec::new(),
        }
    }

    /// The folder shown, `None` for an archive month.
    pub(crate) fn folder(&self) -> Option<FolderId> {
        match &self.source {
            Source::Folder { id, .. } => Some(*id),
            Source::Archive { .. } => None,
        }
    }

    /// Whether the view shows `folder`.
    pub(crate) fn shows(&self, folder: FolderId) -> bool {
        self.folder() == Some(folder)
    }

    /// The archive month shown, if that is what it shows.
    pub(crate) fn archive_month(&self) -> Option<(Month, &str)> {
        match &self.source {
            Source::Archive { month, account, .. } => Some((*month, account)),
            Source::Folder { .. } => None,
        }
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

    /// The folder's highest modification sequence as far as the client has been
    /// told everything up to it: below the first expunge not yet reported (RFC 7162
    /// §3.2: a client must never learn a HIGHESTMODSEQ past an expunge it has not
    /// seen).
    pub(crate) fn told_modseq(&self) -> u64 {
        self.slots
            .iter()
            .filter(|slot| slot.expunged)
            .map(|slot| slot.expunged_at.saturating_sub(1))
            .min()
            .unwrap_or(self.highest_modseq)
            .min(self.highest_modseq)
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
    pub(crate) fn largest_uid(&self) -> u32 {
        self.slots.last().map_or(0, |slot| slot.uid)
    }

    /// Slot indices a set of sequence numbers names, ascending. A number above the
    /// message count is an error unless it comes from `*` (so `1:*` on an empty
    /// mailbox is simply empty). `$` is the saved search result (RFC 5182 §2.1).
    pub(crate) fn resolve_sequence_set(
        &self,
        set: &SequenceSet,
    ) -> Result<Vec<usize>, InvalidSequence> {
        if set.is_saved() {
            return Ok(self.resolve_saved());
        }
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
    /// in the mailbox are ignored; `*` is the highest UID in use; `$` is the saved
    /// search result).
    pub(crate) fn resolve_uid_set(&self, set: &SequenceSet) -> Vec<usize> {
        if set.is_saved() {
            return self.resolve_saved();
        }
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

    /// The saved result's messages the client still knows (RFC 5182 §2.1: expunged
    /// ones drop out of it).
    fn resolve_saved(&self) -> Vec<usize> {
        self.saved
            .iter()
            .flatten()
            .filter_map(|&uid| self.index_of_uid(uid))
            .collect()
    }

    /// The client has seen these flags (its own STORE or FETCH setting `\Seen`).
    pub(crate) fn note_modseq(&mut self, uid: u32, modseq: u64) {
        if let Some(index) = self.index_of_uid(uid) {
            self.slots[index].modseq = modseq;
        }
    }

    /// The messages at `indices` as stored now, ascending. A message expunged by
    /// someone else and not yet reported comes as it was (`expunged`), as long as the
    /// store keeps it (RFC 2180 §4.1.1); one it no longer keeps is left out.
    pub(crate) fn current(&self, store: &Store, indices: &[usize]) -> Vec<Current> {
        match &self.source {
            Source::Folder { id, .. } => store.read(|state| {
                let folder = state.folder(*id);
                indices
                    .iter()
                    .filter_map(|&index| {
                        let slot = self.slots[index];
                        let live = folder
                            .filter(|_| !slot.expunged)
                            .and_then(|folder| folder.messages.get(&slot.uid));
                        match live {
                            Some(message) => Some(Current {
                                index,
                                uid: slot.uid,
                                message: message.clone(),
                                body: Body::Stored(message.body, Some(*id)),
                                expunged: false,
                            }),
                            None => state.retained(*id, slot.uid).map(|retained| Current {
                                index,
                                uid: slot.uid,
                                message: retained.message.clone(),
                                body: Body::At(retained.loc),
                                expunged: true,
                            }),
                        }
                    })
                    .collect()
            }),
            Source::Archive { .. } => store.read(|state| {
                indices
                    .iter()
                    .filter(|&&index| !self.slots[index].expunged)
                    .filter_map(|&index| {
                        let uid = self.slots[index].uid;
                        let entry = state.archive_entry(ArchiveId(u64::from(uid)))?;
                        Some(Current {
                            index,
                            uid,
                            message: archive::message(entry),
                            body: Body::Stored(entry.body, None),
                            expunged: false,
                        })
                    })
                    .collect()
            }),
        }
    }

    /// Compares the view with the mailbox and reports what changed since the last
    /// call: expunges (only when `allow_expunge`), flag changes as FETCH responses,
    /// and new messages as EXISTS and RECENT — RFC 3501 §7.3, §7.4.1, in the forms
    /// `reporting` asks for.
    pub(crate) fn sync(
        &mut self,
        store: &Store,
        recent: &RecentMarks,
        allow_expunge: bool,
        reporting: Reporting,
        out: &mut Vec<u8>,
    ) {
        match &self.source {
            Source::Folder { id, .. } => {
                let id = *id;
                self.sync_folder(store, id, recent, allow_expunge, reporting, out);
            }
            Source::Archive { .. } => self.sync_archive(store, allow_expunge, reporting, out),
        }
        if let Source::Folder { watch, .. } = &self.source {
            // What has been reported (and nothing past an expunge not yet reported)
            // may be forgotten by the store.
            watch.caught_up(self.told_modseq());
        }
    }

    fn sync_folder(
        &mut self,
        store: &Store,
        id: FolderId,
        recent: &RecentMarks,
        allow_expunge: bool,
        reporting: Reporting,
        out: &mut Vec<u8>,
    ) {
        struct Changes {
            highest_modseq: u64,
            /// (index, modseq of the expunge)
            expunged: Vec<(usize, u64)>,
            flags: Vec<(u32, lifeboat_store::Flags, u64)>,
            new: Vec<(u32, u64)>,
            /// Keywords of the new messages.
            new_flags: Vec<lifeboat_store::Flags>,
            /// New messages above this UID are recent for this session.
            old_up_to: u32,
        }
        let known_highest = self.highest_modseq;
        let changes = store.read(|state| {
            let expunged_at = |uid: u32, otherwise: u64| {
                state
                    .retained(id, uid)
                    .map_or(otherwise, |retained| retained.modseq)
            };
            let Some(folder) = state.folder(id) else {
                // Deleted (or its account removed): every message is gone.
                let expunged = self
                    .slots
                    .iter()
                    .enumerate()
                    .filter(|(_, slot)| !slot.expunged)
                    .map(|(index, slot)| (index, expunged_at(slot.uid, known_highest + 1)))
                    .collect();
                return Some(Changes {
                    highest_modseq: known_highest,
                    expunged,
                    flags: Vec::new(),
                    new: Vec::new(),
                    new_flags: Vec::new(),
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
                    None => expunged.push((index, expunged_at(slot.uid, folder.highest_modseq))),
                    Some(message) if message.modseq != slot.modseq => {
                        flags.push((slot.uid, message.flags.clone(), message.modseq));
                    }
                    Some(_) => {}
                }
            }
            let mut new = Vec::new();
            let mut new_flags = Vec::new();
            for (uid, message) in folder.messages.range(self.last_uid.saturating_add(1)..) {
                new.push((*uid, message.modseq));
                if !message.flags.keywords.is_empty() {
                    new_flags.push(message.flags.clone());
                }
            }
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
                new_flags,
                old_up_to,
            })
        });
        let Some(changes) = changes else {
            if allow_expunge {
                self.report_expunges(reporting, out);
            }
            return;
        };
        self.highest_modseq = changes.highest_modseq;
        for (index, modseq) in changes.expunged {
            self.slots[index].expunged = true;
            self.slots[index].expunged_at = modseq;
            self.expunge_pending = true;
        }
        if allow_expunge {
            self.report_expunges(reporting, out);
        }
        self.announce_keywords(changes.flags.iter().map(|(_, flags, _)| flags), out);
        self.announce_keywords(changes.new_flags.iter(), out);
        for (uid, flags, modseq) in changes.flags {
            let Some(index) = self.index_of_uid(uid) else {
                continue;
            };
            self.slots[index].modseq = modseq;
            let mut items = vec![
                self.flags_item(index, &flags),
                FetchData::Uid(NonZeroU32::new(uid).unwrap_or(NonZeroU32::MIN)),
            ];
            if reporting.condstore {
                if let Some(modseq) = NonZeroU64::new(modseq) {
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
                self.slots
                    .push(Slot::new(uid, modseq, uid > changes.old_up_to));
            }
            self.announce_exists(reporting, out);
        }
    }

    /// Archive months change only by new mail archived in them (the current month)
    /// and by retention.
    fn sync_archive(
        &mut self,
        store: &Store,
        allow_expunge: bool,
        reporting: Reporting,
        out: &mut Vec<u8>,
    ) {
        let Source::Archive {
            month,
            account,
            oldest,
        } = &self.source
        else {
            return;
        };
        let last_uid = self.last_uid;
        let (new, gone, now_oldest) = store.read(|state| {
            let now_oldest = state.archive().next().map(|entry| entry.id);
            let new = archive::uids_above(state, account, *month, last_uid);
            // Retention removes the oldest entries; look for gaps only when it ran.
            let gone: Vec<usize> = if now_oldest != *oldest {
                self.slots
                    .iter()
                    .enumerate()
                    .filter(|(_, slot)| {
                        !slot.expunged
                            && state
                                .archive_entry(ArchiveId(u64::from(slot.uid)))
                                .is_none()
                    })
                    .map(|(index, _)| index)
                    .collect()
            } else {
                Vec::new()
            };
            (new, gone, now_oldest)
        });
        if let Source::Archive { oldest, .. } = &mut self.source {
            *oldest = now_oldest;
        }
        for index in gone {
            self.slots[index].expunged = true;
            self.expunge_pending = true;
        }
        if allow_expunge {
            self.report_expunges(reporting, out);
        }
        if !new.is_empty() {
            for uid in new {
                self.last_uid = self.last_uid.max(uid);
                self.slots.push(Slot::new(uid, 1, false));
            }
            self.announce_exists(reporting, out);
        }
    }

    fn announce_exists(&self, reporting: Reporting, out: &mut Vec<u8>) {
        let exists = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        Response::Data(Data::Exists(exists)).encode(out);
        if !reporting.rev2 {
            Response::Data(Data::Recent(self.recent_count())).encode(out);
        }
    }

    /// Sends EXPUNGE for every slot marked expunged, highest number first so that
    /// each number is still the one the client knows, or one VANISHED with their
    /// UIDs (RFC 7162 §3.2.10), and removes the slots.
    fn report_expunges(&mut self, reporting: Reporting, out: &mut Vec<u8>) {
        if !self.expunge_pending {
            return;
        }
        if reporting.qresync {
            let uids: Vec<u32> = self
                .slots
                .iter()
                .filter(|slot| slot.expunged)
                .map(|slot| slot.uid)
                .collect();
            if let Some(uids) = SequenceSet::from_values(&uids) {
                Response::Data(Data::Vanished {
                    earlier: false,
                    uids,
                })
                .encode(out);
            }
        } else {
            for index in (0..self.slots.len()).rev() {
                if self.slots[index].expunged {
                    Response::Data(Data::Expunge(Self::sequence_number(index))).encode(out);
                }
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
        let recent = self.slots[index].recent && !self.hide_recent;
        FetchData::Flags(fetch_flags(flags, recent))
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
            source: Source::Archive {
                month: Month::from_name("#archive/2026-12").unwrap(),
                account: String::new(),
                oldest: None,
            },
            uidvalidity: 1,
            read_only: false,
            slots: uids.iter().map(|&uid| Slot::new(uid, 1, false)).collect(),
            highest_modseq: 9,
            last_uid: uids.last().copied().unwrap_or(0),
            expunge_pending: false,
            keywords: Vec::new(),
            hide_recent: false,
            saved: None,
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

    #[test]
    fn saved_results_follow_the_messages() {
        let mut view = view(&[3, 5, 9, 10]);
        assert_eq!(
            view.resolve_uid_set(&SequenceSet::saved()),
            Vec::<usize>::new()
        );
        view.saved = Some(vec![5, 10, 11]);
        assert_eq!(view.resolve_uid_set(&SequenceSet::saved()), vec![1, 3]);
        assert_eq!(
            view.resolve_sequence_set(&SequenceSet::saved()),
            Ok(vec![1, 3])
        );
    }

    /// RFC 2180 §4.1.1: "The server MAY allow the EXPUNGE of a multi-accessed mailbox
    /// but keep the messages available to satisfy subsequent FETCH commands until it
    /// is able to send an EXPUNGE response to each client." A FETCH reads its
    /// messages' bytes one after the other, yielding between them: one expunged by
    /// another session meanwhile (its body gone from the store's index with its last
    /// reference) is still read, from where the store keeps it for this session.
    #[test]
    fn a_message_expunged_while_a_fetch_reads_it_is_still_read() {
        use lifeboat_store::{
            Batch, Coverage, DomainSettings, Failover, Flags, Op, OpResult, Options, Role,
        };
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Options::default()).unwrap();
        let mut batch = Batch::new();
        batch.push(Op::PutDomain(DomainSettings {
            name: "example.test".into(),
            upstream: "127.0.0.1:25".into(),
            coverage: Coverage::All,
            failover: Failover::Auto,
        }));
        batch.push(Op::AddAccount {
            address: "a@example.test".into(),
            password_hash: String::new(),
            role: Role::User,
            covered: true,
            recovery: None,
        });
        store.commit(batch).unwrap();
        let inbox = store
            .read(|s| {
                s.folder_by_name("a@example.test", lifeboat_store::INBOX)
                    .map(|f| f.id)
            })
            .unwrap();
        let mut batch = Batch::new();
        let body = batch.put_body(b"Subject: one\r\n\r\nThe first.\r\n".to_vec());
        batch.push(Op::Append {
            folder: inbox,
            body,
            flags: Flags::default(),
            internal_date: 1,
        });
        let results = store.commit(batch).unwrap();
        let Some(Ok(OpResult::Appended { uid, .. })) = results.last() else {
            panic!("{results:?}");
        };
        let recent = crate::recent::RecentMarks::new(&store.read(|s| s.clone()));
        let opened = MailboxView::open(&store, inbox, false, &recent, false).unwrap();
        let current = opened.view.current(&store, &[0]);
        assert_eq!(current.len(), 1);
        // Another session expunges it before this one reads its bytes.
        let mut batch = Batch::new();
        batch.push(Op::Expunge {
            folder: inbox,
            uids: vec![*uid],
        });
        store.commit(batch).unwrap();
        let Body::Stored(id, _) = current[0].body else {
            panic!("a live message");
        };
        assert!(
            store.body(id).is_err(),
            "its body left the index with the message"
        );
        assert_eq!(
            &current[0].bytes(&store).unwrap()[..],
            b"Subject: one\r\n\r\nThe first.\r\n"
        );
    }

    #[test]
    fn highestmodseq_stops_below_an_unreported_expunge() {
        let mut view = view(&[3, 5, 9]);
        assert_eq!(view.told_modseq(), 9);
        view.slots[1].expunged = true;
        view.slots[1].expunged_at = 7;
        view.expunge_pending = true;
        assert_eq!(view.told_modseq(), 6);
        view.report_expunges(Reporting::default(), &mut Vec::new());
        assert_eq!(view.told_modseq(), 9);
    }
}
