//! Open segments, shared by the writer and readers, and the writer's end of the log.
//!
//! Invariant: a segment's map never reaches past what was written to its file, and a
//! reader only asks for bytes of records that are durable, so what it reads is there.

use std::io;
use std::ops::Deref;
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
    map: RwLock<Map>,
}

impl Segment {
    pub(super) fn new(id: u64, file: Box<dyn VFile>) -> io::Result<Segment> {
        let map = file.map()?;
        Ok(Segment {
            id,
            file,
            map: RwLock::new(map),
        })
    }

    /// The segment's current map, remapped first if it does not reach `end`.
    pub fn map_to(&self, end: u64) -> io::Result<Map> {
        let map = self.map.read().clone();
        if (*map).as_ref().len() as u64 >= end {
            return Ok(map);
        }
        let fresh = self.file.map()?;
        if ((*fresh).as_ref().len() as u64) < end {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("segment {} is shorter than {end} bytes", self.id),
            ));
        }
        *self.map.write() = fresh.clone();
        Ok(fresh)
    }

    /// Cuts the file at `len` durably, and maps it afresh so that no view of it
    /// reaches past its end.
    pub(super) fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.file.sync_data()?;
        *self.map.write() = self.file.map()?;
        Ok(())
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

/// The writer's view of the end of the log.
pub struct Tail {
    /// The segment being appended to.
    pub segment: Arc<Segment>,
    /// Where the next record goes.
    pub pos: LogPos,
}

impl Tail {
    /// Writes `buf` (whole records) at the end and makes it durable.
    pub fn append_durable(&mut self, buf: &[u8]) -> io::Result<()> {
        // Whole records, the first with the next sequence number, right at the end.
        debug_assert!(buf.len() >= RECORD_HEADER_LEN);
        debug_assert_eq!(
            u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes")),
            self.pos.next_seq
        );
        debug_assert!(self.pos.offset >= SEGMENT_HEADER_LEN);
        debug_assert_eq!(self.segment.file.size().ok(), Some(self.pos.offset));
        self.segment.file.write_at(self.pos.offset, buf)?;
        self.segment.file.sync_data()?;
        self.pos.offset += buf.len() as u64;
        Ok(())
    }

    /// Writes `buf` at the end, without a sync: part of a group [`Tail::sync`] makes
    /// durable.
    pub fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        debug_assert!(self.pos.offset >= SEGMENT_HEADER_LEN);
        self.segment.file.write_at(self.pos.offset, buf)?;
        self.pos.offset += buf.len() as u64;
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
        self.segment.file.sync_data()
    }

    /// Seals the current segment (if it is open) and starts segment `id`.
    pub fn roll(&mut self, fs: &dyn Vfs, time: UnixTime) -> Result<Arc<Segment>, Error> {
        if self.pos.offset != 0 {
            let mut buf = Vec::with_capacity(RECORD_HEADER_LEN);
            encode_record(&mut buf, self.pos.next_seq, time, Kind::Seal, &[]);
            self.append_durable(&buf).map_err(Error::io(format!(
                "sealing {}",
                fs.describe(&segment_name(self.segment.id))
            )))?;
            self.pos.next_seq += 1;
        }
        let id = self.segment.id + 1;
        let segment = create_segment(fs, id)?;
        self.segment = segment.clone();
        self.pos = LogPos {
            segment: id,
            offset: SEGMENT_HEADER_LEN,
            next_seq: self.pos.next_seq,
        };
        Ok(segment)
    }
}
