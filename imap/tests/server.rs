//! The IMAP server end to end: a real store in a temporary directory, the service on
//! lifeboat-net listeners (imap with STARTTLS, imaps with implicit TLS) on
//! 127.0.0.1:0, driven by Python's imaplib (tests/python/imap_client.py), mbsync,
//! curl and raw sockets.
//!
//! Most tests run once per I/O backend: epoll, and io_uring when the probe says it
//! works here. A test that needs python3, mbsync or curl prints a skip note and
//! returns only when the tool cannot be run at all.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use lifeboat_imap::parse::Limits;
use lifeboat_imap::{ImapConfig, ImapService};
use lifeboat_net::{ensure_self_signed, Backend, Server, ServerBuilder, ServerConfig, TlsAcceptor};
use lifeboat_store::auth::Authenticator;
use lifeboat_store::password::hash_password;
use lifeboat_store::{
    Batch, BodyRef, Coverage, Destination, Direction, DomainSettings, Failover, Flags, FolderId,
    HeaderFields, NewArchiveEntry, NewQueueEntry, Op, OpResult, Options, PortalRef, QueueId, Role,
    Store, SystemFlags, INBOX,
};
use lifeboat_testkit::{backends, io_mode, peers, tls_client, Client};
use serde_json::{json, Value};

const ALICE: &str = "alice@example.test";
const ALICE_PASSWORD: &str = "alice password";
const BOB: &str = "bob@example.test";
const BOB_PASSWORD: &str = "bob password";

const PLAIN: &[u8] = b"From: Carol <carol@example.test>\r\nTo: alice@example.test\r\nSubject: Lunch\r\nDate: Tue, 14 Nov 2023 10:00:00 +0100\r\nMessage-ID: <lunch@example.test>\r\n\r\nShall we meet at noon?\r\n";
const MULTIPART: &[u8] = b"From: Dave <dave@example.test>\r\nTo: alice@example.test\r\nSubject: Report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe numbers are attached.\r\n--b1\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n";
/// Stored with bare LF line ends, as some clients append them; sent back as stored.
const BARE_LF: &[u8] = b"From: erin@example.test\nSubject: bare line feeds\n\nline one\nline two\n";
const DRAINING: &[u8] =
    b"From: frank@example.test\r\nSubject: draining one\r\n\r\nqueued for the upstream\r\n";
const DRAINING_TOO: &[u8] =
    b"From: frank@example.test\r\nSubject: draining two\r\n\r\nalso queued\r\n";
const BOBS: &[u8] =
    b"From: carol@example.test\r\nTo: bob@example.test\r\nSubject: For Bob only\r\n\r\nprivate\r\n";
const DELIVERED: &[u8] = b"From: grace@example.test\r\nTo: alice@example.test\r\nSubject: Just arrived\r\n\r\nNew mail.\r\n";

/// Alice's messages as stored, in UID order.
fn alice_messages() -> Vec<&'static [u8]> {
    vec![PLAIN, MULTIPART, BARE_LF, DRAINING, DRAINING_TOO]
}

/// What the tests check against.
#[derive(Clone, Debug)]
struct Fixture {
    inbox: FolderId,
    uidvalidity: u32,
    uids: Vec<u32>,
    /// The two messages with drain entries: (UID, queue entry).
    drains: Vec<(u32, QueueId)>,
}

fn append(store: &Store, folder: FolderId, body: &[u8]) -> u32 {
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
        panic!("append failed: {results:?}");
    };
    *uid
}

/// The domain, Alice and Bob, their messages, and drain entries for Alice's last two
/// (as when the domain left emergency mode).
fn populate(store: &Store) -> Fixture {
    let mut batch = Batch::new();
    batch.push(Op::PutDomain(DomainSettings {
        name: "example.test".into(),
        upstream: "127.0.0.1:2525".into(),
        coverage: Coverage::All,
        failover: Failover::Auto,
    }));
    for (address, password) in [(ALICE, ALICE_PASSWORD), (BOB, BOB_PASSWORD)] {
        batch.push(Op::AddAccount {
            address: address.into(),
            password_hash: hash_password(password).unwrap(),
            role: Role::User,
            covered: false,
            recovery: None,
        });
    }
    store.commit(batch).unwrap();
    let inbox = store.read(|s| s.folder_by_name(ALICE, INBOX).unwrap().id);
    let uids: Vec<u32> = alice_messages()
        .into_iter()
        .map(|message| append(store, inbox, message))
        .collect();
    let bob_inbox = store.read(|s| s.folder_by_name(BOB, INBOX).unwrap().id);
    append(store, bob_inbox, BOBS);
    let mut drains = Vec::new();
    for &uid in &uids[3..] {
        let body = store.read(|s| s.folder(inbox).unwrap().messages[&uid].body);
        let mut batch = Batch::new();
        batch.push(Op::Enqueue(NewQueueEntry {
            body: BodyRef::Stored(body),
            sender: "frank@example.test".into(),
            recipient: ALICE.into(),
            destination: Destination::Upstream("example.test".into()),
            next_attempt: 0,
            created: 0,
            portal: Some(PortalRef { folder: inbox, uid }),
        }));
        let results = store.commit(batch).unwrap();
        let Some(Ok(OpResult::Queued(id))) = results.last() else {
            panic!("enqueue failed: {results:?}");
        };
        assert_eq!(store.read(|s| s.drain_entry(inbox, uid)), Some(*id));
        drains.push((uid, *id));
    }
    let uidvalidity = store.read(|s| s.folder(inbox).unwrap().uidvalidity);
    Fixture {
        inbox,
        uidvalidity,
        uids,
        drains,
    }
}

struct Running {
    server: Option<Server>,
    store: Store,
    imap: SocketAddr,
    imaps: SocketAddr,
    cert: PathBuf,
}

impl Running {
    /// Starts the service over the store in `dir` (opened here) on both listeners.
    fn start(dir: &Path, backend: Backend, config: ImapConfig) -> Running {
        Running::start_serving(dir, backend, config, None)
    }

    /// The same, searching the archive mailboxes with `index`.
    fn start_with_index(
        dir: &Path,
        backend: Backend,
        config: ImapConfig,
        index: std::sync::Arc<lifeboat_store::ArchiveIndex>,
    ) -> Running {
        Running::start_serving(dir, backend, config, Some(index))
    }

    fn start_serving(
        dir: &Path,
        backend: Backend,
        config: ImapConfig,
        index: Option<std::sync::Arc<lifeboat_store::ArchiveIndex>>,
    ) -> Running {
        let store = Store::open(dir.join("store"), Options::default()).unwrap();
        let auth = Authenticator::new(store.clone());
        let paths = ensure_self_signed(&dir.join("tls"), "localhost").unwrap();
        let tls = TlsAcceptor::from_pem_files(&paths.cert, &paths.key).unwrap();
        let mut service = ImapService::new(store.clone(), auth, tls, config);
        if let Some(index) = index {
            service = service.with_archive_index(index);
        }
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = ServerBuilder::new(ServerConfig {
            threads: 2,
            io: io_mode(backend),
        })
        .listener(service.listener("imap", loopback, false), service.handler())
        .listener(service.listener("imaps", loopback, true), service.handler())
        .start()
        .unwrap();
        assert_eq!(server.backend(), backend);
        Running {
            imap: server.local_addr("imap").unwrap(),
            imaps: server.local_addr("imaps").unwrap(),
            server: Some(server),
            store,
            cert: paths.cert,
        }
    }

