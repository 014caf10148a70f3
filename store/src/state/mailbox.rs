//! Folders and their messages: applying their ops, and reading them.
//!
//! Invariants: a folder's UIDs only grow and `uidnext` is above every UID it holds;
//! every change to a folder's messages raises its `highest_modseq` (RFC 7162); a
//! message expunged or moved out of a folder takes its drain entry with it (SPEC §1).

use std::collections::BTreeMap;

use super::{Ctx, OpError, RetainedMessage, State, Touched};
use crate::model::*;

/// INBOX is case-insensitive (RFC 3501 §5.1); every other name is kept as given.
pub fn canonical_folder_name(name: &str) -> String {
    if name.eq_ignore_ascii_case(INBOX) {
        INBOX.to_string()
    } else {
        name.to_string()
    }
}

impl State {
    pub(super) fn apply_mailbox(
        &mut self,
        ctx: Ctx,
        op: &Op,
        new_bodies: &[BodyId],
        touched: &mut Touched,
    ) -> Result<OpResult, OpError> {
        let (account, result) = match op {
            Op::CreateFolder {
                account,
                name,
                special_use,
            } => {
                let name = canonical_folder_name(name);
                if self.account_mut(account)?.folders.contains_key(&name) {
                    return Err(OpError::FolderExists(name));
                }
                let id = self.new_folder(ctx, account, &name, *special_use);
                self.account_mut(account)?.folders.insert(name, id);
                let uidvalidity = self.folders[&id].uidvalidity;
                (account.clone(), OpResult::Folder { id, uidvalidity })
            }
            Op::RenameFolder { account, from, to } => {
                self.rename_folder(account, from, to)?;
                (account.clone(), OpResult::Done)
            }
            Op::DeleteFolder { account, name } => {
                let name = canonical_folder_name(name);
                if name == INBOX {
                    return Err(OpError::InboxDelete);
                }
                let id = self
                    .account_mut(account)?
                    .folders
                    .remove(&name)
                    .ok_or(OpError::NoFolderNamed(name))?;
                self.drop_folder(id, touched);
                (account.clone(), OpResult::Done)
            }
            Op::Subscribe { folder, subscribed } => {
                let f = self.folder_mut(*folder)?;
                f.subscribed = *subscribed;
                let (account, name) = (f.account.clone(), f.name.clone());
                self.folder_sync
                    .set_subscribed(&account, &name, *subscribed);
                (account, OpResult::Done)
            }
            Op::SetSubscription {
                account,
                name,
                subscribed,
            } => {
                self.set_subscription(account, name, *subscribed)?;
                (account.clone(), OpResult::Done)
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
                let account = self.folders[folder].account.clone();
                (account, OpResult::Appended { uidvalidity, uid })
            }
            Op::Copy { from, uids, to } => self.copy(*from, uids, *to, false, touched)?,
            Op::Move { from, uids, to } => self.copy(*from, uids, *to, true, touched)?,
            Op::StoreFlags {
                folder,
                uids,
                action,
                flags,
                unchanged_since,
            } => self.store_flags(*folder, uids, *action, flags, *unchanged_since)?,
            Op::Expunge { folder, uids } => {
                let account = self.folder_mut(*folder)?.account.clone();
                (
                    account,
                    OpResult::Expunged(self.expunge(*folder, uids, touched)),
                )
            }
            _ => unreachable!("not a mailbox op: {op:?}"),
        };
        touched.accounts.insert(account);
        Ok(result)
    }

    /// Renames a folder and its children (RFC 3501 §6.3.5).
    fn rename_folder(&mut self, account: &str, from: &str, to: &str) -> Result<(), OpError> {
        let from = canonical_folder_name(from);
        let to = canonical_folder_name(to);
        if from == INBOX || to == INBOX {
            return Err(OpError::InboxRename);
        }
        let acc = self.account_mut(account)?;
        if !acc.folders.contains_key(&from) {
            return Err(OpError::NoFolderNamed(from));
        }
        if acc.folders.contains_key(&to) {
            return Err(OpError::FolderExists(to));
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
            // A renamed folder keeps its subscription under its new name.
            if self.folder_sync.is_subscribed(account, &old) {
                self.folder_sync.unsubscribe(account, &old);
                self.folder_sync.subscribe(account, &new);
            }
            if let Some(folder) = self.folders.get_mut(&id) {
                folder.name = new;
            }
        }
        Ok(())
    }

