//! STARTTLS — RFC 3501 §6.2.1. The tagged OK goes out in plaintext; the server then
//! runs the handshake, and input that arrived after this command is discarded by the
//! session and by `Framed::start_tls` (RFC 3501 §6.2.1, CVE-2011-0411).

use super::super::{text_of, Core, Reply};
use crate::types::{Condition, Response, Status, Tag};

pub(crate) fn run(core: &Core, tag: &Tag<'_>, out: &mut Vec<u8>) -> Reply {
    if core.tls {
        return Reply::bad("TLS is already active");
    }
    if !core.config.tls_available {
        return Reply::no(None, "TLS is not available");
    }
    Response::Status(Status::tagged(
        tag.clone(),
        Condition::Ok,
        None,
        text_of("Begin TLS negotiation now".to_string()),
    ))
    .encode(out);
    Reply::StartTls
}
