//! Subscriptions as names, the expunge log QRESYNC reads, and expunged messages kept
//! readable for the sessions that still show them (RFC 2180 §4.1.1): through the
//! public API, across reopens (replay and checkpoint) and compaction.

use lifeboat_store::*;

const ALICE: &str = "alice@example.test";

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
        address: ALICE.into(),
        password_hash: "x".into(),
        role: Role::User,
        covered: false,
        recovery: None,
    });
    store.commit(batch).unwrap();
}

fn folder(store: &Store, name: &str) -> FolderId {
    store.read(|s| s.folder_by_name(ALICE, name).unwrap().id)
}

fn deliver(store: &Store, folder: FolderId, body: &[u8]) -> u32 {
    let mut batch = Batch::new();
    let body = batch.put_body(body.to_vec());
    batch.push(Op::Append {
        folder,
        body,
        flags: Flags::default(),
        internal_date: 1_700_000_000,
    });
    let results = store.commit(batch).unwrap();
    let Some(Ok(OpResult::Appended { uid, .. })) = results.last() else {
        panic!("{results:?}")
    };
    *uid
}

fn commit(store: &Store, op: Op) -> Result<OpResult, OpError> {
    let mut batch = Batch::new();
    batch.push(op);
    store.commit(batch).unwrap().pop().unwrap()
}

fn subscriptions(store: &Store) -> Vec<String> {
    store.read(|s| s.subscriptions(ALICE).map(str::to_string).collect())
}

fn subscribe(name: &str, subscribed: bool) -> Op {
    Op::SetSubscription {
        account: ALICE.into(),
        name: name.into(),
        subscribed,
    }
}

#[test]
fn subscriptions_are_names_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    setup(&store);
    // The default folders start subscribed, as they always did.
    assert_eq!(
        subscriptions(&store),
        ["Drafts", "INBOX", "Junk", "Sent", "Trash"]
    );
    // A name without a folder (RFC 3501 §6.3.6), and INBOX in any case.
    assert_eq!(
        commit(&store, subscribe("Lists/rust", true)),
        Ok(OpResult::Done)
    );
    assert_eq!(
        commit(&store, subscribe("inbox", false)),
        Ok(OpResult::Done)
    );
    assert!(store.read(|s| s.is_subscribed("alice@EXAMPLE.test", "Lists/rust")));
    assert!(!store.read(|s| s.is_subscribed(ALICE, "INBOX")));
    // A folder created is subscribed; deleted, its name stays subscribed.
    commit(
        &store,
        Op::CreateFolder {
            account: ALICE.into(),
            name: "Work".into(),
            special_use: None,
        },
    )
    .unwrap();
    commit(
        &store,
        Op::CreateFolder {
            account: ALICE.into(),
            name: "Work/2026".into(),
            special_use: None,
        },
    )
    .unwrap();
    commit(
        &store,
        Op::DeleteFolder {
            account: ALICE.into(),
            name: "Work/2026".into(),
        },
    )
    .unwrap();
    assert!(store.read(|s| s.is_subscribed(ALICE, "Work/2026")));
    // Renaming moves the subscriptions of the folders renamed.
    commit(
        &store,
        Op::RenameFolder {
            account: ALICE.into(),
            from: "Work".into(),
            to: "Projects".into(),
        },
    )
    .unwrap();
    // Unsubscribing one name leaves the others.
    commit(&store, subscribe("Drafts", false)).unwrap();
    let expected = [
        "Junk",
        "Lists/rust",
        "Projects",
        "Sent",
        "Trash",
        "Work/2026",
    ];
    assert_eq!(subscriptions(&store), expected);
    assert!(store.read(|s| s.folder_by_name(ALICE, "Projects").unwrap().subscribed));
    // An unknown account is refused.
    let refused = commit(
        &store,
        Op::SetSubscription {
            account: "nobody@example.test".into(),
            name: "INBOX".into(),
            subscribed: true,
        },
    );
    assert!(matches!(refused, Err(OpError::NoAccount(_))), "{refused:?}");
    drop(store);
    // Replayed from the log (the close wrote a checkpoint: remove it first).
    std::fs::remove_file(dir.path().join("checkpoint")).unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert_eq!(subscriptions(&store), expected);
    drop(store);
    // And from the checkpoint written at close.
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert_eq!(store.stats().replayed_at_open, 0);
    assert_eq!(subscriptions(&store), expected);
}

