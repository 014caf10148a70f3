//! CLOSE — RFC 3501 §6.4.2 — and UNSELECT — RFC 3691. CLOSE expunges the `\Deleted`
//! messages (unless the mailbox was opened with EXAMINE) without sending EXPUNGE
//! responses; UNSELECT leaves them.

use lifeboat_store::{Batch, Op, Protocol, SystemFlags, TraceNote};

use super::super::{Authenticated, Core, Reply, State};

pub(crate) async fn close(core: &mut Core) -> Reply {
    let store = core.store.clone();
    let selected = core.selected();
    let account = selected.account.clone();
    let view = &selected.view;
    let deleted: Vec<u32> = if view.read_only {
        Vec::new()
    } else {
        let all: Vec<usize> = (0..view.len()).collect();
        view.current(&store, &all)
            .into_iter()
            .filter(|current| !current.expunged)
            .filter(|current| current.message.flags.system.contains(SystemFlags::DELETED))
            .map(|current| current.uid)
            .collect()
    };
    let folder = view.folder();
    core.state = State::Authenticated(Authenticated { account });
    let Some(folder) = folder.filter(|_| !deleted.is_empty()) else {
        return Reply::ok("CLOSE completed");
    };
    let mut batch = Batch::new();
    batch.push(Op::Trace(TraceNote::Via(Protocol::Imap)));
    batch.push(Op::Expunge {
        folder,
        uids: deleted,
    });
    match core.commit(batch).await {
        Ok(_) => Reply::ok("CLOSE completed"),
        Err(reply) => reply,
    }
}

pub(crate) fn unselect(core: &mut Core) -> Reply {
    let account = core.selected().account.clone();
    core.state = State::Authenticated(Authenticated { account });
    Reply::ok("UNSELECT completed")
}
