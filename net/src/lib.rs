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
#![forbid(unsafe_code)]

pub mod backend;
pub mod conn;
pub mod error;
pub mod framed;
pub mod limits;
pub mod server;
pub mod shutdown;
pub mod tls;

pub use backend::{probe_uring, select_backend, Backend, BackendChoice, IoMode};
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
