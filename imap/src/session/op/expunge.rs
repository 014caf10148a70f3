//! EXPUNGE — RFC 3501 §6.4.3 — and UID EXPUNGE — RFC 4315 §2.1. The EXPUNGE
//! responses come from the view's update after the commit. Expunging from INBOX
//! cancels the messages' drain entries in the store (SPEC §1).

use lifeboat_store::{Batch, Op, Protocol, SystemFlags, TraceNote};

use super::super::{Core, Reply};
use crate::types::{Code, SequenceSet};

pub(crate) async fn run(core: &mut Core, uids: Option<&SequenceSet>) -> Reply {
    let store = core.store.clone();
    let view = &core.selected().view;
    let Some(folder) = view.folder() else {
        return super::archive_read_only();
    };
    if view.read_only {
        return Reply::no(Some(Code::ReadOnly), "Mailbox is read-only");
    }
    if uids.is_some_and(|set| set.is_saved()) && view.saved.is_none() {
        return Reply::no(Some(Code::NotSaved), "No search result saved");
    }
    let indices: Vec<usize> = match uids {
        Some(set) => view.resolve_uid_set(set),
        None => (0..view.len()).collect(),
    };
    let deleted: Vec<u32> = view
        .current(&store, &indices)
        .into_iter()
        .filter(|current| !current.expunged)
        .filter(|current| current.message.flags.system.contains(SystemFlags::DELETED))
        .map(|current| current.uid)
        .collect();
    if deleted.is_empty() {
        return Reply::ok("EXPUNGE completed");
    }
    let mut batch = Batch::new();
    batch.push(Op::Trace(TraceNote::Via(Protocol::Imap)));
    batch.push(Op::Expunge {
        folder,
        uids: deleted,
    });
    match core.commit(batch).await {
        Ok(results) => super::failed(&results).unwrap_or_else(|| Reply::ok("EXPUNGE completed")),
        Err(reply) => reply,
    }
}
