//! How work is handed to the workers: closed loop or open loop.
//!
//! - **Closed loop**: `sessions` workers each start their next unit of work (an SMTP
//!   message, an IMAP command, a POP3 session) as soon as the previous one ends.
//!   Latency is the service time of each unit.
//! - **Open loop** (`rate`): units arrive at a fixed rate, unit *i* at
//!   `start + i / rate`, whatever the server's speed. Up to `sessions` units are in
//!   progress at once; a unit that finds every worker busy waits, and its latency is
//!   measured from its intended start, so a server stall shows in the percentiles
//!   instead of silently slowing the arrivals (coordinated omission).
//!
//! Invariants: every ticket index is handed out at most once, and never beyond
//! `count`; no ticket is handed out once the duration has passed or `stop` was called.
//! Open-loop arrivals that were due before the end but found no free worker in time are
//! reported as [`Schedule::unstarted`], not silently dropped.

use crate::stats::Stats;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Most concurrent sessions a run may ask for: each is a task and a socket, and the
/// process's file descriptor limit is usually lower anyway.
pub const SESSIONS_MAX: usize = 100_000;

/// What a run does and when it ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Concurrent workers (connections).
    pub sessions: usize,
    /// Units of work in total, across all workers.
    pub count: Option<u64>,
    /// Wall-clock limit; no unit starts after it.
    pub duration: Option<Duration>,
    /// Open loop: arrivals per second. `None` is a closed loop.
    pub rate_per_second: Option<f64>,
}

impl Plan {
    /// A closed loop of `count` units over `sessions` workers.
    pub fn closed(sessions: usize, count: u64) -> Self {
        Plan {
            sessions,
            count: Some(count),
            duration: None,
            rate_per_second: None,
        }
    }
}

/// The right to start one unit of work.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    /// 0-based, unique across the run.
    pub index: u64,
    /// Open loop: when the unit should have started.
    pub intended: Option<Instant>,
}

impl Ticket {
    /// Where the unit's latency is measured from: its intended start in an open loop,
    /// otherwise `now` (the moment the worker begins it).
    pub fn latency_origin(&self, now: Instant) -> Instant {
        self.intended.unwrap_or(now)
    }
}

/// Hands out tickets to workers. See the module documentation.
#[derive(Debug)]
pub struct Schedule {
    plan: Plan,
    /// Set by the first ticket request, so connection set-up before the first unit
    /// (IMAP logins, IDLE holders) is not counted in the run's duration.
    start: OnceLock<Instant>,
    next: AtomicU64,
    /// Tickets actually handed out (`next` also counts refused attempts).
    started: AtomicU64,
    stop: watch::Receiver<bool>,
}

/// A stop signal for runs: send `true` to end them early (interrupt).
pub fn stop_channel() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}

impl Schedule {
    /// A schedule that ends early when `stop` turns `true`. The clock starts at the
    /// first ticket request.
    pub fn new(plan: Plan, stop: watch::Receiver<bool>) -> Self {
        Schedule {
            plan,
            start: OnceLock::new(),
            next: AtomicU64::new(0),
            started: AtomicU64::new(0),
            stop,
        }
    }

    fn start(&self) -> Instant {
        *self.start.get_or_init(Instant::now)
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Tickets handed out so far.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Time since the first ticket request (zero before it).
    pub fn elapsed(&self) -> Duration {
        self.start.get().map_or(Duration::ZERO, Instant::elapsed)
    }

    /// Whether the run was stopped early.
    pub fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// A receiver that changes when the run is stopped.
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.clone()
    }

    fn past_deadline(&self) -> bool {
        self.plan
            .duration
            .is_some_and(|duration| self.start().elapsed() >= duration)
    }

