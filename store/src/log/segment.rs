//! Open segments, shared by the writer and readers, and the writer's end of the log.
//!
//! Invariant: a segment's map never reaches past what was written to its file, and a
//! reader only asks for bytes of records that are durable, so what it reads is there.

use std::io;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use super::{
    encode_record, segment_header, segment_name, Kind, LogPos, RECORD_HEADER_LEN,
    SEGMENT_HEADER_LEN,
};
use crate::io::{Map, VFile, Vfs};
use crate::model::{Loc, UnixTime};
use crate::Error;

/// Bytes of a stored body, borrowed from a segment's map.
#[derive(Clone)]
pub struct Bytes {
    map: Map,
    start: usize,
    end: usize,
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &(*self.map).as_ref()[self.start..self.end]
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.end - self.start)
    }
}

/// An open segment, shared by the writer and readers.
pub struct Segment {
    /// Segment number.
    pub id: u64,
    file: Box<dyn VFile>,
    /// The latest map, and how far into the file it is known to hold what was written.
    map: RwLock<(Map, u64)>,
    /// Where the writer's synced records end in this segment (its length, for a
    /// segment opened at recovery).
    synced: AtomicU64,
}

impl Segment {
    pub(super) fn new(id: u64, file: Box<dyn VFile>) -> io::Result<Segment> {
        let map = file.map()?;
        let len = (*map).as_ref().len() as u64;
        Ok(Segment {
            id,
            file,
            map: RwLock::new((map, len)),
            synced: AtomicU64::new(len),
        })
    }

    /// A map that holds the file's bytes up to `end`, taken afresh if the latest one
    /// is not known to. A map of the real file system shows later writes to the
    /// bytes it covers; another may be a copy, which holds only what was synced when
    /// it was taken (the bytes after it may be space made ready, zeros then).
    pub fn map_to(&self, end: u64) -> io::Result<Map> {
        {
            let map = self.map.read();
            if map.1 >= end {
                return Ok(map.0.clone());
            }
        }
        let synced = self.synced.load(Ordering::Acquire);
        let fresh = self.file.map()?;
        let len = (*fresh).as_ref().len() as u64;
        if len < end {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("segment {} is shorter than {end} bytes", self.id),
            ));
        }
        let holds = if self.file.maps_show_writes() {
            len
        } else {
            synced.min(len)
        };
        *self.map.write() = (fresh.clone(), holds);
        Ok(fresh)
    }

    /// Cuts the file at `len` durably, and maps it afresh so that no view of it
    /// reaches past its end.
    pub(super) fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.file.sync_data()?;
        let map = self.file.map()?;
        self.synced.store(len, Ordering::Release);
        *self.map.write() = (map, len);
        Ok(())
    }

    /// Records the end of what is synced, after a sync of the writer's.
    fn synced_to(&self, end: u64) {
        self.synced.store(end, Ordering::Release);
    }

    /// Records where the writer's records end when it takes this segment over after
    /// recovery: a copy mapped before holds no more than that.
    fn restart_at(&self, end: u64) {
        self.synced.store(end, Ordering::Release);
        let mut map = self.map.write();
        map.1 = map.1.min(end);
    }

    /// A map of the whole segment as it is now.
    pub fn current(&self) -> io::Result<Map> {
        self.map_to(self.file.size()?)
    }

    /// Bytes at `loc`.
    pub fn read(&self, loc: Loc) -> io::Result<Bytes> {
        // A body lies in the payload of a record of this segment.
        debug_assert_eq!(loc.segment, self.id);
        debug_assert!(loc.offset >= SEGMENT_HEADER_LEN + RECORD_HEADER_LEN as u64);
        let map = self.map_to(loc.offset + loc.len)?;
        Ok(Bytes {
            map,
            start: loc.offset as usize,
            end: (loc.offset + loc.len) as usize,
        })
    }
}

/// Creates segment `id` durably: header written and synced, directory synced.
pub fn create_segment(fs: &dyn Vfs, id: u64) -> Result<Arc<Segment>, Error> {
    let name = segment_name(id);
    let what = || format!("creating {}", fs.describe(&name));
    let file = fs.open(&name, true).map_err(Error::io(what()))?;
    file.set_len(0).map_err(Error::io(what()))?;
    file.write_at(0, &segment_header(id))
        .map_err(Error::io(what()))?;
    file.sync_data().map_err(Error::io(what()))?;
    fs.sync_dir().map_err(Error::io(what()))?;
    Ok(Arc::new(Segment::new(id, file).map_err(Error::io(what()))?))
}

