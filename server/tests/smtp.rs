//! The MX relay through the real binary, with real peers: Python's smtplib (and swaks)
//! as senders, aiosmtpd (scripts/peers/upstream.py) as the customer's server, poplib
//! reading the portal. Normal relay, failover, drain, and kill -9 under load.

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

// The same aiosmtpd upstream as the relay tests.
#[path = "../../smtp/tests/support/upstream.rs"]
mod upstream;
use upstream::Upstream;

const FAST_ROUTER: &str =
    "[router]\nprobe_interval = \"200ms\"\nconnect_timeout = \"2s\"\ncommand_timeout = \"1s\"\n\
                           [queue]\nretry = [\"1s\"]\n";

fn setup(io: &str, upstream: &Upstream) -> Lifeboat {
    let lifeboat = Lifeboat::start(io, FAST_ROUTER);
    ok(lifeboat.cli(
        &[
            "domain",
            "add",
            "example.test",
            "--upstream",
            &format!("127.0.0.1:{}", upstream.port),
        ],
        None,
    ));
    ok(lifeboat.cli(
        &["user", "add", "alice@example.test", "--password-stdin"],
        Some("correct horse battery\n"),
    ));
    lifeboat
}

fn status(lifeboat: &Lifeboat) -> Value {
    serde_json::from_str(&ok(lifeboat.cli(&["status", "--json"], None))).unwrap()
}

#[track_caller]
/// Sends one message with smtplib from an outside-looking sender; returns the reply.
fn send(lifeboat: &Lifeboat, rcpt: &str, subject: &str) -> String {
    let script = r#"
import smtplib, sys
port, rcpt, subject = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = smtplib.SMTP("127.0.0.1", port, timeout=20)
s.ehlo("sender.remote.test")
msg = "From: sender@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\nHello.\r\n.dotted line\r\n" % (rcpt, subject)
try:
    s.sendmail("sender@remote.test", [rcpt], msg)
    print("250")
except smtplib.SMTPRecipientsRefused as e:
    print("refused", e.recipients)
s.quit()
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(lifeboat.ports.smtp.to_string())
        .arg(rcpt)
        .arg(subject)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Subjects of the portal INBOX, read with poplib; deletes those listed in `delete`.
fn pop3_subjects(lifeboat: &Lifeboat, delete: &[&str]) -> Vec<String> {
    let script = r#"
import poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=20)
p.user("alice@example.test"); p.pass_("correct horse battery")
delete = set(sys.argv[2:])
for i in range(1, p.stat()[0] + 1):
    lines = p.retr(i)[1]
    subject = [l.decode()[9:] for l in lines if l.startswith(b"Subject: ")][0]
    print("SUBJECT", subject)
    if subject in delete:
        p.dele(i)
p.quit()
"#;
    let port = lifeboat.ports.pop3.to_string();
    let args: Vec<&str> = std::iter::once(port.as_str())
        .chain(delete.iter().copied())
        .collect();
    python(script, &args)
        .lines()
        .filter_map(|l| l.strip_prefix("SUBJECT ").map(str::to_string))
        .collect()
}

#[test]
fn relay_failover_portal_and_drain_through_the_binary() {
    let upstream = Upstream::start();
    let lifeboat = setup("auto", &upstream);

    // Normal mode: relayed to the upstream, once, with a Received header.
    assert!(send(&lifeboat, "alice@example.test", "normal one").starts_with("250"));
    wait_for("relay", || upstream.received().len() == 1);
    let relayed = &upstream.received()[0].2;
    assert!(
        relayed.contains("Received: from sender.remote.test"),
        "{relayed}"
    );
    assert!(relayed.contains("\r\n.dotted line\r\n"), "{relayed}");
    // No open relay.
    let refused = send(&lifeboat, "someone@elsewhere.test", "relay attempt");
    // smtplib connects from 127.0.0.1, which is in relay_networks: it may relay.
    assert!(refused.starts_with("250"), "{refused}");

    // The upstream defers: emergency, and the mail lands in the portal.
    upstream.set_mode("451");
    assert!(send(&lifeboat, "alice@example.test", "outage one").starts_with("250"));
    wait_for("emergency", || {
        status(&lifeboat)["domains"][0]["mode"] == "emergency"
    });
    assert!(send(&lifeboat, "alice@example.test", "outage two").starts_with("250"));
    assert!(send(&lifeboat, "alice@example.test", "outage three").starts_with("250"));
    wait_for("portal", || {
        status(&lifeboat)["domains"][0]["portal_inbox_messages"] == 3
    });
    let st = status(&lifeboat);
    assert_eq!(st["domains"][0]["upstream_health"], "down");
    assert!(st["counters"]["failed_over"].as_u64().unwrap() >= 1, "{st}");
    // An unregistered address is refused in an emergency.
    let unknown = send(&lifeboat, "nobody@example.test", "unknown");
    assert!(
        unknown.contains("refused") && unknown.contains("550"),
        "{unknown}"
    );

    // The user reads the portal with POP3 and deletes one message.
    let subjects = pop3_subjects(&lifeboat, &["outage two"]);
    assert_eq!(subjects, vec!["outage one", "outage two", "outage three"]);

    // The upstream is back: the drain delivers the rest exactly once.
    upstream.set_mode("accept");
    wait_for("normal mode", || {
        status(&lifeboat)["domains"][0]["mode"] == "normal"
    });
    wait_for("drain", || {
        status(&lifeboat)["domains"][0]["portal_inbox_messages"] == 0
    });
    std::thread::sleep(Duration::from_secs(1));
    let received = upstream.received();
    let subjects: Vec<&str> = received
        .iter()
        .map(|m| {
            m.2.lines()
                .find(|l| l.starts_with("Subject: "))
                .unwrap_or("")[9..]
                .trim()
        })
        .collect();
    // "normal one" and the two drained; the relay attempt went to elsewhere.test.
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    assert!(subjects.contains(&"outage one") && subjects.contains(&"outage three"));
    assert!(
        !subjects.contains(&"outage two"),
        "deleted mail was redelivered"
    );
    let st = status(&lifeboat);
    assert_eq!(st["domains"][0]["queue_depth"], 0);
    assert_eq!(st["domains"][0]["upstream_health"], "up");
}

