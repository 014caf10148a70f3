//! Snapshots: the whole store as one stream of bytes (the state and every live body),
//! for a cluster node that joins empty or fell behind what the cluster's log still
//! holds; and the restore that builds a store from one.
//!
//! Layout: `LBSNAP01`, then a checkpoint file's contents (length-prefixed), then for
//! each live body its id, length and bytes, then a CRC32C of everything before it.
//!
//! Invariants:
//! - A snapshot is one consistent state: taken under the state's read lock, with the
//!   cluster's log sequence that state includes; compaction waits while the bodies are
//!   read, so every body is where the state says.
//! - A restore writes a new store beside the target and renames it into place only
//!   once the whole snapshot verified and the files are synced, so a crash leaves no
//!   half store.

use std::io::{Read, Write};
use std::path::Path;

use super::checkpoint::{checkpoint_bytes, decode_checkpoint, CHECKPOINT_NAME};
use super::Store;
use crate::io::{self, RealFs, Vfs};
use crate::log::{self, Kind, LogPos, Tail, RECORD_HEADER_LEN};
use crate::model::*;
use crate::{Error, Result};

const SNAPSHOT_MAGIC: &[u8; 8] = b"LBSNAP01";
/// Bytes of records written per sync while restoring.
const RESTORE_SYNC_BYTES: usize = 8 << 20;
/// A restored segment is sealed past this size (the store's default).
const RESTORE_SEGMENT_BYTES: u64 = 64 << 20;

/// A writer that keeps the CRC32C of what passes.
struct Crc<W> {
    inner: W,
    crc: u32,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that keeps the CRC32C of what passes.
struct CrcRead<R> {
    inner: R,
    crc: u32,
}

impl<R: Read> Read for CrcRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }
}

fn write_error(e: std::io::Error) -> Error {
    Error::Io {
        context: "writing a snapshot".into(),
        source: e,
    }
}

impl Store {
    /// Writes a snapshot of the whole store to `out`; returns the last sequence of the
    /// cluster's log it includes.
    pub fn snapshot(&self, out: impl Write) -> Result<u64> {
        let shared = self.shared();
        let _compaction = shared.compaction.lock();
        let (checkpoint, applied_seq, bodies) = {
            let state = shared.state.read();
            let applied_seq = shared
                .applied_seq
                .load(std::sync::atomic::Ordering::Acquire);
            let mut bodies: Vec<(BodyId, Loc)> =
                state.bodies().map(|(id, info)| (*id, info.loc)).collect();
            bodies.sort_by_key(|(id, _)| *id);
            // Encoded outside the lock: the writer applies commits meanwhile.
            (state.clone(), applied_seq, bodies)
        };
        let checkpoint = checkpoint_bytes(LogPos::default(), &checkpoint, applied_seq)?;
        let mut out = Crc { inner: out, crc: 0 };
        out.write_all(SNAPSHOT_MAGIC).map_err(write_error)?;
        out.write_all(&(checkpoint.len() as u64).to_le_bytes())
            .map_err(write_error)?;
        out.write_all(&checkpoint).map_err(write_error)?;
        out.write_all(&(bodies.len() as u64).to_le_bytes())
            .map_err(write_error)?;
        for (id, loc) in bodies {
            let segment = shared
                .segments
                .read()
                .get(&loc.segment)
                .cloned()
                .ok_or_else(|| {
                    Error::Invalid(format!("segment {} of body {id} is gone", loc.segment))
                })?;
            let bytes = segment
                .read(loc)
                .map_err(Error::io(format!("reading body {id}")))?;
            out.write_all(&id.0.to_le_bytes()).map_err(write_error)?;
            out.write_all(&loc.len.to_le_bytes()).map_err(write_error)?;
            out.write_all(&bytes).map_err(write_error)?;
        }
        let crc = out.crc;
        out.inner
            .write_all(&crc.to_le_bytes())
            .map_err(write_error)?;
        out.inner.flush().map_err(write_error)?;
        Ok(applied_seq)
    }

    /// Builds the store `dir` from a snapshot; `dir` must not exist. Returns the last
    /// sequence of the cluster's log the store includes. Open it with [`Store::open`].
    pub fn restore(dir: &Path, input: impl Read) -> Result<u64> {
        if dir.exists() {
            return Err(Error::Invalid(format!(
                "{} exists: a snapshot is restored into a new store",
                dir.display()
            )));
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "store".into());
        let building = dir.with_file_name(format!("{name}.restoring"));
        if building.exists() {
            // A restore that did not finish.
            std::fs::remove_dir_all(&building)
                .map_err(Error::io(format!("removing {}", building.display())))?;
        }
        let applied_seq = restore_into(&building, input)?;
        std::fs::rename(&building, dir).map_err(Error::io(format!(
            "renaming {} to {}",
            building.display(),
            dir.display()
        )))?;
        if let Some(parent) = dir.parent() {
            io::sync_dir(parent).map_err(Error::io(format!("syncing {}", parent.display())))?;
        }
        tracing::info!(dir = %dir.display(), applied_seq, "store restored from a snapshot");
        Ok(applied_seq)
    }
}

