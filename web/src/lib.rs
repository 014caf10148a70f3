//! Lifeboat's HTTP side: the admin API with metrics, the accounts' own API (archive
//! search scoped by role) and password resets (docs/api.md); the control panel and
//! the users' workspace (SPEC §9), server-rendered, with their sessions.
//!
//! - `api/`: JSON under `/api/v1`; `panel/`: the pages; `session.rs`: login cookies and
//!   CSRF; `admin.rs`: every change with its audit entry, for both; `archive.rs` and
//!   `audit.rs`: reading the archive and the audit log for both; `i18n/`: every string
//!   the pages show, one file per language; `templates/` and `static/` beside `src/`.
//!
//! It runs on its own thread with its own tokio runtime, so nothing here can stall a
//! protocol core; the store is shared (reads take a read lock briefly, writes are
//! group-committed like any other). It speaks HTTPS when it is given a TLS
//! configuration (the server does so for every address but loopback).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use lifeboat_store::auth::Authenticator;
use lifeboat_store::{Account, Address, ArchiveEntry, ArchiveIndex, ArchiveQuery, Op, Role, Store};

mod admin;
pub mod api;
mod archive;
mod audit;
mod body;
#[doc(hidden)]
pub mod fuzz_support;
mod i18n;
mod mail;
mod panel;
mod session;
mod stall;

/// A latency histogram for `/metrics`: (name, help, counts).
pub type Latency = (
    &'static str,
    &'static str,
    lifeboat_store::latency::Snapshot,
);

/// Live figures from the parts of the server this crate cannot see (the relay's
/// router and counters): the binary supplies them.
pub trait StatusSource: Send + Sync {
    /// An upstream's health (`up`, `down`, `unknown`) and since when (Unix seconds,
    /// 0 = never changed).
    fn upstream_health(&self, upstream: &str) -> (String, i64);
    /// Counters for status and `/metrics`, as (name, value).
    fn counters(&self) -> Vec<(&'static str, u64)>;
    /// Latency histograms for `/metrics`, as (name, help, counts); the name gets the
    /// `lifeboat_` prefix and the `_seconds` suffix.
    fn latencies(&self) -> Vec<Latency> {
        Vec::new()
    }
    /// What the router knows of an upstream beyond its health: failures and good
    /// probes counted, probes needed (flap damping), the last probe and the next.
    fn upstream_detail(&self, _upstream: &str) -> Option<serde_json::Value> {
        None
    }
    /// The cluster as this node sees it (cluster mode).
    fn cluster(&self) -> Option<serde_json::Value> {
        None
    }
    /// Re-delivers an archived message to those of its mailboxes `scope` admits; the
    /// addresses it went to, or why not. The ops `record` returns for those addresses
    /// (its audit entry) go into the re-delivery's batch.
    fn redeliver<'a>(
        &'a self,
        id: lifeboat_store::ArchiveId,
        scope: &'a Scope,
        record: &'a (dyn Fn(&[String]) -> Vec<Op> + Send + Sync),
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<String>, String>> + Send + 'a>>;
    /// Sends a plain-text notice from this server to `rcpt` (a password reset code),
    /// durably queued or placed when it returns `Ok`.
    fn send_notice<'a>(
        &'a self,
        rcpt: &'a str,
        subject: &'a str,
        text: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>>;
    /// Sends a message written in webmail by `account` to `rcpts` down the outbound
    /// path of submission (archived, placed per recipient, a copy in the account's
    /// Sent folder), committing the ops of `also` with it; the archive id, or why not.
    fn submit<'a>(
        &'a self,
        _account: &'a str,
        _rcpts: &'a [String],
        _message: Vec<u8>,
        _also: Vec<Op>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + 'a>>
    {
        Box::pin(async { Err("no relay is running".to_string()) })
    }
}

/// Whose mail a caller may see and re-deliver (SPEC §4, §5): an admin all of it, a
/// domain admin the mail of their domain, a user the mail they sent or received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything (the admin token, or an account with the `admin` role).
    All,
    /// Mail from or to addresses of this domain.
    Domain(String),
    /// Mail from or to this address.
    Address(String),
}

