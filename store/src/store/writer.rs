//! The writer thread: group commit. It takes every batch that is waiting, writes them
//! as consecutive records with one `write` and one `fdatasync`, applies them to the
//! state and only then completes their callers; it also decides when to checkpoint.
//!
//! Invariants: records get consecutive sequence numbers in the order they are written;
//! nothing is applied or acknowledged before the sync that covers it returned, but
//! frames of the cluster's log that other nodes published (see [`Deferred`]); after a
//! failed write or sync (the store is poisoned) nothing more is written.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::checkpoint::{Checkpointer, Snapshot};
use super::{CommitResult, Completion, Shared};
use crate::log::{self, Kind, ReplicaTag, Tail, RECORD_HEADER_LEN, REPLICA_TAG_LEN};
use crate::model::*;
use crate::spill::{MessageData, Spill, COPY_CHUNK_BYTES};
use crate::state::Ctx;
use crate::{Error, Result};

/// Least bytes of the next segment made ready after a group.
const READY_STEP_MIN: u64 = 256 << 10;
/// Most bytes of the next segment made ready after a group: a pause of a millisecond
/// or two before the next group at most.
const READY_STEP_MAX: u64 = 8 << 20;

/// Records written but not synced yet: a run of groups that held only frames of the
/// cluster's log other nodes published.
///
/// Such a frame needs no sync before it is applied. The node that published it synced
/// it before it answered anyone, and the cluster's log holds it: a node that loses it
/// in a crash reads it again from its last frame on disk. Nothing waits for the sync,
/// so a replica writes with a fraction of the syncs. The run is synced with the next
/// group that needs a sync, before a checkpoint or a new segment, when it holds
/// [`super::Options::group_bytes_max`] bytes, and at the latest
/// [`super::Options::replica_sync_delay`] after its first group.
///
/// For recovery the run is one group: its records carry their index in the run, since a
/// crash during its sync may leave any of its pages on disk.
struct Deferred {
    /// Sequence number of the run's first record.
    first_seq: u64,
    /// When the run is synced at the latest.
    due: Instant,
    /// Bytes written in the run.
    bytes: u64,
}

pub(super) struct Request {
    pub(super) ops: Vec<Op>,
    pub(super) ops_bytes: Vec<u8>,
    pub(super) blobs: Vec<MessageData>,
    pub(super) done: Arc<Completion<CommitResult>>,
    /// For a frame of the cluster's log: its tag and its time.
    pub(super) replica: Option<Replicated>,
}

/// A frame of the cluster's log, to be written as a `Replicated` record.
pub(super) struct Replicated {
    pub(super) tag: ReplicaTag,
    /// The publisher's commit time: the apply time on every node.
    pub(super) time: UnixTime,
}

impl Request {
    fn tag_len(&self) -> u64 {
        if self.replica.is_some() {
            REPLICA_TAG_LEN as u64
        } else {
            0
        }
    }

    fn payload_len(&self) -> u64 {
        self.tag_len()
            + self.ops_bytes.len() as u64
            + self.blobs.iter().map(MessageData::len).sum::<u64>()
    }
}

pub(super) enum Msg {
    Commit(Request),
    Checkpoint(Arc<Completion<Result<()>>>),
}

