//! Golden protocol transcripts (ARCHITECTURE.md §6) replayed against the session
//! layer over a real store in a temporary directory: every
//! `tests/transcripts/*.txt` file.
//!
//! Format, one item per line:
//! - `# ...` and blank lines: comments.
//! - `@tls`: the connection uses TLS from the start (imaps); `@no-plaintext`:
//!   plaintext logins are not allowed on this connection; `@no-tls-available`: no
//!   STARTTLS offered; `@remote`: the client is not on loopback.
//! - `C: text`: a line from the client; CRLF is appended. `\r`, `\n`, `\0` and `\xHH`
//!   are unescaped (any other backslash stands for itself). Consecutive `C:` lines arrive together (pipelined).
//! - `S: text`: a line the server sends, CRLF implied. The `S:` lines before the
//!   first `C:` are the greeting.
//! - `X: action`: what happens outside the session between client lines, as another
//!   session or the delivery path would do it: `deliver` (a new message in alice's
//!   INBOX), `flag UID` (`\Flagged` added to an INBOX message), `expunge UID` (an
//!   INBOX message removed), `idle-update` (the server noticed the account changed
//!   during IDLE), `starttls` (the server finished the TLS handshake).
//!
//! UIDVALIDITY values depend on the clock when the store created the folder; the
//! server's output has them replaced by `<uidvalidity NAME>` (NAME: the folder)
//! before it is compared, and `<uidvalidity NAME>` in a client line is replaced by
//! the value.
//!
//! The fixture: alice@example.test (password `alice password`) has three messages in
//! her INBOX (UIDs 1–3, see `populate`) and the default folders; bob@example.test
//! (`bob password`) has one message. The archive holds three messages Alice received
//! or sent in November 2023, one she received in October, and one only Bob received.
//! The clock reads 1700000000 (14-Nov-2023 22:13:20 +0000).
//!
//! Each transcript is replayed three times: with each block of client lines arriving
//! at once, and again in pieces of 1 and of 7 bytes; what the server says must not
//! depend on how the input was cut.
//!
//! Set `IMAP_TRANSCRIPTS_BLESS=1` to rewrite the files from what the session does
//! (then review the diff).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use lifeboat_imap::parse::Limits;
use lifeboat_imap::session::{Progress, Session, SessionConfig};
use lifeboat_store::auth::Authenticator;
use lifeboat_store::password::hash_password;
use lifeboat_store::{
    Batch, Coverage, Direction, DomainSettings, Failover, FlagAction, Flags, HeaderFields,
    NewArchiveEntry, Op, Options, Role, Store, SystemFlags, UnixTime, INBOX,
};
use lifeboat_testkit::block_on;
use lifeboat_testkit::transcript::{self, check_all, lines, unescape, Backslash::Literal};

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";
const NOW: UnixTime = 1_700_000_000;

pub const PLAIN: &[u8] = b"From: Carol <carol@example.test>\r\nTo: alice@example.test\r\nSubject: Lunch\r\nDate: Tue, 14 Nov 2023 10:00:00 +0100\r\nMessage-ID: <lunch@example.test>\r\n\r\nShall we meet at noon?\r\n";
pub const MULTIPART: &[u8] = b"From: Dave <dave@example.test>\r\nTo: alice@example.test, bob@example.test\r\nCc: Team: erin@example.test;\r\nSubject: =?UTF-8?Q?Caf=C3=A9_report?=\r\nDate: Wed, 15 Nov 2023 09:30:00 +0000\r\nMessage-ID: <report@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nThe caf=C3=A9 numbers are attached.\r\n--b1\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n";
pub const SEEN: &[u8] = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: Old news\r\nDate: Mon, 01 Jan 2001 00:00:00 +0000\r\n\r\nline one\r\nline two\r\n";
pub const DELIVERED: &[u8] = b"From: frank@example.test\r\nTo: alice@example.test\r\nSubject: Just arrived\r\n\r\nNew mail.\r\n";

fn clock() -> UnixTime {
    NOW
}

fn append(store: &Store, account: &str, body: &[u8], system: SystemFlags, date: UnixTime) {
    let folder = store.read(|s| s.folder_by_name(account, INBOX).unwrap().id);
    let mut batch = Batch::new();
    let body = batch.put_body(body.to_vec());
    batch.push(Op::Append {
        folder,
        body,
        flags: Flags {
            system,
            keywords: Vec::new(),
        },
        internal_date: date,
    });
    store.commit(batch).unwrap();
}

