//! Behaviour of the store through its public API, on the real file system and on the
//! simulated one.

use std::sync::Arc;
use std::time::Duration;

use lifeboat_store::io::{SimFs, Vfs};
use lifeboat_store::*;

fn small() -> Options {
    Options {
        segment_bytes_max: 16 << 10,
        checkpoint_every_bytes: u64::MAX,
        group_bytes_max: 1 << 20,
        ..Options::default()
    }
}

fn setup(store: &Store) {
    let mut batch = Batch::new();
    batch.push(Op::PutDomain(DomainSettings {
        name: "example.test".into(),
        upstream: "127.0.0.1:2526".into(),
        coverage: Coverage::All,
        failover: Failover::Auto,
    }));
    batch.push(Op::AddAccount {
        address: "alice@example.test".into(),
        password_hash: "x".into(),
        role: Role::User,
        covered: false,
        recovery: None,
    });
    let results = store.commit(batch).unwrap();
    assert_eq!(results, vec![Ok(OpResult::Done), Ok(OpResult::Done)]);
}

fn inbox(store: &Store) -> FolderId {
    store.read(|s| s.folder_by_name("alice@example.test", "inbox").unwrap().id)
}

/// A batch that appends `body` to `folder`.
fn append_batch(folder: FolderId, body: &[u8]) -> Batch {
    let mut batch = Batch::new();
    let body = batch.put_body(body.to_vec());
    batch.push(Op::Append {
        folder,
        body,
        flags: Flags::default(),
        internal_date: 1_700_000_000,
    });
    batch
}

fn deliver(store: &Store, body: &[u8]) -> (u32, BodyId) {
    let results = store.commit(append_batch(inbox(store), body)).unwrap();
    let Ok(OpResult::Body(id)) = results[0] else {
        panic!("{results:?}")
    };
    let Ok(OpResult::Appended { uid, .. }) = results[1] else {
        panic!("{results:?}")
    };
    (uid, id)
}

#[test]
fn accounts_start_with_special_use_folders() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    setup(&store);
    let names: Vec<(String, Option<SpecialUse>)> = store.read(|s| {
        s.folders_of("alice@EXAMPLE.test")
            .into_iter()
            .map(|f| (f.name.clone(), f.special_use))
            .collect()
    });
    assert_eq!(names.len(), 5);
    assert!(names.contains(&("INBOX".into(), None)));
    assert!(names.contains(&("Sent".into(), Some(SpecialUse::Sent))));
    assert!(names.contains(&("Trash".into(), Some(SpecialUse::Trash))));
    // A duplicate account and an account of an unknown domain fail, visibly.
    let mut batch = Batch::new();
    batch.push(Op::AddAccount {
        address: "alice@example.test".into(),
        password_hash: "x".into(),
        role: Role::User,
        covered: false,
        recovery: None,
    });
    batch.push(Op::AddAccount {
        address: "bob@nowhere.test".into(),
        password_hash: "x".into(),
        role: Role::User,
        covered: false,
        recovery: None,
    });
    let results = store.commit(batch).unwrap();
    assert_eq!(
        results[0],
        Err(OpError::AccountExists("alice@example.test".into()))
    );
    assert_eq!(results[1], Err(OpError::NoDomain("nowhere.test".into())));
    assert_eq!(
        results[0].as_ref().unwrap_err().to_string(),
        "account alice@example.test already exists"
    );
    assert_eq!(
        results[1].as_ref().unwrap_err().to_string(),
        "no domain nowhere.test"
    );
}

