//! The relay: recipient policy, durable acceptance, the failover router, the delivery
//! queue worker, the drain and DSN bounces (SPEC §1–§3).
//!
//! - [`Relay::check_recipient`] answers RCPT: no open relay, emergency-mode mailbox
//!   checks, and in normal mode verification against the upstream (cached).
//! - [`Relay::accept`] archives the message and places every recipient (upstream
//!   queue, portal INBOX or outbound queue) in one store batch; it returns only after
//!   that batch is durable, so a 250 never precedes the fsync.
//! - [`router::Router`] keeps per-upstream health in atomics and the domain policy in
//!   an immutable snapshot swapped whole; sessions read both without locks.
//! - [`deliver::Deliverer`] runs on its own thread: it delivers due queue entries,
//!   moves covered recipients' mail to the portal while their domain is in emergency,
//!   probes upstreams that are down, drains portal INBOXes when a domain is back to
//!   normal, and bounces (RFC 3464) what fails permanently or expires.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use lifeboat_store::{
    Address, Batch, BodyRef, Destination, Direction, Flags, HeaderFields, MessageData, Mode,
    NewArchiveEntry, NewQueueEntry, Op, OpResult, Store, TraceNote,
};

#[doc(hidden)]
pub mod check;
pub mod client;
pub mod coordination;
pub mod deliver;
pub mod dsn;
pub mod failover;
pub mod mx;
pub mod router;

use router::Router;

/// Which listener a client came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The MX listener (inbound, and smart host for relay networks or after AUTH).
    Mx,
    /// Submission (AUTH required).
    Submission,
}

/// Who is sending.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// The client's address.
    pub ip: IpAddr,
    /// What it said in EHLO/HELO.
    pub helo: String,
    /// Whether the connection is encrypted.
    pub tls: bool,
    /// Which listener.
    pub listener: Listener,
    /// The account, after AUTH.
    pub authenticated: Option<String>,
}

/// An SMTP refusal: code, enhanced code, text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Reply code (4xx or 5xx).
    pub code: u16,
    /// Enhanced status code (RFC 3463), e.g. `5.7.1`.
    pub enhanced: String,
    /// Human text.
    pub text: String,
}

impl Refusal {
    fn new(code: u16, enhanced: &str, text: impl Into<String>) -> Refusal {
        Refusal {
            code,
            enhanced: enhanced.to_string(),
            text: text.into(),
        }
    }

    /// What a client hears when the store did not take its message: `452 4.3.1`
    /// when the disk is full or the reserve reached (RFC 3463: mail system full),
    /// `451 4.3.0` otherwise; the client keeps the message and tries again either way.
    fn store_failed(e: &lifeboat_store::Error) -> Refusal {
        match e {
            // The store said why; the session logs the refusal.
            lifeboat_store::Error::NoSpace(_) => {
                Refusal::new(452, "4.3.1", "insufficient system storage, try again later")
            }
            _ => {
                tracing::error!("store commit failed: {e}");
                Refusal::new(451, "4.3.0", "local error in processing, try again later")
            }
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.code, self.enhanced, self.text)
    }
}

/// The relay's settings (from the `[router]`, `[queue]` and `[outbound]` sections).
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Our host name (EHLO to upstreams, DSN reporting MTA).
    pub hostname: String,
    /// Consecutive failures that mark an upstream down.
    pub down_after: u32,
    /// Consecutive good probes that mark it up.
    pub up_after: u32,
    /// Time between probes of an upstream that is down.
    pub probe_interval: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Per-command timeout.
    pub command_timeout: Duration,
    /// Recipient verification cache lifetime.
    pub verify_cache_ttl: Duration,
    /// Retry intervals; the last repeats.
    pub retry: Vec<Duration>,
    /// Undelivered mail bounces after this.
    pub queue_lifetime: Duration,
    /// Client networks that may relay outbound.
    pub relay_networks: Vec<IpNet>,
    /// `host:port` for all outbound mail; `None` = MX lookup.
    pub next_hop: Option<String>,
    /// Name servers for MX lookups; empty = the system's (/etc/resolv.conf).
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// The port mail servers found by MX lookup listen on (25; tests change it).
    pub mx_port: u16,
}