fn populate(store: &Store) {
    let mut batch = Batch::new();
    batch.push(Op::PutDomain(DomainSettings {
        name: "example.test".into(),
        upstream: "127.0.0.1:2525".into(),
        coverage: Coverage::All,
        failover: Failover::Auto,
    }));
    for (address, password) in [(ALICE, "alice password"), (BOB, "bob password")] {
        batch.push(Op::AddAccount {
            address: address.into(),
            password_hash: hash_password(password).unwrap(),
            role: Role::User,
            covered: false,
            recovery: None,
        });
    }
    store.commit(batch).unwrap();
    append(store, ALICE, PLAIN, SystemFlags::default(), NOW - 86_400);
    append(store, ALICE, MULTIPART, SystemFlags::default(), NOW);
    append(store, ALICE, SEEN, SystemFlags::SEEN, 978_307_200);
    append(store, BOB, PLAIN, SystemFlags::default(), NOW);
    // The archive (SPEC §4): mail Alice received and sent in November 2023, one of
    // October, and one between others that she must never see.
    archive(
        store,
        Direction::In,
        "carol@example.test",
        &[ALICE],
        NOW,
        PLAIN,
    );
    archive(
        store,
        Direction::Out,
        ALICE,
        &["bob@remote.test"],
        NOW + 60,
        SEEN,
    );
    archive(
        store,
        Direction::In,
        "dave@example.test",
        &[ALICE, BOB],
        NOW + 120,
        MULTIPART,
    );
    archive(
        store,
        Direction::In,
        "carol@example.test",
        &[BOB],
        NOW + 180,
        PLAIN,
    );
    archive(
        store,
        Direction::In,
        "erin@example.test",
        &[ALICE],
        OCTOBER,
        DELIVERED,
    );
}

/// 20 Oct 2023, 12:00 UTC.
const OCTOBER: UnixTime = 1_697_803_200;

fn archive(
    store: &Store,
    direction: Direction,
    from: &str,
    to: &[&str],
    date: UnixTime,
    body: &[u8],
) {
    let mut batch = Batch::new();
    let body = batch.put_body(body.to_vec());
    batch.push(Op::Archive(NewArchiveEntry {
        body,
        direction,
        mail_from: from.into(),
        rcpt_to: to.iter().map(|address| address.to_string()).collect(),
        date,
        headers: HeaderFields::default(),
    }));
    store.commit(batch).unwrap();
}

enum Item {
    Client(String),
    Server(String),
    Action(String),
    Option(String),
    Comment(String),
}

fn read_items(path: &Path) -> Vec<Item> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| {
            if let Some(rest) = line.strip_prefix("C: ") {
                Item::Client(rest.to_string())
            } else if let Some(rest) = line.strip_prefix("S: ") {
                Item::Server(rest.to_string())
            } else if line == "C:" {
                Item::Client(String::new())
            } else if line == "S:" {
                Item::Server(String::new())
            } else if let Some(rest) = line.strip_prefix("X: ") {
                Item::Action(rest.to_string())
            } else if let Some(rest) = line.strip_prefix('@') {
                Item::Option(rest.to_string())
            } else {
                assert!(
                    line.is_empty() || line.starts_with('#'),
                    "{}: unexpected line {line:?}",
                    path.display()
                );
                Item::Comment(line.to_string())
            }
        })
        .collect()
}

struct Replay {
    store: Store,
    session: Session,
    /// UIDVALIDITY value → folder name, for every folder seen so far.
    uidvalidities: BTreeMap<String, String>,
}

impl Replay {
    fn learn_uidvalidities(&mut self) {
        let folders: Vec<(String, u32)> = self.store.read(|s| {
            [ALICE, BOB]
                .iter()
                .flat_map(|account| s.folders_of(account))
                .map(|folder| {
                    (
                        format!("{}:{}", folder.account, folder.name),
                        folder.uidvalidity,
                    )
                })
                .collect()
        });
        for (name, uidvalidity) in folders {
            let name = name
                .strip_prefix("alice@example.test:")
                .unwrap_or(&name)
                .to_string();
            self.uidvalidities.insert(uidvalidity.to_string(), name);
        }
    }

