//! Replays every file of fuzz/corpus/<target>/ and fuzz/regressions/<target>/ through
//! the code the fuzz targets run, so that past findings stay fixed on stable Rust.

use std::path::PathBuf;

use lifeboat_imap::fuzz_support;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut replayed = 0;
    for folder in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(folder).join(target)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.map(|entry| entry.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{} fails", path.display());
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn imap_command_corpus() {
    assert!(replay("imap_command", fuzz_support::imap_command) >= 12);
}

#[test]
fn imap_framer_corpus() {
    assert!(replay("imap_framer", fuzz_support::imap_framer) >= 12);
}

#[test]
fn imap_mime_corpus() {
    assert!(replay("imap_mime", fuzz_support::imap_mime) >= 10);
}
