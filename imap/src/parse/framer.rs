//! Splits the client byte stream into command units — RFC 3501 §2.2.1, §4.3,
//! RFC 7888 §3.
//!
//! A unit is one command line plus every literal it announces and the line
//! continuations after them, up to the CRLF that is not preceded by a literal header.
//! The framer never interprets a command; it only finds literal headers
//! (`{n}` / `{n+}`, and `~{n}` so that binary literal data is never taken for
//! commands either) at the ends of lines.
//!
//! Invariants:
//! - Buffered bytes are bounded: a line by [`Limits::line_bytes_max`], a unit by
//!   [`Limits::command_bytes_max`] (literals by [`Limits::literal_bytes_max`]).
//! - Octets announced as literal data are never scanned as lines. After a rejected
//!   command the framer discards the rest of that command, including the data of
//!   every non-synchronizing literal in it, without buffering it. A synchronizing
//!   literal that was refused (or never acknowledged) ends the command: the client
//!   sends its data only after a continuation request.
//! - The frames produced do not depend on how the input was chunked.

use super::{tag_of, Limits, Reason, ID_LINE_BYTES_MAX};
use crate::types::{LiteralMode, Tag, TAG_BYTES_MAX};

/// States of [`HeaderDetector`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum DetectorState {
    #[default]
    Other,
    Open,
    /// Digits read so far; `None` once the number exceeds 32 bits.
    Digits(Option<u32>),
    Plus(Option<u32>),
    Close(Option<u32>, LiteralMode),
    CloseCr(Option<u32>, LiteralMode),
}

/// Recognizes `"{" number ["+"] "}" [CR]` immediately before a line's LF, one byte at
/// a time, in constant space (leading zeros can make a header arbitrarily long).
#[derive(Clone, Copy, Debug, Default)]
struct HeaderDetector {
    state: DetectorState,
}

impl HeaderDetector {
    fn feed(&mut self, byte: u8) {
        use DetectorState::{Close, CloseCr, Digits, Open, Other, Plus};
        self.state = match (self.state, byte) {
            (_, b'{') => Open,
            (Open, b'0'..=b'9') => Digits(Some(u32::from(byte - b'0'))),
            (Digits(value), b'0'..=b'9') => Digits(
                value.and_then(|value| value.checked_mul(10)?.checked_add(u32::from(byte - b'0'))),
            ),
            (Digits(value), b'+') => Plus(value),
            (Digits(value), b'}') => Close(value, LiteralMode::Sync),
            (Plus(value), b'}') => Close(value, LiteralMode::NonSync),
            (Close(value, mode), b'\r') => CloseCr(value, mode),
            _ => Other,
        };
    }

    /// At a line's LF: the literal the line announces (`None` length when it does
    /// not fit 32 bits).
    fn header(&self) -> Option<(Option<u32>, LiteralMode)> {
        match self.state {
            DetectorState::Close(value, mode) | DetectorState::CloseCr(value, mode) => {
                Some((value, mode))
            }
            _ => None,
        }
    }
}

/// The literal a line (without its LF) announces at its end.
fn literal_header(line: &[u8]) -> Option<(Option<u32>, LiteralMode)> {
    if !matches!(line.last(), Some(b'}' | b'\r')) {
        return None;
    }
    // The detector restarts at every `{`, so its final state depends only on the
    // bytes from the last one on.
    let open = line.iter().rposition(|&byte| byte == b'{')?;
    let mut detector = HeaderDetector::default();
    for &byte in &line[open..] {
        detector.feed(byte);
    }
    detector.header()
}

/// Where [`scan_unit`] resumes, relative to the start of the unit.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cursor {
    line_start: usize,
    searched: usize,
    /// `data_start` of the last synchronizing literal reported as `SyncLiteral`.
    announced: usize,
    /// The accepted literal whose data is awaited: `(length, mode, data_start)`, so
    /// that each push costs O(1) until the data is complete.
    pending: Option<(u32, LiteralMode, usize)>,
}

