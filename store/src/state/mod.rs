//! The in-memory state: every index the store serves reads from, rebuilt from the log
//! (and checkpoints) on open. Applying and reading each group of ops lives in its own
//! file: `directory` (domains, accounts), `mailbox` (folders, messages), `queue` and
//! `archive`; this file holds bodies and the dispatch.
//!
//! Invariants:
//! - The state is exactly the result of applying the durable log in sequence order.
//!   Nothing is applied before the batch carrying it is durable.
//! - [`State::apply`] is deterministic: it reads no clock and no randomness, only the
//!   ops and the record's [`Ctx`], so replay reproduces ids, UIDs and UIDVALIDITYs.
//! - An op that fails does not stop its batch: the ops after it still apply.
//! - A body's `refs` counts the archive entries, queue entries and folder messages
//!   that name it; a body whose count drops to zero is forgotten and its bytes become
//!   garbage for compaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::journal::Journal;
use crate::model::*;
use crate::trace::Traces;

mod archive;
mod directory;
mod folder_sync;
mod mailbox;
mod queue;
mod retained;
mod trace;

pub(crate) use folder_sync::FolderSync;
pub use folder_sync::{ExpungedSince, EXPUNGED_REMEMBERED_PER_FOLDER};
pub use mailbox::canonical_folder_name;
pub(crate) use retained::Retained;
pub use retained::{RetainedMessage, RETAINED_PER_FOLDER_MAX};
pub use trace::TRACE_RESULTS_MAX;

/// What apply knows about the record it applies.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// When the record was written (Unix seconds), stamped by the writer.
    pub time: UnixTime,
}

/// Where a body is and how many things refer to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyInfo {
    /// Where its bytes are.
    pub loc: Loc,
    /// Number of references.
    pub refs: u32,
}

/// What a batch changed, for waking waiters.
#[derive(Debug, Default)]
pub struct Touched {
    /// Accounts whose folders changed.
    pub accounts: BTreeSet<String>,
    /// Whether the queue changed.
    pub queue: bool,
    /// Whether domains or accounts changed.
    pub directory: bool,
}

/// Why an op of a committed batch was not applied; the rest of the batch was. Mostly
/// a race with another writer (the folder was deleted meanwhile), or a caller that did
/// not check first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// No such domain.
    #[error("no domain {0}")]
    NoDomain(String),
    /// A domain cannot be removed while it has accounts.
    #[error("domain {0} still has accounts")]
    DomainHasAccounts(String),
    /// No such account.
    #[error("no account {0}")]
    NoAccount(String),
    /// The account exists already.
    #[error("account {0} already exists")]
    AccountExists(String),
    /// No folder of that name.
    #[error("no folder {0}")]
    NoFolderNamed(String),
    /// No folder with that id.
    #[error("no folder {0}")]
    NoFolder(FolderId),
    /// A folder of that name exists already.
    #[error("folder {0} already exists")]
    FolderExists(String),
    /// INBOX is neither renamed nor deleted (RFC 3501 §6.3.4, §6.3.5).
    #[error("INBOX cannot be renamed")]
    InboxRename,
    /// See [`OpError::InboxRename`].
    #[error("INBOX cannot be deleted")]
    InboxDelete,
    /// The folder has used its last UID; it must be recreated (new UIDVALIDITY).
    #[error("folder UIDs exhausted")]
    UidsExhausted(FolderId),
    /// No such body.
    #[error("body {0} does not exist")]
    NoBody(BodyId),
    /// A [`BodyRef::New`] past the bodies of its batch.
    #[error("body #{0} is not in this batch")]
    BodyNotInBatch(u32),
    /// No such queue entry.
    #[error("no queue entry {0}")]
    NoQueueEntry(QueueId),
    /// A drain entry's message came from the portal; it cannot go back there.
    #[error("a drain entry cannot go back to the portal")]
    DrainToPortal(QueueId),
    /// Signing cannot start without keys.
    #[error("domain {0} has no DKIM keys")]
    NoDkimKeys(String),
    /// An audit entry describes the changes before it in its batch; one of them failed,
    /// so it is not recorded.
    #[error("audit entry not recorded: a change before it in its batch failed")]
    AuditAfterFailure,
}

