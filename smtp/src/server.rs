//! The SMTP server: [`SmtpService`] runs a [`Session`] over a lifeboat-net [`Framed`]
//! connection and carries out its effects against the relay, the authenticator, TLS
//! and the clock. This is the only layer of the SMTP server with sockets and timers.
//!
//! One service serves one kind of listener ([`Listener::Mx`] for `smtp`,
//! [`Listener::Submission`] for `submission` and `submissions`); see the crate
//! documentation for the wiring.
//!
//! Invariants:
//! - Replies to pipelined commands are sent before the server waits for more input
//!   (RFC 2920 §3), or once [`PIPELINE_REPLY_BYTES_MAX`] are pending.
//! - Input pipelined after STARTTLS is discarded with the plaintext buffer by
//!   [`Framed::start_tls`], never executed; the count is logged.
//! - `250` after the end of data is sent only after [`Relay::accept`] returned, that
//!   is after the message is durable in the store (SPEC §3).
//! - A message is held in memory once, bounded by `message_bytes_max` plus the
//!   Received header; the input buffer is bounded by lifeboat-net. All sessions
//!   together hold at most `message_memory` bytes of messages (plus one input chunk
//!   and one spill buffer each, and the messages complete at that moment): past it a
//!   message continues in a spill file (`spill_dir`), or, when none can be written,
//!   is refused with `451 4.3.0` at its end; never a crash.
//! - An idle client gets `421 4.4.2` and a server shutdown `421 4.3.2` before the
//!   connection closes; a message transfer under way is allowed to finish during
//!   shutdown (within the runtime's drain deadline).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lifeboat_net::{
    Framed, ListenerConfig, NetError, SharedBudget, Stream, ThreadContext, TlsAcceptor,
};
use lifeboat_store::auth::{AuthError, Authenticator};
use lifeboat_store::Spill;
use tracing::Instrument;

use crate::parse::limits::COMMAND_LINE_BYTES_MAX;
use crate::parse::{DataError, Domain, EnhancedCode, ReplyCode};
use crate::relay::{ClientInfo, Listener, Refusal, Relay};
use crate::session::{
    AuthOutcome, Credentials, Delivery, Effect, Limits, RecipientCheck, Rejection, Session,
    SessionConfig,
};

/// Replies queued for pipelined commands before they are sent regardless.
pub const PIPELINE_REPLY_BYTES_MAX: usize = 64 * 1024;
/// Default for [`SmtpConfig::message_timeout`]: 50 MiB at 30 KB/s.
pub const MESSAGE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30 * 60);
/// The line sent on the plaintext listeners when a connection limit refuses a client
/// (RFC 5321 §3.1: 421 instead of the greeting).
pub const REFUSAL: &[u8] = b"421 4.7.0 Too many connections, try again later\r\n";
/// `limits.message_size_max` default (SPEC §8).
pub const MESSAGE_BYTES_MAX_DEFAULT: u64 = 50 * 1024 * 1024;
/// `limits.recipients_max` default (SPEC §8).
pub const RECIPIENTS_MAX_DEFAULT: usize = 100;
/// `limits.line_bytes_max` default (SPEC §8).
pub const LINE_BYTES_MAX_DEFAULT: usize = 4096;
/// `limits.idle_timeout` default (SPEC §8). RFC 5321 §4.5.3.2.7 asks servers to wait
/// at least 5 minutes for the next command.
pub const IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5 * 60);

/// Settings of one SMTP service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpConfig {
    /// `server.hostname`: the greeting, EHLO reply and Received headers name it.
    pub hostname: Domain,
    /// Which listener this service serves: MX (inbound and smart host) or submission
    /// (AUTH required before MAIL).
    pub listener: Listener,
    /// `auth.allow_plaintext_loopback`: AUTH without TLS from a loopback client
    /// (SPEC §6). Everyone else must use STARTTLS or implicit TLS first.
    pub allow_plaintext_loopback: bool,
    /// `limits.message_size_max` in bytes.
    pub message_bytes_max: u64,
    /// `limits.recipients_max`.
    pub recipients_max: usize,
    /// `limits.line_bytes_max`: the longest command line, CRLF included (at least
    /// 512, RFC 5321 §4.5.3.1.4).
    pub line_bytes_max: usize,
    /// `limits.idle_timeout`: how long the server waits for the client to send or
    /// read before it sends `421 4.4.2` and closes.
    pub idle_timeout: Duration,
    /// The longest one message may take from DATA (or the first BDAT) to its end: a
    /// client trickling a byte now and then never meets the idle timeout, this bounds
    /// it anyway.
    pub message_timeout: Duration,
    /// `limits.message_memory_max`: the budget of message bytes in memory that every
    /// session of the process shares (none: unbounded but for `message_bytes_max` per
    /// message).
    pub message_memory: SharedBudget,
    /// Where a message goes once the budget is spent (`data_dir/spill`): it is
    /// received into an unlinked file there and committed from it. Without one, such
    /// a message is refused with `451 4.3.0`.
    pub spill_dir: Option<std::path::PathBuf>,
}

