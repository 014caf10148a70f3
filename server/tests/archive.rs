//! `lifeboat archive search|show|redeliver` (SPEC §4, §7) against the real binary:
//! mail sent with smtplib is found by sender, subject, text and date, shown with its
//! attachment listed, and re-delivered to the portal in an emergency.

mod support;

use serde_json::Value;
use support::*;

#[test]
fn archive_search_show_and_redeliver() {
    let lifeboat = Lifeboat::start("auto", "");
    // Emergency first, so nothing depends on an upstream: the message lands in the
    // portal, and the archive keeps its copy.
    alice_in_an_emergency(&lifeboat);
    let script = r#"
import smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "Carol <carol@remote.test>"
m["To"] = "alice@example.test"
m["Subject"] = "Quarterly figures"
m.set_content("The numbers are attached. Codeword: pelican.")
m.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="figures.csv")
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.send_message(m, from_addr="carol@remote.test", to_addrs=["alice@example.test"])
s.quit()
"#;
    python(script, &[&lifeboat.ports.smtp.to_string()]);

    let search = |args: &[&str]| -> Value {
        let mut all = vec!["archive", "search", "--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&ok(lifeboat.cli(&all, None))).unwrap()
    };
    let hits = search(&["--from", "carol"]);
    assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");
    let id = hits[0]["id"].as_u64().unwrap().to_string();
    assert_eq!(hits[0]["direction"], "in");
    assert_eq!(hits[0]["subject"], "Quarterly figures");
    assert_eq!(
        search(&["--subject", "quarterly", "--to", "alice"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(search(&["--text", "PELICAN"]).as_array().unwrap().len(), 1);
    // The index's own chatter (commits, garbage collection) stays out of the log.
    let log = lifeboat.log();
    assert!(!log.contains("tantivy"), "{log}");
    assert_eq!(
        search(&["--text", "albatross"]).as_array().unwrap().len(),
        0
    );
    assert_eq!(
        search(&["--since", "2000-01-01", "--until", "2999-01-01"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        search(&["--until", "2000-01-01"]).as_array().unwrap().len(),
        0
    );
    assert_eq!(search(&["--direction", "out"]).as_array().unwrap().len(), 0);
    fails(
        lifeboat.cli(&["archive", "search", "--since", "yesterday"], None),
        "YYYY-MM-DD",
    );
    let table = ok(lifeboat.cli(&["archive", "search"], None));
    assert!(table.contains("Quarterly figures"), "{table}");

    let view: Value =
        serde_json::from_str(&ok(lifeboat.cli(&["archive", "show", &id, "--json"], None))).unwrap();
    assert!(view["header"]
        .as_str()
        .unwrap()
        .contains("Subject: Quarterly figures"));
    assert!(view["text"].as_str().unwrap().contains("Codeword: pelican"));
    assert_eq!(view["attachments"][0]["name"], "figures.csv");
    assert_eq!(view["attachments"][0]["type"], "text/csv");
    let shown = ok(lifeboat.cli(&["archive", "show", &id], None));
    assert!(shown.contains("[attachment] figures.csv"), "{shown}");
    fails(
        lifeboat.cli(&["archive", "show", "999999"], None),
        "no archived message",
    );

    // Re-delivery in an emergency: a second copy in the portal INBOX.
    let portal = || {
        let status: Value =
            serde_json::from_str(&ok(lifeboat.cli(&["status", "--json"], None))).unwrap();
        status["domains"][0]["portal_inbox_messages"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(portal(), 1);
    let out = ok(lifeboat.cli(&["archive", "redeliver", &id], None));
    assert!(out.contains("re-delivered to alice@example.test"), "{out}");
    assert_eq!(portal(), 2);

    // Text search reads decoded text: Python encodes this body (non-ASCII) with a
    // transfer encoding, and the HTML part is reduced to its words.
    let script = r#"
import smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "dieter@remote.test"
m["To"] = "alice@example.test"
m["Subject"] = "=?utf-8?q?Gr=C3=BC=C3=9Fe?="
m.set_content("Viele Grüße aus München, wegen der Rechnung.", cte="base64")
m.add_alternative("<p>Viele Gr&uuml;&szlig;e aus <b>M&uuml;nchen</b></p>", subtype="html")
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.send_message(m, from_addr="dieter@remote.test", to_addrs=["alice@example.test"])
s.quit()
"#;
    python(script, &[&lifeboat.ports.smtp.to_string()]);
    for words in ["münchen", "MUNCHEN rechnung", "rechn", "grüße"] {
        let hits = search(&["--text", words]);
        assert_eq!(hits.as_array().unwrap().len(), 1, "{words}: {hits}");
        assert_eq!(hits[0]["mail_from"], "dieter@remote.test");
    }
    assert_eq!(search(&["--text", "VmllbGU"]).as_array().unwrap().len(), 0);

    // Status and metrics show the index catching up with the archive.
    wait_for("the index to catch up", || {
        let status: Value =
            serde_json::from_str(&ok(lifeboat.cli(&["status", "--json"], None))).unwrap();
        status["archive_index"]["pending"] == 0
            && status["archive_index"]["indexed_through"].as_u64() > Some(0)
    });
    let token = lifeboat.token();
    let fetch_metrics = || {
        let output = std::process::Command::new("curl")
            .args(["-sS", "-H", &format!("Authorization: Bearer {token}")])
            .arg(format!(
                "http://127.0.0.1:{}/api/v1/metrics",
                lifeboat.ports.http
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let metrics = fetch_metrics();
    assert!(
        metrics.contains("lifeboat_archive_index_pending 0\n"),
        "{metrics}"
    );
    // The two messages' latencies: from the end of their data to the relay's answer
    // and to the 250 written, and every commit's stages.
    let value = |metrics: &str, series: &str| -> f64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("no {series} in {metrics}"));
        line[series.len() + 1..].parse().unwrap()
    };
    for name in ["smtp_accept", "smtp_reply"] {
        assert_eq!(
            value(&metrics, &format!("lifeboat_{name}_seconds_count")),
            2.0
        );
        assert_eq!(
            value(
                &metrics,
                &format!("lifeboat_{name}_seconds_bucket{{le=\"+Inf\"}}")
            ),
            2.0
        );
        assert!(value(&metrics, &format!("lifeboat_{name}_seconds_sum")) > 0.0);
    }
    assert!(
        value(&metrics, "lifeboat_smtp_reply_seconds_sum")
            >= value(&metrics, "lifeboat_smtp_accept_seconds_sum")
    );
    for stage in ["queue", "sync", "apply", "wake", "total"] {
        let count = value(
            &metrics,
            &format!("lifeboat_commit_seconds_count{{stage=\"{stage}\"}}"),
        );
        assert!(count >= 2.0, "{stage}: {count}");
    }
    assert!(metrics.contains("# TYPE lifeboat_commit_seconds histogram\n"));

    // A QUIT pipelined after the data: the 250 leaves with the 221, and is counted.
    let script = r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline()
        if line[3:4] != b"-":
            return line
assert reply().startswith(b"220")
s.sendall(b"EHLO client.remote.test\r\n")
assert reply().startswith(b"250")
s.sendall(b"MAIL FROM:<erin@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
for code in (b"250", b"250", b"354"):
    assert reply().startswith(code)
s.sendall(b"Subject: pipelined\r\n\r\nbye\r\n.\r\nQUIT\r\n")
print(reply().decode().strip(), reply().decode().strip())
"#;
    let replies = python(script, &[&lifeboat.ports.smtp.to_string()]);
    assert!(
        replies.starts_with("250 ") && replies.contains(" 221 "),
        "{replies}"
    );
    // Counted once the connection is closed, which the client may see first.
    wait_for("the third message's latencies", || {
        let metrics = fetch_metrics();
        ["smtp_accept", "smtp_reply"]
            .iter()
            .all(|name| value(&metrics, &format!("lifeboat_{name}_seconds_count")) == 3.0)
    });
}