    /// Waits for the next ticket; `None` when the run is over for this worker.
    pub async fn next(&self) -> Option<Ticket> {
        self.start();
        if self.is_stopped() || self.past_deadline() {
            return None;
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        if self.plan.count.is_some_and(|count| index >= count) {
            return None;
        }
        let Some(rate) = self.plan.rate_per_second else {
            self.started.fetch_add(1, Ordering::Relaxed);
            return Some(Ticket {
                index,
                intended: None,
            });
        };
        let offset = Duration::from_secs_f64(index as f64 / rate);
        if self
            .plan
            .duration
            .is_some_and(|duration| offset >= duration)
        {
            return None;
        }
        let intended = self.start() + offset;
        let mut stopped = self.stopped();
        if *stopped.borrow_and_update() {
            return None;
        }
        let stop_requested = async {
            // A dropped sender can no longer ask for a stop: wait for the arrival.
            if stopped.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = tokio::time::sleep_until(intended.into()) => {}
            _ = stop_requested => return None,
        }
        if self.past_deadline() {
            return None;
        }
        self.started.fetch_add(1, Ordering::Relaxed);
        Some(Ticket {
            index,
            intended: Some(intended),
        })
    }

    /// Open loop: arrivals that were due before the run ended but never started,
    /// because every worker was busy until the end. Zero for a closed loop.
    pub fn unstarted(&self, elapsed: Duration) -> u64 {
        let Some(rate) = self.plan.rate_per_second else {
            return 0;
        };
        let window = self
            .plan
            .duration
            .map_or(elapsed, |duration| duration.min(elapsed));
        let mut due = (window.as_secs_f64() * rate).ceil() as u64;
        if let Some(count) = self.plan.count {
            due = due.min(count);
        }
        due.saturating_sub(self.started.load(Ordering::Relaxed))
    }
}

/// What a run measured, and over how long.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub stats: Stats,
    pub elapsed: Duration,
}

impl RunResult {
    /// Closes a run: takes the elapsed time now and adds the open-loop arrivals that
    /// never started as the counter `unstarted-arrivals`.
    pub fn finish(schedule: &Schedule, mut stats: Stats) -> Self {
        let elapsed = schedule.elapsed();
        let unstarted = schedule.unstarted(elapsed);
        if unstarted > 0 {
            stats.counters.insert("unstarted-arrivals", unstarted);
        }
        RunResult { stats, elapsed }
    }
}

/// Runs `sessions` workers as tasks and merges what they measured. A worker that
/// panics brings the run down with its panic, as a test failure should.
pub async fn run_workers<F, Fut>(sessions: usize, worker: F) -> Stats
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Stats> + Send + 'static,
{
    let handles: Vec<_> = (0..sessions).map(|id| tokio::spawn(worker(id))).collect();
    let mut total = Stats::default();
    for handle in handles {
        match handle.await {
            Ok(stats) => total.merge(&stats),
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // Tasks are never cancelled: the runtime outlives this function.
            Err(_cancelled) => {}
        }
    }
    total
}

/// A small deterministic random source (SplitMix64): which message to fetch, which
/// size to give a generated message. Determinism keeps test runs reproducible; the
/// quality only has to be good enough to spread accesses over a mailbox.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut value = self.state;
        value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        value ^ (value >> 31)
    }

    /// Uniform in `low..=high` (`low <= high`).
    pub fn range_inclusive(&mut self, low: u64, high: u64) -> u64 {
        let span = high.saturating_sub(low).saturating_add(1);
        low + self.next_u64() % span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closed_loop_hands_out_exactly_count_tickets() {
        let (_stop, stopped) = stop_channel();
        let schedule = Schedule::new(Plan::closed(3, 10), stopped);
        let mut indexes = Vec::new();
        while let Some(ticket) = schedule.next().await {
            assert!(ticket.intended.is_none());
            indexes.push(ticket.index);
        }
        assert_eq!(indexes, (0..10).collect::<Vec<_>>());
        assert!(schedule.next().await.is_none());
    }

    #[tokio::test]
    async fn open_loop_tickets_carry_their_intended_start() {
        let (_stop, stopped) = stop_channel();
        let schedule = Schedule::new(
            Plan {
                sessions: 1,
                count: Some(5),
                duration: None,
                rate_per_second: Some(100_000.0),
            },
            stopped,
        );
        let mut previous = None;
        let mut handed = 0;
        while let Some(ticket) = schedule.next().await {
            let intended = ticket.intended.expect("open loop tickets have a start");
            if let Some(previous) = previous {
                assert!(intended > previous);
            }
            previous = Some(intended);
            handed += 1;
        }
        assert_eq!(handed, 5);
    }

    #[tokio::test]
    async fn stop_ends_the_schedule() {
        let (stop, stopped) = stop_channel();
        let schedule = Schedule::new(
            Plan {
                sessions: 1,
                count: None,
                duration: None,
                rate_per_second: None,
            },
            stopped,
        );
        assert!(schedule.next().await.is_some());
        stop.send_replace(true);
        assert!(schedule.next().await.is_none());
    }

    #[test]
    fn splitmix_ranges_stay_in_bounds() {
        let mut random = SplitMix64::new(7);
        for _ in 0..1000 {
            let value = random.range_inclusive(3, 9);
            assert!((3..=9).contains(&value));
        }
        assert_eq!(random.range_inclusive(5, 5), 5);
    }
}
