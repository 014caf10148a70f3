//! The public store: opening and recovery, group commit, reads, checkpoints,
//! retention and compaction.
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::io::{RealFs, Vfs};
use crate::log::{self, Bytes, Kind, LogPos, Segment, Tail, RECORD_HEADER_LEN, RECORD_PAYLOAD_MAX};
use crate::model::*;
use crate::notify::Signal;
use crate::state::{Ctx, State};
use crate::text::{archive_text, TextQuery};
use crate::{Error, Result};

const CHECKPOINT_NAME: &str = "checkpoint";
const CHECKPOINT_TMP: &str = "checkpoint.tmp";
const CHECKPOINT_MAGIC: &[u8; 8] = b"LBCKPT01";
const CHECKPOINT_HEADER_LEN: usize = 20;
/// Bytes of relocated bodies per compaction batch.
const COMPACT_BATCH_BYTES_MAX: u64 = 16 << 20;
/// Archive entries removed per retention batch.
const EXPIRE_BATCH_MAX: usize = 10_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// Tuning knobs; the defaults suit production.
#[derive(Debug, Clone)]
pub struct Options {
    /// A segment is sealed once it holds this many bytes.
    pub segment_bytes_max: u64,
    /// A checkpoint is written after this many bytes of log since the last one.
    pub checkpoint_every_bytes: u64,
    /// Most bytes one group commit writes before it syncs.
    pub group_bytes_max: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            segment_bytes_max: 64 << 20,
            checkpoint_every_bytes: 256 << 20,
            group_bytes_max: 32 << 20,
        }
    }
}

/// A set of ops committed atomically.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    ops: Vec<Op>,
    blobs: Vec<Vec<u8>>,
    bodies: u32,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds a message body; refer to it from later ops of this batch with the returned
    /// reference. A body no op of its batch refers to is discarded.
    pub fn put_body(&mut self, bytes: Vec<u8>) -> BodyRef {
        self.ops.push(Op::PutBody {
            len: bytes.len() as u64,
        });
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
        self.blobs.push(bytes);
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
        self.blobs.iter().map(|b| b.len() as u64).sum()
    }
}

/// An archive search. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct ArchiveQuery {
    /// Substring of the From header or envelope sender (case-insensitive).
    pub from: Option<String>,
    /// Substring of To/Cc or an envelope recipient (case-insensitive).
    pub to: Option<String>,
    /// Substring of the subject (case-insensitive).
    pub subject: Option<String>,
    /// Words of the message's text: headers and decoded body (see [`crate::text`]).
    pub text: Option<String>,
    /// Accepted at or after.
    pub since: Option<UnixTime>,
    /// Accepted before.
    pub until: Option<UnixTime>,
    /// Direction.
    pub direction: Option<Direction>,
    /// Only mail this address sent or received (envelope); how users search.
    pub participant: Option<String>,
    /// Only mail of these domains (envelope); how domain admins search.
    pub domains: Option<Vec<String>>,
    /// Most results (newest first); 0 means 100.
    pub limit: usize,
}

impl ArchiveQuery {
    /// The most results it asks for (100 when `limit` is 0).
    pub fn limit_or_default(&self) -> usize {
        if self.limit == 0 {
            100
        } else {
            self.limit
        }
    }
}

/// An [`ArchiveQuery`]'s conditions other than `text`, ready to test entries.
pub(crate) struct ArchiveFilter<'q> {
    query: &'q ArchiveQuery,
    from: Option<String>,
    to: Option<String>,
    subject: Option<String>,
    participant: Option<String>,
}

