//! Replays every file of fuzz/corpus/<target>/ and fuzz/regressions/<target>/ through
//! the code the fuzz targets run, so that past findings stay fixed on stable Rust.

use lifeboat_imap::fuzz_support;
use lifeboat_testkit::fuzz::replay;

#[test]
fn imap_command_corpus() {
    assert!(replay("imap_command", fuzz_support::imap_command).total() >= 12);
}

#[test]
fn imap_framer_corpus() {
    assert!(replay("imap_framer", fuzz_support::imap_framer).total() >= 12);
}

#[test]
fn imap_mime_corpus() {
    assert!(replay("imap_mime", fuzz_support::imap_mime).corpus >= 10);
}
