//! The log: segment files of checksummed records. This file holds the byte layout
//! (segment headers, records, batch payloads); `segment` the open segments and the
//! writer's tail; `recover` the checks and the repair run at open.
//!
//! Layout. A segment file `NNNNNNNNNNNNNNNN.seg` (hex number) starts with a 32-byte
//! header (magic, segment number, CRC32C, format version) followed by records. A record is a 32-byte
//! header — CRC32C, payload length, sequence number, write time, kind, its index in the
//! group it was written with — and a payload. The CRC covers the header after the CRC
//! field and the whole payload. A batch is exactly one record, so a batch is atomic:
//! its checksum either verifies or it does not. A segment that is full ends with a
//! `Seal` record. Zeros after the last record are space made ready for records (see
//! `segment`), not part of the log.
//!
//! Invariants:
//! - Sequence numbers are consecutive across all segments, starting at 1.
//! - A record is acknowledged only after the `fdatasync` that covers it returned.
//! - A segment's header is synced, and the directory fsynced, before the first record
//!   is written to it; so a torn write can only ever be at the end of the last segment.
//! - A group of records is written only after the `fdatasync` of the group before it
//!   returned, so after a crash only the last group can be partly on disk, in any
//!   order of its pages when it overwrote space made ready for it.
//! - Recovery accepts exactly one kind of damage: an unverifiable tail of the last
//!   segment after which no verifiable record follows but the rest of its own group.
//!   It truncates it. Everything else is an error naming the file and offset.

use crate::io::Vfs;
use crate::model::{Loc, Op, UnixTime};
use crate::{Error, FORMAT_VERSION};

mod recover;
mod segment;

pub use recover::recover;
pub use segment::{create_segment, Bytes, Segment, Tail, READY_SEGMENT_NAME};

/// Bytes of a segment header.
pub const SEGMENT_HEADER_LEN: u64 = 32;
/// Bytes of a record header.
pub const RECORD_HEADER_LEN: usize = 32;
const SEGMENT_MAGIC: &[u8; 8] = b"LBSEG001";
/// Largest payload of one record (one batch).
pub const RECORD_PAYLOAD_MAX: u64 = 1 << 30;

/// A record's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One batch of ops and their blobs.
    Batch = 1,
    /// The end of a full segment.
    Seal = 2,
    /// One batch of the cluster's replicated log (format version 2): a [`ReplicaTag`]
    /// then the same payload as a `Batch`.
    Replicated = 3,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Batch),
            2 => Some(Kind::Seal),
            3 => Some(Kind::Replicated),
            _ => None,
        }
    }
}

/// Where a replicated batch comes from: its place in the cluster's log, and the node
/// and request that published it (so that node can answer its caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaTag {
    /// Sequence in the replicated log.
    pub stream_seq: u64,
    /// The publishing store's random id.
    pub origin: u64,
    /// The publisher's number for the batch.
    pub nonce: u64,
}

/// Bytes of an encoded [`ReplicaTag`].
pub const REPLICA_TAG_LEN: usize = 24;

impl ReplicaTag {
    /// `stream_seq | origin | nonce`, little-endian.
    pub fn encode(&self) -> [u8; REPLICA_TAG_LEN] {
        let mut out = [0u8; REPLICA_TAG_LEN];
        out[0..8].copy_from_slice(&self.stream_seq.to_le_bytes());
        out[8..16].copy_from_slice(&self.origin.to_le_bytes());
        out[16..24].copy_from_slice(&self.nonce.to_le_bytes());
        out
    }

