//! What the fuzz targets run, kept in the crate so a regular test can replay the
//! corpora through exactly the same code (imap/tests/fuzz_corpus.rs).

/// Placeholder until the targets are written.
pub fn imap_command(_data: &[u8]) {}