    fn normalize(&self, line: String) -> String {
        let mut words: Vec<String> = Vec::new();
        for word in line.split(' ') {
            let digits_start = word.find(|c: char| c.is_ascii_digit());
            let replaced = digits_start.and_then(|start| {
                let end = word[start..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(word.len(), |offset| start + offset);
                self.uidvalidities
                    .get(&word[start..end])
                    .map(|name| format!("{}<uidvalidity {name}>{}", &word[..start], &word[end..]))
            });
            words.push(replaced.unwrap_or_else(|| word.to_string()));
        }
        words.join(" ")
    }

    /// A client line with `<uidvalidity NAME>` replaced by the folder's value.
    fn denormalize(&self, line: &str) -> String {
        let mut line = line.to_string();
        for (value, name) in &self.uidvalidities {
            line = line.replace(&format!("<uidvalidity {name}>"), value);
        }
        line
    }

    fn action(&mut self, action: &str, out: &mut Vec<u8>) {
        let folder = self
            .store
            .read(|s| s.folder_by_name(ALICE, INBOX).unwrap().id);
        let mut words = action.split(' ');
        match words.next().unwrap() {
            "deliver" => append(&self.store, ALICE, DELIVERED, SystemFlags::default(), NOW),
            "flag" => {
                let uid: u32 = words.next().unwrap().parse().unwrap();
                let mut batch = Batch::new();
                batch.push(Op::StoreFlags {
                    folder,
                    uids: vec![uid],
                    action: FlagAction::Add,
                    flags: Flags {
                        system: SystemFlags::FLAGGED,
                        keywords: Vec::new(),
                    },
                    unchanged_since: None,
                });
                self.store.commit(batch).unwrap();
            }
            "expunge" => {
                let uid: u32 = words.next().unwrap().parse().unwrap();
                let mut batch = Batch::new();
                batch.push(Op::Expunge {
                    folder,
                    uids: vec![uid],
                });
                self.store.commit(batch).unwrap();
            }
            "idle-update" => block_on(self.session.idle_update(out)).unwrap(),
            "starttls" => self.session.tls_started(),
            other => panic!("unknown action {other}"),
        }
    }
}

/// Replays one transcript; with `chunk_bytes`, the client's bytes arrive in pieces of
/// that size, which must not change what the server says.
fn run_transcript(path: &Path, chunk_bytes: Option<usize>) -> (String, Option<String>) {
    let items = read_items(path);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    populate(&store);
    let auth = Authenticator::new(store.clone());
    let mut tls = false;
    let mut plaintext = true;
    let mut tls_available = true;
    let mut client = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for item in &items {
        if let Item::Option(option) = item {
            match option.as_str() {
                "tls" => tls = true,
                "no-plaintext" => plaintext = false,
                "no-tls-available" => tls_available = false,
                "remote" => client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                other => panic!("unknown option @{other}"),
            }
        }
    }
    let config = SessionConfig {
        hostname: "imap.example.test".into(),
        tls_available: tls_available && !tls,
        plaintext_login_allowed: plaintext,
        client,
        limits: Limits::with_literal_bytes_max(64 * 1024),
        clock,
        recent: std::sync::Arc::new(store.read(lifeboat_imap::recent::RecentMarks::new)),
        compress_available: true,
        archive_index: None,
    };
    let session = Session::new(config, store.clone(), auth, tls);
    let mut replay = Replay {
        store,
        session,
        uidvalidities: BTreeMap::new(),
    };
    replay.learn_uidvalidities();
    let mut out = Vec::new();
    replay.session.greeting(&mut out);

    // Walk the items: output produced so far is compared with the S: lines that
    // follow, at each C: block or action.
    let mut blessed: Vec<String> = Vec::new();
    let mut expected: Vec<String> = Vec::new();
    let mut pending_client: Vec<u8> = Vec::new();
    let mut failures = Vec::new();
    let mut closed = false;
    let mut stash: Vec<String> = Vec::new();
    let mut index = 0;
    let flush = |replay: &mut Replay,
                 out: &mut Vec<u8>,
                 expected: &mut Vec<String>,
                 blessed: &mut Vec<String>,
                 failures: &mut Vec<String>| {
        replay.learn_uidvalidities();
        let actual: Vec<String> = lines(out, Literal)
            .into_iter()
            .map(|line| replay.normalize(line))
            .collect();
        out.clear();
        if actual != *expected {
            failures.push(format!(
                "expected:\n  {}\nactual:\n  {}",
                expected.join("\n  "),
                actual.join("\n  ")
            ));
        }
        blessed.extend(actual.into_iter().map(|line| {
            if line.is_empty() {
                "S:".to_string()
            } else {
                format!("S: {line}")
            }
        }));
        expected.clear();
    };
    while index < items.len() {
        match &items[index] {
            Item::Comment(text) => {
                if expected.is_empty() {
                    blessed.push(text.clone());
                } else {
                    stash.push(text.clone());
                }
            }
            Item::Option(option) => blessed.push(format!("@{option}")),
            Item::Server(line) => expected.push(line.clone()),
            Item::Client(_) | Item::Action(_) => {
                flush(
                    &mut replay,
                    &mut out,
                    &mut expected,
                    &mut blessed,
                    &mut failures,
                );
                blessed.append(&mut stash);
                match &items[index] {
                    Item::Client(line) => {
                        // Gather this block of pipelined client lines.
                        while let Some(Item::Client(line)) = items.get(index) {
                            blessed.push(format!("C: {line}"));
                            replay.learn_uidvalidities();
                            pending_client.extend(unescape(&replay.denormalize(line), Literal));
                            pending_client.extend_from_slice(b"\r\n");
                            index += 1;
                        }
                        let _ = line;
                        if closed {
                            failures.push("client lines after the connection closed".into());
                        }
                        let size = chunk_bytes.unwrap_or(pending_client.len()).max(1);
                        for piece in pending_client.chunks(size) {
                            replay.session.receive(piece);
                            match block_on(replay.session.advance(&mut out)).unwrap() {
                                Progress::NeedInput => {}
                                // The server drops what followed STARTTLS (it would be
                                // TLS garbage otherwise); the session did the same with
                                // what it had. After COMPRESS the client's bytes would
                                // be compressed: a transcript ends there.
                                Progress::StartTls { .. } | Progress::Compress { .. } => break,
                                Progress::Close => {
                                    closed = true;
                                    break;
                                }
                            }
                        }
                        pending_client.clear();
                        continue;
                    }
                    Item::Action(action) => {
                        blessed.push(format!("X: {action}"));
                        replay.action(action, &mut out);
                    }
                    _ => unreachable!(),
                }
            }
        }
        index += 1;
    }
    flush(
        &mut replay,
        &mut out,
        &mut expected,
        &mut blessed,
        &mut failures,
    );
    blessed.append(&mut stash);
    let mut text = blessed.join("\n");
    text.push('\n');
    let failure = (!failures.is_empty())
        .then(|| format!("{}:\n{}", path.display(), failures.join("\n---\n")));
    (text, failure)
}

#[test]
fn transcripts() {
    check_all(
        env!("CARGO_MANIFEST_DIR"),
        "IMAP_TRANSCRIPTS_BLESS",
        |path| {
            let (actual, failure) = run_transcript(path, None);
            let mut failures: Vec<String> = failure.into_iter().collect();
            for chunk_bytes in [1, 7] {
                if let (_, Some(failure)) = run_transcript(path, Some(chunk_bytes)) {
                    failures.push(format!("in pieces of {chunk_bytes} bytes: {failure}"));
                }
            }
            transcript::Replay { actual, failures }
        },
    );
}

/// Sends `lines` to `session`; what it answered.
fn converse(session: &mut Session, lines: &str) -> String {
    let mut out = Vec::new();
    session.receive(lines.replace('\n', "\r\n").as_bytes());
    let progress = block_on(session.advance(&mut out)).unwrap();
    assert_eq!(progress, Progress::NeedInput);
    String::from_utf8(out).unwrap()
}

/// RFC 3501 §2.3.2 across sessions sharing one server's marks: a message is recent in
/// exactly one session, the first to see it; EXAMINE and STATUS look without taking;
/// what was in the store when the server started is not recent.
#[test]
fn recent_belongs_to_one_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    populate(&store);
    let auth = Authenticator::new(store.clone());
    let recent = Arc::new(store.read(lifeboat_imap::recent::RecentMarks::new));
    let session = || {
        let config = SessionConfig {
            hostname: "imap.example.test".into(),
            tls_available: false,
            plaintext_login_allowed: true,
            client: IpAddr::V4(Ipv4Addr::LOCALHOST),
            limits: Limits::with_literal_bytes_max(64 * 1024),
            clock,
            recent: recent.clone(),
            compress_available: true,
            archive_index: None,
        };
        let mut session = Session::new(config, store.clone(), auth.clone(), false);
        converse(
            &mut session,
            "l LOGIN alice@example.test \"alice password\"\n",
        );
        session
    };
    let (mut first, mut second, mut third) = (session(), session(), session());
    // Mail from before the start is old.
    assert!(converse(&mut first, "a SELECT INBOX\n").contains("* 0 RECENT\r\n"));
    // Two deliveries while `first` has INBOX selected and `second` has not.
    append(&store, ALICE, PLAIN, SystemFlags::default(), NOW);
    append(&store, ALICE, PLAIN, SystemFlags::default(), NOW);
    let status = converse(&mut second, "b STATUS INBOX (RECENT)\n");
    assert!(status.contains("(RECENT 2)"), "{status}");
    let examined = converse(&mut second, "c EXAMINE INBOX\n");
    assert!(examined.contains("* 2 RECENT\r\n"), "{examined}");
    // `first` notices them first and takes them...
    let noticed = converse(&mut first, "d NOOP\n");
    assert!(
        noticed.contains("* 5 EXISTS\r\n* 2 RECENT\r\n"),
        "{noticed}"
    );
    let flags = converse(&mut first, "e FETCH 4:5 (FLAGS)\n");
    assert!(flags.contains("* 4 FETCH (FLAGS (\\Recent))"), "{flags}");
    // ... so they are recent nowhere else.
    let selected = converse(&mut second, "f SELECT INBOX\n");
    assert!(selected.contains("* 0 RECENT\r\n"), "{selected}");
    let status = converse(&mut third, "g STATUS INBOX (RECENT)\n");
    assert!(status.contains("(RECENT 0)"), "{status}");
    // The next one: `second` (selected, read-write) sees it first this time.
    append(&store, ALICE, PLAIN, SystemFlags::default(), NOW);
    let noticed = converse(&mut second, "h NOOP\n");
    assert!(
        noticed.contains("* 6 EXISTS\r\n* 1 RECENT\r\n"),
        "{noticed}"
    );
    let noticed = converse(&mut first, "i NOOP\n");
    assert!(
        noticed.contains("* 6 EXISTS\r\n* 2 RECENT\r\n"),
        "{noticed}"
    );
    let flags = converse(&mut first, "j FETCH 6 (FLAGS)\n");
    assert!(flags.contains("* 6 FETCH (FLAGS ())"), "{flags}");
}

