//! A message read in webmail (`archive::view_of`, `safe_html_of`, the attachments and
//! their downloads, `mail::list::summary`, the composer's reply and forward fields):
//! no script or remote load in the sanitised HTML, downloads never rendered, every
//! listed attachment fetchable (see `lifeboat_web::fuzz_support::web_mail_read`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lifeboat_web::fuzz_support::web_mail_read(data);
});
