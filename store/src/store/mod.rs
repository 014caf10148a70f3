//! The public store: opening and recovery, commits, reads and signals. The writer
//! thread and its group commit are in `writer`, checkpoints in `checkpoint`, archive
//! search and retention in `archive`, compaction in `compact`.
//!
//! Threads: one writer thread owns the end of the log. Callers on any thread encode
//! their batch, hand it to the writer and wait (blocking or as a future). The writer
//! takes every batch that is waiting, writes them with one `write` and one
//! `fdatasync`, applies them to the in-memory [`State`] and only then completes each
//! caller. Readers take a read lock on the state and map segment bytes.
//!
//! A failed write or fsync poisons the store: the page cache may now hold data the disk
//! does not, so nothing more is acknowledged until the store is reopened and the log
//! is verified again.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::address::Address;
use crate::io::{RealFs, Vfs};
use crate::latency::Histogram;
use crate::log::{self, Bytes, LogPos, ReplicaTag, Segment, Tail, RECORD_PAYLOAD_MAX};
use crate::model::*;
use crate::notify::Signal;
use crate::replica::{self, Replicator};
use crate::spill::MessageData;
use crate::state::{Ctx, OpError, State};
use crate::{Error, Result};

mod archive;
mod checkpoint;
mod compact;
mod outbox;
mod snapshot;
mod watch;
mod writer;

pub(crate) use archive::ArchiveFilter;
pub use archive::ArchiveQuery;
use checkpoint::{read_checkpoint, CHECKPOINT_TMP};
use outbox::Replication;
pub use watch::FolderWatch;
use watch::Watches;
use writer::{writer_loop, Msg, Replicated, Request};

/// Tuning knobs; the defaults suit production.
#[derive(Debug, Clone)]
pub struct Options {
    /// A segment is sealed once it holds this many bytes.
    pub segment_bytes_max: u64,
    /// A checkpoint is written after this many bytes of log since the last one.
    pub checkpoint_every_bytes: u64,
    /// Most bytes one group commit writes before it syncs.
    pub group_bytes_max: u64,
    /// How long frames of the cluster's log that other nodes published may stay
    /// written but not synced (zero: synced before they are applied, like the rest).
    pub replica_sync_delay: std::time::Duration,
    /// Bytes kept free on the file system: while less is free, a batch that adds a
    /// message is refused with [`Error::NoSpace`] (0: none kept). Everything else
    /// (flags, deletions, deliveries recorded) goes on, and so does the cluster's log.
    pub disk_free_min: u64,
}

impl Options {
    /// Bytes of zeros the next segment is made ready with: room for a full segment
    /// and the group that crosses its limit, mostly.
    fn ready_segment_len(&self) -> u64 {
        self.segment_bytes_max + self.segment_bytes_max / 8
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            segment_bytes_max: 64 << 20,
            checkpoint_every_bytes: 256 << 20,
            group_bytes_max: 32 << 20,
            replica_sync_delay: std::time::Duration::from_millis(100),
            disk_free_min: 0,
        }
    }
}

/// A set of ops committed atomically.
#[derive(Debug, Default)]
pub struct Batch {
    ops: Vec<Op>,
    blobs: Vec<MessageData>,
    bodies: u32,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds a message body; refer to it from later ops of this batch with the returned
    /// reference. A body no op of its batch refers to is discarded.
    pub fn put_body(&mut self, bytes: impl Into<MessageData>) -> BodyRef {
        let bytes = bytes.into();
        self.ops.push(Op::PutBody { len: bytes.len() });
        self.blobs.push(bytes);
        self.bodies += 1;
        BodyRef::New(self.bodies - 1)
    }

    /// Adds an op. Use [`Batch::put_body`] for bodies.
    pub fn push(&mut self, op: Op) {
        assert!(
            !matches!(op, Op::PutBody { .. } | Op::RelocateBody { .. }),
            "bodies are added with put_body"
        );
        self.ops.push(op);
    }

