//! Message traces (`crate::trace`): the steps each op adds, derived from what the op
//! says and the state just before and after it, plus the batch's notes.
//!
//! Invariant: nothing here costs anything for a message that is not traced, beyond a
//! map lookup per message an op touches, and nothing at all while no message is.

use super::{Ctx, State};
use crate::model::*;
use crate::trace::{Protocol, TraceEvent, TraceNote, TraceStep};

/// What the notes of the batch applied so far said.
#[derive(Debug, Default)]
pub(super) struct BatchNotes {
    /// The protocol of the user actions that follow.
    via: Option<Protocol>,
    /// Queue entries whose attempt's answer a note recorded.
    answered: Vec<QueueId>,
}

/// What a trace needs from the state before an op applies.
pub(super) enum Before {
    /// Nothing: the op's result and the state after it say enough.
    Nothing,
    /// Traced messages of a folder the op touches: UID, body, system flags.
    Messages {
        account: String,
        folder: String,
        messages: Vec<(u32, BodyId, SystemFlags)>,
    },
    /// A traced queue entry the op removes.
    Queued(QueueEntry),
    /// Bodies of archive entries the op removes.
    Archived(Vec<BodyId>),
}

const SYSTEM_FLAGS: [(SystemFlags, &str); 5] = [
    (SystemFlags::SEEN, "\\Seen"),
    (SystemFlags::ANSWERED, "\\Answered"),
    (SystemFlags::FLAGGED, "\\Flagged"),
    (SystemFlags::DELETED, "\\Deleted"),
    (SystemFlags::DRAFT, "\\Draft"),
];

fn flag_names(flags: SystemFlags) -> Vec<String> {
    SYSTEM_FLAGS
        .iter()
        .filter(|(f, _)| flags.contains(*f))
        .map(|(_, name)| name.to_string())
        .collect()
}

impl State {
    /// The traces of every received message.
    pub fn traces(&self) -> &crate::trace::Traces {
        &self.traces
    }

    pub(super) fn apply_trace_note(
        &mut self,
        ctx: Ctx,
        note: &TraceNote,
        new_bodies: &[BodyId],
        notes: &mut BatchNotes,
    ) -> Result<OpResult, super::OpError> {
        match note {
            TraceNote::Accepted {
                body,
                listener,
                client,
                helo,
                tls,
                authenticated,
                modes,
            } => {
                if let Ok(body) = self.resolve(*body, new_bodies) {
                    let size = self.bodies[&body].loc.len;
                    let event = TraceEvent::Accepted {
                        listener: listener.clone(),
                        client: client.clone(),
                        helo: helo.clone(),
                        tls: *tls,
                        authenticated: authenticated.clone(),
                        size,
                        modes: modes.clone(),
                    };
                    self.traces.open(
                        body,
                        TraceStep {
                            at: ctx.time,
                            event,
                        },
                    );
                }
            }
            TraceNote::Attempt {
                queue,
                delivered,
                reply,
            } => {
                if let Some(entry) = self.queue.get(queue) {
                    let (queue, recipient, reply) =
                        (*queue, entry.recipient.clone(), reply.clone());
                    let event = if *delivered {
                        TraceEvent::Delivered {
                            queue,
                            recipient,
                            reply,
                        }
                    } else {
                        TraceEvent::Failed {
                            queue,
                            recipient,
                            reply,
                        }
                    };
                    self.traces.record(entry.body, ctx.time, event);
                    notes.answered.push(queue);
                }
            }
            TraceNote::Dsn { body, to, reason } => {
                if let Ok(body) = self.resolve(*body, new_bodies) {
                    let event = TraceEvent::Dsn {
                        to: to.clone(),
                        reason: reason.clone(),
                    };
                    self.traces.record(body, ctx.time, event);
                }
            }
            TraceNote::Via(protocol) => notes.via = Some(*protocol),
        }
        Ok(OpResult::Done)
    }

