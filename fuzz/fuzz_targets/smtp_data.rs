//! The DATA decoder fed in chunks: end of data only at CRLF.CRLF, output checked
//! against a reference un-stuffing, no bare CR, LF or NUL in a successful output, and
//! `encode_data` round trips. The first byte picks the size limit and the chunking
//! (see `lifeboat_smtp::parse::check::check_data_stream`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lifeboat_smtp::parse::check::check_data_stream(data);
});
