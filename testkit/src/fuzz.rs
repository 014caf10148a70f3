//! The fuzz corpora (`fuzz/corpus/<target>/`) and the inputs that once made a target
//! fail (`fuzz/regressions/<target>/`), replayed through the same checks the fuzz
//! targets run, so that every test run exercises them on stable Rust.

use std::path::{Path, PathBuf};

/// How many files of each kind were replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// From `fuzz/corpus/<target>/`.
    pub corpus: usize,
    /// From `fuzz/regressions/<target>/`.
    pub regressions: usize,
}

impl Replayed {
    /// Both together.
    pub fn total(&self) -> usize {
        self.corpus + self.regressions
    }
}

/// Runs `check` over every input of `target`; an input whose check panics fails the
/// test, naming the file.
pub fn replay(target: &str, check: fn(&[u8])) -> Replayed {
    let count = |kind: &str| {
        let files = inputs(kind, target);
        for path in &files {
            let bytes = std::fs::read(path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&bytes));
            assert!(outcome.is_ok(), "{} fails its check", path.display());
        }
        files.len()
    };
    Replayed {
        corpus: count("corpus"),
        regressions: count("regressions"),
    }
}

/// The files of `fuzz/<kind>/<target>/` in name order, hidden ones left out
/// (libFuzzer keeps state there). A missing folder has none.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .filter(|path| {
            !path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with('.'))
        })
        .collect();
    files.sort();
    files
}
