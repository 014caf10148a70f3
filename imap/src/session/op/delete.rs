//! DELETE — RFC 3501 §6.3.4. The folder and its messages go; inferior names stay
//! (and the deleted name then lists as `\Noselect`, as RFC 3501 describes). INBOX
//! cannot be deleted. Messages deleted from INBOX lose their drain entries in the
//! store, so they are never redelivered (SPEC §1).

use lifeboat_store::{Batch, Op, Protocol, TraceNote, INBOX};

use super::super::{Core, Reply};
use crate::types::{Code, Mailbox};

pub(crate) async fn run(core: &mut Core, mailbox: &Mailbox<'_>) -> Reply {
    let (_, name) = match super::folder_of(core, mailbox) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    if name == INBOX {
        return Reply::no(Some(Code::Cannot), "INBOX cannot be deleted");
    }
    let mut batch = Batch::new();
    batch.push(Op::Trace(TraceNote::Via(Protocol::Imap)));
    batch.push(Op::DeleteFolder {
        account: core.logged_in().to_string(),
        name,
    });
    match core.commit(batch).await {
        Ok(results) => super::failed(&results).unwrap_or_else(|| Reply::ok("DELETE completed")),
        Err(reply) => reply,
    }
}
