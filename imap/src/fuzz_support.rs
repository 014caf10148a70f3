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

/// Target `imap_mime`: the input is a stored message. What FETCH and SEARCH take from
/// it ([`crate::mime::Parsed`], at each of its parse depths) never panics or exhausts
/// the stack, and:
///
/// - ENVELOPE, BODY and BODYSTRUCTURE encode to one well-formed FETCH response: its
///   strings are quoted or exact literals, its parentheses balance, and it ends with
///   its only CRLF outside literals, so no header can inject a response line;
/// - ENVELOPE is the same whether the message was parsed whole or header only;
/// - BODYSTRUCTURE nests no deeper than [`crate::mime::MIME_DEPTH_MAX`];
/// - `BODY[HEADER]` and `BODY[TEXT]` split the message, and no section is longer
///   than the message (plus the blank line `HEADER.FIELDS` ends with).
pub fn imap_mime(data: &[u8]) {
    use std::num::NonZeroU32;

    use crate::mime::{Parsed, MIME_DEPTH_MAX};
    use crate::types::{Data, FetchData, IString, Part, Response, Section};

    let full = Parsed::full(data);
    let headers_only = Parsed::headers_only(data);
    let raw_only = Parsed::raw_only(data);
    let envelope = full.envelope();
    assert_eq!(
        headers_only.envelope(),
        envelope,
        "the envelope depends on how much was parsed"
    );
    let structure = full.body_structure();
    assert!(depth(&structure) <= MIME_DEPTH_MAX + 1);
    let mut out = Vec::new();
    Response::Data(Data::Fetch {
        sequence_number: NonZeroU32::MIN,
        items: vec![
            FetchData::Envelope(envelope),
            FetchData::Body(structure.clone()),
            FetchData::BodyStructure(structure),
            FetchData::BodyStructure(headers_only.body_structure()),
            FetchData::BodyStructure(raw_only.body_structure()),
        ],
    })
    .encode(&mut out);
    check_response(&out);

    let header = full.section(Some(&Section::Header(None)));
    let text = full.section(Some(&Section::Text(None)));
    assert_eq!([&header[..], &text[..]].concat(), data);
    let part = |numbers: &[u32]| {
        Part::new(
            numbers
                .iter()
                .filter_map(|&number| NonZeroU32::new(number))
                .collect(),
        )
        .unwrap_or_else(|| unreachable!("the lists below are not empty"))
    };
    let names = vec![
        IString::try_from("Subject").unwrap_or_else(|_| unreachable!()),
        IString::try_from("content-type").unwrap_or_else(|_| unreachable!()),
    ];
    let sections = [
        Section::Part(part(&[1])),
        Section::Part(part(&[2])),
        Section::Part(part(&[1, 1])),
        Section::Part(part(&[2, 1])),
        Section::Part(part(&[2, 2, 1])),
        Section::Part(part(&[1, 1, 1, 1])),
        Section::Mime(part(&[1])),
        Section::Mime(part(&[2, 1])),
        Section::Header(Some(part(&[1]))),
        Section::Header(Some(part(&[2]))),
        Section::Text(Some(part(&[2]))),
        Section::HeaderFields(None, names.clone()),
        Section::HeaderFieldsNot(None, names.clone()),
        Section::HeaderFields(Some(part(&[2])), names),
    ];
    for parsed in [&full, &headers_only, &raw_only] {
        for section in &sections {
            let octets = parsed.section(Some(section));
            assert!(
                octets.len() <= data.len() + 2,
                "{section:?}: {} octets",
                octets.len()
            );
        }
        let _ = parsed.header_values("subject");
        let _ = parsed.header_values("from");
        let _ = parsed.body_texts();
        let _ = parsed.sent_date();
    }
}

fn depth(structure: &crate::types::BodyStructure<'_>) -> usize {
    use crate::types::{BodyStructure, SpecificFields};
    match structure {
        BodyStructure::Multi { bodies, .. } => 1 + bodies.iter().map(depth).max().unwrap_or(0),
        BodyStructure::Single { body, .. } => match &body.specific {
            SpecificFields::Message { body_structure, .. } => 1 + depth(body_structure),
            _ => 1,
        },
    }
}

/// A response is one line of IMAP tokens (RFC 3501 §9): quoted strings without CR or
/// LF, literals whose length is exact, atoms, balanced parentheses and brackets, and a
/// CRLF only at the end (and inside literals).
fn check_response(response: &[u8]) {
    let show = || String::from_utf8_lossy(response).into_owned();
    let mut position = 0;
    let mut nesting: usize = 0;
    while position < response.len() {
        match response[position] {
            b'(' | b'[' => {
                nesting += 1;
                position += 1;
            }
            b')' | b']' => {
                nesting = nesting
                    .checked_sub(1)
                    .unwrap_or_else(|| panic!("{}", show()));
                position += 1;
            }
            b' ' => position += 1,
            b'"' => {
                position += 1;
                loop {
                    match response.get(position) {
                        Some(b'\\') => {
                            assert!(
                                matches!(response.get(position + 1), Some(b'\\' | b'"')),
                                "{}",
                                show()
                            );
                            position += 2;
                        }
                        Some(b'"') => {
                            position += 1;
                            break;
                        }
                        Some(b'\r' | b'\n' | 0) | None => panic!("bad quoted string: {}", show()),
                        Some(_) => position += 1,
                    }
                }
            }
            b'{' => {
                let close = response[position..]
                    .iter()
                    .position(|&byte| byte == b'}')
                    .unwrap_or_else(|| panic!("{}", show()));
                let digits = &response[position + 1..position + close];
                let length: usize = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|digits| digits.parse().ok())
                    .unwrap_or_else(|| panic!("literal length: {}", show()));
                position += close + 1;
                assert!(response[position..].starts_with(b"\r\n"), "{}", show());
                position += 2 + length;
                assert!(
                    position <= response.len(),
                    "literal past the end: {}",
                    show()
                );
            }
            b'\r' => {
                assert_eq!(&response[position..], b"\r\n", "CRLF inside: {}", show());
                assert_eq!(nesting, 0, "{}", show());
                return;
            }
            _ => {
                while let Some(&byte) = response.get(position) {
                    if matches!(byte, b' ' | b'(' | b')' | b'[' | b']' | b'\r' | b'"' | b'{') {
                        break;
                    }
                    assert!(byte > 0x20 && byte < 0x7f, "atom byte {byte}: {}", show());
                    position += 1;
                }
            }
        }
    }
    panic!("no CRLF at the end: {}", show());
}
