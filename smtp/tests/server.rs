//! The SMTP servers end to end: [`SmtpService`] on lifeboat-net listeners on
//! 127.0.0.1:0 (MX with STARTTLS, submission with STARTTLS, submissions with implicit
//! TLS), over a real store in a temporary directory and the real relay, driven by
//! Python's smtplib, swaks, and raw sockets. Every test runs on the epoll backend and,
//! where the probe says it works here, on io_uring.
//!
//! The fixture: example.test is protected, forced into emergency mode with
//! `coverage = all` (so accepted mail lands in portal INBOXes and nothing needs an
//! upstream); alice@example.test is a registered, covered account with the password
//! `alice password`. No client network may relay, so loopback clients are treated
//! like outside senders unless they authenticate.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lifeboat_net::{ensure_self_signed, Backend, Server, ServerBuilder, ServerConfig, TlsAcceptor};
use lifeboat_smtp::parse::Domain;
use lifeboat_smtp::relay::{Listener, Relay, RelayConfig};
use lifeboat_smtp::{SmtpConfig, SmtpService};
use lifeboat_store::auth::Authenticator;
use lifeboat_store::{
    ArchiveEntry, Batch, Coverage, Destination, DomainSettings, Failover, Mode, Op, Options, Role,
    Store,
};
use lifeboat_testkit::{backends, io_mode, peers, Client};

const ALICE: &str = "alice@example.test";
const ALICE_PASSWORD: &str = "alice password";

struct Harness {
    server: Option<Server>,
    store: Store,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn start(backend: Backend, customize: impl Fn(&mut SmtpConfig)) -> Harness {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("LIFEBOAT_LOG"))
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store"), Options::default()).unwrap();
        let mut batch = Batch::new();
        batch.push(Op::PutDomain(DomainSettings {
            name: "example.test".into(),
            // Nothing listens there: the tests never reach the upstream.
            upstream: "127.0.0.1:9".into(),
            coverage: Coverage::All,
            failover: Failover::Manual,
        }));
        batch.push(Op::SetMode {
            domain: "example.test".into(),
            mode: Mode::Emergency,
            forced: Some(Mode::Emergency),
            reason: "test".into(),
            at: lifeboat_store::now(),
        });
        batch.push(Op::AddAccount {
            address: ALICE.into(),
            password_hash: lifeboat_store::password::hash_password(ALICE_PASSWORD).unwrap(),
            role: Role::User,
            covered: true,
            recovery: None,
        });
        store.commit(batch).unwrap();

        let relay = Relay::new(
            store.clone(),
            RelayConfig {
                hostname: "mx.lifeboat.test".into(),
                relay_networks: Vec::new(),
                ..RelayConfig::default()
            },
        );
        let auth = Authenticator::new(store.clone());
        let paths = ensure_self_signed(dir.path(), "localhost").unwrap();
        let tls = TlsAcceptor::from_pem_files(&paths.cert, &paths.key).unwrap();

        let mut config =
            SmtpConfig::new(Domain::try_from("mx.lifeboat.test").unwrap(), Listener::Mx);
        config.message_bytes_max = 100_000;
        customize(&mut config);
        let mx = SmtpService::new(
            relay.clone(),
            Arc::clone(&auth),
            tls.clone(),
            config.clone(),
        );
        let submission = SmtpService::new(
            relay,
            auth,
            tls,
            SmtpConfig {
                listener: Listener::Submission,
                ..config
            },
        );
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = ServerBuilder::new(ServerConfig {
            threads: 2,
            io: io_mode(backend),
        })
        .listener(mx.listener("smtp", loopback, false), mx.handler())
        .listener(
            submission.listener("submission", loopback, false),
            submission.handler(),
        )
        .listener(
            submission.listener("submissions", loopback, true),
            submission.handler(),
        )
        .start()
        .unwrap();
        assert_eq!(server.backend(), backend);
        Harness {
            server: Some(server),
            store,
            _dir: dir,
        }
    }

    fn port(&self, listener: &str) -> u16 {
        self.server
            .as_ref()
            .unwrap()
            .local_addr(listener)
            .unwrap()
            .port()
    }

    fn connect(&self, listener: &str) -> Client {
        Client::connect(("127.0.0.1", self.port(listener)))
    }

    fn archive(&self) -> Vec<ArchiveEntry> {
        self.store.read(|s| s.archive().cloned().collect())
    }

    fn archived(&self, id: &str) -> (ArchiveEntry, String) {
        let entry = self
            .archive()
            .into_iter()
            .find(|entry| entry.id.to_string() == id)
            .unwrap_or_else(|| panic!("no archive entry {id}"));
        let body = self.store.body(entry.body).unwrap().to_vec();
        (entry, String::from_utf8(body).unwrap())
    }

    fn inbox(&self, account: &str) -> Vec<String> {
        let bodies = self.store.read(|s| {
            s.folder_by_name(account, "INBOX")
                .unwrap()
                .messages
                .values()
                .map(|m| m.body)
                .collect::<Vec<_>>()
        });
        bodies
            .into_iter()
            .map(|body| String::from_utf8(self.store.body(body).unwrap().to_vec()).unwrap())
            .collect()
    }
}

