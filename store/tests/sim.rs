//! Property tests over the fault-injecting file system: random batches, a crash (or a
//! failed fsync) at a random operation, then recovery. After recovery every
//! acknowledged batch is present, and no batch is half present.

use std::collections::BTreeMap;
use std::sync::Arc;

use lifeboat_store::io::{SimFs, TornWrite, Vfs};
use lifeboat_store::*;
use proptest::prelude::*;

const ACCOUNT: &str = "u@example.test";

fn options(segment: u64, checkpoint: u64) -> Options {
    Options {
        segment_bytes_max: segment,
        checkpoint_every_bytes: checkpoint,
        group_bytes_max: 1 << 20,
        ..Options::default()
    }
}

/// The body of batch `n`: its size comes from the test case, its bytes from `n`.
fn body_of(n: u32, size: usize) -> Vec<u8> {
    let mut body = format!("batch {n}\r\n").into_bytes();
    body.extend((0..size).map(|i| b'a' + ((i as u32 + n) % 26) as u8));
    body
}

fn setup_batch() -> Batch {
    let mut batch = Batch::new();
    batch.push(Op::PutDomain(DomainSettings {
        name: "example.test".into(),
        upstream: "127.0.0.1:25".into(),
        coverage: Coverage::All,
        failover: Failover::Auto,
    }));
    batch.push(Op::AddAccount {
        address: ACCOUNT.into(),
        password_hash: "x".into(),
        role: Role::User,
        covered: true,
        recovery: None,
    });
    batch
}

/// Batch `n`: one body placed in INBOX, the archive and the queue at once, the way
/// an accepted message is (SPEC §3). Every third batch also flags earlier mail.
fn mail_batch(store: &Store, n: u32, size: usize) -> Batch {
    let inbox = store.read(|s| s.folder_by_name(ACCOUNT, "INBOX").map(|f| f.id));
    let mut batch = Batch::new();
    let body = batch.put_body(body_of(n, size));
    if let Some(inbox) = inbox {
        batch.push(Op::Append {
            folder: inbox,
            body,
            flags: Flags::default(),
            internal_date: n as i64,
        });
        if n.is_multiple_of(3) {
            batch.push(Op::StoreFlags {
                folder: inbox,
                uids: (1..=n).collect(),
                action: FlagAction::Add,
                flags: Flags {
                    system: SystemFlags::SEEN,
                    keywords: vec![],
                },
                unchanged_since: None,
            });
        }
    }
    batch.push(Op::Archive(NewArchiveEntry {
        body,
        direction: Direction::In,
        mail_from: "x@remote.test".into(),
        rcpt_to: vec![ACCOUNT.into()],
        date: n as i64,
        headers: HeaderFields {
            subject: format!("batch {n}"),
            ..Default::default()
        },
    }));
    batch.push(Op::Enqueue(NewQueueEntry {
        body,
        sender: "x@remote.test".into(),
        recipient: ACCOUNT.into(),
        destination: Destination::Upstream("example.test".into()),
        next_attempt: 0,
        created: n as i64,
        portal: None,
    }));
    batch
}

/// Checks the recovered store against what was acknowledged. Returns the batches
/// present.
fn check(
    store: &Store,
    acked: &BTreeMap<u32, usize>,
    attempted: &BTreeMap<u32, usize>,
) -> Vec<u32> {
    let mut present = Vec::new();
    let entries: Vec<ArchiveEntry> = store.read(|s| s.archive().cloned().collect());
    for entry in &entries {
        let n: u32 = entry
            .headers
            .subject
            .strip_prefix("batch ")
            .unwrap()
            .parse()
            .unwrap();
        let size = *attempted.get(&n).expect("only attempted batches exist");
        assert_eq!(
            &*store.body(entry.body).unwrap(),
            body_of(n, size).as_slice(),
            "batch {n} body"
        );
        store.read(|s| {
            let inbox = s.folder_by_name(ACCOUNT, "INBOX").unwrap();
            assert_eq!(
                inbox
                    .messages
                    .values()
                    .filter(|m| m.body == entry.body)
                    .count(),
                1,
                "batch {n}: archived but not in INBOX (half present)"
            );
            assert_eq!(
                s.queue().filter(|q| q.body == entry.body).count(),
                1,
                "batch {n}: archived but not queued (half present)"
            );
        });
        present.push(n);
    }
    let (messages, queued) = store.read(|s| {
        (
            s.folder_by_name(ACCOUNT, "INBOX")
                .map(|f| f.messages.len())
                .unwrap_or(0),
            s.queue().count(),
        )
    });
    assert_eq!(messages, entries.len(), "INBOX holds only whole batches");
    assert_eq!(queued, entries.len(), "queue holds only whole batches");
    for n in acked.keys() {
        assert!(present.contains(n), "acknowledged batch {n} is missing");
    }
    present
}

