//! Replays every file of fuzz/corpus/<target>/ and fuzz/regressions/<target>/ through
//! the checks the fuzz targets run, so that past findings stay fixed on stable Rust.

use lifeboat_store::fuzz_support;
use lifeboat_testkit::fuzz;

#[test]
fn store_archive_text_corpus() {
    let replayed = fuzz::replay("store_archive_text", fuzz_support::store_archive_text).total();
    assert!(
        replayed >= 10,
        "expected the seed corpus, replayed {replayed} files"
    );
}