    fn relocate(&mut self, id: BodyId, bytes: Vec<u8>) {
        self.ops.push(Op::RelocateBody {
            id,
            len: bytes.len() as u64,
        });
        self.blobs.push(bytes.into());
    }

    /// Number of ops.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there are no ops.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(MessageData::len).sum()
    }
}

/// Counters and sizes.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Batches committed since open.
    pub batches: u64,
    /// Group commits (one fdatasync each) since open.
    pub groups: u64,
    /// Bytes written to the log since open.
    pub bytes_written: u64,
    /// Segment files.
    pub segments: usize,
    /// Bytes in segment files.
    pub log_bytes: u64,
    /// Bytes of live bodies.
    pub live_body_bytes: u64,
    /// Records replayed at open.
    pub replayed_at_open: u64,
    /// Torn tail bytes truncated at open.
    pub truncated_at_open: u64,
}

/// A one-shot result slot that a thread can block on or a task can await.
struct Completion<T> {
    slot: Mutex<Slot<T>>,
    condvar: Condvar,
    created: Instant,
}

struct Slot<T> {
    /// The value, and when it was given.
    value: Option<(T, Instant)>,
    waker: Option<Waker>,
}

impl<T> Completion<T> {
    fn new() -> Arc<Completion<T>> {
        Arc::new(Completion {
            slot: Mutex::new(Slot {
                value: None,
                waker: None,
            }),
            condvar: Condvar::new(),
            created: Instant::now(),
        })
    }

    fn complete(&self, value: T) {
        let waker = {
            let mut slot = self.slot.lock();
            slot.value = Some((value, Instant::now()));
            slot.waker.take()
        };
        self.condvar.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn wait(&self) -> T {
        self.wait_timed().0
    }

    /// The value, and when it was given.
    fn wait_timed(&self) -> (T, Instant) {
        let mut slot = self.slot.lock();
        loop {
            if let Some(given) = slot.value.take() {
                return given;
            }
            self.condvar.wait(&mut slot);
        }
    }
}

/// How long commits take, stage by stage ([`Store::latency`]).
#[derive(Debug, Default)]
pub struct CommitLatency {
    /// From a commit's submission to the writer taking it into a group.
    pub queue: Histogram,
    /// A group's write and sync, one per group.
    pub sync: Histogram,
    /// A group's apply to the state, the wait for the state's lock included; one per
    /// group.
    pub apply: Histogram,
    /// From the writer completing a commit to its caller taking the result (for a
    /// task, the wait for its thread to run it).
    pub wake: Histogram,
    /// From a commit's submission to its caller taking the result.
    pub total: Histogram,
    /// Cluster mode: from a frame handed to the replicator to its acknowledgement
    /// (stored by a majority), one per frame.
    pub publish: Histogram,
    /// Cluster mode: from a commit's submission to its frame coming back from the
    /// cluster's log to this node's writer.
    pub round_trip: Histogram,
}

impl CommitLatency {
    fn taken(&self, submitted: Instant, completed: Instant) {
        let now = Instant::now();
        self.wake.record(now.saturating_duration_since(completed));
        self.total.record(now.saturating_duration_since(submitted));
    }
}

type CommitResult = Result<Vec<Result<OpResult, OpError>>>;

/// Resolves when a frame of the cluster's log is applied (or failed).
pub struct ApplyFuture(CommitFuture);

impl Future for ApplyFuture {
    type Output = Result<()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut self.0).poll(cx).map(|r| r.map(|_| ()))
    }
}

impl ApplyFuture {
    /// Blocks until applied.
    pub fn wait(self) -> Result<()> {
        match (self.0.early, self.0.done) {
            (Some(result), _) => result.map(|_| ()),
            (None, Some(done)) => done.wait().map(|_| ()),
            (None, None) => Ok(()),
        }
    }
}

/// The writer's request for `frame`, at `seq` in the cluster's log.
fn frame_request(seq: u64, frame: replica::Frame, done: Arc<Completion<CommitResult>>) -> Request {
    Request {
        ops: frame.ops,
        ops_bytes: frame.ops_bytes,
        blobs: frame.blobs.into_iter().map(MessageData::from).collect(),
        done,
        replica: Some(Replicated {
            tag: ReplicaTag {
                stream_seq: seq,
                origin: frame.origin,
                nonce: frame.nonce,
            },
            time: frame.time,
        }),
    }
}

