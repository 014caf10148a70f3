//! Lifeboat's HTTP side (docs/api.md): the admin API with metrics, the accounts' own
//! API (archive search scoped by role) and password resets; later the control panel
//! and webmail pages.
//!
//! It runs on its own thread with its own tokio runtime, so nothing here can stall a
//! protocol core; the store is shared (reads take a read lock briefly, writes are
//! group-committed like any other). It speaks HTTPS when it is given a TLS
//! configuration (the server does so for every address but loopback).

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lifeboat_store::auth::Authenticator;
use lifeboat_store::{
    address_domain, normalize_address, Account, ArchiveEntry, ArchiveIndex, ArchiveQuery, Role,
    Store,
};

pub mod api;
#[doc(hidden)]
pub mod fuzz_support;
mod reset;
mod user;

/// Live figures from the parts of the server this crate cannot see (the relay's
/// router and counters): the binary supplies them.
pub trait StatusSource: Send + Sync {
    /// An upstream's health (`up`, `down`, `unknown`) and since when (Unix seconds,
    /// 0 = never changed).
    fn upstream_health(&self, upstream: &str) -> (String, i64);
    /// Counters for status and `/metrics`, as (name, value).
    fn counters(&self) -> Vec<(&'static str, u64)>;
    /// Re-delivers an archived message to those of its mailboxes `scope` admits; the
    /// addresses it went to, or why not.
    fn redeliver<'a>(
        &'a self,
        id: lifeboat_store::ArchiveId,
        scope: &'a Scope,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<String>, String>> + Send + 'a>>;
    /// Sends a plain-text notice from this server to `rcpt` (a password reset code),
    /// durably queued or placed when it returns `Ok`.
    fn send_notice<'a>(
        &'a self,
        rcpt: &'a str,
        subject: &'a str,
        text: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>>;
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
                Scope::Domain(address_domain(&account.address).to_ascii_lowercase())
            }
            Role::User => Scope::Address(account.address.clone()),
        }
    }

    /// Whether mail from or to `address` is in scope.
    pub fn admits(&self, address: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Domain(domain) => address_domain(address).eq_ignore_ascii_case(domain),
            Scope::Address(own) => normalize_address(address) == normalize_address(own),
        }
    }

    /// Whether an archived message is in scope: its sender or a recipient is.
    pub fn sees(&self, entry: &ArchiveEntry) -> bool {
        std::iter::once(&entry.mail_from)
            .chain(&entry.rcpt_to)
            .any(|a| self.admits(a))
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
}

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
    pub(crate) resets: reset::Resets,
}

/// The client's address, in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

/// Time a client gets for a request's header (and an idle keep-alive connection for
/// the next request's).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a client gets for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the listen backlog.
const CONNECTIONS_MAX: usize = 1024;

/// Accepts connections until `stopped` fires, each served on a task of its own (TLS
/// first, when configured), then asks every open connection to close after its
/// current request.
async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
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
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            request.extensions_mut().insert(Peer(peer));
            tower::ServiceExt::oneshot(app.clone(), request)
        });
        let http = http.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let served = match tls {
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(tcp), service))
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
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, "http connection: {e}");
            }
        });
    }
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
            resets: reset::Resets::default(),
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
                    serve(listener, api::router(state), tls, stopped).await;
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
