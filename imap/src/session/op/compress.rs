//! COMPRESS — RFC 4978 §3: `COMPRESS DEFLATE` turns on DEFLATE (RFC 1951) in both
//! directions once its tagged OK has been sent; the server does the compressing.
//!
//! Offered only where the server can compress and the connection is encrypted or on
//! loopback ([`SessionConfig::compress_available`](super::super::SessionConfig)); a
//! second COMPRESS answers `NO [COMPRESSIONACTIVE]`.

use super::super::{text_of, Core, Reply};
use crate::types::{Atom, Code, Condition, Response, Status, Tag};

pub(crate) fn run(
    core: &mut Core,
    tag: &Tag<'_>,
    algorithm: &Atom<'_>,
    out: &mut Vec<u8>,
) -> Reply {
    if core.compressed {
        return Reply::no(Some(Code::CompressionActive), "DEFLATE is active already");
    }
    if !core.compress_offered() {
        return Reply::no(None, "Compression is not offered on this connection");
    }
    if !algorithm.eq_ignore_ascii_case("DEFLATE") {
        // RFC 4978 §3: an unknown algorithm is a syntax error.
        return Reply::bad("Unknown compression algorithm");
    }
    core.compressed = true;
    // The tagged OK is the last uncompressed octets.
    Response::Status(Status::tagged(
        tag.clone(),
        Condition::Ok,
        None,
        text_of("DEFLATE active".to_string()),
    ))
    .encode(out);
    Reply::Compress
}
