//! Checks run by the fuzz target `pop3_command` (fuzz/fuzz_targets/pop3_command.rs)
//! and, on stable Rust, by the corpus replay test (tests/fuzz_corpus.rs). Each check
//! panics when an invariant of `parse`, `encode` or `session` does not hold.

use std::collections::HashMap;

use lifeboat_store::{BodyId, FolderId};

use crate::encode::{message_size, MessageEncoder};
use crate::parse::limits::{
    COMMAND_LINE_BYTES_MAX, RESPONSE_LINE_BYTES_MAX, SASL_RESPONSE_LINE_BYTES_MAX,
};
use crate::parse::{
    decode_command, decode_plain, decode_sasl_response, encode_plain, skip_line, Command,
    DecodeError,
};
use crate::session::{
    Effect, LoginOutcome, Maildrop, MaildropMessage, Session, SessionConfig, StateName,
};

/// Decoding results of a stream, the way a server decodes it: line after line,
/// dropping a line that is too long through its LF.
pub fn decode_stream<T>(
    chunks: &mut dyn Iterator<Item = &[u8]>,
    decode: impl Fn(&[u8]) -> Result<(T, usize), DecodeError>,
) -> Vec<Result<T, DecodeError>> {
    let mut results = Vec::new();
    let mut buffer: Vec<u8> = Vec::new();
    let mut skipping = false;
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        loop {
            if skipping {
                match skip_line(&buffer) {
                    Some(n) => {
                        buffer.drain(..n);
                        skipping = false;
                    }
                    None => {
                        buffer.clear();
                        break;
                    }
                }
            }
            match decode(&buffer) {
                Ok((value, consumed)) => {
                    assert!(consumed > 0 && consumed <= buffer.len());
                    buffer.drain(..consumed);
                    results.push(Ok(value));
                }
                Err(DecodeError::Incomplete) => break,
                Err(DecodeError::LineTooLong) => {
                    results.push(Err(DecodeError::LineTooLong));
                    skipping = true;
                }
                Err(error @ DecodeError::Failed { line_bytes, .. }) => {
                    assert!(line_bytes > 0 && line_bytes <= buffer.len());
                    buffer.drain(..line_bytes);
                    results.push(Err(error));
                }
            }
        }
    }
    results
}

/// Every check, over one fuzz input.
pub fn pop3_command(data: &[u8]) {
    commands(data);
    sasl_responses(data);
    plain(data);
    session(data);
}

/// The command decoder: chunking does not change results, decoded commands encode to
/// lines that decode to the same command, and strict prefixes of a decoded line are
/// incomplete.
fn commands(data: &[u8]) {
    let decode = |input: &[u8]| decode_command(input, COMMAND_LINE_BYTES_MAX);
    let whole = decode_stream(&mut std::iter::once(data), decode);
    for size in [1, 3, 64] {
        assert_eq!(decode_stream(&mut data.chunks(size), decode), whole);
    }
    let mut rest = data;
    while let Some(lf) = memchr::memchr(b'\n', rest) {
        let line = &rest[..=lf];
        if let Ok((command, consumed)) = decode(line) {
            assert_eq!(consumed, line.len());
            for end in 0..line.len() {
                assert_eq!(decode(&line[..end]), Err(DecodeError::Incomplete));
            }
            round_trip(&command);
        }
        rest = &rest[lf + 1..];
    }
    for command in whole.into_iter().flatten() {
        round_trip(&command);
    }
}

fn round_trip(command: &Command) {
    let mut line = Vec::new();
    command.encode(&mut line);
    assert_eq!(
        decode_command(&line, usize::MAX),
        Ok((command.clone(), line.len())),
        "{:?}",
        String::from_utf8_lossy(&line)
    );
}

/// The SASL response decoder: chunking does not change results; round trip.
fn sasl_responses(data: &[u8]) {
    let decode = |input: &[u8]| decode_sasl_response(input, SASL_RESPONSE_LINE_BYTES_MAX);
    let whole = decode_stream(&mut std::iter::once(data), decode);
    assert_eq!(decode_stream(&mut data.chunks(5), decode), whole);
    for response in whole.into_iter().flatten() {
        let mut line = Vec::new();
        response.encode(&mut line);
        assert_eq!(decode(&line), Ok((response.clone(), line.len())));
    }
}

