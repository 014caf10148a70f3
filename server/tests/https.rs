//! The http listener speaks HTTPS when it is not bound to loopback (production binds
//! it to port 443 on a public address): with the server's certificate, a header
//! timeout, and the management commands trusting exactly that certificate.

mod support;

use std::process::Command;

use serde_json::Value;
use support::*;

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl (scripts/test installs it)")
}

#[test]
fn https_on_every_address_with_a_pinned_certificate_for_the_cli() {
    let lifeboat = Lifeboat::start_https("auto", "");
    let base = format!("https://127.0.0.1:{}", lifeboat.ports.http);
    assert!(
        lifeboat.log().contains("scheme=\"https\""),
        "{}",
        lifeboat.log()
    );

    // A real client checking the certificate against the one in the data directory.
    let cert = lifeboat.data_dir().join("cert.pem");
    let out = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        "--resolve",
        &format!("localhost:{}:127.0.0.1", lifeboat.ports.http),
        &format!("https://localhost:{}/healthz", lifeboat.ports.http),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The admin API over TLS: the token is required as before.
    let token = lifeboat.token();
    let out = curl(&[
        "-k",
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("{base}/api/v1/status"),
    ]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(status["domains"].is_array(), "{status}");
    let out = curl(&[
        "-k",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{base}/api/v1/status"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");

    // Plain HTTP gets no HTTP answer: the token would have crossed in clear.
    let plain = lifeboat.http_get("/api/v1/status").unwrap_or_default();
    assert!(!plain.starts_with("HTTP/"), "{plain}");

    // The management commands find the listener and trust the server's certificate.
    ok(lifeboat.cli(
        &["domain", "add", "example.test", "--upstream", "127.0.0.1:9"],
        None,
    ));
    let listed = ok(lifeboat.cli(&["domain", "list", "--json"], None));
    assert!(listed.contains("example.test"), "{listed}");

    // ... and no other certificate: a configuration naming another one is refused.
    let other = lifeboat.dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(other.join("key.pem"))
        .arg("-out")
        .arg(other.join("cert.pem"))
        .output()
        .expect("openssl (scripts/test installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let config = std::fs::read_to_string(&lifeboat.config).unwrap();
    let impostor = lifeboat.dir.path().join("impostor.toml");
    std::fs::write(
        &impostor,
        format!(
            "{config}\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            other.join("cert.pem").display(),
            other.join("key.pem").display()
        ),
    )
    .unwrap();
    let refused = run_cli(&impostor, &["domain", "list"], None);
    fails(refused, "certificate");
}
