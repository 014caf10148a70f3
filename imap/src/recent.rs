//! Which messages are `\Recent` — RFC 3501 §2.3.2: a message is recent in exactly one
//! session, the first to see the mailbox after the message arrived: the first to
//! SELECT it, or, for a message that arrives while sessions have the mailbox
//! selected, the first of them to report it. EXAMINE and STATUS look without taking.
//!
//! One [`RecentMarks`] is shared by every session of the server, on every core: per
//! folder, the highest UID some session has taken. It lives in memory; at start it
//! begins at every folder's last UID, so after a restart only mail that arrives from
//! then on is recent (a folder created later starts at 0: all of its mail is new).

use std::collections::HashMap;

use lifeboat_store::{Folder, FolderId, State};
use parking_lot::Mutex;

/// Per folder (and UIDVALIDITY), the highest UID taken as recent by some session.
#[derive(Debug, Default)]
pub struct RecentMarks {
    marks: Mutex<HashMap<FolderId, (u32, u32)>>,
}

impl RecentMarks {
    /// Marks that make every message already in `state` old.
    pub fn new(state: &State) -> RecentMarks {
        let marks = state
            .all_folders()
            .map(|f| (f.id, (f.uidvalidity, f.uidnext.saturating_sub(1))))
            .collect();
        RecentMarks {
            marks: Mutex::new(marks),
        }
    }

    fn mark(marks: &HashMap<FolderId, (u32, u32)>, folder: &Folder) -> u32 {
        match marks.get(&folder.id) {
            Some(&(uidvalidity, uid)) if uidvalidity == folder.uidvalidity => uid,
            _ => 0,
        }
    }

    /// Takes the messages of `folder` up to `last_uid` for the caller; returns the
    /// previous mark: the caller's recent messages are those above it.
    pub(crate) fn take(&self, folder: &Folder, last_uid: u32) -> u32 {
        let mut marks = self.marks.lock();
        let before = Self::mark(&marks, folder);
        if last_uid > before {
            marks.insert(folder.id, (folder.uidvalidity, last_uid));
        }
        before
    }

    /// The mark, without taking anything: messages above it are recent for whoever
    /// takes them next.
    pub(crate) fn peek(&self, folder: &Folder) -> u32 {
        Self::mark(&self.marks.lock(), folder)
    }

    /// How many messages of `folder` no session has taken yet (STATUS RECENT).
    pub(crate) fn untaken(&self, folder: &Folder) -> u32 {
        let mark = self.peek(folder);
        let count = folder.messages.range(mark.saturating_add(1)..).count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }
}
