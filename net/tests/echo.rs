//! A tiny line-echo protocol served through the real runtime on both backends, driven
//! by blocking clients over real loopback sockets.
//!
//! Every test runs once per backend. The `io_uring` run is skipped, with a note, only
//! when the probe says `io_uring` does not work on this machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lifeboat_net::{
    ensure_self_signed, probe_uring, Backend, FrameConfig, Framed, IoMode, ListenerConfig,
    NetError, Server, ServerBuilder, ServerConfig, Stream, TlsAcceptor,
};
use lifeboat_testkit::{backends, io_mode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

const REFUSAL: &[u8] = b"421 too many connections\r\n";
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
const THREADS: usize = 2;

/// What the echo sessions did, shared by all threads of one server.
#[derive(Default)]
struct Journal {
    executed: Vec<String>,
    discarded: Vec<usize>,
    finished: usize,
}

struct Harness {
    server: Option<Server>,
    journal: Arc<Mutex<Journal>>,
    client_tls: Arc<rustls::ClientConfig>,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn start(backend: Backend, customize: impl Fn(&mut ListenerConfig)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let paths = ensure_self_signed(dir.path(), "localhost").unwrap();
        let acceptor = TlsAcceptor::from_pem_files(&paths.cert, &paths.key).unwrap();

        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&paths.cert).unwrap())
            .unwrap();
        let client_tls = Arc::new(
            rustls::ClientConfig::builder_with_provider(lifeboat_net::tls::crypto_provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        );

        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut plain = ListenerConfig::new("echo", loopback);
        plain.refusal = REFUSAL.to_vec();
        customize(&mut plain);
        let mut implicit = ListenerConfig::new("echos", loopback);
        implicit.tls = Some(acceptor.clone());
        customize(&mut implicit);

        let journal = Arc::new(Mutex::new(Journal::default()));
        let mut builder = ServerBuilder::new(ServerConfig {
            threads: THREADS,
            io: io_mode(backend),
        });
        for listener in [plain, implicit] {
            let journal = Arc::clone(&journal);
            let acceptor = acceptor.clone();
            builder = builder.listener(listener, move |_thread| {
                let journal = Arc::clone(&journal);
                let acceptor = acceptor.clone();
                move |framed| echo_session(framed, acceptor.clone(), Arc::clone(&journal))
            });
        }
        let server = builder.start().unwrap();
        assert_eq!(server.backend(), backend);
        assert_eq!(server.threads(), THREADS);
        Harness {
            server: Some(server),
            journal,
            client_tls,
            _dir: dir,
        }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    fn addr(&self, listener: &str) -> SocketAddr {
        self.server().local_addr(listener).unwrap()
    }

    fn connect(&self) -> Client<TcpStream> {
        Client::new(connect(self.addr("echo")))
    }

    fn connect_tls(&self) -> Client<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
        Client::new(self.tls_over(connect(self.addr("echos"))))
    }

    fn tls_over(&self, tcp: TcpStream) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        let name = ServerName::try_from("localhost").unwrap();
        let connection = rustls::ClientConnection::new(Arc::clone(&self.client_tls), name).unwrap();
        rustls::StreamOwned::new(connection, tcp)
    }

    /// Waits until `count` sessions have ended, so the journal is complete.
    fn wait_finished(&self, count: usize) {
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        while self.journal.lock().unwrap().finished < count {
            assert!(Instant::now() < deadline, "sessions did not finish");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream
}

/// The server side: greets, then answers each line with `+OK <line>`; `STARTTLS`
/// upgrades, `TLS?` and `BACKEND?` describe the connection, `WAIT` abandons a read
/// after a timeout, `HANG` stops reading and ignores shutdown, `DEAF` keeps reading
/// through shutdown, `PANIC` panics, `QUIT` ends the session.
async fn echo_session(framed: Framed<Stream>, acceptor: TlsAcceptor, journal: Arc<Mutex<Journal>>) {
    struct Finished(Arc<Mutex<Journal>>);
    impl Drop for Finished {
        fn drop(&mut self) {
            self.0.lock().unwrap().finished += 1;
        }
    }
    let _finished = Finished(Arc::clone(&journal));
    let mut framed = framed;
    if framed.write_all(b"* ready\r\n").await.is_err() {
        return;
    }
    loop {
        let line = match framed.read_line().await {
            Ok(line) => String::from_utf8_lossy(line).trim_end().to_string(),
            Err(NetError::LineTooLong { .. }) => {
                let _ = framed.write_all(b"-ERR line too long\r\n").await;
                if framed.skip_line().await.is_err() {
                    return;
                }
                continue;
            }
            Err(NetError::IdleTimeout) => {
                let _ = framed.write_all(b"* idle timeout\r\n").await;
                let _ = framed.close().await;
                return;
            }
            Err(NetError::ShuttingDown) => {
                let _ = framed.write_all(b"* shutting down\r\n").await;
                let _ = framed.close().await;
                return;
            }
            Err(_) => return,
        };
        journal.lock().unwrap().executed.push(line.clone());
        let reply = match line.as_str() {
            "QUIT" => {
                let _ = framed.write_all(b"+OK bye\r\n").await;
                let _ = framed.close().await;
                return;
            }
            "STARTTLS" if framed.is_tls() => "-ERR already encrypted\r\n".to_string(),
            "STARTTLS" => match framed.start_tls(&acceptor, b"+OK begin TLS\r\n").await {
                Ok((upgraded, discarded)) => {
                    journal.lock().unwrap().discarded.push(discarded);
                    framed = upgraded;
                    continue;
                }
                Err(_) => return,
            },
            "TLS?" if framed.is_tls() => "+OK tls\r\n".to_string(),
            "TLS?" => "+OK plain\r\n".to_string(),
            "HANG" => std::future::pending().await,
            "PANIC" => panic!("the echo session was told to panic"),
            "DEAF" => {
                // Keep reading through shutdown: the read is still in flight (in the
                // kernel, on io_uring) when the drain deadline aborts the session.
                framed.set_interrupt_on_shutdown(false);
                "+OK deaf\r\n".to_string()
            }
            "BACKEND?" => format!("+OK {}\r\n", framed.backend()),
            // A read abandoned by a timeout must not lose what arrives afterwards.
            "WAIT" => {
                let waited = Duration::from_millis(100);
                match lifeboat_net::timeout(waited, framed.read_line()).await {
                    Err(NetError::CommandTimeout) => "+OK waited\r\n".to_string(),
                    _ => "-ERR expected a timeout\r\n".to_string(),
                }
            }
            other => format!("+OK {other}\r\n"),
        };
        if framed.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A blocking line client.
struct Client<S: Read + Write> {
    stream: BufReader<S>,
}

impl<S: Read + Write> Client<S> {
    fn new(stream: S) -> Self {
        Client {
            stream: BufReader::new(stream),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).unwrap();
        self.stream.get_mut().flush().unwrap();
    }

    /// The next line without CRLF, or `None` at end of stream or on a reset.
    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.stream.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                assert!(line.ends_with("\r\n"), "unterminated reply {line:?}");
                Some(line.trim_end().to_string())
            }
        }
    }

    fn expect(&mut self, expected: &str) {
        assert_eq!(self.line().as_deref(), Some(expected));
    }

    fn expect_end(&mut self) {
        assert_eq!(self.line(), None);
    }

    fn into_inner(self) -> S {
        assert!(
            self.stream.buffer().is_empty(),
            "server sent more than expected"
        );
        self.stream.into_inner()
    }
}

