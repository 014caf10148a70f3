//! IMAP command units: `parse::command`, `idle_done` and `authenticate_data` over any
//! bytes; every parsed command is encoded (both literal styles) and parsed again to
//! the same value, and its strict prefixes must be incomplete. The checks live in
//! `lifeboat_imap::fuzz_support::imap_command`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lifeboat_imap::fuzz_support::imap_command(data);
});
