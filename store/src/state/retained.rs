//! Expunged messages kept readable for the sessions that still show them.
//!
//! RFC 2180 §4.1.1: "The server MAY allow the EXPUNGE of a multi-accessed mailbox but
//! keep the messages available to satisfy subsequent FETCH commands until it is able
//! to send an EXPUNGE response to each client." When a message leaves a folder, the
//! apply step keeps what it was (metadata, and where its body's bytes were) here,
//! tagged with the modification sequence of its expunge. A session that shows the
//! folder holds a [`FolderWatch`](crate::FolderWatch) saying up to which modification
//! sequence it has caught up; after each group commit the writer drops every retained
//! message all watchers of its folder have caught up with (all of them, when nobody
//! watches). A session that catches up copies what it needs of a retained message
//! into its own view first.
//!
//! Invariants:
//! - A retained message's body bytes stay where `loc` says: compaction does not
//!   delete a segment while a retained message points into it (it deletes it at a
//!   later run).
//! - Not persisted: sessions do not survive a restart, so neither does this.
//! - Bounded: at most [`RETAINED_PER_FOLDER_MAX`] per folder, the oldest dropped
//!   first, so a session that stops reading cannot make the server keep everything
//!   expunged after it.

use std::collections::{HashMap, VecDeque};

use crate::model::*;

/// Most expunged messages kept per folder for sessions that have not caught up.
pub const RETAINED_PER_FOLDER_MAX: usize = 10_000;

/// An expunged message as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedMessage {
    /// The folder's highest modification sequence after the expunge.
    pub modseq: u64,
    /// The message as it was in the folder (its body may be gone from the index).
    pub message: Message,
    /// Where the body's bytes are ([`crate::Store::read_at`]).
    pub loc: Loc,
}

/// The retained messages of every folder, oldest first.
#[derive(Debug, Default, Clone)]
pub(crate) struct Retained {
    by_folder: HashMap<FolderId, VecDeque<RetainedMessage>>,
}

impl Retained {
    pub(crate) fn keep(&mut self, folder: FolderId, retained: RetainedMessage) {
        let queue = self.by_folder.entry(folder).or_default();
        queue.push_back(retained);
        if queue.len() > RETAINED_PER_FOLDER_MAX {
            queue.pop_front();
        }
    }

    pub(crate) fn get(&self, folder: FolderId, uid: u32) -> Option<&RetainedMessage> {
        self.by_folder
            .get(&folder)?
            .iter()
            .rev()
            .find(|retained| retained.message.uid == uid)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_folder.is_empty()
    }

    /// Drops what every watcher has caught up with: `floor(folder)` is the lowest
    /// modification sequence a watcher of the folder has caught up to, `None` when
    /// nobody watches it.
    pub(crate) fn prune(&mut self, floor: impl Fn(FolderId) -> Option<u64>) {
        self.by_folder.retain(|folder, queue| {
            match floor(*folder) {
                None => queue.clear(),
                Some(floor) => {
                    while queue
                        .front()
                        .is_some_and(|retained| retained.modseq <= floor)
                    {
                        queue.pop_front();
                    }
                }
            }
            !queue.is_empty()
        });
    }

    /// Whether a retained message's bytes lie in `segment`.
    pub(crate) fn uses_segment(&self, segment: u64) -> bool {
        self.by_folder
            .values()
            .flatten()
            .any(|retained| retained.loc.segment == segment)
    }
}

impl super::State {
    /// A message expunged from `folder` that a session may still show (see
    /// [`crate::FolderWatch`]).
    pub fn retained(&self, folder: FolderId, uid: u32) -> Option<&RetainedMessage> {
        self.retained.get(folder, uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retained(uid: u32, modseq: u64) -> RetainedMessage {
        RetainedMessage {
            modseq,
            message: Message {
                uid,
                body: BodyId(1),
                size: 1,
                internal_date: 0,
                flags: Flags::default(),
                modseq: 1,
            },
            loc: Loc {
                segment: 3,
                offset: 100,
                len: 1,
            },
        }
    }

    #[test]
    fn pruned_by_what_watchers_caught_up_with() {
        let mut kept = Retained::default();
        let (watched, unwatched) = (FolderId(1), FolderId(2));
        kept.keep(watched, retained(4, 10));
        kept.keep(watched, retained(5, 12));
        kept.keep(unwatched, retained(9, 3));
        assert!(kept.uses_segment(3) && !kept.uses_segment(4));
        kept.prune(|folder| (folder == watched).then_some(10));
        assert!(kept.get(watched, 4).is_none());
        assert_eq!(kept.get(watched, 5).map(|r| r.modseq), Some(12));
        assert!(kept.get(unwatched, 9).is_none());
        kept.prune(|_| Some(12));
        assert!(kept.is_empty());
    }

    #[test]
    fn bounded_per_folder() {
        let mut kept = Retained::default();
        for uid in 0..=RETAINED_PER_FOLDER_MAX as u32 {
            kept.keep(FolderId(1), retained(uid, u64::from(uid)));
        }
        assert!(kept.get(FolderId(1), 0).is_none());
        assert!(kept.get(FolderId(1), 1).is_some());
    }
}
