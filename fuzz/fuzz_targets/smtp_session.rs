//! The SMTP session state machine fed a client byte stream (commands in any state,
//! AUTH PLAIN and LOGIN exchanges, DATA and BDAT bodies) with a fake server: replies are
//! well formed, it never stalls or consumes more than it got, and the transcript is the
//! same whole, cut at seeded places and byte by byte. The first byte picks the AUTH
//! policy and the cuts (see `lifeboat_smtp::session::check::check_session_stream`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lifeboat_smtp::session::check::check_session_stream(data);
});
