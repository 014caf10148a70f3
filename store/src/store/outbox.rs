//! A replicated store's commits on their way to the cluster's log.
//!
//! Commits made while a frame is being published wait in the outbox and go together
//! in the next frame, their batches joined by [`Op::BatchEnd`]: one NATS message, one
//! majority write and one record on every node for all of them, instead of one each.
//! This is the cluster's group commit: under light load a commit goes out alone at
//! once; under heavy load frames grow and their number stays about the same.
//!
//! Invariants:
//! - The commits of a frame have consecutive nonces, the first in the frame's header,
//!   in the order of their batches in it: the writer answers the `n`th batch's caller
//!   under `first + n`.
//! - A frame is no larger than the replicator takes nor than a log record holds; a
//!   commit larger than that goes alone (and fails with the replicator's reason).
//! - At most [`PUBLISHING_MAX`] frames are on their way at a time; every commit is
//!   answered: by the writer once its frame comes back applied, or with
//!   [`Error::Unavailable`] when its frame was not stored. While the log does not
//!   answer, a commit waits at most the replicator's publish timeout: when a frame
//!   fails, the commits waiting behind it fail with it, unpublished.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::{CommitLatency, CommitResult, Completion, Inner, Store};
use crate::log::{self, RECORD_PAYLOAD_MAX};
use crate::model::{Op, UnixTime};
use crate::replica::{self, Replicator};
use crate::Error;

/// Frames published and not yet acknowledged, at most.
const PUBLISHING_MAX: usize = 1;

/// A replicated store's side of its commits.
pub(super) struct Replication {
    replicator: Arc<dyn Replicator>,
    /// This store's random id in frames: answers go to the store that asked.
    pub(super) origin: u64,
    /// Commits published and not yet come back, by nonce.
    pub(super) waiting: Mutex<HashMap<u64, Arc<Completion<CommitResult>>>>,
    outbox: Mutex<Outbox>,
    latency: Arc<CommitLatency>,
    /// The store, to give it a frame as soon as the log acknowledged it (weak: the
    /// store owns this).
    store: Weak<Inner>,
}

struct Outbox {
    next_nonce: u64,
    /// Commits not published yet, in nonce order.
    commits: VecDeque<Outgoing>,
    /// Frames on their way.
    publishing: usize,
}

struct Outgoing {
    ops: Vec<Op>,
    blobs: Vec<Vec<u8>>,
    /// Its share of a frame: encoded ops, blobs and the `BatchEnd` before it.
    bytes: usize,
}

impl Replication {
    pub(super) fn new(
        replicator: Arc<dyn Replicator>,
        latency: Arc<CommitLatency>,
        store: Weak<Inner>,
    ) -> Replication {
        Replication {
            latency,
            store,
            replicator,
            origin: rand::random(),
            waiting: Mutex::new(HashMap::new()),
            outbox: Mutex::new(Outbox {
                next_nonce: 1,
                commits: VecDeque::new(),
                publishing: 0,
            }),
        }
    }

    /// Queues a commit (`ops_len`: the length of its encoded ops) for publishing;
    /// `done` is answered when it comes back applied or was not stored.
    pub(super) fn send(
        self: &Arc<Self>,
        ops: Vec<Op>,
        ops_len: usize,
        blobs: Vec<Vec<u8>>,
        done: Arc<Completion<CommitResult>>,
    ) {
        {
            let mut outbox = self.outbox.lock();
            let nonce = outbox.next_nonce;
            outbox.next_nonce += 1;
            self.waiting.lock().insert(nonce, done);
            let bytes = ops_len + 1 + blobs.iter().map(Vec::len).sum::<usize>();
            outbox.commits.push_back(Outgoing { ops, blobs, bytes });
        }
        self.flush();
    }

    /// Publishes what waits in the outbox as one frame, unless enough frames are on
    /// their way already (the last of them to come back publishes what gathered).
    fn flush(self: &Arc<Self>) {
        let (first, commits) = {
            let mut outbox = self.outbox.lock();
            if outbox.publishing >= PUBLISHING_MAX || outbox.commits.is_empty() {
                return;
            }
            let limit = self.frame_max();
            let mut bytes = 0;
            let mut count = 0;
            for commit in &outbox.commits {
                if count > 0 && bytes + commit.bytes > limit {
                    break;
                }
                bytes += commit.bytes;
                count += 1;
            }
            outbox.publishing += 1;
            let first = outbox.next_nonce - outbox.commits.len() as u64;
            (first, outbox.commits.drain(..count).collect::<Vec<_>>())
        };
        let nonces = first..first + commits.len() as u64;
        let this = self.clone();
        let published = std::time::Instant::now();
        // `decoded`: the frame as published, given to the store once the log has it.
        let answer = move |decoded: Option<replica::Frame>, result: Result<u64, String>| {
            match result {
                Ok(seq) => {
                    this.latency.publish.record(published.elapsed());
                    let store = this.store.upgrade().map(|inner| Store { inner });
                    if let (Some(store), Some(decoded)) = (store, decoded) {
                        store.hand_published(seq, decoded);
                    }
                }
                Err(why) => {
                    // The commits waiting behind this frame are answered too: the log
                    // did not store it within its timeout, so publishing them now would
                    // most likely keep their callers waiting as long again, for the
                    // same answer. Never published, they were not stored anywhere.
                    let behind = {
                        let mut outbox = this.outbox.lock();
                        let count = outbox.commits.len() as u64;
                        outbox.commits.clear();
                        outbox.next_nonce - count..outbox.next_nonce
                    };
                    let mut waiting = this.waiting.lock();
                    for nonce in nonces {
                        if let Some(done) = waiting.remove(&nonce) {
                            done.complete(Err(Error::Unavailable(why.clone())));
                        }
                    }
                    for nonce in behind {
                        if let Some(done) = waiting.remove(&nonce) {
                            done.complete(Err(Error::Unavailable(format!(
                                "not published: the frame before it was not stored ({why})"
                            ))));
                        }
                    }
                }
            }
            this.outbox.lock().publishing -= 1;
            this.flush();
        };
        match encode(self.origin, first, crate::now(), commits) {
            Ok((frame, decoded)) => self
                .replicator
                .publish(frame, Box::new(move |result| answer(Some(decoded), result))),
            Err(e) => answer(None, Err(e.to_string())),
        }
    }

    /// The largest frame to publish: what the replicator takes and a record holds,
    /// less room for the frame's header and the encoding's lengths.
    fn frame_max(&self) -> usize {
        let record = usize::try_from(RECORD_PAYLOAD_MAX).unwrap_or(usize::MAX);
        self.replicator
            .frame_max()
            .min(record)
            .saturating_sub(replica::FRAME_HEADER_LEN + 16)
    }
}

/// One frame of `commits`, the first with nonce `first`: encoded, and as decoding it
/// would give.
fn encode(
    origin: u64,
    first: u64,
    time: UnixTime,
    commits: Vec<Outgoing>,
) -> crate::Result<(Vec<u8>, replica::Frame)> {
    let mut ops = Vec::new();
    let mut blobs = Vec::new();
    for (i, commit) in commits.into_iter().enumerate() {
        if i > 0 {
            ops.push(Op::BatchEnd);
        }
        ops.extend(commit.ops);
        blobs.extend(commit.blobs);
    }
    let ops_bytes = log::encode_ops(&ops)?;
    let frame = replica::encode_frame(origin, first, time, &ops_bytes, &blobs);
    let decoded = replica::Frame {
        origin,
        nonce: first,
        time,
        ops,
        ops_bytes,
        blobs,
    };
    Ok((frame, decoded))
}
