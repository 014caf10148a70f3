//! LOGOUT — RFC 3501 §6.1.3: BYE, then the tagged OK, then the connection closes.

use super::super::{text_of, Core, Reply};
use crate::types::{Condition, Response, Status, Tag};

pub(crate) fn run(core: &Core, tag: &Tag<'_>, out: &mut Vec<u8>) -> Reply {
    core.bye(out, None, "Logging out");
    Response::Status(Status::tagged(
        tag.clone(),
        Condition::Ok,
        None,
        text_of("LOGOUT completed".to_string()),
    ))
    .encode(out);
    Reply::Close
}
