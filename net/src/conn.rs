//! Connections with owned buffers over either backend.
//!
//! [`Conn`] is the one interface protocol code reads and writes through; [`TcpConn`]
//! implements it over `io_uring` or epoll, [`crate::TlsConn`] over a [`TcpConn`], and
//! [`Stream`] is whichever of the two a connection currently is.
//!
//! `io_uring` takes ownership of buffers while the kernel uses them
//! (`read(buf) -> (result, buf)`), and an operation whose future is dropped keeps
//! running in the kernel. A naive timeout around a uring read would therefore lose the
//! bytes it eventually receives. [`TcpConn`] keeps each in-flight operation (and the
//! buffer it owns) inside itself, so the next call resumes it instead of starting
//! another.
//!
//! Invariants:
//! - At most one read and one write operation are in flight per connection.
//! - Cancel safety: dropping a `read_some` future loses no input; bytes given to
//!   `queue` or `write_all` are sent, in order, by the next `flush` or `write_all`,
//!   whatever happened to earlier futures.
//! - Output is sent in the order it was queued: the bytes owned by an in-flight write
//!   precede everything in the queue.
//! - A `TcpConn` dropped with an operation in flight shuts the socket down, so the
//!   kernel completes the operation at once and the descriptor is closed, instead of
//!   the connection lingering until the peer sends something.

use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::rc::Rc;

use crate::error::NetError;
use crate::limits::ConnectionPermit;
use crate::tls::TlsConn;

/// Most bytes one `read_some` appends: one TLS record's worth, large enough that bulk
/// transfers (DATA, APPEND) take few system calls, small enough to keep per-connection
/// memory low with thousands of idle connections.
pub const READ_CHUNK_BYTES: usize = 16 * 1024;

/// A byte stream a protocol server can run on, whatever the backend and whether or not
/// it is encrypted.
///
/// The futures are not `Send`: a connection stays on the thread that accepted it.
#[allow(async_fn_in_trait)] // single-threaded by design; no Send bound wanted.
pub trait Conn {
    /// Waits for input and appends at least one and at most [`READ_CHUNK_BYTES`] bytes
    /// to `out`. Returns the number appended; `Ok(0)` means the peer closed the
    /// connection.
    ///
    /// Cancel-safe: if the future is dropped, no input is lost.
    async fn read_some(&mut self, out: &mut Vec<u8>) -> Result<usize, NetError>;

    /// Queues `data` for sending without waiting. Nothing goes out until
    /// [`Conn::flush`] or [`Conn::write_all`]; queue several replies and flush once to
    /// answer a pipelined batch in one write.
    fn queue(&mut self, data: &[u8]) -> Result<(), NetError>;

    /// Sends everything queued. Cancel-safe: what is not yet sent stays queued.
    async fn flush(&mut self) -> Result<(), NetError>;

    /// Queues `data` and sends everything queued.
    async fn write_all(&mut self, data: &[u8]) -> Result<(), NetError> {
        self.queue(data)?;
        self.flush().await
    }

    /// Sends what is queued, then closes our direction of the connection (TLS:
    /// `close_notify` first). The peer sees end of stream.
    async fn close(&mut self) -> Result<(), NetError>;
}

type UringResult = (io::Result<usize>, Vec<u8>);
type UringOp = Pin<Box<dyn Future<Output = UringResult>>>;

/// A TCP connection over one of the two backends.
pub struct TcpConn {
    io: TcpIo,
    /// Output queued and not yet handed to the kernel.
    queued: Vec<u8>,
    /// Held for the connection's whole life so the limit counts it until it is gone.
    _permit: Option<ConnectionPermit>,
}

enum TcpIo {
    Epoll(tokio::net::TcpStream),
    Uring(UringIo),
}

