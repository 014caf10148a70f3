//! One client connection: TCP, optionally upgraded to TLS, with a read buffer that
//! hands out CRLF lines, skips literals and dot-terminated bodies without copying them,
//! and a timeout on every read and write.
//!
//! Invariants:
//! - `buffer[start..end]` holds bytes received and not yet consumed; nothing is lost
//!   when a read future is dropped half-way (IDLE holders race reads against a stop
//!   signal), because `start`/`end` only move after a read has completed.
//! - No line may exceed [`LINE_BYTES_MAX`]: a server that never sends a line end
//!   cannot make the client grow without bound.
//! - TLS is started only on an empty buffer: bytes that arrived in clear text before
//!   the handshake would otherwise be taken as protected (the STARTTLS injection of
//!   RFC 3207 §6 / RFC 2595 §3.1). DEFLATE (IMAP COMPRESS, RFC 4978) likewise.
//! - [`Connection::wire_bytes`] counts the octets that crossed the socket (after
//!   compression, before TLS), so runs with and without COMPRESS compare.

use crate::error::{ErrorKind, Outcome};
use crate::tls::TlsClient;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;

/// How much is asked of the socket per read; large enough that a POP3 RETR of a
/// 20 KiB message is one or two reads.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Longest line accepted from a server. IMAP SEARCH results of large mailboxes are the
/// longest legitimate lines (about 7 bytes per message number).
pub const LINE_BYTES_MAX: usize = 1024 * 1024;

/// Time limits of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect (and, for implicit TLS, the handshake).
    pub connect: Duration,
    /// Each read or write once connected.
    pub io: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            io: Duration::from_secs(30),
        }
    }
}

enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while the TCP stream is moved into a TLS handshake, or after a failed one.
    Closed,
}

/// DEFLATE both ways (RFC 4978), raw (RFC 1951, no zlib wrapper).
struct Deflate {
    compress: Compress,
    decompress: Decompress,
    /// Octets read from the socket and not yet decompressed.
    input: Vec<u8>,
    input_start: usize,
    /// Compressed output, reused.
    output: Vec<u8>,
}

/// A buffered client connection. See the module documentation for its invariants.
pub struct Connection {
    transport: Transport,
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    io_timeout: Duration,
    deflate: Option<Box<Deflate>>,
    wire_read: u64,
    wire_written: u64,
}

impl Connection {
    /// Opens a TCP connection and, with `implicit_tls`, performs the TLS handshake
    /// right away (SMTPS, IMAPS, POP3S).
    pub async fn open(
        address: SocketAddr,
        timeouts: &Timeouts,
        implicit_tls: Option<&TlsClient>,
    ) -> Outcome<Self> {
        let tcp = match timeout(timeouts.connect, TcpStream::connect(address)).await {
            Err(_elapsed) => return Err(ErrorKind::Timeout),
            Ok(Err(error)) => return Err(ErrorKind::from_connect(&error)),
            Ok(Ok(tcp)) => tcp,
        };
        // Commands are small and their latency is what is measured: Nagle's algorithm
        // would hold a pipelined command group back until the previous one is acked.
        let _ = tcp.set_nodelay(true);
        let mut connection = Connection {
            transport: Transport::Plain(tcp),
            buffer: vec![0; READ_CHUNK_BYTES],
            start: 0,
            end: 0,
            io_timeout: timeouts.io,
            deflate: None,
            wire_read: 0,
            wire_written: 0,
        };
        if let Some(tls) = implicit_tls {
            connection.start_tls(tls).await?;
        }
        Ok(connection)
    }

    /// Upgrades the connection to TLS after the server agreed to STARTTLS/STLS.
    pub async fn start_tls(&mut self, tls: &TlsClient) -> Outcome<()> {
        if self.start != self.end {
            return Err(ErrorKind::Protocol);
        }
        let Transport::Plain(tcp) = std::mem::replace(&mut self.transport, Transport::Closed)
        else {
            return Err(ErrorKind::Protocol);
        };
        let handshake = tls.connector.connect(tls.server_name.clone(), tcp);
        match timeout(self.io_timeout, handshake).await {
            Err(_elapsed) => Err(ErrorKind::Timeout),
            // Whatever breaks a handshake (alert, bad certificate, garbage, a close
            // half-way) is a TLS failure to the operator.
            Ok(Err(_error)) => Err(ErrorKind::Tls),
            Ok(Ok(stream)) => {
                self.transport = Transport::Tls(Box::new(stream));
                Ok(())
            }
        }
    }

