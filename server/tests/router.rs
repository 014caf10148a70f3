//! The failover router (SPEC §1) through the real binary, against a real upstream
//! (aiosmtpd, scripts/peers/upstream.py): a forced emergency released to a healthy
//! upstream comes back to normal and drains at once; an upstream that greets but
//! defers every recipient stays down without flapping; a flapping upstream is damped.
//! (smtp/tests/failover.rs checks the same rules on the pure state machine.)

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

#[path = "../../smtp/tests/support/upstream.rs"]
mod upstream;
use upstream::Upstream;

/// Protects example.test (automatic failover) with the covered account alice.
fn setup(upstream: &Upstream, router: &str) -> Lifeboat {
    let lifeboat = Lifeboat::start(
        "auto",
        &format!("[router]\n{router}connect_timeout = \"2s\"\ncommand_timeout = \"2s\"\n[queue]\nretry = [\"1s\"]\n"),
    );
    alice_behind(&lifeboat, &upstream.addr());
    lifeboat
}

fn api(lifeboat: &Lifeboat, path: &str) -> Value {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-H"])
        .arg(format!("Authorization: Bearer {}", lifeboat.token()))
        .arg(format!(
            "http://127.0.0.1:{}/api/v1{path}",
            lifeboat.ports.http
        ))
        .output()
        .expect("curl (scripts/test installs it)");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The domain's status through the API (cheaper than the CLI for polling).
fn status(lifeboat: &Lifeboat) -> Value {
    api(lifeboat, "/status")["domains"][0].clone()
}

/// Sends `subjects` to alice in one SMTP session.
#[track_caller]
fn send(lifeboat: &Lifeboat, subjects: &[&str]) {
    let script = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
for subject in sys.argv[2:]:
    s.sendmail("sender@remote.test", ["alice@example.test"],
               "From: sender@remote.test\r\nTo: alice@example.test\r\nSubject: %s\r\n\r\nHi.\r\n" % subject)
s.quit()
print("SENT")
"#;
    let port = lifeboat.ports.smtp.to_string();
    let args: Vec<&str> = std::iter::once(port.as_str())
        .chain(subjects.iter().copied())
        .collect();
    let out = python(script, &args);
    assert!(out.contains("SENT"), "{out}");
}

/// The domain's mode transitions, oldest first, as `from->to`.
fn transitions(lifeboat: &Lifeboat) -> Vec<String> {
    let mut v: Vec<String> = api(lifeboat, "/domains/example.test/history")
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{}->{}", m["from"], m["to"]).replace('"', ""))
        .collect();
    v.reverse();
    v
}

#[test]
fn releasing_a_forced_emergency_to_a_healthy_upstream_drains_within_two_seconds() {
    let upstream = Upstream::start();
    let lifeboat = setup(&upstream, "probe_interval = \"1s\"\n");
    wait_for("the upstream probed up", || {
        status(&lifeboat)["upstream_health"] == "up"
    });
    ok(lifeboat.cli(&["mode", "example.test", "emergency"], None));
    send(&lifeboat, &["one", "two", "three"]);
    wait_for("the portal", || {
        status(&lifeboat)["portal_inbox_messages"] == 3
    });
    assert!(upstream.received().is_empty());

    let released = Instant::now();
    ok(lifeboat.cli(&["mode", "example.test", "auto"], None));
    let mut normal_after = None;
    let drained_after = loop {
        let domain = status(&lifeboat);
        if normal_after.is_none() && domain["mode"] == "normal" {
            normal_after = Some(released.elapsed());
        }
        if domain["mode"] == "normal"
            && domain["portal_inbox_messages"] == 0
            && upstream.received().len() == 3
        {
            break released.elapsed();
        }
        assert!(
            released.elapsed() < Duration::from_secs(10),
            "not drained after 10 s: {domain:#}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let normal_after = normal_after.unwrap();
    eprintln!(
        "released: normal after {} ms, portal drained after {} ms",
        normal_after.as_millis(),
        drained_after.as_millis()
    );
    assert!(
        drained_after < Duration::from_secs(2),
        "drained after {} ms",
        drained_after.as_millis()
    );
    let domain = status(&lifeboat);
    assert_eq!(domain["forced"], Value::Null, "{domain:#}");
    assert_eq!(domain["queue_depth"], 0, "{domain:#}");
}

/// How long the no-flapping test watches (SPEC: two minutes); shorter for a quick
/// local run with `LIFEBOAT_TEST_NO_FLAP_SECS`.
fn watch_for() -> Duration {
    Duration::from_secs(
        std::env::var("LIFEBOAT_TEST_NO_FLAP_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(120),
    )
}

#[test]
fn an_upstream_deferring_every_recipient_stays_down_without_flapping() {
    let upstream = Upstream::start();
    upstream.set_mode("451-rcpt");
    let lifeboat = setup(&upstream, "probe_interval = \"1s\"\n");
    wait_for("emergency", || status(&lifeboat)["mode"] == "emergency");
    send(&lifeboat, &["during the outage"]);

    let started = Instant::now();
    let mut probes = std::collections::BTreeSet::new();
    while started.elapsed() < watch_for() {
        let domain = status(&lifeboat);
        assert_eq!(domain["mode"], "emergency", "{domain:#}");
        assert_eq!(domain["upstream_health"], "down", "{domain:#}");
        let router = &domain["upstream_router"];
        assert_eq!(router["good_probes"], 0, "{domain:#}");
        if let Some(at) = router["last_probe"]["at"].as_i64() {
            assert_eq!(router["last_probe"]["ok"], false, "{domain:#}");
            probes.insert(at);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let domain = status(&lifeboat);
    let failure = domain["upstream_router"]["last_probe"]["failure"]
        .as_str()
        .unwrap();
    assert!(failure.contains("451"), "{failure}");
    // Probed about once a second all along, and never back.
    let seconds = watch_for().as_secs() as usize;
    assert!(
        probes.len() >= seconds * 2 / 3,
        "{} probes seen in {seconds} s",
        probes.len()
    );
    assert_eq!(
        transitions(&lifeboat),
        ["null->normal", "normal->emergency"],
        "{domain:#}"
    );
    assert_eq!(domain["portal_inbox_messages"], 1, "{domain:#}");
    assert!(upstream.received().is_empty());
    eprintln!(
        "{} probes in {} s, all failed ({failure}); mode stayed emergency",
        probes.len(),
        started.elapsed().as_secs()
    );
}

#[test]
fn a_flapping_upstream_is_damped() {
    let upstream = Upstream::start();
    let lifeboat = setup(&upstream, "probe_interval = \"300ms\"\nup_after = 2\n");
    wait_for("normal", || status(&lifeboat)["upstream_health"] == "up");

    // Down, then back after the usual two good probes: no damping yet (the first
    // good news after a start is not a return).
    let fail = |subject: &str| {
        upstream.set_mode("451");
        send(&lifeboat, &[subject]);
        wait_for("emergency", || status(&lifeboat)["mode"] == "emergency");
    };
    fail("first outage");
    let domain = status(&lifeboat);
    assert_eq!(domain["upstream_router"]["probes_needed"], 2, "{domain:#}");
    assert_eq!(domain["upstream_router"]["damped"], false, "{domain:#}");
    upstream.set_mode("accept");
    wait_for("normal", || status(&lifeboat)["mode"] == "normal");

    // Down again within ten minutes of coming up: twice as many probes next time.
    fail("second outage");
    let domain = status(&lifeboat);
    let router = &domain["upstream_router"];
    assert_eq!(router["probes_needed"], 4, "{domain:#}");
    assert_eq!(router["damped"], true, "{domain:#}");
    // The CLI shows the same.
    let cli: Value = serde_json::from_str(&ok(lifeboat.cli(&["status", "--json"], None))).unwrap();
    assert_eq!(
        cli["domains"][0]["upstream_router"]["damped"], true,
        "{cli:#}"
    );

    // Back: it stays in emergency until four good probes in a row.
    upstream.set_mode("accept");
    let back = Instant::now();
    let mut most_good = 0;
    loop {
        let domain = status(&lifeboat);
        if domain["mode"] == "normal" {
            break;
        }
        most_good = most_good.max(domain["upstream_router"]["good_probes"].as_u64().unwrap());
        assert!(back.elapsed() < Duration::from_secs(20), "{domain:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = back.elapsed();
    eprintln!(
        "damped return: normal after {} ms, {most_good} good probes seen before",
        took.as_millis()
    );
    assert!(
        most_good >= 2,
        "saw at most {most_good} good probes before normal"
    );
    // Four probes 300 ms apart: at least three intervals.
    assert!(
        took >= Duration::from_millis(900),
        "{} ms",
        took.as_millis()
    );

    // A third time: eight.
    fail("third outage");
    let domain = status(&lifeboat);
    assert_eq!(domain["upstream_router"]["probes_needed"], 8, "{domain:#}");
    let history = transitions(&lifeboat);
    assert_eq!(
        history,
        [
            "null->normal",
            "normal->emergency",
            "emergency->normal",
            "normal->emergency",
            "emergency->normal",
            "normal->emergency",
        ],
        "{domain:#}"
    );
}
