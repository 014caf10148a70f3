//! `/healthz` tells monitors when the store refuses writes after a failed fsync.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use lifeboat_store::io::{SimFs, Vfs};
use lifeboat_store::*;
use lifeboat_web::{WebConfig, WebServer};

fn get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A server on a free loopback port with the admin token `token`.
fn config(token: &str) -> WebConfig {
    WebConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_token: token.to_string(),
        io_backend: "test".into(),
        status: None,
        archive_index: None,
        tls: None,
        auth: None,
        allow_plaintext_loopback: false,
        session_idle: lifeboat_web::SESSION_IDLE_DEFAULT,
        session_max: lifeboat_web::SESSION_MAX_DEFAULT,
        message_bytes_max: 50 << 20,
        recipients_max: 100,
        body_idle: lifeboat_web::BODY_IDLE_DEFAULT,
        connections_per_ip_max: 100,
    }
}

/// Protects example.test.
fn example_domain() -> Op {
    Op::PutDomain(DomainSettings {
        name: "example.test".into(),
        upstream: "127.0.0.1:25".into(),
        coverage: Coverage::All,
        failover: Failover::Auto,
    })
}

#[test]
fn healthz_reports_a_poisoned_store() {
    let fs = SimFs::new();
    let store = Store::open_with(Arc::new(fs.clone()) as Arc<dyn Vfs>, Options::default()).unwrap();
    let token = "t".repeat(64);
    let web = WebServer::start(store.clone(), config(&token)).unwrap();
    let addr = web.local_addr();
    let ok = get(addr, "/healthz", None);
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.ends_with("ok\n"),
        "{ok}"
    );

    fs.fail_sync_at(0);
    let mut batch = Batch::new();
    batch.push(example_domain());
    assert!(matches!(store.commit(batch), Err(Error::Poisoned(_))));

    let sick = get(addr, "/healthz", None);
    assert!(sick.starts_with("HTTP/1.1 503"), "{sick}");
    assert!(
        sick.contains("restart required") && sick.contains("fsync"),
        "{sick}"
    );
    let status = get(addr, "/api/v1/status", Some(&token));
    assert!(
        status.contains("\"poisoned\":\"") && status.contains("fsync"),
        "{status}"
    );
    web.shutdown(Duration::from_secs(1));
}

/// One client address holds at most `connections_per_ip_max` connections; one more
/// is closed at once, and a place is given back when a connection closes.
#[test]
fn connections_per_address_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let web = WebServer::start(
        store,
        WebConfig {
            connections_per_ip_max: 2,
            ..config(&"t".repeat(64))
        },
    )
    .unwrap();
    let addr = web.local_addr();
    // Two idle connections: their requests are answered later.
    let held: Vec<std::net::TcpStream> = (0..2)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // A third is closed without an answer.
    let mut third = std::net::TcpStream::connect(addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut out = Vec::new();
    let _ = third.read_to_end(&mut out);
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    // The held ones still work.
    for mut s in held.iter() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    }
    drop(held);
    // Their places are free again.
    let mut answered = false;
    for _ in 0..50 {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        if out.starts_with("HTTP/1.1 200") {
            answered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(answered);
    web.shutdown(Duration::from_secs(1));
}

#[path = "../benches/support/mod.rs"]
#[allow(dead_code)]
mod support;

/// The panel's dashboard tells whoever looks at it when the store refuses writes.
#[test]
fn the_dashboard_says_when_the_store_refuses_writes() {
    let fs = SimFs::new();
    let store = Store::open_with(Arc::new(fs.clone()) as Arc<dyn Vfs>, Options::default()).unwrap();
    let mut batch = Batch::new();
    batch.push(example_domain());
    batch.push(Op::AddAccount {
        address: "root@example.test".into(),
        password_hash: password::hash_password(support::PASSWORD).unwrap(),
        role: Role::Admin,
        covered: false,
        recovery: None,
    });
    store.commit(batch).unwrap();
    let web = support::start(&store);
    let addr = web.local_addr();
    let session = support::login(addr, "root@example.test");
    let (status, _, page) = support::request(addr, "GET", "/panel", &session, "");
    assert_eq!(status, 200);
    assert!(!page.contains("refuses writes"), "{page}");

    fs.fail_sync_at(0);
    let mut batch = Batch::new();
    batch.push(Op::DeleteDomain("nowhere.test".into()));
    assert!(matches!(store.commit(batch), Err(Error::Poisoned(_))));
    let (status, _, page) = support::request(addr, "GET", "/panel", &session, "");
    assert_eq!(status, 200);
    assert!(
        page.contains("The mail store refuses writes") && page.contains("fsync"),
        "{page}"
    );
    web.shutdown(Duration::from_secs(1));
}
