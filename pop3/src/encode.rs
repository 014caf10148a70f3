//! The server side of the wire: status lines with response codes, SASL challenges,
//! multi-line responses and messages, as pure functions over bytes.
//!
//! Invariants:
//! - Every status line is `+OK` or `-ERR`, optionally a response code and text, and
//!   CRLF (RFC 1939 §3, RFC 2449 §8); texts carry no CR or LF (checked in debug
//!   builds; every text comes from this crate).
//! - A multi-line response ends with `.` CRLF and no line of it starts with a bare
//!   `.`: lines starting with the termination octet are byte-stuffed (RFC 1939 §3).
//! - [`MessageEncoder`] sends a message with every line ended by CRLF, whatever the
//!   stored line ends were, and [`message_size`] is exactly the number of octets it
//!   sends before stuffing and termination: the size LIST and STAT report
//!   (RFC 1939 §11).
//! - [`MessageEncoder`] works in bounded chunks, so a message never needs a second
//!   buffer of its own size.

#![forbid(unsafe_code)]

use memchr::{memchr, memchr_iter};

/// A response code in brackets after `-ERR` (RFC 2449 §8, RFC 3206).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponseCode {
    /// `IN-USE` (RFC 2449 §8.1.1): the maildrop is locked by another POP3 session.
    InUse,
    /// `LOGIN-DELAY` (RFC 2449 §8.1.2): the user logged in too recently.
    LoginDelay,
    /// `SYS/TEMP` (RFC 3206 §4): a temporary problem; trying later may work.
    SysTemp,
    /// `SYS/PERM` (RFC 3206 §4): a permanent problem; trying again will not help.
    SysPerm,
    /// `AUTH` (RFC 3206 §5): the credentials are at fault, or the way they were sent.
    Auth,
}

impl ResponseCode {
    /// The code as written between the brackets.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseCode::InUse => "IN-USE",
            ResponseCode::LoginDelay => "LOGIN-DELAY",
            ResponseCode::SysTemp => "SYS/TEMP",
            ResponseCode::SysPerm => "SYS/PERM",
            ResponseCode::Auth => "AUTH",
        }
    }
}

