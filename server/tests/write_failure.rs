//! SPEC §3 when the disk fails: the real binary runs with a file size limit, so a
//! write into the store's log fails (EFBIG, as on a full disk). The message being
//! accepted then gets a temporary failure, never a 250; the server stops by itself with
//! a non-zero status (a supervisor restarts it); after the restart every message that
//! got a 250 is in the portal, and the server takes mail again.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const SEND: &str = r#"
import smtplib, sys
port, count, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
line = ("x" * 76 + "\r\n").encode()
body = line * (size // len(line))
for i in range(count):
    msg = b"From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: n%d\r\n\r\n" % i + body
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=30)
        s.sendmail("carol@remote.test", ["alice@example.test"], msg)
        s.quit()
        print("250", i, flush=True)
    except (smtplib.SMTPException, OSError) as e:
        print("refused", i, repr(e), flush=True)
        break
"#;

fn portal_messages(lifeboat: &Lifeboat) -> u64 {
    let status: Value =
        serde_json::from_str(&ok(lifeboat.cli(&["status", "--json"], None))).unwrap();
    status["domains"][0]["portal_inbox_messages"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_failed_write_refuses_the_message_stops_the_server_and_loses_nothing() {
    let mut lifeboat = Lifeboat::start("auto", "");
    alice_in_an_emergency(&lifeboat);
    assert_eq!(lifeboat.terminate(), Some(0));

    // No file may pass 4 MiB: the log's segment reaches it after a few messages.
    lifeboat.spawn_with_file_size_limit(4096);
    let out = python(
        SEND,
        &[
            &lifeboat.ports.smtp.to_string(),
            "40",
            &(300 * 1024).to_string(),
        ],
    );
    let accepted = out.lines().filter(|l| l.starts_with("250 ")).count() as u64;
    let refused = out
        .lines()
        .find(|l| l.starts_with("refused "))
        .unwrap_or("");
    assert!(
        refused.contains("451") || refused.contains("421"),
        "the failed write must be a temporary refusal: {out}\n{}",
        lifeboat.log()
    );
    assert!(accepted >= 2, "{out}");

    // It stops by itself, non-zero, saying why.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = lifeboat.child.as_mut().unwrap().try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running with a poisoned store:\n{}",
            lifeboat.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    lifeboat.child = None;
    assert!(!status.success(), "{status}");
    let log = lifeboat.log();
    assert!(log.contains("refuses writes"), "{log}");

    // Restarted without the limit: everything that got a 250 is there, and new mail
    // is taken.
    lifeboat.spawn();
    assert_eq!(portal_messages(&lifeboat), accepted, "{out}");
    let more = python(SEND, &[&lifeboat.ports.smtp.to_string(), "1", "1000"]);
    assert!(more.starts_with("250 "), "{more}");
    assert_eq!(portal_messages(&lifeboat), accepted + 1);
}
