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
            token: config.admin_token,
            started: Instant::now(),
            io_backend: config.io_backend,
            status: config.status,
            archive_index: config.archive_index,
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
                    let app = api::router(state);
                    let served = axum::serve(listener, app).with_graceful_shutdown(async {
                        let _ = stopped.await;
                    });
                    if let Err(e) = served.await {
                        tracing::error!("http server: {e}");
                    }
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
