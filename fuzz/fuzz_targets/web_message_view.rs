//! The archive message view of the web API (`api::message_view`): header and text
//! bounded, attachments sized within the message, valid JSON (see
//! `lifeboat_web::fuzz_support::web_message_view`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lifeboat_web::fuzz_support::web_message_view(data);
});