#[test]
fn echo_over_plain_tcp() {
    for backend in backends() {
        let harness = Harness::start(backend, |_| {});
        let mut client = harness.connect();
        client.expect("* ready");
        client.send(b"HELLO world\r\n");
        client.expect("+OK HELLO world");
        // Pipelined commands in one write, answered in order.
        client.send(b"ONE\r\nTWO\r\nTLS?\r\n");
        client.expect("+OK ONE");
        client.expect("+OK TWO");
        client.expect("+OK plain");
        client.send(b"BACKEND?\r\n");
        client.expect(&format!("+OK {backend}"));
        // Large lines, close to the default limit, survive partial reads and writes.
        let long = "x".repeat(4000);
        client.send(format!("{long}\r\n").as_bytes());
        client.expect(&format!("+OK {long}"));
        client.send(b"QUIT\r\n");
        client.expect("+OK bye");
        client.expect_end();
    }
}

#[test]
fn echo_over_implicit_tls() {
    for backend in backends() {
        let harness = Harness::start(backend, |_| {});
        let mut client = harness.connect_tls();
        client.expect("* ready");
        client.send(b"TLS?\r\n");
        client.expect("+OK tls");
        client.send(b"STARTTLS\r\n");
        client.expect("-ERR already encrypted");
        client.send(b"BACKEND?\r\n");
        client.expect(&format!("+OK {backend}"));
        let big = "y".repeat(3000);
        for _ in 0..20 {
            client.send(format!("{big}\r\n").as_bytes());
        }
        for _ in 0..20 {
            client.expect(&format!("+OK {big}"));
        }
        client.send(b"QUIT\r\n");
        client.expect("+OK bye");
        client.expect_end();
    }
}

