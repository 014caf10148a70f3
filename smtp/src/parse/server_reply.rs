//! Replies as a client reads them from a server (RFC 5321 §4.2): what the relay gets
//! back from every upstream and MX it talks to, so from anyone on the internet.
//!
//! Invariants:
//! - [`decode_reply`] reads at most `lines_max` lines of at most `line_bytes_max`
//!   bytes each (line end included), so its work and the memory a reply can make a
//!   client hold are bounded whatever the server sends.
//! - Its answer depends only on the bytes, never on how they arrived: for any prefix
//!   of a stream it returns [`ReplyError::Incomplete`] or exactly what it returns for
//!   the whole stream. `Incomplete` is returned only while the last line has no LF and
//!   is shorter than `line_bytes_max`.
//! - Every line of a decoded reply carries the same code, and no text holds a CR, an
//!   LF or another control character but HT, so no text can pass for a line of its
//!   own in a log, a DSN or a reply passed back to a sender.
//!
//! Tolerated, because real servers send it: a bare LF as line end; a code followed
//! directly by the line end (`250` CRLF is in the grammar for a last line, and `250-`
//! CRLF for the others), or by a space and nothing (`250 ` CRLF, where `textstring`
//! would need a character); bytes of 0x80 and above in the text (servers that speak
//! SMTPUTF8 send UTF-8 addresses there, older ones Latin-1 greetings), which the
//! caller decodes as it sees fit.
#![forbid(unsafe_code)]

use memchr::memchr;

use super::reply::ReplyCode;

/// A reply: its code and the text of each line, in order, without the code, the
/// separator or the line end. A reply has at least one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerReply<'a> {
    code: ReplyCode,
    lines: Vec<&'a [u8]>,
}

impl<'a> ServerReply<'a> {
    /// The code every line carries.
    pub fn code(&self) -> ReplyCode {
        self.code
    }

    /// The text of each line (possibly empty).
    pub fn lines(&self) -> &[&'a [u8]] {
        &self.lines
    }
}

/// Why [`decode_reply`] returned no reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The reply's last line has not arrived yet; nothing was consumed. Read more and
    /// call again with the same bytes plus the new ones.
    #[error("incomplete reply")]
    Incomplete,
    /// What arrived is not a reply this client accepts. The conversation cannot go on:
    /// the client no longer knows where the server's next reply starts.
    #[error("{0}")]
    Failed(ReplyFault),
}

/// What made the bytes not a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyFault {
    /// No LF within the line length limit.
    #[error("reply line too long")]
    LineTooLong,
    /// More lines than the limit without a last line.
    #[error("reply has too many lines")]
    TooManyLines,
    /// A line does not start with a reply code (`%x32-35 %x30-35 %x30-39`).
    #[error("no reply code")]
    Code,
    /// The code is followed by something other than SP, `-` or the line end.
    #[error("bad separator after the reply code")]
    Separator,
    /// A CR that does not end the line, a NUL or another control character in the
    /// text (RFC 5321 §2.3.8, §4.2).
    #[error("control character in reply text")]
    ControlCharacter,
    /// A line of a multiline reply carries another code than the first line
    /// (RFC 5321 §4.2.1).
    #[error("reply lines carry different codes")]
    CodeMismatch,
}

/// `Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ]
/// CRLF` — RFC 5321 §4.2. Decodes the reply at the start of `input` and returns it
/// with the number of bytes it took (pipelined replies after it are left alone).
///
/// A line is at most `line_bytes_max` bytes with its line end, a reply at most
/// `lines_max` lines (RFC 5321 §4.5.3.1.5 says 512 bytes a line; it sets no limit on
/// lines).
///
/// RFC 5321 §4.2.1: "In a multiline reply, the reply code on each of the lines MUST be
/// the same." A reply whose lines disagree fails ([`ReplyFault::CodeMismatch`])
/// instead of being read as one of its codes: the code decides whether a message was
/// taken, and there is no safe pick. Trusting a 2xx that was meant as a 5xx would drop
/// a message the server refused; trusting the 5xx bounces one it may have taken.
/// Failing is a temporary failure for the relay: the message stays queued and is
/// tried again, so nothing is lost or bounced on a guess. Mismatched codes are also
/// what a client sees when it has lost track of which reply answers which command.
pub fn decode_reply(
    input: &[u8],
    line_bytes_max: usize,
    lines_max: usize,
) -> Result<(ServerReply<'_>, usize), ReplyError> {
    let mut code = None;
    let mut lines = Vec::new();
    let mut position = 0;
    loop {
        let rest = &input[position..];
        let window = &rest[..rest.len().min(line_bytes_max)];
        let Some(lf) = memchr(b'\n', window) else {
            return Err(if rest.len() >= line_bytes_max {
                ReplyError::Failed(ReplyFault::LineTooLong)
            } else {
                ReplyError::Incomplete
            });
        };
        let (line_code, last, text) = reply_line(&rest[..lf]).map_err(ReplyError::Failed)?;
        if *code.get_or_insert(line_code) != line_code {
            return Err(ReplyError::Failed(ReplyFault::CodeMismatch));
        }
        lines.push(text);
        position += lf + 1;
        if last {
            return Ok((
                ServerReply {
                    code: line_code,
                    lines,
                },
                position,
            ));
        }
        if lines.len() >= lines_max {
            return Err(ReplyError::Failed(ReplyFault::TooManyLines));
        }
    }
}

/// One line of a reply without its LF: `Reply-code ( "-" / SP / end ) [ textstring ]`
/// with an optional CR before the LF. Returns the code, whether this is the last line
/// and the text.
fn reply_line(line: &[u8]) -> Result<(ReplyCode, bool, &[u8]), ReplyFault> {
    // RFC 5321 §2.3.8 wants CRLF; a bare LF is accepted (see the module docs).
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let code = line.get(..3).and_then(reply_code).ok_or(ReplyFault::Code)?;
    let (last, text) = match line.get(3) {
        None => (true, &line[3..]),
        Some(b' ') => (true, &line[4..]),
        Some(b'-') => (false, &line[4..]),
        Some(_) => return Err(ReplyFault::Separator),
    };
    Ok((code, last, textstring(text)?))
}

/// `Reply-code = %x32-35 %x30-35 %x30-39` — RFC 5321 §4.2.
fn reply_code(digits: &[u8]) -> Option<ReplyCode> {
    let [hundreds @ b'2'..=b'5', tens @ b'0'..=b'5', units @ b'0'..=b'9'] = *digits else {
        return None;
    };
    let code = u16::from(hundreds - b'0') * 100 + u16::from(tens - b'0') * 10;
    ReplyCode::try_from(code + u16::from(units - b'0')).ok()
}

/// `textstring = 1*(%d09 / %d32-126)` — RFC 5321 §4.2, here possibly empty and with
/// any byte of 0x80 and above (see the module docs).
fn textstring(text: &[u8]) -> Result<&[u8], ReplyFault> {
    if text
        .iter()
        .any(|&byte| (byte < 0x20 && byte != b'\t') || byte == 0x7f)
    {
        return Err(ReplyFault::ControlCharacter);
    }
    Ok(text)
}
