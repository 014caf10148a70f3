//! Recovery: open every segment, verify and replay the records after the checkpoint,
//! and repair the one kind of damage a crash leaves.
//!
//! Each step below checks one thing and names the file and offset when it fails:
//! 1. [`segment_ids`]: the segment files, in order;
//! 2. [`start_position`]: where replay starts (the checkpoint's position, whose
//!    segment must exist, or the first segment);
//! 3. [`check_no_gap`]: from that segment on, no segment is missing (compaction only
//!    removes segments before the checkpoint's);
//! 4. [`open_segment`]: each header verifies and names a format version this build
//!    reads, except that a last segment holding no more than a damaged header is an
//!    interrupted creation and is removed;
//! 5. [`replay_segment`]: records verify, their sequence numbers run on without a gap,
//!    nothing but zeros (space made ready for records) follows the last record or a
//!    seal; each batch goes to `apply`;
//! 6. [`check_damage`]: a record that does not verify is a torn tail only at the end of
//!    the last segment with no verifiable record after it but the rest of its own
//!    group (written together, never acknowledged, and possibly on disk in any order
//!    of its pages), and [`truncate`] cuts it;
//! 7. [`check_sealed`]: every segment but the last ends with a seal.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{
    check_segment_header, corrupt, decode_batch, decode_record, parse_segment_name, segment_name,
    unused_from, Kind, LogPos, ReplicaTag, Segment, READY_SEGMENT_NAME, RECORD_HEADER_LEN,
    SEGMENT_HEADER_LEN,
};
use crate::io::Vfs;
use crate::model::{Loc, Op, UnixTime};
use crate::{Error, FORMAT_VERSION};

/// How far past a bad record recovery looks for a later good one before it calls the
/// bad record a torn tail.
const TORN_SEQ_WINDOW: u64 = 1 << 20;

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

/// One batch replayed.
#[derive(Debug)]
pub struct Replay {
    /// Its record's sequence number.
    pub seq: u64,
    /// Its record's write time.
    pub time: UnixTime,
    /// Its ops.
    pub ops: Vec<Op>,
    /// Where its blobs are.
    pub locs: Vec<Loc>,
    /// For a batch of the replicated log, its tag.
    pub replica: Option<ReplicaTag>,
}

/// Opens every segment, verifies the records from `start` on, feeds each batch to
/// `apply`, and truncates a torn tail of the last segment.
pub fn recover(
    fs: &dyn Vfs,
    start: Option<LogPos>,
    mut apply: impl FnMut(Replay) -> Result<(), Error>,
) -> Result<Recovered, Error> {
    // Before step 1: a segment made ready and not yet part of the log holds no record.
    crate::io::remove_leftover(fs, READY_SEGMENT_NAME)?;
    let ids = segment_ids(fs)?;
    let mut pos = start_position(fs, &ids, start)?;
    let mut recovered = Recovered {
        segments: BTreeMap::new(),
        tail: pos,
        replayed: 0,
        truncated: 0,
    };
    let Some(&last) = ids.last() else {
        return Ok(recovered);
    };
    check_no_gap(fs, &ids, pos.segment)?;
    let mut sealed = false;
    for &id in &ids {
        let Some(segment) = open_segment(fs, id, id == last && id != ids[0])? else {
            break;
        };
        let segment = Arc::new(segment);
        recovered.segments.insert(id, segment.clone());
        if id < pos.segment {
            continue;
        }
        if id == pos.segment && pos.offset == 0 {
            // The checkpoint was taken when this segment had just been sealed.
            sealed = true;
            continue;
        }
        let from = if id == pos.segment {
            pos.offset
        } else {
            SEGMENT_HEADER_LEN
        };
        let scan = replay_segment(fs, &segment, from, pos.next_seq, &mut apply)?;
        debug_assert_eq!(scan.next_seq, pos.next_seq + scan.records);
        debug_assert!(scan.end >= from);
        if let Some(reason) = scan.bad {
            check_damage(fs, &segment, scan.end, reason, scan.next_seq, id == last)?;
            recovered.truncated = truncate(fs, &segment, scan.end)?;
        }
        check_sealed(fs, id, &scan, id == last)?;
        recovered.replayed += scan.records;
        sealed = scan.sealed;
        pos = LogPos {
            segment: id,
            offset: scan.end,
            next_seq: scan.next_seq,
        };
    }
    if sealed {
        pos.offset = 0;
    }
    recovered.tail = pos;
    Ok(recovered)
}