    /// What [`State::trace_after`] will need about `op`; `None` when it adds nothing.
    pub(super) fn trace_before(&self, op: &Op) -> Option<Before> {
        if self.traces.is_empty() {
            return None;
        }
        let traced_in = |folder: FolderId, uids: Option<&[u32]>| -> Option<Before> {
            let f = self.folders.get(&folder)?;
            let pick = |m: &Message| {
                self.traces
                    .contains(m.body)
                    .then_some((m.uid, m.body, m.flags.system))
            };
            let messages: Vec<(u32, BodyId, SystemFlags)> = match uids {
                Some(uids) => uids
                    .iter()
                    .filter_map(|uid| f.messages.get(uid).and_then(pick))
                    .collect(),
                None => f.messages.values().filter_map(pick).collect(),
            };
            (!messages.is_empty()).then(|| Before::Messages {
                account: f.account.clone(),
                folder: f.name.clone(),
                messages,
            })
        };
        let traced_entry = |id: &QueueId| {
            self.queue
                .get(id)
                .filter(|e| self.traces.contains(e.body))
                .map(|e| Before::Queued(e.clone()))
        };
        match op {
            Op::Archive(_) | Op::Enqueue(_) | Op::Append { .. } => Some(Before::Nothing),
            Op::Defer { id, .. } | Op::SetQueueState { id, .. } => {
                traced_entry(id).map(|_| Before::Nothing)
            }
            Op::Dequeue { id } | Op::QueueToPortal { id, .. } => traced_entry(id),
            Op::StoreFlags { folder, uids, .. } | Op::Expunge { folder, uids } => {
                traced_in(*folder, Some(uids))
            }
            Op::Copy { from, uids, .. } | Op::Move { from, uids, .. } => {
                traced_in(*from, Some(uids))
            }
            Op::DeleteFolder { account, name } => {
                let folder = self.folder_by_name(account, name)?;
                traced_in(folder.id, None)
            }
            Op::Unarchive(ids) => {
                let bodies: Vec<BodyId> = ids
                    .iter()
                    .filter_map(|id| self.archive.get(id))
                    .map(|e| e.body)
                    .filter(|b| self.traces.contains(*b))
                    .collect();
                (!bodies.is_empty()).then_some(Before::Archived(bodies))
            }
            _ => None,
        }
    }

    /// Records the steps `op` (applied, with `result`) adds to traced messages.
    pub(super) fn trace_after(
        &mut self,
        ctx: Ctx,
        op: &Op,
        before: Before,
        result: &OpResult,
        notes: &BatchNotes,
    ) {
        let at = ctx.time;
        let protocol = notes.via;
        match (op, before, result) {
            (Op::Archive(entry), _, OpResult::Archived(id)) => {
                if let Some(archived) = self.archive.get(id) {
                    let event = TraceEvent::Archived {
                        id: *id,
                        direction: entry.direction,
                    };
                    self.traces.record(archived.body, at, event);
                }
            }
            (Op::Enqueue(_), _, OpResult::Queued(id)) => {
                if let Some(entry) = self.queue.get(id) {
                    let event = TraceEvent::Queued {
                        queue: *id,
                        recipient: entry.recipient.clone(),
                        destination: entry.destination.clone(),
                        drain: entry.portal.is_some(),
                    };
                    self.traces.record(entry.body, at, event);
                }
            }
            (Op::Append { folder, .. }, _, OpResult::Appended { uid, .. })
            | (Op::QueueToPortal { folder, .. }, _, OpResult::Appended { uid, .. }) => {
                if let Some(f) = self.folders.get(folder) {
                    if let Some(message) = f.messages.get(uid) {
                        let event = TraceEvent::Placed {
                            account: f.account.clone(),
                            folder: f.name.clone(),
                            uid: *uid,
                        };
                        self.traces.record(message.body, at, event);
                    }
                }
            }
            (Op::Defer { id, .. }, _, _) => {
                if let Some(entry) = self.queue.get(id) {
                    let event = TraceEvent::Deferred {
                        queue: *id,
                        recipient: entry.recipient.clone(),
                        attempt: entry.attempts,
                        error: entry.last_error.clone().unwrap_or_default(),
                        next_attempt: entry.next_attempt,
                    };
                    self.traces.record(entry.body, at, event);
                }
            }
            (Op::SetQueueState { id, state }, _, _) => {
                if let Some(entry) = self.queue.get(id) {
                    let event = TraceEvent::Held {
                        queue: *id,
                        held: *state == QueueState::Held,
                    };
                    self.traces.record(entry.body, at, event);
                }
            }
            (Op::Dequeue { id }, Before::Queued(entry), _) => {
                let event = match &entry.portal {
                    Some(portal) => TraceEvent::Drained {
                        queue: *id,
                        account: self
                            .folders
                            .get(&portal.folder)
                            .map(|f| f.account.clone())
                            .unwrap_or_default(),
                        uid: portal.uid,
                    },
                    None if notes.answered.contains(id) => return,
                    None => TraceEvent::Dequeued {
                        queue: *id,
                        recipient: entry.recipient.clone(),
                    },
                };
                self.traces.record(entry.body, at, event);
            }
            (
                Op::StoreFlags { folder, .. },
                Before::Messages {
                    account,
                    folder: name,
                    messages,
                },
                OpResult::Stored { changed, .. },
            ) => {
                for (uid, body, old) in messages {
                    if !changed.iter().any(|(u, _)| *u == uid) {
                        continue;
                    }
                    let Some(new) = self
                        .folders
                        .get(folder)
                        .and_then(|f| f.messages.get(&uid))
                        .map(|m| m.flags.system)
                    else {
                        continue;
                    };
                    if new == old {
                        continue;
                    }
                    let event = TraceEvent::Flags {
                        account: account.clone(),
                        folder: name.clone(),
                        uid,
                        added: flag_names(new.minus(old)),
                        removed: flag_names(old.minus(new)),
                        protocol,
                    };
                    self.traces.record(body, at, event);
                }
            }
            (
                Op::Copy { to, .. } | Op::Move { to, .. },
                Before::Messages {
                    account,
                    folder: from,
                    messages,
                },
                OpResult::Copied { pairs, .. },
            ) => {
                let to_name = self
                    .folders
                    .get(to)
                    .map(|f| f.name.clone())
                    .unwrap_or_default();
                for (uid, body, _) in messages {
                    let Some((_, new_uid)) = pairs.iter().find(|(old, _)| *old == uid) else {
                        continue;
                    };
                    let event = TraceEvent::Moved {
                        account: account.clone(),
                        from: from.clone(),
                        to: to_name.clone(),
                        uid: *new_uid,
                        copy: matches!(op, Op::Copy { .. }),
                        protocol,
                    };
                    self.traces.record(body, at, event);
                }
            }
            (
                Op::Expunge { .. },
                Before::Messages {
                    account,
                    folder,
                    messages,
                },
                OpResult::Expunged(removed),
            ) => {
                for (uid, body, _) in messages {
                    if removed.contains(&uid) {
                        self.record_deleted(body, at, &account, &folder, uid, protocol);
                    }
                }
            }
            (
                Op::DeleteFolder { .. },
                Before::Messages {
                    account,
                    folder,
                    messages,
                },
                _,
            ) => {
                for (uid, body, _) in messages {
                    self.record_deleted(body, at, &account, &folder, uid, protocol);
                }
            }
            (Op::Unarchive(_), Before::Archived(bodies), _) => {
                for body in bodies {
                    self.traces.remove(body);
                }
            }
            _ => {}
        }
    }