impl Default for RelayConfig {
    /// SPEC §8's embedded defaults.
    fn default() -> RelayConfig {
        RelayConfig {
            hostname: "localhost".into(),
            down_after: 1,
            up_after: 2,
            probe_interval: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(60),
            verify_cache_ttl: Duration::from_secs(600),
            retry: [60, 300, 900, 1800, 3600].map(Duration::from_secs).to_vec(),
            queue_lifetime: Duration::from_secs(5 * 86_400),
            relay_networks: vec!["127.0.0.0/8".parse().expect("valid network")],
            next_hop: None,
            dns_servers: Vec::new(),
            mx_port: 25,
        }
    }
}

/// The relay. Cheap to clone; every clone is the same relay.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: RelayConfig,
    router: Arc<Router>,
}

/// Where one recipient's copy goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Queue for the domain's upstream.
    Upstream(String),
    /// Straight into this account's portal INBOX.
    Portal(String),
    /// Queue for outbound delivery.
    Outbound,
}

impl Relay {
    /// Commits `batch`; a refusal for the client when the store did not take it.
    async fn commit(
        &self,
        batch: Batch,
    ) -> Result<Vec<Result<OpResult, lifeboat_store::OpError>>, Refusal> {
        self.inner
            .store
            .commit_async(batch)
            .await
            .map_err(|e| Refusal::store_failed(&e))
    }

    /// A relay over `store`; start its [`deliver::Deliverer`] separately.
    pub fn new(store: Store, config: RelayConfig) -> Relay {
        Relay::coordinated(store, config, Arc::new(coordination::Solo))
    }

    /// A relay that shares the work with other nodes through `coordination`.
    pub fn coordinated(
        store: Store,
        config: RelayConfig,
        coordination: Arc<dyn coordination::Coordination>,
    ) -> Relay {
        let router = Router::new(store.clone(), &config, coordination);
        Relay {
            inner: Arc::new(Inner {
                store,
                config,
                router,
            }),
        }
    }

    /// The router (health, policy snapshot).
    pub fn router(&self) -> &Arc<Router> {
        &self.inner.router
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.inner.config
    }

    /// Whether this client may send mail to any domain (smart host use).
    pub fn may_relay(&self, client: &ClientInfo) -> bool {
        client.authenticated.is_some()
            || self
                .inner
                .config
                .relay_networks
                .iter()
                .any(|n| n.contains(&client.ip))
    }

    /// Whether `rcpt` is this server's own postmaster (RFC 5321 §4.5.1: it must be
    /// accepted). Its mail is archived, where admins read it, and placed nowhere else.
    pub fn is_own_postmaster(&self, rcpt: &str) -> bool {
        rcpt.rsplit_once('@').is_some_and(|(local, domain)| {
            local.eq_ignore_ascii_case("postmaster")
                && domain.eq_ignore_ascii_case(&self.inner.config.hostname)
        })
    }

    /// The RCPT TO policy (SPEC §2).
    pub async fn check_recipient(
        &self,
        client: &ClientInfo,
        mail_from: &str,
        rcpt: &str,
    ) -> Result<(), Refusal> {
        if self.is_own_postmaster(rcpt) {
            return Ok(());
        }
        let domain = Address::domain_of(rcpt).to_ascii_lowercase();
        let Some(policy) = self.inner.router.policy(&domain) else {
            return if self.may_relay(client) {
                Ok(())
            } else {
                Err(Refusal::new(
                    550,
                    "5.7.1",
                    format!("relaying to <{rcpt}> denied"),
                ))
            };
        };
        match policy.mode {
            Mode::Emergency => {
                let registered = self.inner.store.read(|s| s.account(rcpt).is_some());
                match policy.coverage {
                    lifeboat_store::Coverage::All if !registered => Err(Refusal::new(
                        550,
                        "5.1.1",
                        format!("<{rcpt}>: no such mailbox"),
                    )),
                    // Selected coverage: every other recipient of the domain is spooled
                    // until the upstream is back (SPEC §2).
                    _ => Ok(()),
                }
            }
            Mode::Normal => match self
                .inner
                .router
                .verify_recipient(&policy, mail_from, rcpt)
                .await
            {
                client::Verdict::Accepted | client::Verdict::Unknown => Ok(()),
                client::Verdict::Rejected(reply) => Err(reply),
                client::Verdict::Busy => Err(Refusal::new(
                    451,
                    "4.4.5",
                    format!(
                        "<{rcpt}>: too many recipients being verified at once, try again later"
                    ),
                )),
            },
        }
    }

