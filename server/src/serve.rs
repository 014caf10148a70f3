//! `lifeboat serve`: opens the store, starts the protocol listeners on the
//! thread-per-core runtime and the HTTP API on its own thread, then waits for SIGTERM
//! or SIGINT and shuts down in order: stop accepting, let sessions finish, stop HTTP,
//! close the store (which writes a checkpoint).

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeboat_imap::parse::Limits as ImapLimits;
use lifeboat_imap::{ImapConfig, ImapService};
use lifeboat_net::{
    ConnectionLimits, ListenerConfig, ServerBuilder, ServerConfig, SharedBudget, TlsAcceptor,
};
use lifeboat_pop3::server::{Pop3Config, Pop3Service};
use lifeboat_smtp::parse::Domain;
use lifeboat_smtp::relay::deliver::Deliverer;
use lifeboat_smtp::relay::{Listener, Relay, RelayConfig};
use lifeboat_smtp::{SmtpConfig, SmtpService};
use lifeboat_store::auth::Authenticator;
use lifeboat_store::{ArchiveIndex, Store};
use lifeboat_web::{Scope, StatusSource, WebConfig, WebServer};

use crate::cluster::Cluster;
use lifeboat::config::{Config, LogFormat};

/// How long sessions get to finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// How long running HTTP requests get.
const HTTP_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often archive retention and compaction run.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(3600);
/// A sealed segment is rewritten once its live bodies fill at most this share of it.
const COMPACT_LIVE_RATIO_MAX: f64 = 0.5;

/// Retention of the archive (SPEC §4), the audit log and the mode history (SPEC §11),
/// and compaction, once an interval, on a thread of their own. Dropping the returned
/// sender stops it.
fn start_maintenance(
    store: Store,
    retention_days: u32,
    leads: Arc<dyn Fn() -> bool + Send + Sync>,
) -> (std::sync::mpsc::Sender<()>, Arc<AtomicBool>) {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let running = Arc::new(AtomicBool::new(true));
    let guard = RunningGuard(running.clone());
    std::thread::Builder::new()
        .name("maintenance".into())
        .spawn(move || loop {
            let _running = &guard;
            match stopped.recv_timeout(MAINTENANCE_INTERVAL) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            // Compaction is each node's own; retention is decided once for a cluster.
            if let Err(e) = store.compact(COMPACT_LIVE_RATIO_MAX) {
                tracing::error!("compaction: {e}");
            }
            if !leads() {
                continue;
            }
            match store.expire_archive(lifeboat_store::now(), retention_days) {
                Ok(n) if n > 0 => tracing::info!(expired = n, retention_days, "archive retention"),
                Ok(_) => {}
                Err(e) => tracing::error!("archive retention: {e}"),
            }
            // SPEC §11: the audit log is kept as long as the archive.
            if let Err(e) = store.expire_history(lifeboat_store::now(), retention_days) {
                tracing::error!("audit log retention: {e}");
            }
        })
        .expect("starting the maintenance thread");
    (stop, running)
}

