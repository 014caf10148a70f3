//! An archived message's searchable text (`text::archive_text`): bounded, never a
//! stack overflow however the MIME parts nest, and text search finds what the text
//! holds (see `lifeboat_store::fuzz_support::store_archive_text`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lifeboat_store::fuzz_support::store_archive_text(data);
});
