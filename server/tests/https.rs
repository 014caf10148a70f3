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

    // HTTP/2 for the clients that offer it (browsers: one connection for every page
    // and live-update stream), HTTP/1.1 for the others; a request with a body over
    // HTTP/2 too.
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = curl(&[
            "-k",
            flag,
            "-o",
            "/dev/null",
            "-w",
            "%{http_version}",
            &format!("{base}/healthz"),
        ]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), version, "{flag}");
    }
    let out = curl(&[
        "-k",
        "--http2",
        "-w",
        "\n%{http_version} %{http_code}",
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"name": "h2.test", "upstream": "127.0.0.1:9"}"#,
        &format!("{base}/api/v1/domains"),
    ]);
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.ends_with("\n2 201"), "{answer}");
    assert!(answer.contains("\"h2.test\""), "{answer}");

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

/// An HTTP/2 connection that never asks anything is closed after the header timeout,
/// as an HTTP/1.1 one is: idle connections cannot hold the server's connection slots.
#[test]
fn an_idle_http2_connection_is_closed() {
    let lifeboat = Lifeboat::start_https("auto", "");
    let script = r#"
import socket, ssl, sys, time
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["h2"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="localhost")
print(s.selected_alpn_protocol())
s.settimeout(120)
start = time.monotonic()
try:
    while s.recv(4096):
        pass
    print("closed")
except socket.timeout:
    print("open")
except (ssl.SSLError, OSError):
    print("closed")
print("after %.1f s" % (time.monotonic() - start), file=sys.stderr)
"#;
    let out = Command::new("python3")
        .args(["-c", script, &lifeboat.ports.http.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        stdout,
        "h2\nclosed\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