impl SmtpConfig {
    /// SPEC §8's defaults for a listener of the given kind, named `hostname`.
    pub fn new(hostname: Domain, listener: Listener) -> SmtpConfig {
        SmtpConfig {
            hostname,
            listener,
            allow_plaintext_loopback: true,
            message_bytes_max: MESSAGE_BYTES_MAX_DEFAULT,
            recipients_max: RECIPIENTS_MAX_DEFAULT,
            line_bytes_max: LINE_BYTES_MAX_DEFAULT,
            message_timeout: MESSAGE_TIMEOUT_DEFAULT,
            idle_timeout: IDLE_TIMEOUT_DEFAULT,
            message_memory: SharedBudget::default(),
            spill_dir: None,
        }
    }
}

/// The future of one connection's session.
pub use lifeboat_net::SessionFuture;

/// The SMTP service for one kind of listener: cheap to clone; build one for the MX
/// listener and one for the submission listeners, and clone each into every I/O
/// thread. See the crate documentation for the wiring.
#[derive(Clone)]
pub struct SmtpService {
    inner: Arc<Inner>,
}

struct Inner {
    relay: Relay,
    auth: Arc<Authenticator>,
    tls: TlsAcceptor,
    config: SmtpConfig,
}

impl std::fmt::Debug for SmtpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// The clock, for Received headers.
fn now_unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl SmtpService {
    /// A service that checks recipients and accepts messages with `relay`, checks
    /// logins with `auth`, and upgrades STARTTLS connections with `tls`.
    pub fn new(
        relay: Relay,
        auth: Arc<Authenticator>,
        tls: TlsAcceptor,
        config: SmtpConfig,
    ) -> SmtpService {
        SmtpService {
            inner: Arc::new(Inner {
                relay,
                auth,
                tls,
                config,
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &SmtpConfig {
        &self.inner.config
    }

    /// A listener configuration for this service: `implicit_tls` for submissions
    /// (the handshake runs before the session), plaintext with STARTTLS for smtp and
    /// submission. Sets the refusal line, the idle timeout and the line limit;
    /// connection limits are the defaults, for the caller to set from `[limits]`.
    pub fn listener(&self, name: &str, addr: SocketAddr, implicit_tls: bool) -> ListenerConfig {
        let config = &self.inner.config;
        let tls = implicit_tls.then_some(&self.inner.tls);
        let mut listener = ListenerConfig::protocol(name, addr, tls, REFUSAL, config.idle_timeout);
        listener.frame.line_bytes_max = config.line_bytes_max;
        listener
    }

    /// The handler factory for [`lifeboat_net::ServerBuilder::listener`]: on every I/O
    /// thread, a handler that runs [`SmtpService::session`] for each connection.
    pub fn handler(
        &self,
    ) -> impl Fn(&ThreadContext) -> Box<dyn Fn(Framed<Stream>) -> SessionFuture> + Send + Sync + 'static
    {
        lifeboat_net::per_connection(self.clone(), |service: SmtpService, framed| async move {
            service.session(framed).await
        })
    }

    /// Serves one connection until QUIT, an error, too many errors, the idle timeout
    /// or shutdown.
    pub async fn session(&self, framed: Framed<Stream>) {
        let info = framed.info();
        let span = tracing::info_span!(
            "smtp",
            peer = %info.peer,
            listener = %info.listener,
        );
        self.run(framed).instrument(span).await
    }

    fn session_config(&self, client_ip: IpAddr) -> SessionConfig {
        let config = &self.inner.config;
        SessionConfig {
            hostname: config.hostname.clone(),
            client_ip,
            connection_id: rand::random(),
            starttls_available: true,
            auth_required: config.listener == Listener::Submission,
            plaintext_auth_allowed: config.allow_plaintext_loopback && client_ip.is_loopback(),
            limits: Limits {
                message_bytes_max: config.message_bytes_max,
                recipients_max: config.recipients_max,
                // RFC 5321 §4.5.3.1.4: never below 512, whatever the configuration.
                line_bytes_max: config.line_bytes_max.max(COMMAND_LINE_BYTES_MAX),
            },
        }
    }

    async fn run(&self, mut framed: Framed<Stream>) {
        // An IPv4 client of a dual-stack socket is an IPv4 client.
        let client_ip = framed.info().peer.ip().to_canonical();
        let mut session = Session::new(self.session_config(client_ip), framed.is_tls());
        let mut out = Vec::with_capacity(1024);
        session.greeting(&mut out);
        let mut message_deadline = false;
        // When the data of the message whose answer is not written yet ended.
        let mut answer_pending: Option<Instant> = None;
        let metrics = &self.inner.relay.router().metrics;
        // The answer went out: its latency is counted.
        let answered = |pending: &mut Option<Instant>| {
            if let Some(ended) = pending.take() {
                metrics.reply_latency.record(ended.elapsed());
            }
        };
        // The message bytes this session holds, of the process's budget.
        let mut reservation = self.inner.config.message_memory.reservation();
        loop {
            // The store's disk reserve (`limits.disk_free_min`): MAIL is refused
            // with 452 while it is reached.
            session.set_storage_available(self.inner.relay.store().space_left());
            let progress = session.receive(framed.buffer(), now_unix_seconds(), &mut out);
            framed.consume(progress.consumed);
            match &progress.effect {
                // Complete: what is in memory is kept to its commit, whatever the
                // budget says.
                Effect::Accept(delivery) => reservation.force(delivery.message.memory_bytes()),
                // Its bytes go to the spill file as they come.
                _ if session.message_spilled() => reservation.release(),
                _ => {
                    let held = session.message_bytes() as u64;
                    if held == 0 {
                        reservation.release();
                    } else if !reservation.cover(held) {
                        let budget = self.inner.config.message_memory.limit();
                        match self.spill(&mut session) {
                            Ok(()) => tracing::info!(
                                held,
                                budget,
                                "limits.message_memory_max reached: the message continues in a spill file"
                            ),
                            Err(e) => {
                                let why = if lifeboat_store::io::is_no_space(&e) {
                                    DataError::NoSpace
                                } else {
                                    DataError::Busy
                                };
                                tracing::warn!(
                                    held,
                                    budget,
                                    "limits.message_memory_max reached and the message cannot be spilled ({e}): it is refused with {}",
                                    why.reply().0
                                );
                                session.refuse_message(why);
                            }
                        }
                        reservation.release();
                    }
                }
            }
            match progress.effect {
                Effect::NeedInput => {
                    // RFC 2920 §3.1: answer what was pipelined before waiting for more.
                    if !out.is_empty() {
                        if framed.write_all(&out).await.is_err() {
                            return;
                        }
                        out.clear();
                        answered(&mut answer_pending);
                    }
                    // A message under way may finish during shutdown; between
                    // commands, shutdown interrupts the wait.
                    framed.set_interrupt_on_shutdown(!session.in_message());
                    match (session.in_message(), message_deadline) {
                        (true, false) => {
                            framed.set_command_deadline(self.inner.config.message_timeout);
                            message_deadline = true;
                        }
                        (false, true) => {
                            framed.clear_command_deadline();
                            message_deadline = false;
                        }
                        _ => {}
                    }
                    match self.fill(&mut framed).await {
                        Ok(0) => {
                            if session.in_message() {
                                tracing::info!("client closed the connection during a message");
                            }
                            return;
                        }
                        Ok(_) => {}
                        Err(error @ (NetError::IdleTimeout | NetError::CommandTimeout)) => {
                            tracing::info!(%error, in_message = session.in_message(), "timeout");
                            // The deadline has passed: without clearing it, the 421
                            // itself could not be written.
                            framed.clear_command_deadline();
                            session.timed_out(&mut out);
                            return close(framed, &out).await;
                        }
                        Err(NetError::ShuttingDown) => {
                            session.shutting_down(&mut out);
                            return close(framed, &out).await;
                        }
                        Err(NetError::BufferFull { limit_bytes }) => {
                            // The session consumes whenever a full line is buffered;
                            // this would be a bug, met by ending the connection.
                            tracing::error!(limit_bytes, "input buffer full");
                            return;
                        }
                        Err(error) => {
                            tracing::debug!(%error, "connection ended");
                            return;
                        }
                    }
                }
                Effect::CheckRecipient(check) => {
                    let result = self.check_recipient(&session, client_ip, check).await;
                    session.recipient_checked(result, &mut out);
                }
                Effect::Accept(delivery) => {
                    let ended = Instant::now();
                    let result = self.accept(&session, client_ip, delivery).await;
                    metrics.accept_latency.record(ended.elapsed());
                    answer_pending = Some(ended);
                    reservation.release();
                    session.accepted(result, &mut out);
                }
                Effect::Authenticate(credentials) => {
                    let outcome = self.authenticate(client_ip, credentials).await;
                    session.authenticated(outcome, &mut out);
                }
                Effect::StartTls => {
                    // `out` ends with the 220 go-ahead; the replies before it go in
                    // the same plaintext write.
                    framed = match framed.start_tls(&self.inner.tls, &out).await {
                        Ok((upgraded, discarded_bytes)) => {
                            if discarded_bytes > 0 {
                                tracing::warn!(
                                    discarded_bytes,
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
                    out.clear();
                    session.tls_started();
                }
                Effect::Close => {
                    // A QUIT pipelined after the data: the 250 goes out with the 221.
                    close(framed, &out).await;
                    answered(&mut answer_pending);
                    return;
                }
            }
            if out.len() >= PIPELINE_REPLY_BYTES_MAX {
                if framed.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
                answered(&mut answer_pending);
            }
        }
    }

    /// Reads more input, within the idle timeout even if the listener was configured
    /// without [`SmtpService::listener`].
    async fn fill(&self, framed: &mut Framed<Stream>) -> Result<usize, NetError> {
        lifeboat_net::timeout(self.inner.config.idle_timeout, framed.fill()).await?
    }

    fn client_info(&self, session: &Session, client_ip: IpAddr) -> ClientInfo {
        ClientInfo {
            ip: client_ip,
            helo: session.helo().unwrap_or_default(),
            tls: session.is_tls(),
            listener: self.inner.config.listener,
            authenticated: session.account().map(str::to_owned),
        }
    }

    async fn check_recipient(
        &self,
        session: &Session,
        client_ip: IpAddr,
        check: RecipientCheck,
    ) -> Result<(), Rejection> {
        let client = self.client_info(session, client_ip);
        self.inner
            .relay
            .check_recipient(&client, &check.mail_from, &check.recipient)
            .await
            .map_err(|refusal| {
                tracing::info!(
                    from = %check.mail_from,
                    rcpt = %check.recipient,
                    refusal = %refusal,
                    "recipient refused"
                );
                rejection(&refusal)
            })
    }

    /// Moves the message `session` is receiving to a new spill file.
    fn spill(&self, session: &mut Session) -> std::io::Result<()> {
        let dir = self
            .inner
            .config
            .spill_dir
            .as_deref()
            .ok_or_else(|| std::io::Error::other("no spill directory is configured"))?;
        session.spill_message(Spill::create_in(dir)?)
    }

    async fn accept(
        &self,
        session: &Session,
        client_ip: IpAddr,
        delivery: Delivery,
    ) -> Result<String, Rejection> {
        let client = self.client_info(session, client_ip);
        let Delivery {
            transaction_id,
            mail_from,
            recipients,
            message,
            data_bytes,
        } = delivery;
        let result = self
            .inner
            .relay
            .accept(&client, &mail_from, &recipients, message)
            .await;
        match result {
            Ok(id) => {
                tracing::info!(
                    id,
                    transaction = %transaction_id,
                    from = %mail_from,
                    rcpts = recipients.len(),
                    size = data_bytes,
                    account = session.account(),
                    "message accepted"
                );
                Ok(id)
            }
            Err(refusal) => {
                tracing::warn!(
                    transaction = %transaction_id,
                    from = %mail_from,
                    rcpts = recipients.len(),
                    size = data_bytes,
                    refusal = %refusal,
                    "message refused"
                );
                Err(rejection(&refusal))
            }
        }
    }

    async fn authenticate(&self, client_ip: IpAddr, credentials: Credentials) -> AuthOutcome {
        let Credentials {
            mechanism,
            username,
            password,
        } = credentials;
        match self.inner.auth.login(&username, &password, client_ip).await {
            Ok(account) => {
                tracing::info!(account = %account.address, mechanism, "login");
                AuthOutcome::Authenticated(account.address)
            }
            // The authenticator logs failed logins itself.
            Err(AuthError::Invalid) => AuthOutcome::Invalid,
            Err(AuthError::RateLimited) => {
                tracing::info!(address = %username, "login refused: rate limited");
                AuthOutcome::RateLimited
            }
            Err(AuthError::Unavailable) => {
                tracing::warn!(address = %username, "login could not be checked");
                AuthOutcome::Unavailable
            }
        }
    }
}

/// Sends the last replies and closes the connection (TLS close_notify, then FIN).
async fn close(mut framed: Framed<Stream>, out: &[u8]) {
    if framed.queue(out).is_ok() {
        let _ = framed.close().await;
    }
}

/// The relay's refusal as a reply. The relay builds its refusals from literals and
/// upstream replies; anything that is not a well-formed 4xx or 5xx becomes
/// `451 4.3.0`, so a bad value can never turn into an acceptance.
fn rejection(refusal: &Refusal) -> Rejection {
    let code = ReplyCode::try_from(refusal.code)
        .ok()
        .filter(|code| matches!(code.class(), 4 | 5));
    let (code, enhanced) = match code {
        Some(code) => (
            code,
            parse_enhanced(&refusal.enhanced).unwrap_or(EnhancedCode::TEMPORARY_SYSTEM_ERROR),
        ),
        None => (ReplyCode::LOCAL_ERROR, EnhancedCode::TEMPORARY_SYSTEM_ERROR),
    };
    Rejection {
        code,
        enhanced: enhanced.with_class_of(code),
        text: refusal.text.clone(),
    }
}

/// `status-code = class "." subject "." detail` (RFC 3463 §2), e.g. `5.7.1`.
fn parse_enhanced(text: &str) -> Option<EnhancedCode> {
    let mut parts = text.split('.');
    let (Some(class), Some(subject), Some(detail), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    EnhancedCode::new(
        number(class, 1)?.try_into().ok()?,
        number(subject, 3)?,
        number(detail, 3)?,
    )
}

/// A number of 1 to `digits_max` ASCII digits.
fn number(text: &str, digits_max: usize) -> Option<u16> {
    let well_formed = !text.is_empty()
        && text.len() <= digits_max
        && text.bytes().all(|byte| byte.is_ascii_digit());
    well_formed.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_become_replies() {
        let refusal = |code, enhanced: &str| Refusal {
            code,
            enhanced: enhanced.to_string(),
            text: "text".to_string(),
        };
        let reply = rejection(&refusal(550, "5.7.1"));
        assert_eq!(reply.code, ReplyCode::MAILBOX_UNAVAILABLE);
        assert_eq!(reply.enhanced, EnhancedCode::NOT_AUTHORIZED);
        // A class mismatch is corrected; a malformed code falls back.
        let reply = rejection(&refusal(450, "5.1.1"));
        assert_eq!(reply.enhanced.to_string(), "4.1.1");
        let reply = rejection(&refusal(250, "2.0.0"));
        assert_eq!(reply.code, ReplyCode::LOCAL_ERROR);
        assert_eq!(reply.enhanced.to_string(), "4.3.0");
        let reply = rejection(&refusal(554, "5.x.1"));
        assert_eq!(reply.enhanced.to_string(), "5.3.0");
        assert_eq!(parse_enhanced("5.1.10"), EnhancedCode::new(5, 1, 10));
        assert_eq!(parse_enhanced("5.1"), None);
        assert_eq!(parse_enhanced("5.1.1.1"), None);
        assert_eq!(parse_enhanced("5.1.1000"), None);
    }
}
