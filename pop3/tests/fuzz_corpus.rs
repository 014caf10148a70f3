//! Replays every file of fuzz/corpus/pop3_command/ and fuzz/regressions/pop3_command/
//! through the checks the fuzz target runs, so that past findings stay fixed on
//! stable Rust.

use lifeboat_pop3::fuzz_support;
use lifeboat_testkit::fuzz;

#[test]
fn pop3_command_corpus() {
    let replayed = fuzz::replay("pop3_command", fuzz_support::pop3_command).total();
    assert!(
        replayed >= 12,
        "expected the seed corpus, replayed {replayed} files"
    );
}

#[test]
fn pop3_message_corpus() {
    let replayed = fuzz::replay("pop3_message", fuzz_support::pop3_message).total();
    assert!(
        replayed >= 10,
        "expected the seed corpus, replayed {replayed} files"
    );
}
