//! SUBSCRIBE and UNSUBSCRIBE — RFC 3501 §6.3.6, §6.3.7. Subscriptions are names, kept
//! by the store per account (`Op::SetSubscription`): "A server MAY validate the
//! mailbox argument to SUBSCRIBE to verify that it exists. However, it MUST NOT
//! unilaterally remove an existing mailbox name from the subscription list even if a
//! mailbox by that name no longer exists." This server does not require that the
//! mailbox exist, and unsubscribing one name leaves every other.

use lifeboat_store::{Batch, Op};

use super::super::names::check_new;
use super::super::{Core, Reply};
use crate::types::{Code, Mailbox};

pub(crate) async fn run(core: &mut Core, mailbox: &Mailbox<'_>, subscribed: bool) -> Reply {
    let name = match super::store_name(core, mailbox) {
        Ok(name) => name,
        Err(reply) => return reply,
    };
    if check_new(&name).is_err() {
        return Reply::no(Some(Code::Cannot), "Invalid mailbox name");
    }
    let mut batch = Batch::new();
    batch.push(Op::SetSubscription {
        account: core.logged_in().to_string(),
        name,
        subscribed,
    });
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
