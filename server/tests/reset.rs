//! Password resets (SPEC §5) through the real binary: the code goes by mail (aiosmtpd
//! plays the recovery address's server, and the customer's), works once, and sets a
//! password that then logs in; unknown addresses look the same from outside; without
//! a recovery address during an emergency the code lands in the portal.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

#[path = "../../smtp/tests/support/upstream.rs"]
mod upstream;
use upstream::Upstream;

const OLD: &str = "correct horse battery";
const NEW: &str = "a new and longer passphrase";

/// POSTs JSON with curl; the body and the status code.
fn post(base: &str, path: &str, json: &str) -> (String, u16) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
        ])
        .args(["-H", "Content-Type: application/json", "-d", json])
        .arg(format!("{base}{path}"))
        .output()
        .expect("curl (scripts/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (body.to_string(), code.parse().unwrap())
}

fn login(base: &str, address: &str, password: &str) -> u16 {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-u"])
        .arg(format!("{address}:{password}"))
        .arg(format!("{base}/api/v1/me"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).parse().unwrap()
}

/// The reset code in the mails `upstream` received for `to`.
fn codes_for(upstream: &Upstream, to: &str) -> Vec<String> {
    upstream
        .received()
        .into_iter()
        .filter(|(_, rcpt, _)| rcpt == to)
        .filter_map(|(_, _, content)| {
            let line = content.lines().find(|l| l.starts_with("Reset code: "))?;
            Some(line["Reset code: ".len()..].trim().to_string())
        })
        .collect()
}

#[test]
fn reset_by_mail_once_then_log_in() {
    let upstream = Upstream::start();
    let lifeboat = Lifeboat::start(
        "auto",
        &format!("[outbound]\nnext_hop = \"127.0.0.1:{}\"\n", upstream.port),
    );
    ok(lifeboat.cli(
        &[
            "domain",
            "add",
            "example.test",
            "--upstream",
            &upstream.addr(),
            "--failover",
            "manual",
        ],
        None,
    ));
    ok(lifeboat.cli(
        &[
            "user",
            "add",
            "alice@example.test",
            "--recovery",
            "alice.private@elsewhere.test",
            "--password-stdin",
        ],
        Some(&format!("{OLD}\n")),
    ));
    ok(lifeboat.cli(
        &["user", "add", "bob@example.test", "--password-stdin"],
        Some(&format!("{OLD}\n")),
    ));
    let base = format!("http://127.0.0.1:{}", lifeboat.ports.http);

    // To the recovery address, through the outbound relay.
    let (body, code) = post(
        &base,
        "/api/v1/password-reset",
        r#"{"address":"alice@example.test"}"#,
    );
    assert_eq!(code, 202, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert!(answer["message"]
        .as_str()
        .unwrap()
        .contains("administrator"));
    wait_for("the reset mail", || {
        codes_for(&upstream, "alice.private@elsewhere.test").len() == 1
    });
    let code_ = codes_for(&upstream, "alice.private@elsewhere.test").remove(0);
    assert_eq!(code_.len(), 64, "{code_}");
    let mail = upstream.received().remove(0).2;
    assert!(mail.contains("Auto-Submitted: auto-generated"), "{mail}");
    assert_eq!(upstream.received()[0].0, "<>", "null envelope sender");

    // An unknown address, and a second request too soon, look the same and mail nothing.
    let (body, code) = post(
        &base,
        "/api/v1/password-reset",
        r#"{"address":"nobody@example.test"}"#,
    );
    assert_eq!(
        (code, body.as_str()),
        (202, serde_json::to_string(&answer).unwrap().as_str())
    );
    let (_, code) = post(
        &base,
        "/api/v1/password-reset",
        r#"{"address":"alice@example.test"}"#,
    );
    assert_eq!(code, 202);

    // Wrong codes and bad passwords are refused; the code survives a bad password.
    let (body, code) = post(
        &base,
        "/api/v1/password-reset/confirm",
        &format!(r#"{{"code":"{}","password":"{NEW}"}}"#, "0".repeat(64)),
    );
    assert_eq!(code, 400, "{body}");
    let (body, code) = post(
        &base,
        "/api/v1/password-reset/confirm",
        &format!(r#"{{"code":"{code_}","password":"short"}}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("password"), "{body}");
    let (body, code) = post(
        &base,
        "/api/v1/password-reset/confirm",
        &format!(r#"{{"code":"{code_}","password":"{NEW}"}}"#),
    );
    assert_eq!(code, 200, "{body}");
    let (_, code) = post(
        &base,
        "/api/v1/password-reset/confirm",
        &format!(r#"{{"code":"{code_}","password":"{NEW} again"}}"#),
    );
    assert_eq!(code, 400, "a code works once");
    assert_eq!(login(&base, "alice@example.test", NEW), 200);
    assert_eq!(login(&base, "alice@example.test", OLD), 401);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        codes_for(&upstream, "alice.private@elsewhere.test").len(),
        1,
        "nothing more was mailed"
    );
    // The reset mail is archived as outbound.
    let out = ok(lifeboat.cli(&["archive", "search", "--direction", "out", "--json"], None));
    let archived: Value = serde_json::from_str(&out).unwrap();
    assert!(
        archived.as_array().unwrap().iter().any(|e| e["subject"]
            .as_str()
            .unwrap()
            .contains("Password reset for alice@example.test")),
        "{archived}"
    );

    // No recovery address during an emergency: the code goes to the portal INBOX.
    ok(lifeboat.cli(&["mode", "example.test", "emergency"], None));
    let (_, code) = post(
        &base,
        "/api/v1/password-reset",
        r#"{"address":"bob@example.test"}"#,
    );
    assert_eq!(code, 202);
    let status: Value =
        serde_json::from_str(&ok(lifeboat.cli(&["status", "--json"], None))).unwrap();
    assert_eq!(status["domains"][0]["portal_inbox_messages"], 1, "{status}");
    assert!(codes_for(&upstream, "bob@example.test").is_empty());
}