#[test]
fn bulk_transfer_in_both_directions_at_once() {
    const LINES: usize = 300;
    for backend in backends() {
        let harness = Harness::start(backend, |_| {});
        let mut client = harness.connect();
        client.expect("* ready");
        // The client writes from another thread while this one reads, so both
        // directions are full at once: this exercises short writes and partial reads.
        let mut writer = client.stream.get_ref().try_clone().unwrap();
        let sending = std::thread::spawn(move || {
            for index in 0..LINES {
                let line = format!("{index:05}{}\r\n", "b".repeat(4000));
                writer.write_all(line.as_bytes()).unwrap();
            }
        });
        for index in 0..LINES {
            client.expect(&format!("+OK {index:05}{}", "b".repeat(4000)));
        }
        sending.join().unwrap();
    }
}

#[test]
fn a_panicking_session_releases_its_slot_and_the_server_carries_on() {
    for backend in backends() {
        let harness = Harness::start(backend, |listener| {
            listener.limits.connections_per_ip_max = 1;
        });
        for _ in 0..3 {
            let mut client = harness.connect();
            client.expect("* ready");
            client.send(b"PANIC\r\n");
            client.expect_end();
            harness.wait_active("echo", 0);
        }
        let mut client = harness.connect();
        client.expect("* ready");
        client.send(b"PING\r\n");
        client.expect("+OK PING");
    }
}

#[test]
fn failed_implicit_tls_handshake_releases_its_slot() {
    for backend in backends() {
        let harness = Harness::start(backend, |_| {});
        let mut plaintext = Client::new(connect(harness.addr("echos")));
        plaintext.send(b"HELLO\r\n");
        // The server answers a TLS alert or nothing, then closes.
        let mut rest = Vec::new();
        let _ = plaintext.stream.read_to_end(&mut rest);
        assert!(!String::from_utf8_lossy(&rest).contains("ready"));
        harness.wait_active("echos", 0);
        let mut client = harness.connect_tls();
        client.expect("* ready");
    }
}

#[test]
fn starttls_discards_plaintext_pipelined_after_the_command() {
    for backend in backends() {
        let harness = Harness::start(backend, |_| {});
        let mut client = harness.connect();
        client.expect("* ready");
        client.send(b"BEFORE\r\n");
        client.expect("+OK BEFORE");
        // An attacker in the middle appends a command to the client's STARTTLS in the
        // same segment; it must not run, neither before nor after the upgrade.
        client.send(b"STARTTLS\r\nINJECTED\r\n");
        client.expect("+OK begin TLS");
        let mut client = Client::new(harness.tls_over(client.into_inner()));
        client.send(b"TLS?\r\n");
        client.expect("+OK tls");
        client.send(b"QUIT\r\n");
        client.expect("+OK bye");
        client.expect_end();

        harness.wait_finished(1);
        let journal = harness.journal.lock().unwrap();
        assert_eq!(journal.executed, ["BEFORE", "STARTTLS", "TLS?", "QUIT"]);
        assert_eq!(journal.discarded, [b"INJECTED\r\n".len()]);
    }
}