pub(super) fn writer_loop(shared: Arc<Shared>, rx: Receiver<Msg>, mut tail: Tail) {
    let mut since_checkpoint: u64 = 0;
    let mut checkpointer = Checkpointer::start(shared.clone());
    let mut deferred: Option<Deferred> = None;
    loop {
        let received = match &deferred {
            None => rx.recv().ok(),
            Some(run) => match rx.recv_deadline(run.due) {
                Ok(msg) => Some(msg),
                Err(RecvTimeoutError::Timeout) => {
                    let _ = sync_deferred(&shared, &mut tail, &mut deferred);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => None,
            },
        };
        let Some(first) = received else {
            // Every handle is gone: leave a checkpoint so the next open is fast.
            if sync_deferred(&shared, &mut tail, &mut deferred).is_ok()
                && shared.poisoned.lock().is_none()
            {
                checkpointer.submit(Snapshot::take(&shared, tail.pos), Vec::new());
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
            let written = write_group(&shared, &mut tail, commits, &mut deferred);
            since_checkpoint += written;
            // Between groups, with the callers answered: zeros for the next segment,
            // at twice the pace of the log, so it is ready before this one is full.
            tail.prepare(
                &*shared.fs,
                (2 * written).clamp(READY_STEP_MIN, READY_STEP_MAX),
            );
        }
        if checkpointer.failed.swap(false, Ordering::AcqRel) {
            since_checkpoint = since_checkpoint.max(shared.options.checkpoint_every_bytes);
        }
        // An automatic checkpoint waits while the previous one is still being written;
        // one asked for is always taken.
        let due = since_checkpoint >= shared.options.checkpoint_every_bytes && checkpointer.idle();
        if !checkpoints.is_empty() || due {
            // A checkpoint names places in the log: they must be on disk first.
            let _ = sync_deferred(&shared, &mut tail, &mut deferred);
            let poisoned = shared.poisoned.lock().clone();
            match poisoned {
                None => {
                    let started = std::time::Instant::now();
                    let snapshot = Snapshot::take(&shared, tail.pos);
                    tracing::debug!(
                        us = started.elapsed().as_micros() as u64,
                        "checkpoint snapshot taken"
                    );
                    checkpointer.submit(snapshot, checkpoints);
                    since_checkpoint = 0;
                }
                Some(why) => {
                    let e = Error::Poisoned(why);
                    tracing::error!("checkpoint failed: {e}");
                    for done in checkpoints {
                        done.complete(Err(Error::Invalid(format!("checkpoint failed: {e}"))));
                    }
                }
            }
        }
    }
}

fn poison(shared: &Shared, why: String) -> Error {
    tracing::error!("store poisoned: {why}");
    *shared.poisoned.lock() = Some(why.clone());
    Error::Poisoned(why)
}

/// Syncs the run of records written without a sync, if there is one; a failure
/// poisons the store and says why.
fn sync_deferred(
    shared: &Shared,
    tail: &mut Tail,
    deferred: &mut Option<Deferred>,
) -> std::result::Result<(), String> {
    if let Some(why) = shared.poisoned.lock().clone() {
        return Err(why);
    }
    if deferred.take().is_some() {
        if let Err(e) = tail.sync() {
            let name = log::segment_name(tail.segment.id);
            return Err(poison(
                shared,
                format!("syncing {}: {e}", shared.fs.describe(&name)),
            )
            .to_string());
        }
    }
    Ok(())
}

/// Writes, syncs and applies one group; returns the bytes written. A group of frames
/// other nodes published is not synced (see [`Deferred`]).
fn write_group(
    shared: &Shared,
    tail: &mut Tail,
    mut commits: Vec<Request>,
    deferred: &mut Option<Deferred>,
) -> u64 {
    // A frame of the cluster's log applied already (given again after a reconnect).
    let mut applied = shared.applied_seq.load(Ordering::Acquire);
    commits.retain(|request| match &request.replica {
        Some(replica) if replica.tag.stream_seq <= applied => {
            request.done.complete(Ok(Vec::new()));
            false
        }
        Some(replica) => {
            applied = replica.tag.stream_seq;
            true
        }
        None => true,
    });
    if commits.is_empty() {
        return 0;
    }
    let started = Instant::now();
    for request in &commits {
        let submitted = request.done.created;
        shared
            .latency
            .queue
            .record(started.saturating_duration_since(submitted));
    }
    let fail_all = |commits: Vec<Request>, why: &str| {
        for request in commits {
            request.done.complete(Err(Error::Poisoned(why.to_string())));
        }
    };
    if let Some(why) = shared.poisoned.lock().clone() {
        fail_all(commits, &why);
        return 0;
    }
    // A full disk fails a group of this node's own batches and nothing more: the
    // callers hear so, and the log is as it was. A frame of the cluster's log must be
    // applied before the next, so there it poisons the store, as any other failure.
    let own_only = commits.iter().all(|request| request.replica.is_none());
    let no_space = |commits: Vec<Request>, e: &dyn std::fmt::Display| {
        tracing::warn!(
            commits = commits.len(),
            "commits refused, the disk is full: {e}"
        );
        for request in commits {
            request
                .done
                .complete(Err(Error::NoSpace("the file system is full".into())));
        }
    };
    let time = now();
    // Offset 0: the segment was sealed, but the next one could not be started.
    if tail.pos.offset == 0 || tail.pos.offset >= shared.options.segment_bytes_max {
        // The seal must not join a run not synced yet: recovery could not tell it apart.
        if let Err(why) = sync_deferred(shared, tail, deferred) {
            fail_all(commits, &why);
            return 0;
        }
        match tail.roll(&*shared.fs, time) {
            Ok(segment) => {
                shared.active_segment.store(segment.id, Ordering::Release);
                shared.segments.write().insert(segment.id, segment);
            }
            // Rolling again seals nothing twice and starts the new segment afresh.
            Err(e) if own_only && e.is_no_space() => {
                no_space(commits, &e);
                return 0;
            }
            Err(e) => {
                let why = poison(shared, e.to_string()).to_string();
                fail_all(commits, &why);
                return 0;
            }
        }
    }
    let first_seq = tail.pos.next_seq;
    let start = tail.pos.offset;
    debug_assert!(start >= log::SEGMENT_HEADER_LEN && first_seq >= 1);
    let len_before = match tail.file_len() {
        Ok(len) => len,
        Err(e) => {
            let name = shared.fs.describe(&log::segment_name(tail.segment.id));
            let why = poison(shared, format!("reading the length of {name}: {e}")).to_string();
            fail_all(commits, &why);
            return 0;
        }
    };
    let replication = shared.replication.read().clone();
    let own = replication.as_ref().map(|r| r.origin);
    // A run that is due (a busy writer never waits long enough for its deadline) or
    // full is synced with this group.
    let defer = !shared.options.replica_sync_delay.is_zero()
        && deferred
            .as_ref()
            .is_none_or(|run| started < run.due && run.bytes < shared.options.group_bytes_max)
        && commits.iter().all(|request| {
            request
                .replica
                .as_ref()
                .is_some_and(|replica| Some(replica.tag.origin) != own)
        });
    // Records are numbered from the first one not synced.
    let run_seq = deferred.as_ref().map_or(first_seq, |run| run.first_seq);
    let mut out = GroupWriter::new(tail, &commits);
    let mut locs = Vec::with_capacity(commits.len());
    let mut write_error = None;
    for (i, request) in commits.iter().enumerate() {
        let (kind, record_time) = match &request.replica {
            Some(replica) => (Kind::Replicated, replica.time),
            None => (Kind::Batch, time),
        };
        let seq = first_seq + i as u64;
        let in_group = u32::try_from(seq - run_seq).unwrap_or(u32::MAX);
        match out.record(seq, in_group, record_time, kind, request) {
            Ok(batch_locs) => locs.push(batch_locs),
            Err(e) => {
                write_error = Some(e);
                break;
            }
        }
    }
    let written = match write_error {
        Some(e) => Err(e),
        None => out.finish(),
    };
    if let Err(e) = written {
        let name = shared.fs.describe(&log::segment_name(tail.segment.id));
        if own_only && crate::io::is_no_space(&e) {
            let upto: u64 = commits
                .iter()
                .map(|request| RECORD_HEADER_LEN as u64 + request.payload_len())
                .sum();
            match tail.take_back(start, start + upto, len_before) {
                Ok(()) => {
                    // The sync took the run not synced before along.
                    *deferred = None;
                    no_space(commits, &format!("writing {name}: {e}"));
                }
                Err(undo) => {
                    let why = format!("writing {name}: {e}; then taking it back: {undo}");
                    fail_all(commits, &poison(shared, why).to_string());
                }
            }
            return 0;
        }
        let why = poison(shared, format!("writing {name}: {e}")).to_string();
        fail_all(commits, &why);
        return 0;
    }
    if !defer {
        if let Err(e) = tail.sync() {
            let name = shared.fs.describe(&log::segment_name(tail.segment.id));
            let why = poison(shared, format!("syncing {name}: {e}")).to_string();
            fail_all(commits, &why);
            return 0;
        }
    }
    let synced = Instant::now();
    let written = tail.pos.offset - start;
    if defer {
        let run = deferred.get_or_insert_with(|| Deferred {
            first_seq,
            due: synced + shared.options.replica_sync_delay,
            bytes: 0,
        });
        run.bytes += written;
    } else {
        *deferred = None;
        shared.latency.sync.record(synced - started);
    }
    tail.pos.next_seq += commits.len() as u64;
    shared.groups.fetch_add(1, Ordering::Relaxed);
    shared
        .batches
        .fetch_add(commits.len() as u64, Ordering::Relaxed);
    shared.bytes_written.fetch_add(written, Ordering::Relaxed);

    let mut outcomes = Vec::with_capacity(commits.len());
    let mut accounts = std::collections::BTreeSet::new();
    let (mut queue, mut directory) = (false, false);
    {
        let mut state = shared.state.write();
        for (request, locs) in commits.iter().zip(&locs) {
            let ctx = Ctx {
                time: request.replica.as_ref().map_or(time, |r| r.time),
            };
            let (results, touched) = state.apply(ctx, &request.ops, locs);
            // Under the state's lock: a reader sees the state and how far into the
            // cluster's log it goes together (snapshots rely on it).
            if let Some(replica) = &request.replica {
                shared
                    .applied_seq
                    .store(replica.tag.stream_seq, Ordering::Release);
            }
            accounts.extend(touched.accounts);
            queue |= touched.queue;
            directory |= touched.directory;
            outcomes.push(results);
        }
        if !state.retained.is_empty() {
            let floors = shared.watches.floors();
            state.retained.prune(|folder| floors.get(&folder).copied());
        }
    }
    shared.latency.apply.record(synced.elapsed());
    for (request, results) in commits.into_iter().zip(outcomes) {
        if let Some(replica) = &request.replica {
            // The commit this node published is answered with what it came to.
            if let Some(replication) = replication
                .as_ref()
                .filter(|r| r.origin == replica.tag.origin)
            {
                // A frame's batches are its commits, nonces counted from its own.
                let mut waiting = replication.waiting.lock();
                let ends = request.ops.iter().enumerate();
                let ends = ends
                    .filter(|(_, op)| matches!(op, Op::BatchEnd))
                    .map(|(i, _)| i);
                // The frame came back when it was given to this store.
                let returned = request.done.created;
                let mut start = 0;
                for (nonce, end) in (replica.tag.nonce..).zip(ends.chain([results.len()])) {
                    if let Some(caller) = waiting.remove(&nonce) {
                        let round_trip = returned.saturating_duration_since(caller.created);
                        shared.latency.round_trip.record(round_trip);
                        caller.complete(Ok(results[start..end].to_vec()));
                    }
                    start = end + 1;
                }
            }
        }
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
    written
}

/// Writes a group's records at the end of the log: small parts gathered in one buffer
/// and written with one call, large ones written from where they are, spilled ones
/// copied in chunks ([`COPY_CHUNK_BYTES`]); the group ends with one sync. A record's
/// checksum is written once its payload went through.
struct GroupWriter<'a> {
    tail: &'a mut Tail,
    /// What is not written yet; it goes at `tail.pos.offset`.
    buf: Vec<u8>,
    /// A spilled body's chunk on its way from the spill file to the log.
    chunk: Vec<u8>,
}

impl<'a> GroupWriter<'a> {
    fn new(tail: &'a mut Tail, commits: &[Request]) -> GroupWriter<'a> {
        let gathered: u64 = commits
            .iter()
            .map(|r| {
                let small_blobs: u64 = r
                    .blobs
                    .iter()
                    .map(|b| b.parts().0.len() as u64)
                    .filter(|&len| len < COPY_CHUNK_BYTES as u64)
                    .sum();
                RECORD_HEADER_LEN as u64 + r.tag_len() + r.ops_bytes.len() as u64 + small_blobs
            })
            .sum();
        GroupWriter {
            tail,
            buf: Vec::with_capacity(gathered as usize),
            chunk: Vec::new(),
        }
    }

    /// Where the next byte goes.
    fn offset(&self) -> u64 {
        self.tail.pos.offset + self.buf.len() as u64
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.tail.append(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Adds `part` to the record being written and to its checksum.
    fn put(&mut self, crc: &mut u32, part: &[u8]) -> std::io::Result<()> {
        *crc = crc32c::crc32c_append(*crc, part);
        if part.len() < COPY_CHUNK_BYTES {
            self.buf.extend_from_slice(part);
            return Ok(());
        }
        self.flush()?;
        self.tail.append(part)
    }

    /// Copies `spill` into the record being written, chunk by chunk.
    fn copy(&mut self, crc: &mut u32, spill: &Spill) -> std::io::Result<()> {
        self.flush()?;
        let mut chunk = std::mem::take(&mut self.chunk);
        let mut at = 0;
        while at < spill.len() {
            let n = (spill.len() - at).min(COPY_CHUNK_BYTES as u64) as usize;
            chunk.resize(n, 0);
            spill.read_at(at, &mut chunk)?;
            *crc = crc32c::crc32c_append(*crc, &chunk);
            self.tail.append(&chunk)?;
            at += n as u64;
        }
        self.chunk = chunk;
        Ok(())
    }

    /// Writes `request` as record `seq`, number `in_group` of the group; the places of
    /// its blobs.
    fn record(
        &mut self,
        seq: u64,
        in_group: u32,
        time: UnixTime,
        kind: Kind,
        request: &Request,
    ) -> std::io::Result<Vec<Loc>> {
        let record_offset = self.offset();
        let mut header = Vec::with_capacity(RECORD_HEADER_LEN);
        log::encode_record_header(
            &mut header,
            seq,
            time,
            kind,
            request.payload_len(),
            in_group,
        );
        let mut crc = crc32c::crc32c(&header[4..]);
        self.buf.extend_from_slice(&header);
        if let Some(replica) = &request.replica {
            self.put(&mut crc, &replica.tag.encode())?;
        }
        self.put(&mut crc, &request.ops_bytes)?;
        let mut locs = Vec::with_capacity(request.blobs.len());
        for blob in &request.blobs {
            let offset = self.offset();
            let (head, spill) = blob.parts();
            self.put(&mut crc, head)?;
            if let Some(spill) = spill {
                self.copy(&mut crc, spill)?;
            }
            debug_assert_eq!(self.offset() - offset, blob.len());
            locs.push(Loc {
                segment: self.tail.segment.id,
                offset,
                len: blob.len(),
            });
        }
        // The blobs end where the record does.
        debug_assert_eq!(
            self.offset(),
            record_offset + RECORD_HEADER_LEN as u64 + request.payload_len()
        );
        let crc = crc.to_le_bytes();
        match record_offset.checked_sub(self.tail.pos.offset) {
            Some(in_buf) => self.buf[in_buf as usize..in_buf as usize + 4].copy_from_slice(&crc),
            None => self.tail.patch(record_offset, &crc)?,
        }
        Ok(locs)
    }

    /// Writes what is left; the caller syncs.
    fn finish(mut self) -> std::io::Result<()> {
        self.flush()
    }
}
