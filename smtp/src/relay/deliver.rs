//! The queue worker: delivery, failover to the portal, drain, probes and bounces.
//!
//! It runs on a thread of its own with a single-threaded runtime, so protocol cores
//! never wait for it. Each tick it reads the queue and decides per entry:
//!
//! - domain in emergency, recipient covered: move it to the portal INBOX
//!   (`QueueToPortal`, one batch for all);
//! - domain in emergency otherwise (selected coverage, or a drain entry): wait;
//! - due: hand it to a connection worker of its destination, which keeps one SMTP
//!   connection and sends transaction after transaction while there is work;
//! - older than the queue lifetime: bounce and remove (drain entries never expire:
//!   their message is safe in the portal).
//!
//! The queue is read whole only now and then (at start, on a mode change, once a
//! minute), a chunk of entries per hold of the store's read lock; in between a tick looks only at entries new since the last look (ids only
//! grow) and at those whose time has come in the worker's own wake-up list, so a long
//! spooled queue costs nothing per arriving message.
//!
//! Results go back to the store as ops: `Dequeue` after a 250 (for a drain entry this
//! also removes the portal message, in the same batch — SPEC §1), `Defer` with the
//! next retry time after a temporary failure, a bounce plus `Dequeue` after a 5xx.
//!
//! While a domain is normal, every message in its accounts' INBOXes without a drain
//! entry gets one (the drain). The scan is idempotent, so it simply runs again after a
//! restart or a new failure, and what users deleted or moved has no entry left to
//! deliver (the store cancels it).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lifeboat_store::{
    Address, Batch, BodyId, BodyRef, Destination, Direction, Mode, NewArchiveEntry, NewQueueEntry,
    Op, PortalRef, QueueEntry, QueueId, QueueState, State, TraceNote, INBOX,
};

use super::client::{Client, Failure, Kind, RcptOutcome};
use super::dsn::{self, BounceReason};
use super::mx::MxResolver;
use super::router::ProbeRequest;
use super::{header_fields, Relay};

/// Connections open at once to one destination.
const CONNECTIONS_PER_DESTINATION_MAX: usize = 16;
/// Recipients of one transaction.
const RCPTS_PER_TRANSACTION_MAX: usize = 50;
/// Transactions on one connection before it is renewed.
const TRANSACTIONS_PER_CONNECTION_MAX: usize = 1000;
/// How long an idle connection worker waits for more work before it says QUIT.
const CONNECTION_IDLE: Duration = Duration::from_millis(500);
/// Longest sleep between ticks when nothing wakes the worker.
const TICK_MAX: Duration = Duration::from_secs(1);
/// Shortest time between two ticks: each reads the whole queue, so under a stream of
/// arrivals (every commit moves the queue signal) ticks are batched.
const TICK_MIN: Duration = Duration::from_millis(20);
/// How often the whole queue is read even when nothing asks for it: picks up what
/// changed without the worker's knowledge (an admin holding or releasing entries).
const FULL_SCAN_INTERVAL: Duration = Duration::from_secs(60);
/// Queue entries read per hold of the store's read lock during a full scan.
const FULL_SCAN_CHUNK: usize = 1024;
/// The first pause before a delivery the store did not record is recorded again,
/// and the longest (see `record_delivered`).
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(500);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(30);
/// Ops a batch of the drain scan or of the move to the portal holds at most (each
/// about 200 bytes: well within a cluster frame).
const OPS_PER_BATCH: usize = 1000;
/// Expired entries a batch holds at most (each with a DSN).
const EXPIRED_PER_BATCH: usize = 16;
/// How often the drain scan runs while nothing changed.
const DRAIN_SCAN_INTERVAL: Duration = Duration::from_secs(30);

/// The running queue worker.
pub struct Deliverer {
    stop: Arc<tokio::sync::Notify>,
    thread: Option<JoinHandle<()>>,
    running: Arc<std::sync::atomic::AtomicBool>,
}