#[test]
fn mailbox_operations_and_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let (uidvalidity, archive_id);
    {
        let store = Store::open(dir.path(), small()).unwrap();
        setup(&store);
        let inbox = inbox(&store);
        let (uid1, body1) = deliver(&store, b"Subject: one\r\n\r\nfirst\r\n");
        let (uid2, _) = deliver(&store, b"Subject: two\r\n\r\nsecond\r\n");
        assert_eq!((uid1, uid2), (1, 2));
        assert_eq!(
            &*store.body(body1).unwrap(),
            b"Subject: one\r\n\r\nfirst\r\n"
        );

        // Flags, with CONDSTORE's UNCHANGEDSINCE.
        let mut batch = Batch::new();
        batch.push(Op::StoreFlags {
            folder: inbox,
            uids: vec![1, 2],
            action: FlagAction::Add,
            flags: Flags {
                system: SystemFlags::SEEN,
                keywords: vec!["$Work".into(), "$work".into()],
            },
            unchanged_since: None,
        });
        let Ok(OpResult::Stored { changed, failed }) = &store.commit(batch).unwrap()[0] else {
            panic!()
        };
        assert_eq!(changed.len(), 2);
        assert!(failed.is_empty());
        let old_modseq = changed[0].1;
        let mut batch = Batch::new();
        batch.push(Op::StoreFlags {
            folder: inbox,
            uids: vec![1],
            action: FlagAction::Add,
            flags: Flags {
                system: SystemFlags::FLAGGED,
                keywords: vec![],
            },
            unchanged_since: Some(old_modseq - 1),
        });
        let Ok(OpResult::Stored { changed, failed }) = &store.commit(batch).unwrap()[0] else {
            panic!()
        };
        assert!(changed.is_empty());
        assert_eq!(failed, &vec![1]);

        // Folders: create, copy, move, rename with children, delete.
        let mut batch = Batch::new();
        for name in ["Projects", "Projects/2026"] {
            batch.push(Op::CreateFolder {
                account: "alice@example.test".into(),
                name: name.into(),
                special_use: None,
            });
        }
        let results = store.commit(batch).unwrap();
        let Ok(OpResult::Folder { id: projects, .. }) = results[0] else {
            panic!("{results:?}")
        };
        let mut batch = Batch::new();
        batch.push(Op::Copy {
            from: inbox,
            uids: vec![1, 99],
            to: projects,
        });
        batch.push(Op::Move {
            from: inbox,
            uids: vec![2],
            to: projects,
        });
        let results = store.commit(batch).unwrap();
        assert!(
            matches!(&results[0], Ok(OpResult::Copied { pairs, .. }) if pairs == &vec![(1, 1)])
        );
        assert!(
            matches!(&results[1], Ok(OpResult::Copied { pairs, .. }) if pairs == &vec![(2, 2)])
        );
        let mut batch = Batch::new();
        batch.push(Op::RenameFolder {
            account: "alice@example.test".into(),
            from: "Projects".into(),
            to: "Work".into(),
        });
        batch.push(Op::RenameFolder {
            account: "alice@example.test".into(),
            from: "INBOX".into(),
            to: "Old".into(),
        });
        let results = store.commit(batch).unwrap();
        assert_eq!(results[0], Ok(OpResult::Done));
        assert_eq!(results[1], Err(OpError::InboxRename));
        store.read(|s| {
            assert!(s
                .folder_by_name("alice@example.test", "Work/2026")
                .is_some());
            assert!(s.folder_by_name("alice@example.test", "Projects").is_none());
            let work = s.folder_by_name("alice@example.test", "Work").unwrap();
            assert_eq!(work.messages.len(), 2);
            let inbox = s.folder_by_name("alice@example.test", "INBOX").unwrap();
            assert_eq!(inbox.messages.keys().copied().collect::<Vec<_>>(), vec![1]);
            assert!(inbox.messages[&1].flags.system.contains(SystemFlags::SEEN));
            assert_eq!(inbox.messages[&1].flags.keywords, vec!["$Work".to_string()]);
        });
        uidvalidity = store.read(|s| s.folder(inbox).unwrap().uidvalidity);

        let mut batch = Batch::new();
        let body = batch.put_body(b"Subject: Quarterly numbers\r\n\r\narchived\r\n".to_vec());
        batch.push(Op::Archive(NewArchiveEntry {
            body,
            direction: Direction::In,
            mail_from: "x@remote.test".into(),
            rcpt_to: vec!["alice@example.test".into()],
            date: now(),
            headers: HeaderFields {
                subject: "Quarterly numbers".into(),
                ..Default::default()
            },
        }));
        let Ok(OpResult::Archived(id)) = store.commit(batch).unwrap()[1] else {
            panic!()
        };
        archive_id = id;
    }
    // Everything survives a reopen, with the same UIDVALIDITY and UIDNEXT.
    let store = Store::open(dir.path(), small()).unwrap();
    store.read(|s| {
        let inbox = s.folder_by_name("alice@example.test", "INBOX").unwrap();
        assert_eq!(inbox.uidvalidity, uidvalidity);
        assert_eq!(inbox.uidnext, 3);
        assert_eq!(
            s.folder_by_name("alice@example.test", "Work")
                .unwrap()
                .messages
                .len(),
            2
        );
        assert!(s.archive_entry(archive_id).is_some());
    });
    let (uid, _) = deliver(&store, b"third");
    assert_eq!(uid, 3);
    let hits = store.archive_search(&ArchiveQuery {
        subject: Some("QUARTERLY".into()),
        ..Default::default()
    });
    assert_eq!(hits.len(), 1);
    let hits = store.archive_search(&ArchiveQuery {
        text: Some("ARCHIVED".into()),
        participant: Some("alice@example.test".into()),
        ..Default::default()
    });
    assert_eq!(hits.len(), 1);
    let hits = store.archive_search(&ArchiveQuery {
        participant: Some("mallory@example.test".into()),
        ..Default::default()
    });
    assert!(hits.is_empty());
}

#[test]
fn uidvalidity_changes_when_a_name_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    setup(&store);
    let create = || {
        let mut batch = Batch::new();
        batch.push(Op::CreateFolder {
            account: "alice@example.test".into(),
            name: "Reused".into(),
            special_use: None,
        });
        match store.commit(batch).unwrap()[0] {
            Ok(OpResult::Folder { uidvalidity, .. }) => uidvalidity,
            ref other => panic!("{other:?}"),
        }
    };
    let first = create();
    let mut batch = Batch::new();
    batch.push(Op::DeleteFolder {
        account: "alice@example.test".into(),
        name: "Reused".into(),
    });
    store.commit(batch).unwrap();
    assert!(create() > first);
}