/// Name of the file made ready to become the next segment.
pub const READY_SEGMENT_NAME: &str = "next-segment.ready";

/// Zeros to write from.
static ZEROS: [u8; 1 << 16] = [0; 1 << 16];

/// The next segment, made ready ahead of time: zeros written a piece at a time between
/// groups. Records then overwrite them, so a group's `fdatasync` writes its data and
/// nothing else: the file's size, and with it the file system's metadata, stays as it
/// is. (On ext4 an `fdatasync` that extends a file also commits the journal, which
/// takes about twice the time and the CPU.)
struct Ready {
    file: Box<dyn VFile>,
    /// Bytes of zeros written from the start.
    filled: u64,
}

/// The writer's view of the end of the log.
pub struct Tail {
    /// The segment being appended to.
    pub segment: Arc<Segment>,
    /// Where the next record goes.
    pub pos: LogPos,
    /// How many bytes of zeros the next segment is made ready with (0: none is).
    ready_len: u64,
    /// The next segment, while it is being made ready.
    ready: Option<Ready>,
    /// Making one ready failed: none is until the log moves to the next segment.
    ready_failed: bool,
    /// The segment file's length, once read (writes past it make it longer).
    len: Option<u64>,
}

impl Tail {
    /// The end of the log at `pos`, in `segment`; with `ready_len > 0` the next
    /// segment is made ready with that many bytes ([`Tail::prepare`]).
    pub fn new(segment: Arc<Segment>, pos: LogPos, ready_len: u64) -> Tail {
        if pos.offset != 0 {
            segment.restart_at(pos.offset);
        }
        Tail {
            segment,
            pos,
            ready_len,
            ready: None,
            ready_failed: false,
            len: None,
        }
    }

    /// The segment file's length: read once, then kept as records are appended.
    pub fn file_len(&mut self) -> io::Result<u64> {
        match self.len {
            Some(len) => Ok(len),
            None => {
                let len = self.segment.file.size()?;
                self.len = Some(len);
                Ok(len)
            }
        }
    }

    /// Records that the file is at least `end` bytes long after a write up to it.
    fn wrote_to(&mut self, end: u64) {
        if let Some(len) = &mut self.len {
            *len = (*len).max(end);
        }
    }

    /// Takes back a group whose write failed (the disk full, say): what it wrote from
    /// `from` (where it began) up to `upto` (where it would have ended) is undone, so
    /// that no record of it can turn up after the next group's and be taken for part
    /// of the log. Zeros go back where the file held space made ready, the file is cut
    /// back to `len_before` (its length when the group began), and it is synced; the
    /// next record goes at `from`.
    pub fn take_back(&mut self, from: u64, upto: u64, len_before: u64) -> io::Result<()> {
        debug_assert!(from >= SEGMENT_HEADER_LEN && from <= len_before);
        self.len = None;
        let mut at = from;
        let zeros_end = upto.min(len_before);
        while at < zeros_end {
            let n = (zeros_end - at).min(ZEROS.len() as u64);
            self.segment.file.write_at(at, &ZEROS[..n as usize])?;
            at += n;
        }
        if self.segment.file.size()? > len_before {
            self.segment.file.set_len(len_before)?;
        }
        self.pos.offset = from;
        self.sync()
    }

    /// Writes `buf` (whole records) at the end and makes it durable.
    pub fn append_durable(&mut self, buf: &[u8]) -> io::Result<()> {
        // Whole records, the first with the next sequence number, right at the end.
        debug_assert!(buf.len() >= RECORD_HEADER_LEN);
        debug_assert_eq!(
            u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes")),
            self.pos.next_seq
        );
        debug_assert!(self.pos.offset >= SEGMENT_HEADER_LEN);
        debug_assert!(self
            .segment
            .file
            .size()
            .is_ok_and(|len| len >= self.pos.offset));
        self.segment.file.write_at(self.pos.offset, buf)?;
        self.wrote_to(self.pos.offset + buf.len() as u64);
        self.segment.file.sync_data()?;
        self.pos.offset += buf.len() as u64;
        self.segment.synced_to(self.pos.offset);
        Ok(())
    }