/// Clears its flag when dropped: when a thread that holds it ends, by a panic too.
struct RunningGuard(Arc<AtomicBool>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// How often the store's health is looked at.
const POISON_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// Calls `failed` once, with why, when the store is poisoned (a write or fsync
/// failed, so it acknowledges nothing more) or one of the `threads` (a name, and its
/// running flag) ended while the server runs (a panic: delivery, failover, the drain
/// or retention would stop with it while mail is still taken). In service `failed`
/// raises SIGTERM: the server then shuts down as on a signal and exits non-zero, for
/// a supervisor to restart it, and the restart's recovery verifies the log (an fsync
/// that failed once cannot be trusted to have kept anything). Dropping the returned
/// sender stops it.
fn watch_health(
    store: Store,
    threads: Vec<(&'static str, Arc<AtomicBool>)>,
    failed: impl Fn(String) + Send + 'static,
) -> std::sync::mpsc::Sender<()> {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("store-watch".into())
        .spawn(move || loop {
            match stopped.recv_timeout(POISON_CHECK_INTERVAL) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            if let Some(why) = store.poisoned() {
                tracing::error!(
                    "the store refuses writes ({why}): shutting down, so that a restart recovers it"
                );
                failed(format!(
                    "stopped because the store refused writes ({why}); every message acknowledged before is safe: restart to recover"
                ));
                return;
            }
            if let Some((name, _)) = threads.iter().find(|(_, running)| !running.load(Ordering::Acquire)) {
                tracing::error!(
                    "the {name} thread ended (see the panic above): shutting down, so that a restart brings it back"
                );
                failed(format!("stopped because the {name} thread ended; restart to bring it back"));
                return;
            }
        })
        .expect("starting the store watch thread");
    stop
}

/// Crates whose INFO lines say nothing an operator needs (tantivy reports every index
/// commit and garbage collection): kept at WARN unless the filter names them.
const QUIET_CRATES: [&str; 1] = ["tantivy"];

/// The tracing filter for a configured level or filter: the same, with
/// [`QUIET_CRATES`] at WARN unless it says otherwise about them.
pub fn log_filter(spec: &str) -> String {
    let mut filter = spec.trim().to_string();
    for quiet in QUIET_CRATES {
        let named = filter
            .split(',')
            .any(|directive| directive.trim().split(['=', ':', '[']).next() == Some(quiet));
        if !named {
            if !filter.is_empty() {
                filter.push(',');
            }
            filter.push_str(quiet);
            filter.push_str("=warn");
        }
    }
    filter
}

fn init_logging(config: &Config) {
    let spec = std::env::var("LIFEBOAT_LOG").unwrap_or_else(|_| config.log.level.clone());
    let filter = tracing_subscriber::EnvFilter::try_new(log_filter(&spec))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(log_filter(&config.log.level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Reads the admin token, or creates one (mode 0600) on first start. It is written
/// durably before anyone can use it: a power cut must not replace a token that
/// management commands and scripts already hold.
fn admin_token(path: &Path) -> Result<String, String> {
    if let Ok(token) = std::fs::read_to_string(path) {
        let token = token.trim().to_string();
        if token.len() >= 32 {
            return Ok(token);
        }
    }
    let bytes: [u8; 32] = rand::random();
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    lifeboat_store::io::write_file_durable(path, format!("{token}\n").as_bytes(), 0o600)
        .map_err(|e| format!("writing the admin token {}: {e}", path.display()))?;
    Ok(token)
}

/// The relay's side of status: upstream health and counters.
struct RelayStatus(Relay, Option<Arc<Cluster>>);

impl StatusSource for RelayStatus {
    fn upstream_health(&self, upstream: &str) -> (String, i64) {
        match self.0.router().upstream(upstream) {
            Some(u) => (u.health.as_str().to_string(), u.since_ms / 1000),
            None => ("unknown".to_string(), 0),
        }
    }

    fn upstream_detail(&self, upstream: &str) -> Option<serde_json::Value> {
        let router = self.0.router();
        let u = router.upstream(upstream)?;
        let settings = router.settings();
        Some(serde_json::json!({
            "failures": u.failures,
            "good_probes": u.good_probes,
            "probes_needed": u.probes_needed,
            "damped": u.damped(&settings),
            "down_reason": u.down_reason,
            "last_probe": u.last_probe.as_ref().map(|p| serde_json::json!({
                "at": p.at_ms / 1000,
                "ok": p.failure.is_none(),
                "failure": p.failure,
            })),
            "next_probe": u.next_probe_ms.map(|t| t / 1000),
            "decided_here": router.coordination().leads(),
        }))
    }

    fn cluster(&self) -> Option<serde_json::Value> {
        self.1.as_ref().map(|c| c.status())
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        let m = &self.0.router().metrics;
        vec![
            ("accepted", m.accepted.load(Relaxed)),
            ("relayed", m.relayed.load(Relaxed)),
            ("failed_over", m.failed_over.load(Relaxed)),
            ("drained", m.drained.load(Relaxed)),
            ("bounced", m.bounced.load(Relaxed)),
        ]
    }

    fn latencies(&self) -> Vec<lifeboat_web::Latency> {
        let m = &self.0.router().metrics;
        vec![
            (
                "smtp_accept",
                "from the end of a message's data to the relay's answer (stored or refused)",
                m.accept_latency.snapshot(),
            ),
            (
                "smtp_reply",
                "from the end of a message's data to the answer written to the client",
                m.reply_latency.snapshot(),
            ),
        ]
    }

    fn redeliver<'a>(
        &'a self,
        id: lifeboat_store::ArchiveId,
        scope: &'a Scope,
        record: &'a (dyn Fn(&[String]) -> Vec<lifeboat_store::Op> + Send + Sync),
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<String>, String>> + Send + 'a>>
    {
        Box::pin(async move {
            self.0
                .redeliver_recorded(id, |a| scope.admits(a), record)
                .await
                .map_err(|r| r.text)
        })
    }

    fn submit<'a>(
        &'a self,
        account: &'a str,
        rcpts: &'a [String],
        message: Vec<u8>,
        also: Vec<lifeboat_store::Op>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + 'a>>
    {
        Box::pin(async move {
            self.0
                .submit(account, rcpts, message, also)
                .await
                .map_err(|r| r.to_string())
        })
    }

    fn send_notice<'a>(
        &'a self,
        rcpt: &'a str,
        subject: &'a str,
        text: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            self.0
                .send_notice(rcpt, subject, text)
                .await
                .map(|_| ())
                .map_err(|r| r.text)
        })
    }
}

fn relay_config(config: &Config) -> RelayConfig {
    RelayConfig {
        hostname: config.server.hostname.clone(),
        down_after: config.router.down_after,
        up_after: config.router.up_after,
        probe_interval: config.router.probe_interval,
        connect_timeout: config.router.connect_timeout,
        command_timeout: config.router.command_timeout,
        verify_cache_ttl: config.router.verify_cache_ttl,
        retry: config.queue.retry.clone(),
        queue_lifetime: config.queue.lifetime,
        relay_networks: config.outbound.relay_networks.clone(),
        next_hop: config.outbound.next_hop.clone(),
        ..RelayConfig::default()
    }
}

/// File descriptors beyond the connections: the store's segments and checkpoint, the
/// archive index, the relay's outgoing connections, NATS.
const FILES_BESIDES_CONNECTIONS: u64 = 1024;

/// Raises the soft limit on open files to what the listeners may hold
/// (`limits.connections_max` each), up to the hard limit; says so when the hard limit
/// is lower, since connections past it are refused at accept.
fn raise_file_limit(config: &Config) {
    let listeners = [
        config.listen.smtp,
        config.listen.submission,
        config.listen.submissions,
        config.listen.imap,
        config.listen.imaps,
        config.listen.pop3,
        config.listen.pop3s,
        config.listen.http,
    ]
    .iter()
    .flatten()
    .count() as u64;
    let wanted = listeners * config.limits.connections_max as u64 + FILES_BESIDES_CONNECTIONS;
    let (soft, hard) = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!("reading the open-file limit: {e}");
            return;
        }
    };
    let target = wanted.min(hard);
    if target > soft {
        match rlimit::setrlimit(rlimit::Resource::NOFILE, target, hard) {
            Ok(()) => tracing::info!(from = soft, to = target, "raised the open-file limit"),
            Err(e) => tracing::warn!(soft, target, "raising the open-file limit: {e}"),
        }
    }
    if hard < wanted {
        tracing::warn!(
            limit = hard,
            wanted,
            "the open-file limit (hard, RLIMIT_NOFILE) is below what {listeners} listeners of limits.connections_max = {} need: connections past it are refused; raise it (systemd: LimitNOFILE=) or lower limits.connections_max",
            config.limits.connections_max
        );
    }
}

