//! A stored message through what IMAP FETCH and SEARCH take from it
//! (`mime::Parsed`): ENVELOPE, BODY and BODYSTRUCTURE encode to one well-formed response
//! line, the envelope does not depend on the parse depth, sections stay within the
//! message (see `lifeboat_imap::fuzz_support::imap_mime`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lifeboat_imap::fuzz_support::imap_mime(data);
});
