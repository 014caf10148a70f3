//! The log: segment files of checksummed records, recovery, and the group-commit
//! writer.
//!
//! Layout. A segment file `NNNNNNNNNNNNNNNN.seg` (hex number) starts with a 32-byte
//! header (magic, segment number, CRC32C) followed by records. A record is a 32-byte
//! header — CRC32C, payload length, sequence number, write time, kind — and a payload.
//! The CRC covers the header after the CRC field and the whole payload. A batch is
//! exactly one record, so a batch is atomic: its checksum either verifies or it does
//! not. A segment that is full ends with a `Seal` record.
//!
//! Invariants:
//! - Sequence numbers are consecutive across all segments, starting at 1.
//! - A record is acknowledged only after the `fdatasync` that covers it returned.
//! - A segment's header is synced, and the directory fsynced, before the first record
//!   is written to it; so a torn write can only ever be at the end of the last segment.
//! - Recovery accepts exactly one kind of damage: an unverifiable tail of the last
//!   segment after which no verifiable record follows. It truncates it. Everything
//!   else is an error naming the file and offset.

use std::collections::BTreeMap;
use std::io;
use std::ops::Deref;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::io::{Map, VFile, Vfs};
use crate::model::{Loc, Op, UnixTime};
use crate::Error;

/// Bytes of a segment header.
pub const SEGMENT_HEADER_LEN: u64 = 32;
/// Bytes of a record header.
pub const RECORD_HEADER_LEN: usize = 32;
const SEGMENT_MAGIC: &[u8; 8] = b"LBSEG001";
/// Largest payload of one record (one batch).
pub const RECORD_PAYLOAD_MAX: u64 = 1 << 30;
/// How far past a bad record recovery looks for a later good one before it calls the
/// bad record a torn tail.
const TORN_SEQ_WINDOW: u64 = 1 << 20;

/// A record's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One batch of ops and their blobs.
    Batch = 1,
    /// The end of a full segment.
    Seal = 2,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Batch),
            2 => Some(Kind::Seal),
            _ => None,
        }
    }
}

/// File name of segment `id`.
pub fn segment_name(id: u64) -> String {
    format!("{id:016x}.seg")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".seg")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

