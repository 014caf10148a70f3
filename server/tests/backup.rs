//! `lifeboat backup DIR` (SPEC §11) through the real binary: taken while a client
//! sends mail without pause, it is a data directory that `lifeboat serve` starts from,
//! holding every message whose 250 arrived before the backup began.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// One SMTP reply's code (multi-line replies read through).
fn reply(reader: &mut BufReader<TcpStream>) -> u16 {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return 0;
        }
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            return line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        }
    }
}

/// Sends numbered messages to alice on one connection until `stop`; records when each
/// 250 arrived.
fn sender(port: u16, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<(u32, Instant)>>>) {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    assert_eq!(reply(&mut reader), 220);
    writer.write_all(b"EHLO sender.remote.test\r\n").unwrap();
    assert_eq!(reply(&mut reader), 250);
    // Bodies of a few KiB, so that the store has some bytes to copy.
    let filler = "All work and no play makes a dull message. ".repeat(100);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        writer
            .write_all(b"MAIL FROM:<sender@remote.test>\r\nRCPT TO:<alice@example.test>\r\n")
            .unwrap();
        assert_eq!(reply(&mut reader), 250);
        assert_eq!(reply(&mut reader), 250);
        writer.write_all(b"DATA\r\n").unwrap();
        assert_eq!(reply(&mut reader), 354);
        let message = format!(
            "From: sender@remote.test\r\nTo: alice@example.test\r\nSubject: load {n}\r\n\r\n{filler}\r\n.\r\n"
        );
        writer.write_all(message.as_bytes()).unwrap();
        let code = reply(&mut reader);
        assert_eq!(code, 250, "message {n}");
        acked.lock().unwrap().push((n, Instant::now()));
    }
    writer.write_all(b"QUIT\r\n").unwrap();
}

fn subjects(lifeboat: &Lifeboat) -> BTreeSet<u32> {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "60", "-H"])
        .arg(format!("Authorization: Bearer {}", lifeboat.token()))
        .arg(format!(
            "http://127.0.0.1:{}/api/v1/archive?subject=load&limit=1000",
            lifeboat.ports.http
        ))
        .output()
        .expect("curl (scripts/test installs it)");
    let hits: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    hits.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            h["subject"].as_str().unwrap()["load ".len()..]
                .parse()
                .unwrap()
        })
        .collect()
}

#[test]
fn a_backup_under_load_restores_every_acknowledged_message() {
    let lifeboat = Lifeboat::start("auto", "");
    alice_in_an_emergency(&lifeboat);

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let load = {
        let (stop, acked, port) = (stop.clone(), acked.clone(), lifeboat.ports.smtp);
        std::thread::spawn(move || sender(port, stop, acked))
    };
    wait_for("the load to run", || acked.lock().unwrap().len() >= 50);

    let restored = Lifeboat::configure("auto", "");
    let began = Instant::now();
    let out = ok(lifeboat.cli(&["backup", restored.data_dir().to_str().unwrap()], None));
    let took = began.elapsed();
    // Mail went on being accepted while the backup ran.
    let during = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| *at > began && *at < began + took)
        .count();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    let before: BTreeSet<u32> = acked
        .iter()
        .filter(|(_, at)| *at < began)
        .map(|(n, _)| *n)
        .collect();
    eprintln!(
        "backup took {} ms; {} messages acknowledged before it began, {during} while it ran, {} in all\n{out}",
        took.as_millis(),
        before.len(),
        acked.len()
    );
    assert!(out.contains("backup in "), "{out}");
    assert!(out.contains("admin.token"), "{out}");
    assert!(during > 0, "no mail was accepted during the backup");
    fails(
        lifeboat.cli(&["backup", restored.data_dir().to_str().unwrap()], None),
        "is not empty",
    );

    // A server on the copy: every message acknowledged before the backup began is
    // there, in the archive and in alice's portal INBOX, and nothing more than was sent.
    let mut restored = restored;
    restored.spawn();
    assert_eq!(restored.token(), lifeboat.token());
    let found = subjects(&restored);
    let missing: Vec<&u32> = before.difference(&found).collect();
    assert!(missing.is_empty(), "missing after restore: {missing:?}");
    let sent: BTreeSet<u32> = (1..=acked.len() as u32 + 1).collect();
    assert!(found.is_subset(&sent), "{found:?}");
    let status: Value =
        serde_json::from_str(&ok(restored.cli(&["status", "--json"], None))).unwrap();
    let portal = status["domains"][0]["portal_inbox_messages"]
        .as_u64()
        .unwrap();
    assert_eq!(portal, found.len() as u64, "{status:#}");
    // The archive's text index is rebuilt on the copy.
    let text: Value = serde_json::from_str(&ok(restored.cli(
        &["archive", "search", "--text", "dull message", "--json"],
        None,
    )))
    .unwrap();
    assert!(!text.as_array().unwrap().is_empty(), "{text}");
    // And the copy takes new mail.
    let python_out = python(
        r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.sendmail("sender@remote.test", ["alice@example.test"], "Subject: load 999999\r\n\r\nafter\r\n")
s.quit()
print("SENT")
"#,
        &[&restored.ports.smtp.to_string()],
    );
    assert!(python_out.contains("SENT"), "{python_out}");
    assert!(subjects(&restored).contains(&999_999));
}
