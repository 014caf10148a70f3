//! Compaction: live bodies of mostly dead sealed segments move to the end of the log,
//! then a checkpoint covers everything those segments held and they are deleted.
//!
//! Invariant: a segment is deleted only once no body lives in it, no retained
//! expunged message points into it, and a durable checkpoint lies past its last
//! record, so recovery never needs it again and no session still reads from it.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use super::{Batch, Store};
use crate::log;
use crate::model::*;
use crate::{Error, Result};

/// Bytes of relocated bodies per compaction batch.
const COMPACT_BATCH_BYTES_MAX: u64 = 16 << 20;

impl Store {
    /// Reclaims space: every sealed segment whose live bodies fill at most
    /// `live_ratio_max` of it has them rewritten to the end of the log; a checkpoint
    /// then covers its records and the file is deleted. Returns the segments removed.
    pub fn compact(&self, live_ratio_max: f64) -> Result<Vec<u64>> {
        let shared = self.shared();
        let _compaction = shared.compaction.lock();
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
                // A retained message (RFC 2180, `state/retained.rs`) may still be
                // read there; a later run deletes the segment.
                if state.bodies().any(|(_, b)| b.loc.segment == id)
                    || state.retained.uses_segment(id)
                {
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
}
