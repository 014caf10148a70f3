//! Checked-in stores (`tests/fixtures/`) that every later version must open and read
//! as they were written. Each fixture is a store directory and `expected.txt`: either
//! `error: ...` (the exact error opening it gives; `STORE/` stands for its directory)
//! or what opening repaired and a full description of the state.
//!
//! - `v1`: written by format version 1: two domains (one with a forced mode),
//!   accounts of every role, messages with flags and keywords in INBOX and in user
//!   folders, queue entries (deferred, held, a drain), archive entries in and out,
//!   several segments, a checkpoint and log records after it.
//! - `legacy`: the same kind of store, written by `write_fixtures` before versions
//!   were recorded (headers without a version): read as version 1.
//! - damaged copies of `v1`, each with the error or the repair expected.
//!
//! `write_fixtures` (ignored) writes `v{FORMAT_VERSION}` and the damaged copies; run it
//! only when the format version changes, and keep the older `vN`: they are what old
//! stores look like.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use std::sync::{Arc, Mutex};

use lifeboat_store::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every fixture and what opening it must give.
#[test]
fn fixtures_open_and_read_as_written() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    // A store of the version this build writes is checked in.
    assert!(names.contains(&format!("v{FORMAT_VERSION}")), "{names:?}");
    assert!(names.contains(&"legacy".to_string()), "{names:?}");
    for name in names {
        let dir = fixtures().join(&name);
        let expected = std::fs::read_to_string(dir.join("expected.txt")).unwrap();
        assert_eq!(open_and_describe(&dir), expected, "fixture {name}");
    }
}

/// `legacy` is what stores looked like before versions were recorded, and `v1` holds
/// version 1 in every header.
#[test]
fn legacy_and_v1_headers() {
    for (name, version, checkpoint_magic) in [("legacy", 0, b"LBCKPT01"), ("v1", 1, b"LBCHECKP")] {
        let dir = fixtures().join(name);
        let segment = std::fs::read(dir.join("0000000000000001.seg")).unwrap();
        assert_eq!(&segment[0..8], b"LBSEG001");
        assert_eq!(segment[20..24], u32::to_le_bytes(version), "{name}");
        let checkpoint = std::fs::read(dir.join("checkpoint")).unwrap();
        assert_eq!(&checkpoint[0..8], checkpoint_magic, "{name}");
    }
}

/// Opens a copy of the store in `fixture` (opening writes: a repair, a checkpoint at
/// close) and describes what it found.
fn open_and_describe(fixture: &Path) -> String {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name != "expected.txt" {
            std::fs::copy(entry.path(), copy.path().join(name)).unwrap();
        }
    }
    let store = match Store::open(copy.path(), Options::default()) {
        Ok(store) => store,
        Err(e) => {
            let dir = format!("{}/", copy.path().display());
            return format!("error: {}\n", e.to_string().replace(&dir, "STORE/"));
        }
    };
    let mut out = String::new();
    let stats = store.stats();
    writeln!(out, "truncated at open: {}", stats.truncated_at_open).unwrap();
    describe(&store, &mut out);
    // The store goes on where it stopped: the next ids and UIDs follow.
    let inbox = store.read(|s| s.folder_by_name("alice@example.test", INBOX).unwrap().id);
    let mut batch = Batch::new();
    let body = batch.put_body(b"Subject: after\r\n\r\nnext\r\n".to_vec());
    batch.push(Op::Append {
        folder: inbox,
        body,
        flags: Flags::default(),
        internal_date: 1_800_000_000,
    });
    writeln!(out, "next: {:?}", store.commit(batch).unwrap()).unwrap();
    out
}

