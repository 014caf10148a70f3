//! ID — RFC 2971 §3.1: the client's parameters are accepted and ignored; the answer
//! names the server but no version (RFC 2971 §5 notes what a version tells attackers).

use super::super::{Reply, IMPLEMENTATION};
use crate::types::{Data, IString, Response};

pub(crate) fn run(out: &mut Vec<u8>) -> Reply {
    let pair = IString::try_from("name")
        .and_then(|name| Ok((name, Some(IString::try_from(IMPLEMENTATION)?))));
    let parameters = pair.ok().map(|pair| vec![pair]);
    Response::Data(Data::Id(parameters)).encode(out);
    Reply::ok("ID completed")
}
