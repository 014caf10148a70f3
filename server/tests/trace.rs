//! `lifeboat trace` and `GET /api/v1/trace` (SPEC §11) through the real binary, with
//! real peers: smtplib sends, aiosmtpd (scripts/peers/upstream.py) is the customer's
//! server, imaplib and poplib read and delete in the portal. Each message's steps come
//! back in the order they happened: relayed; placed, read and deleted (IMAP, POP3);
//! placed and drained; refused and bounced.

mod support;

use std::process::Command;

use serde_json::Value;
use support::*;

#[path = "../../smtp/tests/support/upstream.rs"]
mod upstream;
use upstream::Upstream;

const PASSWORD: &str = "correct horse battery";
const FAST_ROUTER: &str = "[router]\nprobe_interval = \"200ms\"\nconnect_timeout = \"2s\"\n\
                           command_timeout = \"2s\"\n[queue]\nretry = [\"1s\"]\n";

/// Sends one message with a Message-ID of `tag`.
#[track_caller]
fn send(lifeboat: &Lifeboat, tag: &str) {
    let script = r#"
import smtplib, sys
port, tag = int(sys.argv[1]), sys.argv[2]
s = smtplib.SMTP("127.0.0.1", port, timeout=20)
s.ehlo("sender.remote.test")
msg = ("From: sender@remote.test\r\nTo: alice@example.test\r\nSubject: %s\r\n"
       "Message-ID: <%s@remote.test>\r\n\r\nHello.\r\n") % (tag, tag)
s.sendmail("sender@remote.test", ["alice@example.test"], msg)
s.quit()
print("SENT")
"#;
    let out = python(script, &[&lifeboat.ports.smtp.to_string(), tag]);
    assert!(out.contains("SENT"), "{out}");
}

/// Reads the portal message with subject `tag` over IMAP (which sets \Seen), then
/// deletes it (\Deleted, EXPUNGE).
fn read_and_delete_over_imap(lifeboat: &Lifeboat, tag: &str) {
    let script = r#"
import imaplib, sys
imap = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]), timeout=20)
imap.login("alice@example.test", sys.argv[3])
imap.select("INBOX")
typ, data = imap.uid("SEARCH", None, "SUBJECT", sys.argv[2])
uid = data[0].decode().split()[0]
typ, data = imap.uid("FETCH", uid, "(BODY[])")
assert typ == "OK", data
imap.uid("STORE", uid, "+FLAGS", "(\\Deleted)")
imap.expunge()
imap.logout()
print("DONE", uid)
"#;
    let out = python(script, &[&lifeboat.ports.imap.to_string(), tag, PASSWORD]);
    assert!(out.contains("DONE"), "{out}");
}

fn api(lifeboat: &Lifeboat, path: &str) -> Value {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-H"])
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

fn trace_cli(lifeboat: &Lifeboat, query: &str) -> Value {
    serde_json::from_str(&ok(lifeboat.cli(&["trace", query, "--json"], None))).unwrap()
}

/// The event names of the one message a trace shows.
#[track_caller]
fn events(trace: &Value) -> Vec<String> {
    let messages = trace.as_array().unwrap();
    assert_eq!(messages.len(), 1, "{trace:#}");
    messages[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["event"].as_str().unwrap().to_string())
        .collect()
}

#[track_caller]
fn step<'a>(trace: &'a Value, event: &str) -> &'a Value {
    trace[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["event"] == event)
        .unwrap_or_else(|| panic!("no {event} in {trace:#}"))
}

