//! The failover router (ARCHITECTURE §5): the glue around [`failover::Machine`].
//!
//! - Every rule of SPEC §1 is in the pure state machine; the router feeds it events
//!   (delivery outcomes, probe results, the store's domains, clock ticks) under a
//!   mutex held only for the call, and carries out its decisions: mode changes are
//!   committed to the store (and so reach the mode history), probes are handed to
//!   the queue worker, which runs them.
//! - After every event the upstreams' state is published whole (arc-swap), and the
//!   domain → policy map is an immutable snapshot replaced whenever the store's
//!   directory changes (a watcher thread follows the store's directory signal):
//!   sessions read both without locks.
//! - Transitions are logged and counted, and the mode is recorded in the store, so a
//!   restart resumes the same mode.
//!
//! A failure is a connect or command timeout, a refused or reset connection, or a
//! 4xx reply to a delivery attempt; a 5xx is the message's failure, never the
//! upstream's (SPEC §1).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use lifeboat_store::latency::Histogram;
use lifeboat_store::{Batch, Coverage, Failover, Mode, Op, Store};

use super::client::{self, Verdict};
use super::coordination::Coordination;
use super::failover::{Decision, DomainView, Event, Health, Machine, Settings, UpstreamStatus};
use super::RelayConfig;

/// What the relay needs to know of a domain, copied out of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainPolicy {
    /// Lowercase name.
    pub name: String,
    /// `host:port`.
    pub upstream: String,
    /// Coverage.
    pub coverage: Coverage,
    /// Failover.
    pub failover: Failover,
    /// Mode in force.
    pub mode: Mode,
    /// Forced mode, if any.
    pub forced: Option<Mode>,
}

/// Relay counters, for status and metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Messages accepted (250 after DATA).
    pub accepted: AtomicU64,
    /// Queue entries delivered to an upstream or next hop.
    pub relayed: AtomicU64,
    /// Queue entries moved to the portal because their domain is in emergency.
    pub failed_over: AtomicU64,
    /// Portal messages delivered to the upstream by a drain.
    pub drained: AtomicU64,
    /// DSN bounces generated.
    pub bounced: AtomicU64,
    /// Upstreams marked down.
    pub upstreams_down: AtomicU64,
    /// Upstreams marked up again.
    pub upstreams_up: AtomicU64,
    /// Domain modes switched by the router.
    pub mode_changes: AtomicU64,
    /// Probes run.
    pub probes: AtomicU64,
    /// SMTP: from the end of a message's data to the relay's answer (stored, or
    /// refused).
    pub accept_latency: Histogram,
    /// SMTP: from the end of a message's data to the answer written to the client.
    pub reply_latency: Histogram,
}

type Snapshot = HashMap<String, DomainPolicy>;

/// Now, in Unix milliseconds: the machine's clock.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A probe the machine wants run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRequest {
    /// `host:port`.
    pub upstream: String,
    /// The domain whose postmaster the probe asks for.
    pub domain: String,
}

/// Recipient verifications sent to one upstream at once; past it a recipient waits
/// for one to end (at most `connect_timeout`), then is deferred with `451 4.4.5`.
pub const VERIFICATIONS_PER_UPSTREAM_MAX: usize = 8;

/// The router.
pub struct Router {
    store: Store,
    snapshot: ArcSwap<Snapshot>,
    machine: Mutex<Machine>,
    upstreams: ArcSwap<BTreeMap<String, UpstreamStatus>>,
    verify_cache: parking_lot_free::Cache,
    /// Verifications under way, by upstream ([`VERIFICATIONS_PER_UPSTREAM_MAX`]).
    verifying: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    connect_timeout: Duration,
    command_timeout: Duration,
    verify_cache_ttl: Duration,
    hostname: String,
    coordination: Arc<dyn Coordination>,
    /// Counters.
    pub metrics: Metrics,
}

/// A small mutex-guarded cache; kept apart so the lock-free parts stay obvious.
mod parking_lot_free {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Instant;

    use super::Verdict;

    /// Verification results by recipient, with their time.
    #[derive(Default)]
    pub struct Cache(Mutex<HashMap<String, (Verdict, Instant)>>);

    /// Most recipients remembered.
    const ENTRIES_MAX: usize = 100_000;

