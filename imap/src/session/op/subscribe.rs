//! SUBSCRIBE and UNSUBSCRIBE — RFC 3501 §6.3.6, §6.3.7. Only existing mailboxes can be
//! subscribed (the store keeps the subscription on the folder).

use lifeboat_store::{Batch, Op};

use super::super::{Core, Reply};
use crate::types::Mailbox;

pub(crate) async fn run(core: &mut Core, mailbox: &Mailbox<'_>, subscribed: bool) -> Reply {
    let (folder, _) = match super::folder_of(core, mailbox) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let mut batch = Batch::new();
    batch.push(Op::Subscribe { folder, subscribed });
    match core.commit(batch).await {
        Ok(results) => super::failed(&results).unwrap_or_else(|| {
            Reply::ok(if subscribed {
                "SUBSCRIBE completed"
            } else {
                "UNSUBSCRIBE completed"
            })
        }),
        Err(reply) => reply,
    }
}