struct UringIo {
    /// Shared with in-flight operations, which must outlive a dropped caller future.
    stream: Rc<tokio_uring::net::TcpStream>,
    /// Receive buffer, here whenever no read is in flight.
    read_buf: Option<Vec<u8>>,
    /// The in-flight read; kept here, not in the caller's future, so a cancelled
    /// `read_some` is resumed by the next one and its bytes are not lost.
    read_op: Option<UringOp>,
    /// The in-flight write owns the bytes it is sending.
    write_op: Option<UringOp>,
    /// A spare send buffer, reused so steady-state writes do not allocate.
    spare_write_buf: Vec<u8>,
}

impl std::fmt::Debug for TcpConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpConn")
            .field(
                "backend",
                &match self.io {
                    TcpIo::Epoll(_) => "epoll",
                    TcpIo::Uring(_) => "io_uring",
                },
            )
            .field("queued_bytes", &self.queued.len())
            .finish()
    }
}

impl TcpConn {
    /// Wraps a tokio (epoll) stream. Must be called on the runtime that will drive it.
    pub fn from_epoll(stream: tokio::net::TcpStream, permit: Option<ConnectionPermit>) -> Self {
        TcpConn {
            io: TcpIo::Epoll(stream),
            queued: Vec::new(),
            _permit: permit,
        }
    }

    /// Wraps a tokio-uring stream. Must be called on the tokio-uring runtime that will
    /// drive it.
    pub fn from_uring(
        stream: tokio_uring::net::TcpStream,
        permit: Option<ConnectionPermit>,
    ) -> Self {
        TcpConn {
            io: TcpIo::Uring(UringIo {
                stream: Rc::new(stream),
                read_buf: None,
                read_op: None,
                write_op: None,
                spare_write_buf: Vec::new(),
            }),
            queued: Vec::new(),
            _permit: permit,
        }
    }

    /// The backend this connection runs on.
    pub fn backend(&self) -> crate::Backend {
        match self.io {
            TcpIo::Epoll(_) => crate::Backend::Epoll,
            TcpIo::Uring(_) => crate::Backend::Uring,
        }
    }

    /// True while a cancelled read is still pending in the kernel (`io_uring` only);
    /// its bytes will be delivered by the next `read_some`.
    pub fn read_in_flight(&self) -> bool {
        matches!(&self.io, TcpIo::Uring(uring) if uring.read_op.is_some())
    }

    /// The output queue, for TLS to write records into without an extra copy.
    pub(crate) fn queue_buffer(&mut self) -> &mut Vec<u8> {
        &mut self.queued
    }

    fn shutdown_socket(&self, how: Shutdown) -> io::Result<()> {
        match &self.io {
            TcpIo::Epoll(stream) => socket2::SockRef::from(stream).shutdown(how),
            TcpIo::Uring(uring) => uring.stream.shutdown(how),
        }
    }
}

impl Conn for TcpConn {
    async fn read_some(&mut self, out: &mut Vec<u8>) -> Result<usize, NetError> {
        match &mut self.io {
            TcpIo::Epoll(stream) => loop {
                // try_read after readiness, rather than an async read, keeps all state
                // in `out`: a dropped future has read nothing.
                let start = out.len();
                out.resize(start + READ_CHUNK_BYTES, 0);
                match stream.try_read(&mut out[start..]) {
                    Ok(n) => {
                        out.truncate(start + n);
                        return Ok(n);
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        out.truncate(start);
                        stream.readable().await?;
                    }
                    Err(error) => {
                        out.truncate(start);
                        return Err(error.into());
                    }
                }
            },
            TcpIo::Uring(uring) => {
                let op = uring.read_op.get_or_insert_with(|| {
                    let mut buf = uring
                        .read_buf
                        .take()
                        .unwrap_or_else(|| Vec::with_capacity(READ_CHUNK_BYTES));
                    buf.clear();
                    let stream = Rc::clone(&uring.stream);
                    // The kernel fills the vector from its start up to its capacity.
                    Box::pin(async move { stream.read(buf).await })
                });
                let (result, buf) = op.await;
                uring.read_op = None;
                let appended = match result {
                    Ok(n) => {
                        out.extend_from_slice(&buf[..n]);
                        Ok(n)
                    }
                    Err(error) => Err(error.into()),
                };
                uring.read_buf = Some(buf);
                appended
            }
        }
    }

