//! CAPABILITY — RFC 3501 §6.1.1.

use super::super::{Core, Reply};
use crate::types::{Data, Response};

pub(crate) fn run(core: &Core, out: &mut Vec<u8>) -> Reply {
    Response::Data(Data::Capability(core.capabilities())).encode(out);
    Reply::ok("CAPABILITY completed")
}
