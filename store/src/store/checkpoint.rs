//! Checkpoints: the whole state at a log position, so that opening replays only the
//! log after it.
//!
//! File: a 24-byte header — `LBCHECKP`, the format version, a CRC32C of everything
//! after the magic but the CRC itself, the body's length — then the body (postcard of
//! the position and the state, then postcard of the subscriptions and expunge logs,
//! which checkpoints written before they existed lack). A checkpoint from before versions were recorded has a
//! 20-byte header — `LBCKPT01`, a CRC32C of the body, its length — and is version 1.
//!
//! Invariants: a checkpoint is written to `checkpoint.tmp`, synced, renamed over
//! `checkpoint` and the directory synced, so `checkpoint` is always whole; checkpoints
//! are written in the order they were taken.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{Completion, Shared};
use crate::io::Vfs;
use crate::log::LogPos;
use crate::state::{FolderSync, State};
use crate::{Error, Result, FORMAT_VERSION};

pub(super) const CHECKPOINT_NAME: &str = "checkpoint";
pub(super) const CHECKPOINT_TMP: &str = "checkpoint.tmp";
const CHECKPOINT_MAGIC: &[u8; 8] = b"LBCHECKP";
const CHECKPOINT_HEADER_LEN: usize = 24;
/// Checkpoints from before versions were recorded.
const LEGACY_MAGIC: &[u8; 8] = b"LBCKPT01";
const LEGACY_HEADER_LEN: usize = 20;

/// Sections after the state (format version 2), each `(tag, postcard bytes)`, so that
/// a later version can add one that an earlier one skips: the last sequence of the
/// cluster's log applied (tag 1), the mode history and audit log (tag 2); a checkpoint
/// without a section has it empty.
const SECTION_APPLIED_SEQ: u16 = 1;
const SECTION_JOURNAL: u16 = 2;
/// Subscriptions and expunge logs (`state/folder_sync.rs`).
const SECTION_FOLDER_SYNC: u16 = 3;
/// Message traces (`trace.rs`).
const SECTION_TRACES: u16 = 4;
/// Domains' DKIM keys.
const SECTION_DKIM: u16 = 5;

fn encode_sections(state: &State, applied_seq: u64, out: Vec<u8>) -> postcard::Result<Vec<u8>> {
    let mut sections: Vec<(u16, Vec<u8>)> = vec![
        (SECTION_JOURNAL, postcard::to_allocvec(&state.journal)?),
        (
            SECTION_FOLDER_SYNC,
            postcard::to_allocvec(&state.folder_sync)?,
        ),
        (SECTION_TRACES, postcard::to_allocvec(&state.traces)?),
        (SECTION_DKIM, postcard::to_allocvec(&state.dkim)?),
    ];
    if applied_seq != 0 {
        sections.push((SECTION_APPLIED_SEQ, postcard::to_allocvec(&applied_seq)?));
    }
    postcard::to_extend(&sections, out)
}

/// Reads the sections into `state`; returns the last replicated sequence applied.
fn decode_sections(bytes: &[u8], state: &mut State) -> postcard::Result<u64> {
    let mut applied_seq = 0;
    let mut folder_sync = None;
    // Version 1: the state alone.
    let sections: Vec<(u16, Vec<u8>)> = if bytes.is_empty() {
        Vec::new()
    } else {
        postcard::from_bytes(bytes)?
    };
    for (tag, body) in sections {
        match tag {
            SECTION_JOURNAL => state.journal = postcard::from_bytes(&body)?,
            SECTION_APPLIED_SEQ => applied_seq = postcard::from_bytes(&body)?,
            SECTION_FOLDER_SYNC => folder_sync = Some(postcard::from_bytes(&body)?),
            SECTION_TRACES => state.traces = postcard::from_bytes(&body)?,
            SECTION_DKIM => state.dkim = postcard::from_bytes(&body)?,
            _ => {}
        }
    }
    // A checkpoint written before subscriptions and expunge logs were kept derives
    // them from the folders (`state/folder_sync.rs`).
    state.folder_sync = folder_sync.unwrap_or_else(|| FolderSync::derived_from_checkpoint(state));
    Ok(applied_seq)
}

/// A checkpoint: the log position it covers, the state there, and the last sequence of
/// the cluster's log it includes (0: none).
pub(super) fn read_checkpoint(fs: &dyn Vfs) -> Result<Option<(LogPos, State, u64)>> {
    if !fs
        .list()
        .map_err(Error::io("listing the store directory"))?
        .iter()
        .any(|n| n == CHECKPOINT_NAME)
    {
        return Ok(None);
    }
    let file = fs.open(CHECKPOINT_NAME, false).map_err(Error::io(format!(
        "opening {}",
        fs.describe(CHECKPOINT_NAME)
    )))?;
    let map = file.map().map_err(Error::io(format!(
        "reading {}",
        fs.describe(CHECKPOINT_NAME)
    )))?;
    decode_checkpoint((*map).as_ref(), &fs.describe(CHECKPOINT_NAME)).map(Some)
}