/// Every index of the store.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct State {
    next_id: u64,
    last_uidvalidity: u32,
    domains: BTreeMap<String, Domain>,
    accounts: BTreeMap<String, Account>,
    folders: HashMap<FolderId, Folder>,
    bodies: HashMap<BodyId, BodyInfo>,
    queue: BTreeMap<QueueId, QueueEntry>,
    /// Persistent: a checkpoint's snapshot shares it (see `store/writer.rs`).
    archive: imbl::OrdMap<ArchiveId, ArchiveEntry>,
    /// Derived from `queue`: portal message -> drain entry.
    #[serde(skip)]
    portal_queue: HashMap<PortalRef, QueueId>,
    /// Mode transitions and the audit log. Checkpoints carry it in a section after
    /// the state (see `store/checkpoint.rs`), so older checkpoints still load.
    #[serde(skip)]
    pub(crate) journal: Journal,
    /// Subscribed names and expunge logs (`folder_sync.rs`). Checkpoints carry it
    /// after the rest of the state, so that older checkpoints without it still load.
    #[serde(skip)]
    pub(crate) folder_sync: FolderSync,
    /// Message traces (`crate::trace`). Checkpoints carry them in a section after the
    /// state, so that older checkpoints without them still load.
    #[serde(skip)]
    pub(crate) traces: Traces,
    /// Domains' DKIM keys. Checkpoints carry them in a section after the state, so
    /// that older checkpoints without them still load.
    #[serde(skip)]
    pub(crate) dkim: BTreeMap<String, DomainDkim>,
    /// Expunged messages sessions may still show (`retained.rs`); not persisted.
    #[serde(skip)]
    pub(crate) retained: Retained,
}

impl State {
    /// A digest of the logical state: everything but where bodies' bytes lie in this
    /// node's own log. Two stores that applied the same batches in the same order
    /// (the nodes of a cluster) have the same digest.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut folders: Vec<&Folder> = self.folders.values().collect();
        folders.sort_by_key(|f| f.id);
        let mut bodies: Vec<(BodyId, u32, u64)> = self
            .bodies
            .iter()
            .map(|(id, b)| (*id, b.refs, b.loc.len))
            .collect();
        bodies.sort();
        let logical = (
            self.next_id,
            self.last_uidvalidity,
            &self.domains,
            &self.accounts,
            folders,
            bodies,
            &self.queue,
            &self.archive,
            &self.journal,
            &self.dkim,
        );
        let bytes = postcard::to_allocvec(&logical).expect("the state encodes");
        Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Rebuilds derived indexes after loading a checkpoint.
    pub(crate) fn rebuild_derived(&mut self) {
        self.portal_queue = self
            .queue
            .values()
            .filter_map(|e| e.portal.clone().map(|p| (p, e.id)))
            .collect();
    }

    fn alloc_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Where a body's bytes now are (a restore); `false` if there is no such body.
    pub(crate) fn set_body_loc(&mut self, id: BodyId, loc: Loc) -> bool {
        match self.bodies.get_mut(&id) {
            Some(info) => {
                info.loc = loc;
                true
            }
            None => false,
        }
    }

    fn incref(&mut self, body: BodyId) -> bool {
        match self.bodies.get_mut(&body) {
            Some(info) => {
                info.refs += 1;
                true
            }
            None => false,
        }
    }

    fn decref(&mut self, body: BodyId) {
        if let Some(info) = self.bodies.get_mut(&body) {
            info.refs = info.refs.saturating_sub(1);
            if info.refs == 0 {
                self.bodies.remove(&body);
            }
        }
    }

    /// Applies one record's ops: one batch, or several joined by [`Op::BatchEnd`]
    /// (each applied as if it came alone; a `BatchEnd`'s result is `Done`). `blobs`
    /// holds the location of each `PutBody` / `RelocateBody` op's bytes, in op order.
    pub(crate) fn apply(
        &mut self,
        ctx: Ctx,
        ops: &[Op],
        blobs: &[Loc],
    ) -> (Vec<Result<OpResult, OpError>>, Touched) {
        let mut touched = Touched::default();
        let mut blobs = blobs.iter();
        let mut results = Vec::with_capacity(ops.len());
        for (i, batch) in ops.split(|op| matches!(op, Op::BatchEnd)).enumerate() {
            if i > 0 {
                results.push(Ok(OpResult::Done));
            }
            self.apply_batch(ctx, batch, &mut blobs, &mut results, &mut touched);
        }
        (results, touched)
    }

