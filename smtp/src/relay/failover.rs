//! The failover decisions as a pure state machine (SPEC §1).
//!
//! [`Machine::handle`] takes an [`Event`] and the time, and returns [`Decision`]s:
//! the mode changes to record and the probes to run. It reads no clock, does no I/O
//! and holds no locks; [`super::router::Router`] feeds it and carries its decisions
//! out. That keeps every rule of SPEC §1 in one place, tested by table.
//!
//! Invariants:
//! - The mode of a `failover = auto` domain that no admin forces follows its
//!   upstream's health: up → normal, down → emergency, unknown → a probe at once and
//!   no change until it answers. Whatever changed the domain (an admin releasing a
//!   forced mode, a new upstream, failover switched to auto, a restart), the next
//!   event brings the mode back in line.
//! - Manual and forced domains are never switched here.
//! - A mode change is decided once: until the store shows it applied (or
//!   [`MODE_PENDING_MS`] passes) it is not decided again.
//! - Flap damping: an upstream that goes down within [`FLAP_WINDOW_MS`] of coming up
//!   needs twice as many good probes the next time (at most [`PROBES_NEEDED_MAX`]);
//!   [`STABLE_MS`] up resets it.

use std::collections::{BTreeMap, BTreeSet};

use lifeboat_store::{Failover, Mode};

/// An upstream that goes down again within this long of coming up is flapping.
pub const FLAP_WINDOW_MS: i64 = 10 * 60 * 1000;
/// Up this long, an upstream's damping is forgotten.
pub const STABLE_MS: i64 = 60 * 60 * 1000;
/// Most good probes damping may ask for (unless `up_after` asks for more).
pub const PROBES_NEEDED_MAX: u32 = 32;
/// A decided mode change not seen in the store after this long is decided again.
pub const MODE_PENDING_MS: i64 = 10_000;
/// Longest reason text kept for a probe or failure.
const DETAIL_CHARS_MAX: usize = 300;

/// The router's settings (`[router]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Consecutive failures that mark an upstream down.
    pub down_after: u32,
    /// Consecutive good probes that mark it up (before damping).
    pub up_after: u32,
    /// Time between probes of an upstream that is down.
    pub probe_interval_ms: i64,
}

/// An upstream's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Nothing known yet: it is probed at once.
    Unknown,
    /// Delivering.
    Up,
    /// Failing; probes decide when it is back.
    Down,
}

impl Health {
    /// Lowercase name for status output.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// What the machine needs to know of a domain, as committed in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainView {
    /// Lowercase name.
    pub name: String,
    /// `host:port`.
    pub upstream: String,
    /// Who switches modes.
    pub failover: Failover,
    /// The mode in force.
    pub mode: Mode,
    /// A mode an admin holds.
    pub forced: Option<Mode>,
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A delivery or verification to `upstream` failed the upstream's way (timeout,
    /// refused or reset connection, 4xx).
    DeliveryFailed {
        /// `host:port`.
        upstream: String,
        /// What happened.
        reason: String,
    },
    /// The upstream accepted a delivery or answered a verification.
    Delivered {
        /// `host:port`.
        upstream: String,
    },
    /// A probe finished.
    ProbeDone {
        /// `host:port`.
        upstream: String,
        /// `Err` with what failed.
        result: Result<(), String>,
    },
    /// The domains as the store now holds them: covers domains added and deleted, an
    /// admin forcing or releasing a mode, a changed upstream, failover switched.
    Directory(Vec<DomainView>),
    /// Time passed: probes that are due, damping that expired, decisions to repeat.
    Tick,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Record this mode for the domain (not forced).
    SetMode {
        /// Domain name.
        domain: String,
        /// The new mode.
        mode: Mode,
        /// Why, for the mode history.
        reason: String,
    },
    /// Probe the upstream, asking for `postmaster@domain`.
    Probe {
        /// `host:port`.
        upstream: String,
        /// A domain it serves.
        domain: String,
    },
}

/// The last probe of an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRecord {
    /// When it finished (Unix milliseconds).
    pub at_ms: i64,
    /// `None` when it passed, else what failed.
    pub failure: Option<String>,
}

/// One upstream's state, as status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamStatus {
    /// Health.
    pub health: Health,
    /// When the health last changed (Unix milliseconds; 0 = never).
    pub since_ms: i64,
    /// Consecutive failures.
    pub failures: u32,
    /// Consecutive good probes while down.
    pub good_probes: u32,
    /// Good probes needed to come up (`up_after`, more while damped).
    pub probes_needed: u32,
    /// Why it last went down.
    pub down_reason: Option<String>,
    /// The last probe.
    pub last_probe: Option<ProbeRecord>,
    /// When the next probe is due (Unix milliseconds).
    pub next_probe_ms: Option<i64>,
    /// A probe is running.
    pub probing: bool,
    /// When it last came back up after being down (Unix milliseconds).
    pub last_up_ms: Option<i64>,
}