/// Everything the state holds, in a fixed order.
fn describe(store: &Store, out: &mut String) {
    store.read(|s| {
        for d in s.domains() {
            writeln!(
                out,
                "domain {} upstream={} coverage={:?} failover={:?} mode={:?} forced={:?} since={} reason={:?}",
                d.name, d.upstream, d.coverage, d.failover, d.mode, d.forced, d.mode_since, d.mode_reason
            )
            .unwrap();
        }
        for a in s.accounts(None) {
            writeln!(
                out,
                "account {} role={:?} covered={} recovery={:?} hash={} folders={:?}",
                a.address, a.role, a.covered, a.recovery, a.password_hash, a.folders
            )
            .unwrap();
        }
        let mut folders: Vec<&Folder> = s.all_folders().collect();
        folders.sort_by_key(|f| f.id);
        for f in folders {
            writeln!(
                out,
                "folder {} {} {:?} special={:?} uidvalidity={} uidnext={} modseq={} subscribed={}",
                f.id,
                f.account,
                f.name,
                f.special_use,
                f.uidvalidity,
                f.uidnext,
                f.highest_modseq,
                f.subscribed
            )
            .unwrap();
            for m in f.messages.values() {
                writeln!(
                    out,
                    "  uid {} body={} size={} date={} system={} keywords={:?} modseq={}",
                    m.uid, m.body, m.size, m.internal_date, m.flags.system.0, m.flags.keywords, m.modseq
                )
                .unwrap();
            }
        }
        // Subscriptions are names (state/folder_sync.rs); a store written before they
        // were kept gets its folders' flags.
        for a in s.accounts(None) {
            let names: Vec<&str> = s.subscriptions(&a.address).collect();
            writeln!(out, "subscriptions {} {:?}", a.address, names).unwrap();
        }
        let mut folders: Vec<&Folder> = s.all_folders().collect();
        folders.sort_by_key(|f| f.id);
        for f in folders {
            writeln!(
                out,
                "expunged from folder {} since modseq 0: {:?}",
                f.id,
                s.expunged_since(f.id, 0)
            )
            .unwrap();
        }
        for q in s.queue() {
            writeln!(
                out,
                "queue {} body={} sender={} recipient={} destination={:?} attempts={} next={} created={} state={:?} error={:?} portal={:?}",
                q.id, q.body, q.sender, q.recipient, q.destination, q.attempts, q.next_attempt,
                q.created, q.state, q.last_error, q.portal.as_ref().map(|p| (p.folder.0, p.uid))
            )
            .unwrap();
        }
        for e in s.archive() {
            let h = &e.headers;
            writeln!(
                out,
                "archive {} body={} direction={:?} from={} to={:?} date={} size={} headers={:?}",
                e.id,
                e.body,
                e.direction,
                e.mail_from,
                e.rcpt_to,
                e.date,
                e.size,
                [&h.from, &h.to, &h.cc, &h.subject, &h.message_id, &h.date]
            )
            .unwrap();
        }
    });
    // Written since version 2 (older stores have none, and nothing is described).
    store.read(|s| {
        for e in s.journal().audit() {
            writeln!(out, "audit {e:?}").unwrap();
        }
    });
    if store.applied_seq() != 0 {
        writeln!(
            out,
            "replicated log applied through {}",
            store.applied_seq()
        )
        .unwrap();
    }
    let mut bodies: Vec<(BodyId, BodyInfo)> =
        store.read(|s| s.bodies().map(|(id, info)| (*id, *info)).collect());
    bodies.sort_by_key(|(id, _)| *id);
    for (id, info) in bodies {
        let bytes = store.body(id).unwrap();
        writeln!(
            out,
            "body {id} segment={} offset={} len={} refs={} {:?}",
            info.loc.segment,
            info.loc.offset,
            info.loc.len,
            info.refs,
            String::from_utf8_lossy(&bytes)
        )
        .unwrap();
    }
}

/// Writes `tests/fixtures/v{FORMAT_VERSION}` and the damaged copies of it, each with
/// what opening it gives now. Run it only when `FORMAT_VERSION` changes (the older
/// `vN` stay: they are what old stores look like), and read every `expected.txt`
/// before committing: `cargo test -p lifeboat-store --test fixtures -- --ignored
/// write_fixtures`.
#[test]
#[ignore]
fn write_fixtures() {
    let v1 = fixtures().join(format!("v{FORMAT_VERSION}"));
    let (checkpointed, last) = write_store(&v1);
    // The damage below needs sealed segments after the checkpoint's.
    assert!(checkpointed + 2 <= last, "{checkpointed} {last}");
    let seg = |id: u64| format!("{id:016x}.seg");
    type Damage<'a> = (&'a str, &'a dyn Fn(&Path));
    let damaged: [Damage; 7] = [
        // A crash while appending: half a record at the end of the last segment.
        ("torn", &|dir| append(&dir.join(seg(last)), &[0x5a; 40])),
        // A sealed segment after the checkpoint lost its seal record.
        ("truncated", &|dir| cut(&dir.join(seg(checkpointed)), 32)),
        // A flipped bit in the first record of the last segment, records after it.
        ("corrupt", &|dir| flip(&dir.join(seg(last)), 32 + 40)),
        ("corrupt-checkpoint", &|dir| {
            flip(&dir.join("checkpoint"), 200)
        }),
        // A segment between the checkpoint's and the last is gone.
        ("missing", &|dir| {
            std::fs::remove_file(dir.join(seg(checkpointed + 1))).unwrap()
        }),
        // Written by a newer version.
        ("newer-segment", &|dir| {
            set_segment_version(&dir.join(seg(last)), FORMAT_VERSION + 1)
        }),
        ("newer-checkpoint", &|dir| {
            set_checkpoint_version(&dir.join("checkpoint"), FORMAT_VERSION + 1)
        }),
    ];
    std::fs::write(v1.join("expected.txt"), open_and_describe(&v1)).unwrap();
    for (name, damage) in damaged {
        let dir = fixtures().join(name);
        copy_store(&v1, &dir);
        damage(&dir);
        std::fs::write(dir.join("expected.txt"), open_and_describe(&dir)).unwrap();
    }
}

