//! What the fuzz targets run, kept in the crate so that a regular test
//! (imap/tests/fuzz_corpus.rs) replays the corpora through exactly the same code.
//!
//! Each function panics when an invariant breaks; that is what the fuzzer reports.

use crate::parse::framer::{Frame, Framer};
use crate::parse::{self, DecodeError, Limits};
use crate::types::{decode_modified_utf7, encode_modified_utf7, LiteralMode, SequenceSet};

/// Limits small enough for the fuzzer to reach every one of them.
pub const FUZZ_LIMITS: Limits = Limits {
    line_bytes_max: 1024,
    literal_bytes_max: 4096,
    command_bytes_max: 16 * 1024,
    nesting_max: 16,
};

/// Re-parsing an encoded command: canonical strings may be longer than the client's
/// (quoting adds escapes), so only the line limit is relaxed.
const REPARSE_LIMITS: Limits = Limits {
    line_bytes_max: 1024 * 1024,
    command_bytes_max: 1024 * 1024,
    ..FUZZ_LIMITS
};

/// Target `imap_command`: parse any bytes; whatever parses must re-encode to bytes
/// that parse to the same command (in both literal styles), and every strict prefix
/// of a parsed command must be incomplete.
pub fn imap_command(data: &[u8]) {
    match parse::command(data, &FUZZ_LIMITS) {
        Ok((used, command)) => {
            assert!(used > 0 && used <= data.len());
            for mode in [LiteralMode::Sync, LiteralMode::NonSync] {
                let mut encoded = Vec::new();
                command.encode_with(&mut encoded, mode);
                match parse::command(&encoded, &REPARSE_LIMITS) {
                    Ok((reused, again)) => {
                        assert_eq!(reused, encoded.len());
                        assert_eq!(again, command, "{:?}", String::from_utf8_lossy(&encoded));
                    }
                    Err(error) => panic!(
                        "re-encoded {:?} does not parse: {error:?}",
                        String::from_utf8_lossy(&encoded)
                    ),
                }
            }
            // A few prefixes (all of them would be quadratic).
            for end in [0, used / 2, used - 1] {
                let result = parse::command(&data[..end], &FUZZ_LIMITS);
                assert!(
                    matches!(
                        result,
                        Err(DecodeError::Incomplete | DecodeError::Literal { .. })
                    ),
                    "prefix of {used} at {end}: {result:?}"
                );
            }
        }
        Err(DecodeError::Literal { length, .. }) => {
            assert!(length <= FUZZ_LIMITS.literal_bytes_max);
        }
        Err(_) => {}
    }
    let _ = parse::idle_done(data, &FUZZ_LIMITS);
    let _ = parse::authenticate_data(data, &FUZZ_LIMITS);
    if let Ok(name) = decode_modified_utf7(data) {
        assert_eq!(encode_modified_utf7(&name).as_bytes(), data);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(
            decode_modified_utf7(encode_modified_utf7(text).as_bytes()).as_deref(),
            Ok(text)
        );
        if let Ok(set) = SequenceSet::try_from(text) {
            let _ = set.ranges(u32::MAX);
        }
    }
}

/// What the server sees from the framer, comparable across chunkings.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Parsed(Vec<u8>),
    Failed(parse::Reason),
    Continue(u32),
    Rejected(parse::Reason),
    Fatal,
}

fn drain(framer: &mut Framer, events: &mut Vec<Event>) -> bool {
    loop {
        let event = match framer.next() {
            Frame::NeedMore => return true,
            Frame::Unit(unit) => {
                assert!(unit.ends_with(b"\n"));
                match parse::command(unit, &FUZZ_LIMITS) {
                    Ok((used, command)) => {
                        assert_eq!(used, unit.len());
                        Event::Parsed(command.to_bytes())
                    }
                    Err(DecodeError::Failed { reason, .. }) => Event::Failed(reason),
                    Err(other) => panic!("a framed unit gave {other:?}"),
                }
            }
            Frame::Continue { length, .. } => Event::Continue(length),
            Frame::Rejected { reason, .. } => Event::Rejected(reason),
            Frame::Fatal { .. } => {
                events.push(Event::Fatal);
                return false;
            }
        };
        events.push(event);
    }
}

fn run(stream: &[u8], chunks: &mut dyn Iterator<Item = usize>) -> Vec<Event> {
    let mut framer = Framer::new(FUZZ_LIMITS);
    let mut events = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let size = chunks.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (chunk, after) = rest.split_at(size);
        rest = after;
        framer.push(chunk);
        // Buffered bytes stay bounded by the limits (plus the chunk just pushed).
        assert!(
            framer.buffered_len()
                <= FUZZ_LIMITS.command_bytes_max + FUZZ_LIMITS.line_bytes_max + size,
            "{} buffered",
            framer.buffered_len()
        );
        if !drain(&mut framer, &mut events) {
            break;
        }
    }
    events
}

/// Target `imap_framer`: the first two bytes seed the chunk sizes, the rest is the
/// client stream. Feeding it whole and in random chunks must give the same events.
pub fn imap_framer(data: &[u8]) {
    let (seed, stream) = match data {
        [a, b, rest @ ..] => (u32::from(*a) << 8 | u32::from(*b), rest),
        _ => return,
    };
    let whole = run(stream, &mut std::iter::empty());
    let mut state = seed | 1;
    let mut random_sizes = std::iter::from_fn(|| {
        // xorshift32: cheap, deterministic chunk sizes from 1 to 64.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        Some((state % 64) as usize + 1)
    });
    assert_eq!(run(stream, &mut random_sizes), whole);
    assert_eq!(run(stream, &mut std::iter::repeat(1)), whole);
}
