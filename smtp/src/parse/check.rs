//! Invariant checks over arbitrary input, shared by the fuzz targets (`fuzz/`) and the
//! tests that replay the fuzz corpora on stable Rust. Each check panics when an
//! invariant of the module docs does not hold; nothing else in the crate calls them.
//!
//! The drivers here ([`decode_commands`], [`decode_data`], [`decode_replies`]) feed a
//! stream to the decoders the way a session or the relay's client does, which is also
//! what the chunked table tests use.

use super::limits::{AUTH_LINE_BYTES_MAX, REPLY_LINE_BYTES_MAX};
use super::{
    decode_auth_response, decode_command, decode_reply, encode_data, encode_reply, skip_line,
    Address, Command, DataDecoder, DataError, DataStatus, DecodeError, ForwardPath, Reason,
    ReplyCode, ReplyError, ReplyFault, ReversePath,
};

/// What a session sees when it feeds a byte stream to [`decode_command`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandEvent {
    /// A command was decoded.
    Command(Command),
    /// A complete line was rejected.
    Failed(Reason),
    /// A line passed the length limit; the session skips to the next LF.
    LineTooLong,
}

/// The events of a command stream delivered in `chunks`, and the number of bytes left
/// over at the end (an incomplete line).
pub fn decode_commands<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    line_bytes_max: usize,
) -> (Vec<CommandEvent>, usize) {
    let mut events = Vec::new();
    let mut buffer: Vec<u8> = Vec::new();
    let mut skipping = false;
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        loop {
            if skipping {
                match skip_line(&buffer) {
                    Some(skipped) => {
                        buffer.drain(..skipped);
                        skipping = false;
                    }
                    None => {
                        buffer.clear();
                        break;
                    }
                }
            }
            match decode_command(&buffer, line_bytes_max) {
                Ok((command, consumed)) => {
                    assert!(consumed > 0 && consumed <= buffer.len().min(line_bytes_max));
                    events.push(CommandEvent::Command(command));
                    buffer.drain(..consumed);
                }
                Err(DecodeError::Incomplete) => {
                    assert!(buffer.len() < line_bytes_max);
                    break;
                }
                Err(DecodeError::LineTooLong) => {
                    events.push(CommandEvent::LineTooLong);
                    skipping = true;
                }
                Err(DecodeError::Failed { reason, line_bytes }) => {
                    assert!(line_bytes > 0 && line_bytes <= buffer.len().min(line_bytes_max));
                    assert_eq!(buffer[line_bytes - 1], b'\n');
                    events.push(CommandEvent::Failed(reason));
                    buffer.drain(..line_bytes);
                }
            }
        }
    }
    (events, buffer.len())
}

/// The result of feeding a DATA body to [`DataDecoder`]: the status at the end of
/// data (with `consumed` counted from the start of the stream) or `NeedMore`, and the
/// output.
pub fn decode_data<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    message_bytes_max: u64,
) -> (DataStatus, Vec<u8>) {
    let mut decoder = DataDecoder::new(message_bytes_max);
    let mut out = Vec::new();
    let mut offset = 0;
    for chunk in chunks {
        match decoder.decode(chunk, &mut out) {
            DataStatus::NeedMore => offset += chunk.len(),
            DataStatus::End { consumed, outcome } => {
                assert!(consumed <= chunk.len());
                assert!(decoder.is_done());
                // Once done, the decoder consumes nothing more.
                assert!(matches!(
                    decoder.decode(b".\r\n", &mut Vec::new()),
                    DataStatus::End { consumed: 0, .. }
                ));
                return (
                    DataStatus::End {
                        consumed: offset + consumed,
                        outcome,
                    },
                    out,
                );
            }
        }
    }
    (DataStatus::NeedMore, out)
}

/// Split `input` into chunks whose sizes cycle through `sizes`.
pub fn chunks<'a>(input: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut rest = input;
    let mut index = 0;
    while !rest.is_empty() {
        let size = sizes[index % sizes.len()].clamp(1, rest.len());
        let (chunk, after) = rest.split_at(size);
        chunks.push(chunk);
        rest = after;
        index += 1;
    }
    chunks
}

/// Chunk sizes drawn from `seed`: a small xorshift sequence, sizes 1 to 64.
fn seeded_sizes(seed: u8) -> Vec<usize> {
    let mut state = u32::from(seed) | 0x100;
    (0..16)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            // Below 64 after the mask.
            1 + (state & 63) as usize
        })
        .collect()
}

