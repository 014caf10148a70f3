//! ENABLE — RFC 5161 §3.1. Only CONDSTORE can be enabled; other names are ignored, as
//! the RFC asks for extensions the server does not know.

use super::super::{Core, Reply};
use crate::types::{Capability, Data, Response};

pub(crate) fn run(core: &mut Core, capabilities: &[Capability<'_>], out: &mut Vec<u8>) -> Reply {
    let mut enabled = Vec::new();
    for capability in capabilities {
        if *capability == Capability::CondStore && !enabled.contains(&Capability::CondStore) {
            core.condstore = true;
            enabled.push(Capability::CondStore);
        }
    }
    Response::Data(Data::Enabled(enabled)).encode(out);
    Reply::ok("ENABLE completed")
}
