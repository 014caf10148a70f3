//! Replays every file of fuzz/corpus/<target>/ and fuzz/regressions/<target>/ through
//! the checks the fuzz targets run, so that past findings stay fixed on stable Rust.

use lifeboat_testkit::fuzz;
use lifeboat_web::fuzz_support;

#[test]
fn web_message_view_corpus() {
    let replayed = fuzz::replay("web_message_view", fuzz_support::web_message_view).total();
    assert!(
        replayed >= 10,
        "expected the seed corpus, replayed {replayed} files"
    );
}

#[test]
fn web_mail_read_corpus() {
    let replayed = fuzz::replay("web_mail_read", fuzz_support::web_mail_read).total();
    assert!(
        replayed >= 10,
        "expected the seed corpus, replayed {replayed} files"
    );
}