#[test]
fn a_read_abandoned_by_a_timeout_loses_no_input() {
    for backend in backends() {
        let harness = Harness::start(backend, |_| {});
        let mut plain = harness.connect();
        plain.expect("* ready");
        let mut encrypted = harness.connect_tls();
        encrypted.expect("* ready");
        for _ in 0..3 {
            plain.send(b"WAIT\r\n");
            plain.expect("+OK waited");
            // On io_uring the abandoned read is still in the kernel when this
            // arrives; the next read must deliver it.
            plain.send(b"AFTER\r\n");
            plain.expect("+OK AFTER");
            encrypted.send(b"WAIT\r\n");
            encrypted.expect("+OK waited");
            encrypted.send(b"AFTER\r\n");
            encrypted.expect("+OK AFTER");
        }
    }
}

#[test]
fn over_long_line_is_refused_and_the_session_resynchronises() {
    for backend in backends() {
        let harness = Harness::start(backend, |listener| {
            listener.frame.line_bytes_max = 512;
        });
        let mut client = harness.connect();
        client.expect("* ready");
        client.send(&[vec![b'x'; 5000], b"\r\nPING\r\n".to_vec()].concat());
        client.expect("-ERR line too long");
        client.expect("+OK PING");
        // A line of exactly the limit, CRLF included, is accepted.
        let exact = "z".repeat(510);
        client.send(format!("{exact}\r\n").as_bytes());
        client.expect(&format!("+OK {exact}"));
        client.send(b"QUIT\r\n");
        client.expect("+OK bye");
    }
}

#[test]
fn per_ip_limit_refuses_with_the_protocol_line() {
    for backend in backends() {
        let harness = Harness::start(backend, |listener| {
            listener.limits.connections_per_ip_max = 2;
        });
        // Enough connections that both threads take some; the limit is shared.
        let mut first = harness.connect();
        first.expect("* ready");
        let mut second = harness.connect();
        second.expect("* ready");
        for _ in 0..4 {
            let mut refused = harness.connect();
            assert_eq!(refused.line().as_deref(), Some("421 too many connections"));
            refused.expect_end();
        }
        let stats = harness.server().stats("echo").unwrap();
        assert_eq!(stats.active, 2);
        assert_eq!(stats.refused_total, 4);

        // A slot frees once a session ends.
        first.send(b"QUIT\r\n");
        first.expect("+OK bye");
        first.expect_end();
        harness.wait_finished(1);
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        loop {
            let mut again = harness.connect();
            if again.line().as_deref() == Some("* ready") {
                break;
            }
            assert!(Instant::now() < deadline, "slot was never released");
            std::thread::sleep(Duration::from_millis(10));
        }
        second.send(b"PING\r\n");
        second.expect("+OK PING");
    }
}

#[test]
fn idle_timeout_closes_the_connection() {
    for backend in backends() {
        let idle = Duration::from_millis(300);
        let harness = Harness::start(backend, |listener| {
            listener.frame = FrameConfig {
                idle_timeout: idle,
                ..FrameConfig::default()
            };
        });
        for tls in [false, true] {
            let started = Instant::now();
            let (greeting, notice, end) = if tls {
                let mut client = harness.connect_tls();
                (client.line(), client.line(), client.line())
            } else {
                let mut client = harness.connect();
                (client.line(), client.line(), client.line())
            };
            assert_eq!(greeting.as_deref(), Some("* ready"));
            assert_eq!(notice.as_deref(), Some("* idle timeout"));
            assert_eq!(end, None);
            let elapsed = started.elapsed();
            assert!(elapsed >= idle, "closed after {elapsed:?}");
            assert!(elapsed < CLIENT_TIMEOUT / 2, "closed after {elapsed:?}");
        }
    }
}

