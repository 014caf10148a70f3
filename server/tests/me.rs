//! The account API (`/api/v1/me`) against the real binary with curl: users see and
//! re-deliver only their own archived mail, domain admins their domain's, admins all
//! (SPEC §4, §5); passwords only over TLS or, when allowed, on loopback; failed logins
//! are refused and then rate-limited.

mod support;

use std::process::Command;

use serde_json::Value;
use support::*;

const PASSWORD: &str = "correct horse battery";

/// `curl` with `args`; the body and the status code.
fn curl(args: &[&str]) -> (String, u16) {
    let out = Command::new("curl")
        .args(["-sS", "-k", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl (scripts/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (body.to_string(), code.parse().unwrap_or(0))
}

fn as_user(base: &str, user: &str, path: &str, extra: &[&str]) -> (String, u16) {
    let credentials = format!("{user}:{PASSWORD}");
    let url = format!("{base}/api/v1/me{path}");
    let mut args = vec!["-u", credentials.as_str()];
    args.extend_from_slice(extra);
    args.push(&url);
    curl(&args)
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn send(lifeboat: &Lifeboat, from: &str, to: &str, subject: &str) {
    let script = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.sendmail(sys.argv[2], [sys.argv[3]],
           "From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nhello\r\n" % (sys.argv[2], sys.argv[3], sys.argv[4]))
s.quit()
"#;
    python(
        script,
        &[&lifeboat.ports.smtp.to_string(), from, to, subject],
    );
}

fn setup(lifeboat: &Lifeboat) {
    for domain in ["example.test", "other.test"] {
        ok(lifeboat.cli(
            &[
                "domain",
                "add",
                domain,
                "--upstream",
                "127.0.0.1:9",
                "--failover",
                "manual",
            ],
            None,
        ));
        ok(lifeboat.cli(&["mode", domain, "emergency"], None));
    }
    for (address, role) in [
        ("alice@example.test", "user"),
        ("bob@example.test", "user"),
        ("dora@example.test", "domain-admin"),
        ("olga@other.test", "user"),
        ("root@other.test", "admin"),
    ] {
        ok(lifeboat.cli(
            &["user", "add", address, "--role", role, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        ));
    }
}

#[test]
fn accounts_see_what_their_role_allows() {
    let lifeboat = Lifeboat::start("auto", "");
    setup(&lifeboat);
    send(
        &lifeboat,
        "carol@remote.test",
        "alice@example.test",
        "for alice",
    );
    send(
        &lifeboat,
        "carol@remote.test",
        "bob@example.test",
        "for bob",
    );
    send(
        &lifeboat,
        "carol@remote.test",
        "olga@other.test",
        "for olga",
    );
    let base = format!("http://127.0.0.1:{}", lifeboat.ports.http);

    let (body, code) = as_user(&base, "alice@EXAMPLE.test", "", &[]);
    assert_eq!(code, 200, "{body}");
    let me = json(&body);
    assert_eq!(me["address"], "alice@example.test");
    assert_eq!(me["role"], "user");
    assert_eq!(me["mode"], "emergency");

    let subjects = |user: &str| -> Vec<String> {
        let (body, code) = as_user(&base, user, "/archive", &[]);
        assert_eq!(code, 200, "{body}");
        let mut s: Vec<String> = json(&body)
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["subject"].as_str().unwrap().to_string())
            .collect();
        s.sort();
        s
    };
    assert_eq!(subjects("alice@example.test"), ["for alice"]);
    assert_eq!(subjects("bob@example.test"), ["for bob"]);
    assert_eq!(subjects("dora@example.test"), ["for alice", "for bob"]);
    assert_eq!(
        subjects("root@other.test"),
        ["for alice", "for bob", "for olga"]
    );

    // Another user's message does not exist for alice, to view or to re-deliver.
    let (body, _) = as_user(&base, "root@other.test", "/archive?subject=for%20bob", &[]);
    let bobs = json(&body)[0]["id"].as_u64().unwrap().to_string();
    let (body, code) = as_user(
        &base,
        "alice@example.test",
        &format!("/archive/{bobs}"),
        &[],
    );
    assert_eq!(code, 404, "{body}");
    let (_, code) = as_user(
        &base,
        "alice@example.test",
        &format!("/archive/{bobs}/redeliver"),
        &["-X", "POST"],
    );
    assert_eq!(code, 404);
    // Her own: viewed, and re-delivered to her mailbox only.
    let (body, _) = as_user(&base, "alice@example.test", "/archive", &[]);
    let hers = json(&body)[0]["id"].as_u64().unwrap().to_string();
    let (body, code) = as_user(
        &base,
        "alice@example.test",
        &format!("/archive/{hers}"),
        &[],
    );
    assert_eq!(code, 200, "{body}");
    assert!(json(&body)["text"].as_str().unwrap().contains("hello"));
    let (body, code) = as_user(
        &base,
        "alice@example.test",
        &format!("/archive/{hers}/redeliver"),
        &["-X", "POST"],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        json(&body)["redelivered_to"],
        serde_json::json!(["alice@example.test"])
    );
    // A domain admin may re-deliver their domain's mail, not another domain's.
    let (body, _) = as_user(&base, "root@other.test", "/archive?subject=for%20olga", &[]);
    let olgas = json(&body)[0]["id"].as_u64().unwrap().to_string();
    let (_, code) = as_user(
        &base,
        "dora@example.test",
        &format!("/archive/{olgas}/redeliver"),
        &["-X", "POST"],
    );
    assert_eq!(code, 404);
    let (body, code) = as_user(
        &base,
        "dora@example.test",
        &format!("/archive/{bobs}/redeliver"),
        &["-X", "POST"],
    );
    assert_eq!(code, 200, "{body}");

    // The admin token is not a password, and a password is not the admin token.
    let (body, code) = curl(&[&format!("{base}/api/v1/me")]);
    assert_eq!(code, 401, "{body}");
    let (_, code) = curl(&[
        "-H",
        &format!("Authorization: Bearer {}", lifeboat.token()),
        &format!("{base}/api/v1/me"),
    ]);
    assert_eq!(code, 401);
    let (_, code) = curl(&[
        "-u",
        &format!("root@other.test:{PASSWORD}"),
        &format!("{base}/api/v1/domains"),
    ]);
    assert_eq!(code, 401);
    // Wrong passwords: refused with a Basic challenge, then rate-limited.
    let headers = Command::new("curl")
        .args([
            "-sS",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-u",
            "bob@example.test:wrong",
        ])
        .arg(format!("{base}/api/v1/me"))
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&headers.stdout).to_lowercase();
    assert!(headers.starts_with("http/1.1 401"), "{headers}");
    assert!(headers.contains("www-authenticate: basic"), "{headers}");
    let codes: Vec<u16> = (0..15)
        .map(|_| curl(&["-u", "bob@example.test:wrong", &format!("{base}/api/v1/me")]).1)
        .collect();
    assert!(codes.contains(&429), "{codes:?}");
}

fn add_alice(lifeboat: &Lifeboat) {
    ok(lifeboat.cli(
        &["domain", "add", "example.test", "--upstream", "127.0.0.1:9"],
        None,
    ));
    ok(lifeboat.cli(
        &["user", "add", "alice@example.test", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    ));
}

#[test]
fn passwords_need_tls_unless_loopback_is_allowed() {
    let lifeboat = Lifeboat::start("auto", "[auth]\nallow_plaintext_loopback = false\n");
    add_alice(&lifeboat);
    let base = format!("http://127.0.0.1:{}", lifeboat.ports.http);
    let (body, code) = as_user(&base, "alice@example.test", "", &[]);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("HTTPS"), "{body}");
    drop(lifeboat);

    let lifeboat = Lifeboat::start_https("auto", "[auth]\nallow_plaintext_loopback = false\n");
    add_alice(&lifeboat);
    let base = format!("https://127.0.0.1:{}", lifeboat.ports.http);
    let (body, code) = as_user(&base, "alice@example.test", "", &[]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["address"], "alice@example.test");
}
