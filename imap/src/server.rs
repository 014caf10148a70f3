//! The IMAP server: [`ImapService`] runs a [`Session`] over a lifeboat-net [`Framed`]
//! connection and supplies what the session must not touch itself: the socket, TLS,
//! timers, the clock and the account's change signal. This is the only layer with
//! sockets and timers.
//!
//! Invariants:
//! - Every byte read is handed to the session at once; the session's framer keeps the
//!   line and literal limits, so the connection buffer never grows past one read.
//! - Input pipelined after STARTTLS is never executed: the session drops what it had
//!   buffered, and [`Framed::start_tls`] drops what the connection had.
//! - Responses to pipelined commands are sent once no complete command is left
//!   buffered (and during long responses, every
//!   [`OUTPUT_FLUSH_BYTES`](crate::session::OUTPUT_FLUSH_BYTES)).
//! - Between commands a client may be silent for [`ImapConfig::idle_timeout`]; during
//!   IDLE for [`ImapConfig::idle_command_timeout`] in all. Either way it then gets a
//!   BYE and the connection closes.
//! - During IDLE, a change to the account (a delivery, another session's STORE, on any
//!   thread) wakes the session through the store's account signal and is reported at
//!   once. The signal's version is read before each comparison with the store, so a
//!   change that lands in between is never missed.
//! - After COMPRESS DEFLATE (RFC 4978) every byte sent is compressed (raw DEFLATE,
//!   each batch of output ended with a sync flush so that the client can read it at
//!   once) and every byte received is decompressed before the session sees it, 64
//!   KiB at a time, each piece run before the next is made (DEFLATE inflates up to
//!   a thousandfold); the tagged OK of COMPRESS is the last thing sent uncompressed.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use lifeboat_net::{
    Framed, ListenerConfig, NetError, SharedBudget, Stream, ThreadContext, TlsAcceptor,
};
use lifeboat_store::auth::Authenticator;
use lifeboat_store::{ArchiveIndex, Signal, Store};
use tracing::Instrument;

use crate::parse::Limits;
use crate::recent::RecentMarks;
use crate::session::{Disconnected, Output, Progress, Session, SessionConfig};

/// `limits.idle_timeout` default (SPEC §8).
pub const IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5 * 60);
/// Longest IDLE: RFC 2177 §3 has clients re-issue IDLE at least every 29 minutes, so
/// a server may end one after 30.
pub const IDLE_COMMAND_TIMEOUT_MAX: Duration = Duration::from_secs(30 * 60);
/// [`ImapConfig::login_timeout`]'s default.
pub const LOGIN_TIMEOUT_DEFAULT: Duration = Duration::from_secs(180);
/// The line sent on the plaintext listener when a connection limit refuses a client
/// (RFC 3501 §7.1.5, RFC 5530 `UNAVAILABLE`).
pub const REFUSAL: &[u8] = b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n";

/// The future of one connection.
pub use lifeboat_net::SessionFuture;

/// Settings of the IMAP service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImapConfig {
    /// `server.hostname`, named in the greeting.
    pub hostname: String,
    /// `auth.allow_plaintext_loopback`: LOGIN and AUTHENTICATE without TLS from a
    /// loopback client (SPEC §6). Everyone else must use STARTTLS or imaps first.
    pub allow_plaintext_loopback: bool,
    /// `limits.idle_timeout`: how long a client may be silent between commands.
    /// (RFC 3501 §5.4 asks for at least 30 minutes; SPEC §8 sets 5 by default, and
    /// clients that want to wait longer use IDLE.)
    pub idle_timeout: Duration,
    /// How long one IDLE may last; at most [`IDLE_COMMAND_TIMEOUT_MAX`].
    pub idle_command_timeout: Duration,
    /// A client that has not logged in this long after connecting is disconnected,
    /// however busy it keeps the connection (as Dovecot's login processes do), so
    /// that sessions that never log in do not hold their connections for good.
    pub login_timeout: Duration,
    /// Parser limits after login; the literal limit is the largest APPEND
    /// (`limits.message_size_max`, see [`Limits::with_literal_bytes_max`]).
    pub limits: Limits,
    /// `limits.message_memory_max`, shared with the other services: an APPEND's
    /// message that would pass it goes on in a spill file in `spill_dir`; any other
    /// literal that would, or one that cannot be spilled, is dropped and its command
    /// answered `NO [LIMIT]` (`NO [OVERQUOTA]` when the disk is full).
    pub message_memory: SharedBudget,
    /// Where APPENDs' messages go once the budget is spent (`data_dir/spill`, shared
    /// with SMTP); `None`: nowhere, they are refused.
    pub spill_dir: Option<std::path::PathBuf>,
}