impl Scope {
    /// The scope of an account's role.
    pub fn of(account: &Account) -> Scope {
        match account.role {
            Role::Admin => Scope::All,
            Role::DomainAdmin => {
                Scope::Domain(Address::domain_of(&account.address).to_ascii_lowercase())
            }
            Role::User => Scope::Address(account.address.clone()),
        }
    }

    /// Whether mail from or to `address` is in scope.
    pub fn admits(&self, address: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Domain(domain) => Address::domain_of(address).eq_ignore_ascii_case(domain),
            Scope::Address(own) => matches!(
                (Address::try_from(address), Address::try_from(own.as_str())),
                (Ok(a), Ok(b)) if a == b
            ),
        }
    }

    /// Whether an archived message is in scope: its sender or a recipient is.
    pub fn sees(&self, entry: &ArchiveEntry) -> bool {
        std::iter::once(&entry.mail_from)
            .chain(&entry.rcpt_to)
            .any(|a| self.admits(a))
    }

    /// Whether the control panel shows this domain.
    pub fn sees_domain(&self, domain: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Domain(own) => own.eq_ignore_ascii_case(domain),
            Scope::Address(_) => false,
        }
    }

    /// Whether this scope may change `account` (its settings, password, removal): an
    /// admin any, a domain admin those of their domain but the admins'.
    pub fn manages(&self, account: &Account) -> bool {
        match self {
            Scope::All => true,
            Scope::Domain(own) => {
                Address::domain_of(&account.address).eq_ignore_ascii_case(own)
                    && account.role != Role::Admin
            }
            Scope::Address(_) => false,
        }
    }

    /// Whether this scope may give `role` to an account.
    pub fn may_grant(&self, role: Role) -> bool {
        match self {
            Scope::All => true,
            Scope::Domain(_) => role != Role::Admin,
            Scope::Address(_) => false,
        }
    }

    /// Narrows an archive search to the scope.
    pub fn restrict(&self, query: &mut ArchiveQuery) {
        match self {
            Scope::All => {}
            Scope::Domain(domain) => query.domains = Some(vec![domain.clone()]),
            Scope::Address(own) => query.participant = Some(own.clone()),
        }
    }
}

/// What the HTTP server needs.
#[derive(Clone)]
pub struct WebConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The admin token (`Authorization: Bearer ...`).
    pub admin_token: String,
    /// Shown in status.
    pub io_backend: String,
    /// Upstream health and counters, when a relay runs.
    pub status: Option<Arc<dyn StatusSource>>,
    /// The archive's full-text index; without it, text searches scan the archive.
    pub archive_index: Option<Arc<ArchiveIndex>>,
    /// Serve HTTPS with this configuration (plain HTTP without).
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// Checks users' passwords for their own API (`/api/v1/me`); without it, only the
    /// admin token works.
    pub auth: Option<Arc<Authenticator>>,
    /// Accept passwords over plain HTTP (the listener is then on loopback): SPEC §6's
    /// `auth.allow_plaintext_loopback`.
    pub allow_plaintext_loopback: bool,
    /// A panel or webmail session ends after this long without a request (`[web]
    /// session_idle`, SPEC §8.1).
    pub session_idle: Duration,
    /// ... and after this long in any case (`[web] session_max`).
    pub session_max: Duration,
    /// Largest message webmail sends or saves (`limits.message_size_max`).
    pub message_bytes_max: usize,
    /// Most recipients of a message webmail sends (`limits.recipients_max`).
    pub recipients_max: usize,
    /// A request whose body stops coming for this long fails (and its connection
    /// closes); [`BODY_IDLE_DEFAULT`] in service.
    pub body_idle: Duration,
    /// Connections one client address (IPv6: its /64) may hold at once
    /// (`limits.connections_per_ip_max`); one more is closed at once.
    pub connections_per_ip_max: usize,
}