    impl Cache {
        pub fn get(&self, key: &str, ttl: std::time::Duration) -> Option<Verdict> {
            let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.get(key)
                .filter(|(_, at)| at.elapsed() < ttl)
                .map(|(v, _)| v.clone())
        }
        pub fn put(&self, key: String, verdict: Verdict, ttl: std::time::Duration) {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() >= ENTRIES_MAX {
                map.retain(|_, (_, at)| at.elapsed() < ttl);
                if map.len() >= ENTRIES_MAX {
                    map.clear();
                }
            }
            map.insert(key, (verdict, Instant::now()));
        }
        pub fn clear(&self) {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
    }
}

fn load_snapshot(store: &Store) -> Snapshot {
    store.read(|s| {
        s.domains()
            .map(|d| {
                (
                    d.name.clone(),
                    DomainPolicy {
                        name: d.name.clone(),
                        upstream: d.upstream.clone(),
                        coverage: d.coverage,
                        failover: d.failover,
                        mode: d.mode,
                        forced: d.forced,
                    },
                )
            })
            .collect()
    })
}

impl Router {
    /// A router over the store's domains; a watcher thread keeps its snapshot fresh.
    pub fn new(
        store: Store,
        config: &RelayConfig,
        coordination: Arc<dyn Coordination>,
    ) -> Arc<Router> {
        let machine = Machine::new(Settings {
            down_after: config.down_after,
            up_after: config.up_after,
            probe_interval_ms: config.probe_interval.as_millis() as i64,
        });
        let router = Arc::new(Router {
            snapshot: ArcSwap::from_pointee(HashMap::new()),
            machine: Mutex::new(machine),
            upstreams: ArcSwap::from_pointee(BTreeMap::new()),
            verify_cache: Default::default(),
            verifying: Default::default(),
            connect_timeout: config.connect_timeout,
            command_timeout: config.command_timeout,
            verify_cache_ttl: config.verify_cache_ttl,
            hostname: config.hostname.clone(),
            coordination,
            metrics: Metrics::default(),
            store,
        });
        router.refresh();
        let weak: Weak<Router> = Arc::downgrade(&router);
        let signal = router.store.directory_signal();
        std::thread::Builder::new()
            .name("router-watch".into())
            .spawn(move || {
                let mut seen = signal.version();
                loop {
                    seen = signal.wait_timeout(seen, Duration::from_secs(1));
                    match weak.upgrade() {
                        Some(router) => router.refresh(),
                        None => return,
                    }
                }
            })
            .expect("starting the router watcher");
        router
    }

    /// Feeds one event to the machine, publishes the upstreams' new state, and logs
    /// and counts health transitions; returns the decisions.
    fn feed(&self, event: Event) -> Vec<Decision> {
        let mut machine = self.machine.lock().unwrap_or_else(|p| p.into_inner());
        self.feed_locked(&mut machine, event)
    }

    fn feed_locked(&self, machine: &mut Machine, event: Event) -> Vec<Decision> {
        let decisions = machine.handle(now_ms(), event);
        let before = self.upstreams.load();
        for (upstream, after) in machine.upstreams() {
            let was = before.get(upstream).map(|u| u.health);
            if was == Some(after.health) {
                continue;
            }
            match after.health {
                Health::Down => {
                    self.metrics.upstreams_down.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        upstream,
                        reason = after.down_reason.as_deref().unwrap_or(""),
                        probes_needed = after.probes_needed,
                        "upstream down"
                    );
                }
                Health::Up if was == Some(Health::Down) => {
                    self.metrics.upstreams_up.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(upstream, "upstream up");
                }
                Health::Up | Health::Unknown => {
                    tracing::debug!(upstream, health = after.health.as_str(), "upstream health")
                }
            }
        }
        self.upstreams.store(Arc::new(machine.upstreams().clone()));
        decisions
    }

    /// The mode changes among `decisions` as one batch, and the probes. A node that
    /// does not lead carries out nothing: the leader decides for all.
    fn split(&self, decisions: Vec<Decision>) -> (Batch, Vec<String>, Vec<ProbeRequest>) {
        let mut batch = Batch::new();
        if !self.coordination.leads() {
            return (batch, Vec::new(), Vec::new());
        }
        let mut names = Vec::new();
        let mut probes = Vec::new();
        for decision in decisions {
            match decision {
                Decision::SetMode {
                    domain,
                    mode,
                    reason,
                } => {
                    tracing::warn!(domain, mode = mode.as_str(), %reason, "mode transition");
                    batch.push(Op::RouterSetMode {
                        domain: domain.clone(),
                        mode,
                        reason,
                        at: lifeboat_store::now(),
                    });
                    names.push(domain);
                }
                Decision::Probe { upstream, domain } => {
                    probes.push(ProbeRequest { upstream, domain })
                }
            }
        }
        (batch, names, probes)
    }

