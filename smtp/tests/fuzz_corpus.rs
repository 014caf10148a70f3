//! Replays the fuzz corpora (`fuzz/corpus/<target>/`) and the inputs that once made a
//! target fail (`fuzz/regressions/<target>/`) through the same checks the fuzz targets
//! run, so they are exercised on stable Rust by every test run.

use std::fs;
use std::path::{Path, PathBuf};

use lifeboat_smtp::parse::check::{check_command_stream, check_data_stream, check_reply_stream};
use lifeboat_smtp::relay::check::check_message;
use lifeboat_smtp::session::check::check_session_stream;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, hidden files left out (libFuzzer keeps state
/// there). Missing folders give no files.
fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<(PathBuf, Vec<u8>)> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .filter(|path| {
            !path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with('.'))
        })
        .map(|path| {
            let bytes = fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    let corpus = inputs("corpus", target);
    assert!(
        corpus.len() >= 10,
        "expected a seed corpus in fuzz/corpus/{target}, found {} files",
        corpus.len()
    );
    for (path, bytes) in corpus.iter().chain(inputs("regressions", target).iter()) {
        let result = std::panic::catch_unwind(|| check(bytes));
        assert!(result.is_ok(), "{} fails its check", path.display());
    }
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
