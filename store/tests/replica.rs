//! Replicated stores (cluster mode): commits go through a replicator to one shared,
//! ordered log and come back through `apply_replicated`; every store that applies the
//! log reaches the same state, the committing one answers its caller with the applied
//! results, nothing is acknowledged that the log did not store, and a store that
//! restarts knows how far it got (from its log, and from a checkpoint).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeboat_store::io::{SimFs, Vfs};
use lifeboat_store::*;

/// The cluster's log, in memory: frames in the order they were published.
#[derive(Default)]
struct SharedLog {
    frames: Mutex<Vec<Vec<u8>>>,
    refuse: AtomicBool,
}

struct Publisher(Arc<SharedLog>);

impl Replicator for Publisher {
    fn publish(&self, frame: Vec<u8>, done: Box<dyn FnOnce(Result<u64, String>) + Send>) {
        if self.0.refuse.load(Ordering::SeqCst) {
            done(Err("no majority".into()));
            return;
        }
        let seq = {
            let mut frames = self.0.frames.lock().unwrap();
            frames.push(frame);
            frames.len() as u64
        };
        done(Ok(seq));
    }

    fn frame_max(&self) -> usize {
        usize::MAX
    }
}

impl SharedLog {
    fn len(&self) -> usize {
        self.frames.lock().unwrap().len()
    }

    /// Gives `store` every frame it has not applied, in order, and waits for them.
    fn pump(&self, store: &Store) {
        let frames = self.frames.lock().unwrap().clone();
        let from = store.applied_seq() as usize;
        let pending: Vec<ApplyFuture> = frames[from..]
            .iter()
            .enumerate()
            .map(|(i, f)| store.apply_replicated((from + i + 1) as u64, f))
            .collect();
        for p in pending {
            p.wait().unwrap();
        }
    }
}

fn open(dir: &std::path::Path, log: &Arc<SharedLog>) -> Store {
    let store = Store::open(dir, Options::default()).unwrap();
    store.replicate_through(Arc::new(Publisher(log.clone())));
    store
}

/// Commits on `store` from another thread while the log is pumped into `all` stores,
/// as a cluster's readers would; returns the committer's results.
fn commit(
    store: &Store,
    log: &Arc<SharedLog>,
    all: &[&Store],
    batch: Batch,
) -> Result<Vec<Result<OpResult, OpError>>> {
    let before = log.len();
    let committer = store.clone();
    let handle = std::thread::spawn(move || committer.commit(batch));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while log.len() == before && !handle.is_finished() {
        assert!(std::time::Instant::now() < deadline, "never published");
        std::thread::sleep(Duration::from_millis(1));
    }
    for s in all {
        log.pump(s);
    }
    handle.join().unwrap()
}

fn crash_copy(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
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
        address: "alice@example.test".into(),
        password_hash: "x".into(),
        role: Role::User,
        covered: true,
        recovery: None,
    });
    batch
}

fn append_batch(store: &Store, text: &str) -> Batch {
    let inbox = store.read(|s| s.folder_by_name("alice@example.test", INBOX).unwrap().id);
    let mut batch = Batch::new();
    let body = batch.put_body(text.as_bytes().to_vec());
    batch.push(Op::Append {
        folder: inbox,
        body,
        flags: Flags::default(),
        internal_date: 1_700_000_000,
    });
    batch
}