/// Clears its flag when dropped: when the worker's thread ends, whether by a stop or
/// by a panic.
struct Running(Arc<std::sync::atomic::AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Deliverer {
    /// Starts the worker thread.
    pub fn start(relay: Relay) -> std::io::Result<Deliverer> {
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let guard = Running(running.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("relay-queue".into())
            .spawn(move || {
                let _running = guard;
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, async move {
                    let mx = MxResolver::new(&relay.config().dns_servers, relay.config().mx_port);
                    let worker = Rc::new(Worker::new(relay, mx));
                    tokio::select! {
                        _ = worker.clone().run() => {}
                        _ = stopped.notified() => {}
                    }
                });
            })?;
        Ok(Deliverer {
            stop,
            thread: Some(thread),
            running,
        })
    }

    /// True while the worker runs: false once it stopped, or died (a panic), which
    /// whoever runs the server should notice (delivery, failover and the drain stop
    /// with it).
    pub fn running(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.running.clone()
    }

    /// Stops the worker; entries being delivered stay queued (at-least-once).
    pub fn stop(mut self) {
        self.stop.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Deliverer {
    fn drop(&mut self) {
        self.stop.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where a connection goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Target {
    /// A protected domain's upstream (failures count against it).
    Upstream(String),
    /// The configured outbound next hop.
    Outbound(String),
    /// A recipient domain's mail servers, found by MX lookup.
    Mx(String),
}

impl Target {
    /// `host:port`, or the domain for an MX target (for logs).
    fn addr(&self) -> &str {
        match self {
            Target::Upstream(a) | Target::Outbound(a) | Target::Mx(a) => a,
        }
    }
}

#[derive(Default)]
struct Pending {
    queue: VecDeque<QueueId>,
    workers: usize,
}

/// What the planner knows between ticks.
#[derive(Default)]
struct Watch {
    /// The highest entry id looked at: later ids are new.
    seen_max: Option<QueueId>,
    /// Entries to look at again, by when.
    wake: std::collections::BTreeSet<(i64, QueueId)>,
    /// When the queue was last read whole.
    full_scan: Option<Instant>,
}

struct Worker {
    relay: Relay,
    mx: MxResolver,
    watch: RefCell<Watch>,
    in_flight: RefCell<HashSet<QueueId>>,
    pending: RefCell<HashMap<Target, Pending>>,
    work: tokio::sync::Notify,
    probing: RefCell<HashSet<String>>,
    /// Wakes the planner when a probe finishes (the next one may be due soon).
    probed: tokio::sync::Notify,
    last_drain_scan: Cell<Option<Instant>>,
}

/// What a tick decided: actions now, and entries to look at again later.
#[derive(Default)]
struct Plan {
    actions: Vec<Action>,
    wake: Vec<(i64, QueueId)>,
}

/// What a tick decided about one entry.
enum Action {
    ToPortal(QueueId, String),
    Deliver(QueueId, Target),
    Expire(QueueId),
}

impl Worker {
    fn new(relay: Relay, mx: MxResolver) -> Worker {
        Worker {
            relay,
            mx,
            watch: RefCell::new(Watch::default()),
            in_flight: RefCell::new(HashSet::new()),
            pending: RefCell::new(HashMap::new()),
            work: tokio::sync::Notify::new(),
            probing: RefCell::new(HashSet::new()),
            probed: tokio::sync::Notify::new(),
            last_drain_scan: Cell::new(None),
        }
    }

    async fn run(self: Rc<Self>) {
        let store = self.relay.store().clone();
        let queue_signal = store.queue_signal();
        let directory_signal = store.directory_signal();
        let mut directory_seen = u64::MAX;
        let mut epoch_seen = self.relay.router().coordination().epoch();
        let mut last_tick = Instant::now() - TICK_MIN;
        loop {
            let queue_seen = queue_signal.version();
            let directory_now = directory_signal.version();
            if directory_now != directory_seen {
                directory_seen = directory_now;
                // Decide with the modes just committed, not the watcher's last copy,
                // over the whole queue: a mode change concerns every entry.
                self.relay.router().refresh_async().await;
                self.watch.borrow_mut().full_scan = None;
                // A mode change may start a drain: scan now.
                self.last_drain_scan.set(None);
            }
            let epoch = self.relay.router().coordination().epoch();
            if epoch != epoch_seen {
                epoch_seen = epoch;
                // Other owners, or another leader: everything may be ours now.
                self.watch.borrow_mut().full_scan = None;
                self.last_drain_scan.set(None);
            }
            if let Some(wait) = TICK_MIN.checked_sub(last_tick.elapsed()) {
                tokio::time::sleep(wait).await;
            }
            last_tick = Instant::now();
            self.tick().await;
            tokio::select! {
                _ = queue_signal.changed(queue_seen) => {}
                _ = directory_signal.changed(directory_seen) => {}
                _ = self.probed.notified() => {}
                _ = tokio::time::sleep(self.relay.router().idle_for(TICK_MAX)) => {}
            }
        }
    }

    async fn tick(self: &Rc<Self>) {
        let now = lifeboat_store::now();
        if self
            .last_drain_scan
            .get()
            .is_none_or(|t| t.elapsed() >= DRAIN_SCAN_INTERVAL)
        {
            self.last_drain_scan.set(Some(Instant::now()));
            self.drain_scan().await;
        }
        let actions = self.plan(now);
        let mut to_portal: Vec<Op> = Vec::new();
        let mut expired = Vec::new();
        for action in actions {
            match action {
                Action::ToPortal(id, account) => {
                    let inbox = self
                        .relay
                        .store()
                        .read(|s| s.folder_by_name(&account, INBOX).map(|f| f.id));
                    if let Some(folder) = inbox {
                        to_portal.push(Op::QueueToPortal { id, folder });
                    }
                }
                Action::Expire(id) => expired.push(id),
                Action::Deliver(id, target) => {
                    self.in_flight.borrow_mut().insert(id);
                    self.pending
                        .borrow_mut()
                        .entry(target)
                        .or_default()
                        .queue
                        .push_back(id);
                }
            }
        }
        if !to_portal.is_empty() {
            let (n, failed) = self.commit_ops(to_portal).await;
            if n > 0 {
                self.relay
                    .router()
                    .metrics
                    .failed_over
                    .fetch_add(n as u64, Ordering::Relaxed);
                tracing::info!(
                    messages = n,
                    "moved queued mail to portal INBOXes (emergency)"
                );
            }
            if let Some(e) = failed {
                tracing::error!("moving queued mail to the portal failed: {e}");
            }
        }
        if !expired.is_empty() {
            self.expire(expired, now).await;
        }
        self.start_workers();
        let probes = self.relay.router().tick().await;
        self.start_probes(probes);
    }

    /// Decides what to do with the entries that need a look (see the module docs).
    fn plan(&self, now: i64) -> Vec<Action> {
        let store = self.relay.store();
        let in_flight = self.in_flight.borrow();
        let mut watch = self.watch.borrow_mut();
        let full = watch
            .full_scan
            .is_none_or(|t| t.elapsed() >= FULL_SCAN_INTERVAL);
        let mut plan = Plan::default();
        if full {
            watch.full_scan = Some(Instant::now());
            watch.wake.clear();
            // In chunks, so that a long queue never holds the store's read lock (and
            // with it every commit's acknowledgement) for long.
            let mut cursor = None;
            loop {
                let last = store.read(|s| {
                    let mut last = None;
                    for entry in s.queue_after(cursor).take(FULL_SCAN_CHUNK) {
                        last = Some(entry.id);
                        if !in_flight.contains(&entry.id) {
                            self.consider(s, entry, now, &mut plan);
                        }
                    }
                    last
                });
                match last {
                    Some(id) => cursor = Some(id),
                    None => break,
                }
            }
            watch.seen_max = cursor.or(watch.seen_max);
        } else {
            let mut due_ids = Vec::new();
            while let Some(&(at, id)) = watch.wake.first() {
                if at > now {
                    break;
                }
                watch.wake.pop_first();
                due_ids.push(id);
            }
            let after = watch.seen_max;
            let newest = store.read(|s| {
                let candidates = due_ids
                    .iter()
                    .filter_map(|id| s.queue_entry(*id))
                    .chain(s.queue_after(after));
                for entry in candidates {
                    if !in_flight.contains(&entry.id) {
                        self.consider(s, entry, now, &mut plan);
                    }
                }
                s.queue().next_back().map(|e| e.id)
            });
            watch.seen_max = newest.or(watch.seen_max);
        }
        watch.wake.extend(plan.wake);
        plan.actions
    }

    /// What to do with one entry now, or when to look at it again.
    fn consider(&self, s: &State, entry: &QueueEntry, now: i64, plan: &mut Plan) {
        let router = self.relay.router();
        // Another node delivers it (cluster mode); a change of owners reads the whole
        // queue again.
        if !router.coordination().owns(entry.id.0) {
            return;
        }
        let lifetime = self.relay.config().queue_lifetime.as_secs() as i64;
        let expires = entry.created + lifetime;
        let expired = entry.portal.is_none() && expires <= now;
        let due = entry.next_attempt <= now && entry.state != QueueState::Held;
        // When to look again if nothing happens before: the retry time, or the expiry
        // for an entry that waits for its domain's upstream.
        let later = |at: i64| {
            if entry.portal.is_none() {
                at.min(expires)
            } else {
                at
            }
        };
        // The upstream to deliver to, or `None` for outbound delivery.
        let upstream = match &entry.destination {
            Destination::Upstream(domain) => match router.policy(domain) {
                Some(policy) if policy.mode == Mode::Emergency => {
                    if entry.portal.is_none() && s.is_covered(&entry.recipient) {
                        if let Some(account) = s.account(&entry.recipient) {
                            plan.actions
                                .push(Action::ToPortal(entry.id, account.address.clone()));
                            return;
                        }
                    }
                    if expired {
                        plan.actions.push(Action::Expire(entry.id));
                    } else if entry.portal.is_none() {
                        plan.wake.push((expires, entry.id));
                    }
                    return;
                }
                Some(policy) => Some(policy.upstream),
                // The domain is no longer protected: deliver it like any outbound mail.
                None => None,
            },
            Destination::Outbound => None,
        };
        if expired {
            plan.actions.push(Action::Expire(entry.id));
        } else if due {
            let target = match upstream {
                Some(upstream) => Target::Upstream(upstream),
                None => self.outbound_target(&entry.recipient),
            };
            plan.actions.push(Action::Deliver(entry.id, target));
        } else if entry.state != QueueState::Held {
            plan.wake.push((later(entry.next_attempt), entry.id));
        }
    }

    /// Looks at `id` again at `at` (after a deferral, or when it comes back unsent).
    fn wake_at(&self, at: i64, id: QueueId) {
        self.watch.borrow_mut().wake.insert((at, id));
    }

    fn outbound_target(&self, rcpt: &str) -> Target {
        match &self.relay.config().next_hop {
            Some(hop) => Target::Outbound(hop.clone()),
            None => Target::Mx(Address::domain_of(rcpt).to_ascii_lowercase()),
        }
    }

    fn start_workers(self: &Rc<Self>) {
        let mut starts = Vec::new();
        {
            let mut pending = self.pending.borrow_mut();
            for (target, p) in pending.iter_mut() {
                while !p.queue.is_empty()
                    && p.workers < CONNECTIONS_PER_DESTINATION_MAX
                    && (p.workers == 0 || p.queue.len() > p.workers * 2)
                {
                    p.workers += 1;
                    starts.push(target.clone());
                }
            }
        }
        for target in starts {
            let worker = self.clone();
            tokio::task::spawn_local(async move { worker.connection(target).await });
        }
        self.work.notify_waiters();
    }

    /// Takes the next transaction's entries for `target`: the first pending entry and
    /// the other pending ones with the same body and sender.
    fn take(&self, target: &Target) -> Vec<QueueEntry> {
        let mut pending = self.pending.borrow_mut();
        let Some(p) = pending.get_mut(target) else {
            return Vec::new();
        };
        let store = self.relay.store();
        while let Some(first) = p.queue.pop_front() {
            let Some(head) = store.read(|s| s.queue_entry(first).cloned()) else {
                self.in_flight.borrow_mut().remove(&first);
                continue;
            };
            let mut group = vec![head];
            let mut rest = VecDeque::new();
            while let Some(id) = p.queue.pop_front() {
                let same = group.len() < RCPTS_PER_TRANSACTION_MAX
                    && store.read(|s| {
                        s.queue_entry(id)
                            .is_some_and(|e| e.body == group[0].body && e.sender == group[0].sender)
                    });
                if same {
                    if let Some(e) = store.read(|s| s.queue_entry(id).cloned()) {
                        group.push(e);
                    }
                } else {
                    rest.push_back(id);
                }
                if rest.len() > RCPTS_PER_TRANSACTION_MAX {
                    break;
                }
            }
            while let Some(id) = rest.pop_back() {
                p.queue.push_front(id);
            }
            return group;
        }
        Vec::new()
    }

    fn release(&self, ids: impl IntoIterator<Item = QueueId>) {
        let mut in_flight = self.in_flight.borrow_mut();
        for id in ids {
            in_flight.remove(&id);
        }
    }

    /// One connection to `target`, sending transactions while there is work.
    async fn connection(self: Rc<Self>, target: Target) {
        let mut client: Option<Client> = None;
        let mut transactions = 0;
        loop {
            let mut group = self.take(&target);
            if group.is_empty() {
                let more = tokio::time::timeout(CONNECTION_IDLE, self.work.notified()).await;
                group = self.take(&target);
                if group.is_empty() && more.is_err() {
                    break;
                }
                if group.is_empty() {
                    continue;
                }
            }
            // Drain entries whose portal message is gone (deleted, moved) were
            // cancelled by the store; the rest must still be in INBOX.
            let group: Vec<QueueEntry> = {
                let store = self.relay.store();
                let (keep, gone): (Vec<_>, Vec<_>) = group.into_iter().partition(|e| {
                    store.read(|s| {
                        s.queue_entry(e.id).is_some()
                            && e.portal.as_ref().is_none_or(|p| {
                                s.folder(p.folder)
                                    .is_some_and(|f| f.messages.contains_key(&p.uid))
                            })
                    })
                });
                self.release(gone.iter().map(|e| e.id));
                keep
            };
            if group.is_empty() {
                continue;
            }
            let ids: Vec<QueueId> = group.iter().map(|e| e.id).collect();
            let body = match self.relay.store().body(group[0].body) {
                Ok(body) => body,
                Err(e) => {
                    tracing::error!("reading body {}: {e}", group[0].body);
                    self.release(ids);
                    continue;
                }
            };
            if client.is_none() {
                match self.connect(&target).await {
                    Ok(c) => client = Some(c),
                    Err(failure) => {
                        self.failed(&target, group, failure).await;
                        self.abandon(&target);
                        break;
                    }
                }
            }
            let rcpts: Vec<String> = group.iter().map(|e| e.recipient.clone()).collect();
            tracing::debug!(target = target.addr(), ?rcpts, "sending");
            let result = client
                .as_mut()
                .expect("connected above")
                .transaction(&group[0].sender, &rcpts, &body)
                .await;
            transactions += 1;
            tracing::debug!(target = target.addr(), ?result, "sent");
            match result {
                Ok(outcomes) => {
                    let any_temporary = outcomes
                        .iter()
                        .any(|o| matches!(o, RcptOutcome::Temporary(_)));
                    let c = client.as_ref().expect("connected above");
                    let peer = format!("{}{}", c.peer, if c.tls { " (TLS)" } else { "" });
                    let reply = format!("{peer}: {}", c.last_reply);
                    self.finish(&target, group, outcomes, &body, (&peer, &reply))
                        .await;
                    if any_temporary {
                        // SPEC §1: a 4xx to a delivery counts against the upstream.
                        break;
                    }
                }
                Err(failure) => {
                    let permanent = matches!(failure, Failure::Permanent(_));
                    self.failed(&target, group, failure).await;
                    if !permanent {
                        client = None;
                        self.abandon(&target);
                        break;
                    }
                }
            }
            if transactions >= TRANSACTIONS_PER_CONNECTION_MAX {
                if let Some(c) = client.take() {
                    c.quit().await;
                }
                transactions = 0;
            }
        }
        if let Some(c) = client {
            c.quit().await;
        }
        let mut pending = self.pending.borrow_mut();
        if let Some(p) = pending.get_mut(&target) {
            p.workers = p.workers.saturating_sub(1);
        }
    }

    /// Opens a connection to `target`; for an MX target, to the first of its mail
    /// servers that answers.
    async fn connect(&self, target: &Target) -> Result<Client, Failure> {
        let config = self.relay.config();
        let (hostname, connect, command) = (
            &config.hostname,
            config.connect_timeout,
            config.command_timeout,
        );
        let Target::Mx(domain) = target else {
            return Client::connect(target.addr(), hostname, connect, command).await;
        };
        let mut last =
            Failure::Temporary(Kind::Connect, format!("{domain}: no mail server answered"));
        for addr in self.mx.targets(domain).await? {
            match Client::connect(&addr.to_string(), hostname, connect, command).await {
                Ok(client) => return Ok(client),
                // A 5xx greeting says this host refuses mail; the next may not.
                Err(failure) => last = failure,
            }
        }
        Err(match last {
            Failure::Permanent(reply) => {
                Failure::Temporary(Kind::Deferred, format!("{domain}: {}", reply.text()))
            }
            other => other,
        })
    }

    /// After a temporary failure of the destination, give its pending entries back to
    /// the planner (which may now route them to the portal).
    fn abandon(&self, target: &Target) {
        let ids: Vec<QueueId> = self
            .pending
            .borrow_mut()
            .get_mut(target)
            .map(|p| p.queue.drain(..).collect())
            .unwrap_or_default();
        let now = lifeboat_store::now();
        for id in &ids {
            self.wake_at(now, *id);
        }
        self.release(ids);
    }

    /// Adds a `Defer` of `entry` to `batch` and remembers to look at it again then.
    fn defer(&self, batch: &mut Batch, entry: &QueueEntry, error: String, now: i64) {
        let next_attempt = self.retry_at(entry.attempts, now);
        batch.push(Op::Defer {
            id: entry.id,
            next_attempt,
            error,
        });
        self.wake_at(next_attempt, entry.id);
    }

    fn retry_at(&self, attempts: u32, now: i64) -> i64 {
        let retry = &self.relay.config().retry;
        let wait = retry[(attempts as usize).min(retry.len() - 1)];
        now + wait.as_secs().max(1) as i64
    }

    /// Records a transaction's outcomes; `answer` is the server (`host:port`, TLS or
    /// not) and its reply to the message.
    async fn finish(
        &self,
        target: &Target,
        group: Vec<QueueEntry>,
        outcomes: Vec<RcptOutcome>,
        body: &[u8],
        (peer, reply): (&str, &str),
    ) {
        let now = lifeboat_store::now();
        let metrics = &self.relay.router().metrics;
        let mut batch = Batch::new();
        let mut temporary = None;
        let mut delivered = Vec::new();
        for (entry, outcome) in group.iter().zip(outcomes) {
            match outcome {
                RcptOutcome::Delivered => {
                    delivered.push(entry.id);
                    if entry.portal.is_some() {
                        metrics.drained.fetch_add(1, Ordering::Relaxed);
                    } else {
                        metrics.relayed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                RcptOutcome::Temporary(text) => {
                    self.defer(&mut batch, entry, text.clone(), now);
                    temporary = Some(text);
                }
                RcptOutcome::Permanent(reply) if entry.portal.is_some() => {
                    // A drain the upstream refuses stays in the portal, where its user
                    // has it (dequeuing it would expunge it there); retry later, as
                    // for a refused transaction.
                    batch.push(Op::Trace(TraceNote::Attempt {
                        queue: entry.id,
                        delivered: false,
                        reply: format!("{peer}: {}", reply.text()),
                    }));
                    self.defer(&mut batch, entry, reply.text(), now);
                }
                RcptOutcome::Permanent(reply) => {
                    batch.push(Op::Trace(TraceNote::Attempt {
                        queue: entry.id,
                        delivered: false,
                        reply: format!("{peer}: {}", reply.text()),
                    }));
                    self.bounce(
                        &mut batch,
                        entry,
                        BounceReason::Refused(reply.text()),
                        body,
                        now,
                    );
                    batch.push(Op::Dequeue { id: entry.id });
                }
            }
        }
        if !delivered.is_empty() {
            if let Target::Upstream(upstream) = target {
                self.relay.router().record_success(upstream).await;
            }
            self.record_delivered(&delivered, reply).await;
        }
        self.commit(batch, group.iter().map(|e| e.id)).await;
        if let (Some(text), Target::Upstream(upstream)) = (temporary, target) {
            self.relay.router().record_failure(upstream, &text).await;
        }
    }

    async fn failed(&self, target: &Target, group: Vec<QueueEntry>, failure: Failure) {
        let now = lifeboat_store::now();
        let mut batch = Batch::new();
        match &failure {
            Failure::Temporary(_, why) => {
                tracing::warn!(
                    target = target.addr(),
                    entries = group.len(),
                    "delivery deferred: {why}"
                );
                for entry in &group {
                    self.defer(&mut batch, entry, why.clone(), now);
                }
            }
            Failure::Permanent(reply) => {
                tracing::warn!(
                    target = target.addr(),
                    entries = group.len(),
                    "delivery refused: {}",
                    reply.text()
                );
                let body = self
                    .relay
                    .store()
                    .body(group[0].body)
                    .map(|b| b.to_vec())
                    .unwrap_or_default();
                for entry in &group {
                    if entry.portal.is_some() {
                        // A drain the upstream refuses stays in the portal; retry later.
                        self.defer(&mut batch, entry, reply.text(), now);
                        continue;
                    }
                    batch.push(Op::Trace(TraceNote::Attempt {
                        queue: entry.id,
                        delivered: false,
                        reply: format!("{}: {}", target.addr(), reply.text()),
                    }));
                    self.bounce(
                        &mut batch,
                        entry,
                        BounceReason::Refused(reply.text()),
                        &body,
                        now,
                    );
                    batch.push(Op::Dequeue { id: entry.id });
                }
            }
        }
        self.commit(batch, group.iter().map(|e| e.id)).await;
        if let (Failure::Temporary(_, why), Target::Upstream(upstream)) = (&failure, target) {
            self.relay.router().record_failure(upstream, why).await;
        }
    }

    /// Records that the server took the entries `delivered` (`reply` its answer). It
    /// is a batch of its own, with no message in it, so that the disk reserve does
    /// not refuse it; until it is recorded the entries stay in flight, so they are
    /// not delivered again: the commit is tried again, with a growing pause, for as
    /// long as it fails (a full disk, a cluster without a majority). A failure that
    /// stops the store stops the server; the entries are then delivered again after
    /// the restart, the one duplicate a crash may cause (SPEC §3).
    async fn record_delivered(&self, delivered: &[QueueId], reply: &str) {
        let mut pause = RECORD_RETRY_FIRST;
        loop {
            let mut batch = Batch::new();
            for &id in delivered {
                batch.push(Op::Trace(TraceNote::Attempt {
                    queue: id,
                    delivered: true,
                    reply: reply.to_string(),
                }));
                batch.push(Op::Dequeue { id });
            }
            match self.relay.store().commit_async(batch).await {
                Ok(_) => return,
                Err(e @ lifeboat_store::Error::Poisoned(_)) => {
                    tracing::error!("recording {} deliveries failed: {e}", delivered.len());
                    return;
                }
                Err(e) => {
                    tracing::warn!(
                        "recording {} deliveries failed, trying again in {pause:?} (they are not delivered again meanwhile): {e}",
                        delivered.len()
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(RECORD_RETRY_MAX);
                }
            }
        }
    }

    async fn commit(&self, batch: Batch, ids: impl Iterator<Item = QueueId>) {
        let ids: Vec<QueueId> = ids.collect();
        if !batch.is_empty() {
            if let Err(e) = self.relay.store().commit_async(batch).await {
                // The entries are as they were: tried again at the first retry
                // interval, not only at the next full scan.
                let again = self.retry_at(0, lifeboat_store::now());
                tracing::error!(
                    "recording delivery results failed, the entries are tried again in {}s: {e}",
                    again - lifeboat_store::now()
                );
                for &id in &ids {
                    self.wake_at(again, id);
                }
            }
        }
        self.release(ids);
    }

    /// Adds a DSN to the entry's sender (none for the null sender, RFC 5321 §4.5.5).
    fn bounce(
        &self,
        batch: &mut Batch,
        entry: &QueueEntry,
        reason: BounceReason,
        original: &[u8],
        now: i64,
    ) {
        self.relay
            .router()
            .metrics
            .bounced
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(id = %entry.id, sender = %entry.sender, recipient = %entry.recipient, ?reason, "bounce");
        if entry.sender.is_empty() {
            return;
        }
        batch.push(Op::Trace(TraceNote::Dsn {
            body: BodyRef::Stored(entry.body),
            to: entry.sender.clone(),
            reason: match &reason {
                BounceReason::Refused(reply) => format!("refused: {reply}"),
                BounceReason::Expired(_) => "expired in the queue".to_string(),
            },
        }));
        let message = dsn::bounce(
            &self.relay.config().hostname,
            &entry.sender,
            &entry.recipient,
            &reason,
            original,
            now,
            &entry.id.to_string(),
        );
        let headers = header_fields(&message);
        let body = batch.put_body(message);
        batch.push(Op::Archive(NewArchiveEntry {
            body,
            direction: Direction::Out,
            mail_from: String::new(),
            rcpt_to: vec![entry.sender.clone()],
            date: now,
            headers,
        }));
        self.relay.place(batch, body, "", &entry.sender, now);
    }

    async fn expire(&self, ids: Vec<QueueId>, now: i64) {
        // A few entries a batch: each brings a DSN with up to 64 KiB of the original.
        for chunk in ids.chunks(EXPIRED_PER_BATCH) {
            self.expire_some(chunk, now).await;
        }
    }

    async fn expire_some(&self, ids: &[QueueId], now: i64) {
        let mut batch = Batch::new();
        for id in ids {
            let Some(entry) = self.relay.store().read(|s| s.queue_entry(*id).cloned()) else {
                continue;
            };
            let original = self
                .relay
                .store()
                .body(entry.body)
                .map(|b| b.to_vec())
                .unwrap_or_default();
            batch.push(Op::Trace(TraceNote::Attempt {
                queue: entry.id,
                delivered: false,
                reply: format!(
                    "expired in the queue; last error: {}",
                    entry.last_error.as_deref().unwrap_or("none")
                ),
            }));
            self.bounce(
                &mut batch,
                &entry,
                BounceReason::Expired(entry.last_error.clone()),
                &original,
                now,
            );
            batch.push(Op::Dequeue { id: entry.id });
        }
        if !batch.is_empty() {
            if let Err(e) = self.relay.store().commit_async(batch).await {
                tracing::error!("expiring queue entries failed: {e}");
            }
        }
    }

    /// Queues every INBOX message of every normal-mode domain that has no drain entry.
    /// Only the leader does (cluster mode): one scan for all nodes.
    async fn drain_scan(&self) {
        let router = self.relay.router();
        if !router.coordination().leads() {
            return;
        }
        let normal: Vec<String> = router
            .policies()
            .into_iter()
            .filter(|p| p.mode == Mode::Normal)
            .map(|p| p.name)
            .collect();
        if normal.is_empty() {
            return;
        }
        let now = lifeboat_store::now();
        let ops = self.relay.store().read(|s| {
            let mut ops = Vec::new();
            let mut senders: Option<HashMap<BodyId, String>> = None;
            for domain in &normal {
                for account in s.accounts(Some(domain)) {
                    let Some(inbox) = s.folder_by_name(&account.address, INBOX) else {
                        continue;
                    };
                    for message in inbox.messages.values() {
                        if s.drain_entry(inbox.id, message.uid).is_some() {
                            continue;
                        }
                        // The envelope sender comes from the archive copy, if any.
                        let senders = senders.get_or_insert_with(|| {
                            s.archive().map(|a| (a.body, a.mail_from.clone())).collect()
                        });
                        ops.push(Op::Enqueue(NewQueueEntry {
                            body: lifeboat_store::BodyRef::Stored(message.body),
                            sender: senders.get(&message.body).cloned().unwrap_or_default(),
                            recipient: account.address.clone(),
                            destination: Destination::Upstream(domain.clone()),
                            next_attempt: now,
                            created: now,
                            portal: Some(PortalRef {
                                folder: inbox.id,
                                uid: message.uid,
                            }),
                        }));
                    }
                }
            }
            ops
        });
        if ops.is_empty() {
            return;
        }
        let (n, failed) = self.commit_ops(ops).await;
        if n > 0 {
            tracing::info!(messages = n, domains = ?normal, "drain: portal INBOX mail queued for the upstream");
        }
        if let Some(e) = failed {
            tracing::error!("drain scan failed: {e}");
        }
    }

    /// Commits `ops` (each standing alone, no message in them) in batches of at most
    /// [`OPS_PER_BATCH`], so that a large emergency's drain or move fits a record
    /// and, in a cluster, a frame; stops at the first batch that fails. The ops
    /// committed, and the error.
    async fn commit_ops(&self, ops: Vec<Op>) -> (usize, Option<lifeboat_store::Error>) {
        let mut committed = 0;
        let mut ops = ops.into_iter().peekable();
        while ops.peek().is_some() {
            let mut batch = Batch::new();
            for op in ops.by_ref().take(OPS_PER_BATCH) {
                batch.push(op);
            }
            let n = batch.len();
            if let Err(e) = self.relay.store().commit_async(batch).await {
                return (committed, Some(e));
            }
            committed += n;
        }
        (committed, None)
    }

    /// Runs the probes the router wants, each once at a time.
    fn start_probes(self: &Rc<Self>, probes: Vec<ProbeRequest>) {
        for request in probes {
            if !self.probing.borrow_mut().insert(request.upstream.clone()) {
                continue;
            }
            let worker = self.clone();
            tokio::task::spawn_local(async move {
                worker.relay.router().probe(&request).await;
                worker.probing.borrow_mut().remove(&request.upstream);
                worker.probed.notify_one();
            });
        }
    }
}