/// Step 1: the numbers of the segment files, in order; other files are not the log's.
fn segment_ids(fs: &dyn Vfs) -> Result<Vec<u64>, Error> {
    let mut ids: Vec<u64> = fs
        .list()
        .map_err(Error::io("listing the store directory"))?
        .iter()
        .filter_map(|n| parse_segment_name(n))
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Step 2: where replay starts. Without a checkpoint, the first record of the first
/// segment, sequence 1; with one, its position, in a segment that must exist.
fn start_position(fs: &dyn Vfs, ids: &[u64], start: Option<LogPos>) -> Result<LogPos, Error> {
    match (start, ids.first()) {
        (None, None) => Ok(LogPos {
            segment: 0,
            offset: 0,
            next_seq: 1,
        }),
        (None, Some(&first)) => Ok(LogPos {
            segment: first,
            offset: SEGMENT_HEADER_LEN,
            next_seq: 1,
        }),
        (Some(_), None) => Err(Error::Corrupt {
            file: fs.describe(""),
            offset: 0,
            reason: "the checkpoint names log segments, but there are none".into(),
        }),
        (Some(pos), Some(_)) if !ids.contains(&pos.segment) => Err(corrupt(
            fs,
            pos.segment,
            0,
            "segment named by the checkpoint is missing",
        )),
        (Some(pos), Some(_)) => Ok(pos),
    }
}

/// Step 3: segments are numbered consecutively from the one replay starts in: a gap
/// there is a lost segment, whose records replay would silently skip.
fn check_no_gap(fs: &dyn Vfs, ids: &[u64], from: u64) -> Result<(), Error> {
    for pair in ids.windows(2) {
        if pair[0] >= from && pair[1] != pair[0] + 1 {
            return Err(corrupt(fs, pair[0] + 1, 0, "segment is missing"));
        }
    }
    Ok(())
}

/// Step 4: opens segment `id` and verifies its header. `None` when the header does not
/// verify, the file holds no more than a header and `may_be_unfinished` (the last
/// segment, not the first): the writer syncs a new segment's header before writing
/// records to it, so such a segment never held an acknowledged record. It is an
/// interrupted creation, and it is removed.
fn open_segment(fs: &dyn Vfs, id: u64, may_be_unfinished: bool) -> Result<Option<Segment>, Error> {
    let name = segment_name(id);
    let file = fs
        .open(&name, false)
        .map_err(Error::io(format!("opening {}", fs.describe(&name))))?;
    let segment =
        Segment::new(id, file).map_err(Error::io(format!("mapping {}", fs.describe(&name))))?;
    let map = segment
        .current()
        .map_err(Error::io(format!("mapping {}", fs.describe(&name))))?;
    let bytes = (*map).as_ref();
    let reason = match check_segment_header(bytes, id) {
        Ok(version) if version > FORMAT_VERSION => {
            return Err(Error::Version {
                file: fs.describe(&name),
                found: version,
                supported: FORMAT_VERSION,
            })
        }
        Ok(_) => return Ok(Some(segment)),
        Err(reason) => reason,
    };
    if may_be_unfinished && bytes.len() as u64 <= SEGMENT_HEADER_LEN {
        fs.remove(&name)
            .map_err(Error::io(format!("removing {}", fs.describe(&name))))?;
        fs.sync_dir()
            .map_err(Error::io("syncing the store directory"))?;
        return Ok(None);
    }
    Err(corrupt(fs, id, 0, reason))
}

/// What [`replay_segment`] read.
#[derive(Debug)]
struct Scan {
    /// Where reading stopped: the end of the segment, or the record that does not
    /// verify.
    end: u64,
    /// Why the record at `end` does not verify, if one does not.
    bad: Option<&'static str>,
    /// Whether the segment ended with a seal record.
    sealed: bool,
    /// Records that verified.
    records: u64,
    /// The sequence number the next record must have.
    next_seq: u64,
}

/// Step 5: reads the records of `segment` from `from` on, verifying each and their
/// sequence numbers (starting at `next_seq`), and feeds batches to `apply`. Stops at
/// the end or at the first record that does not verify, which the caller judges.
fn replay_segment(
    fs: &dyn Vfs,
    segment: &Segment,
    from: u64,
    mut next_seq: u64,
    apply: &mut impl FnMut(Replay) -> Result<(), Error>,
) -> Result<Scan, Error> {
    let map = segment.current().map_err(Error::io(format!(
        "reading {}",
        fs.describe(&segment_name(segment.id))
    )))?;
    let bytes = (*map).as_ref();
    let len = bytes.len() as u64;
    let (mut offset, mut records, mut sealed) = (from, 0, false);
    while offset < len {
        let record = match decode_record(bytes, offset) {
            Ok(record) => record,
            Err(_) if unused_from(bytes, offset) => break,
            Err(reason) => {
                return Ok(Scan {
                    end: offset,
                    bad: Some(reason),
                    sealed,
                    records,
                    next_seq,
                })
            }
        };
        debug_assert_eq!(record.payload_offset, offset + RECORD_HEADER_LEN as u64);
        debug_assert!(record.end >= record.payload_offset && record.end <= len);
        if record.seq != next_seq {
            let reason = format!("sequence {} where {next_seq} was expected", record.seq);
            return Err(corrupt(fs, segment.id, offset, reason));
        }
        match record.kind {
            Kind::Batch | Kind::Replicated => {
                let (ops, locs, replica) = decode_batch(segment.id, &record)
                    .map_err(|reason| corrupt(fs, segment.id, offset, reason))?;
                apply(Replay {
                    seq: record.seq,
                    time: record.time,
                    ops,
                    locs,
                    replica,
                })?;
            }
            Kind::Seal if !unused_from(bytes, record.end) => {
                return Err(corrupt(
                    fs,
                    segment.id,
                    record.end,
                    "data after the seal record",
                ));
            }
            Kind::Seal => sealed = true,
        }
        records += 1;
        next_seq += 1;
        offset = record.end;
    }
    Ok(Scan {
        end: offset,
        bad: None,
        sealed,
        records,
        next_seq,
    })
}

/// Step 6: a record at `offset` that does not verify is a torn tail (the end of a
/// write a crash interrupted) only in the last segment, and only when no verifiable
/// record with a later sequence number follows it, but for records of its own group:
/// the writer writes a group only after the one before it was synced, so a record of
/// a later group means this one had been synced, and was damaged since. Anything else
/// is damage.
fn check_damage(
    fs: &dyn Vfs,
    segment: &Segment,
    offset: u64,
    reason: &str,
    next_seq: u64,
    last: bool,
) -> Result<(), Error> {
    if !last {
        return Err(corrupt(fs, segment.id, offset, reason));
    }
    let map = segment.current().map_err(Error::io(format!(
        "reading {}",
        fs.describe(&segment_name(segment.id))
    )))?;
    if later_record_exists((*map).as_ref(), offset + 1, next_seq) {
        return Err(corrupt(
            fs,
            segment.id,
            offset,
            format!("{reason}, and valid records follow: not a torn tail"),
        ));
    }
    Ok(())
}

/// Whether any verifiable record with a sequence number at or after `seq` starts in
/// `seg[from..]`, other than one of a group that holds `seq`. Used to tell a torn tail
/// (none) from damage in the middle of the log.
fn later_record_exists(seg: &[u8], from: u64, seq: u64) -> bool {
    let mut off = from as usize;
    while off + RECORD_HEADER_LEN <= seg.len() {
        let h = &seg[off..off + RECORD_HEADER_LEN];
        let s = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
        if Kind::from_u8(h[24]).is_some() && s >= seq && s < seq + TORN_SEQ_WINDOW {
            if let Ok(r) = decode_record(seg, off as u64) {
                let same_group = r.in_group > 0 && r.group_seq() <= seq;
                if r.seq >= seq && !same_group {
                    return true;
                }
            }
        }
        off += 1;
    }
    false
}

/// Step 6, the repair: cuts the torn tail at `offset`, durably, and maps the segment
/// afresh so no view of it reaches past its end. Returns the bytes cut.
fn truncate(fs: &dyn Vfs, segment: &Segment, offset: u64) -> Result<u64, Error> {
    let name = segment_name(segment.id);
    let what = || format!("truncating {}", fs.describe(&name));
    let len = (*segment.current().map_err(Error::io(what()))?)
        .as_ref()
        .len() as u64;
    debug_assert!(offset >= SEGMENT_HEADER_LEN && offset < len);
    tracing::warn!(
        segment = %fs.describe(&name),
        offset,
        bytes = len - offset,
        "truncating a torn tail"
    );
    segment.truncate(offset).map_err(Error::io(what()))?;
    Ok(len - offset)
}

/// Step 7: a segment the writer moved on from was sealed first, so one that ends
/// without a seal (cut short) lost records.
fn check_sealed(fs: &dyn Vfs, id: u64, scan: &Scan, last: bool) -> Result<(), Error> {
    if !last && !scan.sealed {
        return Err(corrupt(
            fs,
            id,
            scan.end,
            "segment ends without a seal record",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::SimFs;
    use crate::log::{encode_ops, encode_record, segment_header};

    /// A batch record's payload: one op, no blobs.
    fn batch(n: u64) -> Vec<u8> {
        encode_ops(&[Op::DeleteDomain(format!("d{n}.test"))]).unwrap()
    }

    /// Writes segment `id`: its header, then records `(seq, kind)` (batches hold one
    /// op, each record is a group of its own); returns the offset of each record.
    fn write_segment(fs: &SimFs, id: u64, records: &[(u64, Kind)]) -> Vec<u64> {
        let records: Vec<_> = records.iter().map(|&(seq, kind)| (seq, kind, 0)).collect();
        write_grouped(fs, id, &records, 0)
    }

    /// Writes segment `id` with records `(seq, kind, index in its group)`, then
    /// `zeros` bytes of zeros; returns the offset of each record.
    fn write_grouped(fs: &SimFs, id: u64, records: &[(u64, Kind, u32)], zeros: usize) -> Vec<u64> {
        let mut bytes = segment_header(id).to_vec();
        let mut offsets = Vec::new();
        for &(seq, kind, in_group) in records {
            let start = bytes.len();
            offsets.push(start as u64);
            let payload = match kind {
                Kind::Batch => batch(seq),
                Kind::Seal | Kind::Replicated => Vec::new(),
            };
            encode_record(&mut bytes, seq, 1_700_000_000, kind, &[&payload]);
            bytes[start + 25..start + 29].copy_from_slice(&in_group.to_le_bytes());
            let crc = crc32c::crc32c(&bytes[start + 4..]);
            bytes[start..start + 4].copy_from_slice(&crc.to_le_bytes());
        }
        bytes.resize(bytes.len() + zeros, 0);
        let file = fs.open(&segment_name(id), true).unwrap();
        file.write_at(0, &bytes).unwrap();
        offsets
    }

    fn open(fs: &SimFs, id: u64) -> Segment {
        open_segment(fs, id, false).unwrap().unwrap()
    }

    fn run(fs: &SimFs, start: Option<LogPos>) -> Result<(Recovered, Vec<u64>), Error> {
        let mut seqs = Vec::new();
        let recovered = recover(fs, start, |Replay { seq, .. }| {
            seqs.push(seq);
            Ok(())
        })?;
        Ok((recovered, seqs))
    }

    fn corrupt_reason<T>(result: Result<T, Error>) -> (String, u64, String) {
        match result {
            Err(Error::Corrupt {
                file,
                offset,
                reason,
            }) => (file, offset, reason),
            Err(other) => panic!("expected a corruption error, got {other}"),
            Ok(_) => panic!("expected a corruption error, got none"),
        }
    }

    const B: Kind = Kind::Batch;
    const S: Kind = Kind::Seal;

    #[test]
    fn segment_ids_are_the_segment_files_in_order() {
        let fs = SimFs::new();
        write_segment(&fs, 2, &[]);
        write_segment(&fs, 1, &[]);
        for other in ["checkpoint", "junk.seg", "000000000000000g.seg", "1.seg"] {
            fs.open(other, true).unwrap();
        }
        assert_eq!(segment_ids(&fs).unwrap(), vec![1, 2]);
    }

    #[test]
    fn start_is_the_checkpoint_or_the_first_segment() {
        let fs = SimFs::new();
        let empty = start_position(&fs, &[], None).unwrap();
        assert_eq!((empty.segment, empty.offset, empty.next_seq), (0, 0, 1));
        let first = start_position(&fs, &[3, 4], None).unwrap();
        assert_eq!((first.segment, first.offset, first.next_seq), (3, 32, 1));
        let checkpoint = LogPos {
            segment: 4,
            offset: 100,
            next_seq: 9,
        };
        assert_eq!(
            start_position(&fs, &[3, 4], Some(checkpoint)).unwrap(),
            checkpoint
        );
        let (file, offset, reason) = corrupt_reason(start_position(&fs, &[3], Some(checkpoint)));
        assert_eq!(file, "sim:0000000000000004.seg");
        assert_eq!(offset, 0);
        assert_eq!(reason, "segment named by the checkpoint is missing");
        let (_, _, reason) = corrupt_reason(start_position(&fs, &[], Some(checkpoint)));
        assert_eq!(
            reason,
            "the checkpoint names log segments, but there are none"
        );
    }

    #[test]
    fn a_missing_segment_after_the_start_is_damage() {
        let fs = SimFs::new();
        assert!(check_no_gap(&fs, &[1, 2, 3], 1).is_ok());
        // Compaction leaves gaps before the checkpoint's segment.
        assert!(check_no_gap(&fs, &[1, 4, 5], 4).is_ok());
        let (file, offset, reason) = corrupt_reason(check_no_gap(&fs, &[1, 2, 4], 1));
        assert_eq!(file, "sim:0000000000000003.seg");
        assert_eq!(offset, 0);
        assert_eq!(reason, "segment is missing");
        // And through recover: segments 1 and 3 without 2.
        write_segment(&fs, 1, &[(1, B), (2, S)]);
        write_segment(&fs, 3, &[(4, B)]);
        let (file, _, reason) = corrupt_reason(run(&fs, None));
        assert_eq!(
            (file.as_str(), reason.as_str()),
            ("sim:0000000000000002.seg", "segment is missing")
        );
    }

    #[test]
    fn headers_verify_or_an_unfinished_last_segment_goes() {
        let fs = SimFs::new();
        write_segment(&fs, 1, &[]);
        assert_eq!(open(&fs, 1).id, 1);
        // A damaged header in a segment that may not be unfinished is damage.
        fs.corrupt(&segment_name(1), 3);
        let (file, offset, reason) = corrupt_reason(open_segment(&fs, 1, false).map(|_| ()));
        assert_eq!((file.as_str(), offset), ("sim:0000000000000001.seg", 0));
        assert_eq!(reason, "bad segment magic");
        // The last segment, holding only a damaged header: an interrupted creation.
        assert!(open_segment(&fs, 1, true).unwrap().is_none());
        assert_eq!(fs.file_len(&segment_name(1)), None);
        // But not when records follow the header.
        write_segment(&fs, 2, &[(1, B)]);
        fs.corrupt(&segment_name(2), 10);
        let (_, _, reason) = corrupt_reason(open_segment(&fs, 2, true).map(|_| ()));
        assert_eq!(reason, "segment header checksum mismatch");
        // A header that names another segment.
        write_segment(&fs, 3, &[]);
        let header = segment_header(7);
        fs.open(&segment_name(3), false)
            .unwrap()
            .write_at(0, &header)
            .unwrap();
        let (_, _, reason) = corrupt_reason(open_segment(&fs, 3, false).map(|_| ()));
        assert_eq!(reason, "segment header says segment 7");
    }

    #[test]
    fn replay_applies_records_in_order() {
        let fs = SimFs::new();
        let offsets = write_segment(&fs, 1, &[(5, B), (6, B), (7, S)]);
        let segment = open(&fs, 1);
        let mut seqs = Vec::new();
        let scan = replay_segment(
            &fs,
            &segment,
            offsets[1],
            6,
            &mut |Replay { seq, ops, .. }| {
                assert_eq!(ops, vec![Op::DeleteDomain(format!("d{seq}.test"))]);
                seqs.push(seq);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seqs, vec![6]);
        assert!(scan.sealed && scan.bad.is_none());
        assert_eq!((scan.records, scan.next_seq), (2, 8));
        assert_eq!(scan.end, fs.file_len(&segment_name(1)).unwrap() as u64);
    }

    /// A sequence gap, and a record after a seal: damage at the second record.
    #[test]
    fn sequence_gaps_and_data_after_a_seal_are_damage() {
        let cases = [
            ([(1, B), (3, B)], "sequence 3 where 2 was expected"),
            ([(1, S), (2, B)], "data after the seal record"),
        ];
        for (records, expected) in cases {
            let fs = SimFs::new();
            let offsets = write_segment(&fs, 1, &records);
            let segment = open(&fs, 1);
            let result = replay_segment(&fs, &segment, 32, 1, &mut |_| Ok(()));
            let (_, offset, reason) = corrupt_reason(result);
            assert_eq!((offset, reason.as_str()), (offsets[1], expected));
        }
    }

    #[test]
    fn replay_stops_at_a_record_that_does_not_verify() {
        let fs = SimFs::new();
        let offsets = write_segment(&fs, 1, &[(1, B), (2, B)]);
        fs.corrupt(&segment_name(1), offsets[1] as usize + 40);
        let segment = open(&fs, 1);
        let scan = replay_segment(&fs, &segment, 32, 1, &mut |_| Ok(())).unwrap();
        assert_eq!(scan.end, offsets[1]);
        assert_eq!(scan.bad, Some("record checksum mismatch"));
        assert_eq!((scan.records, scan.next_seq), (1, 2));
    }

    #[test]
    fn a_torn_tail_is_only_at_the_end_of_the_last_segment() {
        let fs = SimFs::new();
        let offsets = write_segment(&fs, 1, &[(1, B), (2, B), (3, B)]);
        let segment = open(&fs, 1);
        // The last record: nothing verifiable after it, a torn tail when last.
        assert!(check_damage(&fs, &segment, offsets[2], "why", 3, true).is_ok());
        let (_, offset, reason) =
            corrupt_reason(check_damage(&fs, &segment, offsets[2], "why", 3, false));
        assert_eq!((offset, reason.as_str()), (offsets[2], "why"));
        // The middle record: the one after it verifies.
        let (_, offset, reason) =
            corrupt_reason(check_damage(&fs, &segment, offsets[1], "why", 2, true));
        assert_eq!(offset, offsets[1]);
        assert_eq!(reason, "why, and valid records follow: not a torn tail");
    }

    #[test]
    fn a_torn_tail_is_cut_and_the_log_goes_on_from_there() {
        let fs = SimFs::new();
        write_segment(&fs, 1, &[(1, B), (2, S)]);
        let offsets = write_segment(&fs, 2, &[(3, B), (4, B)]);
        let name = segment_name(2);
        let full = fs.file_len(&name).unwrap();
        // Half of record 4 reached the disk.
        fs.open(&name, false)
            .unwrap()
            .set_len(offsets[1] + 20)
            .unwrap();
        let (recovered, seqs) = run(&fs, None).unwrap();
        assert_eq!(seqs, vec![1, 3]);
        assert_eq!(recovered.truncated, 20);
        assert_eq!(recovered.replayed, 3);
        assert_eq!(fs.file_len(&name), Some(offsets[1] as usize));
        let tail = recovered.tail;
        assert_eq!(
            (tail.segment, tail.offset, tail.next_seq),
            (2, offsets[1], 4)
        );
        assert!(full > offsets[1] as usize + 20);
        // The segment's view ends where the file does now.
        let map = recovered.segments[&2].current().unwrap();
        assert_eq!((*map).as_ref().len() as u64, offsets[1]);
    }

    #[test]
    fn a_bad_record_with_good_ones_after_it_is_damage() {
        let fs = SimFs::new();
        let offsets = write_segment(&fs, 1, &[(1, B), (2, B), (3, B)]);
        fs.corrupt(&segment_name(1), offsets[1] as usize + 40);
        let (file, offset, reason) = corrupt_reason(run(&fs, None));
        assert_eq!(file, "sim:0000000000000001.seg");
        assert_eq!(offset, offsets[1]);
        assert_eq!(
            reason,
            "record checksum mismatch, and valid records follow: not a torn tail"
        );
    }

    #[test]
    fn zeros_after_the_last_record_or_a_seal_are_space_made_ready() {
        let fs = SimFs::new();
        write_grouped(&fs, 1, &[(1, B, 0), (2, S, 0)], 1000);
        let offsets = write_grouped(&fs, 2, &[(3, B, 0), (4, B, 1)], 4096);
        let end = offsets[1] + (offsets[1] - offsets[0]);
        let name = segment_name(2);
        let len = fs.file_len(&name).unwrap();
        // And a segment being made ready when the crash came.
        fs.open(READY_SEGMENT_NAME, true)
            .unwrap()
            .write_at(0, &[0; 100])
            .unwrap();
        let (recovered, seqs) = run(&fs, None).unwrap();
        assert_eq!(seqs, vec![1, 3, 4]);
        assert_eq!(recovered.truncated, 0);
        assert_eq!(fs.file_len(&name), Some(len), "the zeros stay for records");
        let tail = recovered.tail;
        assert_eq!((tail.segment, tail.offset, tail.next_seq), (2, end, 5));
        assert_eq!(fs.file_len(READY_SEGMENT_NAME), None);
    }

    /// A group written over zeros and cut short by a crash may have any of its pages on
    /// disk: its records after a bad one are no sign of damage.
    #[test]
    fn a_group_cut_short_in_any_order_of_its_pages_is_a_torn_tail() {
        for bad in [1, 2] {
            let fs = SimFs::new();
            // Record 1, then the group 2, 3, 4.
            let records = [(1, B, 0), (2, B, 0), (3, B, 1), (4, B, 2)];
            let offsets = write_grouped(&fs, 1, &records, 4096);
            let name = segment_name(1);
            fs.corrupt(&name, offsets[bad] as usize + 40);
            let (recovered, seqs) = run(&fs, None).unwrap();
            assert_eq!(seqs, (1..=bad as u64).collect::<Vec<_>>());
            assert_eq!(recovered.tail.offset, offsets[bad]);
            assert_eq!(fs.file_len(&name), Some(offsets[bad] as usize));
        }
    }

    /// A group is written only after the one before it was synced: a record of a
    /// later group after a bad one means the bad one was synced, and damaged since.
    #[test]
    fn a_record_of_a_later_group_after_a_bad_one_is_damage() {
        let fs = SimFs::new();
        let records = [(1, B, 0), (2, B, 0), (3, B, 1), (4, B, 0)];
        let offsets = write_grouped(&fs, 1, &records, 4096);
        fs.corrupt(&segment_name(1), offsets[2] as usize + 40);
        let (_, offset, reason) = corrupt_reason(run(&fs, None));
        assert_eq!(offset, offsets[2]);
        assert_eq!(
            reason,
            "record checksum mismatch, and valid records follow: not a torn tail"
        );
    }

    #[test]
    fn a_sealed_segment_cut_short_is_damage() {
        let fs = SimFs::new();
        let offsets = write_segment(&fs, 1, &[(1, B), (2, S)]);
        write_segment(&fs, 2, &[(3, B)]);
        // The seal is gone: the segment ends after record 1.
        fs.open(&segment_name(1), false)
            .unwrap()
            .set_len(offsets[1])
            .unwrap();
        let (file, offset, reason) = corrupt_reason(run(&fs, None));
        assert_eq!(
            (file.as_str(), offset),
            ("sim:0000000000000001.seg", offsets[1])
        );
        assert_eq!(reason, "segment ends without a seal record");
        // Cut in the middle of a record instead: that record does not verify.
        fs.open(&segment_name(1), false)
            .unwrap()
            .set_len(offsets[1] - 5)
            .unwrap();
        let (_, offset, reason) = corrupt_reason(run(&fs, None));
        assert_eq!(
            (offset, reason.as_str()),
            (offsets[0], "record payload cut short")
        );
    }

    #[test]
    fn replay_starts_at_the_checkpoint() {
        let fs = SimFs::new();
        write_segment(&fs, 1, &[(1, B), (2, S)]);
        let offsets = write_segment(&fs, 2, &[(3, B), (4, B)]);
        // Segment 1 is damaged, but it lies before the checkpoint: only its header is read.
        fs.corrupt(&segment_name(1), 40);
        let start = LogPos {
            segment: 2,
            offset: offsets[1],
            next_seq: 4,
        };
        let (recovered, seqs) = run(&fs, Some(start)).unwrap();
        assert_eq!(seqs, vec![4]);
        assert_eq!(recovered.segments.len(), 2);
        // A checkpoint taken just as segment 2 was sealed: the writer starts segment 3.
        let sealed = LogPos {
            segment: 2,
            offset: 0,
            next_seq: 5,
        };
        let (recovered, seqs) = run(&fs, Some(sealed)).unwrap();
        assert!(seqs.is_empty());
        assert_eq!(recovered.tail, sealed);
    }

    #[test]
    fn an_empty_directory_is_an_empty_log() {
        let (recovered, seqs) = run(&SimFs::new(), None).unwrap();
        assert!(seqs.is_empty() && recovered.segments.is_empty());
        assert_eq!(recovered.tail.next_seq, 1);
    }
}