/// The outcome of scanning the bytes of one unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnitScan {
    Complete {
        length: usize,
    },
    NeedMore,
    /// A synchronizing literal header was accepted (reported once, whether or not
    /// its data has arrived, so that frames do not depend on chunking).
    SyncLiteral {
        length: u32,
        data_start: usize,
    },
    /// A literal header was accepted; its `length` octets start at `data_start` and
    /// have not all arrived.
    LiteralPending {
        length: u32,
        mode: LiteralMode,
        data_start: usize,
    },
    /// The unit breaks a limit; the offending line starts at `Cursor::line_start`.
    Rejected {
        reason: Reason,
    },
}

/// Whether the unit starting `input` is an ID command (`tag SP "ID" SP`), whose
/// lines RFC 2971 §3.3 lets reach [`ID_LINE_BYTES_MAX`].
fn is_id_command(input: &[u8]) -> bool {
    is_command(input, b"ID")
}

/// Whether the unit starting `input` is a `name` command (`tag SP name SP`, `name`
/// in capitals).
fn is_command(input: &[u8], name: &[u8]) -> bool {
    let Some(space) = input
        .iter()
        .take(TAG_BYTES_MAX + 1)
        .position(|&byte| byte == b' ')
    else {
        return false;
    };
    input
        .get(space + 1..space + 2 + name.len())
        .is_some_and(|word| {
            word[..name.len()].eq_ignore_ascii_case(name) && word[name.len()] == b' '
        })
}

/// The limits a unit is held to: `limits`, with the line and command bounds raised
/// to [`ID_LINE_BYTES_MAX`] for an ID command (a long command the RFC allows is not
/// garbage). Decided from the unit's first bytes, which have always arrived by the
/// time a line could break the ordinary bound, so chunking does not change it.
fn unit_limits(input: &[u8], limits: &Limits) -> Limits {
    if limits.line_bytes_max < ID_LINE_BYTES_MAX && is_id_command(input) {
        Limits {
            line_bytes_max: ID_LINE_BYTES_MAX,
            command_bytes_max: limits.command_bytes_max.max(ID_LINE_BYTES_MAX),
            ..*limits
        }
    } else {
        *limits
    }
}

/// Scans `input` (starting at a unit boundary) for the end of the unit; with
/// `announce`, stops once at each synchronizing literal header.
pub(crate) fn scan_unit(
    input: &[u8],
    limits: &Limits,
    cursor: &mut Cursor,
    announce: bool,
) -> UnitScan {
    let limits = &unit_limits(input, limits);
    if let Some((length, mode, data_start)) = cursor.pending {
        let data_end = data_start + length as usize;
        if input.len() < data_end {
            return UnitScan::LiteralPending {
                length,
                mode,
                data_start,
            };
        }
        cursor.pending = None;
        cursor.line_start = data_end;
        cursor.searched = data_end;
    }
    loop {
        let from = cursor.searched.max(cursor.line_start);
        let Some(offset) = input
            .get(from..)
            .and_then(|tail| tail.iter().position(|&byte| byte == b'\n'))
        else {
            cursor.searched = input.len().max(cursor.line_start);
            // The LF still to come would make the line longer than allowed.
            if input.len().saturating_sub(cursor.line_start) >= limits.line_bytes_max {
                return UnitScan::Rejected {
                    reason: Reason::LineTooLong,
                };
            }
            return UnitScan::NeedMore;
        };
        let line_end = from + offset + 1;
        if line_end - cursor.line_start > limits.line_bytes_max {
            return UnitScan::Rejected {
                reason: Reason::LineTooLong,
            };
        }
        if line_end > limits.command_bytes_max {
            return UnitScan::Rejected {
                reason: Reason::CommandTooLarge,
            };
        }
        let Some((length, mode)) = literal_header(&input[cursor.line_start..line_end - 1]) else {
            return UnitScan::Complete { length: line_end };
        };
        let Some(length) = length.filter(|&length| length <= limits.literal_bytes_max) else {
            return UnitScan::Rejected {
                reason: Reason::LiteralTooLarge {
                    length_bytes: length.map_or(u64::MAX, u64::from),
                    mode,
                },
            };
        };
        let data_end = line_end + length as usize;
        if data_end > limits.command_bytes_max {
            return UnitScan::Rejected {
                reason: Reason::CommandTooLarge,
            };
        }
        if announce && mode == LiteralMode::Sync && line_end > cursor.announced {
            cursor.announced = line_end;
            cursor.pending = Some((length, mode, line_end));
            return UnitScan::SyncLiteral {
                length,
                data_start: line_end,
            };
        }
        if input.len() < data_end {
            cursor.pending = Some((length, mode, line_end));
            return UnitScan::LiteralPending {
                length,
                mode,
                data_start: line_end,
            };
        }
        cursor.line_start = data_end;
        cursor.searched = data_end;
    }
}