impl Default for ImapConfig {
    fn default() -> ImapConfig {
        ImapConfig {
            hostname: "localhost".to_string(),
            allow_plaintext_loopback: true,
            idle_timeout: IDLE_TIMEOUT_DEFAULT,
            idle_command_timeout: IDLE_COMMAND_TIMEOUT_MAX,
            login_timeout: LOGIN_TIMEOUT_DEFAULT,
            limits: Limits::default(),
            message_memory: SharedBudget::default(),
            spill_dir: None,
        }
    }
}

/// The IMAP service: cheap to clone. Build one per process and clone it into both
/// listeners (imap and imaps) and every I/O thread; see the crate documentation.
#[derive(Clone)]
pub struct ImapService {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    store: Store,
    auth: Arc<Authenticator>,
    tls: TlsAcceptor,
    config: ImapConfig,
    recent: Arc<RecentMarks>,
    archive_index: Option<Arc<ArchiveIndex>>,
}

impl std::fmt::Debug for ImapService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl ImapService {
    /// The session's literal passes the memory budget: an APPEND's message goes on
    /// in a spill file, any other literal (or one that cannot be spilled) is
    /// dropped and its command refused. False when no literal is arriving.
    fn relieve(&self, session: &mut Session, held: u64) -> bool {
        let budget = self.inner.config.message_memory.limit();
        let spilled = match &self.inner.config.spill_dir {
            Some(dir) => session.spill_literal(dir),
            None => Ok(false),
        };
        match spilled {
            Ok(true) => {
                tracing::info!(
                    held,
                    budget,
                    "limits.message_memory_max reached: the APPEND goes on in a spill file"
                );
                true
            }
            Ok(false) => {
                let abandoned = session.abandon_literal();
                if abandoned {
                    tracing::warn!(
                        held,
                        budget,
                        "limits.message_memory_max reached: the literal is dropped, the command answered NO [LIMIT]"
                    );
                }
                abandoned
            }
            Err(error) => {
                let no_space = lifeboat_store::io::is_no_space(&error);
                let abandoned = if no_space {
                    session.abandon_literal_for_space()
                } else {
                    session.abandon_literal()
                };
                if abandoned {
                    tracing::warn!(
                        held,
                        budget,
                        "limits.message_memory_max reached and the APPEND cannot be spilled ({error}): it is answered NO [{}]",
                        if no_space { "OVERQUOTA" } else { "LIMIT" }
                    );
                }
                abandoned
            }
        }
    }
}

/// What ended a wait for input.
enum Woken {
    Input(Result<usize, NetError>),
    Changed,
}

/// Polls two futures until one is ready (the first wins a tie).
async fn race<A: Future, B: Future>(first: A, second: B) -> Result<A::Output, B::Output> {
    let mut first = pin!(first);
    let mut second = pin!(second);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(value) = first.as_mut().poll(cx) {
            return Poll::Ready(Ok(value));
        }
        if let Poll::Ready(value) = second.as_mut().poll(cx) {
            return Poll::Ready(Err(value));
        }
        Poll::Pending
    })
    .await
}

/// DEFLATE both ways after COMPRESS (RFC 4978 §3, RFC 1951 without a zlib wrapper).
struct Deflate {
    compress: Compress,
    decompress: Decompress,
    /// Output of the last compression, reused.
    compressed: Vec<u8>,
}

impl Deflate {
    fn new() -> Deflate {
        Deflate {
            // RFC 4978 §4 leaves the level to the server; a fast one keeps a busy
            // core's latency down at little cost in ratio for mail traffic.
            compress: Compress::new(Compression::fast(), false),
            decompress: Decompress::new(false),
            compressed: Vec::new(),
        }
    }

    /// Compresses `input` and flushes (RFC 4978 §5: "the server MUST ... flush"),
    /// leaving the octets to send in `self.compressed`.
    fn compress(&mut self, input: &[u8]) -> Result<(), Disconnected> {
        self.compressed.clear();
        let mut consumed = 0;
        loop {
            self.compressed.reserve(input.len() / 2 + 64);
            let before = self.compress.total_in();
            self.compress
                .compress_vec(
                    &input[consumed..],
                    &mut self.compressed,
                    FlushCompress::Sync,
                )
                .map_err(|_| Disconnected)?;
            consumed += (self.compress.total_in() - before) as usize;
            // Room left in the output means the flush is complete.
            if consumed == input.len() && self.compressed.len() < self.compressed.capacity() {
                return Ok(());
            }
        }
    }

