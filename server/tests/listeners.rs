//! The protocol listeners of the real binary: TLS with real clients (Python's ssl and
//! poplib, openssl s_client), implicit and STARTTLS, plaintext pipelined after STARTTLS
//! discarded, connection limits, graceful shutdown; on io_uring and on epoll.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lifeboat_testkit::Client;
use support::*;

fn python(script: &str, args: &[String]) -> (bool, String) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn with_user(lifeboat: &Lifeboat) {
    ok(lifeboat.cli(
        &["domain", "add", "example.test", "--upstream", "127.0.0.1:9"],
        None,
    ));
    ok(lifeboat.cli(
        &["user", "add", "alice@example.test", "--password-stdin"],
        Some("correct horse battery\n"),
    ));
}

const POP3_TLS: &str = r#"
import poplib, ssl, sys
port_plain, port_tls = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
# Implicit TLS.
p = poplib.POP3_SSL("127.0.0.1", port_tls, context=ctx, timeout=10)
print("implicit", p.sock.version(), p.getwelcome().decode())
p.user("alice@example.test"); p.pass_("correct horse battery")
print("stat", p.stat())
p.quit()
# STARTTLS (STLS).
p = poplib.POP3("127.0.0.1", port_plain, timeout=10)
caps = p.capa()
assert "STLS" in caps, caps
p.stls(context=ctx)
print("stls", p.sock.version())
assert "STLS" not in p.capa()
p.user("alice@example.test"); p.pass_("correct horse battery")
print("stat", p.stat())
p.quit()
"#;

fn tls_handshakes(io: &str) {
    let lifeboat = Lifeboat::start(io, "");
    with_user(&lifeboat);
    let (ok, out) = python(
        POP3_TLS,
        &[
            lifeboat.ports.pop3.to_string(),
            lifeboat.ports.pop3s.to_string(),
        ],
    );
    assert!(ok, "{out}\n{}", lifeboat.log());
    assert!(out.contains("implicit TLSv1.3"), "{out}");
    assert!(out.contains("stls TLSv1.3"), "{out}");
    assert_eq!(out.matches("stat (0, 0)").count(), 2, "{out}");
    // openssl s_client, the other real client.
    if Command::new("openssl").arg("version").output().is_ok() {
        let mut child = Command::new("openssl")
            .args(["s_client", "-connect"])
            .arg(format!("127.0.0.1:{}", lifeboat.ports.pop3))
            .args(["-starttls", "pop3", "-quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"CAPA\r\nQUIT\r\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("IMPLEMENTATION") && !text.contains("STLS"),
            "{text}"
        );
    }
}

#[test]
fn tls_handshakes_with_io_uring() {
    tls_handshakes("uring");
}

#[test]
fn tls_handshakes_with_epoll() {
    tls_handshakes("epoll");
}

/// CVE-2011-0411 class: a command sent in the same packet as STLS must never run.
fn pipelined_plaintext_is_discarded(io: &str) {
    let lifeboat = Lifeboat::start(io, "");
    with_user(&lifeboat);
    let script = r#"
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
print("greeting", f.readline())
# USER would succeed in plaintext on loopback; it must not run after STLS.
s.sendall(b"STLS\r\nUSER alice@example.test\r\n")
print("stls", f.readline())
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s)
tf = t.makefile("rb")
t.sendall(b"PASS correct horse battery\r\n")
print("pass", tf.readline())
t.sendall(b"QUIT\r\n")
print("quit", tf.readline())
"#;
    let (ok, out) = python(script, &[lifeboat.ports.pop3.to_string()]);
    assert!(ok, "{out}");
    assert!(out.contains("stls b'+OK"), "{out}");
    // Had USER run, PASS would log in; instead PASS is out of sequence.
    assert!(out.contains("pass b'-ERR"), "{out}");
    let log = lifeboat.log();
    assert!(log.contains("STLS") || log.contains("discard"), "{log}");
}

#[test]
fn pipelined_plaintext_is_discarded_with_io_uring() {
    pipelined_plaintext_is_discarded("uring");
}

#[test]
fn pipelined_plaintext_is_discarded_with_epoll() {
    pipelined_plaintext_is_discarded("epoll");
}

fn connection_limits(io: &str) {
    let lifeboat = Lifeboat::start(io, "[limits]\nconnections_per_ip_max = 2\n");
    let connect = || {
        let client = Client::connect(("127.0.0.1", lifeboat.ports.pop3));
        client.set_read_timeout(Duration::from_secs(10));
        client
    };
    let mut first = connect();
    let mut second = connect();
    assert!(first.line().starts_with("+OK"));
    assert!(second.line().starts_with("+OK"));
    let mut third = connect();
    let refusal = third.line();
    assert!(refusal.starts_with("-ERR"), "{refusal:?}");
    assert_eq!(third.rest(), "", "closed after the refusal");
    // A slot frees when a session ends.
    first.send(b"QUIT\r\n");
    assert!(first.line().starts_with("+OK"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = connect();
        if again
            .try_line(Duration::from_secs(10))
            .is_some_and(|line| line.starts_with("+OK"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the slot never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn connection_limits_with_io_uring() {
    connection_limits("uring");
}

#[test]
fn connection_limits_with_epoll() {
    connection_limits("epoll");
}

fn graceful_shutdown(io: &str) {
    let mut lifeboat = Lifeboat::start(io, "");
    with_user(&lifeboat);
    let mut session = Client::connect(("127.0.0.1", lifeboat.ports.pop3));
    session.set_read_timeout(Duration::from_secs(15));
    assert!(session.line().starts_with("+OK"));
    let started = Instant::now();
    assert_eq!(lifeboat.terminate(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "shutdown took {:?}",
        started.elapsed()
    );
    // The open session was ended, not cut mid-reply.
    let rest = session.rest();
    assert!(rest.is_empty() || rest.starts_with("-ERR"), "{rest:?}");
    assert!(
        TcpStream::connect(("127.0.0.1", lifeboat.ports.pop3)).is_err(),
        "still listening"
    );
    let log = lifeboat.log();
    assert!(log.contains("protocol listeners stopped"), "{log}");
    // The store closed cleanly: the next start replays nothing.
    lifeboat.spawn();
    let log = lifeboat.log();
    assert!(log.contains("replayed=0"), "{log}");
}

#[test]
fn graceful_shutdown_with_io_uring() {
    graceful_shutdown("uring");
}

#[test]
fn graceful_shutdown_with_epoll() {
    graceful_shutdown("epoll");
}

/// A client that logs in again and again right after QUIT always finds its maildrop
/// free (the lock is released with the session, before the final reply).
#[test]
fn pop3_relogin_right_after_quit() {
    let lifeboat = Lifeboat::start("auto", "");
    with_user(&lifeboat);
    let script = r#"
import poplib, sys
for i in range(100):
    p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=10)
    p.user("alice@example.test"); p.pass_("correct horse battery")
    p.stat()
    p.quit()
print("done")
"#;
    let (ok, out) = python(script, &[lifeboat.ports.pop3.to_string()]);
    assert!(ok && out.contains("done"), "{out}");
}
