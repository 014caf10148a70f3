//! Protocol-agnostic networking for the Lifeboat mail servers (SMTP, IMAP, POP3).
//!
//! The pieces, from the bottom up:
//!
//! - [`backend`]: choosing the I/O backend (`io_uring` through tokio-uring, or epoll
//!   through a tokio current-thread runtime) and probing whether `io_uring` works here.
//! - [`conn`]: the [`Conn`] trait, the owned-buffer TCP connection [`TcpConn`] over
//!   either backend, and [`Stream`] (plaintext or TLS).
//! - [`tls`]: rustls driven by hand over a [`TcpConn`] ([`TlsConn`]), certificate
//!   loading and self-signed certificate generation.
//! - [`framed`]: [`Framed`], the buffered reader/writer a protocol server talks to:
//!   CRLF lines with a length limit, exact-length reads for literals, raw buffer access,
//!   idle and command timeouts, and the STARTTLS upgrade that discards pipelined
//!   plaintext.
//! - [`limits`]: connection limits per listener and per client address, shared by all
//!   threads.
//! - [`shutdown`]: the shared shutdown signal.
//! - [`server`]: the thread-per-core runtime: N threads, each with its own
//!   single-threaded runtime and its own `SO_REUSEPORT` socket for every listener.
//! - [`wire`]: what the protocol crates' parsers share: the nom error type, CRLF line
//!   framing, SASL's base64, the set of session states a command is legal in.
//!
//! A protocol server is an async function over a [`Framed`] connection, started on
//! every I/O thread by a per-thread factory:
//!
//! ```no_run
//! use std::time::Duration;
//! use lifeboat_net::{
//!     Framed, IoMode, ListenerConfig, NetError, ServerBuilder, ServerConfig, Stream,
//!     TlsAcceptor,
//! };
//!
//! async fn session(mut framed: Framed<Stream>, tls: TlsAcceptor) {
//!     if framed.write_all(b"220 mx.example.test ESMTP\r\n").await.is_err() {
//!         return;
//!     }
//!     loop {
//!         let command = match framed.read_line().await {
//!             Ok(line) => line.to_ascii_uppercase(),
//!             Err(NetError::LineTooLong { .. }) => {
//!                 let _ = framed.write_all(b"500 5.5.2 Line too long\r\n").await;
//!                 if framed.skip_line().await.is_err() {
//!                     return;
//!                 }
//!                 continue;
//!             }
//!             Err(NetError::ShuttingDown) => {
//!                 let _ = framed.write_all(b"421 4.3.2 Shutting down\r\n").await;
//!                 return;
//!             }
//!             Err(_) => return,
//!         };
//!         if command == b"STARTTLS\r\n" && !framed.is_tls() {
//!             // Pipelined plaintext after STARTTLS is dropped here, never executed.
//!             match framed.start_tls(&tls, b"220 2.0.0 Ready to start TLS\r\n").await {
//!                 Ok((upgraded, discarded_bytes)) => {
//!                     if discarded_bytes > 0 {
//!                         eprintln!("{}: dropped {discarded_bytes} bytes pipelined after STARTTLS",
//!                             framed_peer(&upgraded));
//!                     }
//!                     framed = upgraded;
//!                 }
//!                 Err(_) => return,
//!             }
//!             continue;
//!         }
//!         // ... parse and run the command, then reply:
//!         if framed.write_all(b"250 2.0.0 OK\r\n").await.is_err() {
//!             return;
//!         }
//!     }
//! }
//!
//! fn framed_peer(framed: &Framed<Stream>) -> std::net::SocketAddr {
//!     framed.info().peer
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (tls, _generated) =
//!     TlsAcceptor::load_or_generate(None, None, "./lifeboat-data".as_ref(), "localhost")?;
//! let mut smtp = ListenerConfig::new("smtp", "127.0.0.1:2525".parse()?);
//! smtp.refusal = b"421 4.7.0 Too many connections, try later\r\n".to_vec();
//! let server = ServerBuilder::new(ServerConfig { threads: 0, io: IoMode::Auto })
//!     .listener(smtp, move |_thread| {
//!         // Runs once per I/O thread; per-thread state goes here.
//!         let tls = tls.clone();
//!         move |framed| session(framed, tls.clone())
//!     })
//!     .start()?;
//! eprintln!("network backend: {}", server.backend_choice());
//! // Later, on SIGTERM:
//! let report = server.shutdown(Duration::from_secs(30));
//! eprintln!("aborted {} connections", report.connections_aborted);
//! # Ok(())
//! # }
//! ```
//!
//! Invariants kept by the whole crate:
//!
//! - Nothing here knows a mail protocol: protocol servers supply handlers and the one
//!   refusal line sent when a connection limit is hit.
//! - A connection lives on the thread that accepted it; handlers need not be `Send`.
//! - Every read and write of [`TcpConn`], [`TlsConn`] and [`Stream`] is cancel-safe: a
//!   dropped read loses no input and a dropped write's queued bytes go out with the
//!   next write or flush. This is what makes timeouts and `select!` safe on `io_uring`,
//!   whose operations keep running in the kernel after their future is dropped.
//! - STARTTLS: plaintext read before the upgrade is discarded, never handed to the
//!   protocol or to TLS (CVE-2011-0411). Bytes still in the kernel then are read as
//!   TLS input, where injected plaintext can only make the handshake fail.
//! - Every buffer, count and wait has a limit, as a named constant or a configuration
//!   value.