/// The `smtp_command` fuzz target. The first byte picks the line limit and the
/// chunking; the rest is a client's byte stream. Checks that chunking changes nothing,
/// that every decoded command encodes to a line that decodes to the same command, and
/// that the AUTH continuation decoder holds the same properties.
pub fn check_command_stream(input: &[u8]) {
    let Some((&control, stream)) = input.split_first() else {
        return;
    };
    let line_bytes_max = 8 + usize::from(control & 0x3f) * 8;
    let whole = decode_commands([stream], line_bytes_max);
    let sizes = seeded_sizes(control);
    let chunked = decode_commands(chunks(stream, &sizes), line_bytes_max);
    assert_eq!(whole, chunked, "chunking changed the result");
    for event in &whole.0 {
        if let CommandEvent::Command(command) = event {
            check_command_round_trip(command);
        }
    }
    // A large limit: every command of the stream that is complete decodes.
    let (events, _) = decode_commands([stream], usize::MAX);
    for event in &events {
        if let CommandEvent::Command(command) = event {
            check_command_round_trip(command);
        }
    }
    check_auth_response(stream);
}

/// Decode → encode → decode gives the same command, and the values inside satisfy
/// their `TryFrom` constructors.
pub fn check_command_round_trip(command: &Command) {
    let mut encoded = Vec::new();
    command.encode(&mut encoded);
    let decoded = decode_command(&encoded, usize::MAX);
    assert_eq!(
        decoded,
        Ok((command.clone(), encoded.len())),
        "round trip of {:?}",
        String::from_utf8_lossy(&encoded)
    );
    let address = match command {
        Command::Mail {
            from: ReversePath::Mailbox(address),
            ..
        }
        | Command::Rcpt {
            to: ForwardPath::Mailbox(address),
            ..
        } => Some(address),
        _ => None,
    };
    if let Some(address) = address {
        assert_eq!(
            Address::try_from(address.to_string().as_str()).as_ref(),
            Ok(address)
        );
        if let Some(domain) = address.domain() {
            assert!(domain.as_str().len() <= super::limits::DOMAIN_BYTES_MAX);
        }
        assert!(address.local_part().encoded_len() <= super::limits::LOCAL_PART_BYTES_MAX);
    }
}

fn check_auth_response(stream: &[u8]) {
    if let Ok((response, consumed)) = decode_auth_response(stream, AUTH_LINE_BYTES_MAX) {
        assert!(consumed <= stream.len());
        let mut encoded = Vec::new();
        response.encode(&mut encoded);
        assert_eq!(
            decode_auth_response(&encoded, usize::MAX),
            Ok((response, encoded.len()))
        );
    }
}

/// The end of data as a reference implementation finds it: the first `<CRLF>.<CRLF>`,
/// counting the CRLF that ended the DATA command. Returns the body before the final
/// `.` CRLF and the number of bytes through the terminator.
pub fn reference_end(stream: &[u8]) -> Option<(&[u8], usize)> {
    if stream.starts_with(b".\r\n") {
        return Some((&stream[..0], 3));
    }
    stream
        .windows(5)
        .position(|window| window == b"\r\n.\r\n")
        .map(|at| (&stream[..at + 2], at + 5))
}

/// Reference un-stuffing of a body already known to have only CRLF line endings:
/// drop the first character of every line that starts with a period.
pub fn reference_unstuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut at_line_start = true;
    for &byte in body {
        if !(at_line_start && byte == b'.') {
            out.push(byte);
        }
        at_line_start = byte == b'\n';
    }
    out
}

/// True when `bytes` has a CR not followed by LF, an LF not preceded by CR, or a NUL.
pub fn has_bare_line_ending_or_nul(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(index, &byte)| match byte {
        b'\r' => bytes.get(index + 1) != Some(&b'\n'),
        b'\n' => index == 0 || bytes[index - 1] != b'\r',
        0 => true,
        _ => false,
    })
}

/// The `smtp_data` fuzz target. The first byte picks the size limit and chunking; the
/// rest is what follows a DATA command. Checks the decoder against the reference end,
/// un-stuffing and error classification, that chunking changes nothing, that a
/// successful output has no bare CR, LF or NUL, and that [`encode_data`] round trips.
pub fn check_data_stream(input: &[u8]) {
    let Some((&control, stream)) = input.split_first() else {
        return;
    };
    let message_bytes_max = match control & 0x7 {
        0 => u64::MAX,
        small => 1u64 << (small * 2),
    };
    let whole = decode_data([stream], message_bytes_max);
    let sizes = seeded_sizes(control);
    let chunked = decode_data(chunks(stream, &sizes), message_bytes_max);
    assert_eq!(whole, chunked, "chunking changed the result");
    let byte_at_a_time = decode_data(chunks(stream, &[1]), message_bytes_max);
    assert_eq!(whole, byte_at_a_time, "byte-at-a-time changed the result");

    let (status, out) = whole;
    match (reference_end(stream), status) {
        (None, DataStatus::NeedMore) => {}
        (Some((body, end)), DataStatus::End { consumed, outcome }) => {
            assert_eq!(consumed, end, "end of data at the wrong place");
            if has_bare_line_ending_or_nul(body) {
                assert!(outcome.is_err(), "bad line ending accepted");
            } else {
                let expected = reference_unstuff(body);
                if expected.len() as u64 > message_bytes_max {
                    assert_eq!(outcome, Err(DataError::TooBig));
                    assert_eq!(out.len() as u64, message_bytes_max);
                    assert!(expected.starts_with(&out));
                } else {
                    assert_eq!(outcome, Ok(expected.len() as u64));
                    assert_eq!(out, expected);
                }
            }
            if let Ok(size) = outcome {
                assert_eq!(out.len() as u64, size);
                assert!(!has_bare_line_ending_or_nul(&out));
                assert!(out.is_empty() || out.ends_with(b"\r\n"));
                check_data_round_trip(&out);
            }
        }
        (reference, status) => panic!("reference end {reference:?}, decoder {status:?}"),
    }
}

