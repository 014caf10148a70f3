//! What the `store_archive_text` fuzz target runs, kept in the crate so that a
//! regular test (tests/fuzz_corpus.rs) replays the corpus through exactly the same
//! code. Panics when an invariant of [`crate::text`] does not hold.

use crate::text::{analyzer, archive_text, words, TextQuery, MESSAGE_TEXT_BYTES_MAX};
use crate::{ArchiveEntry, ArchiveId, BodyId, Direction, HeaderFields};

/// Target `store_archive_text`: the input is an archived message's octets.
///
/// - Its searchable text never passes [`MESSAGE_TEXT_BYTES_MAX`] and starts with the
///   entry's header fields.
/// - Parsing it never exhausts the stack or panics, however the MIME parts nest.
/// - Search finds what the text holds: a query made of any piece of the text between
///   white space matches the text, the way the index and the scan both answer.
pub fn store_archive_text(data: &[u8]) {
    let entry = ArchiveEntry {
        id: ArchiveId(1),
        body: BodyId(1),
        direction: Direction::In,
        mail_from: "sender@example.test".into(),
        rcpt_to: vec!["rcpt@example.test".into()],
        date: 1_700_000_000,
        size: data.len() as u64,
        headers: HeaderFields {
            from: "Ann Sender <sender@example.test>".into(),
            to: "rcpt@example.test".into(),
            cc: String::new(),
            subject: "Quarterly figures".into(),
            message_id: "<1@example.test>".into(),
            date: String::new(),
        },
    };
    let text = archive_text(&entry, data);
    assert!(text.len() <= MESSAGE_TEXT_BYTES_MAX, "{} bytes", text.len());
    assert!(text
        .starts_with("Ann Sender <sender@example.test>\nrcpt@example.test\n\nQuarterly figures\n"));

    let mut analyzer = analyzer();
    let pieces: Vec<&str> = text.split_whitespace().collect();
    let picks = [
        0,
        pieces.len() / 3,
        pieces.len() / 2,
        pieces.len().saturating_sub(1),
    ];
    for &index in picks.iter().filter(|&&index| index < pieces.len()) {
        let piece = pieces[index];
        if let Some(query) = TextQuery::new(piece) {
            assert!(
                query.matches(&mut analyzer, &text),
                "{piece:?} is in the text and not found"
            );
        }
    }
    // Queries are made from any text a user types.
    let typed = String::from_utf8_lossy(&data[..data.len().min(256)]);
    if let Some(query) = TextQuery::new(&typed) {
        assert!(!query.words().is_empty());
        assert!(query.matches(&mut analyzer, &typed));
    }
    let _ = words(&mut analyzer, &typed);
}