    /// Where a recipient's copy goes now.
    pub(crate) fn placement(&self, rcpt: &str) -> Placement {
        let domain = Address::domain_of(rcpt).to_ascii_lowercase();
        match self.inner.router.policy(&domain) {
            None => Placement::Outbound,
            Some(policy) => match policy.mode {
                Mode::Normal => Placement::Upstream(domain),
                Mode::Emergency => {
                    let (covered, address) = self.inner.store.read(|s| {
                        (
                            s.is_covered(rcpt),
                            s.account(rcpt).map(|a| a.address.clone()),
                        )
                    });
                    match (covered, address) {
                        (true, Some(address)) => Placement::Portal(address),
                        _ => Placement::Upstream(domain),
                    }
                }
            },
        }
    }

    /// Adds the ops that place one recipient's copy of `body` to `batch`.
    pub(crate) fn place(
        &self,
        batch: &mut Batch,
        body: BodyRef,
        mail_from: &str,
        rcpt: &str,
        date: i64,
    ) -> Placement {
        let placement = self.placement(rcpt);
        match &placement {
            Placement::Portal(address) => {
                let inbox = self.inner.store.read(|s| {
                    s.folder_by_name(address, lifeboat_store::INBOX)
                        .map(|f| f.id)
                });
                if let Some(folder) = inbox {
                    batch.push(Op::Append {
                        folder,
                        body,
                        flags: Flags::default(),
                        internal_date: date,
                    });
                    return placement;
                }
                // The account vanished meanwhile: spool for the upstream instead.
                let domain = Address::domain_of(rcpt).to_string();
                push_enqueue(
                    batch,
                    body,
                    mail_from,
                    rcpt,
                    Destination::Upstream(domain.clone()),
                    date,
                );
                Placement::Upstream(domain)
            }
            Placement::Upstream(domain) => {
                push_enqueue(
                    batch,
                    body,
                    mail_from,
                    rcpt,
                    Destination::Upstream(domain.clone()),
                    date,
                );
                placement
            }
            Placement::Outbound => {
                push_enqueue(batch, body, mail_from, rcpt, Destination::Outbound, date);
                placement
            }
        }
    }

    /// Sends a plain-text notice Lifeboat writes itself (a password reset) to `rcpt`,
    /// from `postmaster@` this host with the null envelope sender (nothing bounces
    /// back to it): archived as outbound, and placed like any mail for `rcpt` (out to
    /// another domain; the upstream or the portal INBOX for a protected one).
    pub async fn send_notice(
        &self,
        rcpt: &str,
        subject: &str,
        text: &str,
    ) -> Result<String, Refusal> {
        let hostname = &self.inner.config.hostname;
        let now = lifeboat_store::now();
        let nonce: u64 = rand::random();
        let body = text.replace("\r\n", "\n").replace('\n', "\r\n");
        let message = format!(
            "From: Lifeboat <postmaster@{hostname}>\r\n\
             To: <{rcpt}>\r\n\
             Subject: {subject}\r\n\
             Date: {date}\r\n\
             Message-ID: <notice.{now}.{nonce:016x}@{hostname}>\r\n\
             Auto-Submitted: auto-generated\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: 8bit\r\n\r\n{body}",
            date = dsn::rfc5322_date(now),
        );
        let client = ClientInfo {
            ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            helo: hostname.clone(),
            tls: true,
            listener: Listener::Submission,
            authenticated: None,
        };
        self.accept(&client, "", &[rcpt.to_string()], message.into_bytes())
            .await
    }

    /// Archives the message and places every recipient in one durable commit.
    /// Returns the archive id to quote in the 250 reply.
    pub async fn accept(
        &self,
        client: &ClientInfo,
        mail_from: &str,
        rcpts: &[String],
        message: impl Into<MessageData>,
    ) -> Result<String, Refusal> {
        let listener = match client.listener {
            Listener::Mx => "smtp",
            Listener::Submission => "submission",
        };
        self.accept_with(client, listener, mail_from, rcpts, message.into(), |_| {
            Vec::new()
        })
        .await
    }