#[test]
fn drain_entries_follow_the_portal_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    setup(&store);
    let inbox = inbox(&store);
    let (uid_kept, body_kept) = deliver(&store, b"kept in inbox");
    let (uid_deleted, body_deleted) = deliver(&store, b"deleted by the user");
    let (uid_moved, body_moved) = deliver(&store, b"moved to trash");
    let trash = store.read(|s| s.folder_by_name("alice@example.test", "Trash").unwrap().id);
    // The drain queues each INBOX message for the upstream.
    let mut batch = Batch::new();
    for (uid, body) in [
        (uid_kept, body_kept),
        (uid_deleted, body_deleted),
        (uid_moved, body_moved),
    ] {
        batch.push(Op::Enqueue(NewQueueEntry {
            body: BodyRef::Stored(body),
            sender: "x@remote.test".into(),
            recipient: "alice@example.test".into(),
            destination: Destination::Upstream("example.test".into()),
            next_attempt: 0,
            created: now(),
            portal: Some(PortalRef { folder: inbox, uid }),
        }));
    }
    let ids: Vec<QueueId> = store
        .commit(batch)
        .unwrap()
        .into_iter()
        .map(|r| match r {
            Ok(OpResult::Queued(id)) => id,
            other => panic!("{other:?}"),
        })
        .collect();
    // A second drain scan (another node, or a rerun) queues nothing new.
    let mut again = Batch::new();
    again.push(Op::Enqueue(NewQueueEntry {
        body: BodyRef::Stored(body_kept),
        sender: "x@remote.test".into(),
        recipient: "alice@example.test".into(),
        destination: Destination::Upstream("example.test".into()),
        next_attempt: 0,
        created: now(),
        portal: Some(PortalRef {
            folder: inbox,
            uid: uid_kept,
        }),
    }));
    assert_eq!(
        store.commit(again).unwrap(),
        vec![Ok(OpResult::Queued(ids[0]))]
    );
    assert_eq!(store.read(|s| s.queue().count()), 3);
    // The user deletes one message and moves another out of INBOX.
    let mut batch = Batch::new();
    batch.push(Op::Expunge {
        folder: inbox,
        uids: vec![uid_deleted],
    });
    batch.push(Op::Move {
        from: inbox,
        uids: vec![uid_moved],
        to: trash,
    });
    store.commit(batch).unwrap();
    store.read(|s| {
        let queued: Vec<QueueId> = s.queue().map(|e| e.id).collect();
        assert_eq!(
            queued,
            vec![ids[0]],
            "drains of deleted or moved mail are cancelled"
        );
        assert_eq!(s.drain_entry(inbox, uid_kept), Some(ids[0]));
    });
    // The upstream accepts the remaining one: entry and portal message go together.
    let mut batch = Batch::new();
    batch.push(Op::Dequeue { id: ids[0] });
    store.commit(batch).unwrap();
    store.read(|s| {
        assert_eq!(s.queue().count(), 0);
        assert!(s.folder(inbox).unwrap().messages.is_empty());
        assert_eq!(s.folder(trash).unwrap().messages.len(), 1);
        // Bodies nothing refers to any more are gone.
        assert!(s.body(body_kept).is_none());
        assert!(s.body(body_deleted).is_none());
        assert!(s.body(body_moved).is_some());
    });
}

#[test]
fn queue_entries_defer_hold_and_go_to_the_portal() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    setup(&store);
    let inbox = inbox(&store);
    let mut batch = Batch::new();
    let body = batch.put_body(b"Subject: hi\r\n\r\nhello\r\n".to_vec());
    batch.push(Op::Enqueue(NewQueueEntry {
        body,
        sender: "x@remote.test".into(),
        recipient: "alice@example.test".into(),
        destination: Destination::Upstream("example.test".into()),
        next_attempt: 10,
        created: 5,
        portal: None,
    }));
    let Ok(OpResult::Queued(id)) = store.commit(batch).unwrap()[1] else {
        panic!()
    };
    let mut batch = Batch::new();
    batch.push(Op::Defer {
        id,
        next_attempt: 70,
        error: "451 4.3.0 try later".into(),
    });
    store.commit(batch).unwrap();
    store.read(|s| {
        let e = s.queue_entry(id).unwrap();
        assert_eq!(
            (e.attempts, e.next_attempt, e.state),
            (1, 70, QueueState::Deferred)
        );
        assert_eq!(e.last_error.as_deref(), Some("451 4.3.0 try later"));
    });
    let mut batch = Batch::new();
    batch.push(Op::QueueToPortal { id, folder: inbox });
    let results = store.commit(batch).unwrap();
    assert!(matches!(results[0], Ok(OpResult::Appended { uid: 1, .. })));
    store.read(|s| {
        assert!(s.queue_entry(id).is_none());
        let message = &s.folder(inbox).unwrap().messages[&1];
        assert_eq!(message.internal_date, 5);
    });
}

