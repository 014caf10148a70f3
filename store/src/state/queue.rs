//! The delivery queue: applying its ops, and reading it.
//!
//! Invariants: queue ids only grow (they come from the state's id counter), so
//! [`State::queue_after`] finds what was queued since; `portal_queue` maps every drain
//! entry's portal message to it, and nothing else.

use super::{OpError, State, Touched};
use crate::model::*;

impl State {
    pub(super) fn apply_queue(
        &mut self,
        op: &Op,
        new_bodies: &[BodyId],
        touched: &mut Touched,
    ) -> Result<OpResult, OpError> {
        let result = match op {
            Op::Enqueue(entry) => OpResult::Queued(self.enqueue(entry, new_bodies)?),
            Op::Defer {
                id,
                next_attempt,
                error,
            } => {
                let entry = self.queue_entry_mut(*id)?;
                entry.attempts += 1;
                entry.next_attempt = *next_attempt;
                entry.last_error = Some(error.clone());
                if entry.state == QueueState::Queued {
                    entry.state = QueueState::Deferred;
                }
                OpResult::Done
            }
            Op::SetQueueState { id, state } => {
                self.queue_entry_mut(*id)?.state = *state;
                OpResult::Done
            }
            Op::Dequeue { id } => {
                let entry = self.remove_queue_entry(*id)?;
                if let Some(portal) = entry.portal {
                    if let Some(f) = self.folders.get(&portal.folder) {
                        let account = f.account.clone();
                        self.expunge(portal.folder, &[portal.uid], touched);
                        touched.accounts.insert(account);
                    }
                }
                OpResult::Done
            }
            Op::QueueToPortal { id, folder } => {
                let account = self
                    .folder(*folder)
                    .ok_or(OpError::NoFolder(*folder))?
                    .account
                    .clone();
                let entry = self.queue.get(id).ok_or(OpError::NoQueueEntry(*id))?;
                if entry.portal.is_some() {
                    return Err(OpError::DrainToPortal(*id));
                }
                let (body, date) = (entry.body, entry.created);
                let (uidvalidity, uid) = self.append(*folder, body, Flags::default(), date)?;
                self.remove_queue_entry(*id)?;
                touched.accounts.insert(account);
                OpResult::Appended { uidvalidity, uid }
            }
            _ => unreachable!("not a queue op: {op:?}"),
        };
        touched.queue = true;
        Ok(result)
    }

    fn enqueue(
        &mut self,
        entry: &NewQueueEntry,
        new_bodies: &[BodyId],
    ) -> Result<QueueId, OpError> {
        let body = self.resolve(entry.body, new_bodies)?;
        // A portal message has one drain entry: a drain scan that runs twice (two
        // nodes, or a scan racing a delivery) queues it once.
        if let Some(existing) = entry.portal.as_ref().and_then(|p| self.portal_queue.get(p)) {
            return Ok(*existing);
        }
        let id = QueueId(self.alloc_id());
        self.incref(body);
        if let Some(portal) = &entry.portal {
            self.portal_queue.insert(portal.clone(), id);
        }
        self.queue.insert(
            id,
            QueueEntry {
                id,
                body,
                sender: entry.sender.clone(),
                recipient: entry.recipient.clone(),
                destination: entry.destination.clone(),
                attempts: 0,
                next_attempt: entry.next_attempt,
                created: entry.created,
                state: QueueState::Queued,
                last_error: None,
                portal: entry.portal.clone(),
            },
        );
        Ok(id)
    }

    fn queue_entry_mut(&mut self, id: QueueId) -> Result<&mut QueueEntry, OpError> {
        self.queue.get_mut(&id).ok_or(OpError::NoQueueEntry(id))
    }

    pub(super) fn remove_queue_entry(&mut self, id: QueueId) -> Result<QueueEntry, OpError> {
        let entry = self.queue.remove(&id).ok_or(OpError::NoQueueEntry(id))?;
        if let Some(portal) = &entry.portal {
            self.portal_queue.remove(portal);
        }
        self.decref(entry.body);
        Ok(entry)
    }

    /// The queue, by id.
    pub fn queue(&self) -> impl DoubleEndedIterator<Item = &QueueEntry> {
        self.queue.values()
    }

    /// Queue entries with ids above `after` (all with `None`): ids only grow, so these
    /// are the entries queued since `after` was the newest.
    pub fn queue_after(&self, after: Option<QueueId>) -> impl Iterator<Item = &QueueEntry> {
        let start = match after {
            Some(id) => std::ops::Bound::Excluded(id),
            None => std::ops::Bound::Unbounded,
        };
        self.queue
            .range((start, std::ops::Bound::Unbounded))
            .map(|(_, e)| e)
    }

    /// One queue entry.
    pub fn queue_entry(&self, id: QueueId) -> Option<&QueueEntry> {
        self.queue.get(&id)
    }

    /// The drain entry of a portal message, if any.
    pub fn drain_entry(&self, folder: FolderId, uid: u32) -> Option<QueueId> {
        self.portal_queue.get(&PortalRef { folder, uid }).copied()
    }
}
