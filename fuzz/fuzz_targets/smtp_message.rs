//! A message as the relay stores it: the header fields the archive keeps
//! (`relay::header_fields`) stay within their limit, and a bounce quoting it is a
//! well-formed three-part report (see `lifeboat_smtp::relay::check::check_message`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lifeboat_smtp::relay::check::check_message(data);
});