    /// Sends a message a portal user wrote in webmail, down the same path as
    /// submission ([`Relay::accept`] for an authenticated client of the submission
    /// listener, so it is archived as outbound and each recipient placed as any
    /// submitted mail's), with the envelope sender the account's own address (SPEC
    /// §5), a copy in the account's Sent folder marked `\Seen`, and the ops of `also`
    /// (the draft it was, the `\Answered` flag of the message it answers), all in the
    /// one commit: the Sent copy exists exactly when the message was accepted.
    pub async fn submit(
        &self,
        account: &str,
        rcpts: &[String],
        message: Vec<u8>,
        also: Vec<Op>,
    ) -> Result<String, Refusal> {
        let sent = self.inner.store.read(|s| {
            s.folders_of(account)
                .into_iter()
                .find(|f| f.special_use == Some(lifeboat_store::SpecialUse::Sent))
                .map(|f| f.id)
        });
        let client = ClientInfo {
            ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            helo: self.inner.config.hostname.clone(),
            tls: true,
            listener: Listener::Submission,
            authenticated: Some(account.to_string()),
        };
        self.accept_with(&client, "webmail", account, rcpts, message.into(), |body| {
            let mut ops: Vec<Op> = sent
                .map(|folder| Op::Append {
                    folder,
                    body,
                    flags: Flags {
                        system: lifeboat_store::SystemFlags::SEEN,
                        keywords: Vec::new(),
                    },
                    internal_date: lifeboat_store::now(),
                })
                .into_iter()
                .collect();
            ops.extend(also);
            ops
        })
        .await
    }

    /// [`Relay::accept`], with the ops `extra` makes for the message's body added to
    /// the same batch; `listener` names where it came in for its trace.
    async fn accept_with(
        &self,
        client: &ClientInfo,
        listener: &str,
        mail_from: &str,
        rcpts: &[String],
        message: MessageData,
        extra: impl FnOnce(BodyRef) -> Vec<Op>,
    ) -> Result<String, Refusal> {
        if rcpts.is_empty() {
            return Err(Refusal::new(554, "5.5.1", "no valid recipients"));
        }
        let now = lifeboat_store::now();
        // SPEC §4: what users send (submission, or after AUTH) is outbound; on the MX
        // listener, mail that leaves for other domains (smart-host use) is outbound,
        // mail for protected domains inbound.
        let leaves = rcpts.iter().any(|r| {
            !self.is_own_postmaster(r)
                && self
                    .inner
                    .router
                    .policy(&Address::domain_of(r).to_ascii_lowercase())
                    .is_none()
        });
        let direction = if client.listener == Listener::Submission
            || client.authenticated.is_some()
            || leaves
        {
            Direction::Out
        } else {
            Direction::In
        };
        // Before any signature goes in front: the archive keeps none of its fields.
        let headers = message.with_bytes(header_fields).map_err(|e| {
            tracing::error!("reading a spilled message: {e}");
            Refusal::new(451, "4.3.0", "local error in processing, try again later")
        })?;
        let message = match &client.authenticated {
            Some(account) => self.dkim_signed(account, message),
            None => message,
        };
        let size = message.len();
        let mut modes: Vec<(String, Mode)> = Vec::new();
        for rcpt in rcpts {
            let domain = Address::domain_of(rcpt).to_ascii_lowercase();
            if modes.iter().any(|(d, _)| *d == domain) {
                continue;
            }
            if let Some(policy) = self.inner.router.policy(&domain) {
                modes.push((domain, policy.mode));
            }
        }
        let mut batch = Batch::new();
        let body = batch.put_body(message);
        // The trace's first step rides in the same record as the message (SPEC §11).
        batch.push(Op::Trace(TraceNote::Accepted {
            body,
            listener: listener.to_string(),
            client: client.ip.to_string(),
            helo: client.helo.clone(),
            tls: client.tls,
            authenticated: client.authenticated.clone(),
            modes,
        }));
        batch.push(Op::Archive(NewArchiveEntry {
            body,
            direction,
            mail_from: mail_from.to_string(),
            rcpt_to: rcpts.to_vec(),
            date: now,
            headers,
        }));
        let mut portal = 0;
        // Each recipient's placement: the index of its op, and the recipient.
        let mut placed: Vec<(usize, &str)> = Vec::with_capacity(rcpts.len());
        for rcpt in rcpts {
            if self.is_own_postmaster(rcpt) {
                continue;
            }
            placed.push((batch.len(), rcpt));
            if matches!(
                self.place(&mut batch, body, mail_from, rcpt, now),
                Placement::Portal(_)
            ) {
                portal += 1;
            }
        }
        for op in extra(body) {
            batch.push(op);
        }
        let results = self.commit(batch).await?;
        self.place_again(&results, &placed, None, mail_from, now)
            .await?;
        let id = results
            .iter()
            .find_map(|r| match r {
                Ok(OpResult::Archived(id)) => Some(id.to_string()),
                _ => None,
            })
            .unwrap_or_default();
        self.inner
            .router
            .metrics
            .accepted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            id,
            from = mail_from,
            rcpts = rcpts.len(),
            portal,
            size,
            direction = ?direction,
            client = %client.ip,
            "accepted"
        );
        Ok(id)
    }
}