pub mod backend;
pub mod budget;
pub mod conn;
pub mod error;
pub mod framed;
pub mod limits;
pub mod server;
pub mod shutdown;
pub mod tls;
pub mod wire;

pub use backend::{probe_uring, select_backend, Backend, BackendChoice, IoMode};
pub use budget::{MemoryBudget, Reservation};
pub use conn::{Conn, Stream, TcpConn, READ_CHUNK_BYTES};
pub use error::{NetError, StartError, TlsSetupError};
pub use framed::{ConnInfo, FrameConfig, Framed, TlsState};
pub use limits::{ConnectionLimits, LimitExceeded};
pub use server::{
    ListenerConfig, ListenerStats, Server, ServerBuilder, ServerConfig, ShutdownReport,
    ThreadContext,
};
pub use shutdown::Shutdown;
pub use tls::{ensure_self_signed, CertPaths, TlsAcceptor, TlsConn};

/// A connection's session, boxed so every protocol's handler has one type.
pub type SessionFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// The handler factory for [`ServerBuilder::listener`] that every protocol service
/// uses: on each I/O thread a handler that, per connection, runs `session` on a clone
/// of `service` (services are cheap to clone: an `Arc` inside).
pub fn per_connection<S, F, Fut>(
    service: S,
    session: F,
) -> impl Fn(&ThreadContext) -> Box<dyn Fn(Framed<Stream>) -> SessionFuture> + Send + Sync + 'static
where
    S: Clone + Send + Sync + 'static,
    F: Fn(S, Framed<Stream>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    move |_thread: &ThreadContext| {
        let service = service.clone();
        let session = session.clone();
        Box::new(move |framed: Framed<Stream>| {
            Box::pin(session(service.clone(), framed)) as SessionFuture
        })
    }
}

/// Runs `future` with a time limit, on either backend.
///
/// Both backends run on a tokio runtime with its timer enabled, so tokio's timer is
/// the one clock for both; this wrapper exists so that protocol crates need not depend
/// on tokio for it. Reads and writes of this crate are cancel-safe, so a timed-out
/// operation leaves the connection usable.
pub async fn timeout<F: std::future::Future>(
    duration: std::time::Duration,
    future: F,
) -> Result<F::Output, NetError> {
    tokio::time::timeout(duration, future)
        .await
        .map_err(|_| NetError::CommandTimeout)
}