impl UpstreamStatus {
    fn new(health: Health, since_ms: i64, settings: &Settings) -> UpstreamStatus {
        UpstreamStatus {
            health,
            since_ms,
            failures: 0,
            good_probes: 0,
            probes_needed: settings.up_after,
            down_reason: None,
            last_probe: None,
            next_probe_ms: match health {
                Health::Up => None,
                Health::Unknown | Health::Down => Some(since_ms),
            },
            probing: false,
            last_up_ms: None,
        }
    }

    /// Whether flap damping asks for more good probes than `up_after`.
    pub fn damped(&self, settings: &Settings) -> bool {
        self.probes_needed > settings.up_after
    }
}

/// A mode change decided and not yet seen applied.
#[derive(Debug, Clone, Copy)]
struct Pending {
    mode: Mode,
    at_ms: i64,
}

/// The failover state machine.
#[derive(Debug, Clone)]
pub struct Machine {
    settings: Settings,
    domains: BTreeMap<String, DomainView>,
    upstreams: BTreeMap<String, UpstreamStatus>,
    pending: BTreeMap<String, Pending>,
    /// Whether the first directory has been seen (a start).
    started: bool,
}

fn clip(text: &str) -> String {
    text.chars().take(DETAIL_CHARS_MAX).collect()
}

