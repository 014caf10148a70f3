//! Lifeboat's HTTP side: the admin API (docs/api.md), later the control panel, webmail
//! and metrics.
//!
//! It runs on its own thread with its own tokio runtime, so nothing here can stall a
//! protocol core; the store is shared (reads take a read lock briefly, writes are
//! group-committed like any other).

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lifeboat_store::{ArchiveIndex, Store};

pub mod api;

/// Live figures from the parts of the server this crate cannot see (the relay's
/// router and counters): the binary supplies them.
pub trait StatusSource: Send + Sync {
    /// An upstream's health (`up`, `down`, `unknown`) and since when (Unix seconds,
    /// 0 = never changed).
    fn upstream_health(&self, upstream: &str) -> (String, i64);
    /// Counters for status and `/metrics`, as (name, value).
    fn counters(&self) -> Vec<(&'static str, u64)>;
    /// Re-delivers an archived message; the addresses it went to, or why not.
    fn redeliver(
        &self,
        id: lifeboat_store::ArchiveId,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<String>, String>> + Send + '_>>;
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
}

/// The shared state of every request.
pub struct AppState {
    pub(crate) store: Store,
    pub(crate) token: String,
    pub(crate) started: Instant,
    pub(crate) io_backend: String,
    pub(crate) status: Option<Arc<dyn StatusSource>>,
    pub(crate) archive_index: Option<Arc<ArchiveIndex>>,
}

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
    use hyper_util::service::TowerToHyperService;

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
        let service = TowerToHyperService::new(app.clone());
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