/// SMTP replies over a raw socket.
trait Replies {
    /// The next reply, all its lines, without CRLF.
    fn reply(&mut self) -> Vec<String>;
    /// The last line of the next reply.
    fn reply_line(&mut self) -> String;
}

impl Replies for Client {
    fn reply(&mut self) -> Vec<String> {
        let lines = self.lines_through(|line| line.as_bytes().get(3) != Some(&b'-'));
        lines
            .into_iter()
            .map(|line| {
                assert!(line.ends_with("\r\n"), "unterminated reply line {line:?}");
                line.trim_end().to_string()
            })
            .collect()
    }

    fn reply_line(&mut self) -> String {
        self.reply().pop().unwrap()
    }
}

/// Prints the EHLO keywords (`key` or `key=value`, sorted), before and after STARTTLS
/// when asked.
const EHLO_SCRIPT: &str = r#"
import smtplib, ssl, sys
port, mode = int(sys.argv[1]), sys.argv[2]
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
if mode == "implicit":
    s = smtplib.SMTP_SSL("127.0.0.1", port, local_hostname="client.example", context=context, timeout=20)
else:
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=20)
def show():
    code, _ = s.ehlo()
    keywords = sorted(k + ("=" + v.strip() if v.strip() else "") for k, v in s.esmtp_features.items())
    print(code, " ".join(keywords))
show()
if mode == "starttls":
    code, message = s.starttls(context=context)
    print(code, message.decode())
    show()
s.quit()
"#;

/// Sends one message with smtplib, step by step, printing each reply:
/// `MODE PORT USER PASSWORD MECHANISM FROM RCPT[,RCPT] SUBJECT`.
const SEND_SCRIPT: &str = r#"
import smtplib, ssl, sys
mode, port, user, password, mechanism, sender, rcpts, subject = sys.argv[1:9]
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
if mode == "implicit":
    s = smtplib.SMTP_SSL("127.0.0.1", int(port), local_hostname="client.example", context=context, timeout=20)
else:
    s = smtplib.SMTP("127.0.0.1", int(port), local_hostname="client.example", timeout=20)
s.ehlo()
if mode == "starttls":
    s.starttls(context=context)
    s.ehlo()
if user:
    s.user, s.password = user, password
    try:
        code, message = s.auth(mechanism, getattr(s, "auth_" + mechanism.lower()))
    except smtplib.SMTPAuthenticationError as error:
        code, message = error.smtp_code, error.smtp_error
    print("auth", code, message.decode())
code, message = s.mail(sender)
print("mail", code, message.decode())
for rcpt in rcpts.split(","):
    code, message = s.rcpt(rcpt)
    print("rcpt", code, message.decode())
body = "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nHello from smtplib.\r\n.leading dot\r\n" % (sender, rcpts, subject)
try:
    code, message = s.data(body)
except smtplib.SMTPDataError as error:
    code, message = error.smtp_code, error.smtp_error
print("data", code, message.decode())
s.quit()
"#;