#[test]
fn every_store_applying_the_log_reaches_the_same_state() {
    let log = Arc::new(SharedLog::default());
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let stores: Vec<Store> = dirs.iter().map(|d| open(d.path(), &log)).collect();
    let all: Vec<&Store> = stores.iter().collect();

    let results = commit(&stores[0], &log, &all, setup_batch()).unwrap();
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    // Each store commits in turn; each caller learns the UID its message got.
    let mut uids = Vec::new();
    for round in 0..6 {
        let store = &stores[round % 3];
        let results = commit(store, &log, &all, append_batch(store, &format!("m{round}"))).unwrap();
        match &results[1] {
            Ok(OpResult::Appended { uid, .. }) => uids.push(*uid),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(uids, vec![1, 2, 3, 4, 5, 6]);
    // A failed op fails alike everywhere.
    let mut batch = Batch::new();
    batch.push(Op::DeleteDomain("nowhere.test".into()));
    let results = commit(&stores[2], &log, &all, batch).unwrap();
    assert!(
        matches!(results[0], Err(OpError::NoDomain(_))),
        "{results:?}"
    );

    let digests: Vec<String> = stores.iter().map(|s| s.read(|st| st.digest())).collect();
    assert_eq!(digests[0], digests[1]);
    assert_eq!(digests[0], digests[2]);
    assert!(stores.iter().all(|s| s.applied_seq() == 8));
    // UIDVALIDITY, derived from the commit's time, is the same too.
    let validity: Vec<u32> = stores
        .iter()
        .map(|s| {
            s.read(|st| {
                st.folder_by_name("alice@example.test", INBOX)
                    .unwrap()
                    .uidvalidity
            })
        })
        .collect();
    assert_eq!(validity[0], validity[1]);
    assert_eq!(validity[0], validity[2]);
    for s in &stores {
        let inbox = s.read(|st| {
            st.folder_by_name("alice@example.test", INBOX)
                .unwrap()
                .messages
                .values()
                .map(|m| m.body)
                .collect::<Vec<_>>()
        });
        assert_eq!(&*s.body(inbox[5]).unwrap(), b"m5");
    }
}

#[test]
fn nothing_is_acknowledged_that_the_log_did_not_store() {
    let log = Arc::new(SharedLog::default());
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &log);
    commit(&store, &log, &[&store], setup_batch()).unwrap();
    log.refuse.store(true, Ordering::SeqCst);
    let err = store.commit(append_batch(&store, "lost")).unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert_eq!(log.len(), 1);
    let messages = store.read(|s| {
        s.folder_by_name("alice@example.test", INBOX)
            .unwrap()
            .messages
            .len()
    });
    assert_eq!(messages, 0, "nothing applied");
    // The log takes writes again: so does the store.
    log.refuse.store(false, Ordering::SeqCst);
    commit(&store, &log, &[&store], append_batch(&store, "kept")).unwrap();
    assert_eq!(store.applied_seq(), 2);
}

#[test]
fn a_restarted_store_knows_how_far_it_got_and_skips_what_it_has() {
    let log = Arc::new(SharedLog::default());
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let other = open(other_dir.path(), &log);
    {
        let store = open(dir.path(), &log);
        commit(&store, &log, &[&store, &other], setup_batch()).unwrap();
        commit(&store, &log, &[&store, &other], append_batch(&store, "one")).unwrap();
        store.checkpoint().unwrap();
        commit(&store, &log, &[&store, &other], append_batch(&store, "two")).unwrap();
        // What a crash now leaves: the files as they are (no checkpoint at close).
        crash_copy(dir.path(), crashed.path());
    }
    // Reopened after the crash: the checkpoint says 2, the log after it says 3.
    let store = open(crashed.path(), &log);
    assert_eq!(store.applied_seq(), 3);
    assert_eq!(store.stats().replayed_at_open, 1);
    drop(store);
    // Reopened after a clean stop: the checkpoint at close says 3.
    let store = open(dir.path(), &log);
    assert_eq!(store.applied_seq(), 3);
    // Frames it has already are skipped, even when given again.
    let frames = log.frames.lock().unwrap().clone();
    store.apply_replicated(2, &frames[1]).wait().unwrap();
    store.apply_replicated(3, &frames[2]).wait().unwrap();
    assert_eq!(
        store.read(|s| s
            .folder_by_name("alice@example.test", INBOX)
            .unwrap()
            .messages
            .len()),
        2
    );
    // Meanwhile the others went on; it catches up.
    commit(&other, &log, &[&other], append_batch(&other, "three")).unwrap();
    log.pump(&store);
    assert_eq!(store.applied_seq(), 4);
    assert_eq!(store.read(|s| s.digest()), other.read(|s| s.digest()));
    // A checkpoint without log records after it still knows.
    store.checkpoint().unwrap();
    drop(store);
    let store = open(dir.path(), &log);
    assert_eq!(store.applied_seq(), 4);
}

#[test]
fn compaction_stays_local_in_a_replicated_store() {
    let log = Arc::new(SharedLog::default());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        Options {
            segment_bytes_max: 4096,
            ..Options::default()
        },
    )
    .unwrap();
    store.replicate_through(Arc::new(Publisher(log.clone())));
    commit(&store, &log, &[&store], setup_batch()).unwrap();
    for i in 0..20 {
        commit(
            &store,
            &log,
            &[&store],
            append_batch(&store, &"x".repeat(1000 + i)),
        )
        .unwrap();
    }
    // Expunge most, so old segments are mostly garbage.
    let (inbox, uids) = store.read(|s| {
        let f = s.folder_by_name("alice@example.test", INBOX).unwrap();
        (
            f.id,
            f.messages.keys().copied().take(18).collect::<Vec<_>>(),
        )
    });
    let mut batch = Batch::new();
    batch.push(Op::Expunge {
        folder: inbox,
        uids,
    });
    commit(&store, &log, &[&store], batch).unwrap();
    let published = log.len();
    let digest = store.read(|s| s.digest());
    let removed = store.compact(0.5).unwrap();
    assert!(!removed.is_empty());
    assert_eq!(log.len(), published, "compaction published nothing");
    assert_eq!(
        store.read(|s| s.digest()),
        digest,
        "nor changed the logical state"
    );
}

