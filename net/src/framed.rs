//! Framing: what a protocol server reads and writes through.
//!
//! [`Framed`] buffers input from a [`Conn`] and offers the three shapes mail protocols
//! need: CRLF-terminated command lines ([`Framed::read_line`]), exact byte counts for
//! IMAP literals and BDAT chunks ([`Framed::read_exact_into`]), and raw buffer access
//! for DATA-style streaming ([`Framed::buffer`], [`Framed::fill`], [`Framed::consume`]).
//! Every wait is bounded by the idle timeout and, when set, the command deadline, and
//! waits for input end early with [`NetError::ShuttingDown`] when the server stops.
//!
//! Invariants:
//! - Only CRLF ends a line. A bare LF is part of the line, for the protocol parser to
//!   reject: accepting it as an end of line is what makes SMTP smuggling possible.
//! - A line is at most `line_bytes_max` bytes including its CRLF; the buffer never
//!   holds more than [`Framed::buffer_bytes_max`] bytes plus one read.
//! - `buf[start..]` are the bytes received and not consumed. A line returned by
//!   `read_line` stays in the buffer (so it can be borrowed) and is consumed by the
//!   next operation.
//! - STARTTLS ([`Framed::start_tls`]) consumes the plaintext `Framed` and drops its
//!   buffer: bytes that arrived before the handshake cannot reach the protocol or TLS
//!   afterwards (CVE-2011-0411). The count discarded is returned for logging.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::conn::{Conn, Stream, READ_CHUNK_BYTES};
use crate::error::NetError;
use crate::shutdown::Shutdown;
use crate::tls::{TlsAcceptor, TlsConn};

/// `limits.line_bytes_max` default (SPEC §8).
pub const LINE_BYTES_MAX_DEFAULT: usize = 4096;
/// `limits.idle_timeout` default (SPEC §8).
pub const IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5 * 60);
/// Time a client gets to complete a TLS handshake. Not configurable: no legitimate
/// client needs longer, and a slow handshake holds a connection slot.
pub const TLS_HANDSHAKE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// Smallest accepted `line_bytes_max`: RFC 5321 §4.5.3.1.4 requires command lines of
/// 512 bytes, the strictest of the mail protocols.
pub const LINE_BYTES_MIN: usize = 512;

/// Per-connection framing settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameConfig {
    /// Longest line accepted, CRLF included; raised to [`LINE_BYTES_MIN`] if lower.
    pub line_bytes_max: usize,
    /// Longest wait for the peer to send or accept data.
    pub idle_timeout: Duration,
    /// Longest TLS handshake (implicit TLS and STARTTLS).
    pub tls_handshake_timeout: Duration,
}

impl Default for FrameConfig {
    fn default() -> Self {
        FrameConfig {
            line_bytes_max: LINE_BYTES_MAX_DEFAULT,
            idle_timeout: IDLE_TIMEOUT_DEFAULT,
            tls_handshake_timeout: TLS_HANDSHAKE_TIMEOUT_DEFAULT,
        }
    }
}

/// How a connection came to use TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsState {
    /// Plaintext.
    None,
    /// TLS from the first byte (submissions, imaps, pop3s).
    Implicit,
    /// Upgraded by STARTTLS / STLS.
    Upgraded,
}

/// Facts about a connection for logging and policy (relay networks, loopback
/// plaintext authentication).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// The address the client connected to.
    pub local: SocketAddr,
    /// The listener's name, e.g. `smtp`.
    pub listener: Arc<str>,
    /// Index of the I/O thread serving the connection.
    pub thread_index: usize,
    /// Whether and how TLS is in use.
    pub tls: TlsState,
}

/// Buffered, framed access to a connection; see the module documentation.
pub struct Framed<C = Stream> {
    conn: C,
    buf: Vec<u8>,
    /// First unconsumed byte of `buf`.
    start: usize,
    /// Length of the line last returned by `read_line`, consumed by the next call.
    returned_line: usize,
    /// Bytes after `start` known to hold no CRLF, so a long line is scanned once.
    scanned: usize,
    config: FrameConfig,
    command_deadline: Option<Instant>,
    shutdown: Option<Shutdown>,
    interrupt_on_shutdown: bool,
    info: ConnInfo,
}