#[test]
fn signals_wake_waiters_on_other_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    setup(&store);
    let signal = store.account_signal("alice@EXAMPLE.TEST");
    let seen = signal.version();
    let waiter = {
        let signal = signal.clone();
        std::thread::spawn(move || signal.wait_timeout(seen, Duration::from_secs(10)))
    };
    std::thread::sleep(Duration::from_millis(50));
    deliver(&store, b"wake up");
    assert!(waiter.join().unwrap() > seen);
    // The future form, driven by a minimal executor.
    let seen = signal.version();
    let store2 = store.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        deliver(&store2, b"again");
    });
    assert!(block_on(signal.changed(seen)) > seen);
    t.join().unwrap();
}

#[test]
fn async_commit_resolves_when_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    setup(&store);
    let mut batch = Batch::new();
    batch.push(Op::PutDomain(DomainSettings {
        name: "other.test".into(),
        upstream: "127.0.0.1:25".into(),
        coverage: Coverage::Selected,
        failover: Failover::Manual,
    }));
    let results = block_on(store.commit_async(batch)).unwrap();
    assert_eq!(results, vec![Ok(OpResult::Done)]);
    assert!(store.read(|s| s.domain("OTHER.test").is_some()));
    assert!(matches!(
        block_on(store.commit_async(Batch::new())),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn group_commit_shares_fsyncs_between_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    setup(&store);
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    deliver(&store, format!("thread {t} message {i}").as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.batches, 1 + 16 * 20);
    assert!(stats.groups <= stats.batches);
    let count = store.read(|s| {
        s.folder_by_name("alice@example.test", "INBOX")
            .unwrap()
            .messages
            .len()
    });
    assert_eq!(count, 320);
    drop(store);
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let count = store.read(|s| {
        s.folder_by_name("alice@example.test", "INBOX")
            .unwrap()
            .messages
            .len()
    });
    assert_eq!(count, 320);
}

#[test]
fn segments_roll_and_checkpoints_bound_replay() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), small()).unwrap();
        setup(&store);
        for i in 0..100 {
            deliver(&store, &vec![b'a' + (i % 26) as u8; 1000]);
        }
        assert!(store.stats().segments > 4);
        // Drop without an explicit checkpoint: the close writes one.
    }
    let store = Store::open(dir.path(), small()).unwrap();
    assert_eq!(
        store.stats().replayed_at_open,
        0,
        "the close-time checkpoint covers the log"
    );
    for i in 0..10 {
        deliver(&store, format!("after checkpoint {i}").as_bytes());
    }
    assert_eq!(
        store.verify().unwrap() as usize,
        1 + 110 + store.stats().segments - 1
    );
    // Simulate a crash: no close-time checkpoint (the store is leaked, its writer
    // thread keeps running until the process exits).
    std::mem::forget(store);
    let store = Store::open(dir.path(), small()).unwrap();
    assert_eq!(store.stats().replayed_at_open, 10);
    let messages = store.read(|s| {
        s.folder_by_name("alice@example.test", "INBOX")
            .unwrap()
            .messages
            .clone()
    });
    assert_eq!(messages.len(), 110);
    for m in messages.values().take(100) {
        assert_eq!(store.body(m.body).unwrap().len(), 1000);
    }
}

fn last_segment(dir: &std::path::Path) -> std::path::PathBuf {
    let mut segments: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    segments.pop().unwrap()
}

#[test]
fn a_torn_tail_is_truncated_and_other_damage_is_an_error() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), Options::default()).unwrap();
        setup(&store);
        deliver(&store, b"one");
        deliver(&store, b"two");
        std::mem::forget(store);
    }
    let segment = last_segment(dir.path());
    std::fs::remove_file(dir.path().join("checkpoint")).ok();
    let good_len = std::fs::metadata(&segment).unwrap().len();
    // A half-written record at the end: a torn tail.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    f.write_all(&[0x11; 45]).unwrap();
    drop(f);
    {
        let store = Store::open(dir.path(), Options::default()).unwrap();
        assert_eq!(store.stats().truncated_at_open, 45);
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), good_len);
        deliver(&store, b"three");
        std::mem::forget(store);
    }
    // A flipped byte inside an earlier record, with good records after it.
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&segment, &bytes).unwrap();
    let err = Store::open(dir.path(), Options::default()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Corrupt { .. }), "{message}");
    assert!(
        message.contains(segment.file_name().unwrap().to_str().unwrap()),
        "{message}"
    );
    assert!(message.contains("offset"), "{message}");
}

#[test]
fn a_truncated_sealed_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), small()).unwrap();
        setup(&store);
        for _ in 0..40 {
            deliver(&store, &[7u8; 1000]);
        }
        std::mem::forget(store);
    }
    std::fs::remove_file(dir.path().join("checkpoint")).ok();
    let first = dir.path().join(format!("{:016x}.seg", 1));
    let len = std::fs::metadata(&first).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let err = Store::open(dir.path(), small()).unwrap_err().to_string();
    assert!(err.contains("0000000000000001.seg"), "{err}");
}