/// How long a client may leave a request's body waiting (as long as a header).
pub const BODY_IDLE_DEFAULT: Duration = HEADER_READ_TIMEOUT;

/// `[web] session_idle`'s default (SPEC §8.1).
pub const SESSION_IDLE_DEFAULT: Duration = Duration::from_secs(30 * 60);
/// `[web] session_max`'s default (SPEC §8.1).
pub const SESSION_MAX_DEFAULT: Duration = Duration::from_secs(12 * 3600);

/// The shared state of every request.
pub struct AppState {
    pub(crate) store: Store,
    pub(crate) token: String,
    pub(crate) started: Instant,
    pub(crate) io_backend: String,
    pub(crate) status: Option<Arc<dyn StatusSource>>,
    pub(crate) archive_index: Option<Arc<ArchiveIndex>>,
    pub(crate) auth: Option<Arc<Authenticator>>,
    /// Whether passwords may be checked on this listener (TLS, or plain HTTP on
    /// loopback when allowed).
    pub(crate) password_logins: bool,
    pub(crate) resets: api::reset::Resets,
    pub(crate) sessions: session::Sessions,
    /// Whether cookies get `Secure` (the listener speaks HTTPS).
    pub(crate) secure_cookies: bool,
    /// Largest message webmail sends or saves.
    pub(crate) message_bytes_max: usize,
    /// Most recipients of a message webmail sends.
    pub(crate) recipients_max: usize,
    /// Moves to `true` when the server stops, ending live-update streams.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
    /// [`WebConfig::body_idle`].
    pub(crate) body_idle: Duration,
    /// [`WebConfig::connections_per_ip_max`].
    pub(crate) connections_per_ip_max: usize,
}

/// The client's address, in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

/// The client's IP address (unspecified when a request did not come over a socket,
/// as in tests driving the router directly).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientIp, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<Peer>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.ip()),
        ))
    }
}

/// Time a client gets for a request's header (and an idle keep-alive connection for
/// the next request's).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a client may leave the server's writes waiting (not reading what it asked
/// for) before its connection is closed.
const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Time a client gets for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the listen backlog.
const CONNECTIONS_MAX: usize = 1024;
/// Requests at once on one HTTP/2 connection.
const H2_STREAMS_MAX: u32 = 100;
/// Bytes a client may send on an HTTP/2 connection, and on one request, before the
/// server has read them: what one connection can make it buffer stays about what
/// an HTTP/1.1 one can.
const H2_CONNECTION_WINDOW: u32 = 512 << 10;
const H2_STREAM_WINDOW: u32 = 256 << 10;
/// An idle HTTP/2 connection is pinged this often, and closed when a ping goes
/// unanswered this long.
const H2_KEEP_ALIVE: Duration = Duration::from_secs(30);

/// Connections open by client network ([`lifeboat_store::auth::client_network`]).
#[derive(Clone, Default)]
struct Clients(Arc<parking_lot::Mutex<std::collections::HashMap<IpAddr, usize>>>);

/// One connection of a client, counted until dropped.
struct Held {
    clients: Clients,
    network: IpAddr,
}

impl Clients {
    /// Counts a connection from `ip`; `None` when its network holds `max` already.
    fn hold(&self, ip: IpAddr, max: usize) -> Option<Held> {
        let network = lifeboat_store::auth::client_network(ip);
        let mut open = self.0.lock();
        let count = open.entry(network).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Held {
            clients: self.clone(),
            network,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.clients.0.lock();
        if let Some(count) = open.get_mut(&self.network) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.network);
            }
        }
    }
}

