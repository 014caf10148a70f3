//! The archive's full-text index: it finds decoded text, never misses what it has not
//! indexed yet, forgets what retention removed, survives a reopen, and rebuilds itself
//! when it is damaged or belongs to another store.

use std::time::Duration;

use lifeboat_store::*;

const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Archives `count` messages with `body` (a whole message) and `subject`, dated `date`.
fn archive(
    store: &Store,
    count: usize,
    subject: &str,
    body: &str,
    direction: Direction,
    date: i64,
) {
    for chunk in (0..count).collect::<Vec<_>>().chunks(200) {
        let mut batch = Batch::new();
        for _ in chunk {
            let body = batch.put_body(body.as_bytes().to_vec());
            batch.push(Op::Archive(NewArchiveEntry {
                body,
                direction,
                mail_from: "sender@remote.test".into(),
                rcpt_to: vec!["alice@example.test".into()],
                date,
                headers: HeaderFields {
                    subject: subject.into(),
                    ..Default::default()
                },
            }));
        }
        store.commit(batch).unwrap();
    }
}

fn text(words: &str) -> ArchiveQuery {
    ArchiveQuery {
        text: Some(words.into()),
        ..Default::default()
    }
}

fn newest(store: &Store) -> u64 {
    store.read(|s| s.archive().next_back().map_or(0, |e| e.id.0))
}

fn subjects(hits: &[ArchiveEntry]) -> Vec<&str> {
    hits.iter().map(|e| e.headers.subject.as_str()).collect()
}

const QP: &str = "Subject: Bericht\r\nContent-Type: text/plain; charset=utf-8\r\n\
                  Content-Transfer-Encoding: quoted-printable\r\n\r\n\
                  Die Zahlen f=C3=BCr M=C3=BCnchen sind da.\r\n";
const B64: &str = "Subject: Invoice\r\nContent-Type: text/plain\r\n\
                   Content-Transfer-Encoding: base64\r\n\r\nSW52b2ljZSBudW1iZXIgNDI=\r\n";

#[test]
fn finds_decoded_words_indexed_or_not_and_agrees_with_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store"), Options::default()).unwrap();
    archive(&store, 1, "bericht", QP, Direction::In, now());
    archive(&store, 1, "invoice", B64, Direction::Out, now());
    let index = ArchiveIndex::open(dir.path().join("index"), store.clone()).unwrap();
    // Right after a commit the index may not cover it: the search still finds it.
    archive(
        &store,
        1,
        "late",
        "Subject: late\r\n\r\nMünchen again\r\n",
        Direction::In,
        now(),
    );
    assert_eq!(
        subjects(&index.search(&text("münchen"))),
        ["late", "bericht"]
    );
    assert!(index.wait_current(Duration::from_secs(30)));
    assert_eq!(index.indexed(), newest(&store));
    for (query, expected) in [
        ("münchen", vec!["late", "bericht"]),
        ("MUNCH", vec!["late", "bericht"]),
        ("zahlen münchen", vec!["bericht"]),
        ("invoice 42", vec!["invoice"]),
        ("SW52b2lj", vec![]),
        ("münchen berlin", vec![]),
    ] {
        let indexed = index.search(&text(query));
        let scanned = store.archive_search(&text(query));
        assert_eq!(subjects(&indexed), expected, "{query}");
        assert_eq!(indexed, scanned, "{query}: index and scan agree");
    }
    // Other conditions combine with the words.
    let out = index.search(&ArchiveQuery {
        direction: Some(Direction::Out),
        ..text("invoice")
    });
    assert_eq!(subjects(&out), ["invoice"]);
    let none = index.search(&ArchiveQuery {
        direction: Some(Direction::In),
        ..text("invoice")
    });
    assert!(none.is_empty());
    // A query without words is no text condition at all.
    assert_eq!(index.search(&text(" -- ")).len(), 3);
}

#[test]
fn pages_through_many_hits_newest_first_under_other_conditions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store"), Options::default()).unwrap();
    let t = now();
    archive(
        &store,
        5,
        "old in",
        "Subject: x\r\n\r\ncommon words\r\n",
        Direction::In,
        t - DAY,
    );
    archive(
        &store,
        2500,
        "out",
        "Subject: x\r\n\r\ncommon words\r\n",
        Direction::Out,
        t,
    );
    let index = ArchiveIndex::open(dir.path().join("index"), store.clone()).unwrap();
    assert!(index.wait_current(Duration::from_secs(60)));
    let hits = index.search(&ArchiveQuery {
        direction: Some(Direction::In),
        limit: 3,
        ..text("common")
    });
    assert_eq!(subjects(&hits), ["old in"; 3]);
    let ids: Vec<ArchiveId> = hits.iter().map(|e| e.id).collect();
    let old: Vec<ArchiveId> = store.read(|s| {
        s.archive()
            .filter(|e| e.direction == Direction::In)
            .map(|e| e.id)
            .collect()
    });
    assert_eq!(ids, [old[4], old[3], old[2]], "newest first");
    assert_eq!(
        index
            .search(&ArchiveQuery {
                limit: 1000,
                ..text("words")
            })
            .len(),
        1000
    );
}

#[test]
fn retention_reopen_and_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let index_dir = dir.path().join("index");
    let store = Store::open(&store_dir, Options::default()).unwrap();
    let t = now();
    archive(
        &store,
        3,
        "expired",
        "Subject: x\r\n\r\nneedle\r\n",
        Direction::In,
        t - 100 * DAY,
    );
    archive(
        &store,
        2,
        "kept",
        "Subject: x\r\n\r\nneedle\r\n",
        Direction::In,
        t,
    );
    let index = ArchiveIndex::open(&index_dir, store.clone()).unwrap();
    assert!(index.wait_current(Duration::from_secs(30)));
    assert_eq!(index.search(&text("needle")).len(), 5);
    assert_eq!(store.expire_archive(t, 90).unwrap(), 3);
    assert_eq!(subjects(&index.search(&text("needle"))), ["kept", "kept"]);
    index.stop();

    // Reopened, it resumes where it was instead of starting over.
    let covered = newest(&store);
    let index = ArchiveIndex::open(&index_dir, store.clone()).unwrap();
    assert_eq!(index.indexed(), covered);
    assert_eq!(index.search(&text("needle")).len(), 2);
    index.stop();

    // Damaged: rebuilt from the archive.
    for entry in std::fs::read_dir(&index_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            std::fs::write(&path, b"{ not json").unwrap();
        }
    }
    let index = ArchiveIndex::open(&index_dir, store.clone()).unwrap();
    assert!(index.wait_current(Duration::from_secs(30)));
    assert_eq!(subjects(&index.search(&text("needle"))), ["kept", "kept"]);
    index.stop();
    drop(store);

    // Ahead of its store (the store was replaced): rebuilt, nothing stale found.
    std::fs::remove_dir_all(&store_dir).unwrap();
    let store = Store::open(&store_dir, Options::default()).unwrap();
    archive(
        &store,
        1,
        "fresh",
        "Subject: x\r\n\r\nother\r\n",
        Direction::In,
        t,
    );
    let index = ArchiveIndex::open(&index_dir, store.clone()).unwrap();
    assert!(index.wait_current(Duration::from_secs(30)));
    assert_eq!(index.indexed(), newest(&store));
    assert!(index.search(&text("needle")).is_empty());
    assert_eq!(subjects(&index.search(&text("other"))), ["fresh"]);
}
