//! The real crash test: a child process commits batches from several threads and
//! reports each one it was told is durable; the parent kills it with SIGKILL at a
//! random moment, reopens the store and checks that every reported batch is there and
//! intact, and that no batch is half there. Repeated on the same store, so recovery
//! also runs over the remains of earlier crashes.
//!
//! The child is this same test binary running the ignored `crash_child` test with
//! `LIFEBOAT_CRASH_DIR` set.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lifeboat_store::*;

const ROUNDS: u64 = 24;
const CHILD_THREADS: u64 = 4;
const ACCOUNT: &str = "crash@example.test";

fn options() -> Options {
    Options {
        // Small segments and checkpoints so kills land in rolls and checkpoints too.
        segment_bytes_max: 1 << 20,
        checkpoint_every_bytes: 4 << 20,
        group_bytes_max: 8 << 20,
        ..Options::default()
    }
}

/// Deterministic body of batch `id`: 1–40 KiB.
fn body_of(id: u64) -> Vec<u8> {
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let len = 1024 + (x % (39 * 1024)) as usize;
    let mut body = format!("Subject: crash {id}\r\n\r\n").into_bytes();
    while body.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        body.push(b'a' + (x % 26) as u8);
    }
    body
}

#[test]
#[ignore = "the child half of sigkill_loses_nothing_acknowledged"]
fn crash_child() {
    let Ok(dir) = std::env::var("LIFEBOAT_CRASH_DIR") else {
        return;
    };
    let first: u64 = std::env::var("LIFEBOAT_CRASH_FIRST")
        .unwrap()
        .parse()
        .unwrap();
    let store = Store::open(&dir, options()).unwrap();
    if store.read(|s| s.account(ACCOUNT).is_none()) {
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
        store.commit(batch).unwrap();
    }
    let inbox = store.read(|s| s.folder_by_name(ACCOUNT, "INBOX").unwrap().id);
    println!("READY");
    std::thread::scope(|scope| {
        for t in 0..CHILD_THREADS {
            let store = store.clone();
            scope.spawn(move || {
                for i in 0.. {
                    let id = first + t * 100_000 + i;
                    let mut batch = Batch::new();
                    let body = batch.put_body(body_of(id));
                    batch.push(Op::Append {
                        folder: inbox,
                        body,
                        flags: Flags::default(),
                        internal_date: 0,
                    });
                    batch.push(Op::Archive(NewArchiveEntry {
                        body,
                        direction: Direction::In,
                        mail_from: "x@remote.test".into(),
                        rcpt_to: vec![ACCOUNT.into()],
                        date: id as i64,
                        headers: HeaderFields {
                            subject: format!("crash {id}"),
                            ..Default::default()
                        },
                    }));
                    store.commit(batch).unwrap();
                    // Only now may the parent count on it.
                    println!("ACK {id}");
                }
            });
        }
    });
}

/// Checks the store; returns the ids present.
fn verify(dir: &std::path::Path, acked: &BTreeSet<u64>) -> BTreeSet<u64> {
    let store = Store::open(dir, options()).unwrap_or_else(|e| panic!("recovery failed: {e}"));
    let entries: Vec<ArchiveEntry> = store.read(|s| s.archive().cloned().collect());
    let inbox_bodies: BTreeMap<BodyId, usize> = store.read(|s| {
        let mut counts = BTreeMap::new();
        for m in s
            .folder_by_name(ACCOUNT, "INBOX")
            .unwrap()
            .messages
            .values()
        {
            *counts.entry(m.body).or_insert(0) += 1;
        }
        counts
    });
    let mut present = BTreeSet::new();
    for entry in &entries {
        let id: u64 = entry
            .headers
            .subject
            .strip_prefix("crash ")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            &*store.body(entry.body).unwrap(),
            body_of(id).as_slice(),
            "batch {id} damaged"
        );
        assert_eq!(
            inbox_bodies.get(&entry.body),
            Some(&1),
            "batch {id} half present"
        );
        present.insert(id);
    }
    assert_eq!(
        inbox_bodies.len(),
        entries.len(),
        "INBOX has mail without its archive copy"
    );
    for id in acked {
        assert!(present.contains(id), "acknowledged batch {id} lost");
    }
    present
}

#[test]
fn sigkill_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked = BTreeSet::new();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut kills_with_acks = 0;
    for round in 0..ROUNDS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run_for = Duration::from_millis(30 + seed % 400);
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("LIFEBOAT_CRASH_DIR", dir.path())
            .env("LIFEBOAT_CRASH_FIRST", (round * 1_000_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.ends_with("READY") {
                    let _ = tx.send(None);
                } else if let Some(id) = line.strip_prefix("ACK ") {
                    let _ = tx.send(Some(id.parse::<u64>().unwrap()));
                }
            }
        });
        // Start the clock once the child has recovered and is committing.
        let ready_by = Instant::now() + Duration::from_secs(60);
        loop {
            match rx.recv_timeout(ready_by.saturating_duration_since(Instant::now())) {
                Ok(None) => break,
                Ok(Some(_)) => continue,
                Err(_) => panic!("child did not start"),
            }
        }
        std::thread::sleep(run_for);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let before = acked.len();
        acked.extend(rx.try_iter().flatten());
        if acked.len() > before {
            kills_with_acks += 1;
        }
        let present = verify(dir.path(), &acked);
        eprintln!(
            "round {round}: killed after {run_for:?}, {} acknowledged, {} present",
            acked.len(),
            present.len()
        );
    }
    assert!(
        kills_with_acks >= 20,
        "only {kills_with_acks} kills landed while committing"
    );
}