    fn record_deleted(
        &mut self,
        body: BodyId,
        at: UnixTime,
        account: &str,
        folder: &str,
        uid: u32,
        protocol: Option<Protocol>,
    ) {
        let event = TraceEvent::Deleted {
            account: account.to_string(),
            folder: folder.to_string(),
            uid,
            protocol,
        };
        self.traces.record(body, at, event);
    }
}

/// Most messages one trace query returns (newest first).
pub const TRACE_RESULTS_MAX: usize = 100;

impl State {
    /// The archived messages `query` names, newest first, at most
    /// [`TRACE_RESULTS_MAX`], with their traces: an archive id; a Message-ID (with or
    /// without its angle brackets); or an address, which names every message it sent
    /// or received. A bracketed query is only a Message-ID; `since` leaves out older
    /// messages. A full scan of the archive, for an admin's occasional question.
    pub fn find_traced(
        &self,
        query: &str,
        since: Option<UnixTime>,
    ) -> Vec<(&ArchiveEntry, Option<&crate::trace::MessageTrace>)> {
        let query = query.trim();
        let bracketed = query.starts_with('<') && query.ends_with('>');
        let bare = query.trim_start_matches('<').trim_end_matches('>');
        let recent = |e: &&ArchiveEntry| since.is_none_or(|s| e.date >= s);
        let pick = |f: &dyn Fn(&ArchiveEntry) -> bool| -> Vec<&ArchiveEntry> {
            self.archive
                .values()
                .rev()
                .filter(recent)
                .filter(|e| f(e))
                .take(TRACE_RESULTS_MAX)
                .collect()
        };
        let mut hits = Vec::new();
        if !bracketed {
            if let Ok(id) = bare.parse::<u64>() {
                hits.extend(self.archive.get(&ArchiveId(id)).filter(recent));
            }
        }
        if hits.is_empty() && !bare.is_empty() {
            hits = pick(&|e| {
                let id = e.headers.message_id.trim();
                id.trim_start_matches('<').trim_end_matches('>') == bare
            });
        }
        if hits.is_empty() && !bracketed && bare.contains('@') {
            hits = pick(&|e| {
                e.mail_from.eq_ignore_ascii_case(bare)
                    || e.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(bare))
            });
        }
        hits.into_iter()
            .map(|e| (e, self.traces.get(e.body)))
            .collect()
    }
}