/// The STARTTLS command injection attack (CVE-2011-0411) over a raw socket: MAIL and
/// RCPT ride in the same write as STARTTLS; after the handshake the first reply must
/// be the one to the client's own EHLO, and MAIL must not be "nested".
const STARTTLS_INJECTION_SCRIPT: &str = r#"
import socket, ssl, sys
port = int(sys.argv[1])
sock = socket.create_connection(("127.0.0.1", port), timeout=20)
def reply(stream):
    lines = []
    while True:
        line = b""
        while not line.endswith(b"\r\n"):
            byte = stream.recv(1)
            if not byte:
                raise SystemExit("connection closed after %r" % (lines + [line],))
            line += byte
        line = line.decode().rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return lines
print("greeting", reply(sock)[-1])
sock.sendall(b"EHLO client.example\r\n")
reply(sock)
sock.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\nRCPT TO:<alice@example.test>\r\n")
print("starttls", reply(sock)[-1])
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
tls = context.wrap_socket(sock, server_hostname="localhost")
tls.sendall(b"EHLO client.example\r\n")
print("ehlo", reply(tls)[0])
tls.sendall(b"MAIL FROM:<alice@sender.example>\r\n")
print("mail", reply(tls)[-1])
tls.sendall(b"QUIT\r\n")
print("quit", reply(tls)[-1])
"#;

fn lines(output: &str) -> Vec<&str> {
    output.lines().collect()
}

#[test]
fn ehlo_keywords_and_starttls_with_smtplib() {
    for backend in backends() {
        // A loopback client with allow_plaintext_loopback: AUTH offered in plaintext.
        let h = Harness::start(backend, |_| {});
        let output = peers::python(EHLO_SCRIPT, &[&h.port("smtp").to_string(), "starttls"]);
        assert_eq!(
            lines(&output),
            [
                "250 8bitmime auth=PLAIN LOGIN chunking enhancedstatuscodes pipelining size=100000 smtputf8 starttls",
                "220 2.0.0 Ready to start TLS",
                "250 8bitmime auth=PLAIN LOGIN chunking enhancedstatuscodes pipelining size=100000 smtputf8",
            ],
            "{backend}"
        );
        let output = peers::python(
            EHLO_SCRIPT,
            &[&h.port("submissions").to_string(), "implicit"],
        );
        assert_eq!(
            lines(&output),
            ["250 8bitmime auth=PLAIN LOGIN chunking enhancedstatuscodes pipelining size=100000 smtputf8"],
            "{backend}"
        );

        // Without it, AUTH appears only after STARTTLS.
        let h = Harness::start(backend, |config| config.allow_plaintext_loopback = false);
        let output = peers::python(
            EHLO_SCRIPT,
            &[&h.port("submission").to_string(), "starttls"],
        );
        assert_eq!(
            lines(&output),
            [
                "250 8bitmime chunking enhancedstatuscodes pipelining size=100000 smtputf8 starttls",
                "220 2.0.0 Ready to start TLS",
                "250 8bitmime auth=PLAIN LOGIN chunking enhancedstatuscodes pipelining size=100000 smtputf8",
            ],
            "{backend}"
        );
    }
}

#[test]
fn message_accepted_end_to_end_is_in_the_store() {
    for backend in backends() {
        let h = Harness::start(backend, |_| {});
        let output = peers::python(
            SEND_SCRIPT,
            &[
                "plain",
                &h.port("smtp").to_string(),
                "",
                "",
                "",
                "bob@sender.example",
                "alice@example.test,nobody@example.test,someone@elsewhere.example",
                "over the wire",
            ],
        );
        let output = lines(&output);
        assert_eq!(output[0], "mail 250 2.1.0 Ok", "{backend}");
        assert_eq!(output[1], "rcpt 250 2.1.5 Ok", "{backend}");
        assert_eq!(
            output[2], "rcpt 550 5.1.1 <nobody@example.test>: no such mailbox",
            "{backend}"
        );
        assert_eq!(
            output[3], "rcpt 550 5.7.1 relaying to <someone@elsewhere.example> denied",
            "{backend}"
        );
        let id = output[4]
            .strip_prefix("data 250 2.0.0 Ok: queued as ")
            .unwrap_or_else(|| panic!("{backend}: {output:?}"));

        // The 250 came after the commit: the archive and the portal INBOX hold it.
        let (entry, body) = h.archived(id);
        assert_eq!(entry.mail_from, "bob@sender.example");
        assert_eq!(entry.rcpt_to, ["alice@example.test"]);
        assert_eq!(entry.headers.subject, "over the wire");
        assert!(
            body.starts_with("Received: from client.example ([127.0.0.1])\r\n\tby mx.lifeboat.test (Lifeboat) with ESMTP id "),
            "{body}"
        );
        assert!(body.contains("\tfor <alice@example.test>;\r\n"), "{body}");
        assert!(
            body.ends_with("\r\n\r\nHello from smtplib.\r\n.leading dot\r\n"),
            "{body}"
        );
        assert_eq!(h.inbox(ALICE), [body], "{backend}");
    }
}