/// Creates the directory SMTP spills messages to once the memory budget is spent, and
/// removes what a previous run left there (spill files have no name but where the
/// file system cannot create unnamed files, and then only for a moment).
fn prepare_spill_dir(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    let mut removed = 0;
    for entry in entries.flatten() {
        if std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(dir = %dir.display(), removed, "removed spill files a previous run left");
    }
    Ok(())
}

/// Runs until SIGTERM or SIGINT.
pub fn run(config: Config) -> Result<(), String> {
    init_logging(&config);
    let data_dir = &config.server.data_dir;
    // Durably: on a first start, a power cut must not take the new directory (and the
    // acknowledged mail in it) away.
    lifeboat_store::io::create_dir_all_durable(data_dir)
        .map_err(|e| format!("creating data_dir {}: {e}", data_dir.display()))?;
    // One server per data directory: a second one would corrupt the store.
    let lock_path = data_dir.join("lock");
    let lock = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
    lock.try_lock().map_err(|_| {
        format!(
            "{} is in use by another lifeboat serve (lock {})",
            data_dir.display(),
            lock_path.display()
        )
    })?;

    prepare_spill_dir(&config.spill_dir())?;
    let store = Store::open(data_dir.join("store"), config.store_options())
        .map_err(|e| format!("opening the store: {e}"))?;
    // Cluster mode: joined and caught up before anything else reads, writes or
    // listens (the store may be replaced by the cluster's snapshot).
    let (store, cluster) = Cluster::start(&config, store)?;
    let cluster = cluster.map(Arc::new);
    let token = admin_token(&config.token_path())?;
    let (tls, generated) = TlsAcceptor::load_or_generate(
        config.tls.cert.as_deref(),
        config.tls.key.as_deref(),
        data_dir,
        &config.server.hostname,
    )
    .map_err(|e| format!("TLS: {e}"))?;
    if generated {
        tracing::info!(dir = %data_dir.display(), "generated a self-signed certificate");
    }
    let auth = Authenticator::new(store.clone());

    // Derived from the archive: without it, text searches scan instead.
    let archive_index = match ArchiveIndex::open(data_dir.join("archive-index"), store.clone()) {
        Ok(index) => Some(Arc::new(index)),
        Err(e) => {
            tracing::warn!(
                "archive full-text index unavailable, text searches scan the archive: {e}"
            );
            None
        }
    };
    let leads: Arc<dyn Fn() -> bool + Send + Sync> = match &cluster {
        Some(c) => c.leads(),
        None => Arc::new(|| true),
    };
    let (maintenance, maintaining) =
        start_maintenance(store.clone(), config.archive.retention_days, leads);
    let relay = match &cluster {
        Some(c) => Relay::coordinated(store.clone(), relay_config(&config), c.coordination()),
        None => Relay::new(store.clone(), relay_config(&config)),
    };
    if let Some(c) = &cluster {
        c.listen_for_observations(&relay);
    }
    let deliverer =
        Deliverer::start(relay.clone()).map_err(|e| format!("starting the relay queue: {e}"))?;
    raise_file_limit(&config);
    let (net, backend) = start_protocols(&config, &store, &auth, &tls, &relay, &archive_index)?;

    let web = match config.listen.http {
        Some(addr) => Some(
            WebServer::start(
                store.clone(),
                WebConfig {
                    listen: addr,
                    admin_token: token,
                    io_backend: backend.clone(),
                    status: Some(Arc::new(RelayStatus(relay.clone(), cluster.clone()))),
                    archive_index: archive_index.clone(),
                    tls: http_tls(addr, &tls),
                    auth: Some(auth.clone()),
                    allow_plaintext_loopback: config.auth.allow_plaintext_loopback,
                    // `[web]` (SPEC §8.1) is read by the configuration once it knows
                    // the section; until then its defaults.
                    session_idle: config.web.session_idle,
                    session_max: config.web.session_max,
                    message_bytes_max: usize::try_from(config.limits.message_size_max)
                        .unwrap_or(usize::MAX),
                    recipients_max: config.limits.recipients_max,
                    body_idle: lifeboat_web::BODY_IDLE_DEFAULT,
                    connections_per_ip_max: config.limits.connections_per_ip_max,
                },
            )
            .map_err(|e| format!("http listener {addr}: {e}"))?,
        ),
        None => None,
    };
    if let Some(web) = &web {
        let scheme = if serves_https(web.local_addr()) {
            "https"
        } else {
            "http"
        };
        tracing::info!(listener = "http", addr = %web.local_addr(), scheme, "listening");
    }
    tracing::info!(
        data_dir = %data_dir.display(),
        io = %backend,
        config = %config.origin,
        "lifeboat {} started",
        env!("CARGO_PKG_VERSION")
    );

    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(|e| format!("installing signal handlers: {e}"))?;
    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let poison_watch = {
        let failure = failure.clone();
        watch_health(
            store.clone(),
            vec![
                ("relay queue", deliverer.running()),
                ("maintenance", maintaining),
            ],
            move |why| {
                *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                let _ = signal_hook::low_level::raise(signal_hook::consts::SIGTERM);
            },
        )
    };
    let signal = signals
        .forever()
        .next()
        .unwrap_or(signal_hook::consts::SIGTERM);
    drop(poison_watch);
    tracing::info!(
        signal,
        "shutting down: no new connections, sessions get {SHUTDOWN_GRACE:?}"
    );
    if let Some(net) = net {
        let report = net.shutdown(SHUTDOWN_GRACE);
        tracing::info!(
            aborted = report.connections_aborted,
            "protocol listeners stopped"
        );
    }
    if let Some(web) = web {
        web.shutdown(HTTP_SHUTDOWN_GRACE);
    }
    // Deliveries in progress stay queued and are retried after the next start.
    deliverer.stop();
    if let Some(index) = archive_index {
        index.stop();
    }
    drop(maintenance);
    drop(auth);
    drop(relay);
    if let Some(cluster) = cluster {
        // The web server and the relay held the other handles; they are gone.
        match Arc::try_unwrap(cluster) {
            Ok(cluster) => cluster.stop(),
            Err(cluster) => drop(cluster),
        }
    }
    let stats = store.stats();
    let poisoned = store.poisoned();
    // A checkpoint now, whoever still holds a handle: the next start replays nothing.
    if let Err(e) = store.checkpoint() {
        tracing::error!("checkpoint at shutdown failed: {e}");
    }
    drop(store);
    drop(lock);
    if let Some(why) = poisoned {
        tracing::error!("lifeboat stopped: the store refused writes; restart it to recover");
        return Err(format!(
            "stopped because the store refused writes ({why}); every message acknowledged before is safe: restart to recover"
        ));
    }
    if let Some(why) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
        tracing::error!("lifeboat stopped: {why}");
        return Err(why);
    }
    tracing::info!(batches = stats.batches, "store closed; lifeboat stopped");
    Ok(())
}