    /// Stops the server (every handle to the store but `self.store` is dropped).
    fn stop(mut self) -> Store {
        let report = self.server.take().unwrap().shutdown(Duration::from_secs(5));
        assert_eq!(report.threads_panicked, 0);
        self.store
    }

    fn uids(&self, account: &str, folder: &str) -> Vec<u32> {
        self.store.read(|s| {
            s.folder_by_name(account, folder)
                .map(|f| f.messages.keys().copied().collect())
                .unwrap_or_default()
        })
    }
}

fn config() -> ImapConfig {
    ImapConfig {
        hostname: "imap.example.test".into(),
        limits: Limits::with_literal_bytes_max(1024 * 1024),
        ..ImapConfig::default()
    }
}

fn fresh(backend: Backend, config: ImapConfig) -> (tempfile::TempDir, Running, Fixture) {
    let dir = tempfile::tempdir().unwrap();
    let running = Running::start(dir.path(), backend, config);
    let fixture = populate(&running.store);
    (dir, running, fixture)
}

// ---- Python --------------------------------------------------------------------

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/imap_client.py")
}

fn plan(addr: SocketAddr, mode: &str, actions: Value) -> Value {
    json!({
        "host": addr.ip().to_string(),
        "port": addr.port(),
        "mode": mode,
        "actions": actions,
    })
}

