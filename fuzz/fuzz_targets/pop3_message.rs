//! A stored message sent by RETR and TOP (`encode::MessageEncoder`): CRLF lines,
//! byte-stuffed, terminated once, independent of the chunk size, exactly the size LIST
//! announces, and TOP a prefix of RETR. The first byte picks the chunk size (see
//! `lifeboat_pop3::fuzz_support::pop3_message`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lifeboat_pop3::fuzz_support::pop3_message(data);
});