impl Machine {
    /// A machine that knows nothing yet.
    pub fn new(settings: Settings) -> Machine {
        Machine {
            settings: Settings {
                down_after: settings.down_after.max(1),
                up_after: settings.up_after.max(1),
                probe_interval_ms: settings.probe_interval_ms.max(1),
            },
            domains: BTreeMap::new(),
            upstreams: BTreeMap::new(),
            pending: BTreeMap::new(),
            started: false,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// An upstream's state.
    pub fn upstream(&self, upstream: &str) -> Option<&UpstreamStatus> {
        self.upstreams.get(upstream)
    }

    /// Every upstream's state.
    pub fn upstreams(&self) -> &BTreeMap<String, UpstreamStatus> {
        &self.upstreams
    }

    /// Feeds one event; returns what to do.
    pub fn handle(&mut self, now_ms: i64, event: Event) -> Vec<Decision> {
        let mut decisions = Vec::new();
        match event {
            Event::DeliveryFailed { upstream, reason } => {
                self.failed(now_ms, &upstream, &reason);
            }
            Event::Delivered { upstream } => self.delivered(now_ms, &upstream),
            Event::ProbeDone { upstream, result } => self.probed(now_ms, &upstream, result),
            Event::Directory(domains) => self.directory(now_ms, domains),
            Event::Tick => self.tick(now_ms, &mut decisions),
        }
        self.reconcile(now_ms, &mut decisions);
        decisions
    }

    fn entry(&mut self, now_ms: i64, upstream: &str) -> &mut UpstreamStatus {
        let settings = self.settings;
        self.upstreams
            .entry(upstream.to_string())
            .or_insert_with(|| UpstreamStatus::new(Health::Unknown, now_ms, &settings))
    }

    fn failed(&mut self, now_ms: i64, upstream: &str, reason: &str) {
        let settings = self.settings;
        let u = self.entry(now_ms, upstream);
        u.good_probes = 0;
        u.failures = u.failures.saturating_add(1);
        if u.health != Health::Down && u.failures >= settings.down_after {
            go_down(u, now_ms, reason, &settings);
        }
    }

    fn delivered(&mut self, now_ms: i64, upstream: &str) {
        let u = self.entry(now_ms, upstream);
        u.failures = 0;
        match u.health {
            Health::Unknown => go_up(u, now_ms),
            // A delivery that went through is as good as a probe (a manual-failover
            // domain keeps delivering while its upstream is marked down).
            Health::Down => good_probe(u, now_ms),
            Health::Up => {}
        }
    }

    fn probed(&mut self, now_ms: i64, upstream: &str, result: Result<(), String>) {
        let settings = self.settings;
        let u = self.entry(now_ms, upstream);
        u.probing = false;
        u.last_probe = Some(ProbeRecord {
            at_ms: now_ms,
            failure: result.as_ref().err().map(|e| clip(e)),
        });
        match result {
            Ok(()) => match u.health {
                Health::Unknown => go_up(u, now_ms),
                Health::Down => good_probe(u, now_ms),
                Health::Up => {}
            },
            Err(why) => {
                u.good_probes = 0;
                if u.health != Health::Down {
                    u.failures = u.failures.saturating_add(1);
                    if u.failures >= settings.down_after {
                        go_down(u, now_ms, &why, &settings);
                    }
                }
            }
        }
        if u.health != Health::Up {
            u.next_probe_ms = Some(now_ms + settings.probe_interval_ms);
        }
    }

    fn directory(&mut self, now_ms: i64, domains: Vec<DomainView>) {
        let first = !self.started;
        self.started = true;
        self.domains = domains.into_iter().map(|d| (d.name.clone(), d)).collect();
        // A pending change the store now shows, or one for a domain that is gone or
        // no longer the router's, is settled.
        let domains = &self.domains;
        self.pending.retain(|name, pending| {
            domains.get(name).is_some_and(|d| {
                d.mode != pending.mode && d.failover == Failover::Auto && d.forced.is_none()
            })
        });
        let used: BTreeSet<&str> = self.domains.values().map(|d| d.upstream.as_str()).collect();
        self.upstreams.retain(|u, _| used.contains(u.as_str()));
        let settings = self.settings;
        for domain in self.domains.values() {
            if self.upstreams.contains_key(&domain.upstream) {
                continue;
            }
            // At a start, a domain the router had put in emergency tells that its
            // upstream was down: it comes back only after `up_after` good probes. An
            // upstream first seen later (a new domain, a changed upstream) is unknown
            // and probed at once.
            let was_down = first
                && self.domains.values().any(|d| {
                    d.upstream == domain.upstream
                        && d.failover == Failover::Auto
                        && d.forced.is_none()
                        && d.mode == Mode::Emergency
                });
            let mut status = if was_down {
                UpstreamStatus::new(Health::Down, now_ms, &settings)
            } else {
                UpstreamStatus::new(Health::Unknown, now_ms, &settings)
            };
            if was_down {
                status.down_reason = Some("down before the server restarted".to_string());
            }
            self.upstreams.insert(domain.upstream.clone(), status);
        }
    }

    fn tick(&mut self, now_ms: i64, decisions: &mut Vec<Decision>) {
        let settings = self.settings;
        for (name, u) in self.upstreams.iter_mut() {
            if u.health == Health::Up
                && u.probes_needed != settings.up_after
                && now_ms - u.since_ms >= STABLE_MS
            {
                u.probes_needed = settings.up_after;
            }
            if u.probing || u.next_probe_ms.is_none_or(|at| at > now_ms) {
                continue;
            }
            let Some(domain) = self
                .domains
                .values()
                .find(|d| d.upstream == *name)
                .map(|d| d.name.clone())
            else {
                continue;
            };
            u.probing = true;
            decisions.push(Decision::Probe {
                upstream: name.clone(),
                domain,
            });
        }
        let pending_max = MODE_PENDING_MS;
        self.pending
            .retain(|_, pending| now_ms - pending.at_ms < pending_max);
    }

    /// Brings every automatic domain's mode in line with its upstream's health.
    fn reconcile(&mut self, now_ms: i64, decisions: &mut Vec<Decision>) {
        for domain in self.domains.values() {
            if domain.failover != Failover::Auto || domain.forced.is_some() {
                continue;
            }
            let Some(u) = self.upstreams.get(&domain.upstream) else {
                continue;
            };
            let (mode, reason) = match u.health {
                Health::Unknown => continue,
                Health::Up => (Mode::Normal, format!("upstream {} is up", domain.upstream)),
                Health::Down => (
                    Mode::Emergency,
                    format!(
                        "upstream {} is down: {}",
                        domain.upstream,
                        u.down_reason.as_deref().unwrap_or("failing")
                    ),
                ),
            };
            let current = self
                .pending
                .get(&domain.name)
                .map(|p| p.mode)
                .unwrap_or(domain.mode);
            if current == mode {
                continue;
            }
            self.pending.insert(
                domain.name.clone(),
                Pending {
                    mode,
                    at_ms: now_ms,
                },
            );
            decisions.push(Decision::SetMode {
                domain: domain.name.clone(),
                mode,
                reason,
            });
        }
    }
}

fn go_down(u: &mut UpstreamStatus, now_ms: i64, reason: &str, settings: &Settings) {
    if let Some(up_ms) = u.last_up_ms {
        let up_for = now_ms - up_ms;
        if up_for >= STABLE_MS {
            u.probes_needed = settings.up_after;
        } else if up_for < FLAP_WINDOW_MS {
            u.probes_needed = u
                .probes_needed
                .saturating_mul(2)
                .min(PROBES_NEEDED_MAX.max(settings.up_after));
        }
    }
    u.health = Health::Down;
    u.since_ms = now_ms;
    u.good_probes = 0;
    u.down_reason = Some(clip(reason));
    if !u.probing {
        u.next_probe_ms = Some(now_ms + settings.probe_interval_ms);
    }
}

fn good_probe(u: &mut UpstreamStatus, now_ms: i64) {
    u.good_probes = u.good_probes.saturating_add(1);
    if u.good_probes >= u.probes_needed {
        go_up(u, now_ms);
    }
}

fn go_up(u: &mut UpstreamStatus, now_ms: i64) {
    // Damping counts returns from down, not the first good news after a start.
    if u.health == Health::Down {
        u.last_up_ms = Some(now_ms);
    }
    u.health = Health::Up;
    u.since_ms = now_ms;
    u.failures = 0;
    u.good_probes = 0;
    u.next_probe_ms = None;
}