/// Runs the imaplib client with `plan`; returns its results.
fn imaplib(plan: Value) -> Vec<Value> {
    let output = Process::new("python3")
        .arg(script())
        .arg(plan.to_string())
        .output()
        .expect("running python3");
    assert!(
        output.status.success(),
        "imaplib client failed for {plan}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let value: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    value["results"].as_array().unwrap().clone()
}

fn ok(result: &Value) -> &Value {
    assert_eq!(result["typ"], "OK", "{result}");
    result
}

fn decode_base64(text: &str) -> Vec<u8> {
    let output = Process::new("python3")
        .args([
            "-c",
            "import base64,sys; sys.stdout.buffer.write(base64.b64decode(sys.argv[1]))",
            text,
        ])
        .output()
        .unwrap();
    output.stdout
}

fn encode_base64(bytes: &[u8]) -> String {
    let mut child = Process::new("python3")
        .args([
            "-c",
            "import base64,sys; print(base64.b64encode(sys.stdin.buffer.read()).decode())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// The literals of a FETCH result, in order.
fn literals(result: &Value) -> Vec<Vec<u8>> {
    result["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|item| item.get("literal").and_then(Value::as_str))
        .map(decode_base64)
        .collect()
}

/// The text of a result's data, joined.
fn data_text(result: &Value) -> String {
    result["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| match item {
            Value::String(text) => text.clone(),
            Value::Object(object) => object["head"].as_str().unwrap_or_default().to_string(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn alice_login() -> Value {
    json!(["login", ALICE, ALICE_PASSWORD])
}

// ---- Raw sockets ---------------------------------------------------------------

/// A client greeted with `* OK`.
fn connect(addr: SocketAddr) -> Client {
    Client::greeted(addr, "* OK ")
}

/// IMAP over a raw socket.
trait Imap {
    /// Sends a tagged command and returns every line up to its tagged answer.
    fn command(&mut self, tag: &str, command: &str) -> Vec<String>;
}

impl Imap for Client {
    fn command(&mut self, tag: &str, command: &str) -> Vec<String> {
        self.send(format!("{tag} {command}\r\n").as_bytes());
        self.lines_through(|line| line.starts_with(&format!("{tag} ")))
    }
}

// ---- Tests ---------------------------------------------------------------------

#[test]
fn imaplib_reads_searches_and_changes_a_mailbox() {
    if !peers::python_with("imaplib, ssl") {
        return;
    }
    for backend in backends() {
        let (_dir, running, fixture) = fresh(backend, config());
        let results = imaplib(plan(
            running.imap,
            "plain",
            json!([
                alice_login(),
                ["list"],
                ["select", "INBOX"],
                ["fetch", "1:*", "(UID FLAGS RFC822.SIZE)"],
                ["fetch", "1", "(ENVELOPE BODYSTRUCTURE)"],
                ["fetch", "2", "(BODYSTRUCTURE)"],
                ["fetch", "1:5", "(BODY.PEEK[])"],
                ["fetch", "2", "(BODY.PEEK[1] BODY.PEEK[2])"],
                ["search", "FROM", "carol"],
                ["search", "TEXT", "numbers"],
                ["store", "1", "+FLAGS", "(\\Flagged)"],
                ["fetch", "1", "(BODY[TEXT])"],
                ["search", "UNSEEN"],
                ["copy", "1", "Trash"],
                ["create", "Archive"],
                ["move", "2", "Archive"],
                ["store", "1", "+FLAGS", "(\\Deleted)"],
                ["expunge"],
                ["uid_fetch", "1:*", "(FLAGS)"],
                ["logout"]
            ]),
        ));
        ok(&results[0]);
        let list = data_text(ok(&results[1]));
        for name in ["INBOX", "Sent", "Drafts", "Trash", "Junk"] {
            assert!(list.contains(&format!("\"/\" {name}")), "{list}");
        }
        assert!(list.contains("(\\Sent \\HasNoChildren)"), "{list}");
        let select = ok(&results[2]);
        assert_eq!(select["data"][0], "5");
        assert_eq!(
            select["untagged"]["UIDVALIDITY"][0],
            fixture.uidvalidity.to_string()
        );
        let flags = data_text(ok(&results[3]));
        // Delivered since the server started, and this is the first session to
        // select the mailbox: recent (RFC 3501 §2.3.2).
        assert!(
            flags.starts_with("1 (UID 1 FLAGS (\\Recent) RFC822.SIZE 173)"),
            "{flags}"
        );
        let envelope = data_text(ok(&results[4]));
        assert!(
            envelope.contains("ENVELOPE (\"Tue, 14 Nov 2023 10:00:00 +0100\" \"Lunch\" ((\"Carol\" NIL \"carol\" \"example.test\"))"),
            "{envelope}"
        );
        assert!(
            envelope.contains("BODYSTRUCTURE (\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 24 1"),
            "{envelope}"
        );
        let structure = data_text(ok(&results[5]));
        assert!(
            structure.contains(
                "\"application\" \"pdf\" (\"name\" \"report.pdf\") NIL NIL \"BASE64\" 12"
            ) && structure.contains("\"mixed\" (\"boundary\" \"b1\")"),
            "{structure}"
        );
        // BODY[] is the message exactly as stored, bare line feeds included.
        assert_eq!(literals(ok(&results[6])), alice_messages());
        assert_eq!(
            literals(ok(&results[7])),
            vec![
                b"The numbers are attached.".to_vec(),
                b"JVBERi0xLjQK".to_vec()
            ]
        );
        assert_eq!(ok(&results[8])["data"][0], "1");
        assert_eq!(ok(&results[9])["data"][0], "2");
        assert!(data_text(ok(&results[10])).contains("FLAGS (\\Flagged \\Recent)"));
        // BODY[TEXT] sets \Seen, and says so.
        let text = ok(&results[11]);
        assert!(
            data_text(text).contains("FLAGS (\\Flagged \\Seen \\Recent)"),
            "{text}"
        );
        assert_eq!(ok(&results[12])["data"][0], "2 3 4 5");
        let copy = ok(&results[13]);
        assert!(
            data_text(copy).contains("COPYUID") || copy["untagged"].to_string().contains("COPYUID"),
            "{copy}"
        );
        ok(&results[14]);
        let moved = ok(&results[15]);
        assert_eq!(moved["untagged"]["EXPUNGE"][0], "2", "{moved}");
        ok(&results[16]);
        let expunge = ok(&results[17]);
        assert_eq!(expunge["data"][0], "1", "{expunge}");
        let remaining = data_text(ok(&results[18]));
        assert_eq!(remaining.lines().count(), 3, "{remaining}");
        assert_eq!(results[19]["typ"], "BYE");
        // The store agrees.
        assert_eq!(running.uids(ALICE, INBOX), fixture.uids[2..].to_vec());
        assert_eq!(running.uids(ALICE, "Trash"), vec![1]);
        assert_eq!(running.uids(ALICE, "Archive"), vec![1]);
        let trash_flags = running.store.read(|s| {
            s.folder_by_name(ALICE, "Trash").unwrap().messages[&1]
                .flags
                .clone()
        });
        assert!(trash_flags
            .system
            .contains(SystemFlags::FLAGGED.union(SystemFlags::SEEN)));
        running.stop();
    }
}

#[test]
fn append_status_and_uidplus() {
    if !peers::python_with("imaplib, ssl") {
        return;
    }
    let (_dir, running, _fixture) = fresh(Backend::Epoll, config());
    let message = b"From: alice@example.test\r\nSubject: draft\r\n\r\nunfinished\r\n";
    let results = imaplib(plan(
        running.imap,
        "plain",
        json!([
            alice_login(),
            [
                "append",
                "Drafts",
                "(\\Draft $Later)",
                "\"01-Feb-2024 12:00:00 +0100\"",
                encode_base64(message)
            ],
            ["append", "Nowhere", null, null, encode_base64(message)],
            [
                "status",
                "Drafts",
                "(MESSAGES UIDNEXT UNSEEN HIGHESTMODSEQ)"
            ],
            ["examine", "Drafts"],
            ["fetch", "1", "(FLAGS INTERNALDATE BODY[])"],
            ["fetch", "1", "(FLAGS)"],
            ["store", "1", "+FLAGS", "(\\Seen)"],
        ]),
    ));
    ok(&results[0]);
    let append = ok(&results[1]);
    let appenduid = data_text(append);
    assert!(appenduid.contains("[APPENDUID "), "{append}");
    assert!(appenduid.ends_with(" 1] APPEND completed"), "{append}");
    let missing = &results[2];
    assert!(missing.to_string().contains("TRYCREATE"), "{missing}");
    let status = data_text(ok(&results[3]));
    assert!(
        status.contains("MESSAGES 1 UIDNEXT 2 UNSEEN 1 HIGHESTMODSEQ 2"),
        "{status}"
    );
    ok(&results[4]);
    let fetched = ok(&results[5]);
    assert_eq!(literals(fetched), vec![message.to_vec()]);
    let head = data_text(fetched);
    assert!(head.contains("FLAGS (\\Draft $Later \\Recent)"), "{head}");
    assert!(
        head.contains("INTERNALDATE \"01-Feb-2024 11:00:00 +0000\""),
        "{head}"
    );
    // EXAMINE is read-only: BODY[] did not set \Seen, STORE is refused. The message
    // stays \Recent: EXAMINE looks without taking it (RFC 3501 §6.3.2).
    assert!(data_text(ok(&results[6])).contains("FLAGS (\\Draft $Later \\Recent)"));
    assert!(
        results[7].to_string().contains("READ-ONLY") || results[7]["typ"] == "NO",
        "{}",
        results[7]
    );
    running.stop();
}

#[test]
fn expunge_and_move_out_of_inbox_cancel_drain_entries() {
    if !peers::python_with("imaplib, ssl") {
        return;
    }
    for backend in backends() {
        let (_dir, running, fixture) = fresh(backend, config());
        let (expunged, expunged_entry) = fixture.drains[0];
        let (moved, moved_entry) = fixture.drains[1];
        let results = imaplib(plan(
            running.imap,
            "plain",
            json!([
                alice_login(),
                ["select", "INBOX"],
                ["uid_store", expunged.to_string(), "+FLAGS", "(\\Deleted)"],
                ["uid_expunge", expunged.to_string()],
                ["uid_move", moved.to_string(), "Junk"],
                ["logout"]
            ]),
        ));
        for result in &results[..5] {
            ok(result);
        }
        running.store.read(|s| {
            assert_eq!(s.drain_entry(fixture.inbox, expunged), None);
            assert_eq!(s.drain_entry(fixture.inbox, moved), None);
            assert!(s.queue_entry(expunged_entry).is_none());
            assert!(s.queue_entry(moved_entry).is_none());
            assert!(s.folder(fixture.inbox).unwrap().messages.len() == 3);
        });
        assert_eq!(running.uids(ALICE, "Junk"), vec![1]);
        running.stop();
    }
}

#[test]
fn idle_reports_a_delivery_within_a_second() {
    if !peers::python_with("imaplib, ssl") {
        return;
    }
    for backend in backends() {
        let (_dir, running, fixture) = fresh(backend, config());
        let plan = plan(
            running.imap,
            "plain",
            json!([
                alice_login(),
                ["select", "INBOX"],
                ["idle_until_exists", 10]
            ]),
        );
        let mut child = Process::new("python3")
            .arg(script())
            .arg(plan.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "IDLING");
        // Let the server settle into its wait, then deliver from this thread.
        std::thread::sleep(Duration::from_millis(200));
        let store = running.store.clone();
        let inbox = fixture.inbox;
        let delivered = std::thread::spawn(move || {
            append(&store, inbox, DELIVERED);
            Instant::now()
        })
        .join()
        .unwrap();
        line.clear();
        stdout.read_line(&mut line).unwrap();
        let elapsed = delivered.elapsed();
        assert_eq!(line.trim(), "GOT * 6 EXISTS");
        assert!(elapsed < Duration::from_secs(1), "EXISTS after {elapsed:?}");
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        assert!(child.wait().unwrap().success());
        let output: Value = serde_json::from_str(rest.lines().last().unwrap()).unwrap();
        let idle = &output["results"][2];
        assert!(
            idle["lines"].to_string().contains("OK IDLE terminated"),
            "{idle}"
        );
        running.stop();
    }
}

#[test]
fn starttls_and_implicit_tls_with_imaplib() {
    if !peers::python_with("imaplib, ssl") {
        return;
    }
    for backend in backends() {
        let config = ImapConfig {
            allow_plaintext_loopback: false,
            ..config()
        };
        let (_dir, running, _fixture) = fresh(backend, config);
        // Plaintext: LOGINDISABLED, and LOGIN is refused without checking.
        let mut raw = connect(running.imap);
        let capability = raw.command("a1", "CAPABILITY");
        assert!(capability[0].contains("STARTTLS") && capability[0].contains("LOGINDISABLED"));
        let login = raw.command("a2", &format!("LOGIN {ALICE} \"{ALICE_PASSWORD}\""));
        assert!(login[0].starts_with("a2 NO [PRIVACYREQUIRED]"), "{login:?}");
        // STARTTLS, then everything works.
        let upgraded = imaplib(plan(
            running.imap,
            "starttls",
            json!([
                ["capability"],
                alice_login(),
                ["select", "INBOX"],
                ["fetch", "1", "(BODY.PEEK[])"],
                ["logout"]
            ]),
        ));
        let capability = data_text(ok(&upgraded[0]));
        assert!(
            capability.contains("AUTH=PLAIN") && !capability.contains("STARTTLS"),
            "{capability}"
        );
        ok(&upgraded[1]);
        assert_eq!(literals(ok(&upgraded[3])), vec![PLAIN.to_vec()]);
        // imaps: TLS from the first byte.
        let implicit = imaplib(plan(
            running.imaps,
            "ssl",
            json!([
                ["authenticate_plain", ALICE, ALICE_PASSWORD],
                ["select", "INBOX"],
                ["logout"]
            ]),
        ));
        ok(&implicit[0]);
        assert_eq!(ok(&implicit[1])["data"][0], "5");
        running.stop();
    }
}

#[test]
fn commands_pipelined_after_starttls_are_not_executed() {
    for backend in backends() {
        let (_dir, running, _fixture) = fresh(backend, config());
        let mut raw = connect(running.imap);
        // One write: the LOGIN arrives in the same segment as the STARTTLS.
        raw.send(format!("a1 STARTTLS\r\na2 LOGIN {ALICE} \"{ALICE_PASSWORD}\"\r\n").as_bytes());
        assert_eq!(raw.line(), "a1 OK Begin TLS negotiation now\r\n");
        // No plaintext answer to the LOGIN: the server waits for a TLS handshake.
        raw.assert_silent(Duration::from_millis(500));
        // The handshake succeeds and the session is not logged in: the LOGIN was
        // discarded, not run after the upgrade.
        let mut tls = tls_client(&running.cert, raw.tcp());
        tls.write_all(b"a3 SELECT INBOX\r\n").unwrap();
        let mut reader = BufReader::new(tls);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, "a3 BAD SELECT not allowed now\r\n");
        running.stop();
    }
}

#[test]
fn nul_in_a_quoted_string_is_refused() {
    let (_dir, running, _fixture) = fresh(Backend::Epoll, config());
    let mut raw = connect(running.imap);
    let answer = raw.command("a1", "LOGIN \"alice@example.test\0\" \"alice password\"");
    assert_eq!(answer, vec!["a1 BAD NUL octet not allowed in strings\r\n"]);
    let answer = raw.command("a2", &format!("LOGIN {ALICE} \"{ALICE_PASSWORD}\""));
    assert!(answer[0].starts_with("a2 OK"), "{answer:?}");
    let answer = raw.command("a3", "SELECT \"INBOX\0\"");
    assert_eq!(answer, vec!["a3 BAD NUL octet not allowed in strings\r\n"]);
    running.stop();
}

/// Every item of a FETCH is built before its response is written: items asked for
/// twice are answered once, and one message's response carries at most about twice
/// the message (distinct ranges of it could add up to any size).
#[test]
fn a_fetch_cannot_ask_for_a_message_many_times_over() {
    let (_dir, running, fixture) = fresh(Backend::Epoll, config());
    let line = [b"y".repeat(98), b"\r\n".to_vec()].concat();
    let big = [b"Subject: big\r\n\r\n".to_vec(), line.repeat(3_000)].concat();
    let uid = append(&running.store, fixture.inbox, &big);
    let mut raw = connect(running.imap);
    let answer = raw.command("a1", &format!("LOGIN {ALICE} \"{ALICE_PASSWORD}\""));
    assert!(answer[0].starts_with("a1 OK"), "{answer:?}");
    raw.command("a2", "SELECT INBOX");
    let answer = raw.command(
        "a3",
        &format!("UID FETCH {uid} (UID UID RFC822.SIZE RFC822.SIZE)"),
    );
    assert_eq!(
        answer[0],
        format!("* 6 FETCH (UID {uid} RFC822.SIZE {})\r\n", big.len())
    );
    assert!(answer[1].starts_with("a3 OK"), "{answer:?}");
    // Eight ranges of about the whole message.
    let ranges: Vec<String> = (0..8)
        .map(|origin| format!("BODY.PEEK[]<{origin}.{}>", big.len()))
        .collect();
    let answer = raw.command("a4", &format!("UID FETCH {uid} ({})", ranges.join(" ")));
    assert_eq!(
        answer.len(),
        1,
        "nothing is sent of the message: {:?} … {:?}",
        answer.first(),
        answer.last()
    );
    assert!(answer[0].starts_with("a4 NO [LIMIT] "), "{answer:?}");
    // The same ranges of a small message are answered.
    let small = fixture.uids[0];
    let answer = raw.command(
        "a5",
        &format!("UID FETCH {small} (BODY.PEEK[]<0.10> BODY.PEEK[]<1.10>)"),
    );
    assert!(answer.last().unwrap().starts_with("a5 OK"), "{answer:?}");
    // Twice over is allowed.
    raw.send(format!("a6 UID FETCH {uid} (BODY.PEEK[] BODY.PEEK[TEXT])\r\n").as_bytes());
    let answer = raw.lines_through(|line| line.starts_with("a6 "));
    assert!(
        answer.last().unwrap().starts_with("a6 OK"),
        "{:?}",
        answer.last()
    );
    running.stop();
}

/// A client that does not log in within `login_timeout` gets a BYE however busy it
/// keeps the connection; one that logged in does not.
#[test]
fn a_session_that_never_logs_in_is_closed() {
    let config = ImapConfig {
        idle_timeout: Duration::from_secs(10),
        login_timeout: Duration::from_secs(1),
        ..config()
    };
    let (_dir, running, _fixture) = fresh(Backend::Epoll, config);
    let mut busy = connect(running.imap);
    let started = std::time::Instant::now();
    let bye = loop {
        busy.send(b"a NOOP\r\n");
        let line = busy.line();
        if !line.starts_with("a OK") {
            break line;
        }
        std::thread::sleep(Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_secs(8), "still open");
    };
    assert_eq!(bye, "* BYE Autologout; no login in time\r\n");
    assert_eq!(busy.line(), "", "closed");
    assert!(started.elapsed() >= Duration::from_millis(900));
    let mut user = connect(running.imap);
    let answer = user.command("a1", &format!("LOGIN {ALICE} \"{ALICE_PASSWORD}\""));
    assert!(answer[0].starts_with("a1 OK"), "{answer:?}");
    std::thread::sleep(Duration::from_millis(1500));
    let answer = user.command("a2", "NOOP");
    assert!(answer.last().unwrap().starts_with("a2 OK"), "{answer:?}");
    running.stop();
}

#[test]
fn users_see_only_their_own_mailboxes() {
    if !peers::python_with("imaplib, ssl") {
        return;
    }
    let (_dir, running, _fixture) = fresh(Backend::Epoll, config());
    let results = imaplib(plan(
        running.imap,
        "plain",
        json!([
            ["login", BOB, BOB_PASSWORD],
            ["list", "\"\"", "*"],
            ["select", "alice@example.test/INBOX"],
            ["select", "../alice@example.test/INBOX"],
            ["status", "alice@example.test", "(MESSAGES)"],
            ["select", "INBOX"],
            ["fetch", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"],
            ["search", "FROM", "carol"],
        ]),
    ));
    ok(&results[0]);
    let list = data_text(ok(&results[1]));
    assert!(!list.contains("alice"), "{list}");
    for result in &results[2..5] {
        assert_eq!(result["typ"], "NO", "{result}");
    }
    assert_eq!(ok(&results[5])["data"][0], "1");
    assert_eq!(
        literals(ok(&results[6])),
        vec![b"Subject: For Bob only\r\n\r\n".to_vec()]
    );
    assert_eq!(ok(&results[7])["data"][0], "1");
    running.stop();
}

#[test]
fn uids_uidvalidity_and_flags_persist_across_a_store_reopen() {
    if !peers::python_with("imaplib, ssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let running = Running::start(dir.path(), Backend::Epoll, config());
    let fixture = populate(&running.store);
    let before = imaplib(plan(
        running.imap,
        "plain",
        json!([
            alice_login(),
            ["create", "Kept"],
            ["select", "INBOX"],
            ["store", "2", "+FLAGS", "(\\Answered $Label1)"],
            ["copy", "1:2", "Kept"],
            ["status", "Kept", "(UIDVALIDITY UIDNEXT MESSAGES)"],
            ["uid_fetch", "1:*", "(FLAGS)"],
        ]),
    ));
    for result in &before {
        ok(result);
    }
    let kept_status = data_text(&before[5]);
    let flags_before = data_text(&before[6]);
    let store = running.stop();
    drop(store);
    // Reopen the same directory: the store replays its log.
    let running = Running::start(dir.path(), Backend::Epoll, config());
    let after = imaplib(plan(
        running.imap,
        "plain",
        json!([
            alice_login(),
            ["status", "Kept", "(UIDVALIDITY UIDNEXT MESSAGES)"],
            ["select", "INBOX"],
            ["uid_fetch", "1:*", "(FLAGS)"],
        ]),
    ));
    for result in &after {
        ok(result);
    }
    assert_eq!(data_text(&after[1]), kept_status);
    assert_eq!(
        after[2]["untagged"]["UIDVALIDITY"][0],
        fixture.uidvalidity.to_string()
    );
    // Flags persist; \Recent does not: the mail was recent for the first session
    // (it arrived after the server started), and after the restart it is old.
    assert_eq!(
        data_text(&after[3]),
        flags_before
            .replace(" \\Recent", "")
            .replace("\\Recent", "")
    );
    assert!(
        flags_before.contains("UID 2 FLAGS (\\Answered $Label1 \\Recent)"),
        "{flags_before}"
    );
    assert!(!data_text(&after[3]).contains("Recent"));
    running.stop();
}

#[test]
fn idle_timeout_and_pipelining() {
    let config = ImapConfig {
        idle_timeout: Duration::from_secs(1),
        ..config()
    };
    for backend in backends() {
        let (_dir, running, _fixture) = fresh(backend, config.clone());
        let mut raw = connect(running.imap);
        // Three commands in one write, answered in order.
        raw.send(
            format!(
                "a1 LOGIN {ALICE} \"{ALICE_PASSWORD}\"\r\na2 SELECT INBOX\r\na3 FETCH 1 (UID)\r\n"
            )
            .as_bytes(),
        );
        let lines = raw.lines_through(|line| line.starts_with("a3 "));
        assert!(lines[0].starts_with("a1 OK"));
        assert!(lines
            .iter()
            .any(|line| line.starts_with("a2 OK [READ-WRITE]")));
        assert!(lines.iter().any(|line| line == "* 1 FETCH (UID 1)\r\n"));
        // Silence: the server says goodbye and closes.
        assert_eq!(raw.line(), "* BYE Autologout; idle for too long\r\n");
        assert_eq!(raw.line(), "");
        running.stop();
    }
}

#[test]
fn shutdown_says_bye_even_during_idle() {
    for backend in backends() {
        let (_dir, running, _fixture) = fresh(backend, config());
        let mut waiting = connect(running.imap);
        let mut idling = connect(running.imap);
        let login = idling.command("a1", &format!("LOGIN {ALICE} \"{ALICE_PASSWORD}\""));
        assert!(login[0].starts_with("a1 OK"));
        idling.send(b"a2 IDLE\r\n");
        assert_eq!(idling.line(), "+ idling\r\n");
        running.stop();
        for raw in [&mut waiting, &mut idling] {
            assert_eq!(raw.line(), "* BYE [UNAVAILABLE] Server shutting down\r\n");
            assert_eq!(raw.line(), "");
        }
    }
}

// ---- Real mail programs --------------------------------------------------------

/// A message as mbsync keeps it in a maildir: LF line ends, without its X-TUID.
fn as_in_maildir(message: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(message).replace("\r\n", "\n");
    text.split_inclusive('\n')
        .filter(|line| !line.starts_with("X-TUID: "))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn mbsync_mirrors_a_mailbox_both_ways() {
    if !peers::available("mbsync", &["--version"], "apt-get install -y isync") {
        return;
    }
    for backend in backends() {
        let (dir, running, fixture) = fresh(backend, config());
        let maildir = dir.path().join("maildir");
        std::fs::create_dir_all(&maildir).unwrap();
        let config_path = dir.path().join("mbsyncrc");
        let config = format!(
            "IMAPAccount lifeboat\nHost 127.0.0.1\nPort {port}\nUser {ALICE}\nPass \"{ALICE_PASSWORD}\"\nSSLType STARTTLS\nCertificateFile {cert}\nAuthMechs LOGIN\n\n\
             IMAPStore remote\nAccount lifeboat\n\n\
             MaildirStore local\nPath {path}/\nInbox {path}/INBOX\nSubFolders Verbatim\n\n\
             Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX Sent\nCreate Both\nExpunge Both\nSyncState *\nSync All\n",
            port = running.imap.port(),
            cert = running.cert.display(),
            path = maildir.display(),
        );
        std::fs::write(&config_path, config).unwrap();
        let sync = || {
            let output = Process::new("mbsync")
                .arg("-c")
                .arg(&config_path)
                .arg("-a")
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "mbsync failed:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        };
        sync();
        // Every message arrived. A maildir keeps LF line ends, and mbsync adds its
        // own X-TUID header while it transfers; apart from that, byte for byte.
        let cur = maildir.join("INBOX/cur");
        let new = maildir.join("INBOX/new");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&cur)
            .unwrap()
            .chain(std::fs::read_dir(&new).unwrap())
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 5, "{files:?}");
        let mut contents: Vec<Vec<u8>> = files
            .iter()
            .map(|file| as_in_maildir(&std::fs::read(file).unwrap()))
            .collect();
        contents.sort();
        let mut expected: Vec<Vec<u8>> = alice_messages().into_iter().map(as_in_maildir).collect();
        expected.sort();
        assert_eq!(contents, expected);
        // Mark one message seen and delete another locally, then sync back.
        let lunch = files
            .iter()
            .find(|file| as_in_maildir(&std::fs::read(file).unwrap()) == as_in_maildir(PLAIN))
            .unwrap()
            .clone();
        let report = files
            .iter()
            .find(|file| as_in_maildir(&std::fs::read(file).unwrap()) == as_in_maildir(MULTIPART))
            .unwrap()
            .clone();
        let seen_name = {
            let name = lunch.file_name().unwrap().to_string_lossy().to_string();
            let base = name.split(":2,").next().unwrap().to_string();
            cur.join(format!("{base}:2,S"))
        };
        std::fs::rename(&lunch, &seen_name).unwrap();
        std::fs::remove_file(&report).unwrap();
        // A message delivered meanwhile comes down with the next sync.
        append(&running.store, fixture.inbox, DELIVERED);
        sync();
        running.store.read(|s| {
            let inbox = s.folder(fixture.inbox).unwrap();
            assert!(inbox.messages[&fixture.uids[0]]
                .flags
                .system
                .contains(SystemFlags::SEEN));
            assert!(!inbox.messages.contains_key(&fixture.uids[1]));
        });
        let count =
            std::fs::read_dir(&cur).unwrap().count() + std::fs::read_dir(&new).unwrap().count();
        assert_eq!(count, 5);
        running.stop();
    }
}

#[test]
fn curl_fetches_and_lists() {
    if !peers::available("curl", &["--version"], "apt-get install -y curl") {
        return;
    }
    let (_dir, running, _fixture) = fresh(Backend::Epoll, config());
    let credentials = format!("{ALICE}:{ALICE_PASSWORD}");
    let base = format!("imap://{}", running.imap);
    let message = peers::curl(&["-u", &credentials, &format!("{base}/INBOX;UID=2")]);
    assert_eq!(message, MULTIPART);
    let list = String::from_utf8(peers::curl(&["-u", &credentials, &format!("{base}/")])).unwrap();
    assert!(
        list.contains("\"/\" INBOX") && list.contains("\"/\" Trash"),
        "{list}"
    );
    let search = String::from_utf8(peers::curl(&[
        "-u",
        &credentials,
        "-X",
        "SEARCH SUBJECT Lunch",
        &format!("{base}/INBOX"),
    ]))
    .unwrap();
    assert_eq!(search.trim(), "* SEARCH 1");
    let secure = peers::curl(&[
        "-k",
        "--ssl-reqd",
        "-u",
        &credentials,
        &format!("{base}/INBOX;UID=1"),
    ]);
    assert_eq!(secure, PLAIN);
    let implicit = peers::curl(&[
        "-k",
        "-u",
        &credentials,
        &format!("imaps://{}/INBOX;UID=3", running.imaps),
    ]);
    assert_eq!(implicit, BARE_LF);
    running.stop();
}

// ---- Extensions with real clients ----------------------------------------------

/// RFC 4978 with imaplib (zlib on its socket): COMPRESS DEFLATE after login on
/// loopback, then every message fetched byte for byte through the compressed
/// stream, in fewer octets than it holds; and not offered again once active.
#[test]
fn compress_deflate_with_imaplib() {
    if !peers::python_with("imaplib, zlib") {
        return;
    }
    for backend in backends() {
        let (_dir, running, fixture) = fresh(backend, config());
        let results = imaplib(plan(
            running.imap,
            "plain",
            json!([
                alice_login(),
                ["capability"],
                ["compress"],
                ["select", "INBOX"],
                ["uid_fetch", "1:*", "(BODY.PEEK[])"],
                ["capability"],
                ["raw", "COMPRESS DEFLATE"],
                ["list", "\"\"", "*"],
                ["wire"],
                ["logout"],
            ]),
        ));
        assert!(
            data_text(ok(&results[1])).contains("COMPRESS=DEFLATE"),
            "{}",
            results[1]
        );
        ok(&results[2]);
        ok(&results[3]);
        assert_eq!(literals(ok(&results[4])), alice_messages());
        assert!(!data_text(ok(&results[5])).contains("COMPRESS"));
        let second = results[6]["lines"].as_array().unwrap();
        assert!(
            second
                .last()
                .unwrap()
                .as_str()
                .unwrap()
                .contains("NO [COMPRESSIONACTIVE]"),
            "{second:?}"
        );
        assert!(data_text(ok(&results[7])).contains("INBOX"));
        let received = results[8]["received"].as_u64().unwrap();
        let plain = results[8]["received_plain"].as_u64().unwrap();
        let fetched: usize = alice_messages().iter().map(|message| message.len()).sum();
        assert!(plain as usize > fetched, "{}", results[8]);
        assert!(received > 0 && received < plain, "{}", results[8]);
        assert_eq!(running.uids(ALICE, INBOX), fixture.uids);
        running.stop();
    }
}

/// Compressed input is decompressed a piece at a time: a few KiB that inflate to
/// megabytes (an APPEND of a very repetitive message and commands after it, in one
/// flush from Python's zlib) are taken in whole and answered in order.
#[test]
fn compressed_input_that_inflates_hundreds_of_times() {
    if !peers::python_with("zlib") {
        return;
    }
    const CLIENT: &str = r#"
import socket, sys, zlib
port, user, password, size = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
s = socket.create_connection(("127.0.0.1", port), timeout=30)
f = s.makefile("rb")
def answer(tag):
    while True:
        line = f.readline()
        if line.startswith(tag + b" "):
            return line
f.readline()
s.sendall(b'a LOGIN %s "%s"\r\n' % (user.encode(), password.encode()))
assert answer(b"a").startswith(b"a OK"), "login"
s.sendall(b"b COMPRESS DEFLATE\r\n")
assert answer(b"b").startswith(b"b OK"), "compress"
message = b"Subject: inflated\r\n\r\n" + (b"z" * 78 + b"\r\n") * (size // 80)
plain = b"c APPEND INBOX {%d+}\r\n" % len(message) + message + b"\r\nd NOOP\r\ne LOGOUT\r\n"
compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
wire = compressor.compress(plain) + compressor.flush(zlib.Z_SYNC_FLUSH)
s.sendall(wire)
decompressor = zlib.decompressobj(-15)
received = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    received += decompressor.decompress(chunk)
print(len(wire), len(message))
sys.stdout.write(received.decode())
"#;
    let mut config = config();
    config.limits = Limits::with_literal_bytes_max(16 << 20);
    let (_dir, running, fixture) = fresh(Backend::Epoll, config);
    let output = Process::new("python3")
        .args([
            "-c",
            CLIENT,
            &running.imap.port().to_string(),
            ALICE,
            ALICE_PASSWORD,
            &(8 << 20).to_string(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines = stdout.lines();
    let sizes: Vec<usize> = lines
        .next()
        .unwrap()
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    let (wire, length) = (sizes[0], sizes[1]);
    assert!(wire * 100 < length, "{wire} octets sent for {length}");
    let answers: Vec<&str> = lines.filter(|line| !line.starts_with("* ")).collect();
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert!(answers[0].starts_with("c OK [APPENDUID"), "{answers:?}");
    assert!(answers[1].starts_with("d OK"), "{answers:?}");
    assert!(answers[2].starts_with("e OK"), "{answers:?}");
    let uids = running.uids(ALICE, INBOX);
    assert_eq!(uids.len(), fixture.uids.len() + 1);
    let stored = running
        .store
        .read(|s| s.folder_by_name(ALICE, INBOX).unwrap().messages[uids.last().unwrap()].size);
    assert_eq!(stored as usize, length);
    running.stop();
}

/// mbsync asks for COMPRESS DEFLATE whenever it is offered (after STARTTLS here);
/// its protocol log shows it, and the mirror is still exact.
#[test]
fn mbsync_syncs_over_compress_deflate() {
    if !peers::available("mbsync", &["--version"], "apt-get install -y isync") {
        return;
    }
    let (dir, running, _fixture) = fresh(Backend::Epoll, config());
    let maildir = dir.path().join("maildir");
    std::fs::create_dir_all(&maildir).unwrap();
    let config_path = dir.path().join("mbsyncrc");
    let config = format!(
        "IMAPAccount lifeboat\nHost 127.0.0.1\nPort {port}\nUser {ALICE}\nPass \"{ALICE_PASSWORD}\"\nSSLType STARTTLS\nCertificateFile {cert}\nAuthMechs LOGIN\n\n\
         IMAPStore remote\nAccount lifeboat\n\n\
         MaildirStore local\nPath {path}/\nInbox {path}/INBOX\nSubFolders Verbatim\n\n\
         Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Both\nSyncState *\nSync Pull\n",
        port = running.imap.port(),
        cert = running.cert.display(),
        path = maildir.display(),
    );
    std::fs::write(&config_path, config).unwrap();
    let output = Process::new("mbsync")
        .arg("-Dn")
        .arg("-c")
        .arg(&config_path)
        .arg("-a")
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "mbsync failed:\n{log}");
    assert!(log.contains("COMPRESS DEFLATE"), "{log}");
    let count = ["cur", "new"]
        .iter()
        .map(|sub| {
            std::fs::read_dir(maildir.join("INBOX").join(sub))
                .unwrap()
                .count()
        })
        .sum::<usize>();
    assert_eq!(count, alice_messages().len());
    running.stop();
}

/// RFC 2180 §4.1.1 with two imaplib sessions on one mailbox: the second expunges a
/// message the first still shows; the first fetches it whole and flags it (a
/// no-op), both answered OK, and learns of the expunge at its next NOOP.
#[test]
fn a_message_another_session_expunged_stays_readable_until_reported() {
    if !peers::python_with("imaplib") {
        return;
    }
    let (_dir, running, fixture) = fresh(Backend::Epoll, config());
    let results = imaplib(plan(
        running.imap,
        "plain",
        json!([
            alice_login(),
            ["select", "INBOX"],
            [
                "other_session",
                alice_login(),
                ["select", "INBOX"],
                ["store", "1", "+FLAGS", "(\\Deleted)"],
                ["expunge"]
            ],
            ["fetch", "1", "(UID BODY.PEEK[])"],
            ["store", "1", "+FLAGS", "(\\Flagged)"],
            ["noop"],
            ["fetch", "1", "(UID)"],
        ]),
    ));
    let other = results[2]["results"].as_array().unwrap();
    assert_eq!(ok(&other[3])["data"], json!(["1"]), "{other:?}");
    assert_eq!(literals(ok(&results[3])), vec![PLAIN.to_vec()]);
    assert!(
        data_text(&results[3]).contains(&format!("UID {}", fixture.uids[0])),
        "{}",
        results[3]
    );
    ok(&results[4]);
    assert_eq!(
        results[5]["untagged"]["EXPUNGE"],
        json!(["1"]),
        "{}",
        results[5]
    );
    assert!(
        data_text(ok(&results[6])).contains(&format!("UID {}", fixture.uids[1])),
        "{}",
        results[6]
    );
    assert!(!running.uids(ALICE, INBOX).contains(&fixture.uids[0]));
    running.stop();
}

/// QRESYNC (RFC 7162 §3.2) through imaplib's framing: a client that knows the
/// mailbox up to a HIGHESTMODSEQ comes back after another session expunged one
/// message and flagged another; SELECT (QRESYNC ...) reports exactly that, and the
/// same again after the server restarts (the expunged UIDs are in the store).
#[test]
fn qresync_reports_the_same_vanished_uids_after_a_restart() {
    if !peers::python_with("imaplib") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let running = Running::start(dir.path(), Backend::Epoll, config());
    let fixture = populate(&running.store);
    let first = imaplib(plan(
        running.imap,
        "plain",
        json!([alice_login(), ["enable", "QRESYNC"], ["select", "INBOX"]]),
    ));
    assert_eq!(ok(&first[1])["untagged"]["ENABLED"], json!(["QRESYNC"]));
    let known: u64 = first[2]["untagged"]["HIGHESTMODSEQ"][0]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let changes = imaplib(plan(
        running.imap,
        "plain",
        json!([
            alice_login(),
            ["select", "INBOX"],
            [
                "uid_store",
                fixture.uids[1].to_string(),
                "+FLAGS",
                "(\\Deleted)"
            ],
            ["uid_expunge", fixture.uids[1].to_string()],
            [
                "uid_store",
                fixture.uids[2].to_string(),
                "+FLAGS",
                "(\\Flagged)"
            ],
        ]),
    ));
    for result in &changes {
        ok(result);
    }
    let resync = |running: &Running| -> Vec<String> {
        let results = imaplib(plan(
            running.imap,
            "plain",
            json!([
                alice_login(),
                ["enable", "QRESYNC"],
                [
                    "raw",
                    format!("SELECT INBOX (QRESYNC ({} {known}))", fixture.uidvalidity)
                ],
            ]),
        ));
        results[2]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|line| line.as_str().unwrap().to_string())
            .filter(|line| line.contains("VANISHED") || line.contains("FETCH"))
            .collect()
    };
    let before = resync(&running);
    assert_eq!(
        before[0],
        format!("* VANISHED (EARLIER) {}", fixture.uids[1]),
        "{before:?}"
    );
    assert!(
        before[1].contains(&format!("UID {} FLAGS (\\Flagged)", fixture.uids[2])),
        "{before:?}"
    );
    drop(running.stop());
    let running = Running::start(dir.path(), Backend::Epoll, config());
    assert_eq!(resync(&running), before);
    running.stop();
}

/// UTF8=ACCEPT with imaplib's own UTF-8 mode, STATUS=SIZE through imaplib's
/// status(), and BINARY, SEARCHRES and IMAP4rev2 through its framing.
#[test]
fn utf8_status_size_binary_searchres_and_rev2_with_imaplib() {
    if !peers::python_with("imaplib") {
        return;
    }
    let (_dir, running, fixture) = fresh(Backend::Epoll, config());
    let size: usize = alice_messages().iter().map(|message| message.len()).sum();
    let results = imaplib(plan(
        running.imap,
        "plain",
        json!([
            alice_login(),
            ["enable", "UTF8=ACCEPT"],
            ["create", "Entwürfe"],
            ["list", "\"\"", "Entw*"],
            ["select", "Entwürfe"],
            ["status", "INBOX", "(SIZE MESSAGES)"],
            ["select", "INBOX"],
            ["raw", "FETCH 2 (BINARY.PEEK[2] BINARY.SIZE[2])"],
            ["raw", "SEARCH RETURN (SAVE) SUBJECT Report"],
            ["raw", "UID FETCH $ (UID)"],
            [
                "other_session",
                alice_login(),
                ["raw", "ENABLE IMAP4rev2"],
                ["raw", "SELECT INBOX"],
                ["raw", "SEARCH ALL"]
            ],
        ]),
    ));
    for result in &results[1..=6] {
        ok(result);
    }
    assert!(
        running
            .store
            .read(|s| s.folder_by_name(ALICE, "Entwürfe").is_some()),
        "the UTF-8 name is the store's name"
    );
    let listed: Vec<Vec<u8>> = literals(&results[3]);
    assert_eq!(
        listed,
        vec!["Entwürfe".as_bytes().to_vec()],
        "{}",
        results[3]
    );
    assert!(
        data_text(&results[5]).contains(&format!("SIZE {size} MESSAGES 5")),
        "{}",
        results[5]
    );
    let binary = results[7]["lines"].as_array().unwrap();
    assert!(
        binary.iter().any(|line| line.as_str() == Some("%PDF-1.4")),
        "{binary:?}"
    );
    assert!(
        binary
            .iter()
            .any(|line| line.as_str().unwrap().contains("BINARY.SIZE[2] 9")),
        "{binary:?}"
    );
    let saved = results[8]["lines"].as_array().unwrap();
    assert_eq!(saved.len(), 1, "SAVE alone answers no ESEARCH: {saved:?}");
    let fetched = results[9]["lines"].as_array().unwrap();
    assert!(
        fetched[0]
            .as_str()
            .unwrap()
            .contains(&format!("UID {}", fixture.uids[1])),
        "{fetched:?}"
    );
    let rev2 = results[10]["results"].as_array().unwrap();
    let selected: Vec<&str> = rev2[2]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap())
        .collect();
    assert!(selected.contains(&"* LIST () \"/\" INBOX"), "{selected:?}");
    assert!(
        !selected.iter().any(|line| line.contains("RECENT")),
        "{selected:?}"
    );
    let searched = rev2[3]["lines"].as_array().unwrap();
    assert!(
        searched[0].as_str().unwrap().ends_with("ALL 1:5"),
        "{searched:?}"
    );
    running.stop();
}

/// The archive as IMAP mailboxes (`#archive/YYYY-MM`) with two real clients: imaplib
/// lists, examines, searches (through the archive's full-text index) and reads a
/// user's own archived mail, and is refused a change; curl fetches one by UID. Bob's
/// archived mail is not in Alice's mailbox.
#[test]
fn archive_mailboxes_with_imaplib_and_curl() {
    if !peers::python_with("imaplib") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store"), Options::default()).unwrap();
    populate(&store);
    let now = lifeboat_store::now();
    let archived = |from: &str, to: &str, body: &[u8]| -> u32 {
        let mut batch = Batch::new();
        let body = batch.put_body(body.to_vec());
        batch.push(Op::Archive(NewArchiveEntry {
            body,
            direction: Direction::In,
            mail_from: from.into(),
            rcpt_to: vec![to.into()],
            date: now,
            headers: HeaderFields::default(),
        }));
        let results = store.commit(batch).unwrap();
        let Some(Ok(OpResult::Archived(id))) = results.last() else {
            panic!("{results:?}")
        };
        u32::try_from(id.0).unwrap()
    };
    let lunch = archived("carol@example.test", ALICE, PLAIN);
    let report = archived("dave@example.test", ALICE, MULTIPART);
    let bobs = archived("carol@example.test", BOB, BOBS);
    let index = std::sync::Arc::new(
        lifeboat_store::ArchiveIndex::open(dir.path().join("index"), store.clone()).unwrap(),
    );
    assert!(index.wait_current(Duration::from_secs(30)));
    drop(store);
    let running = Running::start_with_index(dir.path(), Backend::Epoll, config(), index);
    let date = lifeboat_imap::types::Date::from_days_since_epoch(now.div_euclid(86_400)).unwrap();
    let month = format!("#archive/{:04}-{:02}", date.year(), date.month());
    let results = imaplib(plan(
        running.imap,
        "plain",
        json!([
            alice_login(),
            ["list", "\"\"", "#archive*"],
            ["examine", format!("\"{month}\"")],
            ["uid_search", "TEXT", "numbers"],
            ["uid_fetch", report.to_string(), "(BODY.PEEK[])"],
            ["uid_search", "ALL"],
            ["store", "1", "+FLAGS", "(\\Flagged)"],
        ]),
    ));
    let listed = data_text(ok(&results[1]));
    assert!(listed.contains(&month), "{listed}");
    ok(&results[2]);
    assert_eq!(data_text(ok(&results[3])), report.to_string());
    assert_eq!(literals(ok(&results[4])), vec![MULTIPART.to_vec()]);
    assert_eq!(data_text(ok(&results[5])), format!("{lunch} {report}"));
    assert!(!data_text(&results[5]).contains(&bobs.to_string()));
    assert_eq!(results[6]["typ"], "NO", "{}", results[6]);
    assert!(
        data_text(&results[6]).contains("read-only"),
        "{}",
        results[6]
    );
    if peers::available("curl", &["--version"], "apt-get install -y curl") {
        let credentials = format!("{ALICE}:{ALICE_PASSWORD}");
        let url = format!(
            "imap://{}/{};UID={lunch}",
            running.imap,
            month.replace('#', "%23").replace('/', "%2F")
        );
        assert_eq!(peers::curl(&["-u", &credentials, &url]), PLAIN);
    }
    running.stop();
}
