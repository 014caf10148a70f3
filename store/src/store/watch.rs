//! Folder watches: how far each session showing a folder has caught up with it, so
//! that expunged messages stay readable exactly as long as a session may still show
//! them (RFC 2180 §4.1.1, `state/retained.rs`).
//!
//! Invariants: a watch registers before its session reads the folder (it starts at
//! 0, holding everything expunged from then on), so no expunge can slip between the
//! session's read and its registration; after each group commit the writer drops the
//! retained messages whose expunge every watch of their folder has caught up with.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::Store;
use crate::model::FolderId;

/// One watch: its id and how far it caught up.
type Entry = (u64, Arc<AtomicU64>);

/// The watches of every folder.
#[derive(Debug, Default)]
pub(super) struct Watches {
    folders: Mutex<HashMap<FolderId, Vec<Entry>>>,
    next_id: AtomicU64,
}

impl Watches {
    /// The lowest modification sequence a watcher of `folder` caught up to; `None`
    /// when nobody watches it.
    pub(super) fn floors(&self) -> HashMap<FolderId, u64> {
        self.folders
            .lock()
            .iter()
            .filter_map(|(folder, watches)| {
                let floor = watches
                    .iter()
                    .map(|(_, synced)| synced.load(Ordering::Acquire))
                    .min()?;
                Some((*folder, floor))
            })
            .collect()
    }
}

/// A session's hold on the expunged messages of one folder: until it is dropped,
/// every message expunged from the folder after the modification sequence last given
/// to [`FolderWatch::caught_up`] stays readable through
/// [`State::retained`](crate::State::retained) and [`Store::read_at`].
#[derive(Debug)]
pub struct FolderWatch {
    watches: Arc<Watches>,
    folder: FolderId,
    id: u64,
    synced: Arc<AtomicU64>,
}

impl FolderWatch {
    /// The folder watched.
    pub fn folder(&self) -> FolderId {
        self.folder
    }

    /// The session has caught up with the folder up to `modseq` (its highest
    /// modification sequence when the session last compared itself with it): what
    /// was expunged up to there may be forgotten.
    pub fn caught_up(&self, modseq: u64) {
        self.synced.fetch_max(modseq, Ordering::AcqRel);
    }
}

impl Drop for FolderWatch {
    fn drop(&mut self) {
        let mut folders = self.watches.folders.lock();
        if let Some(watches) = folders.get_mut(&self.folder) {
            watches.retain(|(id, _)| *id != self.id);
            if watches.is_empty() {
                folders.remove(&self.folder);
            }
        }
    }
}

impl Store {
    /// Starts watching `folder` (see [`FolderWatch`]). Take the watch before reading
    /// the folder.
    pub fn watch_folder(&self, folder: FolderId) -> FolderWatch {
        let watches = self.shared().watches.clone();
        let id = watches.next_id.fetch_add(1, Ordering::Relaxed);
        let synced = Arc::new(AtomicU64::new(0));
        watches
            .folders
            .lock()
            .entry(folder)
            .or_default()
            .push((id, synced.clone()));
        FolderWatch {
            watches,
            folder,
            id,
            synced,
        }
    }
}