/// A checkpoint file's contents decoded (`file` names it in errors).
pub(super) fn decode_checkpoint(bytes: &[u8], file: &str) -> Result<(LogPos, State, u64)> {
    let corrupt = |offset: u64, reason: &str| Error::Corrupt {
        file: file.to_string(),
        offset,
        reason: reason.to_string(),
    };
    let (version, body, at) =
        checkpoint_body(bytes).map_err(|(offset, reason)| corrupt(offset, reason))?;
    if version > FORMAT_VERSION {
        return Err(Error::Version {
            file: file.to_string(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let ((pos, mut state), rest): ((LogPos, State), &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| corrupt(at, &e.to_string()))?;
    let applied_seq = decode_sections(rest, &mut state)
        .map_err(|e| corrupt(at + (body.len() - rest.len()) as u64, &e.to_string()))?;
    state.rebuild_derived();
    Ok((pos, state, applied_seq))
}

/// A checkpoint file's format version, its verified body and the body's offset; or
/// where and why it does not verify.
fn checkpoint_body(bytes: &[u8]) -> Result<(u32, &[u8], u64), (u64, &'static str)> {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let (version, crc, len, start) = match bytes.get(0..8) {
        Some(magic) if magic == CHECKPOINT_MAGIC && bytes.len() >= CHECKPOINT_HEADER_LEN => {
            (u32_at(8), u32_at(12), u64_at(16), CHECKPOINT_HEADER_LEN)
        }
        Some(magic) if magic == LEGACY_MAGIC && bytes.len() >= LEGACY_HEADER_LEN => {
            (1, u32_at(8), u64_at(12), LEGACY_HEADER_LEN)
        }
        _ => return Err((0, "not a checkpoint file")),
    };
    let body = usize::try_from(len)
        .ok()
        .and_then(|len| bytes.get(start..start.checked_add(len)?))
        .ok_or((start as u64, "checkpoint is cut short"))?;
    let computed = if start == LEGACY_HEADER_LEN {
        crc32c::crc32c(body)
    } else {
        checkpoint_crc(&bytes[..start], body)
    };
    if computed != crc {
        return Err((start as u64, "checkpoint checksum mismatch"));
    }
    if version == 0 {
        return Err((8, "checkpoint names format version 0"));
    }
    Ok((version, body, start as u64))
}

/// The CRC32C of a checkpoint: its version, length and body.
fn checkpoint_crc(header: &[u8], body: &[u8]) -> u32 {
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[8..12]), &header[16..24]);
    crc32c::crc32c_append(crc, body)
}

/// The state at a log position, to be encoded and written, and who waits for it.
pub(super) struct CheckpointJob {
    snapshot: Snapshot,
    done: Vec<Arc<Completion<Result<()>>>>,
}

/// A copy of the state as it was at a log position. Taking it costs the writer little:
/// the archive and the traces, most of a large state, are persistent maps that the copy
/// shares; the rest is copied.
pub(super) struct Snapshot {
    state: State,
    pos: LogPos,
    applied_seq: u64,
}

impl Snapshot {
    /// The state as the writer leaves it at `pos`.
    pub(super) fn take(shared: &Shared, pos: LogPos) -> Snapshot {
        let state = shared.state.read();
        Snapshot {
            state: state.clone(),
            pos,
            applied_seq: shared.applied_seq.load(Ordering::Acquire),
        }
    }

    fn encode(&self) -> Result<Vec<u8>> {
        checkpoint_bytes(self.pos, &self.state, self.applied_seq)
    }
}

/// Encodes and writes checkpoints on a thread of its own: the writer pauses its
/// commits only to take a [`Snapshot`], not to encode it, write it or sync it (encoding
/// a state of a few hundred thousand messages takes a few hundred milliseconds). Jobs
/// are written in order, so a later checkpoint never lands before an earlier one.
pub(super) struct Checkpointer {
    shared: Arc<Shared>,
    jobs: Option<crossbeam_channel::Sender<CheckpointJob>>,
    thread: Option<JoinHandle<()>>,
    /// Jobs submitted and not yet written.
    pending: Arc<AtomicU64>,
    /// Set when a write failed, so the writer tries again soon.
    pub(super) failed: Arc<AtomicBool>,
}

impl Checkpointer {
    pub(super) fn start(shared: Arc<Shared>) -> Checkpointer {
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

    pub(super) fn idle(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    pub(super) fn submit(&self, snapshot: Snapshot, done: Vec<Arc<Completion<Result<()>>>>) {
        let mut job = CheckpointJob { snapshot, done };
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
    pub(super) fn finish(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_job(shared: &Shared, job: CheckpointJob, failed: &AtomicBool) {
    let started = std::time::Instant::now();
    let result = job.snapshot.encode().and_then(|bytes| {
        tracing::debug!(
            bytes = bytes.len(),
            ms = started.elapsed().as_millis() as u64,
            "checkpoint encoded"
        );
        store_checkpoint(shared, &bytes, job.snapshot.pos)
    });
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

/// A checkpoint file's contents: the state at `pos`, which includes the cluster's log
/// through `applied_seq`.
pub(super) fn checkpoint_bytes(pos: LogPos, state: &State, applied_seq: u64) -> Result<Vec<u8>> {
    let body = postcard::to_allocvec(&(pos, state))
        .and_then(|bytes| encode_sections(state, applied_seq, bytes))
        .map_err(|e| Error::Invalid(format!("encoding checkpoint: {e}")))?;
    let mut bytes = Vec::with_capacity(CHECKPOINT_HEADER_LEN + body.len());
    bytes.extend_from_slice(CHECKPOINT_MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&[0; 4]);
    bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
    let crc = checkpoint_crc(&bytes, &body);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
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
