//! The IMAP framer over a client byte stream with literals: fed whole, in random
//! chunks (seeded by the first two bytes) and byte by byte, it must produce the same
//! units, continuation requests and rejections, and keep its buffer bounded. The
//! checks live in `lifeboat_imap::fuzz_support::imap_framer`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lifeboat_imap::fuzz_support::imap_framer(data);
});