#[test]
fn pipelined_commands_after_starttls_are_not_executed() {
    for backend in backends() {
        let h = Harness::start(backend, |_| {});
        let output = peers::python(STARTTLS_INJECTION_SCRIPT, &[&h.port("smtp").to_string()]);
        assert_eq!(
            lines(&output),
            [
                "greeting 220 mx.lifeboat.test ESMTP Lifeboat",
                "starttls 220 2.0.0 Ready to start TLS",
                "ehlo 250-mx.lifeboat.test",
                "mail 250 2.1.0 Ok",
                "quit 221 2.0.0 mx.lifeboat.test closing connection",
            ],
            "{backend}"
        );
    }
}

#[test]
fn auth_over_tls_on_submission() {
    for backend in backends() {
        let h = Harness::start(backend, |config| config.allow_plaintext_loopback = false);
        // Implicit TLS, PLAIN; an authenticated client may send anywhere (outbound).
        let output = peers::python(
            SEND_SCRIPT,
            &[
                "implicit",
                &h.port("submissions").to_string(),
                ALICE,
                ALICE_PASSWORD,
                "PLAIN",
                ALICE,
                "friend@elsewhere.example,alice@example.test",
                "sent over submissions",
            ],
        );
        let output = lines(&output);
        assert_eq!(
            output[..4],
            [
                "auth 235 2.7.0 Authentication successful",
                "mail 250 2.1.0 Ok",
                "rcpt 250 2.1.5 Ok",
                "rcpt 250 2.1.5 Ok"
            ],
            "{backend}"
        );
        let id = output[4]
            .strip_prefix("data 250 2.0.0 Ok: queued as ")
            .unwrap_or_else(|| panic!("{backend}: {output:?}"));
        let (entry, body) = h.archived(id);
        assert_eq!(entry.rcpt_to, ["friend@elsewhere.example", ALICE]);
        assert!(body.contains(" with ESMTPSA id "), "{body}");
        let outbound = h.store.read(|s| {
            s.queue()
                .filter(|q| q.destination == Destination::Outbound)
                .map(|q| q.recipient.clone())
                .collect::<Vec<_>>()
        });
        assert_eq!(outbound, ["friend@elsewhere.example"], "{backend}");

        // STARTTLS, LOGIN, a wrong password.
        let output = peers::python(
            SEND_SCRIPT,
            &[
                "starttls",
                &h.port("submission").to_string(),
                ALICE,
                "wrong password",
                "LOGIN",
                ALICE,
                "alice@example.test",
                "never sent",
            ],
        );
        assert_eq!(
            lines(&output)[..2],
            [
                "auth 535 5.7.8 Authentication credentials invalid",
                "mail 530 5.7.0 Authentication required"
            ],
            "{backend}"
        );
        // STARTTLS, LOGIN, the right password.
        let output = peers::python(
            SEND_SCRIPT,
            &[
                "starttls",
                &h.port("submission").to_string(),
                ALICE,
                ALICE_PASSWORD,
                "LOGIN",
                ALICE,
                "alice@example.test",
                "login over starttls",
            ],
        );
        let output = lines(&output);
        assert_eq!(output[0], "auth 235 2.7.0 Authentication successful");
        assert!(
            output[3].starts_with("data 250 2.0.0 Ok: queued as "),
            "{backend}: {output:?}"
        );
    }
}