    /// Decompresses from `input` what fills at most `out` (corrupt input ends the
    /// connection): the input bytes consumed and the output bytes made. While there
    /// is room in `out`, zlib takes all of the input.
    fn decompress(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), Disconnected> {
        let (before_in, before_out) = (self.decompress.total_in(), self.decompress.total_out());
        self.decompress
            .decompress(input, out, FlushDecompress::Sync)
            .map_err(|_| Disconnected)?;
        Ok((
            (self.decompress.total_in() - before_in) as usize,
            (self.decompress.total_out() - before_out) as usize,
        ))
    }
}

/// Compressed input is decompressed this much at a time, each piece run before the
/// next is made, so a small input that inflates a thousandfold (what DEFLATE allows)
/// is never held whole.
const INFLATE_STEP_BYTES: usize = 64 * 1024;

/// Compressed input received and not yet decompressed.
#[derive(Default)]
struct Inflow {
    /// What the framer held when COMPRESS took effect, before any read.
    leftover: Vec<u8>,
    /// Where pieces are made.
    piece: Vec<u8>,
    /// The last piece filled up: more may follow from what was received already,
    /// so the next step is run before waiting for the client.
    more: bool,
}

impl Inflow {
    /// Decompresses the next piece of what was received (the leftover first, then
    /// `framed`'s buffer) and gives it to the session.
    fn step(
        &mut self,
        deflate: &mut Deflate,
        framed: &mut Framed<Stream>,
        session: &mut Session,
    ) -> Result<(), Disconnected> {
        self.piece.resize(INFLATE_STEP_BYTES, 0);
        let made = if self.leftover.is_empty() {
            let (consumed, made) = deflate.decompress(framed.buffer(), &mut self.piece)?;
            framed.consume(consumed);
            made
        } else {
            let (consumed, made) = deflate.decompress(&self.leftover, &mut self.piece)?;
            self.leftover.drain(..consumed);
            made
        };
        session.receive(&self.piece[..made]);
        self.more =
            made == self.piece.len() || !self.leftover.is_empty() || !framed.buffer().is_empty();
        Ok(())
    }
}

/// The session's [`Output`] over the connection.
struct Sink<'f> {
    framed: &'f mut Framed<Stream>,
    deflate: &'f mut Option<Deflate>,
    buffer: Vec<u8>,
    write_timeout: Duration,
}

impl Output for Sink<'_> {
    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buffer
    }

    fn flush(&mut self) -> Pin<Box<dyn Future<Output = Result<(), Disconnected>> + '_>> {
        Box::pin(async move {
            send(self.framed, self.deflate, &self.buffer, self.write_timeout).await?;
            self.buffer.clear();
            Ok(())
        })
    }
}

/// Sends `bytes` (compressed after COMPRESS); a client that does not read them
/// within `timeout` is gone.
async fn send(
    framed: &mut Framed<Stream>,
    deflate: &mut Option<Deflate>,
    bytes: &[u8],
    timeout: Duration,
) -> Result<(), Disconnected> {
    if bytes.is_empty() {
        return Ok(());
    }
    let wire: &[u8] = match deflate {
        Some(deflate) => {
            deflate.compress(bytes)?;
            &deflate.compressed
        }
        None => bytes,
    };
    match lifeboat_net::timeout(timeout, framed.write_all(wire)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(Disconnected),
    }
}

impl ImapService {
    /// A service over `store`, checking logins with `auth` and upgrading STARTTLS
    /// connections with `tls`.
    pub fn new(
        store: Store,
        auth: Arc<Authenticator>,
        tls: TlsAcceptor,
        config: ImapConfig,
    ) -> ImapService {
        let mut config = config;
        config.idle_command_timeout = config.idle_command_timeout.min(IDLE_COMMAND_TIMEOUT_MAX);
        let recent = Arc::new(store.read(RecentMarks::new));
        ImapService {
            inner: Arc::new(Inner {
                store,
                auth,
                tls,
                config,
                recent,
                archive_index: None,
            }),
        }
    }

