//! Replication hooks (cluster mode, SPEC §10): the store knows only a [`Replicator`]
//! its commits go through and the frames it exchanges with it.
//!
//! A replicated store does not write its own commits. [`crate::Store::commit`] hands
//! the batch to the store's outbox, which encodes it as a frame (with the commits made
//! while the previous frame was on its way, joined by [`Op::BatchEnd`]) and gives it
//! to the replicator, which publishes it to the cluster's log; every node (this one
//! too) reads that log in order and gives each frame back with
//! [`crate::Store::apply_replicated`], which writes it to the local
//! log as a `Replicated` record, syncs, applies it and, on the node that published
//! it, completes the caller with the applied results. So every node applies the same
//! batches in the same order with the same time, and assigns the same ids, UIDs and
//! MODSEQs (the apply step is deterministic). The publishing node does not wait for
//! its own frame to come back: when the log acknowledges it at a sequence right after
//! the last frame the store was given, the store takes it from the outbox at once, and
//! skips it when the log brings it; otherwise (frames of other nodes come first) it
//! comes through the log like any other.
//!
//! Invariants:
//! - A commit is answered only after its frame came back from the cluster's log and
//!   was applied locally: a publish that fails (or times out) answers an error, never
//!   success; the frame may still have been stored, in which case it is applied like
//!   any other (at-least-once, SPEC §3).
//! - Frames are applied in stream order and each at most once: a frame at or before
//!   the last stream sequence given to the writer is skipped, and a frame is given to
//!   it (from the log or from the outbox) only right after the one before it.

use crate::log::blob_lens;
use crate::model::{Op, UnixTime};
use crate::{Error, Result};

/// Publishes frames to the cluster's log.
pub trait Replicator: Send + Sync {
    /// Publishes `frame`; calls `done` once with the stream sequence it got (stored by a
    /// majority) or why it was not stored. `done` may run on any thread.
    fn publish(
        &self,
        frame: Vec<u8>,
        done: Box<dyn FnOnce(std::result::Result<u64, String>) + Send>,
    );

    /// The largest frame it takes, in bytes.
    fn frame_max(&self) -> usize;
}

const FRAME_MAGIC: &[u8; 4] = b"LBF1";
/// Bytes before a frame's op section: magic, origin, nonce, time.
pub(crate) const FRAME_HEADER_LEN: usize = 4 + 8 + 8 + 8;

/// A decoded frame.
#[derive(Debug)]
pub struct Frame {
    /// The publishing store's random id.
    pub origin: u64,
    /// The publisher's number for the batch.
    pub nonce: u64,
    /// When it was committed (the apply time on every node).
    pub time: UnixTime,
    /// Its ops.
    pub ops: Vec<Op>,
    /// The encoded op section (`u32 length | postcard(ops)`), as written to the log.
    pub ops_bytes: Vec<u8>,
    /// Its blobs, in op order.
    pub blobs: Vec<Vec<u8>>,
}

/// Encodes a frame: `LBF1 | origin | nonce | time | op section | blobs`.
pub fn encode_frame(
    origin: u64,
    nonce: u64,
    time: UnixTime,
    ops_bytes: &[u8],
    blobs: &[Vec<u8>],
) -> Vec<u8> {
    let len = FRAME_HEADER_LEN + ops_bytes.len() + blobs.iter().map(Vec::len).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(FRAME_MAGIC);
    out.extend_from_slice(&origin.to_le_bytes());
    out.extend_from_slice(&nonce.to_le_bytes());
    out.extend_from_slice(&time.to_le_bytes());
    out.extend_from_slice(ops_bytes);
    for blob in blobs {
        out.extend_from_slice(blob);
    }
    out
}

/// Decodes a frame; an error says why it is not one.
pub fn decode_frame(bytes: &[u8]) -> Result<Frame> {
    let bad = |why: &str| Error::Invalid(format!("replicated frame: {why}"));
    if bytes.len() < FRAME_HEADER_LEN + 4 || &bytes[0..4] != FRAME_MAGIC {
        return Err(bad("not a frame"));
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let (origin, nonce, time) = (u64_at(4), u64_at(12), u64_at(20) as i64);
    let rest = &bytes[FRAME_HEADER_LEN..];
    let ops_len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
    let encoded = rest
        .get(4..4 + ops_len)
        .ok_or_else(|| bad("op section cut short"))?;
    let ops: Vec<Op> =
        postcard::from_bytes(encoded).map_err(|e| bad(&format!("ops do not decode: {e}")))?;
    let mut at = 4 + ops_len;
    let mut blobs = Vec::new();
    for len in blob_lens(&ops) {
        let len = usize::try_from(len).map_err(|_| bad("blob too large"))?;
        let blob = rest
            .get(at..at.checked_add(len).ok_or_else(|| bad("blob too large"))?)
            .ok_or_else(|| bad("blob cut short"))?;
        blobs.push(blob.to_vec());
        at += len;
    }
    if at != rest.len() {
        return Err(bad("bytes after the last blob"));
    }
    Ok(Frame {
        origin,
        nonce,
        time,
        ops_bytes: rest[..4 + ops_len].to_vec(),
        ops,
        blobs,
    })
}