    /// Bounds each later read or write by `io_timeout` (a server that may stay silent
    /// for long, as in IDLE, is waited for longer).
    pub fn set_io_timeout(&mut self, io_timeout: Duration) {
        self.io_timeout = io_timeout;
    }

    /// The bound on each read or write.
    pub fn io_timeout(&self) -> Duration {
        self.io_timeout
    }

    /// Whether the connection is protected by TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.transport, Transport::Tls(_))
    }

    /// Compresses and decompresses everything from here on (IMAP COMPRESS DEFLATE,
    /// RFC 4978 §3, after the server's OK).
    pub fn start_deflate(&mut self) -> Outcome<()> {
        if self.start != self.end || self.deflate.is_some() {
            return Err(ErrorKind::Protocol);
        }
        self.deflate = Some(Box::new(Deflate {
            compress: Compress::new(Compression::default(), false),
            decompress: Decompress::new(false),
            input: Vec::with_capacity(READ_CHUNK_BYTES),
            input_start: 0,
            output: Vec::new(),
        }));
        Ok(())
    }

    /// Whether DEFLATE is on.
    pub fn is_compressed(&self) -> bool {
        self.deflate.is_some()
    }

    /// Octets read from and written to the socket so far (compressed ones as sent).
    pub fn wire_bytes(&self) -> (u64, u64) {
        (self.wire_read, self.wire_written)
    }

    /// Sends `bytes` completely (compressed and flushed when DEFLATE is on).
    pub async fn write_all(&mut self, bytes: &[u8]) -> Outcome<()> {
        let bytes: &[u8] = match &mut self.deflate {
            Some(deflate) => {
                deflate.output.clear();
                let mut consumed = 0;
                loop {
                    deflate.output.reserve(bytes.len() / 2 + 64);
                    let before = deflate.compress.total_in();
                    deflate
                        .compress
                        .compress_vec(&bytes[consumed..], &mut deflate.output, FlushCompress::Sync)
                        .map_err(|_| ErrorKind::Protocol)?;
                    consumed += (deflate.compress.total_in() - before) as usize;
                    if consumed == bytes.len() && deflate.output.len() < deflate.output.capacity() {
                        break;
                    }
                }
                &deflate.output
            }
            None => bytes,
        };
        self.wire_written += bytes.len() as u64;
        let transport = &mut self.transport;
        let write = async {
            match transport {
                Transport::Plain(stream) => stream.write_all(bytes).await,
                Transport::Tls(stream) => {
                    stream.write_all(bytes).await?;
                    stream.flush().await
                }
                Transport::Closed => Err(std::io::ErrorKind::NotConnected.into()),
            }
        };
        match timeout(self.io_timeout, write).await {
            Err(_elapsed) => Err(ErrorKind::Timeout),
            Ok(Err(error)) => Err(ErrorKind::from_io(&error)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Reads more bytes into the buffer, making room first. Fails with `Closed` at end
    /// of stream.
    async fn fill(&mut self) -> Outcome<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buffer.len() {
            if self.start > 0 {
                self.buffer.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buffer.len() < LINE_BYTES_MAX + READ_CHUNK_BYTES {
                self.buffer.resize(self.buffer.len() * 2, 0);
            } else {
                return Err(ErrorKind::Protocol);
            }
        }
        if self.deflate.is_some() {
            return self.fill_decompressed().await;
        }
        let space = &mut self.buffer[self.end..];
        let count = Self::read_socket(&mut self.transport, space, self.io_timeout).await?;
        self.wire_read += count as u64;
        self.end += count;
        Ok(())
    }

    /// One read from the socket; `Closed` at end of stream.
    async fn read_socket(
        transport: &mut Transport,
        space: &mut [u8],
        io_timeout: Duration,
    ) -> Outcome<usize> {
        let read = async {
            match transport {
                Transport::Plain(stream) => stream.read(space).await,
                Transport::Tls(stream) => stream.read(space).await,
                Transport::Closed => Err(std::io::ErrorKind::NotConnected.into()),
            }
        };
        match timeout(io_timeout, read).await {
            Err(_elapsed) => Err(ErrorKind::Timeout),
            Ok(Err(error)) => Err(ErrorKind::from_io(&error)),
            Ok(Ok(0)) => Err(ErrorKind::Closed),
            Ok(Ok(count)) => Ok(count),
        }
    }

    /// Decompresses into the buffer's free space, reading from the socket until at
    /// least one octet comes out.
    async fn fill_decompressed(&mut self) -> Outcome<()> {
        let Some(deflate) = self.deflate.as_mut() else {
            return Err(ErrorKind::Protocol);
        };
        loop {
            if deflate.input_start < deflate.input.len() {
                let space = &mut self.buffer[self.end..];
                let (in_before, out_before) = (
                    deflate.decompress.total_in(),
                    deflate.decompress.total_out(),
                );
                deflate
                    .decompress
                    .decompress(
                        &deflate.input[deflate.input_start..],
                        space,
                        FlushDecompress::Sync,
                    )
                    .map_err(|_| ErrorKind::Protocol)?;
                deflate.input_start += (deflate.decompress.total_in() - in_before) as usize;
                let produced = (deflate.decompress.total_out() - out_before) as usize;
                self.end += produced;
                if produced > 0 {
                    return Ok(());
                }
                if deflate.input_start < deflate.input.len() {
                    // No output and input left: only possible when nothing fits.
                    return Err(ErrorKind::Protocol);
                }
            }
            deflate.input.resize(READ_CHUNK_BYTES, 0);
            deflate.input_start = 0;
            let count =
                match Self::read_socket(&mut self.transport, &mut deflate.input, self.io_timeout)
                    .await
                {
                    Ok(count) => count,
                    Err(kind) => {
                        deflate.input.clear();
                        return Err(kind);
                    }
                };
            deflate.input.truncate(count);
            self.wire_read += count as u64;
        }
    }

    /// Returns the next line without its line end (CRLF, or a bare LF from a sloppy
    /// server).
    pub async fn read_line(&mut self) -> Outcome<&[u8]> {
        let mut scanned = 0;
        loop {
            let pending = &self.buffer[self.start..self.end];
            if let Some(offset) = memchr::memchr(b'\n', &pending[scanned..]) {
                let line_start = self.start;
                let mut line_end = line_start + scanned + offset;
                self.start = line_end + 1;
                if line_end > line_start && self.buffer[line_end - 1] == b'\r' {
                    line_end -= 1;
                }
                return Ok(&self.buffer[line_start..line_end]);
            }
            scanned = pending.len();
            if scanned > LINE_BYTES_MAX {
                return Err(ErrorKind::Protocol);
            }
            self.fill().await?;
        }
    }

    /// Consumes exactly `count` bytes (an IMAP literal) without keeping them.
    pub async fn skip_exact(&mut self, count: u64) -> Outcome<()> {
        let mut remaining = count;
        while remaining > 0 {
            if self.start == self.end {
                self.fill().await?;
            }
            let available = (self.end - self.start) as u64;
            let taken = available.min(remaining);
            // `taken <= available`, which is a usize.
            self.start += taken as usize;
            remaining -= taken;
        }
        Ok(())
    }

    /// Consumes a dot-terminated multi-line body (POP3 RETR, RFC 1939 §3) that starts
    /// at the beginning of a line, and returns its length in bytes as sent (still
    /// dot-stuffed, without the terminating `.` line).
    pub async fn skip_dot_body(&mut self) -> Outcome<u64> {
        const TERMINATOR_INSIDE: &[u8] = b"\n.\r\n";
        const TERMINATOR_ALONE: &[u8] = b".\r\n";
        while self.end - self.start < TERMINATOR_ALONE.len() {
            self.fill().await?;
        }
        if self.buffer[self.start..self.end].starts_with(TERMINATOR_ALONE) {
            self.start += TERMINATOR_ALONE.len();
            return Ok(0);
        }
        let finder = memchr::memmem::Finder::new(TERMINATOR_INSIDE);
        let mut body_bytes = 0u64;
        loop {
            let pending = &self.buffer[self.start..self.end];
            if let Some(offset) = finder.find(pending) {
                body_bytes += offset as u64 + 1;
                self.start += offset + TERMINATOR_INSIDE.len();
                return Ok(body_bytes);
            }
            // The last bytes may be the beginning of a terminator split across reads.
            let kept = pending.len().min(TERMINATOR_INSIDE.len() - 1);
            let consumed = pending.len() - kept;
            body_bytes += consumed as u64;
            self.start += consumed;
            self.fill().await?;
        }
    }

    /// Closes the connection politely; errors are irrelevant at this point.
    pub async fn close(mut self) {
        let transport = &mut self.transport;
        let shutdown = async {
            match transport {
                Transport::Plain(stream) => stream.shutdown().await,
                Transport::Tls(stream) => stream.shutdown().await,
                Transport::Closed => Ok(()),
            }
        };
        let _ = timeout(self.io_timeout, shutdown).await;
    }
}

/// Whether and how a protocol client protects its connection.
#[derive(Debug, Clone, Default)]
pub enum Security {
    /// Clear text throughout.
    #[default]
    Plain,
    /// Clear text greeting, then STARTTLS (SMTP, IMAP) or STLS (POP3).
    StartTls(std::sync::Arc<TlsClient>),
    /// TLS from the first byte (SMTPS, IMAPS, POP3S).
    Implicit(std::sync::Arc<TlsClient>),
}

impl Security {
    /// The TLS client to use right after connecting, if any.
    pub fn implicit(&self) -> Option<&TlsClient> {
        match self {
            Security::Implicit(tls) => Some(tls),
            _ => None,
        }
    }

    /// The TLS client to use after STARTTLS/STLS, if any.
    pub fn upgrade(&self) -> Option<&TlsClient> {
        match self {
            Security::StartTls(tls) => Some(tls),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
    use tokio::net::TcpListener;

    /// After `start_deflate`, lines come in decompressed whatever the chunks, writes
    /// go out compressed and sync-flushed, and the wire counts are the compressed
    /// octets.
    #[tokio::test]
    async fn deflate_both_ways() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let text = b"* OK first line\r\n".repeat(200);
            let mut compress = Compress::new(Compression::default(), false);
            let mut out = Vec::with_capacity(text.len() + 64);
            compress
                .compress_vec(&text, &mut out, FlushCompress::Sync)
                .unwrap();
            // Two writes, split inside the compressed stream.
            socket.write_all(&out[..out.len() / 2]).await.unwrap();
            socket.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
            socket.write_all(&out[out.len() / 2..]).await.unwrap();
            let mut received = vec![0u8; 4096];
            let count = socket.read(&mut received).await.unwrap();
            let mut decompress = Decompress::new(false);
            let mut plain = Vec::with_capacity(4096);
            decompress
                .decompress_vec(&received[..count], &mut plain, FlushDecompress::Sync)
                .unwrap();
            (out.len(), count, plain)
        });
        let mut connection = Connection::open(address, &Timeouts::default(), None)
            .await
            .unwrap();
        connection.start_deflate().unwrap();
        for _ in 0..200 {
            assert_eq!(connection.read_line().await.unwrap(), b"* OK first line");
        }
        connection.write_all(b"a1 NOOP\r\n").await.unwrap();
        let (sent, received, plain) = server.await.unwrap();
        assert_eq!(plain, b"a1 NOOP\r\n");
        assert_eq!(connection.wire_bytes(), (sent as u64, received as u64));
        assert!(sent < 200 * 17 / 4, "{sent}");
        assert!(connection.start_deflate().is_err());
    }
}
