//! Recovery time of a 1 GiB store (10 KiB messages, each archived and in a mailbox),
//! opened with its checkpoint and without one (full replay of the log), the time to
//! write a checkpoint of it, and how long a commit made meanwhile waits.
//!
//! Run: `cargo bench -p lifeboat-store --bench recovery`. Under `cargo test` it runs
//! once on a 16 MiB store as a smoke test. The page cache is warm (the store was just
//! written); a cold-cache open adds reading the checkpoint, or the whole log, from disk.

use std::time::{Duration, Instant};

use criterion::Criterion;
use lifeboat_store::*;

const MESSAGE_BYTES: usize = 10 * 1024;
const PER_BATCH: usize = 16;
const WRITERS: usize = 8;

fn build(dir: &std::path::Path, total_bytes: u64) -> u64 {
    let store = Store::open(dir, Options::default()).unwrap();
    let mut setup = Batch::new();
    setup.push(Op::PutDomain(DomainSettings {
        name: "example.test".into(),
        upstream: "127.0.0.1:25".into(),
        coverage: Coverage::All,
        failover: Failover::Auto,
    }));
    setup.push(Op::AddAccount {
        address: "user@example.test".into(),
        password_hash: "x".into(),
        role: Role::User,
        covered: true,
        recovery: None,
    });
    store.commit(setup).unwrap();
    let inbox = store.read(|s| s.folder_by_name("user@example.test", "INBOX").unwrap().id);
    let messages = total_bytes / MESSAGE_BYTES as u64;
    let batches = messages / PER_BATCH as u64;
    std::thread::scope(|scope| {
        for w in 0..WRITERS as u64 {
            let store = store.clone();
            scope.spawn(move || {
                for b in (w..batches).step_by(WRITERS) {
                    let mut batch = Batch::new();
                    for m in 0..PER_BATCH as u64 {
                        let i = b * PER_BATCH as u64 + m;
                        let mut bytes = vec![b'm'; MESSAGE_BYTES];
                        bytes[..8].copy_from_slice(&i.to_le_bytes());
                        let body = batch.put_body(bytes);
                        batch.push(Op::Append {
                            folder: inbox,
                            body,
                            flags: Flags::default(),
                            internal_date: i as i64,
                        });
                        batch.push(Op::Archive(NewArchiveEntry {
                            body,
                            direction: Direction::In,
                            mail_from: format!("sender{i}@remote.test"),
                            rcpt_to: vec!["user@example.test".into()],
                            date: i as i64,
                            headers: HeaderFields {
                                subject: format!("message {i}"),
                                from: format!("Sender <sender{i}@remote.test>"),
                                to: "user@example.test".into(),
                                ..Default::default()
                            },
                        }));
                    }
                    store.commit(batch).unwrap();
                }
            });
        }
    });
    batches * PER_BATCH as u64
}

fn open_time(dir: &std::path::Path) -> (Duration, u64) {
    let start = Instant::now();
    let store = Store::open(dir, Options::default()).unwrap();
    let elapsed = start.elapsed();
    let replayed = store.stats().replayed_at_open;
    // Not dropped normally: that would write a checkpoint and change the next run.
    std::mem::forget(store);
    (elapsed, replayed)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let total: u64 = if bench { 1 << 30 } else { 16 << 20 };
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let with = root.path().join("with-checkpoint");
    let start = Instant::now();
    let messages = build(&with, total);
    let built = start.elapsed();
    // A copy without the checkpoint, for the full replay.
    let without = root.path().join("without-checkpoint");
    std::fs::create_dir(&without).unwrap();
    for entry in std::fs::read_dir(&with).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "checkpoint" {
            std::fs::copy(entry.path(), without.join(entry.file_name())).unwrap();
        }
    }
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = c.benchmark_group("recovery");
    group.bench_function("open_with_checkpoint", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| open_time(&with).0).sum())
    });
    group.bench_function("open_full_replay", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| open_time(&without).0).sum())
    });
    group.finish();
    c.final_summary();
    if bench {
        let (with_t, with_replayed) = open_time(&with);
        let (without_t, without_replayed) = open_time(&without);
        println!(
            "\nrecovery of a {} MiB store ({messages} messages of 10 KiB; built in {:.1} s):",
            total >> 20,
            built.as_secs_f64()
        );
        println!("  with checkpoint: {with_t:?} ({with_replayed} records replayed)");
        println!("  full replay:     {without_t:?} ({without_replayed} records replayed)");
    }
    // A checkpoint is encoded on the writer thread (commits wait meanwhile) and
    // written on a thread of its own: the whole checkpoint, and a commit made while
    // one is under way.
    let (checkpoint_time, stalled_commit) = {
        let store = Store::open(&with, Options::default()).unwrap();
        let start = Instant::now();
        store.checkpoint().unwrap();
        let whole = start.elapsed();
        let mut stalls = Vec::new();
        for _ in 0..5 {
            std::thread::scope(|scope| {
                let background = store.clone();
                scope.spawn(move || background.checkpoint().unwrap());
                std::thread::sleep(Duration::from_millis(2));
                let mut batch = Batch::new();
                batch.push(Op::SetMode {
                    domain: "example.test".into(),
                    mode: Mode::Normal,
                    forced: None,
                    reason: "bench".into(),
                    at: 0,
                });
                let start = Instant::now();
                store.commit(batch).unwrap();
                stalls.push(start.elapsed());
            });
        }
        stalls.sort();
        std::mem::forget(store);
        (whole, stalls)
    };
    if bench {
        println!("  writing a checkpoint: {checkpoint_time:?}");
        println!(
            "  a commit made during a checkpoint: median {:?}, max {:?}",
            stalled_commit[stalled_commit.len() / 2],
            stalled_commit[stalled_commit.len() - 1]
        );
    }
}
