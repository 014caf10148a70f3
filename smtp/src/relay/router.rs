//! The failover router (ARCHITECTURE §5).
//!
//! - Per-upstream health lives in atomics (state, consecutive failures, consecutive
//!   good probes, since), read by every core without locks.
//! - The domain → policy map is an immutable snapshot, replaced whole whenever the
//!   store's directory changes (a watcher thread follows the store's directory
//!   signal), so a session reads it without locks either.
//! - Transitions are logged, counted, and recorded in the store as the domain's mode
//!   (for `failover = auto` domains without a forced mode), so a restart resumes the
//!   same mode.
//!
//! A failure is a connect or command timeout, a refused or reset connection, or a
//! 4xx reply to a delivery attempt; a 5xx is the message's failure, never the
//! upstream's (SPEC §1).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use lifeboat_store::{Batch, Coverage, Failover, Mode, Op, Store};

use super::client::{self, Verdict};
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

/// An upstream's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Nothing known yet (after a start): deliveries are tried.
    Unknown = 0,
    /// Delivering.
    Up = 1,
    /// Failing; probes decide when it is back.
    Down = 2,
}

impl Health {
    fn from_u8(v: u8) -> Health {
        match v {
            1 => Health::Up,
            2 => Health::Down,
            _ => Health::Unknown,
        }
    }

