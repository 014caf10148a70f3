//! The POP3 server: [`Pop3Service`] runs a [`Session`] over a lifeboat-net
//! [`Framed`] connection and carries out its effects against the store, the
//! authenticator, TLS and the clock. This is the only layer with sockets and timers.
//!
//! Invariants:
//! - One POP3 session per maildrop at a time, process-wide (RFC 1939 §8 "exclusive-
//!   access lock"): the lock table lives in the service, which every clone shares;
//!   a session's lock is released when its future ends, however it ends (return,
//!   drop on shutdown, panic). IMAP sessions do not take it.
//! - The store changes only on QUIT in TRANSACTION ([`Effect::Commit`]), in one
//!   batch: a connection that drops, times out or is shut down deletes nothing.
//! - The lock is taken before the maildrop is read, and released only after the
//!   commit of a previous session has completed, so a session never sees a message
//!   its predecessor deleted.
//! - Input pipelined after STLS is discarded by [`Framed::start_tls`], never executed.
//! - A message is read from the store's memory map and sent in chunks of
//!   [`SEND_CHUNK_BYTES`]; it is never copied whole into another buffer.
//! - Replies to pipelined commands are flushed once no complete command is buffered,
//!   or once [`PIPELINE_REPLY_BYTES_MAX`] are queued.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lifeboat_net::{Framed, ListenerConfig, NetError, Stream, ThreadContext, TlsAcceptor};
use lifeboat_store::auth::{AuthError, Authenticator};
use lifeboat_store::{
    Batch, BodyId, FlagAction, Flags, Op, OpResult, Protocol, Store, SystemFlags, TraceNote, INBOX,
};
use tracing::Instrument;

use crate::encode::{self, message_size, ResponseCode};
use crate::session::{
    Effect, LoginOutcome, LoginRequest, Maildrop, MaildropMessage, SendMessage, Session,
    SessionConfig, UpdateRequest, MAILDROP_MESSAGES_MAX,
};

/// Bytes of a message encoded and sent per write.
pub const SEND_CHUNK_BYTES: usize = 64 * 1024;
/// Replies queued for pipelined commands before they are flushed regardless.
pub const PIPELINE_REPLY_BYTES_MAX: usize = 64 * 1024;
/// Message sizes remembered across sessions (bodies never change, so a size computed
/// once stays right); the cache is emptied when it is full.
pub const SIZE_CACHE_ENTRIES_MAX: usize = 100_000;
/// The line sent on the plaintext listener when a connection limit refuses a client
/// (RFC 2449 §8, RFC 3206 §4).
pub const REFUSAL: &[u8] = b"-ERR [SYS/TEMP] Too many connections, try again later\r\n";
/// [`Pop3Config::login_timeout`]'s default.
pub const LOGIN_TIMEOUT_DEFAULT: Duration = Duration::from_secs(180);

/// `limits.idle_timeout` default (SPEC §8).
pub const IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5 * 60);

/// Settings of the POP3 service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pop3Config {
    /// `server.hostname`, named in the greeting.
    pub hostname: String,
    /// `auth.allow_plaintext_loopback`: USER/PASS and AUTH PLAIN without TLS from a
    /// loopback client (SPEC §6). Everyone else must use STLS or pop3s first.
    pub allow_plaintext_loopback: bool,
    /// `limits.idle_timeout`: a session waiting this long for a command is closed
    /// without a reply and without entering UPDATE (RFC 1939 §3). RFC 1939 asks for
    /// at least 10 minutes; SPEC §8 sets 5 minutes by default.
    pub idle_timeout: Duration,
    /// A client that has not logged in this long after connecting is disconnected,
    /// however busy it keeps the connection (as Dovecot's login processes do), so
    /// that sessions that never log in do not hold their connections for good.
    pub login_timeout: Duration,
}

impl Default for Pop3Config {
    fn default() -> Pop3Config {
        Pop3Config {
            hostname: "localhost".to_string(),
            allow_plaintext_loopback: true,
            idle_timeout: IDLE_TIMEOUT_DEFAULT,
            login_timeout: LOGIN_TIMEOUT_DEFAULT,
        }
    }
}

/// The POP3 service: cheap to clone, every clone shares one lock table. Build one per
/// process and clone it into both listeners (pop3 and pop3s) and every I/O thread;
/// see the crate documentation for the wiring.
#[derive(Clone)]
pub struct Pop3Service {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    auth: Arc<Authenticator>,
    tls: TlsAcceptor,
    config: Pop3Config,
    locks: Arc<Mutex<HashSet<String>>>,
    sizes: Mutex<HashMap<BodyId, u64>>,
}