#[derive(Debug, Clone)]
struct Case {
    sizes: Vec<usize>,
    crash_at: u64,
    torn: TornWrite,
    seed: u64,
    segment: u64,
    checkpoint: u64,
    threads: usize,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(0usize..3000, 1..40),
        1u64..400,
        prop_oneof![
            Just(TornWrite::Drop),
            Just(TornWrite::Prefix),
            Just(TornWrite::PrefixGarbage),
            Just(TornWrite::Pages)
        ],
        any::<u64>(),
        prop_oneof![Just(2048u64), Just(8192), Just(1 << 20)],
        prop_oneof![Just(4096u64), Just(32768), Just(u64::MAX)],
        1usize..4,
    )
        .prop_map(
            |(sizes, crash_at, torn, seed, segment, checkpoint, threads)| Case {
                sizes,
                crash_at,
                torn,
                seed,
                segment,
                checkpoint,
                threads,
            },
        )
}

/// Commits the case's batches from `threads` threads until the crash; returns the
/// acknowledged and the attempted batches.
fn run_until_crash(fs: &SimFs, case: &Case) -> (BTreeMap<u32, usize>, BTreeMap<u32, usize>) {
    let mut acked = BTreeMap::new();
    let mut attempted = BTreeMap::new();
    let opts = options(case.segment, case.checkpoint);
    let Ok(store) = Store::open_with(Arc::new(fs.clone()) as Arc<dyn Vfs>, opts) else {
        return (acked, attempted);
    };
    if store.commit(setup_batch()).is_err() {
        return (acked, attempted);
    }
    let acked_m = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let sizes = Arc::new(case.sizes.clone());
    std::thread::scope(|scope| {
        for t in 0..case.threads {
            let store = store.clone();
            let acked_m = acked_m.clone();
            let sizes = sizes.clone();
            let threads = case.threads;
            scope.spawn(move || {
                for (n, size) in sizes.iter().enumerate().skip(t).step_by(threads) {
                    let batch = mail_batch(&store, n as u32, *size);
                    match store.commit(batch) {
                        Ok(results) => {
                            assert!(results.iter().all(Result::is_ok), "{results:?}");
                            acked_m.lock().unwrap().insert(n as u32, *size);
                        }
                        Err(_) => return,
                    }
                }
            });
        }
    });
    for (n, size) in case.sizes.iter().enumerate() {
        attempted.insert(n as u32, *size);
    }
    acked.extend(acked_m.lock().unwrap().iter().map(|(k, v)| (*k, *v)));
    drop(store);
    (acked, attempted)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn crash_at_any_point_loses_nothing_acknowledged(case in case()) {
        let fs = SimFs::new();
        fs.crash_at(case.crash_at);
        let (acked, attempted) = run_until_crash(&fs, &case);
        fs.crash();
        let recovered = fs.recovered(case.torn, case.seed);
        let store = Store::open_with(Arc::new(recovered.clone()) as Arc<dyn Vfs>, options(case.segment, case.checkpoint))
            .unwrap_or_else(|e| panic!("recovery failed: {e}"));
        let present = check(&store, &acked, &attempted);
        // The recovered store keeps working and recovers again to the same state.
        let n = case.sizes.len() as u32 + 1;
        let mut attempted = attempted;
        if store.read(|s| s.account(ACCOUNT).is_some()) {
            store.commit(mail_batch(&store, n, 10)).unwrap();
            attempted.insert(n, 10);
        }
        drop(store);
        let store = Store::open_with(Arc::new(recovered) as Arc<dyn Vfs>, options(case.segment, case.checkpoint)).unwrap();
        let again = check(&store, &acked, &attempted);
        prop_assert!(present.iter().all(|n| again.contains(n)));
    }

    #[test]
    fn failed_fsync_acknowledges_nothing_after_it(case in case(), fail_after in 0u64..30) {
        let fs = SimFs::new();
        fs.fail_sync_at(fail_after);
        let case = Case { crash_at: u64::MAX, ..case };
        let (acked, attempted) = run_until_crash(&fs, &case);
        fs.crash();
        let recovered = fs.recovered(case.torn, case.seed);
        let store = Store::open_with(Arc::new(recovered) as Arc<dyn Vfs>, options(case.segment, case.checkpoint))
            .unwrap_or_else(|e| panic!("recovery failed: {e}"));
        check(&store, &acked, &attempted);
    }
}

#[test]
fn damage_in_a_sealed_segment_is_reported_with_its_place() {
    let fs = SimFs::new();
    {
        let store = Store::open_with(
            Arc::new(fs.clone()) as Arc<dyn Vfs>,
            options(2048, u64::MAX),
        )
        .unwrap();
        store.commit(setup_batch()).unwrap();
        for n in 0..10 {
            store.commit(mail_batch(&store, n, 500)).unwrap();
        }
    }
    // Remove the close-time checkpoint so recovery reads the whole log.
    fs.remove("checkpoint").unwrap();
    fs.corrupt("0000000000000002.seg", 40);
    let err = Store::open_with(Arc::new(fs) as Arc<dyn Vfs>, options(2048, u64::MAX)).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("0000000000000002.seg"), "{message}");
    assert!(message.contains("offset 32"), "{message}");
}