    /// The tag at the start of `bytes`.
    pub fn decode(bytes: &[u8]) -> Option<ReplicaTag> {
        let u64_at = |at: usize| {
            bytes
                .get(at..at + 8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        };
        Some(ReplicaTag {
            stream_seq: u64_at(0)?,
            origin: u64_at(8)?,
            nonce: u64_at(16)?,
        })
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

/// A segment header: magic (8 bytes), segment number (8), CRC32C of every other byte
/// of the header (4), format version (4), zeros (8). Every version keeps this layout.
fn segment_header(id: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[0..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..16].copy_from_slice(&id.to_le_bytes());
    h[20..24].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let crc = segment_header_crc(&h);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

fn segment_header_crc(h: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&h[0..16]), &h[20..32])
}

/// Verifies a segment header; returns its format version. A header from before
/// versions were recorded has zeros after the CRC, which covers only the bytes before
/// it: it is version 1.
fn check_segment_header(bytes: &[u8], id: u64) -> Result<u32, String> {
    let Some(h) = bytes.get(..SEGMENT_HEADER_LEN as usize) else {
        return Err("segment header is short".into());
    };
    if &h[0..8] != SEGMENT_MAGIC {
        return Err("bad segment magic".into());
    }
    let crc = u32::from_le_bytes(h[16..20].try_into().expect("4 bytes"));
    let version = u32::from_le_bytes(h[20..24].try_into().expect("4 bytes"));
    let legacy = version == 0 && h[20..32] == [0; 12];
    let expected = if legacy {
        crc32c::crc32c(&h[0..16])
    } else {
        segment_header_crc(h)
    };
    if crc != expected {
        return Err("segment header checksum mismatch".into());
    }
    let stored = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
    if stored != id {
        return Err(format!("segment header says segment {stored}"));
    }
    match version {
        0 if legacy => Ok(1),
        0 => Err("segment header names format version 0".into()),
        version => Ok(version),
    }
}

/// The format version in a segment's header (`None` if it does not verify).
pub fn segment_version(segment: &Segment) -> Option<u32> {
    let map = segment.current().ok()?;
    check_segment_header((*map).as_ref(), segment.id).ok()
}

/// Appends one record, the first of its group, to `buf`. `parts` are concatenated
/// into the payload.
pub fn encode_record(buf: &mut Vec<u8>, seq: u64, time: UnixTime, kind: Kind, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let start = buf.len();
    encode_record_header(buf, seq, time, kind, len as u64, 0);
    for part in parts {
        buf.extend_from_slice(part);
    }
    let crc = crc32c::crc32c(&buf[start + 4..]);
    buf[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Appends a record's header for a payload of `len` bytes, record `in_group` of the
/// group it is written with (0 for the first), with a zero checksum: the caller writes
/// the checksum of the header's last 28 bytes and the payload over its first 4 (a
/// record whose checksum was not written does not verify).
pub fn encode_record_header(
    buf: &mut Vec<u8>,
    seq: u64,
    time: UnixTime,
    kind: Kind,
    len: u64,
    in_group: u32,
) {
    debug_assert!(len <= RECORD_PAYLOAD_MAX);
    buf.extend_from_slice(&[0u8; 4]);
    buf.extend_from_slice(&(len as u32).to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&time.to_le_bytes());
    buf.push(kind as u8);
    buf.extend_from_slice(&in_group.to_le_bytes());
    buf.extend_from_slice(&[0u8; 3]);
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
    /// Its index in the group it was written with (0 for the first; always 0 before
    /// format version 3).
    pub in_group: u32,
}

impl RecordView<'_> {
    /// The sequence number of the first record of its group.
    pub fn group_seq(&self) -> u64 {
        self.seq.saturating_sub(u64::from(self.in_group))
    }
}

/// Whether `seg` holds nothing but zeros from `offset` on: space made ready for
/// records, or the end.
pub fn unused_from(seg: &[u8], offset: u64) -> bool {
    seg.get(offset as usize..)
        .is_none_or(|rest| rest.iter().all(|&b| b == 0))
}

/// Decodes the record at `offset`; `Err` says why it does not verify.
pub fn decode_record(seg: &[u8], offset: u64) -> Result<RecordView<'_>, &'static str> {
    debug_assert!(offset >= SEGMENT_HEADER_LEN);
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
    let in_group = u32::from_le_bytes(header[25..29].try_into().expect("4 bytes"));
    if header[29..32] != [0u8; 3] {
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
        in_group,
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

/// A batch record decoded: its ops, its blobs' locations, and for a replicated batch
/// its tag.
pub type DecodedBatch = (Vec<Op>, Vec<Loc>, Option<ReplicaTag>);

/// Decodes a batch record (`Batch` or `Replicated`): its ops, its blobs' locations and
/// its replica tag.
pub fn decode_batch(segment: u64, record: &RecordView<'_>) -> Result<DecodedBatch, String> {
    let (tag, payload, payload_offset) = match record.kind {
        Kind::Replicated => {
            let tag = ReplicaTag::decode(record.payload).ok_or("replica tag cut short")?;
            (
                Some(tag),
                &record.payload[REPLICA_TAG_LEN..],
                record.payload_offset + REPLICA_TAG_LEN as u64,
            )
        }
        _ => (None, record.payload, record.payload_offset),
    };
    let ops_len = payload
        .get(0..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or("batch payload too short")?;
    let ops_bytes = payload
        .get(4..4 + ops_len)
        .ok_or("batch op section cut short")?;
    let ops: Vec<Op> =
        postcard::from_bytes(ops_bytes).map_err(|e| format!("batch ops do not decode: {e}"))?;
    let mut offset = payload_offset + 4 + ops_len as u64;
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
    Ok((ops, locs, tag))
}

/// A position in the log: where the next record goes and what its sequence is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogPos {
    /// Segment number.
    pub segment: u64,
    /// Offset in the segment.
    pub offset: u64,
    /// Sequence number of the next record.
    pub next_seq: u64,
}

fn corrupt(fs: &dyn Vfs, id: u64, offset: u64, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        file: fs.describe(&segment_name(id)),
        offset,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_headers_carry_the_format_version() {
        let header = segment_header(7);
        assert_eq!(header[20..24], FORMAT_VERSION.to_le_bytes());
        assert_eq!(check_segment_header(&header, 7), Ok(FORMAT_VERSION));
        // Every byte is covered: the version, the padding.
        for at in [0, 9, 17, 21, 30] {
            let mut damaged = header;
            damaged[at] ^= 1;
            assert!(check_segment_header(&damaged, 7).is_err(), "byte {at}");
        }
        // Before versions were recorded: zeros after a CRC of the first 16 bytes.
        let mut legacy = [0u8; 32];
        legacy[0..8].copy_from_slice(SEGMENT_MAGIC);
        legacy[8..16].copy_from_slice(&7u64.to_le_bytes());
        let crc = crc32c::crc32c(&legacy[0..16]);
        legacy[16..20].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(check_segment_header(&legacy, 7), Ok(1));
        legacy[28] = 1;
        assert!(check_segment_header(&legacy, 7).is_err());
        // A newer version is reported as such (the caller refuses it).
        let mut newer = header;
        newer[20..24].copy_from_slice(&2u32.to_le_bytes());
        let crc = segment_header_crc(&newer);
        newer[16..20].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(check_segment_header(&newer, 7), Ok(2));
        assert_eq!(
            check_segment_header(&header, 8),
            Err("segment header says segment 7".to_string())
        );
    }
}
