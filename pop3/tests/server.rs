//! The POP3 server end to end: a real store in a temporary directory, the service on
//! lifeboat-net listeners (pop3 with STLS, pop3s with implicit TLS) on 127.0.0.1:0,
//! driven by Python's poplib (tests/python/pop3_client.py), curl, and raw sockets.
//!
//! Every test runs once per I/O backend: epoll, and io_uring when the probe says it
//! works here. A test that needs python3 or curl prints a skip note and returns only
//! when the tool cannot be run at all.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant};

use lifeboat_net::{ensure_self_signed, Backend, Server, ServerBuilder, ServerConfig, TlsAcceptor};
use lifeboat_pop3::{Pop3Config, Pop3Service};
use lifeboat_store::auth::{Authenticator, Limits};
use lifeboat_store::password::hash_password;
use lifeboat_store::{
    Batch, Coverage, Destination, DomainSettings, Failover, FolderId, NewQueueEntry, Op, OpResult,
    Options, PortalRef, QueueId, Role, Store, INBOX,
};
use lifeboat_testkit::{backends, io_mode, peers, tls_client, Client, CLIENT_TIMEOUT};
use serde_json::{json, Value};

const ALICE: &str = "alice@example.test";
const ALICE_PASSWORD: &str = "alice password";
const BOB: &str = "bob@example.test";
const BOB_PASSWORD: &str = "bob password";

/// Alice's messages, in UID order.
const FIRST: &[u8] = b"From: carol@example.test\r\nTo: alice@example.test\r\nSubject: first\r\n\r\nHello Alice,\r\n.a line that starts with a dot\r\n..and one with two\r\n.\r\nBye\r\n";
/// Stored with bare LF line ends, as some clients append them.
const SECOND: &[u8] = b"Subject: second\n\nline one\nline two\n";
/// The message with a drain queue entry.
const DRAINING: &[u8] = b"Subject: draining\r\n\r\nqueued for the upstream\r\n";

/// A message larger than a send chunk, with dot-leading lines throughout.
fn large_message() -> Vec<u8> {
    let mut message = b"Subject: large\r\n\r\n".to_vec();
    let mut line = 0;
    while message.len() < 300 * 1024 {
        if line % 7 == 0 {
            message.push(b'.');
        }
        message.extend_from_slice(
            format!("{line:08} the quick brown fox jumps over the lazy dog\r\n").as_bytes(),
        );
        line += 1;
    }
    message
}