impl Relay {
    /// `message` as a portal user sends it: with the DKIM signatures of their
    /// domain's keys in front once the domain signs (SPEC §12). A key that fails is
    /// logged and the message goes unsigned rather than refused: during an outage a
    /// user's mail must still leave.
    fn dkim_signed(&self, account: &str, mut message: MessageData) -> MessageData {
        let domain = Address::domain_of(account).to_ascii_lowercase();
        let Some(dkim) = self
            .inner
            .store
            .read(|s| s.dkim(&domain).filter(|d| d.enabled).cloned())
        else {
            return message;
        };
        match message.with_bytes(|bytes| crate::dkim::sign(&domain, &dkim, bytes)) {
            Ok(Ok(fields)) => message.prepend(&fields),
            Ok(Err(e)) => tracing::error!(domain, account, "sent unsigned: {e}"),
            Err(e) => tracing::error!(domain, account, "sent unsigned: reading the message: {e}"),
        }
        message
    }

    /// Re-delivers an archived message (SPEC §4): inbound mail to its recipients'
    /// mailboxes, outbound mail to its sender's, each placed as new mail would be
    /// now (the upstream in normal mode, the portal INBOX in emergency). Only
    /// addresses of protected domains that `admit` accepts (the caller's scope) are
    /// delivered to; returns them.
    pub async fn redeliver(
        &self,
        id: lifeboat_store::ArchiveId,
        admit: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, Refusal> {
        self.redeliver_recorded(id, admit, |_| Vec::new()).await
    }

    /// [`Relay::redeliver`], committing the ops `record` returns for the addresses
    /// delivered to (an audit entry) in the same batch as the re-delivery.
    pub async fn redeliver_recorded(
        &self,
        id: lifeboat_store::ArchiveId,
        admit: impl Fn(&str) -> bool,
        record: impl FnOnce(&[String]) -> Vec<Op>,
    ) -> Result<Vec<String>, Refusal> {
        let entry = self
            .inner
            .store
            .read(|s| s.archive_entry(id).cloned())
            .ok_or_else(|| Refusal::new(550, "5.1.0", format!("no archived message {id}")))?;
        let candidates = match entry.direction {
            Direction::In => entry.rcpt_to.clone(),
            Direction::Out => vec![entry.mail_from.clone()],
        };
        let targets: Vec<String> = candidates
            .into_iter()
            .filter(|a| {
                admit(a)
                    && self
                        .inner
                        .router
                        .policy(&Address::domain_of(a).to_ascii_lowercase())
                        .is_some()
            })
            .collect();
        if targets.is_empty() {
            return Err(Refusal::new(
                550,
                "5.1.1",
                format!("archived message {id} has no mailbox of a protected domain (that you may deliver to) to go back to"),
            ));
        }
        let now = lifeboat_store::now();
        let mut batch = Batch::new();
        let mut placed: Vec<(usize, &str)> = Vec::with_capacity(targets.len());
        for address in &targets {
            placed.push((batch.len(), address));
            self.place(
                &mut batch,
                BodyRef::Stored(entry.body),
                &entry.mail_from,
                address,
                now,
            );
        }
        let recorded = batch.len();
        for op in record(&targets) {
            batch.push(op);
        }
        let results = self.commit(batch).await?;
        // A mailbox that went meanwhile: the copy is spooled for the upstream, as on
        // the accept path, so that an admin's retry does not duplicate the others.
        self.place_again(&results, &placed, Some(entry.body), &entry.mail_from, now)
            .await?;
        if let Some(why) = results[recorded..].iter().find_map(|r| r.as_ref().err()) {
            return Err(Refusal::new(451, "4.3.0", why.to_string()));
        }
        tracing::info!(%id, to = ?targets, "archived message re-delivered");
        Ok(targets)
    }
}

impl Relay {
    /// A portal placement the store refused although it was planned (the account or
    /// its INBOX went between the planning and the commit: `NoFolder`) is spooled for
    /// the upstream instead, as [`Relay::place`] does when the account is gone at the
    /// planning; any other refused placement is a temporary failure (the message is
    /// archived, the client sends it again). Never a 250 with the message placed
    /// nowhere.
    /// `stored`: the message, when it was stored before this batch (a re-delivery);
    /// otherwise the body this batch stored.
    async fn place_again(
        &self,
        results: &[Result<OpResult, lifeboat_store::OpError>],
        placed: &[(usize, &str)],
        stored: Option<lifeboat_store::BodyId>,
        mail_from: &str,
        now: i64,
    ) -> Result<(), Refusal> {
        let refused = || Refusal::new(451, "4.3.0", "local error in processing, try again later");
        let stored = stored.or_else(|| {
            results.iter().find_map(|r| match r {
                Ok(OpResult::Body(id)) => Some(*id),
                _ => None,
            })
        });
        let mut again = Batch::new();
        for &(at, rcpt) in placed {
            let Some(Err(why)) = results.get(at) else {
                continue;
            };
            match (why, stored) {
                (lifeboat_store::OpError::NoFolder(_), Some(stored)) => {
                    tracing::warn!(rcpt, "the portal INBOX went before the message reached it ({why}): spooled for the upstream");
                    let domain = Address::domain_of(rcpt).to_string();
                    push_enqueue(
                        &mut again,
                        BodyRef::Stored(stored),
                        mail_from,
                        rcpt,
                        Destination::Upstream(domain),
                        now,
                    );
                }
                _ => {
                    tracing::error!(rcpt, "placing the message failed ({why}): refused with 451");
                    return Err(refused());
                }
            }
        }
        if again.is_empty() {
            return Ok(());
        }
        let results = self.commit(again).await?;
        if let Some(why) = results.iter().find_map(|r| r.as_ref().err()) {
            tracing::error!("spooling the message failed ({why}): refused with 451");
            return Err(refused());
        }
        Ok(())
    }
}

fn push_enqueue(
    batch: &mut Batch,
    body: BodyRef,
    mail_from: &str,
    rcpt: &str,
    destination: Destination,
    now: i64,
) {
    batch.push(Op::Enqueue(NewQueueEntry {
        body,
        sender: mail_from.to_string(),
        recipient: rcpt.to_string(),
        destination,
        next_attempt: now,
        created: now,
        portal: None,
    }));
}

/// Longest header value kept for archive search.
const HEADER_FIELD_CHARS_MAX: usize = 998;

/// The searchable header fields of a message (RFC 2047 words decoded).
pub fn header_fields(message: &[u8]) -> HeaderFields {
    // Only the fields the archive keeps are parsed: a message's Received trail and the
    // rest are skipped, on the accept path of every message.
    static PARSER: std::sync::OnceLock<mail_parser::MessageParser> = std::sync::OnceLock::new();
    let parser = PARSER.get_or_init(|| {
        use mail_parser::HeaderName;
        mail_parser::MessageParser::new()
            .header_address(HeaderName::From)
            .header_address(HeaderName::To)
            .header_address(HeaderName::Cc)
            .header_text(HeaderName::Subject)
            .header_id(HeaderName::MessageId)
            .header_date(HeaderName::Date)
            .default_header_ignore()
    });
    let Some(parsed) = parser.parse_headers(message) else {
        return HeaderFields::default();
    };
    let clip = |s: String| s.chars().take(HEADER_FIELD_CHARS_MAX).collect::<String>();
    let addresses = |a: Option<&mail_parser::Address>| {
        a.map(|a| {
            a.iter()
                .map(|addr| match (&addr.name, &addr.address) {
                    (Some(name), Some(address)) => format!("{name} <{address}>"),
                    (None, Some(address)) => address.to_string(),
                    (Some(name), None) => name.to_string(),
                    (None, None) => String::new(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
    };
    HeaderFields {
        from: clip(addresses(parsed.from())),
        to: clip(addresses(parsed.to())),
        cc: clip(addresses(parsed.cc())),
        subject: clip(parsed.subject().unwrap_or_default().to_string()),
        message_id: clip(parsed.message_id().unwrap_or_default().to_string()),
        date: parsed.date().map(|d| d.to_rfc822()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::header_fields;
    use super::*;

    /// A message whose portal INBOX went between the planning and the commit is
    /// spooled for the upstream, never left in the archive alone; another refused
    /// placement is a 451.
    #[test]
    fn a_placement_the_store_refused_is_spooled_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), lifeboat_store::Options::default()).unwrap();
        let relay = Relay::new(store.clone(), RelayConfig::default());
        let mut batch = Batch::new();
        let body = batch.put_body(b"Subject: x\r\n\r\nx\r\n".to_vec());
        // As on the accept path, the archive holds the message.
        batch.push(Op::Archive(NewArchiveEntry {
            body,
            direction: Direction::In,
            mail_from: "a@remote.test".into(),
            rcpt_to: vec!["carol@example.test".into()],
            date: 0,
            headers: HeaderFields::default(),
        }));
        batch.push(Op::Append {
            folder: lifeboat_store::FolderId(999),
            body,
            flags: Flags::default(),
            internal_date: 0,
        });
        let results = store.commit(batch).unwrap();
        assert!(matches!(
            results[2],
            Err(lifeboat_store::OpError::NoFolder(_))
        ));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(relay.place_again(
                &results,
                &[(2, "carol@example.test")],
                None,
                "a@remote.test",
                0,
            ))
            .unwrap();
        let queued: Vec<(String, Destination)> = store.read(|s| {
            s.queue()
                .map(|e| (e.recipient.clone(), e.destination.clone()))
                .collect()
        });
        assert_eq!(
            queued,
            [(
                "carol@example.test".to_string(),
                Destination::Upstream("example.test".into())
            )]
        );
        // Any other refusal: 451.
        let other = vec![
            results[0].clone(),
            Err(lifeboat_store::OpError::NoQueueEntry(
                lifeboat_store::QueueId(1),
            )),
        ];
        let refused = runtime
            .block_on(relay.place_again(
                &other,
                &[(1, "carol@example.test")],
                None,
                "a@remote.test",
                0,
            ))
            .unwrap_err();
        assert_eq!((refused.code, refused.enhanced.as_str()), (451, "4.3.0"));
    }

    /// The fields the archive keeps come out as the full parser gives them, whatever
    /// other fields (a Received trail) come before.
    #[test]
    fn header_fields_are_those_of_the_full_parse() {
        let message = b"Received: from a (a [192.0.2.1]) by b with ESMTP id 1; Fri, 4 Dec 2026 22:00:00 +0000\r\n\
            From: =?utf-8?q?Ren=C3=A9?= <rene@example.test>\r\n\
            To: a@example.test, \"B\" <b@example.test>\r\nCc: c@example.test\r\n\
            Subject: =?iso-8859-1?q?Caf=E9?= menu\r\nMessage-ID: <m1@example.test>\r\n\
            Date: Fri, 4 Dec 2026 22:00:00 +0000\r\nX-Other: x\r\n\r\nBody.\r\n";
        let fields = header_fields(message);
        assert_eq!(fields.from, "René <rene@example.test>");
        assert_eq!(fields.to, "a@example.test, B <b@example.test>");
        assert_eq!(fields.cc, "c@example.test");
        assert_eq!(fields.subject, "Café menu");
        assert_eq!(fields.message_id, "m1@example.test");
        let full = mail_parser::MessageParser::new()
            .parse_headers(&message[..])
            .unwrap();
        assert_eq!(fields.date, full.date().unwrap().to_rfc822());
    }
}