/// QRESYNC past the store's horizon (RFC 7162 §3.2.6): when more UIDs were expunged
/// since the client's mod-sequence than the store remembers, VANISHED (EARLIER)
/// names every UID of the client's known set that no longer exists — never one that
/// does.
#[test]
fn vanished_beyond_the_expunge_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    populate(&store);
    let inbox = store.read(|s| s.folder_by_name(ALICE, INBOX).unwrap().id);
    let count = lifeboat_store::EXPUNGED_REMEMBERED_PER_FOLDER as u32 + 5;
    let mut batch = Batch::new();
    for _ in 0..count {
        let body = batch.put_body(b"Subject: many\r\n\r\nx\r\n".to_vec());
        batch.push(Op::Append {
            folder: inbox,
            body,
            flags: Flags::default(),
            internal_date: NOW,
        });
    }
    store.commit(batch).unwrap();
    let (uidvalidity, known, last) = store.read(|s| {
        let folder = s.folder(inbox).unwrap();
        (
            folder.uidvalidity,
            folder.highest_modseq,
            folder.uidnext - 1,
        )
    });
    // Everything but UIDs 2 and the last one goes, in one expunge.
    let gone: Vec<u32> = (1..=last).filter(|&uid| uid != 2 && uid != last).collect();
    let mut batch = Batch::new();
    batch.push(Op::Expunge {
        folder: inbox,
        uids: gone,
    });
    store.commit(batch).unwrap();
    assert_eq!(
        store.read(|s| s.expunged_since(inbox, known)),
        lifeboat_store::ExpungedSince::BeforeHorizon
    );
    let auth = Authenticator::new(store.clone());
    let config = SessionConfig {
        hostname: "imap.example.test".into(),
        tls_available: false,
        plaintext_login_allowed: true,
        client: IpAddr::V4(Ipv4Addr::LOCALHOST),
        limits: Limits::with_literal_bytes_max(64 * 1024),
        clock,
        recent: Arc::new(store.read(lifeboat_imap::recent::RecentMarks::new)),
        compress_available: true,
        archive_index: None,
    };
    let mut session = Session::new(config, store.clone(), auth, false);
    converse(
        &mut session,
        "l LOGIN alice@example.test \"alice password\"\ne ENABLE QRESYNC\n",
    );
    let selected = converse(
        &mut session,
        &format!("s SELECT INBOX (QRESYNC ({uidvalidity} {known}))\n"),
    );
    let expected = format!("* VANISHED (EARLIER) 1,3:{}\r\n", last - 1);
    assert!(selected.contains(&expected), "{selected}");
    // Within the client's known UIDs only.
    let narrowed = converse(
        &mut session,
        &format!("t SELECT INBOX (QRESYNC ({uidvalidity} {known} 2:9))\n"),
    );
    assert!(
        narrowed.contains("* VANISHED (EARLIER) 3:9\r\n"),
        "{narrowed}"
    );
}
