//! Replays the fuzz corpora (`fuzz/corpus/<target>/`) and the inputs that once made a
//! target fail (`fuzz/regressions/<target>/`) through the same checks the fuzz targets
//! run, so they are exercised on stable Rust by every test run.

use lifeboat_smtp::parse::check::{check_command_stream, check_data_stream, check_reply_stream};
use lifeboat_smtp::relay::check::check_message;
use lifeboat_smtp::session::check::check_session_stream;
use lifeboat_testkit::fuzz;

fn replay(target: &str, check: fn(&[u8])) {
    let replayed = fuzz::replay(target, check);
    assert!(
        replayed.corpus >= 10,
        "expected a seed corpus in fuzz/corpus/{target}, found {} files",
        replayed.corpus
    );
}

#[test]
fn smtp_command_corpus() {
    replay("smtp_command", check_command_stream);
}

#[test]
fn smtp_data_corpus() {
    replay("smtp_data", check_data_stream);
}

#[test]
fn smtp_reply_corpus() {
    replay("smtp_reply", check_reply_stream);
}

#[test]
fn smtp_session_corpus() {
    replay("smtp_session", check_session_stream);
}

#[test]
fn smtp_message_corpus() {
    replay("smtp_message", check_message);
}