#[test]
fn swaks_relays_with_starttls_and_pipelining() {
    if Command::new("swaks").arg("--version").output().is_err() {
        eprintln!("swaks is not installed (apt-get install swaks); scripts/test installs it");
        return;
    }
    let upstream = Upstream::start();
    let lifeboat = setup("epoll", &upstream);
    let out = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port"])
        .arg(lifeboat.ports.smtp.to_string())
        .args([
            "--from",
            "sender@remote.test",
            "--to",
            "alice@example.test",
            "--tls",
            "--pipeline",
            "--header",
            "Subject: via swaks",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("250 2.0.0"), "{text}");
    wait_for("relay", || upstream.received().len() == 1);
    assert!(upstream.received()[0].2.contains("Subject: via swaks"));
}

/// SPEC §3: kill -9 during a load; after a restart every message that got a 250 is
/// delivered to the upstream or waiting in the queue to be, and then delivered.
#[test]
fn kill_9_under_load_loses_nothing_acknowledged() {
    let upstream = Upstream::start();
    let mut lifeboat = setup("auto", &upstream);
    let load = r#"
import smtplib, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
lock = threading.Lock()
def worker(t):
    i = 0
    failures = 0
    while failures < 20:
        try:
            s = smtplib.SMTP("127.0.0.1", port, timeout=10)
            failures = 0
            while True:
                subject = "load-%d-%d" % (t, i)
                msg = "From: s@remote.test\r\nTo: alice@example.test\r\nSubject: %s\r\n\r\n%s" % (subject, ("x" * 70 + "\r\n") * 30)
                s.sendmail("s@remote.test", ["alice@example.test"], msg)
                with lock:
                    print("ACK", subject, flush=True)
                i += 1
        except ConnectionRefusedError:
            # The server is gone (killed): stop.
            return
        except Exception:
            # The session ended (transaction limit, kill mid-reply): reconnect.
            failures += 1
threads = [threading.Thread(target=worker, args=(t,)) for t in range(n)]
for t in threads: t.start()
for t in threads: t.join()
"#;
    let mut sender = Command::new("python3")
        .arg("-c")
        .arg(load)
        .arg(lifeboat.ports.smtp.to_string())
        .arg("8")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = sender.stdout.take().unwrap();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let seen = acked.clone();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { break };
            if let Some(subject) = line.strip_prefix("ACK ") {
                seen.lock().unwrap().insert(subject.to_string());
            }
        }
    });
    // The kill comes under load: once the first acknowledgements are in, however long
    // a busy machine takes to get there, and then a while later.
    wait_for("the first acknowledgements", || {
        acked.lock().unwrap().len() >= 10
    });
    std::thread::sleep(Duration::from_millis(500));
    let child = lifeboat.child.take().unwrap();
    unsafe_kill(child.id(), 9);
    let mut child = child;
    child.wait().unwrap();
    let _ = sender.wait();
    reader.join().unwrap();
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.len() >= 10, "{} acknowledged", acked.len());
    lifeboat.spawn();
    let delivered = || -> BTreeSet<String> {
        upstream
            .received()
            .iter()
            .filter_map(|m| {
                m.2.lines()
                    .find(|l| l.starts_with("Subject: "))
                    .map(|l| l[9..].trim().to_string())
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let count = || {
        std::fs::read_dir(upstream.state.path().join("mail"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    while count() < acked.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    while !acked.iter().all(|s| delivered().contains(s)) {
        if Instant::now() > deadline {
            let have = delivered();
            let missing: Vec<&String> = acked.iter().filter(|s| !have.contains(*s)).collect();
            panic!(
                "{} of {} acknowledged messages never reached the upstream: {missing:?}\nstatus: {}\n{}",
                missing.len(),
                acked.len(),
                status(&lifeboat),
                lifeboat.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for("an empty queue", || {
        status(&lifeboat)["domains"][0]["queue_depth"] == 0
    });
    // The archive's text search (its index reopened after the kill, and catching up)
    // finds acknowledged messages: a sample of 40, each by the words of its subject.
    let step = (acked.len() / 40).max(1);
    for subject in acked.iter().step_by(step) {
        let words = subject.replace('-', "+");
        let out = Command::new("curl")
            .args(["-sS", "-H"])
            .arg(format!("Authorization: Bearer {}", lifeboat.token()))
            .arg(format!(
                "http://127.0.0.1:{}/api/v1/archive?text={words}&limit=1000",
                lifeboat.ports.http
            ))
            .output()
            .unwrap();
        let archived: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            archived
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["subject"] == subject.as_str()),
            "{subject} not found by its words: {archived}"
        );
    }
    eprintln!(
        "{} acknowledged before kill -9, {} delivered (duplicates allowed: at-least-once)",
        acked.len(),
        upstream.received().len()
    );
}