/// Whether the http listener at `addr` speaks HTTPS: everywhere but on loopback, where
/// local trials and a reverse proxy on the same host talk plain HTTP.
pub fn serves_https(addr: SocketAddr) -> bool {
    !addr.ip().is_loopback()
}

/// The TLS configuration of the http listener at `addr` (the protocols' certificate,
/// offering HTTP/2 and HTTP/1.1 by ALPN), or `None` for plain HTTP.
fn http_tls(addr: SocketAddr, tls: &TlsAcceptor) -> Option<Arc<rustls::ServerConfig>> {
    serves_https(addr).then(|| {
        let mut config = (**tls.config()).clone();
        // HTTP/2 first: one connection carries every page and live-update stream of a
        // browser, where HTTP/1.1 holds one per open page against browsers' limit of
        // six per host.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    })
}

/// Applies `[limits]` to a listener.
fn limited(config: &Config, mut listener: ListenerConfig) -> ListenerConfig {
    listener.limits = ConnectionLimits {
        connections_max: config.limits.connections_max,
        connections_per_ip_max: config.limits.connections_per_ip_max,
    };
    listener.frame.line_bytes_max = config.limits.line_bytes_max;
    listener.frame.idle_timeout = config.limits.idle_timeout;
    listener
}

/// Starts the protocol listeners that this build serves; returns the server (if any
/// listener runs) and the I/O backend in use.
fn start_protocols(
    config: &Config,
    store: &Store,
    auth: &Arc<Authenticator>,
    tls: &TlsAcceptor,
    relay: &Relay,
    archive_index: &Option<Arc<ArchiveIndex>>,
) -> Result<(Option<lifeboat_net::Server>, String), String> {
    let mut builder = ServerBuilder::new(ServerConfig {
        threads: config.server.threads,
        io: config.server.io,
    });
    let mut listeners = Vec::new();

    // One POP3 service for both listeners: its maildrop locks must be shared.
    let pop3 = Pop3Service::new(
        store.clone(),
        auth.clone(),
        tls.clone(),
        Pop3Config {
            hostname: config.server.hostname.clone(),
            allow_plaintext_loopback: config.auth.allow_plaintext_loopback,
            idle_timeout: config.limits.idle_timeout,
            ..Pop3Config::default()
        },
    );
    for (name, addr, implicit_tls) in [
        ("pop3", config.listen.pop3, false),
        ("pop3s", config.listen.pop3s, true),
    ] {
        if let Some(addr) = addr {
            builder = builder.listener(
                limited(config, pop3.listener(name, addr, implicit_tls)),
                pop3.handler(),
            );
            listeners.push((name, addr));
        }
    }

    // SMTP: one service per kind (MX; submission on both submission listeners), all
    // over the one relay.
    let hostname = Domain::try_from(config.server.hostname.as_str()).map_err(|_| {
        format!(
            "{}: invalid value for `server.hostname`: {:?} is not a domain name",
            config.origin, config.server.hostname
        )
    })?;
    let message_memory = lifeboat_net::MemoryBudget::new(config.limits.message_memory_max);
    let smtp = |kind: Listener| {
        let mut c = SmtpConfig::new(hostname.clone(), kind);
        c.message_memory = SharedBudget(Some(message_memory.clone()));
        c.spill_dir = Some(config.spill_dir());
        c.allow_plaintext_loopback = config.auth.allow_plaintext_loopback;
        c.message_bytes_max = config.limits.message_size_max;
        c.recipients_max = config.limits.recipients_max;
        c.line_bytes_max = config.limits.line_bytes_max;
        c.idle_timeout = config.limits.idle_timeout;
        SmtpService::new(relay.clone(), auth.clone(), tls.clone(), c)
    };
    let mx = smtp(Listener::Mx);
    let submission = smtp(Listener::Submission);
    for (name, addr, service, implicit_tls) in [
        ("smtp", config.listen.smtp, &mx, false),
        ("submission", config.listen.submission, &submission, false),
        ("submissions", config.listen.submissions, &submission, true),
    ] {
        if let Some(addr) = addr {
            builder = builder.listener(
                limited(config, service.listener(name, addr, implicit_tls)),
                service.handler(),
            );
            listeners.push((name, addr));
        }
    }

    // IMAP keeps its own line limit (at least 8192, RFC 7162 §4); literals up to
    // the largest message. SEARCH in its archive mailboxes uses the archive's index.
    let mut imap = ImapService::new(
        store.clone(),
        auth.clone(),
        tls.clone(),
        ImapConfig {
            hostname: config.server.hostname.clone(),
            allow_plaintext_loopback: config.auth.allow_plaintext_loopback,
            idle_timeout: config.limits.idle_timeout,
            limits: ImapLimits::with_literal_bytes_max(
                u32::try_from(config.limits.message_size_max).unwrap_or(u32::MAX),
            ),
            message_memory: SharedBudget(Some(message_memory.clone())),
            spill_dir: Some(config.spill_dir()),
            ..ImapConfig::default()
        },
    );
    if let Some(index) = archive_index {
        imap = imap.with_archive_index(index.clone());
    }
    for (name, addr, implicit_tls) in [
        ("imap", config.listen.imap, false),
        ("imaps", config.listen.imaps, true),
    ] {
        if let Some(addr) = addr {
            let mut listener = imap.listener(name, addr, implicit_tls);
            listener.limits = ConnectionLimits {
                connections_max: config.limits.connections_max,
                connections_per_ip_max: config.limits.connections_per_ip_max,
            };
            builder = builder.listener(listener, imap.handler());
            listeners.push((name, addr));
        }
    }
    if listeners.is_empty() {
        let choice = lifeboat_net::select_backend(config.server.io).map_err(|e| e.to_string())?;
        return Ok((None, choice.to_string()));
    }
    let server = builder.start().map_err(|e| e.to_string())?;
    for (name, addr) in listeners {
        let bound = server.local_addr(name).unwrap_or(addr);
        tracing::info!(listener = name, addr = %bound, "listening");
    }
    let backend = server.backend_choice().to_string();
    Ok((Some(server), backend))
}

#[cfg(test)]
mod tests {
    use super::log_filter;
    use lifeboat_powercut::{PowerCut, Tear};

    /// A worker thread that ends while the server runs (a panic) is noticed, and so
    /// is a poisoned store: the server is then stopped, for its supervisor to start
    /// it again.
    #[test]
    fn a_dead_worker_thread_stops_the_server() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;

        let dir = tempfile::tempdir().unwrap();
        let store =
            lifeboat_store::Store::open(dir.path(), lifeboat_store::Options::default()).unwrap();
        let (told, failures) = std::sync::mpsc::channel();
        let worker = Arc::new(AtomicBool::new(true));
        let flag = worker.clone();
        let thread = std::thread::spawn(move || {
            let _running = super::RunningGuard(flag);
            panic!("a bug in the worker");
        });
        let _watch = super::watch_health(store, vec![("relay queue", worker)], move |why| {
            told.send(why).unwrap()
        });
        assert!(thread.join().is_err());
        let why = failures
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("noticed");
        assert!(why.contains("the relay queue thread ended"), "{why}");
        assert!(
            failures
                .recv_timeout(std::time::Duration::from_millis(600))
                .is_err(),
            "once"
        );
    }

    #[test]
    fn third_party_info_stays_out_unless_asked_for() {
        let cases = [
            ("info", "info,tantivy=warn"),
            ("debug", "debug,tantivy=warn"),
            ("", "tantivy=warn"),
            (
                "lifeboat_smtp=debug,info",
                "lifeboat_smtp=debug,info,tantivy=warn",
            ),
            ("info,tantivy=debug", "info,tantivy=debug"),
            ("tantivy::indexer=info", "tantivy::indexer=info"),
            ("tantivy", "tantivy"),
            ("info,tantivyx=debug", "info,tantivyx=debug,tantivy=warn"),
        ];
        for (spec, expected) in cases {
            assert_eq!(log_filter(spec), expected, "{spec:?}");
        }
    }

    /// The token a first start hands out is the one a restart after a power cut reads.
    #[test]
    fn the_admin_token_survives_a_power_cut() {
        let backing = tempfile::tempdir().unwrap();
        let mountpoint = tempfile::tempdir().unwrap();
        let mut fs = PowerCut::mount(backing.path(), mountpoint.path()).unwrap();
        let path = mountpoint.path().join("admin.token");
        let token = super::admin_token(&path).unwrap();
        fs.cut(Tear::Random { seed: 1 });
        fs.unmount().unwrap();
        let fs = PowerCut::mount(backing.path(), mountpoint.path()).unwrap();
        assert_eq!(super::admin_token(&path).unwrap(), token);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            token,
            "the file holds it"
        );
        fs.unmount().unwrap();
    }
}