fn restore_into(dir: &Path, input: impl Read) -> Result<u64> {
    let bad = |why: &str| Error::Invalid(format!("snapshot: {why}"));
    let read_error = |e: std::io::Error| Error::Io {
        context: "reading a snapshot".into(),
        source: e,
    };
    let mut input = CrcRead {
        inner: std::io::BufReader::new(input),
        crc: 0,
    };
    let mut u64_buf = [0u8; 8];
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic).map_err(read_error)?;
    if &magic != SNAPSHOT_MAGIC {
        return Err(bad("not a snapshot"));
    }
    let mut read_u64 = |input: &mut CrcRead<_>| -> Result<u64> {
        input.read_exact(&mut u64_buf).map_err(read_error)?;
        Ok(u64::from_le_bytes(u64_buf))
    };
    // Lengths are read from the snapshot before its checksum can be checked: what
    // they announce is read as it comes, never allocated ahead, so a damaged one
    // fails as cut short instead of asking for any amount of memory.
    let read_bytes = |input: &mut CrcRead<_>, len: u64, what: &str| -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        input
            .by_ref()
            .take(len)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        if bytes.len() as u64 != len {
            return Err(bad(&format!("{what} cut short")));
        }
        Ok(bytes)
    };
    let checkpoint_len = read_u64(&mut input)?;
    let checkpoint = read_bytes(&mut input, checkpoint_len, "checkpoint")?;
    let (_, mut state, applied_seq) = decode_checkpoint(&checkpoint, "snapshot")?;
    let count = read_u64(&mut input)?;

    let fs = RealFs::new(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    let segment = log::create_segment(&fs, 1)?;
    let pos = LogPos {
        segment: 1,
        offset: log::SEGMENT_HEADER_LEN,
        next_seq: 1,
    };
    // Written once and synced every few MiB: nothing made ready.
    let mut tail = Tail::new(segment, pos, 0);
    let mut buf: Vec<u8> = Vec::new();
    let flush = |tail: &mut Tail, buf: &mut Vec<u8>, records: u64| -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        tail.append_durable(buf)
            .map_err(Error::io(format!("writing {}", dir.display())))?;
        tail.pos.next_seq += records;
        buf.clear();
        Ok(())
    };
    let mut pending_records = 0;
    let mut placed = 0usize;
    for _ in 0..count {
        let id = BodyId(read_u64(&mut input)?);
        let len = read_u64(&mut input)?;
        let bytes = read_bytes(&mut input, len, "body")?;
        if tail.pos.offset + buf.len() as u64 >= RESTORE_SEGMENT_BYTES {
            flush(&mut tail, &mut buf, pending_records)?;
            pending_records = 0;
            tail.roll(&fs, now())?;
        }
        // A record that only carries the bytes; the checkpoint written last says where
        // each body is, so these records are never replayed.
        let ops = log::encode_ops(&[Op::RelocateBody { id, len }])?;
        let record_offset = tail.pos.offset + buf.len() as u64;
        log::encode_record(
            &mut buf,
            tail.pos.next_seq + pending_records,
            now(),
            Kind::Batch,
            &[&ops, &bytes],
        );
        pending_records += 1;
        let loc = Loc {
            segment: tail.segment.id,
            offset: record_offset + RECORD_HEADER_LEN as u64 + ops.len() as u64,
            len,
        };
        if !state.set_body_loc(id, loc) {
            return Err(bad(&format!("body {id} is not in the state")));
        }
        placed += 1;
        if buf.len() >= RESTORE_SYNC_BYTES {
            flush(&mut tail, &mut buf, pending_records)?;
            pending_records = 0;
        }
    }
    flush(&mut tail, &mut buf, pending_records)?;
    let computed = input.crc;
    let mut crc = [0u8; 4];
    input.inner.read_exact(&mut crc).map_err(read_error)?;
    if u32::from_le_bytes(crc) != computed {
        return Err(bad("checksum mismatch"));
    }
    if placed != state.bodies().count() {
        return Err(bad("a body of the state is missing"));
    }
    let checkpoint = checkpoint_bytes(tail.pos, &state, applied_seq)?;
    let file = fs
        .open(CHECKPOINT_NAME, true)
        .map_err(Error::io("writing the checkpoint"))?;
    file.write_at(0, &checkpoint)
        .and_then(|_| file.sync_data())
        .map_err(Error::io("writing the checkpoint"))?;
    fs.sync_dir()
        .map_err(Error::io(format!("syncing {}", dir.display())))?;
    Ok(applied_seq)
}