/// What the server does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Nothing to do until more bytes are pushed.
    NeedMore,
    /// A complete unit, for [`super::command`] (or [`super::authenticate_data`] /
    /// [`super::idle_done`] during those exchanges).
    Unit(&'a [u8]),
    /// The client announced a synchronizing literal of `length` octets (within
    /// limits) and waits: send a continuation request (`+ OK`), then push more.
    /// Produced once per literal, even when a client that did not wait has already
    /// sent the data, so that what the server sends does not depend on chunking.
    Continue { tag: Tag<'a>, length: u32 },
    /// The command was refused by a limit: answer `tag BAD` (`* BAD` without a tag).
    /// The framer discards the rest of the command by itself.
    Rejected {
        tag: Option<Tag<'a>>,
        reason: Reason,
    },
    /// The stream cannot be resynchronized (a non-synchronizing literal whose length
    /// does not fit 32 bits): send `* BYE` and close the connection.
    Fatal { reason: Reason },
}

/// Discarding the rest of a rejected command.
#[derive(Clone, Copy, Debug)]
enum Discard {
    Line(HeaderDetector),
    Literal { remaining: u64 },
}

/// Bytes consumed from the front before the buffer is compacted.
const COMPACT_BYTES_MIN: usize = 64 * 1024;

/// The incremental framer. Push bytes as they arrive, then call [`Framer::next`] until
/// it returns [`Frame::NeedMore`]. Pure: no I/O, no clock.
///
/// ```
/// use lifeboat_imap::parse::framer::{Frame, Framer};
/// use lifeboat_imap::parse::Limits;
///
/// let mut framer = Framer::new(Limits::default());
/// framer.push(b"a1 LOGIN {4}\r\n");
/// assert!(matches!(framer.next(), Frame::Continue { length: 4, .. }));
/// assert!(matches!(framer.next(), Frame::NeedMore));
/// framer.push(b"user pass\r\n");
/// assert_eq!(framer.next(), Frame::Unit(b"a1 LOGIN {4}\r\nuser pass\r\n"));
/// ```
#[derive(Debug)]
pub struct Framer {
    limits: Limits,
    buffer: Vec<u8>,
    /// Start of the unconsumed bytes in `buffer`.
    start: usize,
    /// Length of the unit returned by the previous call, consumed at the next one.
    returned: usize,
    cursor: Cursor,
    discard: Option<Discard>,
    /// A command given up while its literal arrived ([`Framer::abandon`]): its tag
    /// (followed by a space, as [`tag_of`] reads it) and why, reported once.
    abandoned: Option<(Vec<u8>, Reason)>,
    /// The tag of the last abandoned command, borrowed by the frame reporting it.
    abandoned_tag: Vec<u8>,
    /// Bytes still to come of a literal taken out of its unit ([`Framer::divert`]):
    /// they are not pushed, see [`Framer::split_diverted`].
    diverting: u64,
}

impl Framer {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            buffer: Vec::new(),
            start: 0,
            returned: 0,
            cursor: Cursor::default(),
            discard: None,
            abandoned: None,
            abandoned_tag: Vec::new(),
            diverting: 0,
        }
    }

    /// Bytes the framer holds (what its buffer holds: the room a vector keeps beyond
    /// it is not touched, so it takes no memory).
    pub fn held_bytes(&self) -> usize {
        self.buffer.len()
    }

    /// Gives up the command whose literal is arriving: frees what was received of
    /// it, drops the rest of the literal as it comes (and the rest of the command),
    /// and reports it as [`Frame::Rejected`] with `reason`. False, with nothing
    /// changed, when no literal is arriving.
    pub fn abandon(&mut self, reason: Reason) -> bool {
        self.release();
        let Some((length, _, data_start)) = self.cursor.pending else {
            return false;
        };
        let unit = &self.buffer[self.start..];
        let received = unit.len().saturating_sub(data_start);
        let remaining =
            u64::from(length).saturating_sub(received as u64) + std::mem::take(&mut self.diverting);
        let tag = tag_of(unit).map(|tag| {
            let mut bytes = tag.as_str().as_bytes().to_vec();
            bytes.push(b' ');
            bytes
        });
        // Bytes past the literal (the client did not wait) stay: they are the rest of
        // the command, discarded as a line after the literal.
        let past = self.start + data_start + (length as usize).min(received);
        self.buffer.drain(..past);
        self.buffer.shrink_to(COMPACT_BYTES_MIN);
        self.start = 0;
        self.cursor = Cursor::default();
        self.discard = Some(if remaining > 0 {
            Discard::Literal { remaining }
        } else {
            Discard::Line(HeaderDetector::default())
        });
        self.abandoned = Some((tag.unwrap_or_default(), reason));
        true
    }

    /// What has arrived of the message literal of an APPEND now being received, for
    /// the caller to write elsewhere before it calls [`Framer::divert`]; `None` when
    /// no APPEND's literal is arriving (or it is diverted already).
    pub fn divertable(&mut self) -> Option<&[u8]> {
        self.release();
        let (length, _, data_start) = self.cursor.pending?;
        let unit = &self.buffer[self.start..];
        if self.diverting > 0 || !is_command(unit, b"APPEND") {
            return None;
        }
        let end = (data_start + length as usize).min(unit.len());
        Some(&unit[data_start..end])
    }

    /// Takes the literal [`Framer::divertable`] showed out of its unit: what has
    /// arrived of it is dropped, the rest is returned by [`Framer::split_diverted`]
    /// as it comes instead of being buffered, and the unit goes on as if the literal
    /// were empty. Its header's digits become zeros, which keeps every offset (a
    /// `number` may have leading zeros, RFC 3501 §9). The caller gives the command
    /// the literal's bytes from where it wrote them. False, with nothing changed,
    /// when nothing is divertable.
    pub fn divert(&mut self) -> bool {
        if self.divertable().is_none() {
            return false;
        }
        let Some((length, mode, data_start)) = self.cursor.pending else {
            return false;
        };
        let data = self.start + data_start;
        let received = (self.buffer.len() - data).min(length as usize);
        // The header ends the line before the data, so its `{` is the last one.
        let Some(open) = self.buffer[..data].iter().rposition(|&byte| byte == b'{') else {
            return false;
        };
        for byte in &mut self.buffer[open + 1..data] {
            if byte.is_ascii_digit() {
                *byte = b'0';
            }
        }
        self.buffer.drain(data..data + received);
        self.buffer.shrink_to(COMPACT_BYTES_MIN);
        self.diverting = u64::from(length) - received as u64;
        self.cursor.pending = Some((0, mode, data_start));
        true
    }

    /// Bytes still to come of a diverted literal.
    pub fn diverting(&self) -> u64 {
        self.diverting
    }

    /// Splits received `bytes` into what belongs to a diverted literal (for the
    /// caller to write where it wrote the rest of it) and what is to be pushed.
    pub fn split_diverted<'b>(&mut self, bytes: &'b [u8]) -> (&'b [u8], &'b [u8]) {
        let taken = self.diverting.min(bytes.len() as u64);
        self.diverting -= taken;
        bytes.split_at(taken as usize)
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Appends received bytes (after [`Framer::split_diverted`] while a literal is
    /// diverted).
    pub fn push(&mut self, bytes: &[u8]) {
        debug_assert!(
            bytes.is_empty() || self.diverting == 0,
            "bytes of a diverted literal pushed"
        );
        self.release();
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes received and not yet returned or discarded.
    pub fn buffered_len(&self) -> usize {
        self.buffer.len() - self.start - self.returned
    }

    /// Takes every byte received after the unit returned last, leaving the framer
    /// empty at a unit boundary: after COMPRESS (RFC 4978 §3) what follows is
    /// compressed and must be decompressed before it is pushed again.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        self.release();
        let rest = self.buffer[self.start..].to_vec();
        self.buffer.clear();
        self.start = 0;
        self.cursor = Cursor::default();
        self.discard = None;
        rest
    }

    /// Consumes the unit returned last and compacts the buffer when worthwhile.
    fn release(&mut self) {
        self.start += std::mem::take(&mut self.returned);
        if self.start == self.buffer.len() {
            self.buffer.clear();
            // A large literal's room is not kept for the commands after it.
            self.buffer.shrink_to(COMPACT_BYTES_MIN);
            self.start = 0;
        } else if self.start >= COMPACT_BYTES_MIN && self.start * 2 >= self.buffer.len() {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
    }

    /// Consumes discarded bytes; `Err` carries a frame to return.
    fn discard(&mut self) -> Result<(), Frame<'static>> {
        while let Some(discard) = self.discard {
            let available = &self.buffer[self.start..];
            match discard {
                Discard::Literal { remaining } => {
                    let skip = remaining.min(available.len() as u64);
                    self.start += skip as usize;
                    self.discard = if skip == remaining {
                        Some(Discard::Line(HeaderDetector::default()))
                    } else {
                        Some(Discard::Literal {
                            remaining: remaining - skip,
                        })
                    };
                    if skip < remaining {
                        return Err(Frame::NeedMore);
                    }
                }
                Discard::Line(mut detector) => {
                    let line_end = available.iter().position(|&byte| byte == b'\n');
                    let scanned = &available[..line_end.unwrap_or(available.len())];
                    for &byte in scanned {
                        detector.feed(byte);
                    }
                    let Some(line_end) = line_end else {
                        self.start += available.len();
                        self.discard = Some(Discard::Line(detector));
                        return Err(Frame::NeedMore);
                    };
                    self.start += line_end + 1;
                    self.discard = match detector.header() {
                        Some((Some(length), LiteralMode::NonSync)) => Some(Discard::Literal {
                            remaining: u64::from(length),
                        }),
                        Some((None, LiteralMode::NonSync)) => {
                            return Err(Frame::Fatal {
                                reason: Reason::LiteralTooLarge {
                                    length_bytes: u64::MAX,
                                    mode: LiteralMode::NonSync,
                                },
                            })
                        }
                        // No literal, or a synchronizing one the client will not
                        // send without a continuation request: the command ends.
                        Some((_, LiteralMode::Sync)) | None => None,
                    };
                }
            }
        }
        Ok(())
    }

    /// The next thing to do; see [`Frame`].
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Frame<'_> {
        self.release();
        if self.diverting > 0 {
            return Frame::NeedMore;
        }
        if let Some((tag, reason)) = self.abandoned.take() {
            self.abandoned_tag = tag;
            return Frame::Rejected {
                tag: tag_of(&self.abandoned_tag),
                reason,
            };
        }
        if let Err(frame) = self.discard() {
            return frame;
        }
        if self.start == self.buffer.len() {
            return Frame::NeedMore;
        }
        let input = &self.buffer[self.start..];
        match scan_unit(input, &self.limits, &mut self.cursor, true) {
            UnitScan::Complete { length } => {
                self.cursor = Cursor::default();
                self.returned = length;
                Frame::Unit(&self.buffer[self.start..self.start + length])
            }
            UnitScan::NeedMore => Frame::NeedMore,
            UnitScan::SyncLiteral { length, data_start } => {
                if tag_of(&self.buffer[self.start..]).is_none() {
                    // Without a tag the command can only be refused; the client
                    // waits for a continuation that does not come, so the command
                    // ends here.
                    self.start += data_start;
                    self.cursor = Cursor::default();
                    return Frame::Rejected {
                        tag: None,
                        reason: Reason::InvalidTag,
                    };
                }
                match tag_of(&self.buffer[self.start..]) {
                    Some(tag) => Frame::Continue { tag, length },
                    None => Frame::NeedMore,
                }
            }
            UnitScan::LiteralPending { .. } => Frame::NeedMore,
            UnitScan::Rejected { reason } => {
                let unit_start = self.start;
                self.start += self.cursor.line_start;
                self.cursor = Cursor::default();
                self.discard = Some(Discard::Line(HeaderDetector::default()));
                // The discarded bytes stay in the buffer until the next call, so the
                // tag can still be borrowed from it.
                Frame::Rejected {
                    tag: tag_of(&self.buffer[unit_start..]),
                    reason,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            line_bytes_max: 64,
            literal_bytes_max: 16,
            command_bytes_max: 128,
            nesting_max: 8,
        }
    }

    #[test]
    fn header_detection() {
        assert_eq!(
            literal_header(b"a LOGIN {5}"),
            Some((Some(5), LiteralMode::Sync))
        );
        assert_eq!(
            literal_header(b"a LOGIN {5+}\r"),
            Some((Some(5), LiteralMode::NonSync))
        );
        assert_eq!(
            literal_header(b"a LOGIN {0000000000000000000012}\r"),
            Some((Some(12), LiteralMode::Sync))
        );
        assert_eq!(
            literal_header(b"a LOGIN {4294967296}\r"),
            Some((None, LiteralMode::Sync))
        );
        assert_eq!(literal_header(b"a LOGIN {}\r"), None);
        assert_eq!(literal_header(b"a LOGIN {+}\r"), None);
        assert_eq!(literal_header(b"a LOGIN {5} \r"), None);
        assert_eq!(literal_header(b"a LOGIN {5}x\r"), None);
    }

    #[test]
    fn oversized_non_sync_literal_is_skipped() {
        let mut framer = Framer::new(limits());
        framer.push(b"a1 APPEND x {20+}\r\n");
        assert_eq!(
            framer.next(),
            Frame::Rejected {
                tag: Some(Tag::try_from("a1").unwrap()),
                reason: Reason::LiteralTooLarge {
                    length_bytes: 20,
                    mode: LiteralMode::NonSync
                }
            }
        );
        framer.push(b"a2 LOGOUT\r\na3 NOOP\r\n");
        assert_eq!(framer.next(), Frame::NeedMore);
        // 20 literal octets were "a2 LOGOUT\r\na3 NOOP\r\n"; then the line goes on.
        framer.push(b" more\r\na4 NOOP\r\n");
        assert_eq!(framer.next(), Frame::Unit(b"a4 NOOP\r\n"));
        assert_eq!(framer.next(), Frame::NeedMore);
    }

    #[test]
    fn oversized_sync_literal_ends_the_command() {
        let mut framer = Framer::new(limits());
        framer.push(b"a1 APPEND x {20}\r\na2 NOOP\r\n");
        assert!(matches!(
            framer.next(),
            Frame::Rejected {
                reason: Reason::LiteralTooLarge {
                    length_bytes: 20,
                    mode: LiteralMode::Sync
                },
                ..
            }
        ));
        assert_eq!(framer.next(), Frame::Unit(b"a2 NOOP\r\n"));
    }

    fn rejected_tag(frame: Frame<'_>) -> (Option<String>, Reason) {
        match frame {
            Frame::Rejected { tag, reason } => (tag.map(|t| t.as_str().to_string()), reason),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_abandoned_literal_is_dropped_as_it_arrives_and_reported_once() {
        let mut framer = Framer::new(limits());
        assert!(!framer.abandon(Reason::Busy), "no literal arriving");
        framer.push(b"a1 APPEND x {10}\r\n");
        assert!(matches!(framer.next(), Frame::Continue { length: 10, .. }));
        framer.push(b"12345");
        assert_eq!(framer.next(), Frame::NeedMore);
        assert!(framer.abandon(Reason::Busy));
        assert_eq!(
            rejected_tag(framer.next()),
            (Some("a1".to_string()), Reason::Busy)
        );
        assert_eq!(framer.next(), Frame::NeedMore);
        // The rest of the literal, then the rest of its command line.
        framer.push(b"67890 tail\r\na2 NOOP\r\n");
        assert_eq!(framer.next(), Frame::Unit(b"a2 NOOP\r\n"));
        assert_eq!(framer.next(), Frame::NeedMore);
    }

    #[test]
    fn an_abandoned_non_sync_literal_drops_what_was_pipelined_with_it() {
        let mut framer = Framer::new(limits());
        // The whole literal and part of the next line arrived at once, before the
        // framer looked at it.
        framer.push(b"b1 APPEND x {4+}\r\nab");
        assert_eq!(framer.next(), Frame::NeedMore);
        assert!(framer.abandon(Reason::Busy));
        assert_eq!(
            rejected_tag(framer.next()),
            (Some("b1".to_string()), Reason::Busy)
        );
        framer.push(b"cd {2+}\r\nxy\r\nb2 NOOP\r\n");
        // The command's line goes on after its literal and announces another one:
        // all of it is the abandoned command's.
        assert_eq!(framer.next(), Frame::Unit(b"b2 NOOP\r\n"));
    }

    #[test]
    fn long_line_is_rejected_once_and_discarded() {
        let mut framer = Framer::new(limits());
        let mut long = b"a1 NOOP ".to_vec();
        long.extend(std::iter::repeat_n(b'x', 100));
        framer.push(&long);
        assert!(matches!(
            framer.next(),
            Frame::Rejected {
                reason: Reason::LineTooLong,
                ..
            }
        ));
        framer.push(b"xxxx {3+}\r\nabcb2 NOOP\r\n");
        assert_eq!(framer.next(), Frame::NeedMore);
        framer.push(b"b3 NOOP\r\n");
        assert_eq!(framer.next(), Frame::Unit(b"b3 NOOP\r\n"));
    }

    #[test]
    fn overflowing_non_sync_length_is_fatal() {
        let mut framer = Framer::new(limits());
        framer.push(b"a1 APPEND x {99999999999+}\r\n");
        assert!(matches!(framer.next(), Frame::Rejected { .. }));
        assert!(matches!(framer.next(), Frame::Fatal { .. }));
    }

    #[test]
    fn continue_is_announced_once_per_literal() {
        let mut framer = Framer::new(limits());
        framer.push(b"a1 LOGIN {1}\r\n");
        assert!(matches!(framer.next(), Frame::Continue { length: 1, .. }));
        assert_eq!(framer.next(), Frame::NeedMore);
        framer.push(b"u {2}\r\n");
        assert!(matches!(framer.next(), Frame::Continue { length: 2, .. }));
        framer.push(b"pw\r\n");
        assert_eq!(
            framer.next(),
            Frame::Unit(b"a1 LOGIN {1}\r\nu {2}\r\npw\r\n")
        );
        assert_eq!(framer.buffered_len(), 0);
    }

    /// Pushes `bytes` as a session does while a literal may be diverted; returns
    /// what went to the literal.
    fn receive(framer: &mut Framer, bytes: &[u8]) -> Vec<u8> {
        let (diverted, rest) = framer.split_diverted(bytes);
        framer.push(rest);
        diverted.to_vec()
    }

    #[test]
    fn an_append_literal_is_diverted_and_the_unit_goes_on_without_it() {
        let mut limits = limits();
        limits.literal_bytes_max = 1000;
        limits.command_bytes_max = 2000;
        let mut framer = Framer::new(limits);
        framer.push(b"a1 APPEND INBOX (\\Seen) {20}\r\n");
        assert!(matches!(framer.next(), Frame::Continue { length: 20, .. }));
        framer.push(b"0123456");
        assert_eq!(framer.next(), Frame::NeedMore);
        let mut literal = framer.divertable().expect("an APPEND literal").to_vec();
        assert!(framer.divert());
        assert_eq!(framer.diverting(), 13);
        assert!(framer.held_bytes() < 40, "the literal's bytes are gone");
        assert_eq!(framer.next(), Frame::NeedMore);
        literal.extend(receive(&mut framer, b"789abc"));
        assert_eq!(framer.next(), Frame::NeedMore);
        // The end of the literal, the end of the command and the next one at once.
        literal.extend(receive(&mut framer, b"defghij\r\na2 NOOP\r\n"));
        assert_eq!(literal, b"0123456789abcdefghij");
        assert_eq!(framer.diverting(), 0);
        assert_eq!(
            framer.next(),
            Frame::Unit(b"a1 APPEND INBOX (\\Seen) {00}\r\n\r\n")
        );
        assert_eq!(framer.next(), Frame::Unit(b"a2 NOOP\r\n"));
    }

    #[test]
    fn a_non_sync_literal_is_diverted_and_what_follows_it_kept() {
        let mut framer = Framer::new(limits());
        framer.push(b"a1 append x {5+}\r\nhel");
        assert_eq!(framer.next(), Frame::NeedMore);
        assert_eq!(framer.divertable(), Some(&b"hel"[..]));
        assert!(framer.divert());
        assert_eq!(receive(&mut framer, b"lo\r\na2 NOOP\r\n"), b"lo");
        assert_eq!(framer.next(), Frame::Unit(b"a1 append x {0+}\r\n\r\n"));
        assert_eq!(framer.next(), Frame::Unit(b"a2 NOOP\r\n"));
    }

    #[test]
    fn only_an_append_literal_can_be_diverted() {
        let mut framer = Framer::new(limits());
        framer.push(b"a1 LOGIN {4}\r\nus");
        assert!(matches!(framer.next(), Frame::Continue { .. }));
        assert_eq!(framer.next(), Frame::NeedMore);
        assert_eq!(framer.divertable(), None);
        assert!(!framer.divert());
        let mut framer = Framer::new(limits());
        framer.push(b"a1 APPENDX x {4}\r\nus");
        assert!(matches!(framer.next(), Frame::Continue { .. }));
        assert!(!framer.divert());
        let mut framer = Framer::new(limits());
        framer.push(b"a1 NOOP\r\n");
        assert!(!framer.divert());
    }

    #[test]
    fn a_diverted_literal_abandoned_drops_the_rest_of_it() {
        let mut framer = Framer::new(limits());
        framer.push(b"a1 APPEND x {10}\r\n0123");
        assert!(matches!(framer.next(), Frame::Continue { .. }));
        assert!(framer.divert());
        assert!(framer.abandon(Reason::Busy));
        assert_eq!(framer.diverting(), 0);
        framer.push(b"456789\r\na2 NOOP\r\n");
        assert!(matches!(
            framer.next(),
            Frame::Rejected {
                reason: Reason::Busy,
                ..
            }
        ));
        assert_eq!(framer.next(), Frame::Unit(b"a2 NOOP\r\n"));
    }
}