fn segment_header(id: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[0..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..16].copy_from_slice(&id.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..16]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

fn check_segment_header(bytes: &[u8], id: u64) -> Result<(), String> {
    if bytes.len() < SEGMENT_HEADER_LEN as usize {
        return Err("segment header is short".into());
    }
    if &bytes[0..8] != SEGMENT_MAGIC {
        return Err("bad segment magic".into());
    }
    let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    if crc != crc32c::crc32c(&bytes[0..16]) {
        return Err("segment header checksum mismatch".into());
    }
    let stored = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    if stored != id {
        return Err(format!("segment header says segment {stored}"));
    }
    Ok(())
}

/// Appends one record to `buf`. `parts` are concatenated into the payload.
pub fn encode_record(buf: &mut Vec<u8>, seq: u64, time: UnixTime, kind: Kind, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let start = buf.len();
    buf.extend_from_slice(&[0u8; 4]);
    buf.extend_from_slice(&(len as u32).to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&time.to_le_bytes());
    buf.push(kind as u8);
    buf.extend_from_slice(&[0u8; 7]);
    for part in parts {
        buf.extend_from_slice(part);
    }
    let crc = crc32c::crc32c(&buf[start + 4..]);
    buf[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// A record that verified.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Write time.
    pub time: UnixTime,
    /// Kind.
    pub kind: Kind,
    /// Payload.
    pub payload: &'a [u8],
    /// Offset of the payload in the segment.
    pub payload_offset: u64,
    /// Offset just past the record.
    pub end: u64,
}

/// Decodes the record at `offset`; `Err` says why it does not verify.
pub fn decode_record(seg: &[u8], offset: u64) -> Result<RecordView<'_>, &'static str> {
    let off = offset as usize;
    let Some(header) = seg.get(off..off + RECORD_HEADER_LEN) else {
        return Err("record header cut short");
    };
    let crc = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
    let len = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
    let seq = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    let time = i64::from_le_bytes(header[16..24].try_into().expect("8 bytes"));
    let Some(kind) = Kind::from_u8(header[24]) else {
        return Err("bad record kind");
    };
    if header[25..32] != [0u8; 7] {
        return Err("bad record header padding");
    }
    let payload_start = off + RECORD_HEADER_LEN;
    let Some(payload) = seg.get(payload_start..payload_start + len) else {
        return Err("record payload cut short");
    };
    let computed = crc32c::crc32c_append(crc32c::crc32c(&header[4..]), payload);
    if computed != crc {
        return Err("record checksum mismatch");
    }
    Ok(RecordView {
        seq,
        time,
        kind,
        payload,
        payload_offset: payload_start as u64,
        end: (payload_start + len) as u64,
    })
}

/// Encodes a batch payload's op section: `u32 length | postcard(ops)`.
pub fn encode_ops(ops: &[Op]) -> Result<Vec<u8>, Error> {
    let body = postcard::to_allocvec(ops)
        .map_err(|e| Error::Invalid(format!("cannot encode batch: {e}")))?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Blob lengths of a batch's ops, in order.
pub fn blob_lens(ops: &[Op]) -> impl Iterator<Item = u64> + '_ {
    ops.iter().filter_map(|op| match op {
        Op::PutBody { len } | Op::RelocateBody { len, .. } => Some(*len),
        _ => None,
    })
}

/// Decodes a batch record's ops and computes its blobs' locations.
pub fn decode_batch(segment: u64, record: &RecordView<'_>) -> Result<(Vec<Op>, Vec<Loc>), String> {
    let payload = record.payload;
    let ops_len = payload
        .get(0..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or("batch payload too short")?;
    let ops_bytes = payload
        .get(4..4 + ops_len)
        .ok_or("batch op section cut short")?;
    let ops: Vec<Op> =
        postcard::from_bytes(ops_bytes).map_err(|e| format!("batch ops do not decode: {e}"))?;
    let mut offset = record.payload_offset + 4 + ops_len as u64;
    let mut locs = Vec::new();
    for len in blob_lens(&ops) {
        locs.push(Loc {
            segment,
            offset,
            len,
        });
        offset += len;
    }
    if offset != record.end {
        return Err("batch blob lengths do not match the record".into());
    }
    Ok((ops, locs))
}

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
    fn new(id: u64, file: Box<dyn VFile>) -> io::Result<Segment> {
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

    /// A map of the whole segment as it is now.
    pub fn current(&self) -> io::Result<Map> {
        self.map_to(self.file.size()?)
    }

    /// Bytes at `loc`.
    pub fn read(&self, loc: Loc) -> io::Result<Bytes> {
        let map = self.map_to(loc.offset + loc.len)?;
        Ok(Bytes {
            map,
            start: loc.offset as usize,
            end: (loc.offset + loc.len) as usize,
        })
    }
}

/// A position in the log: where the next record goes and what its sequence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogPos {
    /// Segment number.
    pub segment: u64,
    /// Offset in the segment.
    pub offset: u64,
    /// Sequence number of the next record.
    pub next_seq: u64,
}

/// What recovery found: open segments and where to write next.
pub struct Recovered {
    /// Every segment, by number.
    pub segments: BTreeMap<u64, Arc<Segment>>,
    /// Where the next record goes. `offset == 0` means the segment is sealed and the
    /// writer must start a new one.
    pub tail: LogPos,
    /// Records replayed.
    pub replayed: u64,
    /// Bytes of torn tail truncated.
    pub truncated: u64,
}

fn corrupt(fs: &dyn Vfs, id: u64, offset: u64, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        file: fs.describe(&segment_name(id)),
        offset,
        reason: reason.into(),
    }
}

/// Whether any verifiable record with a sequence number at or after `seq` starts in
/// `seg[from..]`. Used to tell a torn tail (none) from damage in the middle of the log.
fn later_record_exists(seg: &[u8], from: u64, seq: u64) -> bool {
    let mut off = from as usize;
    while off + RECORD_HEADER_LEN <= seg.len() {
        let h = &seg[off..off + RECORD_HEADER_LEN];
        let s = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
        if Kind::from_u8(h[24]).is_some() && s >= seq && s < seq + TORN_SEQ_WINDOW {
            if let Ok(r) = decode_record(seg, off as u64) {
                if r.seq >= seq {
                    return true;
                }
            }
        }
        off += 1;
    }
    false
}

/// Opens every segment, verifies the records from `start` on, feeds each batch to
/// `apply`, and truncates a torn tail of the last segment.
pub fn recover(
    fs: &dyn Vfs,
    start: Option<LogPos>,
    mut apply: impl FnMut(u64, UnixTime, Vec<Op>, Vec<Loc>) -> Result<(), Error>,
) -> Result<Recovered, Error> {
    let mut ids: Vec<u64> = fs
        .list()
        .map_err(Error::io("listing the store directory"))?
        .iter()
        .filter_map(|n| parse_segment_name(n))
        .collect();
    ids.sort_unstable();
    let mut segments = BTreeMap::new();
    let mut replayed = 0;
    let mut truncated = 0;

    if ids.is_empty() {
        if start.is_some() {
            return Err(Error::Corrupt {
                file: fs.describe(""),
                offset: 0,
                reason: "the checkpoint names log segments, but there are none".into(),
            });
        }
        return Ok(Recovered {
            segments,
            tail: LogPos {
                segment: 0,
                offset: 0,
                next_seq: 1,
            },
            replayed,
            truncated,
        });
    }

    let mut pos = match start {
        Some(pos) => {
            if !ids.contains(&pos.segment) {
                return Err(corrupt(
                    fs,
                    pos.segment,
                    0,
                    "segment named by the checkpoint is missing",
                ));
            }
            pos
        }
        None => LogPos {
            segment: ids[0],
            offset: SEGMENT_HEADER_LEN,
            next_seq: 1,
        },
    };
    let last = *ids.last().expect("not empty");
    let mut sealed = false;

    for &id in &ids {
        let name = segment_name(id);
        let file = fs
            .open(&name, false)
            .map_err(Error::io(format!("opening {}", fs.describe(&name))))?;
        let len = file
            .size()
            .map_err(Error::io(format!("reading {}", fs.describe(&name))))?;
        let segment =
            Segment::new(id, file).map_err(Error::io(format!("mapping {}", fs.describe(&name))))?;
        let map = segment.map.read().clone();
        let bytes = (*map).as_ref();
        if let Err(reason) = check_segment_header(bytes, id) {
            // The writer syncs a new segment's header before writing records to it,
            // so a last segment holding no more than a damaged header never held an
            // acknowledged record: it is an interrupted creation.
            if id == last && len <= SEGMENT_HEADER_LEN && id != ids[0] {
                fs.remove(&name)
                    .map_err(Error::io(format!("removing {}", fs.describe(&name))))?;
                fs.sync_dir()
                    .map_err(Error::io("syncing the store directory"))?;
                break;
            }
            return Err(corrupt(fs, id, 0, reason));
        }
        if id < pos.segment {
            segments.insert(id, Arc::new(segment));
            continue;
        }
        let mut offset = if id == pos.segment {
            pos.offset
        } else {
            SEGMENT_HEADER_LEN
        };
        if id == pos.segment && offset == 0 {
            // The checkpoint was taken when this segment had just been sealed.
            segments.insert(id, Arc::new(segment));
            sealed = true;
            continue;
        }
        sealed = false;
        while offset < len {
            match decode_record(bytes, offset) {
                Ok(record) => {
                    if record.seq != pos.next_seq {
                        return Err(corrupt(
                            fs,
                            id,
                            offset,
                            format!(
                                "sequence {} where {} was expected",
                                record.seq, pos.next_seq
                            ),
                        ));
                    }
                    match record.kind {
                        Kind::Batch => {
                            let (ops, locs) = decode_batch(id, &record)
                                .map_err(|reason| corrupt(fs, id, offset, reason))?;
                            apply(record.seq, record.time, ops, locs)?;
                        }
                        Kind::Seal => {
                            if record.end != len {
                                return Err(corrupt(
                                    fs,
                                    id,
                                    record.end,
                                    "data after the seal record",
                                ));
                            }
                            sealed = true;
                        }
                    }
                    replayed += 1;
                    pos.next_seq += 1;
                    offset = record.end;
                }
                Err(reason) => {
                    if id != last {
                        return Err(corrupt(fs, id, offset, reason));
                    }
                    if later_record_exists(bytes, offset + 1, pos.next_seq) {
                        return Err(corrupt(
                            fs,
                            id,
                            offset,
                            format!("{reason}, and valid records follow: not a torn tail"),
                        ));
                    }
                    tracing::warn!(
                        segment = %fs.describe(&name),
                        offset,
                        bytes = len - offset,
                        "truncating a torn tail ({reason})"
                    );
                    truncated = len - offset;
                    segment
                        .file
                        .set_len(offset)
                        .and_then(|_| segment.file.sync_data())
                        .map_err(Error::io(format!("truncating {}", fs.describe(&name))))?;
                    break;
                }
            }
        }
        if id != last && !sealed {
            return Err(corrupt(
                fs,
                id,
                offset,
                "segment ends without a seal record",
            ));
        }
        pos.segment = id;
        pos.offset = offset;
        segments.insert(id, Arc::new(segment));
    }
    if sealed {
        pos.offset = 0;
    }
    Ok(Recovered {
        segments,
        tail: pos,
        replayed,
        truncated,
    })
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
        self.segment.file.write_at(self.pos.offset, buf)?;
        self.segment.file.sync_data()?;
        self.pos.offset += buf.len() as u64;
        Ok(())
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
