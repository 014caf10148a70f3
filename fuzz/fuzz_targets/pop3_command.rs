//! POP3 client input: `decode_command` and `decode_sasl_response` over a byte stream,
//! whole and in chunks, every decoded command encoded and decoded again, PLAIN
//! messages, and the session state machine fed the same lines (the first byte picks
//! TLS and the plaintext-login policy). The checks live in
//! `lifeboat_pop3::fuzz_support::pop3_command`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lifeboat_pop3::fuzz_support::pop3_command(data);
});