/// What a POP3 client receives for a stored message: CRLF line ends throughout.
fn as_received(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in message.split_inclusive(|&b| b == b'\n') {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The store's facts about Alice's INBOX that the tests check against.
#[derive(Clone, Debug)]
struct Mailbox {
    folder: FolderId,
    uidvalidity: u32,
    uids: Vec<u32>,
    drain: QueueId,
    drain_uid: u32,
}

/// Creates the domain, Alice and Bob, and Alice's four messages; the last one has a
/// drain queue entry, as when the domain left emergency mode.
fn populate(store: &Store) -> Mailbox {
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
    let folder = store.read(|s| s.folder_by_name(ALICE, INBOX).unwrap().id);
    let mut uids = Vec::new();
    for body in [
        FIRST.to_vec(),
        SECOND.to_vec(),
        large_message(),
        DRAINING.to_vec(),
    ] {
        let mut batch = Batch::new();
        let body = batch.put_body(body);
        batch.push(Op::Append {
            folder,
            body,
            flags: Default::default(),
            internal_date: 1_700_000_000,
        });
        let results = store.commit(batch).unwrap();
        let Some(Ok(OpResult::Appended { uid, .. })) = results.last() else {
            panic!("append failed: {results:?}");
        };
        uids.push(*uid);
    }
    let drain_uid = *uids.last().unwrap();
    let (body, uidvalidity) = store.read(|s| {
        let inbox = s.folder(folder).unwrap();
        (inbox.messages[&drain_uid].body, inbox.uidvalidity)
    });
    let mut batch = Batch::new();
    batch.push(Op::Enqueue(NewQueueEntry {
        body: lifeboat_store::BodyRef::Stored(body),
        sender: "carol@example.test".into(),
        recipient: ALICE.into(),
        destination: Destination::Upstream("example.test".into()),
        next_attempt: 0,
        created: 0,
        portal: Some(PortalRef {
            folder,
            uid: drain_uid,
        }),
    }));
    let results = store.commit(batch).unwrap();
    let Some(Ok(OpResult::Queued(drain))) = results.last() else {
        panic!("enqueue failed: {results:?}");
    };
    assert_eq!(
        store.read(|s| s.drain_entry(folder, drain_uid)),
        Some(*drain)
    );
    Mailbox {
        folder,
        uidvalidity,
        uids,
        drain: *drain,
        drain_uid,
    }
}

struct Running {
    server: Option<Server>,
    service: Pop3Service,
    store: Store,
    pop3: SocketAddr,
    pop3s: SocketAddr,
    cert: PathBuf,
}

impl Running {
    /// Starts the service over the store in `dir` (opened here) on both listeners.
    fn start(dir: &Path, backend: Backend, config: Pop3Config, limits: Limits) -> Running {
        let store = Store::open(dir.join("store"), Options::default()).unwrap();
        let auth = Authenticator::with_limits(store.clone(), limits);
        let paths = ensure_self_signed(&dir.join("tls"), "localhost").unwrap();
        let tls = TlsAcceptor::from_pem_files(&paths.cert, &paths.key).unwrap();
        let service = Pop3Service::new(store.clone(), auth, tls, config);
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = ServerBuilder::new(ServerConfig {
            threads: 2,
            io: io_mode(backend),
        })
        .listener(service.listener("pop3", loopback, false), service.handler())
        .listener(service.listener("pop3s", loopback, true), service.handler())
        .start()
        .unwrap();
        assert_eq!(server.backend(), backend);
        Running {
            pop3: server.local_addr("pop3").unwrap(),
            pop3s: server.local_addr("pop3s").unwrap(),
            server: Some(server),
            service,
            store,
            cert: paths.cert,
        }
    }

    /// Stops the server and closes the store (every handle to it is dropped).
    fn stop(mut self) {
        let report = self.server.take().unwrap().shutdown(Duration::from_secs(5));
        assert_eq!(report.threads_panicked, 0);
    }

    /// Waits until no POP3 session holds a maildrop lock.
    fn wait_unlocked(&self) {
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        while self.service.locked_maildrops() > 0 {
            assert!(Instant::now() < deadline, "a maildrop stayed locked");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn inbox_uids(&self, folder: FolderId) -> Vec<u32> {
        self.store
            .read(|s| s.folder(folder).unwrap().messages.keys().copied().collect())
    }
}

fn default_limits() -> Limits {
    Limits::default()
}

fn loopback_config() -> Pop3Config {
    Pop3Config {
        hostname: "pop.example.test".into(),
        ..Pop3Config::default()
    }
}

/// Starts a populated server in a fresh directory.
fn fresh(
    backend: Backend,
    config: Pop3Config,
    limits: Limits,
) -> (tempfile::TempDir, Running, Mailbox) {
    let dir = tempfile::tempdir().unwrap();
    let running = Running::start(dir.path(), backend, config, limits);
    let mailbox = populate(&running.store);
    (dir, running, mailbox)
}

// ---- Python --------------------------------------------------------------------

/// Runs the poplib client with `plan` and returns what it printed.
fn poplib(plan: Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/pop3_client.py");
    let output = Process::new("python3")
        .arg(script)
        .arg(plan.to_string())
        .output()
        .expect("running python3");
    assert!(
        output.status.success(),
        "poplib client failed for {plan}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn plan(addr: SocketAddr, mode: &str, login: Option<(&str, &str, &str)>, actions: Value) -> Value {
    let mut plan = json!({
        "host": addr.ip().to_string(),
        "port": addr.port(),
        "mode": mode,
        "actions": actions,
    });
    if let Some((method, user, password)) = login {
        plan["login"] = json!({"method": method, "user": user, "password": password});
    }
    plan
}

fn alice() -> Option<(&'static str, &'static str, &'static str)> {
    Some(("user", ALICE, ALICE_PASSWORD))
}

fn decode_body(result: &Value) -> Vec<u8> {
    let text = result["body"].as_str().unwrap();
    lifeboat_net::wire::base64_decode(text.as_bytes()).unwrap()
}

// ---- Raw sockets ---------------------------------------------------------------

/// A client greeted with `+OK`.
fn connect(addr: SocketAddr) -> Client {
    Client::greeted(addr, "+OK ")
}

/// POP3 over a raw socket.
trait Pop3 {
    /// Sends a command; its status line.
    fn command(&mut self, command: &str) -> String;
    /// Reads a multi-line response's lines after its status line.
    fn multiline(&mut self) -> Vec<String>;
    /// USER and PASS; the answer to PASS.
    fn login(&mut self, user: &str, password: &str) -> String;
}

impl Pop3 for Client {
    fn command(&mut self, command: &str) -> String {
        self.send(format!("{command}\r\n").as_bytes());
        self.line()
    }

    fn multiline(&mut self) -> Vec<String> {
        let mut lines = self.lines_through(|line| line == ".\r\n");
        lines.pop();
        lines
    }

    fn login(&mut self, user: &str, password: &str) -> String {
        let reply = self.command(&format!("USER {user}"));
        assert!(reply.starts_with("+OK"), "{reply}");
        self.command(&format!("PASS {password}"))
    }
}

// ---- Tests ---------------------------------------------------------------------

#[test]
fn poplib_reads_lists_and_retrieves_exactly() {
    if !peers::python_with("poplib, ssl") {
        return;
    }
    for backend in backends() {
        let (_dir, running, mailbox) = fresh(backend, loopback_config(), default_limits());
        let large = large_message();
        let stored: [&[u8]; 4] = [FIRST, SECOND, &large, DRAINING];
        let output = poplib(plan(
            running.pop3,
            "plain",
            alice(),
            json!([
                ["capa"],
                ["stat"],
                ["list"],
                ["uidl"],
                ["uidl_one", 2],
                ["retr", 1],
                ["retr", 2],
                ["retr", 3],
                ["top", 1, 0],
                ["top", 3, 2],
                ["list_one", 9],
                ["quit"]
            ]),
        ));
        assert!(output["welcome"]
            .as_str()
            .unwrap()
            .starts_with("+OK pop.example.test"));
        assert!(
            output["login"]
                .as_str()
                .unwrap()
                .starts_with("+OK Logged in"),
            "{output}"
        );
        let results = output["results"].as_array().unwrap();
        let capa = &results[0];
        for capability in [
            "USER",
            "TOP",
            "UIDL",
            "PIPELINING",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "STLS",
        ] {
            assert!(
                capa.get(capability).is_some(),
                "{capability} missing from {capa}"
            );
        }
        assert_eq!(capa["SASL"], json!(["PLAIN"]));
        assert_eq!(capa["IMPLEMENTATION"], json!(["Lifeboat"]));

        // Sizes are the octets as sent, CRLF line ends, before byte-stuffing.
        let sizes: Vec<usize> = stored.iter().map(|m| as_received(m).len()).collect();
        assert_eq!(results[1], json!([4, sizes.iter().sum::<usize>()]));
        let list: Vec<String> = sizes
            .iter()
            .enumerate()
            .map(|(i, size)| format!("{} {size}", i + 1))
            .collect();
        assert_eq!(results[2], json!(list));
        let uidl: Vec<String> = mailbox
            .uids
            .iter()
            .enumerate()
            .map(|(i, uid)| format!("{} {}.{uid}", i + 1, mailbox.uidvalidity))
            .collect();
        assert_eq!(results[3], json!(uidl));
        assert_eq!(
            results[4],
            json!(format!("+OK 2 {}.{}", mailbox.uidvalidity, mailbox.uids[1]))
        );
        for (index, message) in stored.iter().take(3).enumerate() {
            let retr = &results[5 + index];
            assert_eq!(
                decode_body(retr),
                as_received(message),
                "message {} on {backend}",
                index + 1
            );
            assert_eq!(
                retr["response"],
                json!(format!("+OK {} octets", sizes[index]))
            );
        }
        assert_eq!(
            decode_body(&results[8]),
            b"From: carol@example.test\r\nTo: alice@example.test\r\nSubject: first\r\n\r\n"
        );
        assert_eq!(
            decode_body(&results[9]),
            [&as_received(&large)[..18], b".00000000 the quick brown fox jumps over the lazy dog\r\n00000001 the quick brown fox jumps over the lazy dog\r\n"].concat()
        );
        assert_eq!(results[10], json!({"error": "-ERR No such message"}));
        assert_eq!(results[11], json!("+OK Bye"));
        running.wait_unlocked();
        // Nothing deleted; RETR marked the retrieved messages \Seen.
        assert_eq!(running.inbox_uids(mailbox.folder), mailbox.uids);
        let seen: Vec<bool> = running.store.read(|s| {
            s.folder(mailbox.folder)
                .unwrap()
                .messages
                .values()
                .map(|m| m.flags.system.contains(lifeboat_store::SystemFlags::SEEN))
                .collect()
        });
        assert_eq!(seen, [true, true, true, false]);
        running.stop();
    }
}

#[test]
fn dele_and_quit_expunge_and_cancel_the_drain_entry() {
    if !peers::python_with("poplib, ssl") {
        return;
    }
    for backend in backends() {
        let (_dir, running, mailbox) = fresh(backend, loopback_config(), default_limits());
        let output = poplib(plan(
            running.pop3,
            "plain",
            alice(),
            json!([["dele", 1], ["dele", 4], ["dele", 1], ["stat"], ["quit"]]),
        ));
        let results = output["results"].as_array().unwrap();
        assert_eq!(results[0], json!("+OK Message 1 deleted"));
        assert_eq!(
            results[2],
            json!({"error": "-ERR Message 1 already deleted"})
        );
        assert_eq!(results[3][0], json!(2));
        assert_eq!(results[4], json!("+OK Bye, 2 messages deleted"));
        running.wait_unlocked();
        let remaining = running.inbox_uids(mailbox.folder);
        assert_eq!(remaining, [mailbox.uids[1], mailbox.uids[2]]);
        // The store cancelled the drain entry of the deleted message: it will never
        // be delivered to the upstream.
        assert_eq!(
            running
                .store
                .read(|s| s.drain_entry(mailbox.folder, mailbox.drain_uid)),
            None
        );
        assert!(running
            .store
            .read(|s| s.queue_entry(mailbox.drain).is_none()));
        // A new session numbers the remaining messages from 1.
        let output = poplib(plan(
            running.pop3,
            "plain",
            alice(),
            json!([["uidl"], ["quit"]]),
        ));
        assert_eq!(
            output["results"][0],
            json!([
                format!("1 {}.{}", mailbox.uidvalidity, mailbox.uids[1]),
                format!("2 {}.{}", mailbox.uidvalidity, mailbox.uids[2]),
            ])
        );
        running.stop();
    }
}

#[test]
fn a_dropped_connection_deletes_nothing() {
    if !peers::python_with("poplib, ssl") {
        return;
    }
    for backend in backends() {
        let (_dir, running, mailbox) = fresh(backend, loopback_config(), default_limits());
        let output = poplib(plan(
            running.pop3,
            "plain",
            alice(),
            json!([["dele", 1], ["dele", 4], ["retr", 2], ["drop"]]),
        ));
        assert_eq!(output["results"][3], json!("dropped"));
        running.wait_unlocked();
        assert_eq!(running.inbox_uids(mailbox.folder), mailbox.uids);
        assert_eq!(
            running
                .store
                .read(|s| s.drain_entry(mailbox.folder, mailbox.drain_uid)),
            Some(mailbox.drain)
        );
        // RSET then QUIT deletes nothing either.
        let output = poplib(plan(
            running.pop3,
            "plain",
            alice(),
            json!([["dele", 1], ["rset"], ["quit"]]),
        ));
        assert_eq!(output["results"][2], json!("+OK Bye"));
        running.wait_unlocked();
        assert_eq!(running.inbox_uids(mailbox.folder), mailbox.uids);
        running.stop();
    }
}

#[test]
fn uidl_is_stable_across_a_restart() {
    if !peers::python_with("poplib, ssl") {
        return;
    }
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let running = Running::start(dir.path(), backend, loopback_config(), default_limits());
        let mailbox = populate(&running.store);
        let actions = json!([["uidl"], ["quit"]]);
        let before = poplib(plan(running.pop3, "plain", alice(), actions.clone()));
        running.stop();
        // Reopen the store from disk behind a new service and server.
        let running = Running::start(dir.path(), backend, loopback_config(), default_limits());
        let after = poplib(plan(running.pop3, "plain", alice(), actions));
        assert_eq!(before["results"][0], after["results"][0]);
        assert_eq!(
            after["results"][0][0],
            json!(format!("1 {}.{}", mailbox.uidvalidity, mailbox.uids[0]))
        );
        running.stop();
    }
}

#[test]
fn a_second_session_on_the_same_maildrop_is_refused_in_use() {
    if !peers::python_with("poplib, ssl") {
        return;
    }
    for backend in backends() {
        let (_dir, running, _mailbox) = fresh(backend, loopback_config(), default_limits());
        let mut first = connect(running.pop3);
        assert!(first
            .login(ALICE, ALICE_PASSWORD)
            .starts_with("+OK Logged in"));
        let second = poplib(plan(running.pop3, "plain", alice(), json!([])));
        assert_eq!(
            second["login_error"],
            json!("-ERR [IN-USE] Maildrop is locked by another POP3 session")
        );
        // Over pop3s too: the lock is process-wide, not per listener or thread.
        let second = poplib(plan(running.pop3s, "ssl", alice(), json!([])));
        assert!(second["login_error"]
            .as_str()
            .unwrap()
            .starts_with("-ERR [IN-USE]"));
        // Another account is not affected.
        let bob = poplib(plan(
            running.pop3,
            "plain",
            Some(("user", BOB, BOB_PASSWORD)),
            json!([["quit"]]),
        ));
        assert!(bob["login"].as_str().unwrap().starts_with("+OK"), "{bob}");
        // The lock goes with the session, also when the connection just drops.
        drop(first);
        running.wait_unlocked();
        let third = poplib(plan(
            running.pop3,
            "plain",
            alice(),
            json!([["stat"], ["quit"]]),
        ));
        assert_eq!(third["results"][0][0], json!(4));
        running.stop();
    }
}

#[test]
fn stls_with_poplib_and_implicit_tls() {
    if !peers::python_with("poplib, ssl") {
        return;
    }
    for backend in backends() {
        let config = Pop3Config {
            allow_plaintext_loopback: false,
            ..loopback_config()
        };
        let (_dir, running, _mailbox) = fresh(backend, config, default_limits());
        // Plaintext logins are refused before TLS ...
        let refused = poplib(plan(running.pop3, "plain", alice(), json!([])));
        assert_eq!(
            refused["login_error"],
            json!("-ERR [AUTH] Plaintext authentication disallowed without TLS, use STLS")
        );
        let refused = poplib(plan(
            running.pop3,
            "plain",
            Some(("plain", ALICE, ALICE_PASSWORD)),
            json!([]),
        ));
        assert!(refused["login_error"]
            .as_str()
            .unwrap()
            .starts_with("-ERR [AUTH]"));
        let capa = poplib(plan(running.pop3, "plain", None, json!([["capa"]])));
        assert!(capa["results"][0].get("STLS").is_some());
        assert!(capa["results"][0].get("USER").is_none());
        // ... and accepted after STLS, with USER/PASS or AUTH PLAIN.
        let upgraded = poplib(plan(
            running.pop3,
            "stls",
            alice(),
            json!([["capa"], ["stat"], ["quit"]]),
        ));
        assert_eq!(upgraded["stls"], json!("+OK Begin TLS negotiation"));
        assert!(upgraded["login"]
            .as_str()
            .unwrap()
            .starts_with("+OK Logged in"));
        assert!(upgraded["results"][0].get("STLS").is_none());
        assert!(upgraded["results"][0].get("USER").is_some());
        assert_eq!(upgraded["results"][1][0], json!(4));
        running.wait_unlocked();
        let plain = poplib(plan(
            running.pop3,
            "stls",
            Some(("plain", ALICE, ALICE_PASSWORD)),
            json!([["quit"]]),
        ));
        assert!(
            plain["login"]
                .as_str()
                .unwrap()
                .starts_with("+OK Logged in"),
            "{plain}"
        );
        running.wait_unlocked();
        // Implicit TLS.
        let implicit = poplib(plan(
            running.pop3s,
            "ssl",
            alice(),
            json!([["retr", 1], ["quit"]]),
        ));
        assert_eq!(decode_body(&implicit["results"][0]), as_received(FIRST));
        running.stop();
    }
}

#[test]
fn commands_pipelined_after_stls_are_not_executed() {
    for backend in backends() {
        let (_dir, running, _mailbox) = fresh(backend, loopback_config(), default_limits());
        let mut raw = connect(running.pop3);
        // One write: the QUIT arrives in the same segment as the STLS.
        raw.send(b"STLS\r\nQUIT\r\n");
        assert_eq!(raw.line(), "+OK Begin TLS negotiation\r\n");
        // No plaintext answer to the QUIT: the server now waits for a TLS handshake.
        raw.assert_silent(Duration::from_millis(500));
        // The handshake succeeds and the session is alive: the QUIT was discarded,
        // not run after the upgrade.
        let mut tls = tls_client(&running.cert, raw.tcp());
        tls.write_all(b"CAPA\r\n").unwrap();
        let mut reader = BufReader::new(tls);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, "+OK Capability list follows\r\n");
        running.stop();
    }
}

#[test]
fn repeated_bad_passwords_are_rate_limited() {
    if !peers::python_with("poplib, ssl") {
        return;
    }
    for backend in backends() {
        let limits = Limits {
            account_failures_max: 4.0,
            account_refill: Duration::from_secs(3600),
            ..Limits::default()
        };
        let (_dir, running, _mailbox) = fresh(backend, loopback_config(), limits);
        let wrong = Some(("user", ALICE, "wrong password"));
        let mut answers = Vec::new();
        for _ in 0..5 {
            let output = poplib(plan(running.pop3, "plain", wrong, json!([])));
            answers.push(output["login_error"].as_str().unwrap().to_string());
        }
        assert_eq!(answers[..4], vec!["-ERR [AUTH] Authentication failed"; 4]);
        assert_eq!(
            answers[4],
            "-ERR [SYS/TEMP] Too many failed logins, try again later"
        );
        // Now even the right password is refused, whatever the method.
        let right = poplib(plan(running.pop3, "plain", alice(), json!([])));
        assert!(right["login_error"]
            .as_str()
            .unwrap()
            .starts_with("-ERR [SYS/TEMP]"));
        // Another account is not throttled.
        let bob = poplib(plan(
            running.pop3,
            "plain",
            Some(("user", BOB, BOB_PASSWORD)),
            json!([["quit"]]),
        ));
        assert!(bob["login"].as_str().unwrap().starts_with("+OK"), "{bob}");
        // One connection gets three tries before it is closed.
        let mut raw = connect(running.pop3);
        for _ in 0..3 {
            assert!(raw.login(BOB, "wrong").starts_with("-ERR [AUTH]"));
        }
        assert_eq!(raw.line(), "", "the connection should be closed");
        running.stop();
    }
}

#[test]
fn pipelined_commands_long_lines_and_idle_timeout() {
    for backend in backends() {
        let config = Pop3Config {
            idle_timeout: Duration::from_secs(1),
            ..loopback_config()
        };
        let (_dir, running, _mailbox) = fresh(backend, config, default_limits());
        let mut raw = connect(running.pop3);
        // A line longer than the listener reads, then the session goes on.
        raw.send(&[b'A'; 6000]);
        raw.send(b"\r\n");
        assert_eq!(raw.line(), "-ERR Line too long\r\n");
        // A command longer than RFC 2449's 255 octets but within the listener's limit.
        assert_eq!(
            raw.command(&format!("USER {}", "a".repeat(300))),
            "-ERR Line too long\r\n"
        );
        // Everything in one write: answered in order (RFC 2449 §6.6).
        raw.send(
            format!("USER {ALICE}\r\nPASS {ALICE_PASSWORD}\r\nSTAT\r\nLIST 1\r\nNOOP\r\nRETR 2\r\nDELE 1\r\nBOGUS\r\nRSET\r\nQUIT\r\n")
                .as_bytes(),
        );
        assert_eq!(raw.line(), "+OK Send PASS\r\n");
        assert!(raw
            .line()
            .starts_with("+OK Logged in, maildrop has 4 messages"));
        assert!(raw.line().starts_with("+OK 4 "));
        assert_eq!(
            raw.line(),
            format!("+OK 1 {}\r\n", as_received(FIRST).len())
        );
        assert_eq!(raw.line(), "+OK\r\n");
        assert!(raw.line().starts_with("+OK "));
        assert_eq!(
            raw.multiline().concat(),
            String::from_utf8(as_received(SECOND)).unwrap()
        );
        assert_eq!(raw.line(), "+OK Message 1 deleted\r\n");
        assert_eq!(raw.line(), "-ERR Unknown command\r\n");
        assert!(raw.line().starts_with("+OK Maildrop has 4 messages"));
        assert_eq!(raw.line(), "+OK Bye\r\n");
        assert_eq!(raw.line(), "");
        running.wait_unlocked();

        // Idle: the server closes without a word (RFC 1939 §3) and without UPDATE.
        let mut idle = connect(running.pop3);
        assert!(idle.login(ALICE, ALICE_PASSWORD).starts_with("+OK"));
        assert!(idle.command("DELE 1").starts_with("+OK"));
        let started = Instant::now();
        assert_eq!(idle.line(), "");
        assert!(started.elapsed() >= Duration::from_millis(900));
        running.wait_unlocked();
        assert_eq!(running.inbox_uids(_mailbox.folder).len(), 4);
        running.stop();
    }
}

/// A client that does not log in within `login_timeout` is disconnected however busy
/// it keeps the connection; one that logged in is not.
#[test]
fn a_session_that_never_logs_in_is_closed() {
    let config = Pop3Config {
        idle_timeout: Duration::from_secs(10),
        login_timeout: Duration::from_secs(1),
        ..loopback_config()
    };
    let (_dir, running, _mailbox) = fresh(Backend::Epoll, config, default_limits());
    let mut busy = connect(running.pop3);
    let started = Instant::now();
    let mut answered = 0;
    while busy.command("CAPA").starts_with("+OK") {
        busy.multiline();
        answered += 1;
        std::thread::sleep(Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_secs(8), "still open");
    }
    assert!(answered >= 1, "{answered}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    // A line trickling in without its end does not escape it either.
    let mut trickle = connect(running.pop3);
    let started = Instant::now();
    trickle.send(&[b'A'; 6000]);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if trickle.tcp().write_all(b"A").is_err() || started.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    assert!(trickle.closed());
    assert!(started.elapsed() < Duration::from_secs(8));
    // Logged in, the session outlives the login deadline.
    let mut user = connect(running.pop3);
    assert!(user.login(ALICE, ALICE_PASSWORD).starts_with("+OK"));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(user.command("STAT").starts_with("+OK"));
    assert!(user.command("QUIT").starts_with("+OK"));
    running.stop();
}

// ---- curl ----------------------------------------------------------------------

fn curl_available() -> bool {
    match Process::new("curl").arg("--version").output() {
        Ok(output) if output.status.success() => {
            let version = String::from_utf8_lossy(&output.stdout);
            if version.contains("pop3") {
                true
            } else {
                println!("SKIP: this curl has no POP3 support:\n{version}");
                false
            }
        }
        _ => {
            println!("SKIP: curl is not available (apt-get install -y curl)");
            false
        }
    }
}

#[test]
fn curl_lists_and_retrieves() {
    if !curl_available() {
        return;
    }
    for backend in backends() {
        let (_dir, running, mailbox) = fresh(backend, loopback_config(), default_limits());
        let credentials = format!("{ALICE}:{ALICE_PASSWORD}");
        let base = format!("pop3://{}", running.pop3);
        let large = large_message();
        let sizes: Vec<usize> = [FIRST, SECOND, &large[..], DRAINING]
            .iter()
            .map(|m| as_received(m).len())
            .collect();
        // LIST (curl logs in with AUTH PLAIN, as CAPA offers SASL PLAIN).
        let list = peers::curl(&["-u", &credentials, &format!("{base}/")]);
        let expected: String = sizes
            .iter()
            .enumerate()
            .map(|(i, size)| format!("{} {size}\r\n", i + 1))
            .collect();
        assert_eq!(String::from_utf8(list).unwrap(), expected);
        running.wait_unlocked();
        // RETR: curl removes the byte-stuffing.
        let first = peers::curl(&["-u", &credentials, &format!("{base}/1")]);
        assert_eq!(first, as_received(FIRST));
        running.wait_unlocked();
        let third = peers::curl(&["-u", &credentials, &format!("{base}/3")]);
        assert_eq!(third, as_received(&large));
        running.wait_unlocked();
        // UIDL as a custom command.
        let uidl = peers::curl(&["-u", &credentials, "-X", "UIDL", &format!("{base}/")]);
        assert!(String::from_utf8(uidl).unwrap().starts_with(&format!(
            "1 {}.{}\r\n",
            mailbox.uidvalidity, mailbox.uids[0]
        )),);
        running.wait_unlocked();
        // AUTH PLAIN with an initial response.
        let second = peers::curl(&["--sasl-ir", "-u", &credentials, &format!("{base}/2")]);
        assert_eq!(second, as_received(SECOND));
        running.wait_unlocked();
        // STLS and implicit TLS.
        let upgraded = peers::curl(&["-k", "--ssl-reqd", "-u", &credentials, &format!("{base}/2")]);
        assert_eq!(upgraded, as_received(SECOND));
        running.wait_unlocked();
        let implicit = peers::curl(&[
            "-k",
            "-u",
            &credentials,
            &format!("pop3s://{}/2", running.pop3s),
        ]);
        assert_eq!(implicit, as_received(SECOND));
        running.wait_unlocked();
        // DELE through curl (no body, -I), then the message is gone.
        peers::curl(&["-u", &credentials, "-X", "DELE", "-I", &format!("{base}/1")]);
        running.wait_unlocked();
        assert_eq!(running.inbox_uids(mailbox.folder), mailbox.uids[1..]);
        running.stop();
    }
}