/// `encode_data` then `DataDecoder` gives the message back, for a message whose lines
/// end with CRLF.
pub fn check_data_round_trip(message: &[u8]) {
    let mut encoded = Vec::new();
    encode_data(message, &mut encoded);
    let (status, out) = decode_data([encoded.as_slice()], u64::MAX);
    assert_eq!(
        status,
        DataStatus::End {
            consumed: encoded.len(),
            outcome: Ok(message.len() as u64)
        }
    );
    assert_eq!(out, message);
}

/// What a client sees when it reads a server's byte stream with [`decode_reply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyEvent {
    /// A reply: its code, the text of each line, and the bytes it took.
    Reply {
        /// The code of every line.
        code: ReplyCode,
        /// The text of each line.
        lines: Vec<Vec<u8>>,
        /// Bytes of the stream it took.
        consumed: usize,
    },
    /// The stream is not a reply from here on; the client stops reading.
    Failed(ReplyFault),
}

/// The events of a server's byte stream delivered in `chunks`. Reading stops at the
/// first failure, as the relay's client does; bytes of an incomplete reply at the end
/// give no event.
pub fn decode_replies<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    line_bytes_max: usize,
    lines_max: usize,
) -> Vec<ReplyEvent> {
    let mut events = Vec::new();
    let mut buffer: Vec<u8> = Vec::new();
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        loop {
            match decode_reply(&buffer, line_bytes_max, lines_max) {
                Ok((reply, consumed)) => {
                    assert!(consumed > 0 && consumed <= buffer.len());
                    assert_eq!(buffer[consumed - 1], b'\n');
                    assert!(!reply.lines().is_empty() && reply.lines().len() <= lines_max);
                    events.push(ReplyEvent::Reply {
                        code: reply.code(),
                        lines: reply.lines().iter().map(|line| line.to_vec()).collect(),
                        consumed,
                    });
                    buffer.drain(..consumed);
                }
                Err(ReplyError::Incomplete) => {
                    // Only the last line may be waiting, and it is below the limit.
                    let tail = buffer
                        .iter()
                        .rposition(|&byte| byte == b'\n')
                        .map_or(buffer.len(), |lf| buffer.len() - lf - 1);
                    assert!(tail < line_bytes_max);
                    let lines = buffer.iter().filter(|&&byte| byte == b'\n').count();
                    assert!(lines < lines_max);
                    break;
                }
                Err(ReplyError::Failed(fault)) => {
                    events.push(ReplyEvent::Failed(fault));
                    return events;
                }
            }
        }
    }
    events
}

/// The replies of a stream as a second, line-by-line reading of RFC 5321 §4.2 finds
/// them, with the tolerances and limits of [`decode_reply`]: what the fuzz target
/// compares the decoder with.
pub fn reference_replies(
    stream: &[u8],
    line_bytes_max: usize,
    lines_max: usize,
) -> Vec<ReplyEvent> {
    let mut events = Vec::new();
    let mut reply: Option<(ReplyCode, Vec<Vec<u8>>)> = None;
    let mut consumed = 0;
    for line in stream.split_inclusive(|&byte| byte == b'\n') {
        let complete = line.ends_with(b"\n");
        let fault = if line.len() > line_bytes_max || (line.len() == line_bytes_max && !complete) {
            Err(ReplyFault::LineTooLong)
        } else if !complete {
            break;
        } else {
            reference_line(&line[..line.len() - 1])
        };
        let (code, last, text) = match fault {
            Ok(parts) => parts,
            Err(fault) => {
                events.push(ReplyEvent::Failed(fault));
                return events;
            }
        };
        consumed += line.len();
        let (first_code, lines) = reply.get_or_insert((code, Vec::new()));
        if *first_code != code {
            events.push(ReplyEvent::Failed(ReplyFault::CodeMismatch));
            return events;
        }
        lines.push(text.to_vec());
        if last {
            let (code, lines) = reply.take().unwrap_or_else(|| unreachable!());
            events.push(ReplyEvent::Reply {
                code,
                lines,
                consumed,
            });
            consumed = 0;
        } else if lines.len() >= lines_max {
            events.push(ReplyEvent::Failed(ReplyFault::TooManyLines));
            return events;
        }
    }
    events
}