fn copy_store(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "expected.txt" {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn rewrite(file: &Path, change: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(file).unwrap();
    change(&mut bytes);
    std::fs::write(file, bytes).unwrap();
}

fn append(file: &Path, tail: &[u8]) {
    rewrite(file, |bytes| bytes.extend_from_slice(tail));
}

fn cut(file: &Path, len: usize) {
    rewrite(file, |bytes| bytes.truncate(bytes.len() - len));
}

fn flip(file: &Path, offset: usize) {
    rewrite(file, |bytes| bytes[offset] ^= 0x01);
}

/// A segment header naming another format version, with its CRC made good.
fn set_segment_version(file: &Path, version: u32) {
    rewrite(file, |h| {
        h[20..24].copy_from_slice(&version.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&h[0..16]), &h[20..32]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
    });
}

/// A checkpoint header naming another format version, with its CRC made good (it
/// covers the version and all after the CRC).
fn set_checkpoint_version(file: &Path, version: u32) {
    rewrite(file, |c| {
        c[8..12].copy_from_slice(&version.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&c[8..12]), &c[16..]);
        c[12..16].copy_from_slice(&crc.to_le_bytes());
    });
}

fn ok(results: Vec<Result<OpResult, OpError>>) -> Vec<OpResult> {
    results.into_iter().map(|r| r.unwrap()).collect()
}

fn commit(store: &Store, ops: Vec<Op>) -> Vec<OpResult> {
    let mut batch = Batch::new();
    for op in ops {
        batch.push(op);
    }
    ok(store.commit(batch).unwrap())
}

/// One message: its body in `folder`, archived, and queued for `destination`.
fn mail(store: &Store, n: u32, folder: FolderId, flags: Flags) -> (BodyId, u32, QueueId) {
    let text = format!(
        "From: bob@example.test\r\nTo: alice@example.test\r\nSubject: note {n}\r\n\r\nbody {n}\r\n"
    );
    let mut batch = Batch::new();
    let body = batch.put_body(text.into_bytes());
    batch.push(Op::Append {
        folder,
        body,
        flags,
        internal_date: 1_700_000_000 + n as i64,
    });
    batch.push(Op::Archive(NewArchiveEntry {
        body,
        direction: Direction::In,
        mail_from: "bob@example.test".into(),
        rcpt_to: vec!["alice@example.test".into()],
        date: 1_700_000_000 + n as i64,
        headers: HeaderFields {
            from: "bob@example.test".into(),
            to: "alice@example.test".into(),
            cc: String::new(),
            subject: format!("note {n}"),
            message_id: format!("<{n}@example.test>"),
            date: "Tue, 14 Nov 2023 22:13:20 +0000".into(),
        },
    }));
    batch.push(Op::Enqueue(NewQueueEntry {
        body,
        sender: "bob@example.test".into(),
        recipient: "alice@example.test".into(),
        destination: Destination::Upstream("example.test".into()),
        next_attempt: 1_700_000_060,
        created: 1_700_000_000 + n as i64,
        portal: None,
    }));
    let results = ok(store.commit(batch).unwrap());
    match results[..] {
        [OpResult::Body(body), OpResult::Appended { uid, .. }, OpResult::Archived(_), OpResult::Queued(queued)] => {
            (body, uid, queued)
        }
        _ => panic!("{results:?}"),
    }
}

/// The fixture store: small segments, so that it has several; a checkpoint in the
/// middle; the files copied while it is open, so no checkpoint at close covers the
/// records after it. Returns the segment the checkpoint points into and the last.
/// A replicator that keeps the frames it is given; the fixture writer applies them.
struct Loopback(Arc<Mutex<Vec<Vec<u8>>>>);

impl Replicator for Loopback {
    fn publish(
        &self,
        frame: Vec<u8>,
        done: Box<dyn FnOnce(std::result::Result<u64, String>) + Send>,
    ) {
        let mut frames = self.0.lock().unwrap();
        frames.push(frame);
        done(Ok(frames.len() as u64));
    }
    fn frame_max(&self) -> usize {
        usize::MAX
    }
}

fn write_store(dir: &Path) -> (u64, u64) {
    let scratch = tempfile::tempdir().unwrap();
    let options = Options {
        segment_bytes_max: 1024,
        checkpoint_every_bytes: u64::MAX,
        group_bytes_max: 1 << 20,
        ..Options::default()
    };
    let store = Store::open(scratch.path(), options).unwrap();
    let domain = |name: &str, coverage, failover| {
        Op::PutDomain(DomainSettings {
            name: name.into(),
            upstream: format!("mail.{name}:25"),
            coverage,
            failover,
        })
    };
    let account = |address: &str, role, covered, recovery: Option<&str>| Op::AddAccount {
        address: address.into(),
        password_hash: format!("$argon2id$fixture${address}"),
        role,
        covered,
        recovery: recovery.map(String::from),
    };
    commit(
        &store,
        vec![
            domain("example.test", Coverage::All, Failover::Auto),
            domain("other.test", Coverage::Selected, Failover::Manual),
            account("alice@example.test", Role::User, false, None),
            account(
                "bob@example.test",
                Role::DomainAdmin,
                true,
                Some("bob@elsewhere.test"),
            ),
            account("carol@other.test", Role::Admin, false, None),
        ],
    );
    commit(
        &store,
        vec![Op::SetMode {
            domain: "other.test".into(),
            mode: Mode::Emergency,
            forced: Some(Mode::Emergency),
            reason: "forced emergency by an admin".into(),
            at: 1_700_000_100,
        }],
    );
    let inbox = store.read(|s| s.folder_by_name("alice@example.test", INBOX).unwrap().id);
    let seen = Flags {
        system: SystemFlags::SEEN.union(SystemFlags::FLAGGED),
        keywords: vec!["$Important".into(), "project".into()],
    };
    let mut sent = Vec::new();
    for n in 0..6 {
        let flags = if n % 2 == 0 {
            seen.clone()
        } else {
            Flags::default()
        };
        sent.push(mail(&store, n, inbox, flags));
    }
    let folders = commit(
        &store,
        vec![
            Op::CreateFolder {
                account: "alice@example.test".into(),
                name: "Projects".into(),
                special_use: None,
            },
            Op::CreateFolder {
                account: "alice@example.test".into(),
                name: "Projects/2026".into(),
                special_use: Some(SpecialUse::Archive),
            },
        ],
    );
    let OpResult::Folder { id: work, .. } = folders[0] else {
        panic!("{folders:?}")
    };
    commit(
        &store,
        vec![
            Op::RenameFolder {
                account: "alice@example.test".into(),
                from: "Projects".into(),
                to: "Work".into(),
            },
            Op::Copy {
                from: inbox,
                uids: vec![sent[0].1, sent[1].1],
                to: work,
            },
            Op::Move {
                from: inbox,
                uids: vec![sent[2].1],
                to: work,
            },
            Op::StoreFlags {
                folder: inbox,
                uids: vec![sent[3].1, sent[4].1],
                action: FlagAction::Add,
                flags: Flags {
                    system: SystemFlags::ANSWERED,
                    keywords: vec!["later".into()],
                },
                unchanged_since: None,
            },
            Op::Defer {
                id: sent[0].2,
                next_attempt: 1_700_000_600,
                error: "451 4.3.0 try again".into(),
            },
            Op::SetQueueState {
                id: sent[1].2,
                state: QueueState::Held,
            },
            Op::Dequeue { id: sent[2].2 },
            Op::QueueToPortal {
                id: sent[3].2,
                folder: inbox,
            },
        ],
    );
    // A drain entry: a portal message on its way back to the upstream.
    commit(
        &store,
        vec![Op::Enqueue(NewQueueEntry {
            body: BodyRef::Stored(sent[5].0),
            sender: "bob@example.test".into(),
            recipient: "alice@example.test".into(),
            destination: Destination::Upstream("example.test".into()),
            next_attempt: 1_700_000_200,
            created: 1_700_000_200,
            portal: Some(PortalRef {
                folder: inbox,
                uid: sent[5].1,
            }),
        })],
    );
    // Subscriptions are names: one with no folder, in the checkpoint and after it.
    commit(
        &store,
        vec![Op::SetSubscription {
            account: "alice@example.test".into(),
            name: "Lists/rust".into(),
            subscribed: true,
        }],
    );
    store.checkpoint().unwrap();
    let checkpointed = store.stats().segments as u64;
    commit(
        &store,
        vec![Op::SetSubscription {
            account: "bob@example.test".into(),
            name: "Shared".into(),
            subscribed: true,
        }],
    );
    // After the checkpoint: replayed from the log.
    let late = mail(&store, 6, inbox, seen.clone());
    for n in 7..10 {
        mail(&store, n, work, Flags::default());
    }
    let mut batch = Batch::new();
    let reply =
        batch.put_body(b"From: alice@example.test\r\nSubject: re\r\n\r\nreply\r\n".to_vec());
    batch.push(Op::Archive(NewArchiveEntry {
        body: reply,
        direction: Direction::Out,
        mail_from: "alice@example.test".into(),
        rcpt_to: vec!["dave@outside.test".into(), "erin@outside.test".into()],
        date: 1_700_000_300,
        headers: HeaderFields {
            from: "alice@example.test".into(),
            subject: "re".into(),
            ..HeaderFields::default()
        },
    }));
    batch.push(Op::Enqueue(NewQueueEntry {
        body: reply,
        sender: "alice@example.test".into(),
        recipient: "dave@outside.test".into(),
        destination: Destination::Outbound,
        next_attempt: 1_700_000_300,
        created: 1_700_000_300,
        portal: None,
    }));
    ok(store.commit(batch).unwrap());
    let first_archived = store.read(|s| s.archive().next().unwrap().id);
    // Three small batches: the last segment ends with two records at least (a segment
    // rolls only once it is full).
    commit(
        &store,
        vec![
            Op::Expunge {
                folder: inbox,
                uids: vec![sent[1].1],
            },
            Op::Dequeue { id: late.2 },
            Op::Unarchive(vec![first_archived]),
        ],
    );
    commit(
        &store,
        vec![
            Op::SetPassword {
                address: "carol@other.test".into(),
                password_hash: "$argon2id$fixture$changed".into(),
            },
            Op::UpdateAccount {
                address: "alice@example.test".into(),
                role: None,
                covered: Some(true),
                recovery: Some(Some("alice@elsewhere.test".into())),
            },
            Op::Subscribe {
                folder: work,
                subscribed: false,
            },
        ],
    );
    commit(
        &store,
        vec![Op::SetMode {
            domain: "example.test".into(),
            mode: Mode::Emergency,
            forced: None,
            reason: "upstream down: connect timeout".into(),
            at: 1_700_000_400,
        }],
    );
    // Version 2: an audit entry, and batches of a cluster's replicated log last.
    commit(
        &store,
        vec![Op::Audit(AuditRecord {
            actor: "admin token".into(),
            source: "127.0.0.1".into(),
            action: "domain.mode".into(),
            object: "example.test".into(),
            domain: Some("example.test".into()),
            before: Some("normal".into()),
            after: Some("emergency".into()),
            at: 1_700_000_401,
        })],
    );
    let frames = Arc::new(Mutex::new(Vec::new()));
    store.replicate_through(Arc::new(Loopback(frames.clone())));
    for (i, subject) in ["replicated one", "replicated two"].into_iter().enumerate() {
        let inbox = store.read(|s| s.folder_by_name("alice@example.test", INBOX).unwrap().id);
        let mut batch = Batch::new();
        let body = batch.put_body(format!("Subject: {subject}\r\n\r\n.\r\n").into_bytes());
        batch.push(Op::Append {
            folder: inbox,
            body,
            flags: Flags::default(),
            internal_date: 1_700_000_500,
        });
        let committer = store.clone();
        let handle = std::thread::spawn(move || committer.commit(batch).unwrap());
        let frame = loop {
            if let Some(frame) = frames.lock().unwrap().get(i).cloned() {
                break frame;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        // Stream sequences of a log other nodes wrote to as well.
        store
            .apply_replicated(10 + 5 * i as u64, &frame)
            .wait()
            .unwrap();
        handle.join().unwrap();
    }
    copy_store(scratch.path(), dir);
    let last = store.stats().segments as u64;
    drop(store);
    (checkpointed, last)
}