    fn queue(&mut self, data: &[u8]) -> Result<(), NetError> {
        self.queued.extend_from_slice(data);
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), NetError> {
        match &mut self.io {
            TcpIo::Epoll(stream) => {
                while !self.queued.is_empty() {
                    match stream.try_write(&self.queued) {
                        Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                        Ok(n) => {
                            self.queued.drain(..n);
                        }
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                            stream.writable().await?;
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
                Ok(())
            }
            TcpIo::Uring(uring) => loop {
                if let Some(op) = uring.write_op.as_mut() {
                    let (result, mut buf) = op.await;
                    uring.write_op = None;
                    let written = match result {
                        Ok(0) if !buf.is_empty() => {
                            return Err(io::Error::from(io::ErrorKind::WriteZero).into())
                        }
                        Ok(n) => n,
                        Err(error) => return Err(error.into()),
                    };
                    buf.drain(..written);
                    if !buf.is_empty() {
                        // A short write: the rest goes before anything still queued.
                        uring.write_op = Some(submit_write(&uring.stream, buf));
                        continue;
                    }
                    uring.spare_write_buf = buf;
                }
                if self.queued.is_empty() {
                    return Ok(());
                }
                let mut buf = std::mem::take(&mut uring.spare_write_buf);
                buf.clear();
                std::mem::swap(&mut buf, &mut self.queued);
                uring.write_op = Some(submit_write(&uring.stream, buf));
            },
        }
    }

    async fn close(&mut self) -> Result<(), NetError> {
        self.flush().await?;
        match self.shutdown_socket(Shutdown::Write) {
            Ok(()) => Ok(()),
            // The peer may already be gone; closing is then already done.
            Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

fn submit_write(stream: &Rc<tokio_uring::net::TcpStream>, buf: Vec<u8>) -> UringOp {
    let stream = Rc::clone(stream);
    Box::pin(async move { stream.write(buf).submit().await })
}

impl Drop for TcpConn {
    fn drop(&mut self) {
        if let TcpIo::Uring(uring) = &self.io {
            if uring.read_op.is_some() || uring.write_op.is_some() {
                // The in-flight operations hold the descriptor open; shutting the
                // socket down makes the kernel complete them now.
                let _ = uring.stream.shutdown(Shutdown::Both);
            }
        }
    }
}

/// A connection as a protocol server sees it: plaintext or TLS.
#[derive(Debug)]
pub enum Stream {
    /// Plaintext TCP.
    Plain(TcpConn),
    /// TLS over TCP (implicit, or after STARTTLS).
    Tls(Box<TlsConn>),
}

impl Stream {
    /// True when the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The backend the connection runs on.
    pub fn backend(&self) -> crate::Backend {
        match self {
            Stream::Plain(tcp) => tcp.backend(),
            Stream::Tls(tls) => tls.backend(),
        }
    }

    /// The rustls connection (negotiated version, cipher suite, SNI, ALPN), when TLS.
    pub fn tls_connection(&self) -> Option<&rustls::ServerConnection> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(tls) => Some(tls.connection()),
        }
    }
}

impl Conn for Stream {
    async fn read_some(&mut self, out: &mut Vec<u8>) -> Result<usize, NetError> {
        match self {
            Stream::Plain(tcp) => tcp.read_some(out).await,
            Stream::Tls(tls) => tls.read_some(out).await,
        }
    }

    fn queue(&mut self, data: &[u8]) -> Result<(), NetError> {
        match self {
            Stream::Plain(tcp) => tcp.queue(data),
            Stream::Tls(tls) => tls.queue(data),
        }
    }

    async fn flush(&mut self) -> Result<(), NetError> {
        match self {
            Stream::Plain(tcp) => tcp.flush().await,
            Stream::Tls(tls) => tls.flush().await,
        }
    }

    async fn close(&mut self) -> Result<(), NetError> {
        match self {
            Stream::Plain(tcp) => tcp.close().await,
            Stream::Tls(tls) => tls.close().await,
        }
    }
}
