//! The archive: applying its ops, and reading it.
//!
//! Invariant: archive ids only grow, so entries in id order are in arrival order and
//! [`State::archive_above`] finds what was archived since.

use super::{OpError, State};
use crate::journal::{Journal, ModeChange};
use crate::model::*;

impl State {
    pub(super) fn apply_archive(
        &mut self,
        op: &Op,
        new_bodies: &[BodyId],
    ) -> Result<OpResult, OpError> {
        match op {
            Op::Archive(entry) => {
                let body = self.resolve(entry.body, new_bodies)?;
                let id = ArchiveId(self.alloc_id());
                self.incref(body);
                let size = self.bodies[&body].loc.len;
                self.archive.insert(
                    id,
                    ArchiveEntry {
                        id,
                        body,
                        direction: entry.direction,
                        mail_from: entry.mail_from.clone(),
                        rcpt_to: entry.rcpt_to.clone(),
                        date: entry.date,
                        size,
                        headers: entry.headers.clone(),
                    },
                );
                Ok(OpResult::Archived(id))
            }
            Op::Unarchive(ids) => {
                for id in ids {
                    if let Some(entry) = self.archive.remove(id) {
                        self.decref(entry.body);
                    }
                }
                Ok(OpResult::Done)
            }
            _ => unreachable!("not an archive op: {op:?}"),
        }
    }

    /// The archive, oldest first.
    pub fn archive(&self) -> impl DoubleEndedIterator<Item = &ArchiveEntry> {
        self.archive.values()
    }

    /// The archive entries with an id above `id`, oldest first.
    pub fn archive_above(&self, id: ArchiveId) -> impl DoubleEndedIterator<Item = &ArchiveEntry> {
        self.archive
            .range((std::ops::Bound::Excluded(id), std::ops::Bound::Unbounded))
            .map(|(_, e)| e)
    }

    /// One archive entry.
    pub fn archive_entry(&self, id: ArchiveId) -> Option<&ArchiveEntry> {
        self.archive.get(&id)
    }

    /// Mode transitions and the audit log.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// A domain's mode transitions, newest first, at most `limit`.
    pub fn mode_history(&self, domain: &str, limit: usize) -> Vec<&ModeChange> {
        self.journal.mode_history(domain, limit)
    }
}