/// One line without its LF: code, whether it is the last, text.
fn reference_line(line: &[u8]) -> Result<(ReplyCode, bool, &[u8]), ReplyFault> {
    let content = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = content.get(..3).ok_or(ReplyFault::Code)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(ReplyFault::Code);
    }
    let number = digits
        .iter()
        .fold(0u16, |number, digit| number * 10 + u16::from(digit - b'0'));
    let code = ReplyCode::try_from(number).map_err(|_| ReplyFault::Code)?;
    let (last, text) = match content.get(3) {
        None => (true, &b""[..]),
        Some(b' ') => (true, &content[4..]),
        Some(b'-') => (false, &content[4..]),
        Some(_) => return Err(ReplyFault::Separator),
    };
    if text.iter().any(|&b| b == 0x7f || (b < 0x20 && b != b'\t')) {
        return Err(ReplyFault::ControlCharacter);
    }
    Ok((code, last, text))
}

/// The `smtp_reply` fuzz target. The first byte picks the line and line-count limits
/// and the chunking; the rest is what a server sends. Checks that chunking changes
/// nothing, that the decoder agrees with [`reference_replies`], that every strict
/// prefix of a reply is incomplete, and that a reply written again by
/// [`encode_reply`] decodes to the same reply. Then the same with the relay's limits.
pub fn check_reply_stream(input: &[u8]) {
    let Some((&control, stream)) = input.split_first() else {
        return;
    };
    let line_bytes_max = 4 + usize::from(control & 0x1f) * 8;
    let lines_max = 1 + usize::from(control >> 5) * 3;
    check_replies(stream, control, line_bytes_max, lines_max);
    check_replies(stream, control, 2048, 100);
}

fn check_replies(stream: &[u8], control: u8, line_bytes_max: usize, lines_max: usize) {
    let whole = decode_replies([stream], line_bytes_max, lines_max);
    let sizes = seeded_sizes(control);
    let chunked = decode_replies(chunks(stream, &sizes), line_bytes_max, lines_max);
    assert_eq!(whole, chunked, "chunking changed the result");
    let byte_at_a_time = decode_replies(chunks(stream, &[1]), line_bytes_max, lines_max);
    assert_eq!(whole, byte_at_a_time, "byte-at-a-time changed the result");
    assert_eq!(
        whole,
        reference_replies(stream, line_bytes_max, lines_max),
        "the decoder and the reference disagree"
    );
    let mut rest = stream;
    for event in &whole {
        let ReplyEvent::Reply {
            code,
            lines,
            consumed,
        } = event
        else {
            break;
        };
        let reply = &rest[..*consumed];
        for end in [0, consumed / 2, consumed - 1] {
            assert_eq!(
                decode_reply(&reply[..end], line_bytes_max, lines_max),
                Err(ReplyError::Incomplete),
                "prefix of {end} bytes"
            );
        }
        check_reply_round_trip(*code, lines);
        rest = &rest[*consumed..];
    }
}

/// A reply whose text [`encode_reply`] writes unchanged (printable ASCII, short enough)
/// is decoded from its encoding to the same code and lines.
pub fn check_reply_round_trip(code: ReplyCode, lines: &[Vec<u8>]) {
    let printable = |line: &Vec<u8>| {
        line.iter()
            .all(|&byte| byte == b'\t' || (0x20..0x7f).contains(&byte))
            && line.len() + 6 <= REPLY_LINE_BYTES_MAX
    };
    if !lines.iter().all(printable) {
        return;
    }
    let texts: Vec<&str> = lines
        .iter()
        // Printable ASCII, checked above.
        .map(|line| std::str::from_utf8(line).unwrap_or_else(|_| unreachable!()))
        .collect();
    let mut encoded = Vec::new();
    encode_reply(code, None, &texts, &mut encoded);
    let decoded = decode_reply(&encoded, REPLY_LINE_BYTES_MAX, lines.len().max(1));
    let (reply, consumed) = decoded.unwrap_or_else(|error| {
        panic!(
            "{:?} does not decode: {error}",
            String::from_utf8_lossy(&encoded)
        )
    });
    assert_eq!(consumed, encoded.len());
    assert_eq!(reply.code(), code);
    assert_eq!(
        reply.lines(),
        texts.iter().map(|t| t.as_bytes()).collect::<Vec<_>>()
    );
}