/// Resolves when a batch is durable (or failed).
pub struct CommitFuture {
    done: Option<Arc<Completion<CommitResult>>>,
    early: Option<CommitResult>,
    /// Where the commit's wait is counted (not for frames of the cluster's log).
    latency: Option<Arc<CommitLatency>>,
}

impl Future for CommitFuture {
    type Output = CommitResult;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CommitResult> {
        if let Some(result) = self.early.take() {
            return Poll::Ready(result);
        }
        let done = self.done.as_ref().expect("polled after completion").clone();
        let mut slot = done.slot.lock();
        if let Some((value, completed)) = slot.value.take() {
            drop(slot);
            self.done = None;
            if let Some(latency) = &self.latency {
                latency.taken(done.created, completed);
            }
            return Poll::Ready(value);
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

struct Shared {
    fs: Arc<dyn Vfs>,
    options: Options,
    state: RwLock<State>,
    segments: RwLock<BTreeMap<u64, Arc<Segment>>>,
    /// The segment the writer appends to; never compacted.
    active_segment: AtomicU64,
    poisoned: Mutex<Option<String>>,
    account_signals: Mutex<HashMap<String, Arc<Signal>>>,
    queue_signal: Arc<Signal>,
    directory_signal: Arc<Signal>,
    /// How far each session showing a folder has caught up (`watch.rs`).
    watches: Arc<Watches>,
    batches: AtomicU64,
    groups: AtomicU64,
    bytes_written: AtomicU64,
    replayed_at_open: u64,
    truncated_at_open: u64,
    /// Cluster mode: where commits go (see `replica.rs`); `None` for a single node.
    replication: RwLock<Option<Arc<Replication>>>,
    /// The last sequence of the cluster's log applied (0: none yet).
    applied_seq: AtomicU64,
    /// The last sequence of the cluster's log given to the writer, which applies frames
    /// in the order it gets them: a frame is given once, and only right after the one
    /// before it, whether it comes through the log or from its publisher.
    handed_seq: Mutex<u64>,
    /// Held by compaction, and by a snapshot while it reads bodies where the state
    /// says they are.
    compaction: Mutex<()>,
    latency: Arc<CommitLatency>,
    free_space: FreeSpace,
    /// When the store was opened (the clock of [`FreeSpace`]).
    opened: Instant,
}

/// How long the free space read from the file system is used; in between, what the
/// store wrote since counts against it.
const FREE_SPACE_READ_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The free space last read from the file system. Atomics, not a lock: every SMTP
/// session asks for it on every read; a race between two readers costs at most a
/// second read of the file system or a figure a few writes old.
struct FreeSpace {
    /// When it was read, in milliseconds since the store opened (`u64::MAX`: never).
    read_ms: AtomicU64,
    /// The bytes free then.
    free: AtomicU64,
    /// Whether `free` holds a figure (false before the first read, and while the
    /// file system does not answer).
    known: std::sync::atomic::AtomicBool,
    /// The store's bytes written then.
    written: AtomicU64,
    /// Whether a failure to read it was logged (once).
    unreadable_logged: std::sync::atomic::AtomicBool,
}

impl Default for FreeSpace {
    fn default() -> FreeSpace {
        FreeSpace {
            read_ms: AtomicU64::new(u64::MAX),
            free: AtomicU64::new(0),
            known: Default::default(),
            written: AtomicU64::new(0),
            unreadable_logged: Default::default(),
        }
    }
}

struct Inner {
    shared: Arc<Shared>,
    tx: Option<Sender<Msg>>,
    writer: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer after it has drained and checkpointed.
        self.tx.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The mail store. Cheap to clone; every clone is the same store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store in directory `dir`.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Store> {
        let dir = dir.as_ref();
        let fs = RealFs::new(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        Store::open_with(Arc::new(fs), options)
    }

    /// Opens (or creates) the store on any file system.
    pub fn open_with(fs: Arc<dyn Vfs>, options: Options) -> Result<Store> {
        // An interrupted checkpoint; the previous one (if any) is intact.
        crate::io::remove_leftover(&*fs, CHECKPOINT_TMP)?;
        let checkpoint = read_checkpoint(&*fs)?;
        let (start, mut state, mut applied_seq) = match checkpoint {
            Some((pos, state, applied_seq)) => (Some(pos), state, applied_seq),
            None => (None, State::default(), 0),
        };
        let mut last_seq = start.map_or(0, |pos| pos.next_seq.saturating_sub(1));
        let recovered = log::recover(&*fs, start, |replay| {
            debug_assert!(replay.seq > last_seq, "records replayed in sequence order");
            last_seq = replay.seq;
            state.apply(Ctx { time: replay.time }, &replay.ops, &replay.locs);
            if let Some(tag) = replay.replica {
                applied_seq = tag.stream_seq;
            }
            Ok(())
        })?;
        // No session watches a folder yet: nothing expunged needs keeping.
        state.retained.prune(|_| None);
        for (id, body) in state.bodies() {
            if !recovered.segments.contains_key(&body.loc.segment) {
                return Err(Error::Corrupt {
                    file: fs.describe(&log::segment_name(body.loc.segment)),
                    offset: body.loc.offset,
                    reason: format!("segment holding body {id} is missing"),
                });
            }
        }
        let mut segments = recovered.segments;
        let ready_len = options.ready_segment_len();
        let mut tail = match segments.get(&recovered.tail.segment) {
            None => {
                let segment = log::create_segment(&*fs, 1)?;
                segments.insert(1, segment.clone());
                let pos = LogPos {
                    segment: 1,
                    offset: log::SEGMENT_HEADER_LEN,
                    next_seq: recovered.tail.next_seq,
                };
                Tail::new(segment, pos, ready_len)
            }
            Some(segment) => Tail::new(segment.clone(), recovered.tail, ready_len),
        };
        // A new segment for records of this version after a log of an older one.
        if tail.pos.offset == 0 || log::segment_version(&tail.segment) < Some(crate::FORMAT_VERSION)
        {
            let segment = tail.roll(&*fs, now())?;
            segments.insert(segment.id, segment);
        }
        tracing::info!(
            segments = segments.len(),
            replayed = recovered.replayed,
            truncated = recovered.truncated,
            "store opened"
        );
        let shared = Arc::new(Shared {
            fs,
            options,
            state: RwLock::new(state),
            segments: RwLock::new(segments),
            active_segment: AtomicU64::new(tail.segment.id),
            poisoned: Mutex::new(None),
            account_signals: Mutex::new(HashMap::new()),
            queue_signal: Arc::new(Signal::default()),
            directory_signal: Arc::new(Signal::default()),
            watches: Arc::new(Watches::default()),
            batches: AtomicU64::new(0),
            groups: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            replayed_at_open: recovered.replayed,
            truncated_at_open: recovered.truncated,
            replication: RwLock::new(None),
            applied_seq: AtomicU64::new(applied_seq),
            handed_seq: Mutex::new(applied_seq),
            compaction: Mutex::new(()),
            latency: Arc::default(),
            free_space: FreeSpace::default(),
            opened: Instant::now(),
        });
        let (tx, rx) = crossbeam_channel::unbounded();
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(writer_shared, rx, tail))
            .map_err(Error::io("starting the store writer thread"))?;
        Ok(Store {
            inner: Arc::new(Inner {
                shared,
                tx: Some(tx),
                writer: Some(writer),
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Why the store refuses writes, if a write or fsync failed (see [`Error::Poisoned`]).
    pub fn poisoned(&self) -> Option<String> {
        self.shared().poisoned.lock().clone()
    }

    fn check_poisoned(&self) -> Result<()> {
        match &*self.shared().poisoned.lock() {
            Some(why) => Err(Error::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    /// Bytes free on the file system beyond what the store keeps in reserve
    /// ([`Options::disk_free_min`]); `None` when it keeps none, or when the free space
    /// cannot be read (logged once). Read at most once a second; in between, what the
    /// store wrote since counts against it.
    pub fn space_left(&self) -> Option<u64> {
        let shared = self.shared();
        let reserve = shared.options.disk_free_min;
        if reserve == 0 {
            return None;
        }
        let space = &shared.free_space;
        let written = shared.bytes_written.load(Ordering::Relaxed);
        let now_ms = shared.opened.elapsed().as_millis() as u64;
        let read_ms = space.read_ms.load(Ordering::Acquire);
        let stale = read_ms == u64::MAX
            || now_ms.saturating_sub(read_ms) >= FREE_SPACE_READ_EVERY.as_millis() as u64;
        // One caller reads the file system again; the others use the last figure.
        if stale
            && space
                .read_ms
                .compare_exchange(read_ms, now_ms, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            match shared.fs.free_bytes() {
                Ok(free) => {
                    space.written.store(written, Ordering::Relaxed);
                    let before = space.free.swap(free, Ordering::AcqRel);
                    let was_low = space.known.swap(true, Ordering::AcqRel) && before < reserve;
                    if free < reserve && !was_low {
                        tracing::warn!(
                            free,
                            reserve,
                            "less disk space free than limits.disk_free_min on {}: new messages are refused until there is room",
                            shared.fs.describe("")
                        );
                    } else if was_low && free >= reserve {
                        tracing::info!(free, "disk space free again: new messages are accepted");
                    }
                }
                Err(e) => {
                    space.known.store(false, Ordering::Release);
                    if !space.unreadable_logged.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "cannot read the free disk space of {} ({e}): the disk reserve is not enforced",
                            shared.fs.describe("")
                        );
                    }
                }
            }
        }
        if !space.known.load(Ordering::Acquire) {
            return None;
        }
        let free = space.free.load(Ordering::Acquire);
        let since = written.saturating_sub(space.written.load(Ordering::Relaxed));
        Some(free.saturating_sub(since).saturating_sub(reserve))
    }

    /// [`Error::NoSpace`] when a batch adding `bytes` of messages would cut into the
    /// disk reserve.
    fn check_space(&self, bytes: u64) -> Result<()> {
        match self.space_left() {
            Some(left) if left < bytes => Err(Error::NoSpace(format!(
                "{} MiB free, and {} MiB are kept free",
                (left + self.shared().options.disk_free_min) >> 20,
                self.shared().options.disk_free_min >> 20
            ))),
            _ => Ok(()),
        }
    }

    fn submit(&self, batch: Batch) -> std::result::Result<Arc<Completion<CommitResult>>, Error> {
        self.check_poisoned()?;
        if batch.is_empty() {
            return Err(Error::Invalid("empty batch".into()));
        }
        let ops_bytes = log::encode_ops(&batch.ops)?;
        if ops_bytes.len() as u64 + batch.blob_bytes() > RECORD_PAYLOAD_MAX {
            return Err(Error::Invalid(format!(
                "batch of {} bytes is larger than the {RECORD_PAYLOAD_MAX}-byte limit",
                ops_bytes.len() as u64 + batch.blob_bytes()
            )));
        }
        let done = Completion::new();
        // Relocations (compaction) move bytes within this node's own log: they are
        // never replicated. Everything else is, in cluster mode.
        let local = batch
            .ops
            .iter()
            .all(|op| matches!(op, Op::RelocateBody { .. }));
        // Compaction's copies make room in the end; everything else that adds a
        // message keeps out of the reserve.
        if !local && !batch.blobs.is_empty() {
            self.check_space(batch.blob_bytes())?;
        }
        let replication = self.shared().replication.read().clone();
        if let (Some(replication), false) = (replication, local) {
            // A frame is one NATS message: a spilled body is read into it.
            let blobs = batch
                .blobs
                .into_iter()
                .map(MessageData::into_vec)
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(Error::io("reading a spilled message"))?;
            replication.send(batch.ops, ops_bytes.len(), blobs, done.clone());
            return Ok(done);
        }
        let request = Request {
            ops: batch.ops,
            ops_bytes,
            blobs: batch.blobs,
            done: done.clone(),
            replica: None,
        };
        self.send(Msg::Commit(request))?;
        Ok(done)
    }

    fn send(&self, msg: Msg) -> Result<()> {
        self.inner
            .tx
            .as_ref()
            .ok_or(Error::Closed)?
            .send(msg)
            .map_err(|_| Error::Closed)
    }

    /// Cluster mode from now on: commits go through `replicator` and are answered when
    /// their frame comes back through [`Store::apply_replicated`].
    pub fn replicate_through(&self, replicator: Arc<dyn Replicator>) {
        *self.shared().replication.write() = Some(Arc::new(Replication::new(
            replicator,
            self.shared().latency.clone(),
            Arc::downgrade(&self.inner),
        )));
    }

    /// The last sequence of the cluster's log applied to this store (0: none).
    pub fn applied_seq(&self) -> u64 {
        self.shared().applied_seq.load(Ordering::Acquire)
    }

    /// Writes, syncs and applies frame `frame` of the cluster's log, at sequence
    /// `seq`; frames must come in sequence order. The future resolves once it is
    /// applied (a frame given to the writer already resolves at once, skipped).
    /// Submit many before awaiting: the writer syncs them together. A frame this store
    /// published may have been given to it already, when the log acknowledged it.
    pub fn apply_replicated(&self, seq: u64, frame: &[u8]) -> ApplyFuture {
        let mut handed = self.shared().handed_seq.lock();
        if seq <= *handed {
            return ApplyFuture(CommitFuture {
                done: None,
                early: Some(Ok(Vec::new())),
                latency: None,
            });
        }
        let done = Completion::new();
        let result = replica::decode_frame(frame).and_then(|frame| {
            self.check_poisoned()?;
            self.send(Msg::Commit(frame_request(seq, frame, done.clone())))
        });
        if result.is_ok() {
            *handed = seq;
        }
        ApplyFuture(match result {
            Ok(()) => CommitFuture {
                done: Some(done),
                early: None,
                latency: None,
            },
            Err(e) => CommitFuture {
                done: None,
                early: Some(Err(e)),
                latency: None,
            },
        })
    }

    /// Gives the writer a frame this store published, as the log acknowledged it at
    /// `seq`, without waiting for it to come back through the log: only if every frame
    /// before it was given already (else it comes through the log, after them).
    fn hand_published(&self, seq: u64, frame: replica::Frame) {
        let mut handed = self.shared().handed_seq.lock();
        if seq != *handed + 1 || self.check_poisoned().is_err() {
            return;
        }
        let request = frame_request(seq, frame, Completion::new());
        if self.send(Msg::Commit(request)).is_ok() {
            *handed = seq;
        }
    }

    /// Commits a batch and blocks until it is durable. The results say, per op, what
    /// was assigned or why the op was not applied.
    pub fn commit(&self, batch: Batch) -> CommitResult {
        let done = self.submit(batch)?;
        let (result, completed) = done.wait_timed();
        self.shared().latency.taken(done.created, completed);
        result
    }

    /// Commits a batch without blocking the calling thread: the future resolves once
    /// the batch is durable. Works in any executor.
    pub fn commit_async(&self, batch: Batch) -> CommitFuture {
        match self.submit(batch) {
            Ok(done) => CommitFuture {
                done: Some(done),
                early: None,
                latency: Some(self.shared().latency.clone()),
            },
            Err(e) => CommitFuture {
                done: None,
                early: Some(Err(e)),
                latency: None,
            },
        }
    }

    /// Writes a checkpoint now and waits for it to be durable.
    pub fn checkpoint(&self) -> Result<()> {
        self.check_poisoned()?;
        let done = Completion::new();
        self.inner
            .tx
            .as_ref()
            .ok_or(Error::Closed)?
            .send(Msg::Checkpoint(done.clone()))
            .map_err(|_| Error::Closed)?;
        done.wait()
    }

    /// Runs `f` over the indexes under a read lock. Keep it short: the writer waits
    /// for readers before it applies the next group.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.shared().state.read())
    }

    /// The bytes of a body, straight from the segment's memory map.
    pub fn body(&self, id: BodyId) -> Result<Bytes> {
        // Both locks are held while the segment is looked up, so compaction (which
        // removes a segment under both write locks) cannot slip in between.
        let state = self.shared().state.read();
        let loc = state
            .body(id)
            .ok_or_else(|| Error::Invalid(format!("no body {id}")))?
            .loc;
        let segment = self
            .shared()
            .segments
            .read()
            .get(&loc.segment)
            .cloned()
            .ok_or_else(|| {
                Error::Invalid(format!("segment {} of body {id} is gone", loc.segment))
            })?;
        drop(state);
        segment.read(loc).map_err(Error::io(format!(
            "reading body {id} from segment {}",
            loc.segment
        )))
    }

    /// The bytes at `loc`: a body the index no longer names, such as a retained
    /// message's ([`State::retained`]), while its segment is there.
    pub fn read_at(&self, loc: Loc) -> Result<Bytes> {
        let segment = self
            .shared()
            .segments
            .read()
            .get(&loc.segment)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("segment {} is gone", loc.segment)))?;
        segment.read(loc).map_err(Error::io(format!(
            "reading {} bytes at {} of segment {}",
            loc.len, loc.offset, loc.segment
        )))
    }

    /// The signal that moves whenever an account's folders change.
    pub fn account_signal(&self, address: &str) -> Arc<Signal> {
        let key = Address::try_from(address)
            .map(String::from)
            .unwrap_or_else(|_| address.to_string());
        self.shared()
            .account_signals
            .lock()
            .entry(key)
            .or_default()
            .clone()
    }

    /// The signal that moves whenever the queue changes.
    pub fn queue_signal(&self) -> Arc<Signal> {
        self.shared().queue_signal.clone()
    }

    /// The signal that moves whenever domains or accounts change.
    pub fn directory_signal(&self) -> Arc<Signal> {
        self.shared().directory_signal.clone()
    }

    /// Counters and sizes.
    pub fn stats(&self) -> Stats {
        let shared = self.shared();
        let (log_bytes, segments) = {
            let segments = shared.segments.read();
            let bytes = segments
                .values()
                .map(|s| s.current().map(|m| (*m).as_ref().len() as u64).unwrap_or(0))
                .sum();
            (bytes, segments.len())
        };
        let live_body_bytes = self.read(|s| s.bodies().map(|(_, b)| b.loc.len).sum());
        Stats {
            batches: shared.batches.load(Ordering::Relaxed),
            groups: shared.groups.load(Ordering::Relaxed),
            bytes_written: shared.bytes_written.load(Ordering::Relaxed),
            segments,
            log_bytes,
            live_body_bytes,
            replayed_at_open: shared.replayed_at_open,
            truncated_at_open: shared.truncated_at_open,
        }
    }

    /// How long commits have taken since open, stage by stage.
    pub fn latency(&self) -> &CommitLatency {
        &self.shared().latency
    }

    /// Verifies every record of every segment (a full scan, independent of
    /// checkpoints). Returns the number of records checked.
    pub fn verify(&self) -> Result<u64> {
        let segments: Vec<Arc<Segment>> = self.shared().segments.read().values().cloned().collect();
        let mut checked = 0;
        for segment in segments {
            let map = segment
                .current()
                .map_err(Error::io(format!("mapping segment {}", segment.id)))?;
            let bytes = (*map).as_ref();
            let mut offset = log::SEGMENT_HEADER_LEN;
            while offset < bytes.len() as u64 && !log::unused_from(bytes, offset) {
                let record =
                    log::decode_record(bytes, offset).map_err(|reason| Error::Corrupt {
                        file: self.shared().fs.describe(&log::segment_name(segment.id)),
                        offset,
                        reason: reason.to_string(),
                    })?;
                offset = record.end;
                checked += 1;
            }
        }
        Ok(checked)
    }
}