    /// Copies (RFC 4315 COPYUID) or moves (RFC 6851) messages; returns the account
    /// of the destination and the UID pairs.
    fn copy(
        &mut self,
        from: FolderId,
        uids: &[u32],
        to: FolderId,
        moving: bool,
        touched: &mut Touched,
    ) -> Result<(String, OpResult), OpError> {
        let source = self.folder(from).ok_or(OpError::NoFolder(from))?;
        if self.folder(to).is_none() {
            return Err(OpError::NoFolder(to));
        }
        let picked: Vec<Message> = uids
            .iter()
            .filter_map(|uid| source.messages.get(uid).cloned())
            .collect();
        let mut pairs = Vec::with_capacity(picked.len());
        for message in &picked {
            let (_, uid) = self.append(
                to,
                message.body,
                message.flags.clone(),
                message.internal_date,
            )?;
            pairs.push((message.uid, uid));
        }
        if moving {
            let moved: Vec<u32> = picked.iter().map(|m| m.uid).collect();
            self.expunge(from, &moved, touched);
        }
        let destination = &self.folders[&to];
        let result = OpResult::Copied {
            uidvalidity: destination.uidvalidity,
            pairs,
        };
        Ok((destination.account.clone(), result))
    }

    /// Changes flags (RFC 3501 §6.4.6); returns the folder's account and what changed.
    fn store_flags(
        &mut self,
        folder: FolderId,
        uids: &[u32],
        action: FlagAction,
        flags: &Flags,
        unchanged_since: Option<u64>,
    ) -> Result<(String, OpResult), OpError> {
        let f = self.folder_mut(folder)?;
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
                        .filter(|k| !flags.keywords.iter().any(|r| r.eq_ignore_ascii_case(k)))
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
        Ok((f.account.clone(), OpResult::Stored { changed, failed }))
    }

    fn folder_mut(&mut self, id: FolderId) -> Result<&mut Folder, OpError> {
        self.folders.get_mut(&id).ok_or(OpError::NoFolder(id))
    }

    pub(super) fn new_folder(
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
        self.folder_sync.subscribe(account, name);
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

    /// Adds a message; returns the folder's UIDVALIDITY and the new UID.
    pub(super) fn append(
        &mut self,
        folder: FolderId,
        body: BodyId,
        flags: Flags,
        internal_date: UnixTime,
    ) -> Result<(u32, u32), OpError> {
        let size = self.bodies.get(&body).ok_or(OpError::NoBody(body))?.loc.len;
        let f = self.folder_mut(folder)?;
        if f.uidnext == u32::MAX {
            return Err(OpError::UidsExhausted(folder));
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
    pub(super) fn expunge(
        &mut self,
        folder: FolderId,
        uids: &[u32],
        touched: &mut Touched,
    ) -> Vec<u32> {
        let Some(f) = self.folders.get_mut(&folder) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        let mut messages = Vec::new();
        for uid in uids {
            if let Some(message) = f.messages.remove(uid) {
                removed.push(*uid);
                messages.push(message);
            }
        }
        if !removed.is_empty() {
            f.highest_modseq += 1;
        }
        let modseq = f.highest_modseq;
        if !removed.is_empty() {
            self.folder_sync.record_expunge(folder, modseq, &removed);
        }
        for message in messages {
            let body = message.body;
            // RFC 2180 §4.1.1: sessions that still show it can still read it.
            if let Some(info) = self.bodies.get(&body) {
                let loc = info.loc;
                self.retained.keep(
                    folder,
                    RetainedMessage {
                        modseq,
                        message,
                        loc,
                    },
                );
            }
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

    pub(super) fn drop_folder(&mut self, id: FolderId, touched: &mut Touched) {
        if let Some(folder) = self.folders.get(&id) {
            let uids: Vec<u32> = folder.messages.keys().copied().collect();
            self.expunge(id, &uids, touched);
            self.folders.remove(&id);
            self.folder_sync.forget_folder(id);
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
}