#[test]
fn plaintext_auth_refused_when_not_allowed() {
    for backend in backends() {
        let h = Harness::start(backend, |config| config.allow_plaintext_loopback = false);
        let mut client = h.connect("submission");
        assert_eq!(client.reply_line(), "220 mx.lifeboat.test ESMTP Lifeboat");
        client.send(b"EHLO client.example\r\n");
        let ehlo = client.reply();
        assert!(!ehlo.iter().any(|line| line.contains("AUTH")), "{ehlo:?}");
        // PLAIN for alice: the password must not even be checked.
        client.send(b"AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZSBwYXNzd29yZA==\r\n");
        assert_eq!(
            client.reply_line(),
            "538 5.7.11 Encryption required for requested authentication mechanism"
        );
        client.send(b"MAIL FROM:<alice@example.test>\r\n");
        assert_eq!(client.reply_line(), "530 5.7.0 Authentication required");
        client.send(b"QUIT\r\n");
        assert_eq!(
            client.reply_line(),
            "221 2.0.0 mx.lifeboat.test closing connection"
        );
        assert!(client.closed());

        // With plaintext allowed on loopback, the same AUTH works.
        let h = Harness::start(backend, |_| {});
        let mut client = h.connect("submission");
        client.reply_line();
        client.send(
            b"EHLO client.example\r\nAUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZSBwYXNzd29yZA==\r\n",
        );
        assert!(client.reply().contains(&"250 AUTH PLAIN LOGIN".to_string()));
        assert_eq!(client.reply_line(), "235 2.7.0 Authentication successful");
    }
}

#[test]
fn pipelining_bdat_and_smuggling_over_a_raw_socket() {
    for backend in backends() {
        let h = Harness::start(backend, |_| {});
        let mut client = h.connect("smtp");
        client.reply_line();
        // One write: EHLO, a whole envelope, DATA (RFC 2920).
        client.send(
            b"EHLO client.example\r\nMAIL FROM:<bob@sender.example>\r\n\
              RCPT TO:<nobody@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n",
        );
        assert_eq!(client.reply().last().unwrap(), "250 AUTH PLAIN LOGIN");
        assert_eq!(client.reply_line(), "250 2.1.0 Ok");
        assert_eq!(
            client.reply_line(),
            "550 5.1.1 <nobody@example.test>: no such mailbox"
        );
        assert_eq!(client.reply_line(), "250 2.1.5 Ok");
        assert_eq!(client.reply_line(), "354 End data with <CR><LF>.<CR><LF>");
        // A smuggling payload: the fake end of data and the commands behind it stay
        // inside the refused message; the NOOP after the real end runs.
        client.send(
            b"Subject: smuggle\r\n\r\nx\n.\r\nMAIL FROM:<evil@sender.example>\r\n\
              RCPT TO:<alice@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\n.\r\nNOOP\r\n",
        );
        assert_eq!(
            client.reply_line(),
            "554 5.6.0 Message refused: bare CR or LF; lines must end with CRLF"
        );
        assert_eq!(client.reply_line(), "250 2.0.0 Ok");
        assert!(h.archive().is_empty(), "{backend}: nothing was accepted");

        // BDAT, pipelined, the last chunk split over two writes.
        client.send(
            b"MAIL FROM:<bob@sender.example>\r\nRCPT TO:<alice@example.test>\r\n\
              BDAT 21\r\nSubject: chunks\r\n\r\nab",
        );
        assert_eq!(client.reply_line(), "250 2.1.0 Ok");
        assert_eq!(client.reply_line(), "250 2.1.5 Ok");
        assert_eq!(client.reply_line(), "250 2.0.0 21 octets received");
        client.send(b"BDAT 8 LAST\r\ncd\r\n");
        std::thread::sleep(Duration::from_millis(50));
        client.send(b"ef\r\n");
        let line = client.reply_line();
        let id = line
            .strip_prefix("250 2.0.0 Ok: queued as ")
            .unwrap_or_else(|| panic!("{backend}: {line}"));
        let (_, body) = h.archived(id);
        assert!(
            body.ends_with("\r\nSubject: chunks\r\n\r\nabcd\r\nef\r\n"),
            "{body}"
        );
        client.send(b"QUIT\r\n");
        assert_eq!(
            client.reply_line(),
            "221 2.0.0 mx.lifeboat.test closing connection"
        );
        assert!(client.closed());
    }
}