#[test]
fn a_failed_fsync_poisons_the_store() {
    let fs = SimFs::new();
    let store = Store::open_with(Arc::new(fs.clone()) as Arc<dyn Vfs>, Options::default()).unwrap();
    setup(&store);
    deliver(&store, b"durable");
    fs.fail_sync_at(0);
    let lost = || {
        let mut batch = Batch::new();
        let body = batch.put_body(b"lost".to_vec());
        batch.push(Op::Archive(NewArchiveEntry {
            body,
            direction: Direction::In,
            mail_from: String::new(),
            rcpt_to: vec![],
            date: 0,
            headers: HeaderFields::default(),
        }));
        batch
    };
    let err = store.commit(lost()).unwrap_err();
    assert!(matches!(err, Error::Poisoned(_)), "{err}");
    assert!(err.to_string().contains("fsync"), "{err}");
    // Nothing more is acknowledged, not even after the disk recovers.
    assert!(matches!(store.commit(lost()), Err(Error::Poisoned(_))));
    assert!(store.checkpoint().is_err());
    drop(store);
    fs.crash();
    let fs = fs.recovered(lifeboat_store::io::TornWrite::Prefix, 7);
    let store = Store::open_with(Arc::new(fs), Options::default()).unwrap();
    let n = store.read(|s| {
        s.folder_by_name("alice@example.test", "INBOX")
            .unwrap()
            .messages
            .len()
    });
    assert_eq!(n, 1);
}

#[test]
fn retention_and_compaction_reclaim_space() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small()).unwrap();
    setup(&store);
    let day = 86_400;
    let t0 = 1_800_000_000;
    let mut kept = Vec::new();
    for i in 0..60u32 {
        let mut batch = Batch::new();
        let body = batch.put_body(vec![b'0' + (i % 10) as u8; 2000]);
        batch.push(Op::Archive(NewArchiveEntry {
            body,
            direction: if i % 2 == 0 {
                Direction::In
            } else {
                Direction::Out
            },
            mail_from: "a@example.test".into(),
            rcpt_to: vec!["b@remote.test".into()],
            // The first 50 are 100 days old, the last 10 are fresh.
            date: if i < 50 { t0 - 100 * day } else { t0 },
            headers: HeaderFields {
                subject: format!("message {i}"),
                ..Default::default()
            },
        }));
        let results = store.commit(batch).unwrap();
        if i >= 50 {
            let Ok(OpResult::Archived(id)) = results[1] else {
                panic!()
            };
            kept.push(id);
        }
    }
    let before = store.stats();
    assert_eq!(store.expire_archive(t0, 90).unwrap(), 50);
    let removed = store.compact(0.5).unwrap();
    assert!(!removed.is_empty());
    let after = store.stats();
    assert!(
        after.log_bytes < before.log_bytes,
        "{before:?} -> {after:?}"
    );
    let left: Vec<ArchiveId> = store.read(|s| s.archive().map(|e| e.id).collect());
    assert_eq!(left, kept);
    for id in &kept {
        let body = store.read(|s| s.archive_entry(*id).unwrap().body);
        assert_eq!(store.body(body).unwrap().len(), 2000);
    }
    drop(store);
    let store = Store::open(dir.path(), small()).unwrap();
    for id in &kept {
        let body = store.read(|s| s.archive_entry(*id).unwrap().body);
        assert_eq!(store.body(body).unwrap().len(), 2000);
    }
    assert_eq!(store.archive_search(&ArchiveQuery::default()).len(), 10);
    let inbound = store.archive_search(&ArchiveQuery {
        direction: Some(Direction::In),
        ..Default::default()
    });
    assert_eq!(inbound.len(), 5);
}

/// Runs a future to completion on this thread.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// A body spilled to a file, one large in memory and small ones, in one group: each
/// reads back as given, before and after the store is opened again (the records'
/// checksums, written after their payloads, verify).
#[test]
fn spilled_and_large_bodies_are_committed_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let spill_dir = tempfile::tempdir().unwrap();
    let pattern = |n: usize, seed: u8| -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
    };
    let spilled_bytes = pattern(3 * spill::COPY_CHUNK_BYTES + 12_345, 1);
    let large = pattern(2 * spill::COPY_CHUNK_BYTES + 7, 2);
    let mut ids = Vec::new();
    {
        let store = Store::open(dir.path(), Options::default()).unwrap();
        setup(&store);
        let inbox = inbox(&store);
        let mut spill = Spill::create_in(spill_dir.path()).unwrap();
        for piece in spilled_bytes.chunks(100_000) {
            spill.append(piece).unwrap();
        }
        let mut data = MessageData::from(spill);
        data.prepend(b"X-Prepended: yes\r\n");
        let mut batch = Batch::new();
        let bodies = [
            batch.put_body(b"small one".to_vec()),
            batch.put_body(data),
            batch.put_body(large.clone()),
            batch.put_body(b"small two".to_vec()),
        ];
        for body in bodies {
            batch.push(Op::Append {
                folder: inbox,
                body,
                flags: Flags::default(),
                internal_date: 1_700_000_000,
            });
        }
        let results = store.commit(batch).unwrap();
        for r in &results[..4] {
            let Ok(OpResult::Body(id)) = r else {
                panic!("{results:?}")
            };
            ids.push(*id);
        }
    }
    let mut prepended = b"X-Prepended: yes\r\n".to_vec();
    prepended.extend_from_slice(&spilled_bytes);
    let expected: [&[u8]; 4] = [b"small one", &prepended, &large, b"small two"];
    let store = Store::open(dir.path(), Options::default()).unwrap();
    for (id, want) in ids.iter().zip(expected) {
        assert!(store.body(*id).unwrap()[..] == *want, "body {id:?}");
    }
    assert_eq!(
        store.read(|s| s
            .folder_by_name("alice@example.test", "INBOX")
            .unwrap()
            .messages
            .len()),
        4
    );
}