#[test]
fn a_snapshot_restores_to_the_same_state_and_goes_on_from_there() {
    let log = Arc::new(SharedLog::default());
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &log);
    commit(&store, &log, &[&store], setup_batch()).unwrap();
    for i in 0..30 {
        commit(
            &store,
            &log,
            &[&store],
            append_batch(&store, &format!("message {i}")),
        )
        .unwrap();
    }
    let mut snapshot = Vec::new();
    let applied = store.snapshot(&mut snapshot).unwrap();
    assert_eq!(applied, 31);
    // The log goes on after the snapshot.
    commit(
        &store,
        &log,
        &[&store],
        append_batch(&store, "after the snapshot"),
    )
    .unwrap();

    let target = tempfile::tempdir().unwrap();
    let restored_dir = target.path().join("store");
    assert_eq!(
        Store::restore(&restored_dir, snapshot.as_slice()).unwrap(),
        31
    );
    let restored = open(&restored_dir, &log);
    assert_eq!(restored.applied_seq(), 31);
    log.pump(&restored);
    assert_eq!(restored.applied_seq(), 32);
    assert_eq!(restored.read(|s| s.digest()), store.read(|s| s.digest()));
    let bodies = restored.read(|s| {
        s.folder_by_name("alice@example.test", INBOX)
            .unwrap()
            .messages
            .values()
            .map(|m| m.body)
            .collect::<Vec<_>>()
    });
    assert_eq!(&*restored.body(bodies[7]).unwrap(), b"message 7");
    assert_eq!(&*restored.body(bodies[30]).unwrap(), b"after the snapshot");
    assert!(restored.verify().unwrap() > 0);

    // A damaged snapshot restores nothing, and leaves nothing behind.
    let mut damaged = snapshot.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 1;
    let other = target.path().join("other");
    let err = Store::restore(&other, damaged.as_slice()).unwrap_err();
    assert!(err.to_string().contains("snapshot"), "{err}");
    assert!(!other.exists());
    // A length damaged to announce more than any memory: the snapshot is cut short,
    // nothing is allocated for it.
    let mut huge = snapshot.clone();
    huge[8..16].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    let err = Store::restore(&other, huge.as_slice()).unwrap_err();
    assert!(err.to_string().contains("checkpoint cut short"), "{err}");
    assert!(!other.exists());
    // Nor into a store that exists.
    assert!(Store::restore(&restored_dir, snapshot.as_slice()).is_err());
}