    /// Carries out decisions from async code: commits the mode changes, returns the
    /// probes to run.
    async fn carry_out(&self, decisions: Vec<Decision>) -> Vec<ProbeRequest> {
        let (batch, names, probes) = self.split(decisions);
        if !batch.is_empty() {
            match self.store.commit_async(batch).await {
                Ok(_) => self.committed(&names),
                Err(e) => {
                    tracing::error!(domains = ?names, "recording a mode transition failed: {e}")
                }
            }
        }
        probes
    }

    fn committed(&self, names: &[String]) {
        self.metrics
            .mode_changes
            .fetch_add(names.len() as u64, Ordering::Relaxed);
        self.reload();
    }

    /// Reloads the policy snapshot from the store and shows it to the machine. The
    /// machine's lock is held throughout, so that of two reloads racing the later one
    /// read the store later: a stale snapshot never replaces a fresh one.
    fn reload(&self) -> Vec<Decision> {
        let mut machine = self.machine.lock().unwrap_or_else(|p| p.into_inner());
        let snapshot = load_snapshot(&self.store);
        let old = self.snapshot.load();
        if snapshot
            .iter()
            .any(|(name, p)| old.get(name).is_some_and(|o| o.upstream != p.upstream))
        {
            // An upstream changed: verification answers of the old one mean nothing.
            self.verify_cache.clear();
        }
        let domains = snapshot
            .values()
            .map(|p| DomainView {
                name: p.name.clone(),
                upstream: p.upstream.clone(),
                failover: p.failover,
                mode: p.mode,
                forced: p.forced,
            })
            .collect();
        self.snapshot.store(Arc::new(snapshot));
        self.feed_locked(&mut machine, Event::Directory(domains))
    }

    /// Reloads the policy snapshot from the store and records, blocking, any mode
    /// change it calls for (an admin released a domain, a new upstream, …).
    pub fn refresh(&self) {
        let (batch, names, _) = self.split(self.reload());
        if !batch.is_empty() {
            match self.store.commit(batch) {
                Ok(_) => self.committed(&names),
                Err(e) => {
                    tracing::error!(domains = ?names, "recording a mode transition failed: {e}")
                }
            }
        }
    }

    /// [`Router::refresh`] for async callers.
    pub async fn refresh_async(&self) {
        let decisions = self.reload();
        self.carry_out(decisions).await;
    }

    /// Lets time pass: commits mode changes that are due again, returns the probes
    /// that are due (the queue worker runs them and reports with
    /// [`Router::record_probe`]).
    pub async fn tick(&self) -> Vec<ProbeRequest> {
        let decisions = self.feed(Event::Tick);
        self.carry_out(decisions).await
    }

    /// How long until the machine has something to do without being asked (the next
    /// probe due), at most `max`.
    pub fn idle_for(&self, max: Duration) -> Duration {
        let now = now_ms();
        self.upstreams
            .load()
            .values()
            .filter(|u| !u.probing)
            .filter_map(|u| u.next_probe_ms)
            .map(|at| Duration::from_millis((at - now).max(0) as u64))
            .min()
            .map_or(max, |d| d.min(max))
    }

    /// The policy of a protected domain.
    pub fn policy(&self, domain: &str) -> Option<DomainPolicy> {
        self.snapshot.load().get(domain).cloned()
    }

    /// Every protected domain's policy.
    pub fn policies(&self) -> Vec<DomainPolicy> {
        self.snapshot.load().values().cloned().collect()
    }

    /// The state of an upstream, if any domain uses it.
    pub fn upstream(&self, upstream: &str) -> Option<UpstreamStatus> {
        self.upstreams.load().get(upstream).cloned()
    }

    /// The health of an upstream (`Unknown` for one no domain uses).
    pub fn health(&self, upstream: &str) -> Health {
        self.upstreams
            .load()
            .get(upstream)
            .map(|u| u.health)
            .unwrap_or(Health::Unknown)
    }

    /// Every upstream's state, by `host:port`.
    pub fn upstreams(&self) -> Arc<BTreeMap<String, UpstreamStatus>> {
        self.upstreams.load_full()
    }

    /// How this node shares work with others.
    pub fn coordination(&self) -> &Arc<dyn Coordination> {
        &self.coordination
    }

    /// The router's settings (`[router]`).
    pub fn settings(&self) -> Settings {
        *self
            .machine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .settings()
    }

