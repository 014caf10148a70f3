//! Error types, one small enum per concern.
//!
//! [`NetError`] is what connection operations return; it is cheap (no formatting on the
//! hot path) and says precisely what happened so a protocol server can pick its reply
//! (e.g. `500 line too long` versus closing on a timeout). [`StartError`] covers
//! starting the runtime and [`TlsSetupError`] loading or generating certificates.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// An error on an established connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The operating system reported an error.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection cleanly between lines.
    #[error("connection closed by the peer")]
    Closed,
    /// The peer closed the connection in the middle of a line or a literal.
    #[error("connection closed by the peer in the middle of a line or literal")]
    Truncated,
    /// No CRLF within `limit_bytes` (the limit counts the CRLF). The bytes stay
    /// buffered: call [`crate::Framed::skip_line`] to resynchronise.
    #[error("line longer than {limit_bytes} bytes")]
    LineTooLong {
        /// The configured `line_bytes_max`.
        limit_bytes: usize,
    },
    /// The raw input buffer reached its limit without the caller consuming it.
    #[error("input buffer full ({limit_bytes} bytes)")]
    BufferFull {
        /// The buffer limit in force.
        limit_bytes: usize,
    },
    /// The peer sent nothing (or read nothing) for the idle timeout.
    #[error("idle timeout")]
    IdleTimeout,
    /// The command deadline set by the protocol server passed.
    #[error("command timeout")]
    CommandTimeout,
    /// The server is shutting down; raised while waiting for input so that the
    /// protocol server can say goodbye and end the session.
    #[error("server is shutting down")]
    ShuttingDown,
    /// TLS failed (bad handshake, bad record, certificate problem).
    #[error("TLS error: {0}")]
    Tls(#[from] rustls::Error),
    /// STARTTLS on a connection that already uses TLS.
    #[error("connection already uses TLS")]
    AlreadyTls,
    /// STARTTLS while a cancelled read is still pending in the kernel: its bytes would
    /// arrive after the upgrade, so the upgrade is refused rather than risk them.
    #[error("a read is still in flight; cannot upgrade to TLS")]
    ReadInFlight,
}

impl NetError {
    /// True for errors after which the peer is gone or the stream is unusable, so the
    /// protocol server should end the session without trying to reply.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            NetError::LineTooLong { .. }
                | NetError::IdleTimeout
                | NetError::CommandTimeout
                | NetError::ShuttingDown
        )
    }
}

/// An error while starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// `io = "uring"` was requested but `io_uring` does not work here.
    #[error("io_uring is unavailable: {reason}")]
    UringUnavailable {
        /// Why the probe failed (e.g. `io_uring_setup` refused by seccomp).
        reason: String,
    },
    /// A listener socket could not be created or bound.
    #[error("cannot listen for {name} on {addr}: {source}")]
    Bind {
        /// Listener name, e.g. `smtp`.
        name: String,
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
    /// A listener's settings are unusable (duplicate or empty name, oversized
    /// refusal line).
    #[error("invalid listener {name:?}: {reason}")]
    InvalidListener {
        /// The listener's name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An I/O thread or its runtime could not be started.
    #[error("cannot start I/O thread {index}: {source}")]
    Thread {
        /// Thread index.
        index: usize,
        /// The operating system's error.
        source: io::Error,
    },
}

/// An error while loading or generating the TLS certificate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read {path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate in {path}")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// Exactly one of cert.pem / key.pem exists: generating a new pair would replace
    /// something an operator put there, so stop instead.
    #[error("{present} exists but {missing} does not")]
    Incomplete {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// Writing a generated file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Certificate generation failed.
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls rejected the certificate or key.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}