/// What a replicator answers a publish with.
type Answer = Box<dyn FnOnce(Result<u64, String>) + Send>;

/// A replicator whose acknowledgements wait until the test gives them.
#[derive(Default)]
struct Held {
    log: Arc<SharedLog>,
    unanswered: Mutex<Vec<(u64, Answer)>>,
}

struct HeldPublisher(Arc<Held>);

impl Replicator for HeldPublisher {
    fn publish(&self, frame: Vec<u8>, done: Answer) {
        let seq = {
            let mut frames = self.0.log.frames.lock().unwrap();
            frames.push(frame);
            frames.len() as u64
        };
        self.0.unanswered.lock().unwrap().push((seq, done));
    }

    fn frame_max(&self) -> usize {
        usize::MAX
    }
}

impl Held {
    /// Answers every frame published so far as not stored.
    fn fail(&self) {
        let unanswered = std::mem::take(&mut *self.unanswered.lock().unwrap());
        for (_, done) in unanswered {
            done(Err("no majority answered".into()));
        }
    }

    /// Acknowledges every frame published so far.
    fn answer(&self) {
        let unanswered = std::mem::take(&mut *self.unanswered.lock().unwrap());
        for (seq, done) in unanswered {
            done(Ok(seq));
        }
    }
}

/// Waits for a commit's future from a test's thread.
fn wait(mut commit: CommitFuture) -> Result<Vec<Result<OpResult, OpError>>> {
    use std::future::Future;
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let std::task::Poll::Ready(result) = std::pin::Pin::new(&mut commit).poll(&mut cx) {
            return result;
        }
        assert!(std::time::Instant::now() < deadline, "never answered");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn commits_made_while_a_frame_is_on_its_way_go_together_each_a_batch_of_its_own() {
    let held = Arc::new(Held::default());
    let log = held.log.clone();
    let dir = tempfile::tempdir().unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    store.replicate_through(Arc::new(HeldPublisher(held.clone())));
    let other = open(other_dir.path(), &log);
    let setup = store.commit_async(setup_batch());
    held.answer();
    log.pump(&store);
    log.pump(&other);
    assert!(wait(setup).unwrap().iter().all(|r| r.is_ok()));

    // The first goes out alone; the three made while it waits for its
    // acknowledgement go in one frame once it has it.
    let first = store.commit_async(append_batch(&store, "a"));
    let second = store.commit_async(append_batch(&store, "b"));
    let mut failing = Batch::new();
    failing.push(Op::DeleteDomain("nowhere.test".into()));
    let third = store.commit_async(failing);
    // Its body is the first of its own batch, and its audit entry is kept: the
    // failure of the batch before it in the frame is not its own.
    let mut fourth = append_batch(&store, "d");
    fourth.push(Op::Audit(AuditRecord {
        actor: "alice@example.test".into(),
        source: "127.0.0.1".into(),
        action: "message.append".into(),
        object: "INBOX".into(),
        domain: Some("example.test".into()),
        before: None,
        after: None,
        at: 1_700_000_000,
    }));
    let fourth = store.commit_async(fourth);
    assert_eq!(log.len(), 2, "one frame on its way, three commits waiting");
    held.answer();
    assert_eq!(log.len(), 3, "the three in one frame");
    held.answer();
    log.pump(&store);
    log.pump(&other);

    let uid = |results: &[Result<OpResult, OpError>]| match results {
        [Ok(OpResult::Body(_)), Ok(OpResult::Appended { uid, .. }), ..] => *uid,
        other => panic!("{other:?}"),
    };
    assert_eq!(uid(&wait(first).unwrap()), 1);
    let second = wait(second).unwrap();
    assert_eq!((uid(&second), second.len()), (2, 2));
    let third = wait(third).unwrap();
    assert!(
        matches!(third[..], [Err(OpError::NoDomain(_))]),
        "{third:?}"
    );
    let fourth = wait(fourth).unwrap();
    assert_eq!((uid(&fourth), fourth.len()), (3, 3));
    assert!(matches!(fourth[2], Ok(OpResult::Done)), "{fourth:?}");

    let bodies = |s: &Store| {
        s.read(|st| {
            st.folder_by_name("alice@example.test", INBOX)
                .unwrap()
                .messages
                .values()
                .map(|m| s.body(m.body).unwrap().to_vec())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(
        bodies(&store),
        [b"a".to_vec(), b"b".to_vec(), b"d".to_vec()]
    );
    assert_eq!(store.read(|s| s.journal().audit().count()), 1);
    assert_eq!(store.applied_seq(), 3);
    assert_eq!(store.read(|s| s.digest()), other.read(|s| s.digest()));
    // Replayed from the log after a crash, the frame comes to the same.
    crash_copy(dir.path(), crashed.path());
    let replayed = open(crashed.path(), &log);
    assert_eq!(replayed.applied_seq(), 3);
    assert_eq!(replayed.read(|s| s.digest()), store.read(|s| s.digest()));
    assert_eq!(bodies(&replayed), bodies(&store));
}

/// What the frames of [`frames_of_other_nodes`] leave in the publisher's store, and
/// the frames: the set-up and twelve messages, each its own frame.
fn frames_of_other_nodes() -> (Vec<Vec<u8>>, String) {
    let log = Arc::new(SharedLog::default());
    let dir = tempfile::tempdir().unwrap();
    let publisher = open(dir.path(), &log);
    commit(&publisher, &log, &[&publisher], setup_batch()).unwrap();
    for i in 0..12 {
        let text = format!("message {i} {}", "x".repeat(3000));
        let batch = append_batch(&publisher, &text);
        commit(&publisher, &log, &[&publisher], batch).unwrap();
    }
    let frames = log.frames.lock().unwrap().clone();
    (frames, publisher.read(|s| s.digest()))
}

/// A replicated store on a simulated disk, applying `frames` one by one (each its own
/// group), and its file system.
fn replica_applying(frames: &[Vec<u8>], delay: Duration) -> (Store, SimFs, Arc<SharedLog>) {
    let fs = SimFs::new();
    let store = open_sim(&fs, delay).unwrap();
    let log = Arc::new(SharedLog::default());
    *log.frames.lock().unwrap() = frames.to_vec();
    store.replicate_through(Arc::new(Publisher(log.clone())));
    let syncs = fs.syncs();
    for (i, frame) in frames.iter().enumerate() {
        store.apply_replicated(i as u64 + 1, frame).wait().unwrap();
    }
    if delay > Duration::from_secs(60) {
        assert_eq!(fs.syncs(), syncs, "no frame waited for a sync");
    }
    (store, fs, log)
}

/// Opens a store on `fs` with small segments (a simulated disk holds them in memory).
fn open_sim(fs: &SimFs, replica_sync_delay: Duration) -> Result<Store> {
    let options = Options {
        segment_bytes_max: 256 << 10,
        replica_sync_delay,
        ..Options::default()
    };
    Store::open_with(Arc::new(fs.clone()) as Arc<dyn Vfs>, options)
}

/// Crashes `store`'s machine (it is not closed) and opens what the crash left, 16 ways;
/// see [`recover`].
fn crash_and_recover(store: Store, fs: &SimFs, log: &Arc<SharedLog>, digest: &str) -> Vec<u64> {
    fs.crash();
    drop(store);
    recover(fs, log, 16, digest)
}

/// Opens what a crash left of `fs`, `seeds` ways; per way, the last frame it holds.
/// Every way opens, holds a prefix of the log, and reaches the publisher's state once
/// it read the rest of the log again.
fn recover(fs: &SimFs, log: &Arc<SharedLog>, seeds: u64, digest: &str) -> Vec<u64> {
    (0..seeds)
        .map(|seed| {
            let fs = fs.recovered(lifeboat_store::io::TornWrite::Pages, seed);
            let store = open_sim(&fs, Options::default().replica_sync_delay)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            let kept = store.applied_seq();
            log.pump(&store);
            assert_eq!(store.read(|s| s.digest()), digest, "seed {seed}");
            kept
        })
        .collect()
}

/// Frames other nodes published are applied without waiting for a sync: a crash may
/// lose the newest of them (the cluster's log has them: they are read again), never
/// damages the log, whichever of their pages reached the disk.
#[test]
fn frames_of_other_nodes_wait_for_no_sync_and_a_crash_loses_only_those() {
    let (frames, digest) = frames_of_other_nodes();
    let (store, fs, log) = replica_applying(&frames, Duration::from_secs(3600));
    assert_eq!(store.applied_seq(), frames.len() as u64);
    // Nothing synced them: the crash comes before the store is closed.
    fs.crash();
    drop(store);
    let kept: std::collections::BTreeSet<u64> =
        recover(&fs, &log, 64, &digest).into_iter().collect();
    // The seeds reach none of the frames, and several prefixes of them.
    assert!(kept.contains(&0) && kept.len() > 2, "{kept:?}");
}

/// What syncs frames other nodes published: the delay passing, a checkpoint, or a
/// commit of the node's own; after it, a crash loses none of them.
#[test]
fn frames_of_other_nodes_are_synced_after_the_delay_at_a_checkpoint_and_with_a_commit() {
    let (frames, digest) = frames_of_other_nodes();
    let all = frames.len() as u64;
    let (store, fs, log) = replica_applying(&frames, Duration::from_millis(50));
    // The delay passes: what a crash would leave (the synced bytes) holds every frame.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let synced = fs.recovered(lifeboat_store::io::TornWrite::Drop, 0);
        let kept = open_sim(&synced, Duration::ZERO).unwrap().applied_seq();
        if kept == all {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "synced {kept} of {all}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let kept = crash_and_recover(store, &fs, &log, &digest);
    assert!(kept.iter().all(|&k| k == all), "{kept:?}");

    let (store, fs, log) = replica_applying(&frames, Duration::from_secs(3600));
    store.checkpoint().unwrap();
    let kept = crash_and_recover(store, &fs, &log, &digest);
    assert!(kept.iter().all(|&k| k == all), "{kept:?}");

    let (store, fs, log) = replica_applying(&frames, Duration::from_secs(3600));
    let batch = append_batch(&store, "its own");
    commit(&store, &log, &[&store], batch).unwrap();
    let digest = store.read(|s| s.digest());
    let kept = crash_and_recover(store, &fs, &log, &digest);
    assert!(kept.iter().all(|&k| k == all + 1), "{kept:?}");
}

/// A writer that never waits long enough for the delay to pass (frames keep coming)
/// syncs the run with the first group after it.
#[test]
fn a_busy_writer_syncs_frames_of_other_nodes_once_the_delay_passed() {
    let (frames, _) = frames_of_other_nodes();
    let (store, fs, _log) = replica_applying(&frames[..1], Duration::from_millis(100));
    let syncs = fs.syncs();
    // The writer takes the second frame and waits for the state's lock past the delay,
    // while the third one queues up behind it.
    let (second, third) = store.read(|_| {
        let second = store.apply_replicated(2, &frames[1]);
        std::thread::sleep(Duration::from_millis(300));
        (second, store.apply_replicated(3, &frames[2]))
    });
    second.wait().unwrap();
    third.wait().unwrap();
    assert_eq!(
        fs.syncs(),
        syncs + 1,
        "the third frame was synced before it was applied"
    );
}

fn domain_batch(name: &str) -> Batch {
    let mut batch = Batch::new();
    batch.push(Op::PutDomain(DomainSettings {
        name: name.into(),
        upstream: "127.0.0.1:25".into(),
        coverage: Coverage::All,
        failover: Failover::Auto,
    }));
    batch
}

/// A store's own frame is applied as soon as the log acknowledged it, when every frame
/// before it was applied: its commit is answered without the frame coming back through
/// the log, which then skips it.
#[test]
fn an_own_frame_is_applied_on_acknowledgement() {
    let log = Arc::new(SharedLog::default());
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &log);
    // Nothing reads the log for it.
    let committer = store.clone();
    let commits = std::thread::spawn(move || {
        committer.commit(setup_batch()).unwrap();
        committer.commit(append_batch(&committer, "one")).unwrap();
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !commits.is_finished() {
        assert!(std::time::Instant::now() < deadline, "not answered");
        std::thread::sleep(Duration::from_millis(5));
    }
    commits.join().unwrap();
    assert_eq!(store.applied_seq(), 2);
    log.pump(&store);
    assert_eq!(store.applied_seq(), 2);
    let other_dir = tempfile::tempdir().unwrap();
    let other = open(other_dir.path(), &log);
    log.pump(&other);
    assert_eq!(store.read(|s| s.digest()), other.read(|s| s.digest()));
}

/// An own frame acknowledged while a frame of another node before it has not been
/// applied waits for the log: it is applied after that frame, never before it.
#[test]
fn an_own_frame_waits_for_the_frames_before_it() {
    let log = Arc::new(SharedLog::default());
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (open(a_dir.path(), &log), open(b_dir.path(), &log));
    // Frame 1, from a; b has not read it.
    a.commit(setup_batch()).unwrap();
    // Frame 2, from b: acknowledged, but b must apply frame 1 first.
    let committer = b.clone();
    let commit = std::thread::spawn(move || committer.commit(domain_batch("b.test")));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while log.len() < 2 {
        assert!(std::time::Instant::now() < deadline, "never published");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !commit.is_finished(),
        "answered before the frame before it was applied"
    );
    assert_eq!(b.applied_seq(), 0);
    log.pump(&b);
    commit.join().unwrap().unwrap();
    assert_eq!(b.applied_seq(), 2);
    log.pump(&a);
    assert_eq!(a.read(|s| s.digest()), b.read(|s| s.digest()));
    assert!(b.read(|s| s.domain("b.test").is_some() && s.domain("example.test").is_some()));
}

/// While the log does not answer, a commit waits at most one publish: when the frame
/// on its way fails, the commits waiting behind it fail with it, without being
/// published; the next commit is published again.
#[test]
fn commits_waiting_behind_a_frame_that_failed_fail_with_it() {
    let held = Arc::new(Held::default());
    let log = held.log.clone();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    store.replicate_through(Arc::new(HeldPublisher(held.clone())));
    let setup = store.commit_async(setup_batch());
    held.answer();
    log.pump(&store);
    assert!(wait(setup).unwrap().iter().all(|r| r.is_ok()));

    let first = store.commit_async(append_batch(&store, "a"));
    let behind: Vec<_> = ["b", "c"]
        .into_iter()
        .map(|text| store.commit_async(append_batch(&store, text)))
        .collect();
    assert_eq!(log.len(), 2, "one frame on its way, two commits waiting");
    held.fail();
    let err = wait(first).unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    for commit in behind {
        let err = wait(commit).unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err}");
        assert!(err.to_string().contains("not published"), "{err}");
    }
    assert_eq!(log.len(), 2, "the two waiting were not published");

    // The log answers again: so does the store.
    let next = store.commit_async(append_batch(&store, "d"));
    assert_eq!(log.len(), 3);
    held.answer();
    log.pump(&store);
    assert!(wait(next).unwrap().iter().all(|r| r.is_ok()));
}