#[test]
fn expunges_are_logged_per_folder_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    setup(&store);
    let inbox = folder(&store, INBOX);
    let trash = folder(&store, "Trash");
    let uids: Vec<u32> = (0..4)
        .map(|i| {
            deliver(
                &store,
                inbox,
                format!("Subject: {i}\r\n\r\nx\r\n").as_bytes(),
            )
        })
        .collect();
    let before = store.read(|s| s.folder(inbox).unwrap().highest_modseq);
    commit(
        &store,
        Op::Expunge {
            folder: inbox,
            uids: vec![uids[1], uids[3]],
        },
    )
    .unwrap();
    let middle = store.read(|s| s.folder(inbox).unwrap().highest_modseq);
    commit(
        &store,
        Op::Move {
            from: inbox,
            uids: vec![uids[0]],
            to: trash,
        },
    )
    .unwrap();
    let check = |store: &Store| {
        store.read(|s| {
            assert_eq!(
                s.expunged_since(inbox, before),
                ExpungedSince::Known(vec![uids[0], uids[1], uids[3]])
            );
            assert_eq!(
                s.expunged_since(inbox, middle),
                ExpungedSince::Known(vec![uids[0]])
            );
            assert_eq!(s.expunged_since(trash, 0), ExpungedSince::Known(Vec::new()));
        })
    };
    check(&store);
    drop(store);
    std::fs::remove_file(dir.path().join("checkpoint")).unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    check(&store);
    drop(store);
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert_eq!(store.stats().replayed_at_open, 0);
    check(&store);
}

#[test]
fn an_expunged_message_stays_readable_while_a_session_watches() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    setup(&store);
    let inbox = folder(&store, INBOX);
    let kept = deliver(&store, inbox, b"Subject: kept\r\n\r\nstill here\r\n");
    let other = deliver(&store, inbox, b"Subject: other\r\n\r\nx\r\n");

    // Nobody watches: nothing is retained once the expunge's group is applied.
    commit(
        &store,
        Op::Expunge {
            folder: inbox,
            uids: vec![other],
        },
    )
    .unwrap();
    assert!(store.read(|s| s.retained(inbox, other).is_none()));

    let watch = store.watch_folder(inbox);
    let seen = store.read(|s| s.folder(inbox).unwrap().highest_modseq);
    watch.caught_up(seen);
    commit(
        &store,
        Op::Expunge {
            folder: inbox,
            uids: vec![kept],
        },
    )
    .unwrap();
    let retained = store.read(|s| s.retained(inbox, kept).cloned()).unwrap();
    assert_eq!(retained.message.uid, kept);
    assert!(retained.modseq > seen);
    assert!(store.read(|s| s.body(retained.message.body).is_none()));
    assert_eq!(
        &store.read_at(retained.loc).unwrap()[..],
        b"Subject: kept\r\n\r\nstill here\r\n"
    );
    // Other commits do not drop it while the watch lags behind.
    deliver(&store, inbox, b"Subject: new\r\n\r\nx\r\n");
    assert!(store.read(|s| s.retained(inbox, kept).is_some()));
    // Caught up past the expunge: the next commit drops it.
    watch.caught_up(retained.modseq);
    deliver(&store, inbox, b"Subject: newer\r\n\r\nx\r\n");
    assert!(store.read(|s| s.retained(inbox, kept).is_none()));

    // A dropped watch holds nothing.
    let last = deliver(&store, inbox, b"Subject: last\r\n\r\nx\r\n");
    drop(watch);
    commit(
        &store,
        Op::Expunge {
            folder: inbox,
            uids: vec![last],
        },
    )
    .unwrap();
    assert!(store.read(|s| s.retained(inbox, last).is_none()));
}

#[test]
fn compaction_keeps_a_segment_a_retained_message_points_into() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small()).unwrap();
    setup(&store);
    let inbox = folder(&store, INBOX);
    let uids: Vec<u32> = (0..20u8)
        .map(|i| deliver(&store, inbox, &vec![b'a' + i; 2000]))
        .collect();
    let watch = store.watch_folder(inbox);
    watch.caught_up(store.read(|s| s.folder(inbox).unwrap().highest_modseq));
    commit(
        &store,
        Op::Expunge {
            folder: inbox,
            uids: uids.clone(),
        },
    )
    .unwrap();
    let first = store.read(|s| s.retained(inbox, uids[0]).cloned()).unwrap();
    let removed = store.compact(0.5).unwrap();
    assert!(
        !removed.contains(&first.loc.segment),
        "segment {} removed: {removed:?}",
        first.loc.segment
    );
    assert_eq!(&store.read_at(first.loc).unwrap()[..], &[b'a'; 2000][..]);
    // Once nobody needs it, the next compaction removes it.
    drop(watch);
    deliver(&store, inbox, b"Subject: after\r\n\r\nx\r\n");
    let removed = store.compact(0.5).unwrap();
    assert!(
        removed.contains(&first.loc.segment),
        "segment {} kept: {removed:?}",
        first.loc.segment
    );
}
