//! Message traces (store/src/trace.rs) through the public API: opened by a note in the
//! accepting batch, grown by the ops that follow, kept across checkpoints and replay,
//! removed with the archive entry.

use lifeboat_store::*;

fn options() -> Options {
    Options {
        segment_bytes_max: 16 << 10,
        checkpoint_every_bytes: u64::MAX,
        group_bytes_max: 1 << 20,
        ..Options::default()
    }
}

fn commit(store: &Store, ops: Vec<Op>) -> Vec<OpResult> {
    let mut batch = Batch::new();
    for op in ops {
        batch.push(op);
    }
    store
        .commit(batch)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

fn names(store: &Store, body: BodyId) -> Vec<&'static str> {
    store.read(|s| {
        s.traces()
            .get(body)
            .map(|t| t.steps().iter().map(|s| s.event.name()).collect())
            .unwrap_or_default()
    })
}

/// Accepts a message for alice (portal, as in emergency) and bob (upstream queue).
fn accept(store: &Store, inbox: FolderId) -> (BodyId, ArchiveId, QueueId) {
    let mut batch = Batch::new();
    let body = batch.put_body(b"Subject: hi\r\nMessage-ID: <m1@x.test>\r\n\r\nhi\r\n".to_vec());
    batch.push(Op::Trace(TraceNote::Accepted {
        body,
        listener: "smtp".into(),
        client: "192.0.2.1".into(),
        helo: "client.test".into(),
        tls: true,
        authenticated: None,
        modes: vec![("example.test".into(), Mode::Emergency)],
    }));
    batch.push(Op::Archive(NewArchiveEntry {
        body,
        direction: Direction::In,
        mail_from: "s@x.test".into(),
        rcpt_to: vec!["alice@example.test".into(), "bob@example.test".into()],
        date: 1,
        headers: HeaderFields::default(),
    }));
    batch.push(Op::Append {
        folder: inbox,
        body,
        flags: Flags::default(),
        internal_date: 1,
    });
    batch.push(Op::Enqueue(NewQueueEntry {
        body,
        sender: "s@x.test".into(),
        recipient: "bob@example.test".into(),
        destination: Destination::Upstream("example.test".into()),
        next_attempt: 0,
        created: 0,
        portal: None,
    }));
    let results: Vec<OpResult> = store
        .commit(batch)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let (OpResult::Body(body), OpResult::Archived(archived), OpResult::Queued(queued)) =
        (&results[0], &results[2], &results[4])
    else {
        panic!("{results:?}");
    };
    (*body, *archived, *queued)
}

#[test]
fn a_message_s_life_is_traced_in_order_and_survives_a_checkpoint_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    commit(
        &store,
        vec![
            Op::PutDomain(DomainSettings {
                name: "example.test".into(),
                upstream: "127.0.0.1:1".into(),
                coverage: Coverage::All,
                failover: Failover::Auto,
            }),
            Op::AddAccount {
                address: "alice@example.test".into(),
                password_hash: String::new(),
                role: Role::User,
                covered: true,
                recovery: None,
            },
        ],
    );
    let (inbox, trash) = store.read(|s| {
        (
            s.folder_by_name("alice@example.test", INBOX).unwrap().id,
            s.folder_by_name("alice@example.test", "Trash").unwrap().id,
        )
    });
    let (body, archived, queued) = accept(&store, inbox);
    assert_eq!(
        names(&store, body),
        ["accepted", "archived", "placed", "queued"]
    );

    commit(
        &store,
        vec![Op::Defer {
            id: queued,
            next_attempt: 10,
            error: "up.test:25: 451 4.3.0 busy".into(),
        }],
    );
    commit(
        &store,
        vec![
            Op::Trace(TraceNote::Attempt {
                queue: queued,
                delivered: true,
                reply: "up.test:25: 250 ok".into(),
            }),
            Op::Dequeue { id: queued },
        ],
    );
    commit(
        &store,
        vec![
            Op::Trace(TraceNote::Via(Protocol::Imap)),
            Op::StoreFlags {
                folder: inbox,
                uids: vec![1],
                action: FlagAction::Add,
                flags: Flags {
                    system: SystemFlags::SEEN,
                    keywords: Vec::new(),
                },
                unchanged_since: None,
            },
        ],
    );
    commit(
        &store,
        vec![Op::Move {
            from: inbox,
            uids: vec![1],
            to: trash,
        }],
    );
    commit(
        &store,
        vec![
            Op::Trace(TraceNote::Via(Protocol::Pop3)),
            Op::Expunge {
                folder: trash,
                uids: vec![1],
            },
        ],
    );
    let want = [
        "accepted",
        "archived",
        "placed",
        "queued",
        "deferred",
        "delivered",
        "flags",
        "moved",
        "deleted",
    ];
    assert_eq!(names(&store, body), want);
    let steps = store.read(|s| s.traces().get(body).unwrap().steps());
    assert!(
        matches!(&steps[6].event, TraceEvent::Flags { added, protocol: Some(Protocol::Imap), .. } if added == &["\\Seen".to_string()]),
        "{:?}",
        steps[6]
    );
    assert!(
        matches!(&steps[7].event, TraceEvent::Moved { protocol: None, from, to, copy: false, .. } if from == INBOX && to == "Trash"),
        "{:?}",
        steps[7]
    );
    assert!(
        matches!(&steps[8].event, TraceEvent::Deleted { protocol: Some(Protocol::Pop3), folder, .. } if folder == "Trash"),
        "{:?}",
        steps[8]
    );
    assert!(
        steps[0].event.describe().contains("192.0.2.1")
            && steps[0].event.describe().contains("emergency"),
        "{}",
        steps[0].event.describe()
    );

    // Half the history in a checkpoint, the rest replayed from the log.
    store.checkpoint().unwrap();
    let (body2, _, _) = accept(&store, inbox);
    drop(store);
    let store = Store::open(dir.path(), options()).unwrap();
    assert_eq!(names(&store, body), want);
    assert_eq!(
        names(&store, body2),
        ["accepted", "archived", "placed", "queued"]
    );

    // The trace goes with its archive entry.
    commit(&store, vec![Op::Unarchive(vec![archived])]);
    assert!(names(&store, body).is_empty());
    assert_eq!(store.read(|s| s.traces().len()), 1);
}

#[test]
fn untraced_messages_cost_no_steps() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let mut batch = Batch::new();
    let body = batch.put_body(b"x".to_vec());
    batch.push(Op::Archive(NewArchiveEntry {
        body,
        direction: Direction::Out,
        mail_from: String::new(),
        rcpt_to: vec!["a@b.test".into()],
        date: 1,
        headers: HeaderFields::default(),
    }));
    store.commit(batch).unwrap();
    assert!(store.read(|s| s.traces().is_empty()));
}