/// Accepts connections until `stopped` fires, each served on a task of its own (TLS
/// first, when configured), then asks every open connection to close after its
/// current request.
async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    app: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto;

    let stopping = state.stopping.clone();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX));
    let clients = Clients::default();
    // HTTP/2 where TLS negotiated it by ALPN (browsers speak it only over TLS),
    // HTTP/1.1 otherwise.
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_STREAMS_MAX)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .keep_alive_interval(H2_KEEP_ALIVE)
        .keep_alive_timeout(H2_KEEP_ALIVE);
    let http1 = Arc::new(builder.clone().http1_only());
    let http2 = Arc::new(builder.http2_only());
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore stays open"),
            _ = &mut stopped => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("http accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut stopped => break,
        };
        let Some(held) = clients.hold(peer.ip(), state.connections_per_ip_max) else {
            tracing::info!(
                %peer,
                "http connection refused: {} connections from this address already",
                state.connections_per_ip_max
            );
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let tcp = stall::Stalled::new(tcp, WRITE_STALL_TIMEOUT);
        let app = app.clone();
        let asked = Arc::new(AtomicBool::new(false));
        let body_idle = state.body_idle;
        let service = {
            let asked = asked.clone();
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                asked.store(true, Ordering::Relaxed);
                let mut request =
                    request.map(|body| axum::body::Body::new(body::IdleBody::new(body, body_idle)));
                request.extensions_mut().insert(Peer(peer));
                tower::ServiceExt::oneshot(app.clone(), request)
            })
        };
        let (http1, http2) = (http1.clone(), http2.clone());
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _held = held;
            let served = match tls {
                None => {
                    watcher
                        .watch(http1.serve_connection(TokioIo::new(tcp), service))
                        .await
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, "https handshake failed: {e}");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "https handshake timed out");
                                return;
                            }
                        };
                    if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
                        watcher
                            .watch(http1.serve_connection(TokioIo::new(stream), service))
                            .await
                    } else {
                        // HTTP/2 has no timeout for a first request (HTTP/1.1's
                        // header timeout): a connection that asks nothing in that
                        // time is closed, so idle ones cannot hold every slot.
                        let connection =
                            watcher.watch(http2.serve_connection(TokioIo::new(stream), service));
                        tokio::pin!(connection);
                        tokio::select! {
                            served = &mut connection => served,
                            _ = tokio::time::sleep(HEADER_READ_TIMEOUT) => {
                                if !asked.load(Ordering::Relaxed) {
                                    tracing::debug!(%peer, "http/2 connection asked nothing in {HEADER_READ_TIMEOUT:?}");
                                    return;
                                }
                                connection.await
                            }
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, "http connection: {e}");
            }
        });
    }
    // Live-update streams never finish on their own.
    let _ = stopping.send(true);
    graceful.shutdown().await;
}

/// A running HTTP server.
pub struct WebServer {
    local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl WebServer {
    /// Binds and starts serving on a thread of its own.
    pub fn start(store: Store, config: WebConfig) -> std::io::Result<WebServer> {
        let listener = std::net::TcpListener::bind(config.listen)?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let state = Arc::new(AppState {
            store,
            token: config.admin_token.clone(),
            started: Instant::now(),
            io_backend: config.io_backend.clone(),
            status: config.status.clone(),
            archive_index: config.archive_index.clone(),
            auth: config.auth.clone(),
            password_logins: config.tls.is_some() || config.allow_plaintext_loopback,
            resets: api::reset::Resets::default(),
            sessions: session::Sessions::new(config.session_idle, config.session_max),
            secure_cookies: config.tls.is_some(),
            message_bytes_max: config.message_bytes_max,
            recipients_max: config.recipients_max,
            stopping: tokio::sync::watch::channel(false).0,
            body_idle: config.body_idle,
            connections_per_ip_max: config.connections_per_ip_max,
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!("http listener: {e}");
                            return;
                        }
                    };
                    let tls = config.tls.map(tokio_rustls::TlsAcceptor::from);
                    let app = api::router(state.clone())
                        .merge(panel::router(state.clone()))
                        .layer(axum::middleware::from_fn(panel::security_headers));
                    serve(listener, state, app, tls, stopped).await;
                });
            })?;
        Ok(WebServer {
            local_addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets running requests finish (up to `grace`), and joins.
    pub fn shutdown(mut self, grace: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + grace;
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                tracing::warn!("http requests still running after {grace:?}; leaving them");
            }
        }
    }
}