#[test]
fn swaks_pipelining_starttls_and_auth() {
    if Command::new("swaks").arg("--version").output().is_err() {
        println!("note: swaks is not installed (apt-get install swaks); skipped");
        return;
    }
    for backend in backends() {
        let h = Harness::start(backend, |_| {});
        let status = Command::new("swaks")
            .args(["--server", "127.0.0.1", "--port"])
            .arg(h.port("smtp").to_string())
            .args(["--helo", "client.example", "--from", "bob@sender.example"])
            .args(["--to", ALICE, "--header", "Subject: from swaks"])
            .args(["--tls", "--pipeline", "--silent", "2"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{backend}: swaks to the MX: {status}");
        let status = Command::new("swaks")
            .args(["--server", "127.0.0.1", "--port"])
            .arg(h.port("submissions").to_string())
            .args(["--tls-on-connect", "--auth", "LOGIN", "--auth-user", ALICE])
            .args(["--auth-password", ALICE_PASSWORD, "--from", ALICE])
            .args(["--to", "friend@elsewhere.example"])
            .args(["--header", "Subject: swaks submission", "--silent", "2"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{backend}: swaks submission: {status}");
        let subjects: Vec<String> = h
            .archive()
            .into_iter()
            .map(|entry| entry.headers.subject)
            .collect();
        assert_eq!(subjects, ["from swaks", "swaks submission"], "{backend}");
        let inbox = h.inbox(ALICE);
        assert_eq!(inbox.len(), 1);
        assert!(inbox[0].contains(" with ESMTPS id "), "{}", inbox[0]);
    }
}

#[test]
fn idle_timeout_and_line_limit() {
    for backend in backends() {
        let h = Harness::start(backend, |config| {
            config.idle_timeout = Duration::from_millis(500);
            config.line_bytes_max = 1000;
        });
        let mut client = h.connect("smtp");
        client.reply_line();
        let mut long = b"NOOP ".to_vec();
        long.extend(std::iter::repeat_n(b'x', 5000));
        long.extend_from_slice(b"\r\nNOOP\r\n");
        client.send(&long);
        assert_eq!(client.reply_line(), "500 5.5.2 Line too long");
        assert_eq!(client.reply_line(), "250 2.0.0 Ok");
        let started = Instant::now();
        assert_eq!(
            client.reply_line(),
            "421 4.4.2 mx.lifeboat.test Timeout exceeded, closing connection"
        );
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert!(client.closed(), "{backend}");
    }
}

#[test]
fn shutdown_says_goodbye() {
    for backend in backends() {
        let mut h = Harness::start(backend, |_| {});
        let mut client = h.connect("smtp");
        client.reply_line();
        client.send(b"EHLO client.example\r\n");
        client.reply();
        let server = h.server.take().unwrap();
        let stopper = std::thread::spawn(move || server.shutdown(Duration::from_secs(5)));
        assert_eq!(
            client.reply_line(),
            "421 4.3.2 mx.lifeboat.test Service shutting down"
        );
        assert!(client.closed());
        let report = stopper.join().unwrap();
        assert_eq!(report.connections_aborted, 0, "{backend}");
    }
}

#[test]
fn a_trickled_message_meets_the_message_timeout() {
    for backend in backends() {
        let h = Harness::start(backend, |config| {
            config.idle_timeout = Duration::from_secs(10);
            config.message_timeout = Duration::from_secs(1);
        });
        let mut client = h.connect("smtp");
        client.reply_line();
        client.send(b"EHLO client.test\r\n");
        client.reply();
        client.send(b"MAIL FROM:<a@remote.test>\r\n");
        assert_eq!(client.reply_line(), "250 2.1.0 Ok");
        client.send(format!("RCPT TO:<{ALICE}>\r\n").as_bytes());
        let rcpt = client.reply_line();
        assert!(rcpt.starts_with("250"), "{backend}: {rcpt}");
        client.send(b"DATA\r\n");
        assert!(client.reply_line().starts_with("354"));
        // One byte every 200 ms: never idle for long, but never done either.
        let started = Instant::now();
        let mut answer = String::new();
        for _ in 0..40 {
            // Look for the answer before each byte: after the server closes, a write
            // draws a reset that could discard its last reply.
            if let Some(line) = client.try_line(Duration::from_millis(50)) {
                answer = line.trim_end().to_string();
                break;
            }
            client.send(b"x");
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(answer.starts_with("421 4.4.2"), "{backend}: {answer:?}");
        assert!(started.elapsed() < Duration::from_secs(6), "{backend}");
    }
}
