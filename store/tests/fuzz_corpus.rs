//! Replays every file of fuzz/corpus/<target>/ and fuzz/regressions/<target>/ through
//! the checks the fuzz targets run, so that past findings stay fixed on stable Rust.

use std::path::PathBuf;

use lifeboat_store::fuzz_support;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut replayed = 0;
    for folder in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(folder).join(target)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_file())
            .filter(|path| {
                !path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with('.'))
            })
            .collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{} fails its check", path.display());
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn store_archive_text_corpus() {
    let replayed = replay("store_archive_text", fuzz_support::store_archive_text);
    assert!(
        replayed >= 10,
        "expected the seed corpus, replayed {replayed} files"
    );
}
