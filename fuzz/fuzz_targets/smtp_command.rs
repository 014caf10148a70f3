//! SMTP command lines and AUTH continuation lines: `decode_command` and
//! `decode_auth_response` over a client byte stream, whole and in chunks, with every
//! decoded command encoded and decoded again. The first byte picks the line limit and
//! the chunking (see `lifeboat_smtp::parse::check::check_command_stream`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lifeboat_smtp::parse::check::check_command_stream(data);
});
