//! The in-memory state: every index the store serves reads from, rebuilt from the log
//! (and checkpoints) on open.
//!
//! Invariants:
//! - The state is exactly the result of applying the durable log in sequence order.
//!   Nothing is applied before the batch carrying it is durable.
//! - [`State::apply`] is deterministic: it reads no clock and no randomness, only the
//!   ops and the record's [`Ctx`], so replay reproduces ids, UIDs and UIDVALIDITYs.
//! - A body's `refs` counts the archive entries, queue entries and folder messages
//!   that name it; a body whose count drops to zero is forgotten and its bytes become
//!   garbage for compaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::journal::{Journal, ModeChange};
use crate::model::*;

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
    archive: BTreeMap<ArchiveId, ArchiveEntry>,
    /// Derived from `queue`: portal message -> drain entry.
    #[serde(skip)]
    portal_queue: HashMap<PortalRef, QueueId>,
    /// Mode transitions and the audit log. Checkpoints carry it after the rest of the
    /// state (see `store.rs`), so older checkpoints without it still load.
    #[serde(skip)]
    pub(crate) journal: Journal,
}

/// Normalises an address for lookup: the domain lowercased, the local part as given.
/// `None` when it is not `local@domain`.
pub fn normalize_address(address: &str) -> Option<String> {
    let (local, domain) = address.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() || domain.contains(['@', ' ']) {
        return None;
    }
    Some(format!("{local}@{}", domain.to_ascii_lowercase()))
}