impl<'q> ArchiveFilter<'q> {
    pub(crate) fn new(query: &'q ArchiveQuery) -> ArchiveFilter<'q> {
        let lower = |s: &Option<String>| s.as_ref().map(|s| s.to_lowercase());
        ArchiveFilter {
            query,
            from: lower(&query.from),
            to: lower(&query.to),
            subject: lower(&query.subject),
            participant: lower(&query.participant),
        }
    }

    pub(crate) fn matches(&self, e: &ArchiveEntry) -> bool {
        let q = self.query;
        let contains = |hay: &str, needle: &str| hay.to_lowercase().contains(needle);
        q.direction.is_none_or(|d| e.direction == d)
            && q.since.is_none_or(|t| e.date >= t)
            && q.until.is_none_or(|t| e.date < t)
            && self
                .from
                .as_deref()
                .is_none_or(|f| contains(&e.headers.from, f) || contains(&e.mail_from, f))
            && self.to.as_deref().is_none_or(|t| {
                contains(&e.headers.to, t)
                    || contains(&e.headers.cc, t)
                    || e.rcpt_to.iter().any(|r| contains(r, t))
            })
            && self
                .subject
                .as_deref()
                .is_none_or(|s| contains(&e.headers.subject, s))
            && self.participant.as_deref().is_none_or(|p| {
                e.mail_from.to_lowercase() == p || e.rcpt_to.iter().any(|r| r.to_lowercase() == p)
            })
            && q.domains.as_ref().is_none_or(|domains| {
                std::iter::once(&e.mail_from)
                    .chain(e.rcpt_to.iter())
                    .any(|a| {
                        domains
                            .iter()
                            .any(|d| crate::address_domain(a).eq_ignore_ascii_case(d))
                    })
            })
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
    slot: Mutex<(Option<T>, Option<Waker>)>,
    condvar: Condvar,
}

impl<T> Completion<T> {
    fn new() -> Arc<Completion<T>> {
        Arc::new(Completion {
            slot: Mutex::new((None, None)),
            condvar: Condvar::new(),
        })
    }

    fn complete(&self, value: T) {
        let waker = {
            let mut slot = self.slot.lock();
            slot.0 = Some(value);
            slot.1.take()
        };
        self.condvar.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn wait(&self) -> T {
        let mut slot = self.slot.lock();
        loop {
            if let Some(value) = slot.0.take() {
                return value;
            }
            self.condvar.wait(&mut slot);
        }
    }
}

type CommitResult = Result<Vec<OpResult>>;

/// Resolves when a batch is durable (or failed).
pub struct CommitFuture {
    done: Option<Arc<Completion<CommitResult>>>,
    early: Option<CommitResult>,
}

impl Future for CommitFuture {
    type Output = CommitResult;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CommitResult> {
        if let Some(result) = self.early.take() {
            return Poll::Ready(result);
        }
        let done = self.done.as_ref().expect("polled after completion").clone();
        let mut slot = done.slot.lock();
        if let Some(value) = slot.0.take() {
            drop(slot);
            self.done = None;
            return Poll::Ready(value);
        }
        slot.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

struct Request {
    ops: Vec<Op>,
    ops_bytes: Vec<u8>,
    blobs: Vec<Vec<u8>>,
    done: Arc<Completion<CommitResult>>,
}

impl Request {
    fn payload_len(&self) -> u64 {
        self.ops_bytes.len() as u64 + self.blobs.iter().map(|b| b.len() as u64).sum::<u64>()
    }
}

enum Msg {
    Commit(Request),
    Checkpoint(Arc<Completion<Result<()>>>),
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
    batches: AtomicU64,
    groups: AtomicU64,
    bytes_written: AtomicU64,
    replayed_at_open: u64,
    truncated_at_open: u64,
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

fn read_checkpoint(fs: &dyn Vfs) -> Result<Option<(LogPos, State)>> {
    if !fs
        .list()
        .map_err(Error::io("listing the store directory"))?
        .iter()
        .any(|n| n == CHECKPOINT_NAME)
    {
        return Ok(None);
    }
    let corrupt = |offset: u64, reason: &str| Error::Corrupt {
        file: fs.describe(CHECKPOINT_NAME),
        offset,
        reason: reason.to_string(),
    };
    let file = fs.open(CHECKPOINT_NAME, false).map_err(Error::io(format!(
        "opening {}",
        fs.describe(CHECKPOINT_NAME)
    )))?;
    let map = file.map().map_err(Error::io(format!(
        "reading {}",
        fs.describe(CHECKPOINT_NAME)
    )))?;
    let bytes = (*map).as_ref();
    if bytes.len() < CHECKPOINT_HEADER_LEN || &bytes[0..8] != CHECKPOINT_MAGIC {
        return Err(corrupt(0, "not a checkpoint file"));
    }
    let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes")) as usize;
    let body = bytes
        .get(CHECKPOINT_HEADER_LEN..CHECKPOINT_HEADER_LEN + len)
        .ok_or_else(|| corrupt(CHECKPOINT_HEADER_LEN as u64, "checkpoint is cut short"))?;
    if crc32c::crc32c(body) != crc {
        return Err(corrupt(
            CHECKPOINT_HEADER_LEN as u64,
            "checkpoint checksum mismatch",
        ));
    }
    let ((pos, mut state), journal): ((LogPos, State), &[u8]) = postcard::take_from_bytes(body)
        .map_err(|e| corrupt(CHECKPOINT_HEADER_LEN as u64, &e.to_string()))?;
    // The journal follows the state; a checkpoint written before it existed ends here.
    if !journal.is_empty() {
        let offset = (CHECKPOINT_HEADER_LEN + body.len() - journal.len()) as u64;
        state.journal =
            postcard::from_bytes(journal).map_err(|e| corrupt(offset, &e.to_string()))?;
    }
    state.rebuild_derived();
    Ok(Some((pos, state)))
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
        let names = fs
            .list()
            .map_err(Error::io("listing the store directory"))?;
        if names.iter().any(|n| n == CHECKPOINT_TMP) {
            // An interrupted checkpoint; the previous one (if any) is intact.
            fs.remove(CHECKPOINT_TMP).map_err(Error::io(format!(
                "removing {}",
                fs.describe(CHECKPOINT_TMP)
            )))?;
        }
        let checkpoint = read_checkpoint(&*fs)?;
        let (start, mut state) = match checkpoint {
            Some((pos, state)) => (Some(pos), state),
            None => (None, State::default()),
        };
        let recovered = log::recover(&*fs, start, |_seq, time, ops, locs| {
            state.apply(Ctx { time }, &ops, &locs);
            Ok(())
        })?;
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
        let mut tail = match segments.get(&recovered.tail.segment) {
            None => {
                let segment = log::create_segment(&*fs, 1)?;
                segments.insert(1, segment.clone());
                Tail {
                    segment,
                    pos: LogPos {
                        segment: 1,
                        offset: log::SEGMENT_HEADER_LEN,
                        next_seq: recovered.tail.next_seq,
                    },
                }
            }
            Some(segment) => Tail {
                segment: segment.clone(),
                pos: recovered.tail,
            },
        };
        if tail.pos.offset == 0 {
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
            batches: AtomicU64::new(0),
            groups: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            replayed_at_open: recovered.replayed,
            truncated_at_open: recovered.truncated,
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
        let request = Request {
            ops: batch.ops,
            ops_bytes,
            blobs: batch.blobs,
            done: done.clone(),
        };
        self.inner
            .tx
            .as_ref()
            .ok_or(Error::Closed)?
            .send(Msg::Commit(request))
            .map_err(|_| Error::Closed)?;
        Ok(done)
    }

    /// Commits a batch and blocks until it is durable. The results say, per op, what
    /// was assigned or why the op was not applied.
    pub fn commit(&self, batch: Batch) -> Result<Vec<OpResult>> {
        self.submit(batch)?.wait()
    }

    /// Commits a batch without blocking the calling thread: the future resolves once
    /// the batch is durable. Works in any executor.
    pub fn commit_async(&self, batch: Batch) -> CommitFuture {
        match self.submit(batch) {
            Ok(done) => CommitFuture {
                done: Some(done),
                early: None,
            },
            Err(e) => CommitFuture {
                done: None,
                early: Some(Err(e)),
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

    /// The signal that moves whenever an account's folders change.
    pub fn account_signal(&self, address: &str) -> Arc<Signal> {
        let key = crate::normalize_address(address).unwrap_or_else(|| address.to_string());
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

    /// Archive entries matching `query`, newest first, by a scan of the archive (an
    /// [`crate::ArchiveIndex`] answers text searches faster). `query.text` matches as
    /// [`crate::text`] defines.
    pub fn archive_search(&self, query: &ArchiveQuery) -> Vec<ArchiveEntry> {
        let words = query.text.as_deref().and_then(TextQuery::new);
        self.scan_archive(query, words.as_ref(), 0)
    }

    /// [`Store::archive_search`] over the entries with an id above `above`, with the
    /// query's words already split.
    pub(crate) fn scan_archive(
        &self,
        query: &ArchiveQuery,
        words: Option<&TextQuery>,
        above: u64,
    ) -> Vec<ArchiveEntry> {
        let limit = query.limit_or_default();
        let filter = ArchiveFilter::new(query);
        let Some(words) = words else {
            return self.read(|state| {
                state
                    .archive_above(ArchiveId(above))
                    .rev()
                    .filter(|e| filter.matches(e))
                    .take(limit)
                    .cloned()
                    .collect()
            });
        };
        // Only ids under the lock; each body is read and parsed outside it.
        let candidates: Vec<(ArchiveId, BodyId)> = self.read(|state| {
            state
                .archive_above(ArchiveId(above))
                .rev()
                .filter(|e| filter.matches(e))
                .map(|e| (e.id, e.body))
                .collect()
        });
        let mut analyzer = crate::text::analyzer();
        let mut hits = Vec::new();
        for (id, body) in candidates {
            let Ok(raw) = self.body(body) else {
                continue; // removed by retention meanwhile
            };
            let Some(entry) = self.read(|s| s.archive_entry(id).cloned()) else {
                continue;
            };
            if words.matches(&mut analyzer, &archive_text(&entry, &raw)) {
                hits.push(entry);
                if hits.len() >= limit {
                    break;
                }
            }
        }
        hits
    }

    /// Removes archive entries older than `retention_days` before `now`; returns how
    /// many. Their bodies become garbage once nothing else refers to them.
    pub fn expire_archive(&self, now: UnixTime, retention_days: u32) -> Result<usize> {
        let cutoff = now - retention_days as i64 * SECONDS_PER_DAY;
        let expired: Vec<ArchiveId> = self.read(|s| {
            s.archive()
                .filter(|e| e.date < cutoff)
                .map(|e| e.id)
                .collect()
        });
        for chunk in expired.chunks(EXPIRE_BATCH_MAX) {
            let mut batch = Batch::new();
            batch.push(Op::Unarchive(chunk.to_vec()));
            self.commit(batch)?;
        }
        if !expired.is_empty() {
            tracing::info!(removed = expired.len(), retention_days, "archive retention");
        }
        Ok(expired.len())
    }

    /// Removes audit entries and mode transitions older than `retention_days` before
    /// `now` (SPEC §11: the audit log is kept as long as the archive); returns how many.
    pub fn expire_history(&self, now: UnixTime, retention_days: u32) -> Result<usize> {
        let before = now - retention_days as i64 * SECONDS_PER_DAY;
        let expired = self.read(|s| s.journal().count_before(before));
        if expired > 0 {
            let mut batch = Batch::new();
            batch.push(Op::ExpireHistory { before });
            self.commit(batch)?;
            tracing::info!(
                removed = expired,
                retention_days,
                "audit log and mode history retention"
            );
        }
        Ok(expired)
    }

    /// Reclaims space: every sealed segment whose live bodies fill at most
    /// `live_ratio_max` of it has them rewritten to the end of the log; a checkpoint
    /// then covers its records and the file is deleted. Returns the segments removed.
    pub fn compact(&self, live_ratio_max: f64) -> Result<Vec<u64>> {
        let shared = self.shared();
        let active = shared.active_segment.load(Ordering::Acquire);
        let sizes: BTreeMap<u64, u64> = shared
            .segments
            .read()
            .iter()
            .filter(|(id, _)| **id < active)
            .map(|(id, s)| {
                (
                    *id,
                    s.current().map(|m| (*m).as_ref().len() as u64).unwrap_or(0),
                )
            })
            .collect();
        let live = self.live_bodies_by_segment();
        let candidates: Vec<u64> = sizes
            .iter()
            .filter(|(id, size)| {
                let live_bytes: u64 = live
                    .get(id)
                    .map(|v| v.iter().map(|(_, l)| l).sum())
                    .unwrap_or(0);
                live_bytes as f64 <= live_ratio_max * (**size).max(1) as f64
            })
            .map(|(id, _)| *id)
            .collect();
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch = Batch::new();
        let mut batch_bytes = 0;
        for id in &candidates {
            for (body, _) in live.get(id).into_iter().flatten() {
                let bytes = match self.body(*body) {
                    Ok(bytes) => bytes.to_vec(),
                    Err(Error::Invalid(_)) => continue, // deleted meanwhile
                    Err(e) => return Err(e),
                };
                batch_bytes += bytes.len() as u64;
                batch.relocate(*body, bytes);
                if batch_bytes >= COMPACT_BATCH_BYTES_MAX {
                    self.commit(std::mem::take(&mut batch))?;
                    batch_bytes = 0;
                }
            }
        }
        if !batch.is_empty() {
            self.commit(batch)?;
        }
        // The checkpoint's position lies past every record of the candidates, so
        // recovery no longer reads them.
        self.checkpoint()?;
        let mut removed = Vec::new();
        {
            let state = shared.state.write();
            let mut segments = shared.segments.write();
            for id in candidates {
                if state.bodies().any(|(_, b)| b.loc.segment == id) {
                    continue;
                }
                segments.remove(&id);
                let name = log::segment_name(id);
                shared
                    .fs
                    .remove(&name)
                    .map_err(Error::io(format!("removing {}", shared.fs.describe(&name))))?;
                removed.push(id);
            }
        }
        shared
            .fs
            .sync_dir()
            .map_err(Error::io("syncing the store directory"))?;
        tracing::info!(segments = ?removed, "compaction removed segments");
        Ok(removed)
    }

    fn live_bodies_by_segment(&self) -> BTreeMap<u64, Vec<(BodyId, u64)>> {
        self.read(|state| {
            let mut by_segment: BTreeMap<u64, Vec<(BodyId, u64)>> = BTreeMap::new();
            for (id, info) in state.bodies() {
                by_segment
                    .entry(info.loc.segment)
                    .or_default()
                    .push((*id, info.loc.len));
            }
            by_segment
        })
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
            while offset < bytes.len() as u64 {
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

fn writer_loop(shared: Arc<Shared>, rx: Receiver<Msg>, mut tail: Tail) {
    let mut since_checkpoint: u64 = 0;
    let mut checkpointer = Checkpointer::start(shared.clone());
    loop {
        let Ok(first) = rx.recv() else {
            // Every handle is gone: leave a checkpoint so the next open is fast.
            if shared.poisoned.lock().is_none() {
                match encode_checkpoint(&shared, tail.pos) {
                    Ok(bytes) => checkpointer.submit(bytes, tail.pos, Vec::new()),
                    Err(e) => tracing::error!("checkpoint at close failed: {e}"),
                }
            }
            checkpointer.finish();
            return;
        };
        let mut commits = Vec::new();
        let mut checkpoints = Vec::new();
        let mut bytes = 0;
        let mut take = |msg: Msg, bytes: &mut u64| match msg {
            Msg::Commit(request) => {
                *bytes += request.payload_len() + RECORD_HEADER_LEN as u64;
                commits.push(request);
            }
            Msg::Checkpoint(done) => checkpoints.push(done),
        };
        take(first, &mut bytes);
        while bytes < shared.options.group_bytes_max {
            match rx.try_recv() {
                Ok(msg) => take(msg, &mut bytes),
                Err(_) => break,
            }
        }
        if !commits.is_empty() {
            since_checkpoint += write_group(&shared, &mut tail, commits);
        }
        if checkpointer.failed.swap(false, Ordering::AcqRel) {
            since_checkpoint = since_checkpoint.max(shared.options.checkpoint_every_bytes);
        }
        // An automatic checkpoint waits while the previous one is still being written;
        // one asked for is always taken.
        let due = since_checkpoint >= shared.options.checkpoint_every_bytes && checkpointer.idle();
        if !checkpoints.is_empty() || due {
            let encoded = match &*shared.poisoned.lock() {
                Some(why) => Err(Error::Poisoned(why.clone())),
                None => encode_checkpoint(&shared, tail.pos),
            };
            match encoded {
                Ok(bytes) => {
                    checkpointer.submit(bytes, tail.pos, checkpoints);
                    since_checkpoint = 0;
                }
                Err(e) => {
                    tracing::error!("checkpoint failed: {e}");
                    for done in checkpoints {
                        done.complete(Err(Error::Invalid(format!("checkpoint failed: {e}"))));
                    }
                }
            }
        }
    }
}

/// A checkpoint encoded at a log position, to be written, and who waits for it.
struct CheckpointJob {
    bytes: Vec<u8>,
    pos: LogPos,
    done: Vec<Arc<Completion<Result<()>>>>,
}

/// Writes checkpoints on a thread of its own: the writer pauses its commits only to
/// encode the state (under the read lock), not for the file's write and syncs. Jobs
/// are written in order, so a later checkpoint never lands before an earlier one.
struct Checkpointer {
    shared: Arc<Shared>,
    jobs: Option<crossbeam_channel::Sender<CheckpointJob>>,
    thread: Option<JoinHandle<()>>,
    /// Jobs submitted and not yet written.
    pending: Arc<AtomicU64>,
    /// Set when a write failed, so the writer tries again soon.
    failed: Arc<AtomicBool>,
}

impl Checkpointer {
    fn start(shared: Arc<Shared>) -> Checkpointer {
        let (tx, rx) = crossbeam_channel::unbounded::<CheckpointJob>();
        let pending = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicBool::new(false));
        let (on_thread, count, fail) = (shared.clone(), pending.clone(), failed.clone());
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                for job in rx {
                    write_job(&on_thread, job, &fail);
                    count.fetch_sub(1, Ordering::AcqRel);
                }
            });
        let thread = match thread {
            Ok(thread) => Some(thread),
            Err(e) => {
                tracing::error!(
                    "cannot start the checkpoint thread ({e}): checkpoints are written inline"
                );
                None
            }
        };
        Checkpointer {
            shared,
            jobs: thread.is_some().then_some(tx),
            thread,
            pending,
            failed,
        }
    }

    fn idle(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    fn submit(&self, bytes: Vec<u8>, pos: LogPos, done: Vec<Arc<Completion<Result<()>>>>) {
        let mut job = CheckpointJob { bytes, pos, done };
        if let Some(jobs) = &self.jobs {
            self.pending.fetch_add(1, Ordering::AcqRel);
            match jobs.send(job) {
                Ok(()) => return,
                Err(crossbeam_channel::SendError(back)) => {
                    self.pending.fetch_sub(1, Ordering::AcqRel);
                    job = back;
                }
            }
        }
        write_job(&self.shared, job, &self.failed);
    }

    /// Waits until every submitted checkpoint is written.
    fn finish(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_job(shared: &Shared, job: CheckpointJob, failed: &AtomicBool) {
    let result = store_checkpoint(shared, &job.bytes, job.pos);
    if let Err(e) = &result {
        tracing::error!("checkpoint failed: {e}");
        failed.store(true, Ordering::Release);
    }
    for done in job.done {
        done.complete(match &result {
            Ok(()) => Ok(()),
            Err(e) => Err(Error::Invalid(format!("checkpoint failed: {e}"))),
        });
    }
}

fn poison(shared: &Shared, why: String) -> Error {
    tracing::error!("store poisoned: {why}");
    *shared.poisoned.lock() = Some(why.clone());
    Error::Poisoned(why)
}

/// Writes, syncs and applies one group; returns the bytes written.
fn write_group(shared: &Shared, tail: &mut Tail, commits: Vec<Request>) -> u64 {
    let fail_all = |commits: Vec<Request>, why: &str| {
        for request in commits {
            request.done.complete(Err(Error::Poisoned(why.to_string())));
        }
    };
    if let Some(why) = shared.poisoned.lock().clone() {
        fail_all(commits, &why);
        return 0;
    }
    let time = now();
    if tail.pos.offset >= shared.options.segment_bytes_max {
        match tail.roll(&*shared.fs, time) {
            Ok(segment) => {
                shared.active_segment.store(segment.id, Ordering::Release);
                shared.segments.write().insert(segment.id, segment);
            }
            Err(e) => {
                let why = poison(shared, e.to_string()).to_string();
                fail_all(commits, &why);
                return 0;
            }
        }
    }
    let total: u64 = commits
        .iter()
        .map(|r| r.payload_len() + RECORD_HEADER_LEN as u64)
        .sum();
    let mut buf = Vec::with_capacity(total as usize);
    let mut locs = Vec::with_capacity(commits.len());
    for (i, request) in commits.iter().enumerate() {
        let record_offset = tail.pos.offset + buf.len() as u64;
        let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + request.blobs.len());
        parts.push(&request.ops_bytes);
        parts.extend(request.blobs.iter().map(|b| b.as_slice()));
        log::encode_record(
            &mut buf,
            tail.pos.next_seq + i as u64,
            time,
            Kind::Batch,
            &parts,
        );
        let mut offset = record_offset + RECORD_HEADER_LEN as u64 + request.ops_bytes.len() as u64;
        let mut batch_locs = Vec::with_capacity(request.blobs.len());
        for blob in &request.blobs {
            batch_locs.push(Loc {
                segment: tail.segment.id,
                offset,
                len: blob.len() as u64,
            });
            offset += blob.len() as u64;
        }
        locs.push(batch_locs);
    }
    if let Err(e) = tail.append_durable(&buf) {
        let why = poison(
            shared,
            format!(
                "writing {}: {e}",
                shared.fs.describe(&log::segment_name(tail.segment.id))
            ),
        )
        .to_string();
        fail_all(commits, &why);
        return 0;
    }
    tail.pos.next_seq += commits.len() as u64;
    shared.groups.fetch_add(1, Ordering::Relaxed);
    shared
        .batches
        .fetch_add(commits.len() as u64, Ordering::Relaxed);
    shared
        .bytes_written
        .fetch_add(buf.len() as u64, Ordering::Relaxed);

    let mut outcomes = Vec::with_capacity(commits.len());
    let mut accounts = std::collections::BTreeSet::new();
    let (mut queue, mut directory) = (false, false);
    {
        let mut state = shared.state.write();
        for (request, locs) in commits.iter().zip(&locs) {
            let ctx = Ctx { time };
            let (results, touched) = state.apply(ctx, &request.ops, locs);
            accounts.extend(touched.accounts);
            queue |= touched.queue;
            directory |= touched.directory;
            outcomes.push(results);
        }
    }
    for (request, results) in commits.into_iter().zip(outcomes) {
        request.done.complete(Ok(results));
    }
    {
        let signals = shared.account_signals.lock();
        for account in &accounts {
            if let Some(signal) = signals.get(account) {
                signal.notify();
            }
        }
    }
    if queue {
        shared.queue_signal.notify();
    }
    if directory {
        shared.directory_signal.notify();
    }
    buf.len() as u64
}

/// The state at `pos`, encoded as a checkpoint file's contents.
fn encode_checkpoint(shared: &Shared, pos: LogPos) -> Result<Vec<u8>> {
    let body = {
        let state = shared.state.read();
        let encoded = postcard::to_allocvec(&(pos, &*state))
            .and_then(|bytes| postcard::to_extend(&state.journal, bytes));
        encoded.map_err(|e| Error::Invalid(format!("encoding checkpoint: {e}")))?
    };
    let mut bytes = Vec::with_capacity(CHECKPOINT_HEADER_LEN + body.len());
    bytes.extend_from_slice(CHECKPOINT_MAGIC);
    bytes.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

/// Writes an encoded checkpoint durably: a temporary file, synced, renamed over the
/// checkpoint, and the directory synced.
fn store_checkpoint(shared: &Shared, bytes: &[u8], pos: LogPos) -> Result<()> {
    let fs = &shared.fs;
    let what = || format!("writing {}", fs.describe(CHECKPOINT_TMP));
    let file = fs.open(CHECKPOINT_TMP, true).map_err(Error::io(what()))?;
    file.set_len(0).map_err(Error::io(what()))?;
    file.write_at(0, bytes).map_err(Error::io(what()))?;
    file.sync_data().map_err(Error::io(what()))?;
    drop(file);
    fs.rename(CHECKPOINT_TMP, CHECKPOINT_NAME)
        .map_err(Error::io(format!(
            "renaming to {}",
            fs.describe(CHECKPOINT_NAME)
        )))?;
    fs.sync_dir()
        .map_err(Error::io("syncing the store directory"))?;
    tracing::debug!(bytes = bytes.len(), ?pos, "checkpoint written");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint written before the journal existed (the state alone) still opens,
    /// with an empty journal; one written now carries the journal.
    #[test]
    fn checkpoints_without_a_journal_still_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), Options::default()).unwrap();
            let mut batch = Batch::new();
            batch.push(Op::PutDomain(DomainSettings {
                name: "example.test".into(),
                upstream: "127.0.0.1:25".into(),
                coverage: Coverage::All,
                failover: Failover::Auto,
            }));
            store.commit(batch).unwrap();
        }
        let path = dir.path().join(CHECKPOINT_NAME);
        let bytes = std::fs::read(&path).unwrap();
        let body = &bytes[CHECKPOINT_HEADER_LEN..];
        let ((pos, state), journal): ((LogPos, State), &[u8]) =
            postcard::take_from_bytes(body).unwrap();
        assert!(!journal.is_empty(), "the journal follows the state");
        let old = postcard::to_allocvec(&(pos, &state)).unwrap();
        let mut file = Vec::new();
        file.extend_from_slice(CHECKPOINT_MAGIC);
        file.extend_from_slice(&crc32c::crc32c(&old).to_le_bytes());
        file.extend_from_slice(&(old.len() as u64).to_le_bytes());
        file.extend_from_slice(&old);
        std::fs::write(&path, file).unwrap();

        let store = Store::open(dir.path(), Options::default()).unwrap();
        assert_eq!(store.stats().replayed_at_open, 0);
        store.read(|s| {
            assert!(s.domain("example.test").is_some());
            assert!(s.mode_history("example.test", 10).is_empty());
        });
    }
}