    /// The same service, answering SEARCH in the archive mailboxes (`#archive/...`)
    /// from the archive's full-text index (the one the web API searches); without
    /// one they are scanned. Call before the service is cloned into listeners.
    pub fn with_archive_index(self, index: Arc<ArchiveIndex>) -> ImapService {
        let inner = Arc::unwrap_or_clone(self.inner);
        ImapService {
            inner: Arc::new(Inner {
                archive_index: Some(index),
                ..inner
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ImapConfig {
        &self.inner.config
    }

    /// A listener configuration for this service: `implicit_tls` for imaps (the
    /// handshake runs before the session), plaintext with STARTTLS for imap. Sets the
    /// refusal line and the connection's own timeout (the longer of the two timeouts:
    /// the session enforces each where it applies); connection limits are the
    /// defaults, for the caller to adjust from `[limits]`.
    pub fn listener(&self, name: &str, addr: SocketAddr, implicit_tls: bool) -> ListenerConfig {
        let config = &self.inner.config;
        let tls = implicit_tls.then_some(&self.inner.tls);
        let idle = config.idle_timeout.max(config.idle_command_timeout);
        let mut listener = ListenerConfig::protocol(name, addr, tls, REFUSAL, idle);
        listener.frame.line_bytes_max = config.limits.line_bytes_max;
        listener
    }

    /// The handler factory for [`lifeboat_net::ServerBuilder::listener`]: on every I/O
    /// thread, a handler that runs [`ImapService::session`] for each connection.
    pub fn handler(
        &self,
    ) -> impl Fn(&ThreadContext) -> Box<dyn Fn(Framed<Stream>) -> SessionFuture> + Send + Sync + 'static
    {
        lifeboat_net::per_connection(self.clone(), |service: ImapService, framed| async move {
            service.session(framed).await
        })
    }

    /// Serves one connection until LOGOUT, an error, a timeout or shutdown.
    pub async fn session(&self, framed: Framed<Stream>) {
        let info = framed.info();
        let span = tracing::info_span!("imap", peer = %info.peer, listener = %info.listener);
        self.run(framed).instrument(span).await
    }

    async fn run(&self, mut framed: Framed<Stream>) {
        let config = &self.inner.config;
        let peer = framed.info().peer;
        let session_config = SessionConfig {
            hostname: config.hostname.clone(),
            tls_available: !framed.is_tls(),
            plaintext_login_allowed: config.allow_plaintext_loopback && peer.ip().is_loopback(),
            client: peer.ip(),
            limits: config.limits,
            clock: lifeboat_store::now,
            recent: self.inner.recent.clone(),
            compress_available: true,
            archive_index: self.inner.archive_index.clone(),
        };
        let mut session = Session::new(
            session_config,
            self.inner.store.clone(),
            self.inner.auth.clone(),
            framed.is_tls(),
        );
        let write_timeout = config.idle_timeout;
        let mut deflate: Option<Deflate> = None;
        let mut out = Vec::with_capacity(4096);
        session.greeting(&mut out);
        if send(&mut framed, &mut deflate, &out, write_timeout)
            .await
            .is_err()
        {
            return;
        }
        out.clear();
        let mut signal: Option<Arc<Signal>> = None;
        let mut idle_deadline: Option<Instant> = None;
        let mut reservation = config.message_memory.reservation();
        let mut inflow = Inflow::default();
        let login_by = Instant::now() + config.login_timeout;
        loop {
            let mut sink = Sink {
                framed: &mut framed,
                deflate: &mut deflate,
                buffer: std::mem::take(&mut out),
                write_timeout,
            };
            let progress = session.advance(&mut sink).await;
            out = std::mem::take(&mut sink.buffer);
            match progress {
                Err(Disconnected) => return,
                Ok(Progress::Close) => {
                    if send(&mut framed, &mut deflate, &out, write_timeout)
                        .await
                        .is_ok()
                    {
                        let _ = framed.close().await;
                    }
                    return;
                }
                Ok(Progress::Compress { pending }) => {
                    // The tagged OK goes out as it is; everything after it is
                    // compressed both ways (RFC 4978 §3).
                    if send(&mut framed, &mut deflate, &out, write_timeout)
                        .await
                        .is_err()
                    {
                        return;
                    }
                    out.clear();
                    deflate = Some(Deflate::new());
                    inflow.leftover = pending;
                    inflow.more = !inflow.leftover.is_empty();
                    continue;
                }
                Ok(Progress::StartTls { discarded_bytes }) => {
                    let ready = std::mem::take(&mut out);
                    framed = match framed.start_tls(&self.inner.tls, &ready).await {
                        Ok((upgraded, dropped)) => {
                            if discarded_bytes + dropped > 0 {
                                tracing::warn!(
                                    discarded_bytes = discarded_bytes + dropped,
                                    "dropped input pipelined after STARTTLS"
                                );
                            }
                            upgraded
                        }
                        Err(error) => {
                            tracing::info!(%error, "STARTTLS handshake failed");
                            return;
                        }
                    };
                    session.tls_started();
                    continue;
                }
                Ok(Progress::NeedInput) => {
                    // A literal arriving holds memory of the process's budget; past
                    // it, the session gives it up or moves it to a spill file and
                    // runs again. With nothing to give up (a command line, or a
                    // literal spilled already, which leaves a few bytes held), it
                    // reads on.
                    let held = session.held_bytes() as u64;
                    if !reservation.fit(held)
                        && !session.literal_spilled()
                        && self.relieve(&mut session, held)
                    {
                        reservation.fit(session.held_bytes() as u64);
                        continue;
                    }
                }
            }
            if send(&mut framed, &mut deflate, &out, write_timeout)
                .await
                .is_err()
            {
                return;
            }
            out.clear();
            let woken = if inflow.more {
                // Input received already: no wait.
                Woken::Input(Ok(0))
            } else if session.idling() {
                let deadline = *idle_deadline
                    .get_or_insert_with(|| Instant::now() + config.idle_command_timeout);
                let Some(account) = session.account() else {
                    return;
                };
                let signal = signal
                    .get_or_insert_with(|| self.inner.store.account_signal(account))
                    .clone();
                // The version is read before the store is compared, so a change that
                // lands after the comparison wakes the wait below.
                let seen = signal.version();
                let mut sink = Sink {
                    framed: &mut framed,
                    deflate: &mut deflate,
                    buffer: std::mem::take(&mut out),
                    write_timeout,
                };
                if session.idle_update(&mut sink).await.is_err() {
                    return;
                }
                out = std::mem::take(&mut sink.buffer);
                if send(&mut framed, &mut deflate, &out, write_timeout)
                    .await
                    .is_err()
                {
                    return;
                }
                out.clear();
                let remaining = deadline.saturating_duration_since(Instant::now());
                let wait = race(framed.fill(), signal.changed(seen));
                match lifeboat_net::timeout(remaining, wait).await {
                    Ok(Ok(read)) => Woken::Input(read),
                    Ok(Err(_)) => Woken::Changed,
                    Err(error) => Woken::Input(Err(error)),
                }
            } else {
                idle_deadline = None;
                // Before login, the wait is also bounded by the login deadline.
                let mut wait = config.idle_timeout;
                if session.account().is_none() {
                    wait = wait.min(login_by.saturating_duration_since(Instant::now()));
                }
                match lifeboat_net::timeout(wait, framed.fill()).await {
                    Ok(read) => Woken::Input(read),
                    Err(error) => Woken::Input(Err(error)),
                }
            };
            match woken {
                Woken::Changed => continue,
                Woken::Input(Ok(0)) if !inflow.more => return,
                Woken::Input(Ok(_)) => {
                    // Input during IDLE ends it (DONE, or anything else with BAD);
                    // a new IDLE gets a full period.
                    idle_deadline = None;
                    match &mut deflate {
                        Some(deflate) => {
                            if inflow.step(deflate, &mut framed, &mut session).is_err() {
                                return;
                            }
                        }
                        None => {
                            let received = framed.buffer().len();
                            session.receive(framed.buffer());
                            framed.consume(received);
                        }
                    }
                }
                Woken::Input(Err(NetError::IdleTimeout | NetError::CommandTimeout)) => {
                    tracing::debug!(account = session.account(), "imap autologout");
                    session.autologout(&mut out);
                    if send(&mut framed, &mut deflate, &out, write_timeout)
                        .await
                        .is_ok()
                    {
                        let _ = framed.close().await;
                    }
                    return;
                }
                Woken::Input(Err(NetError::ShuttingDown)) => {
                    session.shutting_down(&mut out);
                    let _ = send(&mut framed, &mut deflate, &out, write_timeout).await;
                    return;
                }
                Woken::Input(Err(_)) => return,
            }
        }
    }
}