impl<C> std::fmt::Debug for Framed<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framed")
            .field("info", &self.info)
            .field("buffered_bytes", &(self.buf.len() - self.start))
            .finish()
    }
}

enum Wait {
    Read,
    Write,
}

impl<C: Conn> Framed<C> {
    /// Wraps `conn`. `shutdown`, when given, interrupts waits for input.
    pub fn new(conn: C, config: FrameConfig, info: ConnInfo, shutdown: Option<Shutdown>) -> Self {
        Framed {
            conn,
            buf: Vec::new(),
            start: 0,
            returned_line: 0,
            scanned: 0,
            config: FrameConfig {
                line_bytes_max: config.line_bytes_max.max(LINE_BYTES_MIN),
                ..config
            },
            command_deadline: None,
            shutdown,
            interrupt_on_shutdown: true,
            info,
        }
    }

    /// Facts about the connection.
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }

    /// The settings in force (`line_bytes_max` raised to at least [`LINE_BYTES_MIN`]).
    pub fn config(&self) -> &FrameConfig {
        &self.config
    }

    /// The underlying connection, e.g. to inspect the TLS session.
    pub fn get_ref(&self) -> &C {
        &self.conn
    }

    /// The server's shutdown signal, to `select!` on in long operations.
    pub fn shutdown(&self) -> Option<&Shutdown> {
        self.shutdown.as_ref()
    }

    /// Whether shutdown interrupts waits for input (the default). A handler finishing a
    /// message transfer during shutdown may turn it off.
    pub fn set_interrupt_on_shutdown(&mut self, interrupt: bool) {
        self.interrupt_on_shutdown = interrupt;
    }

    /// Bounds every wait from now until [`Framed::clear_command_deadline`] to end
    /// `timeout` from now, e.g. for a whole DATA transfer, on top of the idle timeout.
    pub fn set_command_deadline(&mut self, timeout: Duration) {
        self.command_deadline = Some(Instant::now() + timeout);
    }

    /// Removes the command deadline.
    pub fn clear_command_deadline(&mut self) {
        self.command_deadline = None;
    }

    /// Most bytes kept buffered for [`Framed::fill`]: a full line or a read's worth,
    /// whichever is more, plus one read.
    pub fn buffer_bytes_max(&self) -> usize {
        self.config.line_bytes_max.max(READ_CHUNK_BYTES) + READ_CHUNK_BYTES
    }

    /// Reads the next line, CRLF included. The slice is valid until the next call.
    ///
    /// Errors: [`NetError::LineTooLong`] when no CRLF comes within `line_bytes_max`
    /// (the bytes stay buffered; [`Framed::skip_line`] drops them),
    /// [`NetError::Closed`] at a clean end of stream, [`NetError::Truncated`] when the
    /// stream ends inside a line, timeouts and [`NetError::ShuttingDown`].
    pub async fn read_line(&mut self) -> Result<&[u8], NetError> {
        self.consume_returned_line();
        loop {
            let limit = self.config.line_bytes_max;
            if let Some(end) = self.find_line_end(limit) {
                self.returned_line = end;
                return Ok(&self.buf[self.start..self.start + end]);
            }
            if self.buffered() >= limit {
                return Err(NetError::LineTooLong { limit_bytes: limit });
            }
            if self.read_more().await? == 0 {
                return Err(if self.buffered() == 0 {
                    NetError::Closed
                } else {
                    NetError::Truncated
                });
            }
        }
    }

    /// Discards input up to and including the next CRLF, reading as needed; the way
    /// to resynchronise after [`NetError::LineTooLong`]. Returns the bytes discarded.
    /// Memory stays bounded however long the line is; time is bounded by the timeouts.
    pub async fn skip_line(&mut self) -> Result<usize, NetError> {
        self.consume_returned_line();
        let mut discarded = 0;
        loop {
            if let Some(end) = self.find_line_end(usize::MAX) {
                self.consume(end);
                return Ok(discarded + end);
            }
            // Keep a trailing CR: its LF may be the first byte of the next read.
            let keep = usize::from(self.buf.last() == Some(&b'\r'));
            let drop_bytes = self.buffered() - keep;
            self.consume(drop_bytes);
            discarded += drop_bytes;
            if self.read_more().await? == 0 {
                return Err(NetError::Truncated);
            }
        }
    }

    /// Appends exactly `count` bytes of input to `out` (an IMAP literal, a BDAT
    /// chunk). The caller bounds `count` by its protocol limit before calling.
    pub async fn read_exact_into(
        &mut self,
        count: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), NetError> {
        self.consume_returned_line();
        let mut remaining = count;
        loop {
            let take = remaining.min(self.buffered());
            out.extend_from_slice(&self.buf[self.start..self.start + take]);
            self.consume(take);
            remaining -= take;
            if remaining == 0 {
                return Ok(());
            }
            if self.read_more().await? == 0 {
                return Err(NetError::Truncated);
            }
        }
    }

    /// The bytes received and not yet consumed (the line last returned by `read_line`
    /// excluded).
    pub fn buffer(&self) -> &[u8] {
        &self.buf[self.start + self.returned_line..]
    }

    /// Marks the first `count` bytes of [`Framed::buffer`] as used.
    ///
    /// # Panics
    /// If `count` exceeds the buffered bytes: that is a bug in the caller's parser.
    pub fn consume(&mut self, count: usize) {
        self.consume_returned_line();
        assert!(
            count <= self.buffered(),
            "consume({count}) with {} bytes buffered",
            self.buffered()
        );
        self.start += count;
        self.scanned = self.scanned.saturating_sub(count);
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads more input into the buffer even if some is buffered (a parser needing
    /// more than it has). Returns the bytes added; 0 at end of stream.
    /// [`NetError::BufferFull`] when [`Framed::buffer_bytes_max`] is already buffered.
    pub async fn fill(&mut self) -> Result<usize, NetError> {
        self.consume_returned_line();
        let limit = self.buffer_bytes_max();
        if self.buffered() >= limit {
            return Err(NetError::BufferFull { limit_bytes: limit });
        }
        self.read_more().await
    }

    /// Queues `data` to send with the next flush (answers to a pipelined batch).
    pub fn queue(&mut self, data: &[u8]) -> Result<(), NetError> {
        self.conn.queue(data)
    }

    /// Sends everything queued, within the idle timeout and command deadline.
    pub async fn flush(&mut self) -> Result<(), NetError> {
        let deadline = self.deadline(Wait::Write);
        let result = tokio::time::timeout_at(deadline.0, self.conn.flush()).await;
        result.map_err(|_| deadline.1)?
    }

    /// Queues `data` and sends everything queued.
    pub async fn write_all(&mut self, data: &[u8]) -> Result<(), NetError> {
        self.conn.queue(data)?;
        self.flush().await
    }

    /// Sends what is queued and closes the connection gracefully (TLS `close_notify`,
    /// then FIN), within the idle timeout.
    pub async fn close(mut self) -> Result<(), NetError> {
        let deadline = self.deadline(Wait::Write);
        let result = tokio::time::timeout_at(deadline.0, self.conn.close()).await;
        result.map_err(|_| deadline.1)?
    }

    fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    fn consume_returned_line(&mut self) {
        let line = std::mem::take(&mut self.returned_line);
        if line > 0 {
            self.consume(line);
        }
    }

    /// Length (CRLF included) of the first line in the buffer if it ends within
    /// `limit` bytes.
    fn find_line_end(&mut self, limit: usize) -> Option<usize> {
        let window_end = self.buffered().min(limit);
        let window = &self.buf[self.start..self.start + window_end];
        // Resume one byte early: a CR at the end of the last scan may now have its LF.
        let mut from = self.scanned.saturating_sub(1).min(window.len());
        while let Some(offset) = memchr::memchr(b'\n', &window[from..]) {
            let lf = from + offset;
            if lf > 0 && window[lf - 1] == b'\r' {
                self.scanned = 0;
                return Some(lf + 1);
            }
            from = lf + 1;
        }
        self.scanned = window.len();
        None
    }

    /// The instant a wait must end by, and the error to report if it does.
    fn deadline(&self, _wait: Wait) -> (Instant, NetError) {
        let idle = Instant::now() + self.config.idle_timeout;
        match self.command_deadline {
            Some(command) if command < idle => (command, NetError::CommandTimeout),
            _ => (idle, NetError::IdleTimeout),
        }
    }

    /// Appends one read to the buffer; 0 at end of stream.
    async fn read_more(&mut self) -> Result<usize, NetError> {
        if self.start > 0 {
            // Compact before growing; what remains is at most one line or one read.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let (deadline, timeout_error) = self.deadline(Wait::Read);
        let read = tokio::time::timeout_at(deadline, self.conn.read_some(&mut self.buf));
        let result = match &self.shutdown {
            Some(shutdown) if self.interrupt_on_shutdown => {
                tokio::select! {
                    biased;
                    () = shutdown.triggered() => return Err(NetError::ShuttingDown),
                    result = read => result,
                }
            }
            _ => read.await,
        };
        result.map_err(|_| timeout_error)?
    }
}

impl Framed<Stream> {
    /// True when the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    /// The backend the connection runs on.
    pub fn backend(&self) -> crate::Backend {
        self.conn.backend()
    }

    /// Upgrades a plaintext connection to TLS after STARTTLS / STLS.
    ///
    /// Sends `ready` (the protocol's go-ahead, e.g. `220 2.0.0 Ready to start TLS\r\n`)
    /// in plaintext, then performs the handshake within the handshake timeout. Returns
    /// the new TLS `Framed` and the number of plaintext bytes that had been received
    /// after the STARTTLS line and were discarded: a client may not pipeline past
    /// STARTTLS (RFC 3207 §4.2, RFC 2595 §3.1), and executing those bytes after the
    /// upgrade would let a man in the middle inject commands into the protected
    /// session (CVE-2011-0411). Taking `self` by value is what guarantees the old
    /// buffer can never be read again.
    ///
    /// Errors: [`NetError::AlreadyTls`]; [`NetError::ReadInFlight`] if a cancelled
    /// read is still pending (its bytes would arrive after the decision to upgrade);
    /// write, timeout and handshake errors. The connection is gone after an error.
    pub async fn start_tls(
        self,
        acceptor: &TlsAcceptor,
        ready: &[u8],
    ) -> Result<(Framed<Stream>, usize), NetError> {
        let Framed {
            conn,
            buf,
            start,
            returned_line,
            config,
            shutdown,
            interrupt_on_shutdown,
            mut info,
            ..
        } = self;
        let mut tcp = match conn {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(_) => return Err(NetError::AlreadyTls),
        };
        let discarded = buf.len() - start - returned_line;
        drop(buf);
        if tcp.read_in_flight() {
            return Err(NetError::ReadInFlight);
        }
        let upgrade = async {
            tcp.write_all(ready).await?;
            TlsConn::accept(tcp, acceptor).await
        };
        let tls = tokio::time::timeout(config.tls_handshake_timeout, upgrade)
            .await
            .map_err(|_| NetError::IdleTimeout)??;
        info.tls = TlsState::Upgraded;
        let mut framed = Framed::new(Stream::Tls(Box::new(tls)), config, info, shutdown);
        framed.interrupt_on_shutdown = interrupt_on_shutdown;
        Ok((framed, discarded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::net::{IpAddr, Ipv4Addr};

    /// A connection that delivers scripted chunks, then end of stream (or waits
    /// forever, to exercise timeouts).
    struct Script {
        chunks: VecDeque<Vec<u8>>,
        hang_at_end: bool,
        sent: Vec<u8>,
        queued: Vec<u8>,
    }

    impl Script {
        fn new(chunks: &[&[u8]]) -> Self {
            Script {
                chunks: chunks.iter().map(|c| c.to_vec()).collect(),
                hang_at_end: false,
                sent: Vec::new(),
                queued: Vec::new(),
            }
        }

        fn split(input: &[u8], size: usize) -> Self {
            let chunks: Vec<&[u8]> = input.chunks(size).collect();
            Script::new(&chunks)
        }
    }

    impl Conn for Script {
        async fn read_some(&mut self, out: &mut Vec<u8>) -> Result<usize, NetError> {
            match self.chunks.pop_front() {
                Some(chunk) => {
                    out.extend_from_slice(&chunk);
                    Ok(chunk.len())
                }
                None if self.hang_at_end => std::future::pending().await,
                None => Ok(0),
            }
        }
        fn queue(&mut self, data: &[u8]) -> Result<(), NetError> {
            self.queued.extend_from_slice(data);
            Ok(())
        }
        async fn flush(&mut self) -> Result<(), NetError> {
            self.sent.append(&mut self.queued);
            Ok(())
        }
        async fn close(&mut self) -> Result<(), NetError> {
            self.flush().await
        }
    }

    fn info() -> ConnInfo {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2525);
        ConnInfo {
            peer: addr,
            local: addr,
            listener: Arc::from("test"),
            thread_index: 0,
            tls: TlsState::None,
        }
    }

    fn framed(conn: Script, line_bytes_max: usize) -> Framed<Script> {
        let config = FrameConfig {
            line_bytes_max,
            ..FrameConfig::default()
        };
        Framed::new(conn, config, info(), None)
    }

    fn run<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(future)
    }

    /// Reads lines until an error, recording each line or error as text.
    async fn collect_lines(mut framed: Framed<Script>) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match framed.read_line().await {
                Ok(line) => seen.push(String::from_utf8_lossy(line).into_owned()),
                Err(NetError::LineTooLong { .. }) => {
                    seen.push("<too long>".into());
                    match framed.skip_line().await {
                        Ok(_) => {}
                        Err(error) => {
                            seen.push(format!("<{error}>"));
                            return seen;
                        }
                    }
                }
                Err(error) => {
                    seen.push(format!("<{error}>"));
                    return seen;
                }
            }
        }
    }

    const CLOSED: &str = "<connection closed by the peer>";
    const TRUNCATED: &str = "<connection closed by the peer in the middle of a line or literal>";

    /// (input, line_bytes_max, expected lines and errors).
    fn line_cases() -> Vec<(Vec<u8>, usize, Vec<&'static str>)> {
        let long = [vec![b'x'; 600], b"\r\nNOOP\r\n".to_vec()].concat();
        let exact = [vec![b'y'; 510], b"\r\n".to_vec()].concat();
        let one_over = [vec![b'z'; 511], b"\r\nNEXT\r\n".to_vec()].concat();
        vec![
            (
                b"HELO a\r\nQUIT\r\n".to_vec(),
                512,
                vec!["HELO a\r\n", "QUIT\r\n", CLOSED],
            ),
            (b"".to_vec(), 512, vec![CLOSED]),
            (b"partial".to_vec(), 512, vec![TRUNCATED]),
            // A bare LF does not end a line (SMTP smuggling).
            (b"A\nB\r\n".to_vec(), 512, vec!["A\nB\r\n", CLOSED]),
            (
                b"A\r\r\nB\r\n".to_vec(),
                512,
                vec!["A\r\r\n", "B\r\n", CLOSED],
            ),
            (b"\r\n".to_vec(), 512, vec!["\r\n", CLOSED]),
            (long, 512, vec!["<too long>", "NOOP\r\n", CLOSED]),
            (
                exact,
                512,
                vec![
                    Box::leak(format!("{}\r\n", "y".repeat(510)).into_boxed_str()),
                    CLOSED,
                ],
            ),
            (one_over, 512, vec!["<too long>", "NEXT\r\n", CLOSED]),
            (vec![b'w'; 2000], 512, vec!["<too long>", TRUNCATED]),
        ]
    }

    #[test]
    fn lines_are_split_at_crlf_only_whatever_the_chunking() {
        for (input, limit, expected) in line_cases() {
            for size in [1, 2, 3, 4, 8, 16, 64, 512, 4096] {
                let seen = run(collect_lines(framed(Script::split(&input, size), limit)));
                assert_eq!(
                    seen,
                    expected,
                    "chunk size {size}, input {:?}",
                    String::from_utf8_lossy(&input)
                );
            }
        }
    }

    #[test]
    fn line_limit_has_a_floor() {
        let framed = framed(Script::new(&[]), 10);
        assert_eq!(framed.config().line_bytes_max, LINE_BYTES_MIN);
    }

    #[test]
    fn exact_reads_mix_with_lines() {
        let input = b"APPEND {5}\r\nhello WORLD\r\nrest";
        for size in [1, 2, 5, 7, 64] {
            run(async {
                let mut framed = framed(Script::split(input, size), 512);
                assert_eq!(framed.read_line().await.unwrap(), b"APPEND {5}\r\n");
                let mut literal = Vec::new();
                framed.read_exact_into(5, &mut literal).await.unwrap();
                assert_eq!(literal, b"hello");
                assert_eq!(framed.read_line().await.unwrap(), b" WORLD\r\n");
                let mut tail = Vec::new();
                assert!(matches!(
                    framed.read_exact_into(10, &mut tail).await,
                    Err(NetError::Truncated)
                ));
                assert_eq!(tail, b"rest");
            });
        }
    }

    #[test]
    fn raw_buffer_access_streams_data() {
        run(async {
            let mut framed = framed(
                Script::new(&[b"DATA\r\nline one\r\n", b".\r\nQUIT\r\n"]),
                512,
            );
            assert_eq!(framed.read_line().await.unwrap(), b"DATA\r\n");
            // The returned line is not part of the raw buffer.
            assert_eq!(framed.buffer(), b"line one\r\n");
            let mut body = Vec::new();
            loop {
                if let Some(end) = framed.buffer().windows(3).position(|w| w == b".\r\n") {
                    body.extend_from_slice(&framed.buffer()[..end]);
                    framed.consume(end + 3);
                    break;
                }
                let n = framed.buffer().len();
                body.extend_from_slice(framed.buffer());
                framed.consume(n);
                assert!(framed.fill().await.unwrap() > 0);
            }
            assert_eq!(body, b"line one\r\n");
            assert_eq!(framed.read_line().await.unwrap(), b"QUIT\r\n");
        });
    }

    #[test]
    fn fill_refuses_to_grow_past_the_buffer_limit() {
        run(async {
            let big = vec![b'a'; READ_CHUNK_BYTES];
            let chunks: Vec<&[u8]> = vec![&big; 4];
            let mut framed = framed(Script::new(&chunks), 512);
            let limit = framed.buffer_bytes_max();
            let mut result = Ok(1);
            while let Ok(n) = result {
                assert!(n > 0);
                assert!(framed.buffer().len() <= limit);
                result = framed.fill().await;
            }
            assert!(matches!(result, Err(NetError::BufferFull { .. })));
        });
    }

    #[test]
    fn idle_and_command_timeouts_are_reported_apart() {
        run(async {
            let mut script = Script::new(&[b"NOOP\r\n"]);
            script.hang_at_end = true;
            let mut framed = framed(script, 512);
            assert_eq!(framed.read_line().await.unwrap(), b"NOOP\r\n");
            assert!(matches!(
                framed.read_line().await,
                Err(NetError::IdleTimeout)
            ));
            framed.set_command_deadline(Duration::from_secs(1));
            assert!(matches!(
                framed.read_line().await,
                Err(NetError::CommandTimeout)
            ));
            framed.clear_command_deadline();
            assert!(matches!(
                framed.read_line().await,
                Err(NetError::IdleTimeout)
            ));
        });
    }

    #[test]
    fn shutdown_interrupts_waiting_but_not_buffered_lines() {
        run(async {
            let mut script = Script::new(&[b"ONE\r\nTWO\r\n"]);
            script.hang_at_end = true;
            let shutdown = Shutdown::new();
            let mut framed = Framed::new(
                script,
                FrameConfig::default(),
                info(),
                Some(shutdown.clone()),
            );
            assert_eq!(framed.read_line().await.unwrap(), b"ONE\r\n");
            shutdown.trigger();
            assert_eq!(framed.read_line().await.unwrap(), b"TWO\r\n");
            assert!(matches!(
                framed.read_line().await,
                Err(NetError::ShuttingDown)
            ));
            framed.set_interrupt_on_shutdown(false);
            assert!(matches!(
                framed.read_line().await,
                Err(NetError::IdleTimeout)
            ));
        });
    }

    #[test]
    fn queued_replies_go_out_in_one_flush() {
        run(async {
            let mut framed = framed(Script::new(&[]), 512);
            framed.queue(b"250 a\r\n").unwrap();
            framed.queue(b"250 b\r\n").unwrap();
            assert!(framed.get_ref().sent.is_empty());
            framed.flush().await.unwrap();
            assert_eq!(framed.get_ref().sent, b"250 a\r\n250 b\r\n");
        });
    }
}
