//! NAMESPACE — RFC 2342 §5: two personal namespaces, the folders (no prefix) and the
//! read-only archive (`#archive/`, `session/archive.rs`); nothing is shared.

use super::super::archive;
use super::super::names::DELIMITER;
use super::super::{Core, Reply};
use crate::types::{Data, Delimiter, IString, NamespaceDescription, Response};

pub(crate) fn run(_core: &Core, out: &mut Vec<u8>) -> Reply {
    // The account's folders, then its archive (`session/archive.rs`).
    let personal = ["", archive::PREFIX]
        .into_iter()
        .filter_map(|prefix| IString::try_from(prefix).ok())
        .map(|prefix| NamespaceDescription {
            prefix,
            delimiter: Delimiter::try_from(DELIMITER).ok(),
        })
        .collect();
    Response::Data(Data::Namespace {
        personal,
        other_users: Vec::new(),
        shared: Vec::new(),
    })
    .encode(out);
    Reply::ok("NAMESPACE completed")
}