impl std::fmt::Debug for Pop3Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pop3Service")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every
/// critical section here is a single insert or remove).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A held maildrop lock; released on drop.
struct MaildropLock {
    locks: Arc<Mutex<HashSet<String>>>,
    account: String,
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        lock(&self.locks).remove(&self.account);
    }
}

impl Pop3Service {
    /// A service over `store`, checking logins with `auth` and upgrading STLS
    /// connections with `tls`.
    pub fn new(
        store: Store,
        auth: Arc<Authenticator>,
        tls: TlsAcceptor,
        config: Pop3Config,
    ) -> Pop3Service {
        Pop3Service {
            inner: Arc::new(Inner {
                store,
                auth,
                tls,
                config,
                locks: Arc::new(Mutex::new(HashSet::new())),
                sizes: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &Pop3Config {
        &self.inner.config
    }

    /// Number of maildrops locked by POP3 sessions right now.
    pub fn locked_maildrops(&self) -> usize {
        lock(&self.inner.locks).len()
    }

    /// A listener configuration for this service: `implicit_tls` for pop3s (the
    /// handshake runs before the session), plaintext with STLS for pop3. Sets the
    /// refusal line and the idle timeout; connection limits and the line limit are
    /// the defaults, for the caller to adjust from `[limits]`.
    pub fn listener(&self, name: &str, addr: SocketAddr, implicit_tls: bool) -> ListenerConfig {
        let tls = implicit_tls.then_some(&self.inner.tls);
        ListenerConfig::protocol(name, addr, tls, REFUSAL, self.inner.config.idle_timeout)
    }

    /// The handler factory for [`lifeboat_net::ServerBuilder::listener`]: on every I/O
    /// thread, a handler that runs [`Pop3Service::session`] for each connection.
    pub fn handler(
        &self,
    ) -> impl Fn(&ThreadContext) -> Box<dyn Fn(Framed<Stream>) -> SessionFuture> + Send + Sync + 'static
    {
        lifeboat_net::per_connection(self.clone(), |service: Pop3Service, framed| async move {
            service.session(framed).await
        })
    }

    /// Serves one connection until QUIT, an error, the idle timeout or shutdown.
    pub async fn session(&self, framed: Framed<Stream>) {
        let info = framed.info();
        let span = tracing::info_span!(
            "pop3",
            peer = %info.peer,
            listener = %info.listener,
        );
        self.run(framed).instrument(span).await
    }

    async fn run(&self, mut framed: Framed<Stream>) {
        let peer = framed.info().peer;
        let config = SessionConfig {
            hostname: self.inner.config.hostname.clone(),
            tls_available: true,
            plaintext_login_allowed: self.inner.config.allow_plaintext_loopback
                && is_loopback(peer.ip()),
        };
        let mut session = Session::new(config, framed.is_tls());
        let mut out = Vec::with_capacity(1024);
        let mut line = Vec::new();
        // Held while the session is in TRANSACTION and UPDATE; dropped with the future.
        let mut maildrop_lock: Option<MaildropLock> = None;
        let mut queued_bytes = 0;

        session.greeting(&mut out);
        if framed.write_all(&out).await.is_err() {
            return;
        }
        let login_by = Instant::now() + self.inner.config.login_timeout;
        loop {
            out.clear();
            // Before login, the wait is also bounded by the login deadline.
            let mut wait = self.inner.config.idle_timeout;
            if session.account().is_none() {
                wait = wait.min(login_by.saturating_duration_since(Instant::now()));
            }
            let mut effect = match self.read_line(&mut framed, &mut line, wait).await {
                Ok(()) => session.receive_line(&line, &mut out),
                Err(NetError::LineTooLong { .. }) => {
                    let effect = session.line_too_long(&mut out);
                    if !matches!(
                        lifeboat_net::timeout(wait, framed.skip_line()).await,
                        Ok(Ok(_))
                    ) {
                        return;
                    }
                    effect
                }
                Err(NetError::ShuttingDown) => {
                    encode::err(
                        &mut out,
                        Some(ResponseCode::SysTemp),
                        "Server shutting down",
                    );
                    let _ = framed.write_all(&out).await;
                    return;
                }
                Err(NetError::IdleTimeout | NetError::CommandTimeout) => {
                    // RFC 1939 §3: close without a response and without UPDATE.
                    if session.account().is_none() && Instant::now() >= login_by {
                        tracing::debug!(%peer, "no login within {:?}", self.inner.config.login_timeout);
                    } else {
                        tracing::debug!(account = session.account(), "idle timeout");
                    }
                    return;
                }
                Err(_) => return,
            };
            loop {
                match effect {
                    Effect::None => break,
                    Effect::CheckLogin(request) => {
                        let outcome = self.login(request, peer.ip(), &mut maildrop_lock).await;
                        effect = session.login_checked(outcome, &mut out);
                    }
                    Effect::Commit(request) => {
                        let result = self.commit(request).await;
                        effect = session.committed(result, &mut out);
                    }
                    Effect::StartTls => {
                        if framed.flush().await.is_err() {
                            return;
                        }
                        framed = match framed.start_tls(&self.inner.tls, &out).await {
                            Ok((upgraded, discarded_bytes)) => {
                                if discarded_bytes > 0 {
                                    tracing::warn!(
                                        discarded_bytes,
                                        "dropped input pipelined after STLS"
                                    );
                                }
                                upgraded
                            }
                            Err(error) => {
                                tracing::info!(%error, "STLS handshake failed");
                                return;
                            }
                        };
                        session.tls_started();
                        out.clear();
                        queued_bytes = 0;
                        break;
                    }
                    Effect::SendMessage(send) => {
                        let sent = self.send_message(&mut framed, &mut session, send, &mut out);
                        if sent.await.is_err() {
                            return;
                        }
                        out.clear();
                        queued_bytes = 0;
                        break;
                    }
                    Effect::Close => {
                        // The UPDATE state is over (its commit is durable): release the
                        // maildrop before the client reads the final reply, so a client
                        // that reconnects at once does not find it still in use.
                        drop(maildrop_lock.take());
                        if framed.queue(&out).is_ok() {
                            let _ = framed.close().await;
                        }
                        return;
                    }
                }
            }
            if framed.queue(&out).is_err() {
                return;
            }
            queued_bytes += out.len();
            let more_pipelined = memchr::memchr(b'\n', framed.buffer()).is_some();
            if !more_pipelined || queued_bytes >= PIPELINE_REPLY_BYTES_MAX {
                if framed.flush().await.is_err() {
                    return;
                }
                queued_bytes = 0;
            }
        }
    }

    /// Reads the next line into `line`, within `wait`.
    async fn read_line(
        &self,
        framed: &mut Framed<Stream>,
        line: &mut Vec<u8>,
        wait: Duration,
    ) -> Result<(), NetError> {
        let read = lifeboat_net::timeout(wait, framed.read_line()).await?;
        let bytes = read?;
        line.clear();
        line.extend_from_slice(bytes);
        Ok(())
    }

    /// Checks credentials, locks the maildrop and takes its snapshot.
    async fn login(
        &self,
        request: LoginRequest,
        client: IpAddr,
        maildrop_lock: &mut Option<MaildropLock>,
    ) -> LoginOutcome {
        let user = request.user.as_str();
        let method = request.method.as_str();
        let account = match self
            .inner
            .auth
            .login(user, request.password.as_str(), client)
            .await
        {
            Ok(account) => account,
            Err(error) => {
                tracing::info!(user, method, %error, "pop3 login failed");
                return match error {
                    AuthError::Invalid => LoginOutcome::Invalid,
                    AuthError::RateLimited => LoginOutcome::RateLimited,
                    AuthError::Unavailable => LoginOutcome::Unavailable,
                };
            }
        };
        let address = account.address;
        let Some(held) = self.try_lock(&address) else {
            tracing::info!(account = %address, method, "pop3 login refused: maildrop in use");
            return LoginOutcome::InUse;
        };
        match self.snapshot(&address) {
            Ok(maildrop) => {
                let (messages, size_bytes) = maildrop.stat();
                tracing::info!(account = %address, method, messages, size_bytes, "pop3 login");
                *maildrop_lock = Some(held);
                LoginOutcome::LoggedIn(maildrop)
            }
            Err(outcome) => {
                tracing::warn!(account = %address, ?outcome, "pop3 maildrop unavailable");
                outcome
            }
        }
    }

    fn try_lock(&self, account: &str) -> Option<MaildropLock> {
        let mut held = lock(&self.inner.locks);
        if !held.insert(account.to_string()) {
            return None;
        }
        Some(MaildropLock {
            locks: Arc::clone(&self.inner.locks),
            account: account.to_string(),
        })
    }

    /// The INBOX as it is now, with POP3 sizes.
    fn snapshot(&self, address: &str) -> Result<Maildrop, LoginOutcome> {
        let found = self.inner.store.read(|state| {
            state.folder_by_name(address, INBOX).map(|folder| {
                let messages: Vec<(u32, BodyId, bool)> = folder
                    .messages
                    .values()
                    .take(MAILDROP_MESSAGES_MAX)
                    .map(|m| (m.uid, m.body, m.flags.system.contains(SystemFlags::SEEN)))
                    .collect();
                (folder.id, folder.uidvalidity, messages)
            })
        });
        let Some((folder, uidvalidity, entries)) = found else {
            return Err(LoginOutcome::NoMaildrop);
        };
        let mut messages = Vec::with_capacity(entries.len());
        for (uid, body, seen) in entries {
            match self.size_of(body) {
                Ok(size_bytes) => messages.push(MaildropMessage {
                    uid,
                    body,
                    size_bytes,
                    seen,
                }),
                // Expunged (and its body dropped) since the index was read: it is no
                // longer part of the maildrop.
                Err(lifeboat_store::Error::Invalid(reason)) => {
                    tracing::debug!(uid, %reason, "message gone during login");
                }
                Err(error) => {
                    tracing::error!(uid, %error, "reading a message body failed");
                    return Err(LoginOutcome::StoreFailed);
                }
            }
        }
        Ok(Maildrop::new(
            address.to_string(),
            folder,
            uidvalidity,
            messages,
        ))
    }

    /// The POP3 size of a body (RFC 1939 §11), from the cache or computed once.
    fn size_of(&self, body: BodyId) -> Result<u64, lifeboat_store::Error> {
        if let Some(size) = lock(&self.inner.sizes).get(&body) {
            return Ok(*size);
        }
        let size = message_size(&self.inner.store.body(body)?);
        let mut sizes = lock(&self.inner.sizes);
        if sizes.len() >= SIZE_CACHE_ENTRIES_MAX {
            sizes.clear();
        }
        sizes.insert(body, size);
        Ok(size)
    }

    /// Sends the reply in `out` and then the message, in chunks.
    async fn send_message(
        &self,
        framed: &mut Framed<Stream>,
        session: &mut Session,
        send: SendMessage,
        out: &mut Vec<u8>,
    ) -> Result<(), NetError> {
        let body = match self.inner.store.body(send.body) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(body = %send.body, %error, "reading a message body failed");
                out.clear();
                session.message_unavailable(out);
                return framed.write_all(out).await;
            }
        };
        framed.queue(out)?;
        let mut encoder = send.encoder;
        let mut chunk = Vec::with_capacity(SEND_CHUNK_BYTES + 16);
        loop {
            chunk.clear();
            let finished = encoder.encode(&body, &mut chunk, SEND_CHUNK_BYTES);
            framed.write_all(&chunk).await?;
            if finished {
                return Ok(());
            }
        }
    }

    /// Commits the UPDATE state's changes in one batch.
    async fn commit(&self, request: UpdateRequest) -> Result<(), ()> {
        let UpdateRequest {
            account,
            folder,
            expunge,
            seen,
        } = request;
        let mut batch = Batch::new();
        if !seen.is_empty() || !expunge.is_empty() {
            batch.push(Op::Trace(TraceNote::Via(Protocol::Pop3)));
        }
        if !seen.is_empty() {
            batch.push(Op::StoreFlags {
                folder,
                uids: seen,
                action: FlagAction::Add,
                flags: Flags {
                    system: SystemFlags::SEEN,
                    keywords: Vec::new(),
                },
                unchanged_since: None,
            });
        }
        if !expunge.is_empty() {
            batch.push(Op::Expunge {
                folder,
                uids: expunge.clone(),
            });
        }
        match self.inner.store.commit_async(batch).await {
            Ok(results) => {
                for result in results {
                    match result {
                        Ok(OpResult::Expunged(uids)) => {
                            tracing::info!(
                                %account,
                                deleted = uids.len(),
                                requested = expunge.len(),
                                ?uids,
                                "pop3 deleted messages"
                            );
                        }
                        Err(reason) => {
                            tracing::warn!(%account, %reason, "pop3 update op not applied");
                        }
                        _ => {}
                    }
                }
                Ok(())
            }
            Err(error) => {
                tracing::error!(%account, %error, "pop3 update failed, nothing deleted");
                Err(())
            }
        }
    }
}

/// The future of one session, as [`Pop3Service::handler`] hands it to lifeboat-net.
pub use lifeboat_net::SessionFuture;

fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}
