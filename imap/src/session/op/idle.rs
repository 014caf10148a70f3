//! IDLE — RFC 2177. The continuation request starts it; changes to the mailbox are
//! reported as they happen (the server calls `Session::idle_update`); `DONE` ends it
//! with the tagged OK. Anything but `DONE` ends it with BAD.

use super::super::{Core, Exchange, Reply, Updates};
use crate::types::{Continue, Response, Tag};

pub(crate) fn run(core: &mut Core, tag: &Tag<'_>, out: &mut Vec<u8>) -> Reply {
    Response::Continue(Continue::Text {
        code: None,
        text: super::super::text_of("idling".to_string()),
    })
    .encode(out);
    core.exchange = Some(Exchange::Idle {
        tag: tag.clone().into_owned(),
    });
    // What changed before IDLE began is reported at once.
    core.updates(Updates::All, out);
    Reply::Continues
}

pub(crate) fn done(ok: bool) -> Reply {
    if ok {
        Reply::ok("IDLE terminated")
    } else {
        Reply::bad("Expected DONE")
    }
}