#[test]
fn each_message_s_life_in_order_through_the_cli_and_the_api() {
    let upstream = Upstream::start();
    let lifeboat = Lifeboat::start("auto", FAST_ROUTER);
    alice_behind(&lifeboat, &upstream.addr());

    // Relayed in normal mode.
    send(&lifeboat, "relayed");
    wait_for("the relay", || upstream.received().len() == 1);
    // Placed in the portal in an emergency, read and deleted there.
    ok(lifeboat.cli(&["mode", "example.test", "emergency"], None));
    send(&lifeboat, "deleted");
    read_and_delete_over_imap(&lifeboat, "deleted");
    send(&lifeboat, "popped");
    let out = python(
        r#"
import poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=20)
p.user("alice@example.test"); p.pass_(sys.argv[2])
assert p.stat()[0] == 1, p.stat()
p.retr(1); p.dele(1); p.quit()
print("POPPED")
"#,
        &[&lifeboat.ports.pop3.to_string(), PASSWORD],
    );
    assert!(out.contains("POPPED"), "{out}");
    // Placed in the portal, then drained when the router takes the domain back.
    send(&lifeboat, "drained");
    ok(lifeboat.cli(&["mode", "example.test", "auto"], None));
    wait_for("the drain", || upstream.received().len() == 2);
    wait_for("the drained trace", || {
        events(&trace_cli(&lifeboat, "<drained@remote.test>")).contains(&"drained".to_string())
    });

    let relayed = trace_cli(&lifeboat, "relayed@remote.test");
    assert_eq!(
        events(&relayed),
        ["accepted", "archived", "queued", "delivered"],
        "{relayed:#}"
    );
    let accepted = step(&relayed, "accepted");
    assert_eq!(accepted["listener"], "smtp", "{accepted}");
    assert_eq!(accepted["client"], "127.0.0.1", "{accepted}");
    assert_eq!(accepted["helo"], "sender.remote.test", "{accepted}");
    assert_eq!(accepted["tls"], false, "{accepted}");
    assert!(accepted["size"].as_u64().unwrap() > 50, "{accepted}");
    let detail = accepted["detail"].as_str().unwrap();
    assert!(detail.contains("example.test in normal mode"), "{detail}");
    let delivered = step(&relayed, "delivered");
    let reply = delivered["reply"].as_str().unwrap();
    assert!(
        reply.starts_with(&upstream.addr()) && reply.contains("250 2.0.0 OK"),
        "{reply}"
    );
    assert_eq!(
        step(&relayed, "archived")["id"],
        relayed[0]["archive"]["id"],
        "{relayed:#}"
    );

    let deleted = trace_cli(&lifeboat, "<deleted@remote.test>");
    assert_eq!(
        events(&deleted),
        ["accepted", "archived", "placed", "flags", "flags", "deleted"],
        "{deleted:#}"
    );
    let detail = step(&deleted, "accepted")["detail"].as_str().unwrap();
    assert!(
        detail.contains("example.test in emergency mode"),
        "{detail}"
    );
    let steps = deleted[0]["steps"].as_array().unwrap();
    assert_eq!(
        steps[3]["added"],
        serde_json::json!(["\\Seen"]),
        "{deleted:#}"
    );
    assert_eq!(
        steps[4]["added"],
        serde_json::json!(["\\Deleted"]),
        "{deleted:#}"
    );
    for s in &steps[3..] {
        assert_eq!(s["protocol"], "imap", "{s}");
        assert!(s["detail"].as_str().unwrap().contains("over IMAP"), "{s}");
    }
    assert_eq!(steps[5]["folder"], "INBOX", "{deleted:#}");

    let popped = trace_cli(&lifeboat, "popped@remote.test");
    assert_eq!(
        events(&popped),
        ["accepted", "archived", "placed", "deleted"],
        "{popped:#}"
    );
    assert_eq!(step(&popped, "deleted")["protocol"], "pop3", "{popped:#}");

    let drained = trace_cli(&lifeboat, "drained@remote.test");
    assert_eq!(
        events(&drained),
        [
            "accepted",
            "archived",
            "placed",
            "queued",
            "delivered",
            "drained"
        ],
        "{drained:#}"
    );
    assert_eq!(step(&drained, "queued")["drain"], true, "{drained:#}");
    assert_eq!(
        step(&drained, "queued")["destination"],
        serde_json::json!({"upstream": "example.test"}),
        "{drained:#}"
    );
    assert_eq!(
        step(&drained, "accepted")["modes"],
        serde_json::json!([["example.test", "emergency"]]),
        "{drained:#}"
    );
    assert_eq!(step(&drained, "archived")["direction"], "in", "{drained:#}");

    // The API says the same; an archive id and an address find messages too.
    let id = relayed[0]["archive"]["id"].as_u64().unwrap();
    assert_eq!(
        api(&lifeboat, "/trace?q=%3Cdeleted%40remote.test%3E"),
        deleted
    );
    assert_eq!(api(&lifeboat, &format!("/trace?q={id}")), relayed);
    let all = api(&lifeboat, "/trace?q=alice%40example.test");
    let subjects: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["archive"]["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        ["relayed", "deleted", "popped", "drained"],
        "{all:#}"
    );
    assert_eq!(
        api(&lifeboat, "/trace?q=alice%40example.test&since=2999-01-01"),
        serde_json::json!([])
    );
    let bad = api(&lifeboat, "/trace");
    assert!(bad["error"].as_str().unwrap().contains("q"), "{bad}");

    // The human form: one line per step, in order.
    let text = ok(lifeboat.cli(&["trace", "<deleted@remote.test>"], None));
    eprintln!(
        "{text}{}",
        ok(lifeboat.cli(&["trace", "drained@remote.test"], None))
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("archive "), "{text}");
    assert!(
        lines[1].contains("accepted on smtp from 127.0.0.1"),
        "{text}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .contains("deleted from INBOX by alice@example.test over IMAP"),
        "{text}"
    );
    fails(
        lifeboat.cli(&["trace", "<nothing@remote.test>"], None),
        "no archived message matches",
    );

    // Refused for good by the upstream: the attempt's reply and the DSN to the sender
    // (the recipient was verified earlier and is cached, so the 550 comes at delivery).
    upstream.set_mode("550");
    send(&lifeboat, "bounced");
    wait_for("the bounce", || {
        events(&trace_cli(&lifeboat, "bounced@remote.test")).contains(&"dsn".to_string())
    });
    let bounced = trace_cli(&lifeboat, "bounced@remote.test");
    assert_eq!(
        events(&bounced),
        ["accepted", "archived", "queued", "failed", "dsn"],
        "{bounced:#}"
    );
    let reply = step(&bounced, "failed")["reply"].as_str().unwrap();
    assert!(reply.contains("550 5.1.1"), "{reply}");
    assert_eq!(
        step(&bounced, "dsn")["to"],
        "sender@remote.test",
        "{bounced:#}"
    );

    // Traces survive a restart (replayed, or from the checkpoint).
    let mut lifeboat = lifeboat;
    assert_eq!(lifeboat.terminate(), Some(0));
    lifeboat.spawn();
    assert_eq!(trace_cli(&lifeboat, "drained@remote.test"), drained);
}
