//! What mail clients resynchronising with their folders need beyond the folders
//! themselves: the names each account subscribed to, and the UIDs recently expunged
//! from each folder with the modification sequence of their expunge.
//!
//! - Subscriptions are names (RFC 3501 §6.3.6, RFC 9051 §6.3.9): a name stays
//!   subscribed when its folder is deleted, and a name can be subscribed before any
//!   folder has it. Creating a folder subscribes its name (the store always did);
//!   renaming a folder moves the subscriptions of the names it renames.
//! - Expunged UIDs serve QRESYNC (RFC 7162 §3.2.5, §3.2.6): for each folder, up to
//!   [`EXPUNGED_REMEMBERED_PER_FOLDER`] of the latest expunges, oldest first. Older
//!   ones are forgotten and the folder's `horizon` rises to the modification sequence
//!   of the last one forgotten: what was expunged after the horizon is known exactly,
//!   what came before it is not (callers then answer as RFC 7162 §3.2.6 allows, with
//!   every UID that no longer exists).
//!
//! Invariants: the whole of this state is the result of applying the log, like the
//! rest of [`State`](super::State) (deterministic, replayed the same way); a
//! checkpoint carries it after the rest of the state, and a checkpoint written before
//! it existed loads with the subscriptions the folders' flags held and a horizon at
//! each folder's highest modification sequence.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::State;
use crate::model::*;

/// Expunges remembered per folder for QRESYNC; older ones raise the horizon. At 12
/// octets each, a folder's log stays under 120 KiB.
pub const EXPUNGED_REMEMBERED_PER_FOLDER: usize = 10_000;

/// The expunges of one folder.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ExpungeLog {
    /// Expunges with a modification sequence above this one are all in `entries`.
    horizon: u64,
    /// `(modseq of the expunge, UID)`, in the order applied (modseq ascending).
    entries: VecDeque<(u64, u32)>,
}

/// Subscriptions and expunge logs; see the module documentation.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderSync {
    subscriptions: BTreeMap<String, BTreeSet<String>>,
    expunged: HashMap<FolderId, ExpungeLog>,
}

/// What a folder's expunge log knows about the expunges after a modification
/// sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpungedSince {
    /// Exactly these UIDs were expunged after it (ascending, without duplicates).
    Known(Vec<u32>),
    /// It lies before the folder's horizon: some of those expunges are forgotten.
    BeforeHorizon,
}

impl FolderSync {
    /// The state of a checkpoint written before this module existed: the folders'
    /// subscription flags, and no expunge known below any folder's highest
    /// modification sequence.
    pub(crate) fn derived_from_checkpoint(state: &State) -> FolderSync {
        let mut sync = FolderSync::default();
        for folder in state.all_folders() {
            if folder.subscribed {
                sync.subscribe(&folder.account, &folder.name);
            }
            sync.expunged.insert(
                folder.id,
                ExpungeLog {
                    horizon: folder.highest_modseq,
                    entries: VecDeque::new(),
                },
            );
        }
        sync
    }

    pub(super) fn subscribe(&mut self, account: &str, name: &str) {
        self.subscriptions
            .entry(account.to_string())
            .or_default()
            .insert(name.to_string());
    }

    pub(super) fn unsubscribe(&mut self, account: &str, name: &str) {
        if let Some(names) = self.subscriptions.get_mut(account) {
            names.remove(name);
            if names.is_empty() {
                self.subscriptions.remove(account);
            }
        }
    }

    pub(super) fn set_subscribed(&mut self, account: &str, name: &str, subscribed: bool) {
        if subscribed {
            self.subscribe(account, name);
        } else {
            self.unsubscribe(account, name);
        }
    }

    pub(super) fn is_subscribed(&self, account: &str, name: &str) -> bool {
        self.subscriptions
            .get(account)
            .is_some_and(|names| names.contains(name))
    }

    pub(super) fn forget_account(&mut self, account: &str) {
        self.subscriptions.remove(account);
    }

    /// Records that `uids` left `folder` with the expunge that raised its highest
    /// modification sequence to `modseq`.
    pub(super) fn record_expunge(&mut self, folder: FolderId, modseq: u64, uids: &[u32]) {
        let log = self.expunged.entry(folder).or_default();
        for &uid in uids {
            log.entries.push_back((modseq, uid));
        }
        while log.entries.len() > EXPUNGED_REMEMBERED_PER_FOLDER {
            if let Some((forgotten, _)) = log.entries.pop_front() {
                log.horizon = log.horizon.max(forgotten);
            }
        }
    }