/// A crash while a spilled body is copied into the log (its sync fails; of the
/// unsynced writes none, or a prefix, reached the disk): the torn record is cut off on
/// recovery and what was acknowledged before it is intact.
#[test]
fn a_crash_while_a_spilled_body_is_copied_loses_only_that_commit() {
    let spill_dir = tempfile::tempdir().unwrap();
    let fs = SimFs::new();
    let store = Store::open_with(Arc::new(fs.clone()) as Arc<dyn Vfs>, Options::default()).unwrap();
    setup(&store);
    deliver(&store, b"durable");
    let mut spill = Spill::create_in(spill_dir.path()).unwrap();
    spill
        .append(&vec![b'x'; 3 * spill::COPY_CHUNK_BYTES])
        .unwrap();
    let mut batch = Batch::new();
    let body = batch.put_body(spill);
    batch.push(Op::Append {
        folder: inbox(&store),
        body,
        flags: Flags::default(),
        internal_date: 1_700_000_000,
    });
    fs.fail_sync_at(0);
    assert!(store.commit(batch).is_err());
    drop(store);
    fs.crash();
    use lifeboat_store::io::TornWrite;
    for (torn, seed) in [
        TornWrite::Drop,
        TornWrite::Prefix,
        TornWrite::PrefixGarbage,
        TornWrite::Pages,
    ]
    .into_iter()
    .flat_map(|torn| (0..6).map(move |seed| (torn, seed)))
    {
        let fs = fs.recovered(torn, seed);
        let store = Store::open_with(Arc::new(fs), Options::default()).unwrap();
        let bodies: Vec<Vec<u8>> = store
            .read(|s| {
                s.folder_by_name("alice@example.test", "INBOX")
                    .unwrap()
                    .messages
                    .values()
                    .map(|m| m.body)
                    .collect::<Vec<_>>()
            })
            .into_iter()
            .map(|id| store.body(id).unwrap().to_vec())
            .collect();
        assert_eq!(bodies, vec![b"durable".to_vec()]);
    }
}