/// PLAIN messages: what decodes, encodes back to the same credentials.
fn plain(data: &[u8]) {
    if let Ok(credentials) = decode_plain(data) {
        assert_eq!(decode_plain(&encode_plain(&credentials)), Ok(credentials));
    }
}

const FIXTURE_BODIES: [&[u8]; 3] = [
    b"Subject: a\r\n\r\n.dot\r\nline\r\n",
    b"Subject: b\n\nbare\nline feeds\n",
    b"no header end",
];

/// The session fed the input's lines, with a fixture environment: any user logs in
/// with the password `p` to a three-message maildrop, `busy` is in use. The first
/// byte picks TLS and the plaintext policy. Checks that replies are CRLF lines, that
/// status lines stay within RFC 2449's 512 octets, that the store is only asked to
/// change after QUIT, and that the session ends when it says so.
fn session(data: &[u8]) {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let config = SessionConfig {
        hostname: "pop.example.test".to_string(),
        tls_available: flags & 1 == 0,
        plaintext_login_allowed: flags & 2 == 0,
    };
    let mut session = Session::new(config, flags & 4 != 0);
    let bodies: HashMap<BodyId, &[u8]> = FIXTURE_BODIES
        .iter()
        .enumerate()
        .map(|(i, body)| (BodyId(i as u64 + 1), *body))
        .collect();
    let mut out = Vec::new();
    session.greeting(&mut out);
    check_replies(&out);
    for line in data.split_inclusive(|&b| b == b'\n') {
        out.clear();
        let was_quit = matches!(
            decode_command(line, COMMAND_LINE_BYTES_MAX),
            Ok((Command::Quit, _))
        );
        let before = session.state();
        let mut effect = if line.len() > 1024 {
            session.line_too_long(&mut out)
        } else {
            session.receive_line(line, &mut out)
        };
        loop {
            match effect {
                Effect::None => break,
                Effect::CheckLogin(request) => {
                    let outcome = match (request.user.as_str(), request.password.as_str()) {
                        ("busy", _) => LoginOutcome::InUse,
                        (user, "p") => LoginOutcome::LoggedIn(fixture_maildrop(user, &bodies)),
                        _ => LoginOutcome::Invalid,
                    };
                    effect = session.login_checked(outcome, &mut out);
                }
                Effect::StartTls => {
                    assert!(!session.is_tls());
                    session.tls_started();
                    assert!(session.is_tls());
                    break;
                }
                Effect::SendMessage(send) => {
                    let body = bodies[&send.body];
                    let mut encoder = send.encoder;
                    let mut rounds = 0;
                    while !encoder.encode(body, &mut out, 16) {
                        rounds += 1;
                        assert!(rounds <= body.len() + 2);
                    }
                    break;
                }
                Effect::Commit(request) => {
                    assert!(was_quit && before == StateName::Transaction);
                    assert!(!request.expunge.is_empty() || !request.seen.is_empty());
                    assert_eq!(session.state(), StateName::Update);
                    effect = session.committed(Ok(()), &mut out);
                }
                Effect::Close => {
                    assert_eq!(session.state(), StateName::Closed);
                    break;
                }
            }
        }
        check_replies(&out);
    }
}

fn fixture_maildrop(user: &str, bodies: &HashMap<BodyId, &[u8]>) -> Maildrop {
    let messages = (1..=3u64)
        .map(|id| MaildropMessage {
            uid: id as u32 * 10,
            body: BodyId(id),
            size_bytes: message_size(bodies[&BodyId(id)]),
            seen: id == 2,
        })
        .collect();
    Maildrop::new(user.to_string(), FolderId(1), 42, messages)
}

fn check_replies(out: &[u8]) {
    if out.is_empty() {
        return;
    }
    assert!(out.ends_with(b"\r\n"), "{:?}", String::from_utf8_lossy(out));
    for (index, byte) in out.iter().enumerate() {
        if *byte == b'\n' {
            assert!(index > 0 && out[index - 1] == b'\r', "bare LF in output");
        }
    }
    let first = out.split(|&b| b == b'\n').next().unwrap_or_default();
    assert!(first.len() < RESPONSE_LINE_BYTES_MAX);
    assert!(
        first.starts_with(b"+OK") || first.starts_with(b"-ERR") || first.starts_with(b"+ "),
        "{:?}",
        String::from_utf8_lossy(first)
    );
}