    pub(super) fn forget_folder(&mut self, folder: FolderId) {
        self.expunged.remove(&folder);
    }

    fn expunged_since(&self, folder: FolderId, since: u64) -> ExpungedSince {
        let Some(log) = self.expunged.get(&folder) else {
            return ExpungedSince::Known(Vec::new());
        };
        if since < log.horizon {
            return ExpungedSince::BeforeHorizon;
        }
        let start = log.entries.partition_point(|(modseq, _)| *modseq <= since);
        let mut uids: Vec<u32> = log.entries.range(start..).map(|(_, uid)| *uid).collect();
        uids.sort_unstable();
        uids.dedup();
        ExpungedSince::Known(uids)
    }
}

impl State {
    /// The names `account` subscribed to, in name order; folders or not.
    /// (The address is looked up as [`State::account`] does.)
    pub fn subscriptions(&self, account: &str) -> impl Iterator<Item = &str> {
        self.account(account)
            .and_then(|account| self.folder_sync.subscriptions.get(&account.address))
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// Whether `account` subscribed to `name`.
    pub fn is_subscribed(&self, account: &str, name: &str) -> bool {
        self.account(account).is_some_and(|account| {
            self.folder_sync
                .is_subscribed(&account.address, &super::canonical_folder_name(name))
        })
    }

    /// The UIDs expunged from `folder` after modification sequence `since`, as far
    /// as the folder's expunge log reaches (see the module documentation).
    pub fn expunged_since(&self, folder: FolderId, since: u64) -> ExpungedSince {
        self.folder_sync.expunged_since(folder, since)
    }

    /// Applies [`Op::SetSubscription`]: the name's subscription, and the flag of
    /// the folder of that name if there is one.
    pub(super) fn set_subscription(
        &mut self,
        account: &str,
        name: &str,
        subscribed: bool,
    ) -> Result<(), super::OpError> {
        let name = super::canonical_folder_name(name);
        let folder = self.account_mut(account)?.folders.get(&name).copied();
        if let Some(folder) = folder.and_then(|id| self.folders.get_mut(&id)) {
            folder.subscribed = subscribed;
        }
        self.folder_sync.set_subscribed(account, &name, subscribed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_bounded_and_its_horizon_rises() {
        let mut sync = FolderSync::default();
        let folder = FolderId(7);
        assert_eq!(
            sync.expunged_since(folder, 0),
            ExpungedSince::Known(Vec::new())
        );
        sync.record_expunge(folder, 5, &[3, 1]);
        sync.record_expunge(folder, 9, &[8]);
        assert_eq!(
            sync.expunged_since(folder, 0),
            ExpungedSince::Known(vec![1, 3, 8])
        );
        assert_eq!(
            sync.expunged_since(folder, 5),
            ExpungedSince::Known(vec![8])
        );
        assert_eq!(
            sync.expunged_since(folder, 9),
            ExpungedSince::Known(Vec::new())
        );
        let uids: Vec<u32> = (100..100 + EXPUNGED_REMEMBERED_PER_FOLDER as u32).collect();
        sync.record_expunge(folder, 12, &uids);
        // The three older expunges were forgotten; the horizon is the newest of them.
        assert_eq!(sync.expunged_since(folder, 8), ExpungedSince::BeforeHorizon);
        assert!(matches!(
            sync.expunged_since(folder, 9),
            ExpungedSince::Known(known) if known == uids
        ));
        sync.forget_folder(folder);
        assert_eq!(
            sync.expunged_since(folder, 0),
            ExpungedSince::Known(Vec::new())
        );
    }

    #[test]
    fn subscriptions_are_names() {
        let mut sync = FolderSync::default();
        sync.subscribe("a@x.test", "Lists/rust");
        sync.subscribe("a@x.test", "INBOX");
        assert!(sync.is_subscribed("a@x.test", "Lists/rust"));
        assert!(!sync.is_subscribed("b@x.test", "Lists/rust"));
        sync.unsubscribe("a@x.test", "Lists/rust");
        assert!(!sync.is_subscribed("a@x.test", "Lists/rust"));
        assert!(sync.is_subscribed("a@x.test", "INBOX"));
        sync.forget_account("a@x.test");
        assert!(!sync.is_subscribed("a@x.test", "INBOX"));
    }
}