fn text(out: &mut Vec<u8>, text: &str) {
    debug_assert!(
        !text.contains(['\r', '\n']),
        "response text with a line break"
    );
    if !text.is_empty() {
        out.push(b' ');
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `+OK text` CRLF (`+OK` CRLF for an empty text) — RFC 1939 §3.
pub fn ok(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(b"+OK");
    text(out, message);
}

/// Appends `-ERR [code] text` CRLF — RFC 1939 §3, RFC 2449 §8.
pub fn err(out: &mut Vec<u8>, code: Option<ResponseCode>, message: &str) {
    out.extend_from_slice(b"-ERR");
    if let Some(code) = code {
        out.extend_from_slice(b" [");
        out.extend_from_slice(code.as_str().as_bytes());
        out.push(b']');
    }
    text(out, message);
}

/// Appends `continue-req = "+" SP [base64] CRLF` — RFC 5034 §6.
pub fn continue_req(out: &mut Vec<u8>, challenge: &[u8]) {
    out.extend_from_slice(b"+ ");
    lifeboat_net::wire::base64_encode(challenge, out);
    out.extend_from_slice(b"\r\n");
}

/// Appends one line of a multi-line response, byte-stuffed (RFC 1939 §3). `line`
/// holds no CR or LF.
pub fn multiline_line(out: &mut Vec<u8>, line: &[u8]) {
    debug_assert!(memchr::memchr2(b'\r', b'\n', line).is_none());
    if line.first() == Some(&b'.') {
        out.push(b'.');
    }
    out.extend_from_slice(line);
    out.extend_from_slice(b"\r\n");
}

/// Appends the termination of a multi-line response: `.` CRLF (RFC 1939 §3).
pub fn multiline_end(out: &mut Vec<u8>) {
    out.extend_from_slice(b".\r\n");
}

/// The size of `message` as POP3 sends it: every line ended by CRLF (a bare LF counts
/// two octets, and a last line without a line end gets one), before byte-stuffing —
/// RFC 1939 §11.
pub fn message_size(message: &[u8]) -> u64 {
    let bare_line_feeds = memchr_iter(b'\n', message)
        .filter(|&lf| lf == 0 || message[lf - 1] != b'\r')
        .count();
    let unterminated = !message.is_empty() && message.last() != Some(&b'\n');
    message.len() as u64 + bare_line_feeds as u64 + if unterminated { 2 } else { 0 }
}

/// Sends a message (RETR) or its header and first lines (TOP) as the body of a
/// multi-line response, in chunks: line ends normalised to CRLF, lines starting with
/// `.` byte-stuffed, `.` CRLF at the end (RFC 1939 §3, §5, §7).
#[derive(Clone, Debug)]
pub struct MessageEncoder {
    /// Next byte of the message to send.
    position: usize,
    /// Content bytes of the current line sent so far; `None` between lines.
    line_sent: Option<usize>,
    /// Still in the header (TOP counts body lines only after the blank line).
    in_header: bool,
    /// For TOP: body lines still to send.
    body_lines_left: Option<u64>,
    finished: bool,
}

impl MessageEncoder {
    /// The whole message (RETR).
    pub fn retr() -> MessageEncoder {
        MessageEncoder {
            position: 0,
            line_sent: None,
            in_header: true,
            body_lines_left: None,
            finished: false,
        }
    }

    /// The header, the blank line and `lines` lines of the body (TOP). RFC 1939 §7:
    /// asking for more lines than the body has sends the entire message.
    pub fn top(lines: u64) -> MessageEncoder {
        MessageEncoder {
            body_lines_left: Some(lines),
            ..MessageEncoder::retr()
        }
    }

    /// Whether the terminating `.` CRLF has been appended.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Appends the next part of the response for `message` (which must be the same
    /// bytes on every call) to `out`, stopping once about `chunk_bytes` bytes have been
    /// appended (a few more for stuffing and line ends). Returns true when the
    /// response is complete, terminator included.
    pub fn encode(&mut self, message: &[u8], out: &mut Vec<u8>, chunk_bytes: usize) -> bool {
        let start = out.len();
        let chunk_bytes = chunk_bytes.max(1);
        while !self.finished {
            let budget = chunk_bytes.saturating_sub(out.len() - start);
            if budget == 0 {
                return false;
            }
            let sent = match self.line_sent {
                Some(sent) => sent,
                None => {
                    let more_lines = self.position < message.len()
                        && (self.in_header || self.body_lines_left != Some(0));
                    if !more_lines {
                        multiline_end(out);
                        self.finished = true;
                        break;
                    }
                    if message[self.position] == b'.' {
                        out.push(b'.');
                    }
                    0
                }
            };
            let rest = &message[self.position..];
            let (content_end, line_end) = match memchr(b'\n', rest) {
                Some(lf) if lf > 0 && rest[lf - 1] == b'\r' => (lf - 1, lf + 1),
                Some(lf) => (lf, lf + 1),
                None => (rest.len(), rest.len()),
            };
            if content_end > budget {
                // A long line: send part of it now and the rest with the next chunk.
                out.extend_from_slice(&rest[..budget]);
                self.position += budget;
                self.line_sent = Some(sent + budget);
                continue;
            }
            out.extend_from_slice(&rest[..content_end]);
            out.extend_from_slice(b"\r\n");
            self.position += line_end;
            self.line_sent = None;
            let blank = sent + content_end == 0;
            if self.in_header {
                self.in_header = !blank;
            } else if let Some(left) = &mut self.body_lines_left {
                *left -= 1;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(message: &[u8], mut encoder: MessageEncoder, chunk_bytes: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rounds = 0;
        while !encoder.encode(message, &mut out, chunk_bytes) {
            rounds += 1;
            assert!(rounds < 1_000_000);
        }
        assert!(encoder.is_finished());
        out
    }

    /// What a client makes of a multi-line response body (RFC 1939 §3).
    fn unstuff(response: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut lines = response.split_inclusive(|&b| b == b'\n').peekable();
        while let Some(line) = lines.next() {
            assert!(line.ends_with(b"\r\n"), "{line:?}");
            if lines.peek().is_none() {
                assert_eq!(line, b".\r\n");
                break;
            }
            assert_ne!(line, b".\r\n", "early termination");
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        out
    }

    #[test]
    fn retr_normalises_line_ends_and_stuffs_dots() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b".\r\n"),
            (b"a\r\n", b"a\r\n.\r\n"),
            (b"a\nb\n", b"a\r\nb\r\n.\r\n"),
            (b"a\r\nb", b"a\r\nb\r\n.\r\n"),
            (b".\r\n", b"..\r\n.\r\n"),
            (b"..x\r\n.\r\n", b"...x\r\n..\r\n.\r\n"),
            (b"\r\n\r\n", b"\r\n\r\n.\r\n"),
            (b"x\r\r\n", b"x\r\r\n.\r\n"),
            (b"\n", b"\r\n.\r\n"),
        ];
        for (message, expected) in cases {
            for chunk_bytes in [1, 2, 3, 7, 64 * 1024] {
                let out = whole(message, MessageEncoder::retr(), chunk_bytes);
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(expected),
                    "message {message:?}, chunks of {chunk_bytes}"
                );
                assert_eq!(unstuff(&out).len() as u64, message_size(message));
            }
        }
    }

    #[test]
    fn top_sends_header_blank_line_and_n_body_lines() {
        let message = b"A: 1\r\nB: 2\r\n\r\n.one\r\ntwo\r\nthree\r\n";
        let top = |n| String::from_utf8(whole(message, MessageEncoder::top(n), 5)).unwrap();
        assert_eq!(top(0), "A: 1\r\nB: 2\r\n\r\n.\r\n");
        assert_eq!(top(1), "A: 1\r\nB: 2\r\n\r\n..one\r\n.\r\n");
        assert_eq!(top(3), "A: 1\r\nB: 2\r\n\r\n..one\r\ntwo\r\nthree\r\n.\r\n");
        assert_eq!(top(99), top(3));
        // No blank line: the header is everything.
        let header_only = b"A: 1\nB: 2";
        assert_eq!(
            whole(header_only, MessageEncoder::top(0), 100),
            b"A: 1\r\nB: 2\r\n.\r\n"
        );
    }

    #[test]
    fn chunks_stay_bounded_on_long_lines() {
        let message = vec![b'x'; 100_000];
        let mut encoder = MessageEncoder::retr();
        let mut out = Vec::new();
        let mut chunks = 0;
        loop {
            out.clear();
            let done = encoder.encode(&message, &mut out, 4096);
            assert!(out.len() <= 4096 + 5, "chunk of {}", out.len());
            chunks += 1;
            if done {
                break;
            }
        }
        assert!(chunks >= 24);
    }

    #[test]
    fn status_lines() {
        let mut out = Vec::new();
        ok(&mut out, "");
        ok(&mut out, "2 320");
        err(&mut out, Some(ResponseCode::InUse), "Locked");
        err(&mut out, None, "No such message");
        continue_req(&mut out, b"");
        continue_req(&mut out, b"hi");
        assert_eq!(
            out,
            b"+OK\r\n+OK 2 320\r\n-ERR [IN-USE] Locked\r\n-ERR No such message\r\n+ \r\n+ aGk=\r\n"
        );
    }
}