/// Target `pop3_message`: the first byte picks the chunk size and a TOP line count,
/// the rest is a stored message (any bytes: mail arrives from anyone). RETR and TOP
/// responses, sent in chunks as the server sends them:
///
/// - are CRLF lines, byte-stuffed, with the terminator only at the end, and no chunk
///   passes its size by more than the stuffing and line ends;
/// - do not depend on the chunk size;
/// - give the client back the message with every line ended by CRLF, exactly
///   [`message_size`] octets for RETR (what LIST and STAT announce, RFC 1939 §11);
/// - for TOP n, the header, the blank line and the first n body lines of that.
pub fn pop3_message(data: &[u8]) {
    let Some((&control, message)) = data.split_first() else {
        return;
    };
    let chunk_bytes = 1 + usize::from(control & 0x3f) * 4;
    let retr = send(message, MessageEncoder::retr(), chunk_bytes);
    assert_eq!(
        send(message, MessageEncoder::retr(), 1 << 20),
        retr,
        "the chunk size changed the response"
    );
    let received = unstuff(&retr);
    let expected = crlf_lines(message);
    assert_eq!(received, expected.concat());
    assert_eq!(received.len() as u64, message_size(message));

    let header_lines = expected
        .iter()
        .position(|line| *line == b"\r\n")
        .map_or(expected.len(), |blank| blank + 1);
    for lines in [0, 1, u64::from(control >> 6) + 2, u64::MAX] {
        let top = unstuff(&send(message, MessageEncoder::top(lines), chunk_bytes));
        let end = header_lines
            .saturating_add(usize::try_from(lines).unwrap_or(usize::MAX))
            .min(expected.len());
        assert_eq!(top, expected[..end].concat(), "TOP {lines}");
    }
}

/// The whole response for `message`, sent in chunks of about `chunk_bytes`.
fn send(message: &[u8], mut encoder: MessageEncoder, chunk_bytes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut calls = 0;
    loop {
        let before = out.len();
        let done = encoder.encode(message, &mut out, chunk_bytes);
        assert!(
            out.len() - before <= chunk_bytes + 5,
            "a chunk of {} bytes for {chunk_bytes}",
            out.len() - before
        );
        calls += 1;
        assert!(calls <= message.len() + 2, "no progress");
        if done {
            assert!(encoder.is_finished());
            return out;
        }
    }
}

/// What a client makes of a multi-line response (RFC 1939 §3): CRLF lines, the
/// leading `.` of a stuffed line removed, up to the `.` CRLF that ends it.
fn unstuff(response: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut lines = response.split_inclusive(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        assert!(line.ends_with(b"\r\n"), "{line:?}");
        assert!(
            !line[..line.len() - 2].contains(&b'\n'),
            "LF inside {line:?}"
        );
        if lines.peek().is_none() {
            assert_eq!(line, b".\r\n", "the terminator ends the response");
            return out;
        }
        assert_ne!(line, b".\r\n", "early terminator");
        if line.starts_with(b".") {
            out.extend_from_slice(&line[1..]);
        } else {
            out.extend_from_slice(line);
        }
    }
    panic!("no terminator");
}

/// The lines of `message` as POP3 sends them: each line end (LF, or CR LF) made CRLF,
/// and a last line without one given one.
fn crlf_lines(message: &[u8]) -> Vec<Vec<u8>> {
    message
        .split_inclusive(|&b| b == b'\n')
        .map(|line| {
            let content = line.strip_suffix(b"\n").unwrap_or(line);
            let content = if line.ends_with(b"\n") {
                content.strip_suffix(b"\r").unwrap_or(content)
            } else {
                content
            };
            [content, b"\r\n"].concat()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_sample_session_passes_every_check() {
        super::pop3_command(
            b"\x00CAPA\r\nUSER u\r\nPASS p\r\nLIST\r\nRETR 1\r\nTOP 2 1\r\nDELE 3\r\nRETR 1\r\nQUIT\r\n",
        );
        super::pop3_command(b"\x00AUTH PLAIN AHUAcA==\r\nSTAT\r\nQUIT\r\n");
    }
}