    /// Writes `buf` at the end, without a sync: part of a group [`Tail::sync`] makes
    /// durable.
    pub fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        debug_assert!(self.pos.offset >= SEGMENT_HEADER_LEN);
        self.segment.file.write_at(self.pos.offset, buf)?;
        self.pos.offset += buf.len() as u64;
        self.wrote_to(self.pos.offset);
        Ok(())
    }

    /// Rewrites bytes appended since the last sync (a record's checksum, known once
    /// its payload was written).
    pub fn patch(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        debug_assert!(
            offset >= SEGMENT_HEADER_LEN && offset + bytes.len() as u64 <= self.pos.offset
        );
        self.segment.file.write_at(offset, bytes)
    }

    /// Makes what was appended durable.
    pub fn sync(&self) -> io::Result<()> {
        self.segment.file.sync_data()?;
        self.segment.synced_to(self.pos.offset);
        Ok(())
    }

    /// Writes up to `budget` more bytes of zeros into the next segment and asks the
    /// kernel to start writing them out, so that the sync at the roll finds little
    /// left to do. A failure (the disk full, say) costs only the speed-up: it is
    /// logged, the file removed, and the next segment is created when it is needed.
    pub fn prepare(&mut self, fs: &dyn Vfs, budget: u64) {
        if self.ready_len == 0 || self.ready_failed {
            return;
        }
        if let Err(e) = self.prepare_some(fs, budget) {
            tracing::warn!(
                file = %fs.describe(READY_SEGMENT_NAME),
                "cannot make the next log segment ready; it will be created when needed: {e}"
            );
            self.ready = None;
            self.ready_failed = true;
            let _ = fs.remove(READY_SEGMENT_NAME);
        }
    }

    fn prepare_some(&mut self, fs: &dyn Vfs, budget: u64) -> io::Result<()> {
        let ready = match &mut self.ready {
            Some(ready) => ready,
            None => {
                let file = fs.open(READY_SEGMENT_NAME, true)?;
                file.set_len(0)?;
                self.ready.insert(Ready { file, filled: 0 })
            }
        };
        let (from, to) = (ready.filled, self.ready_len.min(ready.filled + budget));
        while ready.filled < to {
            let n = (to - ready.filled).min(ZEROS.len() as u64) as usize;
            ready.file.write_at(ready.filled, &ZEROS[..n])?;
            ready.filled += n as u64;
        }
        if to > from {
            ready.file.start_writeback(from, to - from)?;
        }
        Ok(())
    }

    /// Seals the current segment (if it is open) and starts segment `id`: the one made
    /// ready if it is, a new file otherwise. When that fails the segment stays sealed
    /// (`pos.offset` 0), and a later roll only starts the next one.
    pub fn roll(&mut self, fs: &dyn Vfs, time: UnixTime) -> Result<Arc<Segment>, Error> {
        if self.pos.offset != 0 {
            let mut buf = Vec::with_capacity(RECORD_HEADER_LEN);
            encode_record(&mut buf, self.pos.next_seq, time, Kind::Seal, &[]);
            self.append_durable(&buf).map_err(Error::io(format!(
                "sealing {}",
                fs.describe(&segment_name(self.segment.id))
            )))?;
            self.pos.next_seq += 1;
            self.pos.offset = 0;
        }
        let id = self.segment.id + 1;
        self.ready_failed = false;
        let segment = match self.ready.take_if(|ready| ready.filled >= self.ready_len) {
            Some(ready) => install_ready(fs, ready, id)?,
            None => create_segment(fs, id)?,
        };
        self.segment = segment.clone();
        self.len = None;
        self.pos = LogPos {
            segment: id,
            offset: SEGMENT_HEADER_LEN,
            next_seq: self.pos.next_seq,
        };
        Ok(segment)
    }
}

/// Makes the file made ready segment `id`: header written and synced (with the zeros
/// still on their way), renamed, directory synced. Until the rename it is not part of
/// the log, and recovery removes it.
fn install_ready(fs: &dyn Vfs, ready: Ready, id: u64) -> Result<Arc<Segment>, Error> {
    let name = segment_name(id);
    let what = || format!("creating {}", fs.describe(&name));
    ready
        .file
        .write_at(0, &segment_header(id))
        .map_err(Error::io(what()))?;
    ready.file.sync_data().map_err(Error::io(what()))?;
    fs.rename(READY_SEGMENT_NAME, &name)
        .map_err(Error::io(what()))?;
    fs.sync_dir().map_err(Error::io(what()))?;
    let segment = Segment::new(id, ready.file).map_err(Error::io(what()))?;
    segment.restart_at(SEGMENT_HEADER_LEN);
    Ok(Arc::new(segment))
}