    /// Lowercase name for status output.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// Health of one upstream, in atomics.
#[derive(Debug, Default)]
pub struct UpstreamHealth {
    state: AtomicU8,
    failures: AtomicU32,
    good_probes: AtomicU32,
    since: AtomicI64,
}

impl UpstreamHealth {
    /// Current state.
    pub fn state(&self) -> Health {
        Health::from_u8(self.state.load(Ordering::Acquire))
    }
    /// When the state last changed (Unix seconds; 0 = never).
    pub fn since(&self) -> i64 {
        self.since.load(Ordering::Acquire)
    }
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
}

type Snapshot = HashMap<String, DomainPolicy>;

/// The router.
pub struct Router {
    store: Store,
    snapshot: ArcSwap<Snapshot>,
    health: ArcSwap<HashMap<String, Arc<UpstreamHealth>>>,
    verify_cache: parking_lot_free::Cache,
    down_after: u32,
    up_after: u32,
    connect_timeout: Duration,
    command_timeout: Duration,
    verify_cache_ttl: Duration,
    hostname: String,
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
    pub fn new(store: Store, config: &RelayConfig) -> Arc<Router> {
        let router = Arc::new(Router {
            snapshot: ArcSwap::from_pointee(load_snapshot(&store)),
            health: ArcSwap::from_pointee(HashMap::new()),
            verify_cache: Default::default(),
            down_after: config.down_after,
            up_after: config.up_after,
            connect_timeout: config.connect_timeout,
            command_timeout: config.command_timeout,
            verify_cache_ttl: config.verify_cache_ttl,
            hostname: config.hostname.clone(),
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

    /// Reloads the policy snapshot from the store.
    pub fn refresh(&self) {
        let snapshot = load_snapshot(&self.store);
        let health = self.health.load();
        if snapshot.values().any(|p| !health.contains_key(&p.upstream)) {
            let mut next = (**health).clone();
            for p in snapshot.values() {
                next.entry(p.upstream.clone()).or_default();
            }
            self.health.store(Arc::new(next));
        }
        let old = self.snapshot.load();
        if snapshot
            .iter()
            .any(|(name, p)| old.get(name).is_some_and(|o| o.upstream != p.upstream))
        {
            // An upstream changed: verification answers of the old one mean nothing.
            self.verify_cache.clear();
        }
        self.snapshot.store(Arc::new(snapshot));
    }

    /// The policy of a protected domain.
    pub fn policy(&self, domain: &str) -> Option<DomainPolicy> {
        self.snapshot.load().get(domain).cloned()
    }

    /// Every protected domain's policy.
    pub fn policies(&self) -> Vec<DomainPolicy> {
        self.snapshot.load().values().cloned().collect()
    }

    /// The health of an upstream.
    pub fn health(&self, upstream: &str) -> Arc<UpstreamHealth> {
        if let Some(h) = self.health.load().get(upstream) {
            return h.clone();
        }
        let mut next = (**self.health.load()).clone();
        let h = next.entry(upstream.to_string()).or_default().clone();
        self.health.store(Arc::new(next));
        h
    }

    /// Upstreams that are down.
    pub fn down_upstreams(&self) -> Vec<String> {
        self.health
            .load()
            .iter()
            .filter(|(_, h)| h.state() == Health::Down)
            .map(|(u, _)| u.clone())
            .collect()
    }

    /// Records a failure of `upstream`; at `down_after` in a row it is down and its
    /// auto-failover domains go to emergency.
    pub async fn record_failure(&self, upstream: &str, reason: &str) {
        let h = self.health(upstream);
        h.good_probes.store(0, Ordering::Release);
        let failures = h.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if failures >= self.down_after
            && h.state.swap(Health::Down as u8, Ordering::AcqRel) != Health::Down as u8
        {
            h.since.store(lifeboat_store::now(), Ordering::Release);
            tracing::warn!(upstream, failures, reason, "upstream down");
            self.set_modes(
                upstream,
                Mode::Emergency,
                format!("upstream {upstream} down: {reason}"),
            )
            .await;
        }
    }

    /// Records a successful delivery: failures reset; an unknown upstream is up.
    pub fn record_success(&self, upstream: &str) {
        let h = self.health(upstream);
        h.failures.store(0, Ordering::Release);
        if h.state
            .compare_exchange(
                Health::Unknown as u8,
                Health::Up as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            h.since.store(lifeboat_store::now(), Ordering::Release);
        }
    }

    /// Records a probe; `up_after` good ones in a row bring a down upstream back and
    /// its auto-failover domains to normal.
    pub async fn record_probe(&self, upstream: &str, ok: bool, detail: &str) {
        let h = self.health(upstream);
        if !ok {
            h.good_probes.store(0, Ordering::Release);
            tracing::debug!(upstream, detail, "probe failed");
            return;
        }
        let good = h.good_probes.fetch_add(1, Ordering::AcqRel) + 1;
        if good >= self.up_after
            && h.state.swap(Health::Up as u8, Ordering::AcqRel) == Health::Down as u8
        {
            h.failures.store(0, Ordering::Release);
            h.since.store(lifeboat_store::now(), Ordering::Release);
            tracing::info!(upstream, probes = good, "upstream up");
            self.set_modes(
                upstream,
                Mode::Normal,
                format!("upstream {upstream} back up"),
            )
            .await;
        }
    }

    /// Records the mode of every `failover = auto` domain of `upstream` that no admin
    /// holds in a forced mode.
    async fn set_modes(&self, upstream: &str, mode: Mode, reason: String) {
        let mut batch = Batch::new();
        let mut names = Vec::new();
        for p in self.snapshot.load().values() {
            if p.upstream == upstream
                && p.failover == Failover::Auto
                && p.forced.is_none()
                && p.mode != mode
            {
                batch.push(Op::SetMode {
                    domain: p.name.clone(),
                    mode,
                    forced: None,
                    reason: reason.clone(),
                    at: lifeboat_store::now(),
                });
                names.push(p.name.clone());
            }
        }
        if batch.is_empty() {
            return;
        }
        match self.store.commit_async(batch).await {
            Ok(_) => {
                tracing::warn!(domains = ?names, mode = mode.as_str(), %reason, "mode transition");
                self.refresh();
            }
            Err(e) => tracing::error!("recording the mode transition failed: {e}"),
        }
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
        if self.health(&policy.upstream).state() == Health::Down {
            // The mail will be queued; the upstream decides when it is back.
            return Verdict::Unknown;
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
                self.record_success(&policy.upstream);
                self.verify_cache.put(key, v.clone(), self.verify_cache_ttl);
                tracing::debug!(rcpt, upstream = %policy.upstream, elapsed = ?started.elapsed(), ?v, "verified");
                v.clone()
            }
            Ok(Verdict::Unknown) => Verdict::Unknown,
            Err(failure) => {
                self.record_failure(&policy.upstream, &failure.to_string())
                    .await;
                Verdict::Unknown
            }
        }
    }
}