/// The log moves to segments made ready ahead of time (zeros, so a sync writes data
/// only). A crash while a group of several commits written over those zeros is synced
/// leaves its pages on disk in any order: the store opens every time, with what was
/// acknowledged and at most the first few commits of that group, each intact.
#[test]
fn a_crash_in_a_group_written_over_a_segment_made_ready_loses_only_that_group() {
    let fs = SimFs::new();
    let options = Options {
        segment_bytes_max: 256 << 10,
        checkpoint_every_bytes: u64::MAX,
        group_bytes_max: 1 << 20,
        ..Options::default()
    };
    let store = Store::open_with(Arc::new(fs.clone()) as Arc<dyn Vfs>, options.clone()).unwrap();
    setup(&store);
    let mut acknowledged = Vec::new();
    while store.stats().segments < 2 {
        let body = format!("{:04} {}", acknowledged.len(), "a".repeat(4000)).into_bytes();
        deliver(&store, &body);
        acknowledged.push(body);
    }
    let made_ready = 256 << 10;
    assert!(fs.file_len("0000000000000002.seg").unwrap() > made_ready);
    let folder = inbox(&store);
    let append = |body: &[u8]| store.commit_async(append_batch(folder, body));
    // One more commit is synced; the writer then waits for the state's lock while
    // eight more queue up, and their group's sync fails.
    let group: Vec<Vec<u8>> = (0..8)
        .map(|i| format!("group {i} {}", "g".repeat(3000)).into_bytes())
        .collect();
    fs.fail_sync_at(1);
    let last = b"the last one acknowledged".to_vec();
    let futures = store.read(|_| {
        let first = append(&last);
        std::thread::sleep(Duration::from_millis(200));
        let rest: Vec<_> = group.iter().map(|body| append(body)).collect();
        std::thread::sleep(Duration::from_millis(100));
        (first, rest)
    });
    drop(futures);
    acknowledged.push(last);
    while store.poisoned().is_none() {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(store);
    fs.crash();
    let mut kept = std::collections::BTreeSet::new();
    for seed in 0..64 {
        let fs = fs.recovered(lifeboat_store::io::TornWrite::Pages, seed);
        let store = Store::open_with(Arc::new(fs), options.clone())
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let bodies: Vec<Vec<u8>> = store
            .read(|s| {
                let inbox = s.folder_by_name("alice@example.test", "INBOX").unwrap();
                inbox.messages.values().map(|m| m.body).collect::<Vec<_>>()
            })
            .into_iter()
            .map(|id| store.body(id).unwrap().to_vec())
            .collect();
        let (before, after) = bodies.split_at(acknowledged.len().min(bodies.len()));
        assert_eq!(before, acknowledged, "seed {seed}");
        assert_eq!(after, &group[..after.len()], "seed {seed}");
        kept.insert(after.len());
    }
    // The seeds reach both ends: none of the group, and some of it.
    assert!(kept.contains(&0) && kept.len() > 1, "{kept:?}");
}

/// The bodies of alice's INBOX, in UID order, each as its start and its length (the
/// bodies below are long).
fn inbox_bodies(store: &Store) -> Vec<String> {
    store
        .read(|s| {
            let inbox = s.folder_by_name("alice@example.test", "INBOX").unwrap();
            inbox.messages.values().map(|m| m.body).collect::<Vec<_>>()
        })
        .into_iter()
        .map(|id| short(&store.body(id).unwrap()))
        .collect()
}

fn summaries(bodies: &[Vec<u8>]) -> Vec<String> {
    bodies.iter().map(|body| short(body)).collect()
}

fn short(body: &[u8]) -> String {
    let start = String::from_utf8_lossy(&body[..body.len().min(12)]).into_owned();
    format!(
        "{start}… ({} bytes, crc {:08x})",
        body.len(),
        crc32c::crc32c(body)
    )
}

/// A group whose write finds the disk full fails, and nothing of it is left: not
/// even its first records, written whole before the one that did not fit, which a
/// shorter group written in its place must not leave behind for recovery to find.
/// The store goes on with what fits, and with everything once there is room.
#[test]
fn a_full_disk_fails_a_group_and_takes_back_what_it_wrote() {
    let fs = SimFs::new();
    let options = Options {
        segment_bytes_max: 256 << 10,
        checkpoint_every_bytes: u64::MAX,
        group_bytes_max: 4 << 20,
        ..Options::default()
    };
    let store = Store::open_with(Arc::new(fs.clone()) as Arc<dyn Vfs>, options.clone()).unwrap();
    setup(&store);
    // The group goes where the log's segment was made ready (zeros written before).
    let mut acknowledged = Vec::new();
    while store.stats().segments < 2 {
        let body = format!("{:04} {}", acknowledged.len(), "b".repeat(4000)).into_bytes();
        deliver(&store, &body);
        acknowledged.push(body);
    }
    let made_ready = fs.file_len("0000000000000002.seg").unwrap();
    assert!(made_ready > 256 << 10);
    // Room for the small ones (space made ready holds them), not for the large one.
    fs.set_capacity(Some(fs.used() + (200 << 10)));
    let folder = inbox(&store);
    let append = |body: &[u8]| store.commit_async(append_batch(folder, body));
    let small: Vec<Vec<u8>> = (0..3)
        .map(|i| format!("small {i} {}", "s".repeat(2000)).into_bytes())
        .collect();
    let large = vec![b'L'; 3 << 20];
    let last = b"the last one acknowledged".to_vec();
    // The writer waits for the state's lock after the first commit, while the others
    // queue up behind it and are then written as one group.
    let (first, group) = store.read(|_| {
        let first = append(&last);
        std::thread::sleep(Duration::from_millis(200));
        let mut group: Vec<_> = small.iter().map(|body| append(body)).collect();
        group.push(append(&large));
        std::thread::sleep(Duration::from_millis(100));
        (first, group)
    });
    block_on(first).unwrap();
    acknowledged.push(last);
    for commit in group {
        let err = block_on(commit).unwrap_err();
        assert!(matches!(err, Error::NoSpace(_)), "{err}");
    }
    assert_eq!(store.poisoned(), None);
    // What the large one's write added to the file is cut off again.
    assert_eq!(fs.file_len("0000000000000002.seg"), Some(made_ready));
    // A commit as long as the group's first record goes where the group began: the
    // group's second record, had it stayed, would follow it as the next in sequence.
    let instead = format!("other 0 {}", "s".repeat(2000)).into_bytes();
    assert_eq!(instead.len(), small[0].len());
    deliver(&store, &instead);
    acknowledged.push(instead);
    assert_eq!(inbox_bodies(&store), summaries(&acknowledged));
    let reopened = Store::open_with(
        Arc::new(fs.recovered(lifeboat_store::io::TornWrite::Drop, 0)),
        options.clone(),
    )
    .unwrap();
    assert_eq!(inbox_bodies(&reopened), summaries(&acknowledged));
    drop(reopened);
    assert!(matches!(
        store.commit(append_batch(folder, &large)),
        Err(Error::NoSpace(_))
    ));
    fs.set_capacity(None);
    deliver(&store, &large);
    acknowledged.push(large);
    // A crash, not a close: recovery reads the log, not a checkpoint written at close.
    fs.crash();
    drop(store);
    for (torn, seed) in [
        (lifeboat_store::io::TornWrite::Drop, 0),
        (lifeboat_store::io::TornWrite::Pages, 1),
        (lifeboat_store::io::TornWrite::Pages, 2),
        (lifeboat_store::io::TornWrite::Prefix, 3),
    ] {
        let fs = fs.recovered(torn, seed);
        let store = Store::open_with(Arc::new(fs), options.clone())
            .unwrap_or_else(|e| panic!("{torn:?} {seed}: {e}"));
        assert_eq!(
            inbox_bodies(&store),
            summaries(&acknowledged),
            "{torn:?} {seed}"
        );
    }
}

/// A full disk where the log needs a new segment: the commit fails, the segment
/// stays sealed (once), and the next commit starts the new segment when it can.
#[test]
fn a_full_disk_at_a_new_segment_fails_commits_until_there_is_room() {
    let fs = SimFs::new();
    let options = Options {
        segment_bytes_max: 32 << 10,
        ..small()
    };
    let store = Store::open_with(Arc::new(fs.clone()) as Arc<dyn Vfs>, options.clone()).unwrap();
    setup(&store);
    let mut acknowledged = Vec::new();
    let mut i = 0;
    let mut next = || {
        i += 1;
        format!("{i:03} {}", "m".repeat(3000)).into_bytes()
    };
    // Segment 2 was made ready: records overwrite its zeros.
    while store.stats().segments < 2 {
        let body = next();
        deliver(&store, &body);
        acknowledged.push(body);
    }
    // The writer makes segment 3 ready after a commit; wait for it, so that what
    // follows does not depend on how far it got.
    let ready_len = (options.segment_bytes_max + options.segment_bytes_max / 8) as usize;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fs.file_len("next-segment.ready") != Some(ready_len) {
        assert!(
            std::time::Instant::now() < deadline,
            "segment 3 never made ready"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Not a byte more: the log moves to segment 3, made ready; the one after it can
    // be neither made ready nor created.
    fs.set_capacity(Some(fs.used()));
    let mut refused = Vec::new();
    for _ in 0..40 {
        let body = next();
        match store.commit(append_batch(inbox(&store), &body)) {
            Ok(_) => acknowledged.push(body),
            Err(Error::NoSpace(why)) => refused.push(why),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(acknowledged.len() > 10 && refused.len() > 10, "{refused:?}");
    assert_eq!(store.poisoned(), None);
    assert_eq!(store.stats().segments, 3);
    // Once there is room, everything goes on.
    fs.set_capacity(None);
    for _ in 0..20 {
        let body = next();
        deliver(&store, &body);
        acknowledged.push(body);
    }
    assert!(store.stats().segments >= 4);
    assert_eq!(inbox_bodies(&store), summaries(&acknowledged));
    fs.crash();
    drop(store);
    let fs = fs.recovered(lifeboat_store::io::TornWrite::Drop, 0);
    let store = Store::open_with(Arc::new(fs), options).unwrap();
    assert_eq!(inbox_bodies(&store), summaries(&acknowledged));
}

/// With a disk reserve, a batch that adds a message is refused while less than the
/// reserve is free, before anything is written; other changes go on.
#[test]
fn below_the_disk_reserve_new_messages_are_refused_and_other_changes_go_on() {
    let fs = SimFs::new();
    let options = Options {
        disk_free_min: 2 << 20,
        ..small()
    };
    let store = Store::open_with(Arc::new(fs.clone()) as Arc<dyn Vfs>, options).unwrap();
    setup(&store);
    assert_eq!(store.space_left(), Some(u64::MAX - (2 << 20)));
    fs.set_capacity(Some(fs.used() + (3 << 20)));
    // The free space read a moment ago still counts: a second later it is read again.
    std::thread::sleep(Duration::from_millis(1100));
    let left = store.space_left().unwrap();
    assert!(left <= 1 << 20 && left > (1 << 20) - (64 << 10), "{left}");
    let (uid, _) = deliver(&store, &[b'x'; 100 << 10]);
    // What the store writes counts against the space read before.
    let now = store.space_left().unwrap();
    assert!(now <= left - (100 << 10), "{now} {left}");
    let err = store
        .commit(append_batch(inbox(&store), &vec![b'y'; 1 << 20]))
        .unwrap_err();
    assert!(matches!(err, Error::NoSpace(_)), "{err}");
    assert!(err.to_string().contains("2 MiB are kept free"), "{err}");
    let mut batch = Batch::new();
    batch.push(Op::StoreFlags {
        folder: inbox(&store),
        uids: vec![uid],
        action: FlagAction::Add,
        flags: Flags {
            system: SystemFlags::SEEN,
            keywords: Vec::new(),
        },
        unchanged_since: None,
    });
    store.commit(batch).unwrap();
    assert_eq!(store.poisoned(), None);
    fs.set_capacity(None);
    std::thread::sleep(Duration::from_millis(1100));
    deliver(&store, &vec![b'y'; 1 << 20]);
}
