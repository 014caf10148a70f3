//! DKIM (SPEC §12) through the real binary: `lifeboat domain dkim` makes the keys and
//! prints the records, smtplib submits as a portal user, aiosmtpd
//! (scripts/peers/upstream.py) is the next hop, and mail-auth verifies what reached
//! it against the records the CLI printed. Mail relayed for the customer's server is
//! never signed; rotation and disabling take effect on the next message.

mod support;

use serde_json::Value;
use support::*;

#[path = "../../smtp/tests/support/upstream.rs"]
mod upstream;
use upstream::Upstream;

const PASSWORD: &str = "correct horse battery";

/// alice@example.test submits a message with subject `tag` to bob@example.test (which
/// goes to the upstream: the domain is in normal mode).
#[track_caller]
fn submit(lifeboat: &Lifeboat, tag: &str) {
    let script = r#"
import smtplib, sys
port, tag, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = smtplib.SMTP("127.0.0.1", port, timeout=20)
s.ehlo("client.example.test")
s.login("alice@example.test", password)
msg = ("From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: %s\r\n"
       "Date: Fri, 04 Dec 2026 22:00:00 +0000\r\nMessage-ID: <%s@example.test>\r\n"
       "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
       "Hello Bob,\r\n\r\nthe report is attached.  \r\n\r\n\r\n") % (tag, tag)
s.sendmail("alice@example.test", ["bob@example.test"], msg)
s.quit()
print("SENT")
"#;
    let out = python(
        script,
        &[&lifeboat.ports.submission.to_string(), tag, PASSWORD],
    );
    assert!(out.contains("SENT"), "{out}");
}

/// The message with subject `tag` the upstream received, once it has.
fn received(upstream: &Upstream, tag: &str) -> String {
    let subject = format!("Subject: {tag}\r\n");
    let mut found = None;
    wait_for(&format!("{tag} at the upstream"), || {
        found = upstream
            .received()
            .into_iter()
            .map(|(_, _, data)| data)
            .find(|data| data.contains(&subject));
        found.is_some()
    });
    found.unwrap()
}

fn dkim(lifeboat: &Lifeboat, flag: Option<&str>) -> Value {
    let mut args = vec!["domain", "dkim", "example.test", "--json"];
    args.extend(flag);
    serde_json::from_str(&ok(lifeboat.cli(&args, None))).unwrap()
}

/// `(name, text)` of each record in `keys`.
fn records(keys: &Value) -> Vec<(String, String)> {
    keys.as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["record"]["name"].as_str().unwrap().to_string(),
                k["record"]["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn portal_users_mail_is_signed_once_enabled_and_relayed_mail_never() {
    let upstream = Upstream::start();
    let lifeboat = Lifeboat::start("auto", "");
    alice_behind(&lifeboat, &upstream.addr());

    // Keys without signing: the records to publish first.
    let text = ok(lifeboat.cli(&["domain", "dkim", "example.test"], None));
    assert!(text.contains("example.test: DKIM signing off"), "{text}");
    assert!(
        text.contains("-ed25519._domainkey.example.test. IN TXT ( \"v=DKIM1; k=ed25519; p="),
        "{text}"
    );
    assert!(
        text.contains("-rsa._domainkey.example.test. IN TXT ( \"v=DKIM1; k=rsa; p="),
        "{text}"
    );
    let made = dkim(&lifeboat, None);
    assert_eq!(made["signing"], false, "{made:#}");
    assert_eq!(made["keys"].as_array().unwrap().len(), 2, "{made:#}");
    submit(&lifeboat, "unsigned");
    let unsigned = received(&upstream, "unsigned");
    assert!(!unsigned.contains("DKIM-Signature"), "{unsigned}");

    // Enabled: both signatures verify against the records the CLI printed.
    let enabled = dkim(&lifeboat, Some("--enable"));
    assert_eq!(enabled["signing"], true, "{enabled:#}");
    assert_eq!(
        enabled["keys"], made["keys"],
        "enabling keeps the keys it has"
    );
    let published = records(&enabled["keys"]);
    submit(&lifeboat, "signed");
    let signed = received(&upstream, "signed");
    assert_eq!(signed.matches("DKIM-Signature:").count(), 2, "{signed}");
    assert!(signed.contains("d=example.test"), "{signed}");
    assert_eq!(
        lifeboat_testkit::dkim::verify(signed.as_bytes(), &published),
        ["pass", "pass"],
        "{signed}"
    );

    // Mail from the internet for the domain, relayed to the customer's server, is
    // passed on as it came: no signature added.
    let out = python(
        r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.sendmail("carol@remote.test", ["alice@example.test"],
           "From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: inbound\r\n\r\nHi.\r\n")
s.quit()
print("SENT")
"#,
        &[&lifeboat.ports.smtp.to_string()],
    );
    assert!(out.contains("SENT"), "{out}");
    let inbound = received(&upstream, "inbound");
    assert!(!inbound.contains("DKIM-Signature"), "{inbound}");
    assert!(
        inbound.ends_with(
            "From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: inbound\r\n\r\nHi.\r\n"
        ),
        "{inbound}"
    );

    // Rotated: new selectors sign; the old ones are retired and no longer used.
    let rotated = dkim(&lifeboat, Some("--rotate"));
    assert_eq!(rotated["signing"], true, "{rotated:#}");
    assert_eq!(rotated["retired"], enabled["keys"], "{rotated:#}");
    assert_ne!(rotated["keys"], enabled["keys"], "{rotated:#}");
    submit(&lifeboat, "rotated");
    let after = received(&upstream, "rotated");
    let fresh = records(&rotated["keys"]);
    assert_eq!(
        lifeboat_testkit::dkim::verify(after.as_bytes(), &fresh),
        ["pass", "pass"],
        "{after}"
    );
    for (name, _) in &published {
        let selector = name.split('.').next().unwrap();
        assert!(!after.contains(&format!("s={selector};")), "{after}");
    }

    // Disabled: unsigned again, the keys kept.
    let disabled = dkim(&lifeboat, Some("--disable"));
    assert_eq!(disabled["signing"], false, "{disabled:#}");
    assert_eq!(disabled["keys"], rotated["keys"], "{disabled:#}");
    submit(&lifeboat, "disabled");
    assert!(!received(&upstream, "disabled").contains("DKIM-Signature"));

    // The API shows no private key; the audit log names each change.
    let shown = ok(lifeboat.cli(&["domain", "dkim", "example.test", "--json"], None));
    assert!(!shown.to_lowercase().contains("private"), "{shown}");
    let audit = ok(lifeboat.cli(&["audit", "--json"], None));
    for action in [
        "domain.dkim.keys",
        "domain.dkim.enable",
        "domain.dkim.rotate",
        "domain.dkim.disable",
    ] {
        assert!(audit.contains(action), "{action} not in {audit}");
    }
    // Errors name what is wrong.
    fails(
        lifeboat.cli(&["domain", "dkim", "nowhere.test"], None),
        "nowhere.test",
    );
    fails(
        lifeboat.cli(
            &["domain", "dkim", "example.test", "--enable", "--disable"],
            None,
        ),
        "cannot be used with",
    );
}