#[test]
fn graceful_shutdown_lets_sessions_say_goodbye() {
    for backend in backends() {
        let mut harness = Harness::start(backend, |_| {});
        let addr = harness.addr("echo");
        let mut plain = harness.connect();
        plain.expect("* ready");
        let mut encrypted = harness.connect_tls();
        encrypted.expect("* ready");

        let server = harness.server.take().unwrap();
        let started = Instant::now();
        let stopping = std::thread::spawn(move || server.shutdown(Duration::from_secs(5)));
        plain.expect("* shutting down");
        plain.expect_end();
        encrypted.expect("* shutting down");
        encrypted.expect_end();
        let report = stopping.join().unwrap();
        assert_eq!(report.threads_joined, THREADS);
        assert_eq!(report.threads_stuck, 0);
        assert_eq!(report.threads_panicked, 0);
        assert_eq!(report.connections_aborted, 0);
        assert!(started.elapsed() < Duration::from_secs(5));
        // Nothing listens any more.
        assert!(TcpStream::connect(addr).is_err());
    }
}

#[test]
fn shutdown_aborts_sessions_that_ignore_it_at_the_deadline() {
    for backend in backends() {
        let mut harness = Harness::start(backend, |_| {});
        let mut hanging = harness.connect();
        hanging.expect("* ready");
        hanging.send(b"HANG\r\n");
        harness.wait_executed("HANG");
        let mut deaf = harness.connect_tls();
        deaf.expect("* ready");
        deaf.send(b"DEAF\r\n");
        deaf.expect("+OK deaf");
        let server = harness.server.take().unwrap();
        let started = Instant::now();
        let report = server.shutdown(Duration::from_millis(300));
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        assert_eq!(report.threads_joined, THREADS);
        assert_eq!(report.threads_panicked, 0);
        assert_eq!(report.connections_aborted, 2);
        hanging.expect_end();
        deaf.expect_end();
    }
}

impl Harness {
    fn wait_active(&self, listener: &str, count: usize) {
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        while self.server().stats(listener).unwrap().active != count {
            assert!(
                Instant::now() < deadline,
                "{listener} never had {count} connections"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn wait_executed(&self, command: &str) {
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        while !self
            .journal
            .lock()
            .unwrap()
            .executed
            .iter()
            .any(|executed| executed == command)
        {
            assert!(Instant::now() < deadline, "{command} never ran");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn auto_picks_a_backend_and_reports_it() {
    let server = ServerBuilder::new(ServerConfig {
        threads: 1,
        io: IoMode::Auto,
    })
    .listener(
        ListenerConfig::new("echo", "127.0.0.1:0".parse().unwrap()),
        |_thread| {
            |mut framed: Framed<Stream>| async move {
                let _ = framed.write_all(b"* ready\r\n").await;
            }
        },
    )
    .start()
    .unwrap();
    let choice = server.backend_choice().clone();
    println!("auto chose {choice}");
    assert_eq!(choice.requested, IoMode::Auto);
    match probe_uring() {
        Ok(()) => assert_eq!(server.backend(), Backend::Uring),
        Err(_) => {
            assert_eq!(server.backend(), Backend::Epoll);
            assert!(choice.uring_unavailable.is_some());
        }
    }
    let mut client = Client::new(connect(server.local_addr("echo").unwrap()));
    client.expect("* ready");
    client.expect_end();
    let report = server.shutdown(Duration::from_secs(1));
    assert_eq!(report.threads_joined, 1);
}

#[test]
fn start_fails_cleanly_on_a_taken_address_and_bad_settings() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let handler = |_thread: &lifeboat_net::ThreadContext| |_framed: Framed<Stream>| async {};
    let result = ServerBuilder::new(ServerConfig {
        threads: 1,
        io: IoMode::Epoll,
    })
    .listener(ListenerConfig::new("smtp", addr), handler)
    .start();
    match result {
        Err(lifeboat_net::StartError::Bind { name, .. }) => assert_eq!(name, "smtp"),
        other => panic!("expected a bind error, got {other:?}"),
    }

    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let result = ServerBuilder::new(ServerConfig::default())
        .listener(ListenerConfig::new("imap", any), handler)
        .listener(ListenerConfig::new("imap", any), handler)
        .start();
    assert!(matches!(
        result,
        Err(lifeboat_net::StartError::InvalidListener { .. })
    ));
}
