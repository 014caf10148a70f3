//! NAMESPACE — RFC 2342 §5: one personal namespace with no prefix; nothing is shared.

use super::super::names::DELIMITER;
use super::super::Reply;
use crate::types::{Data, Delimiter, IString, NamespaceDescription, Response};

pub(crate) fn run(out: &mut Vec<u8>) -> Reply {
    let personal = IString::try_from("")
        .ok()
        .map(|prefix| NamespaceDescription {
            prefix,
            delimiter: Delimiter::try_from(DELIMITER).ok(),
        })
        .into_iter()
        .collect();
    Response::Data(Data::Namespace {
        personal,
        other_users: Vec::new(),
        shared: Vec::new(),
    })
    .encode(out);
    Reply::ok("NAMESPACE completed")
}