/// The domain part of a normalised address.
pub fn address_domain(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

/// INBOX is case-insensitive (RFC 3501 §5.1); every other name is kept as given.
pub fn canonical_folder_name(name: &str) -> String {
    if name.eq_ignore_ascii_case(INBOX) {
        INBOX.to_string()
    } else {
        name.to_string()
    }
}

impl State {
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

    /// Applies one batch. `blobs` holds the location of each `PutBody` /
    /// `RelocateBody` op's bytes, in op order.
    pub(crate) fn apply(
        &mut self,
        ctx: Ctx,
        ops: &[Op],
        blobs: &[Loc],
    ) -> (Vec<OpResult>, Touched) {
        let mut touched = Touched::default();
        let mut new_bodies: Vec<BodyId> = Vec::new();
        let mut blobs = blobs.iter();
        let mut results = Vec::with_capacity(ops.len());
        // Whether an op of this batch failed: the audit entries after it are not kept.
        let mut failed = false;
        for op in ops {
            let result = match op {
                Op::Audit(_) if failed => OpResult::Failed(
                    "audit entry not recorded: a change before it in its batch failed".into(),
                ),
                Op::PutBody { .. } => {
                    let loc = *blobs.next().expect("blob location for every PutBody");
                    let id = BodyId(self.alloc_id());
                    self.bodies.insert(id, BodyInfo { loc, refs: 0 });
                    new_bodies.push(id);
                    OpResult::Body(id)
                }
                Op::RelocateBody { id, .. } => {
                    let loc = *blobs.next().expect("blob location for every RelocateBody");
                    if let Some(info) = self.bodies.get_mut(id) {
                        info.loc = loc;
                    }
                    OpResult::Done
                }
                op => match self.apply_one(ctx, op, &new_bodies, &mut touched) {
                    Ok(result) => result,
                    Err(message) => OpResult::Failed(message),
                },
            };
            failed |= matches!(result, OpResult::Failed(_));
            results.push(result);
        }
        // A body nothing refers to by the end of its batch is garbage.
        for id in new_bodies {
            if self.bodies.get(&id).is_some_and(|b| b.refs == 0) {
                self.bodies.remove(&id);
            }
        }
        (results, touched)
    }

    fn resolve(&self, body: BodyRef, new_bodies: &[BodyId]) -> Result<BodyId, String> {
        let id = match body {
            BodyRef::New(n) => *new_bodies
                .get(n as usize)
                .ok_or_else(|| format!("body #{n} is not in this batch"))?,
            BodyRef::Stored(id) => id,
        };
        if self.bodies.contains_key(&id) {
            Ok(id)
        } else {
            Err(format!("body {id} does not exist"))
        }
    }

    fn apply_one(
        &mut self,
        ctx: Ctx,
        op: &Op,
        new_bodies: &[BodyId],
        touched: &mut Touched,
    ) -> Result<OpResult, String> {
        match op {
            Op::PutBody { .. } | Op::RelocateBody { .. } => unreachable!("handled by apply"),
            Op::PutDomain(settings) => {
                touched.directory = true;
                match self.domains.get_mut(&settings.name) {
                    Some(domain) => {
                        domain.upstream = settings.upstream.clone();
                        domain.coverage = settings.coverage;
                        domain.failover = settings.failover;
                    }
                    None => {
                        self.journal.record_mode(ModeChange {
                            domain: settings.name.clone(),
                            from: None,
                            to: Mode::Normal,
                            forced: None,
                            reason: "domain added".to_string(),
                            at: ctx.time,
                        });
                        self.domains.insert(
                            settings.name.clone(),
                            Domain {
                                name: settings.name.clone(),
                                upstream: settings.upstream.clone(),
                                coverage: settings.coverage,
                                failover: settings.failover,
                                mode: Mode::Normal,
                                forced: None,
                                mode_since: ctx.time,
                                mode_reason: "domain added".to_string(),
                            },
                        );
                    }
                }
                Ok(OpResult::Done)
            }
            Op::DeleteDomain(name) => {
                if self.accounts.keys().any(|a| address_domain(a) == name) {
                    return Err(format!("domain {name} still has accounts"));
                }
                self.domains
                    .remove(name)
                    .ok_or_else(|| format!("no domain {name}"))?;
                touched.directory = true;
                Ok(OpResult::Done)
            }
            Op::SetMode {
                domain,
                mode,
                forced,
                reason,
                at,
            } => {
                let d = self
                    .domains
                    .get_mut(domain)
                    .ok_or_else(|| format!("no domain {domain}"))?;
                if (d.mode, d.forced) != (*mode, *forced) {
                    self.journal.record_mode(ModeChange {
                        domain: domain.clone(),
                        from: Some(d.mode),
                        to: *mode,
                        forced: *forced,
                        reason: reason.clone(),
                        at: *at,
                    });
                }
                if d.mode != *mode {
                    d.mode_since = *at;
                }
                d.mode = *mode;
                d.forced = *forced;
                d.mode_reason = reason.clone();
                touched.directory = true;
                Ok(OpResult::Done)
            }
            Op::AddAccount {
                address,
                password_hash,
                role,
                covered,
                recovery,
            } => {
                if self.accounts.contains_key(address) {
                    return Err(format!("account {address} already exists"));
                }
                if !self.domains.contains_key(address_domain(address)) {
                    return Err(format!("no domain {}", address_domain(address)));
                }
                let mut folders = BTreeMap::new();
                for (name, special_use) in DEFAULT_FOLDERS {
                    let id = self.new_folder(ctx, address, name, special_use);
                    folders.insert(name.to_string(), id);
                }
                self.accounts.insert(
                    address.clone(),
                    Account {
                        address: address.clone(),
                        password_hash: password_hash.clone(),
                        role: *role,
                        covered: *covered,
                        recovery: recovery.clone(),
                        folders,
                    },
                );
                touched.directory = true;
                touched.accounts.insert(address.clone());
                Ok(OpResult::Done)
            }
            Op::UpdateAccount {
                address,
                role,
                covered,
                recovery,
            } => {
                let account = self.account_mut(address)?;
                if let Some(role) = role {
                    account.role = *role;
                }
                if let Some(covered) = covered {
                    account.covered = *covered;
                }
                if let Some(recovery) = recovery {
                    account.recovery = recovery.clone();
                }
                touched.directory = true;
                Ok(OpResult::Done)
            }
            Op::SetPassword {
                address,
                password_hash,
            } => {
                self.account_mut(address)?.password_hash = password_hash.clone();
                touched.directory = true;
                Ok(OpResult::Done)
            }
            Op::DeleteAccount(address) => {
                let account = self
                    .accounts
                    .remove(address)
                    .ok_or_else(|| format!("no account {address}"))?;
                for id in account.folders.values() {
                    self.drop_folder(*id, touched);
                }
                touched.directory = true;
                touched.accounts.insert(address.clone());
                Ok(OpResult::Done)
            }
            Op::CreateFolder {
                account,
                name,
                special_use,
            } => {
                let name = canonical_folder_name(name);
                let acc = self.account_mut(account)?;
                if acc.folders.contains_key(&name) {
                    return Err(format!("folder {name} already exists"));
                }
                let id = self.new_folder(ctx, account, &name, *special_use);
                self.account_mut(account)?.folders.insert(name, id);
                touched.accounts.insert(account.clone());
                let uidvalidity = self.folders[&id].uidvalidity;
                Ok(OpResult::Folder { id, uidvalidity })
            }
            Op::RenameFolder { account, from, to } => {
                let from = canonical_folder_name(from);
                let to = canonical_folder_name(to);
                if from == INBOX || to == INBOX {
                    return Err("INBOX cannot be renamed".to_string());
                }
                let acc = self.account_mut(account)?;
                if !acc.folders.contains_key(&from) {
                    return Err(format!("no folder {from}"));
                }
                if acc.folders.contains_key(&to) {
                    return Err(format!("folder {to} already exists"));
                }
                let prefix = format!("{from}/");
                let renames: Vec<(String, String)> = acc
                    .folders
                    .keys()
                    .filter(|n| **n == from || n.starts_with(&prefix))
                    .map(|n| (n.clone(), format!("{to}{}", &n[from.len()..])))
                    .collect();
                for (old, new) in renames {
                    let acc = self.account_mut(account)?;
                    let id = acc.folders.remove(&old).expect("listed above");
                    acc.folders.insert(new.clone(), id);
                    if let Some(folder) = self.folders.get_mut(&id) {
                        folder.name = new;
                    }
                }
                touched.accounts.insert(account.clone());
                Ok(OpResult::Done)
            }
            Op::DeleteFolder { account, name } => {
                let name = canonical_folder_name(name);
                if name == INBOX {
                    return Err("INBOX cannot be deleted".to_string());
                }
                let id = self
                    .account_mut(account)?
                    .folders
                    .remove(&name)
                    .ok_or_else(|| format!("no folder {name}"))?;
                self.drop_folder(id, touched);
                touched.accounts.insert(account.clone());
                Ok(OpResult::Done)
            }
            Op::Subscribe { folder, subscribed } => {
                let f = self.folder_mut(*folder)?;
                f.subscribed = *subscribed;
                let account = f.account.clone();
                touched.accounts.insert(account);
                Ok(OpResult::Done)
            }
            Op::Append {
                folder,
                body,
                flags,
                internal_date,
            } => {
                let body = self.resolve(*body, new_bodies)?;
                let (uidvalidity, uid) =
                    self.append(*folder, body, flags.clone(), *internal_date)?;
                touched
                    .accounts
                    .insert(self.folders[folder].account.clone());
                Ok(OpResult::Appended { uidvalidity, uid })
            }
            Op::Copy { from, uids, to } | Op::Move { from, uids, to } => {
                let moving = matches!(op, Op::Move { .. });
                let source = self.folder(*from).ok_or("no source folder")?;
                if self.folder(*to).is_none() {
                    return Err("no destination folder".to_string());
                }
                let picked: Vec<Message> = uids
                    .iter()
                    .filter_map(|uid| source.messages.get(uid).cloned())
                    .collect();
                let mut pairs = Vec::with_capacity(picked.len());
                for message in &picked {
                    let (_, uid) = self.append(
                        *to,
                        message.body,
                        message.flags.clone(),
                        message.internal_date,
                    )?;
                    pairs.push((message.uid, uid));
                }
                if moving {
                    let moved: Vec<u32> = picked.iter().map(|m| m.uid).collect();
                    self.expunge(*from, &moved, touched);
                }
                touched.accounts.insert(self.folders[to].account.clone());
                Ok(OpResult::Copied {
                    uidvalidity: self.folders[to].uidvalidity,
                    pairs,
                })
            }
            Op::StoreFlags {
                folder,
                uids,
                action,
                flags,
                unchanged_since,
            } => {
                let f = self.folder_mut(*folder)?;
                let mut changed = Vec::new();
                let mut failed = Vec::new();
                for uid in uids {
                    let Some(message) = f.messages.get_mut(uid) else {
                        continue;
                    };
                    // RFC 7162 §3.1.3: UNCHANGEDSINCE fails messages modified later.
                    if unchanged_since.is_some_and(|since| message.modseq > since) {
                        failed.push(*uid);
                        continue;
                    }
                    let new_flags = match action {
                        FlagAction::Replace => flags.clone(),
                        FlagAction::Add => {
                            let mut keywords = message.flags.keywords.clone();
                            keywords.extend(flags.keywords.iter().cloned());
                            Flags {
                                system: message.flags.system.union(flags.system),
                                keywords,
                            }
                        }
                        FlagAction::Remove => Flags {
                            system: message.flags.system.minus(flags.system),
                            keywords: message
                                .flags
                                .keywords
                                .iter()
                                .filter(|k| {
                                    !flags.keywords.iter().any(|r| r.eq_ignore_ascii_case(k))
                                })
                                .cloned()
                                .collect(),
                        },
                    }
                    .normalized();
                    if new_flags != message.flags {
                        f.highest_modseq += 1;
                        message.flags = new_flags;
                        message.modseq = f.highest_modseq;
                        changed.push((*uid, message.modseq));
                    }
                }
                let account = f.account.clone();
                touched.accounts.insert(account);
                Ok(OpResult::Stored { changed, failed })
            }
            Op::Expunge { folder, uids } => {
                let account = self.folder(*folder).ok_or("no folder")?.account.clone();
                let removed = self.expunge(*folder, uids, touched);
                touched.accounts.insert(account);
                Ok(OpResult::Expunged(removed))
            }
            Op::Enqueue(entry) => {
                let body = self.resolve(entry.body, new_bodies)?;
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
                touched.queue = true;
                Ok(OpResult::Queued(id))
            }
            Op::Defer {
                id,
                next_attempt,
                error,
            } => {
                let entry = self
                    .queue
                    .get_mut(id)
                    .ok_or_else(|| format!("no queue entry {id}"))?;
                entry.attempts += 1;
                entry.next_attempt = *next_attempt;
                entry.last_error = Some(error.clone());
                if entry.state == QueueState::Queued {
                    entry.state = QueueState::Deferred;
                }
                touched.queue = true;
                Ok(OpResult::Done)
            }
            Op::SetQueueState { id, state } => {
                let entry = self
                    .queue
                    .get_mut(id)
                    .ok_or_else(|| format!("no queue entry {id}"))?;
                entry.state = *state;
                touched.queue = true;
                Ok(OpResult::Done)
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
                touched.queue = true;
                Ok(OpResult::Done)
            }
            Op::QueueToPortal { id, folder } => {
                if self.folder(*folder).is_none() {
                    return Err("no portal folder".to_string());
                }
                let entry = self
                    .queue
                    .get(id)
                    .ok_or_else(|| format!("no queue entry {id}"))?;
                if entry.portal.is_some() {
                    return Err("a drain entry cannot go back to the portal".to_string());
                }
                let body = entry.body;
                let date = entry.created;
                let (uidvalidity, uid) = self.append(*folder, body, Flags::default(), date)?;
                self.remove_queue_entry(*id)?;
                touched.queue = true;
                touched
                    .accounts
                    .insert(self.folders[folder].account.clone());
                Ok(OpResult::Appended { uidvalidity, uid })
            }
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
            Op::Audit(record) => {
                self.journal.record_audit(record.clone());
                Ok(OpResult::Done)
            }
            Op::ExpireHistory { before } => {
                self.journal.expire(*before);
                Ok(OpResult::Done)
            }
        }
    }

    fn account_mut(&mut self, address: &str) -> Result<&mut Account, String> {
        self.accounts
            .get_mut(address)
            .ok_or_else(|| format!("no account {address}"))
    }

    fn folder_mut(&mut self, id: FolderId) -> Result<&mut Folder, String> {
        self.folders
            .get_mut(&id)
            .ok_or_else(|| format!("no folder {id}"))
    }

    fn new_folder(
        &mut self,
        ctx: Ctx,
        account: &str,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> FolderId {
        let id = FolderId(self.alloc_id());
        // RFC 3501 §2.3.1.1: UIDVALIDITY must change if a name is reused with new
        // UIDs; a strictly increasing value seeded from the record's time does that,
        // and also survives a store that is wiped and recreated later.
        let uidvalidity =
            (self.last_uidvalidity + 1).max(ctx.time.clamp(1, u32::MAX as i64) as u32);
        self.last_uidvalidity = uidvalidity;
        self.folders.insert(
            id,
            Folder {
                id,
                account: account.to_string(),
                name: name.to_string(),
                special_use,
                uidvalidity,
                uidnext: 1,
                highest_modseq: 1,
                subscribed: true,
                messages: BTreeMap::new(),
            },
        );
        id
    }

    fn append(
        &mut self,
        folder: FolderId,
        body: BodyId,
        flags: Flags,
        internal_date: UnixTime,
    ) -> Result<(u32, u32), String> {
        let size = self.bodies.get(&body).ok_or("no body")?.loc.len;
        let f = self
            .folders
            .get_mut(&folder)
            .ok_or_else(|| format!("no folder {folder}"))?;
        if f.uidnext == u32::MAX {
            return Err("folder UIDs exhausted".to_string());
        }
        let uid = f.uidnext;
        f.uidnext += 1;
        f.highest_modseq += 1;
        f.messages.insert(
            uid,
            Message {
                uid,
                body,
                size,
                internal_date,
                flags: flags.normalized(),
                modseq: f.highest_modseq,
            },
        );
        let uidvalidity = f.uidvalidity;
        self.incref(body);
        Ok((uidvalidity, uid))
    }

    /// Removes messages; a drain entry for a removed message is cancelled, because
    /// what a user deleted or moved out of INBOX is never redelivered (SPEC §1).
    fn expunge(&mut self, folder: FolderId, uids: &[u32], touched: &mut Touched) -> Vec<u32> {
        let Some(f) = self.folders.get_mut(&folder) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        let mut bodies = Vec::new();
        for uid in uids {
            if let Some(message) = f.messages.remove(uid) {
                removed.push(*uid);
                bodies.push(message.body);
            }
        }
        if !removed.is_empty() {
            f.highest_modseq += 1;
        }
        for body in bodies {
            self.decref(body);
        }
        for uid in &removed {
            let key = PortalRef { folder, uid: *uid };
            if let Some(id) = self.portal_queue.get(&key).copied() {
                let _ = self.remove_queue_entry(id);
                touched.queue = true;
            }
        }
        removed
    }

    fn drop_folder(&mut self, id: FolderId, touched: &mut Touched) {
        if let Some(folder) = self.folders.get(&id) {
            let uids: Vec<u32> = folder.messages.keys().copied().collect();
            self.expunge(id, &uids, touched);
            self.folders.remove(&id);
        }
    }

    fn remove_queue_entry(&mut self, id: QueueId) -> Result<QueueEntry, String> {
        let entry = self
            .queue
            .remove(&id)
            .ok_or_else(|| format!("no queue entry {id}"))?;
        if let Some(portal) = &entry.portal {
            self.portal_queue.remove(portal);
        }
        self.decref(entry.body);
        Ok(entry)
    }

    // ---- Reads -------------------------------------------------------------------

    /// All domains.
    pub fn domains(&self) -> impl Iterator<Item = &Domain> {
        self.domains.values()
    }

    /// One domain by (lowercase) name.
    pub fn domain(&self, name: &str) -> Option<&Domain> {
        self.domains.get(&name.to_ascii_lowercase())
    }

    /// All accounts, or those of one domain.
    pub fn accounts<'a>(
        &'a self,
        domain: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Account> + 'a {
        self.accounts.values().filter(move |a| {
            domain.is_none_or(|d| address_domain(&a.address).eq_ignore_ascii_case(d))
        })
    }

    /// One account by address (domain part case-insensitive).
    pub fn account(&self, address: &str) -> Option<&Account> {
        self.accounts.get(&normalize_address(address)?)
    }

    /// Whether a registered account is protected by its domain's coverage.
    pub fn is_covered(&self, address: &str) -> bool {
        let Some(account) = self.account(address) else {
            return false;
        };
        match self.domain(address_domain(&account.address)) {
            Some(domain) => domain.coverage == Coverage::All || account.covered,
            None => false,
        }
    }

    /// A folder by id.
    pub fn folder(&self, id: FolderId) -> Option<&Folder> {
        self.folders.get(&id)
    }

    /// Every folder of every account, in no particular order.
    pub fn all_folders(&self) -> impl Iterator<Item = &Folder> {
        self.folders.values()
    }

    /// A folder by owner and name.
    pub fn folder_by_name(&self, account: &str, name: &str) -> Option<&Folder> {
        let account = self.account(account)?;
        let id = account.folders.get(&canonical_folder_name(name))?;
        self.folders.get(id)
    }

    /// The folders of an account, by name.
    pub fn folders_of<'a>(&'a self, account: &str) -> Vec<&'a Folder> {
        let Some(account) = self.account(account) else {
            return Vec::new();
        };
        account
            .folders
            .values()
            .filter_map(|id| self.folders.get(id))
            .collect()
    }

    /// Where a body is.
    pub fn body(&self, id: BodyId) -> Option<&BodyInfo> {
        self.bodies.get(&id)
    }

    /// Every live body.
    pub fn bodies(&self) -> impl Iterator<Item = (&BodyId, &BodyInfo)> {
        self.bodies.iter()
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
