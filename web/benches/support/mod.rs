//! What the web benches share: the server on loopback over a store, raw HTTP requests
//! and a browser's login.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use lifeboat_store::auth::Authenticator;
use lifeboat_store::Store;
use lifeboat_web::{WebConfig, WebServer, SESSION_IDLE_DEFAULT, SESSION_MAX_DEFAULT};

/// The password of every bench account.
pub const PASSWORD: &str = "benchmark password";

/// The web server on a loopback port over `store`.
pub fn start(store: &Store) -> WebServer {
    WebServer::start(
        store.clone(),
        WebConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_token: "t".repeat(64),
            io_backend: "bench".into(),
            status: None,
            archive_index: None,
            tls: None,
            auth: Some(Authenticator::new(store.clone())),
            allow_plaintext_loopback: true,
            session_idle: SESSION_IDLE_DEFAULT,
            session_max: SESSION_MAX_DEFAULT,
            message_bytes_max: 50 << 20,
            recipients_max: 100,
            body_idle: lifeboat_web::BODY_IDLE_DEFAULT,
            connections_per_ip_max: 100,
        },
    )
    .unwrap()
}

/// `GET`/`POST` over a new connection: status, `Set-Cookie` values, body.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: &str,
    body: &str,
) -> (u16, Vec<String>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nCookie: {cookie}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let cookies = head
        .lines()
        .filter_map(|l| l.strip_prefix("set-cookie: "))
        .filter_map(|c| c.split(';').next())
        .map(str::to_string)
        .collect();
    (status, cookies, body.to_string())
}

/// Logs in as a browser would (the login form's token, then the form); the session
/// cookie.
pub fn login(addr: SocketAddr, address: &str) -> String {
    let (_, cookies, _) = request(addr, "GET", "/", "", "");
    let form = cookies
        .iter()
        .find(|c| c.starts_with("lifeboat_form="))
        .unwrap()
        .clone();
    let token = form.split_once('=').unwrap().1;
    let address = address.replace('@', "%40");
    let (status, cookies, _) = request(
        addr,
        "POST",
        "/login",
        &form,
        &format!("_csrf={token}&address={address}&password=benchmark+password"),
    );
    assert_eq!(status, 303);
    cookies
        .iter()
        .find(|c| c.starts_with("lifeboat_session="))
        .unwrap()
        .clone()
}
