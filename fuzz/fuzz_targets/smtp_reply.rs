//! Replies an SMTP server sends, as the relay's client reads them
//! (`parse::decode_reply`): whole, in seeded chunks and byte by byte they give the same
//! replies, which agree with a second, line-by-line reading, whose strict prefixes are
//! incomplete, and which `encode_reply` writes back to the same reply. The first byte
//! picks the limits and the chunking (see
//! `lifeboat_smtp::parse::check::check_reply_stream`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lifeboat_smtp::parse::check::check_reply_stream(data);
});