    /// Records a failure of `upstream` (timeout, refused or reset, 4xx); at
    /// `down_after` in a row it is down and its automatic domains go to emergency.
    pub async fn record_failure(&self, upstream: &str, reason: &str) {
        self.observed(Event::DeliveryFailed {
            upstream: upstream.to_string(),
            reason: reason.to_string(),
        })
        .await;
    }

    /// What this node saw: fed to its own machine, and passed to the leader when this
    /// node does not lead.
    async fn observed(&self, event: Event) {
        if !self.coordination.leads() {
            self.coordination.forward(event.clone());
        }
        let decisions = self.feed(event);
        self.carry_out(decisions).await;
    }

    /// What another node saw of an upstream (cluster mode): the leader decides on it.
    pub async fn remote(&self, event: Event) {
        if !self.coordination.leads() {
            return;
        }
        let decisions = self.feed(event);
        self.carry_out(decisions).await;
    }

    /// Records a delivery the upstream accepted.
    pub async fn record_success(&self, upstream: &str) {
        // The common case changes nothing: no lock.
        if self
            .upstreams
            .load()
            .get(upstream)
            .is_some_and(|u| u.health == Health::Up && u.failures == 0)
        {
            return;
        }
        self.observed(Event::Delivered {
            upstream: upstream.to_string(),
        })
        .await;
    }

    /// Records a probe's result; enough good ones bring a down upstream back and its
    /// automatic domains to normal.
    pub async fn record_probe(&self, upstream: &str, result: Result<(), String>) {
        self.metrics.probes.fetch_add(1, Ordering::Relaxed);
        if let Err(why) = &result {
            tracing::debug!(upstream, "probe failed: {why}");
        }
        self.observed(Event::ProbeDone {
            upstream: upstream.to_string(),
            result,
        })
        .await;
    }

    /// Runs a probe of `request.upstream` (SPEC §1) and records its result.
    pub async fn probe(&self, request: &ProbeRequest) {
        let result = client::probe(
            &request.upstream,
            &self.hostname,
            &request.domain,
            self.connect_timeout,
            self.command_timeout,
        )
        .await
        .map_err(|f| f.to_string());
        self.record_probe(&request.upstream, result).await;
    }

    /// Normal-mode recipient verification against the upstream, cached (SPEC §2).
    pub async fn verify_recipient(
        &self,
        policy: &DomainPolicy,
        mail_from: &str,
        rcpt: &str,
    ) -> Verdict {
        let key = format!("{}\0{}", policy.upstream, rcpt.to_ascii_lowercase());
        if let Some(v) = self.verify_cache.get(&key, self.verify_cache_ttl) {
            return v;
        }
        if self.health(&policy.upstream) == Health::Down {
            // The mail will be queued; the upstream decides when it is back.
            return Verdict::Unknown;
        }
        // Many sessions sending new recipients at once (a spammer's dictionary
        // attack, say) do not become as many connections to the upstream: it might
        // refuse them, and its refusals would fail the domain over.
        let gate = {
            let mut verifying = self.verifying.lock().unwrap_or_else(|p| p.into_inner());
            verifying
                .entry(policy.upstream.clone())
                .or_insert_with(|| {
                    Arc::new(tokio::sync::Semaphore::new(VERIFICATIONS_PER_UPSTREAM_MAX))
                })
                .clone()
        };
        let Ok(Ok(_permit)) =
            tokio::time::timeout(self.connect_timeout, gate.acquire_owned()).await
        else {
            tracing::info!(
                rcpt,
                upstream = %policy.upstream,
                "{VERIFICATIONS_PER_UPSTREAM_MAX} verifications under way: the recipient is deferred"
            );
            return Verdict::Busy;
        };
        // Another session may have asked for the same recipient meanwhile.
        if let Some(v) = self.verify_cache.get(&key, self.verify_cache_ttl) {
            return v;
        }
        let started = Instant::now();
        let verdict = client::verify(
            &policy.upstream,
            &self.hostname,
            mail_from,
            rcpt,
            self.connect_timeout,
            self.command_timeout,
        )
        .await;
        match &verdict {
            Ok(v @ (Verdict::Accepted | Verdict::Rejected(_))) => {
                self.record_success(&policy.upstream).await;
                self.verify_cache.put(key, v.clone(), self.verify_cache_ttl);
                tracing::debug!(rcpt, upstream = %policy.upstream, elapsed = ?started.elapsed(), ?v, "verified");
                v.clone()
            }
            Ok(Verdict::Unknown | Verdict::Busy) => Verdict::Unknown,
            Err(failure) => {
                self.record_failure(&policy.upstream, &failure.to_string())
                    .await;
                Verdict::Unknown
            }
        }
    }
}