    /// Applies one batch, adding a result per op to `results`.
    fn apply_batch(
        &mut self,
        ctx: Ctx,
        ops: &[Op],
        blobs: &mut std::slice::Iter<Loc>,
        results: &mut Vec<Result<OpResult, OpError>>,
        touched: &mut Touched,
    ) {
        let mut new_bodies: Vec<BodyId> = Vec::new();
        // Whether an op of this batch failed: the audit entries after it are not kept.
        let mut failed = false;
        let mut notes = trace::BatchNotes::default();
        for op in ops {
            let t = &mut *touched;
            let before = self.trace_before(op);
            let result = match op {
                Op::Trace(note) => self.apply_trace_note(ctx, note, &new_bodies, &mut notes),
                Op::Audit(_) if failed => Err(OpError::AuditAfterFailure),
                Op::Audit(record) => {
                    self.journal.record_audit(record.clone());
                    Ok(OpResult::Done)
                }
                Op::ExpireHistory { before } => {
                    self.journal.expire(*before);
                    self.traces.expire(*before);
                    Ok(OpResult::Done)
                }
                Op::PutBody { .. } => {
                    let loc = *blobs.next().expect("blob location for every PutBody");
                    let id = BodyId(self.alloc_id());
                    self.bodies.insert(id, BodyInfo { loc, refs: 0 });
                    new_bodies.push(id);
                    Ok(OpResult::Body(id))
                }
                Op::RelocateBody { id, .. } => {
                    let loc = *blobs.next().expect("blob location for every RelocateBody");
                    if let Some(info) = self.bodies.get_mut(id) {
                        info.loc = loc;
                    }
                    Ok(OpResult::Done)
                }
                Op::PutDomain(_)
                | Op::DeleteDomain(_)
                | Op::SetMode { .. }
                | Op::RouterSetMode { .. }
                | Op::SetDkimKeys { .. }
                | Op::SetDkimEnabled { .. }
                | Op::AddAccount { .. }
                | Op::UpdateAccount { .. }
                | Op::SetPassword { .. }
                | Op::DeleteAccount(_) => self.apply_directory(ctx, op, t),
                Op::CreateFolder { .. }
                | Op::RenameFolder { .. }
                | Op::DeleteFolder { .. }
                | Op::Subscribe { .. }
                | Op::Append { .. }
                | Op::Copy { .. }
                | Op::Move { .. }
                | Op::StoreFlags { .. }
                | Op::Expunge { .. }
                | Op::SetSubscription { .. } => self.apply_mailbox(ctx, op, &new_bodies, t),
                Op::Enqueue(_)
                | Op::Defer { .. }
                | Op::SetQueueState { .. }
                | Op::Dequeue { .. }
                | Op::QueueToPortal { .. } => self.apply_queue(op, &new_bodies, t),
                Op::Archive(_) | Op::Unarchive(_) => self.apply_archive(op, &new_bodies),
                Op::BatchEnd => unreachable!("batches are split at their ends above"),
            };
            if let (Some(before), Ok(result)) = (before, &result) {
                self.trace_after(ctx, op, before, result, &notes);
            }
            failed |= result.is_err();
            results.push(result);
        }
        // A body nothing refers to by the end of its batch is garbage.
        for id in new_bodies {
            if self.bodies.get(&id).is_some_and(|b| b.refs == 0) {
                self.bodies.remove(&id);
            }
        }
    }

    /// The body an op names: one put earlier in its batch, or one stored.
    fn resolve(&self, body: BodyRef, new_bodies: &[BodyId]) -> Result<BodyId, OpError> {
        let id = match body {
            BodyRef::New(n) => *new_bodies
                .get(n as usize)
                .ok_or(OpError::BodyNotInBatch(n))?,
            BodyRef::Stored(id) => id,
        };
        if self.bodies.contains_key(&id) {
            Ok(id)
        } else {
            Err(OpError::NoBody(id))
        }
    }

    /// Where a body is.
    pub fn body(&self, id: BodyId) -> Option<&BodyInfo> {
        self.bodies.get(&id)
    }

    /// Every live body.
    pub fn bodies(&self) -> impl Iterator<Item = (&BodyId, &BodyInfo)> {
        self.bodies.iter()
    }
}
