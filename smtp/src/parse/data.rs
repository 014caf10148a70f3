//! The DATA body (RFC 5321 §4.1.1.4, §4.5.2): a streaming decoder that removes
//! dot-stuffing and finds the end of data, and the matching encoder.
//!
//! Invariants of [`DataDecoder`]:
//! - The end of data is only `<CRLF>.<CRLF>`, where the first CRLF may be the one that
//!   ended the DATA command line. `<LF>.<LF>`, `<CR>.<CR>`, `<LF>.<CRLF>`,
//!   `<CRLF>.<LF>` and the like end nothing (SMTP smuggling, CVE-2023-51764).
//! - A bare CR, a bare LF, or (unless allowed) a NUL makes the message fail; so does
//!   passing the size limit. After the first failure the decoder outputs nothing more
//!   and keeps consuming up to the real end of data, so the session answers once and
//!   never reads the rest of the message as commands.
//! - The result does not depend on how the input is split into chunks: on success the
//!   output is the whole message; on failure it is the message up to the offending
//!   byte, or its first `message_bytes_max` bytes.
//! - On success the output holds CR and LF only as CRLF pairs, ends with CRLF unless
//!   empty, and is at most `message_bytes_max` bytes.

use memchr::{memchr, memchr2, memchr3};

use super::reply::{EnhancedCode, ReplyCode};

/// Why a DATA body was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// An LF not preceded by CR (RFC 5321 §2.3.8).
    #[error("bare LF in message data")]
    BareLineFeed,
    /// A CR not followed by LF (RFC 5321 §2.3.8).
    #[error("bare CR in message data")]
    BareCarriageReturn,
    /// A NUL octet: neither 7bit nor 8bit MIME data may hold one (RFC 2045 §2.7, §2.8).
    #[error("NUL in message data")]
    Nul,
    /// More than `message_bytes_max` bytes after un-stuffing (RFC 1870 §6).
    #[error("message too big")]
    TooBig,
    /// The server holds as many message bytes in memory as it may
    /// (`limits.message_memory_max`): a temporary failure, the client tries later.
    #[error("no memory for the message now")]
    Busy,
    /// Past the memory budget, and no room on the disk to spill it to either: a
    /// temporary failure, the client tries later.
    #[error("no disk space for the message now")]
    NoSpace,
}

impl DataError {
    /// The reply a server sends after the end of data.
    pub fn reply(&self) -> (ReplyCode, EnhancedCode, &'static str) {
        match self {
            DataError::BareLineFeed | DataError::BareCarriageReturn => (
                ReplyCode::TRANSACTION_FAILED,
                EnhancedCode::MEDIA_ERROR,
                "Message refused: bare CR or LF; lines must end with CRLF",
            ),
            DataError::Nul => (
                ReplyCode::TRANSACTION_FAILED,
                EnhancedCode::MEDIA_ERROR,
                "Message refused: NUL character",
            ),
            // RFC 1870 §6.1: 552 for a message over the fixed limit; RFC 3463 5.3.4.
            DataError::TooBig => (
                ReplyCode::EXCEEDED_STORAGE,
                EnhancedCode::MESSAGE_TOO_BIG,
                "Message size exceeds fixed maximum message size",
            ),
            DataError::Busy => (
                ReplyCode::LOCAL_ERROR,
                EnhancedCode::TEMPORARY_SYSTEM_ERROR,
                "Too much mail arriving at once, try again later",
            ),
            // RFC 3463 X.3.1 "mail system full", as at MAIL below the disk reserve.
            DataError::NoSpace => (
                ReplyCode::INSUFFICIENT_STORAGE,
                EnhancedCode::MAIL_SYSTEM_FULL,
                "Insufficient system storage, try again later",
            ),
        }
    }
}

/// What [`DataDecoder::decode`] found in its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum DataStatus {
    /// All of the input was consumed and the end of data is still to come.
    NeedMore,
    /// The end of data ends at byte `consumed` of this input; the rest is the next
    /// command (pipelining). `outcome` is the message size, or why it was refused.
    End {
        /// Bytes of this input that belonged to the DATA body, terminator included.
        consumed: usize,
        /// The message size in bytes, or the first reason it was refused.
        outcome: Result<u64, DataError>,
    },
}

/// Where the decoder is relative to the line structure. The states after the first
/// are positions inside the terminator `<CRLF>.<CRLF>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Just after a CRLF (or at the start of the body).
    LineStart,
    /// After a `.` at the start of a line; the dot has been dropped.
    Dot,
    /// After `.` CR at the start of a line.
    DotCr,
    /// Inside a line.
    Text,
    /// After a CR inside a line.
    Cr,
    /// The end of data has been seen.
    Done,
}

/// Streaming decoder of one DATA body: feed it the bytes that follow the DATA
/// command's CRLF, in chunks of any size, until it returns [`DataStatus::End`].
#[derive(Clone, Debug)]
pub struct DataDecoder {
    state: State,
    error: Option<DataError>,
    message_bytes: u64,
    message_bytes_max: u64,
    nul_allowed: bool,
}

impl DataDecoder {
    /// A decoder for a message of at most `message_bytes_max` bytes after un-stuffing
    /// (`limits.message_size_max`). NUL octets are refused.
    pub fn new(message_bytes_max: u64) -> Self {
        DataDecoder {
            state: State::LineStart,
            error: None,
            message_bytes: 0,
            message_bytes_max,
            nul_allowed: false,
        }
    }

    /// Accept NUL octets in the data (off by default).
    pub fn with_nul_allowed(mut self, nul_allowed: bool) -> Self {
        self.nul_allowed = nul_allowed;
        self
    }

    /// Bytes output so far.
    pub fn message_bytes(&self) -> u64 {
        self.message_bytes
    }

    /// The first reason the message fails, if any yet. A session may stop storing the
    /// output once this is set; it still answers only at the end of data.
    pub fn error(&self) -> Option<DataError> {
        self.error
    }

    /// True once the end of data has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consume `input`, appending the un-stuffed message bytes to `out`. After
    /// [`DataStatus::End`] further calls consume nothing.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> DataStatus {
        if self.state == State::Done {
            return self.end(0);
        }
        let resume_at = if self.error.is_none() {
            match self.decode_clean(input, out) {
                Ok(status) => return status,
                Err(position) => position,
            }
        } else {
            0
        };
        self.skip_to_end(input, resume_at)
    }

    fn end(&self, consumed: usize) -> DataStatus {
        DataStatus::End {
            consumed,
            outcome: match self.error {
                Some(error) => Err(error),
                None => Ok(self.message_bytes),
            },
        }
    }

    /// Append `bytes` to the output within the size limit. Returns false (with
    /// `TooBig` recorded and the output filled to exactly the limit) when they do not
    /// fit.
    fn emit(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> bool {
        let room = self.message_bytes_max - self.message_bytes;
        // A room too large for usize is larger than any slice.
        let room_bytes = usize::try_from(room).unwrap_or(usize::MAX);
        if bytes.len() > room_bytes {
            out.extend_from_slice(&bytes[..room_bytes]);
            self.message_bytes = self.message_bytes_max;
            self.error = Some(DataError::TooBig);
            return false;
        }
        out.extend_from_slice(bytes);
        // bytes.len() <= room, a u64.
        self.message_bytes += bytes.len() as u64;
        true
    }

    fn fail(&mut self, error: DataError) {
        self.error.get_or_insert(error);
    }

    /// Fails the message for `error` (unless it failed already): from now on nothing
    /// more is output, and the input is consumed up to the end of data.
    pub fn refuse(&mut self, error: DataError) {
        self.fail(error);
    }

    /// The fast path while the message is still good. Bytes are copied in runs that
    /// span many lines; a run is cut only where a stuffed dot is dropped, at the end of
    /// the input, or at a failure. Returns `Err(position)` after a failure: the decoder
    /// then looks for the end of data from `position` in its current state.
    fn decode_clean(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<DataStatus, usize> {
        let mut position = 0;
        let mut run_start = 0;
        while position < input.len() {
            match self.state {
                State::Text => {
                    let rest = &input[position..];
                    let found = if self.nul_allowed {
                        memchr2(b'\r', b'\n', rest)
                    } else {
                        memchr3(b'\r', b'\n', 0, rest)
                    };
                    let Some(offset) = found else {
                        position = input.len();
                        break;
                    };
                    let at = position + offset;
                    match input[at] {
                        b'\r' => {
                            self.state = State::Cr;
                            position = at + 1;
                        }
                        special => {
                            self.emit(&input[run_start..at], out);
                            self.fail(if special == b'\n' {
                                DataError::BareLineFeed
                            } else {
                                DataError::Nul
                            });
                            // In the search for the end an LF or NUL is ordinary text.
                            return Err(at + 1);
                        }
                    }
                }
                State::Cr => {
                    if input[position] != b'\n' {
                        self.emit(&input[run_start..position], out);
                        self.fail(DataError::BareCarriageReturn);
                        // The byte after the CR may itself start a CRLF.
                        return Err(position);
                    }
                    self.state = State::LineStart;
                    position += 1;
                }
                State::LineStart => {
                    if input[position] == b'.' {
                        // RFC 5321 §4.5.2: the first character of a line that is a
                        // period is deleted.
                        let fits = self.emit(&input[run_start..position], out);
                        position += 1;
                        run_start = position;
                        self.state = State::Dot;
                        if !fits {
                            return Err(position);
                        }
                    } else {
                        self.state = State::Text;
                    }
                }
                State::Dot => {
                    if input[position] == b'\r' {
                        // Either the terminator or a bare CR: the CR is never output.
                        position += 1;
                        run_start = position;
                        self.state = State::DotCr;
                    } else {
                        self.state = State::Text;
                    }
                }
                State::DotCr => {
                    if input[position] == b'\n' {
                        self.state = State::Done;
                        return Ok(self.end(position + 1));
                    }
                    self.fail(DataError::BareCarriageReturn);
                    return Err(position);
                }
                State::Done => return Ok(self.end(position)),
            }
        }
        if !self.emit(&input[run_start..position], out) {
            return Err(position);
        }
        Ok(DataStatus::NeedMore)
    }

    /// After a failure: output nothing, and find the end of data, `<CRLF>.<CRLF>`
    /// exactly, from `position` on.
    fn skip_to_end(&mut self, input: &[u8], mut position: usize) -> DataStatus {
        while position < input.len() {
            let byte = input[position];
            self.state = match self.state {
                State::Text => match memchr(b'\r', &input[position..]) {
                    Some(offset) => {
                        position += offset;
                        State::Cr
                    }
                    None => {
                        position = input.len();
                        break;
                    }
                },
                State::Done => return self.end(position),
                State::Cr => match byte {
                    b'\n' => State::LineStart,
                    b'\r' => State::Cr,
                    _ => State::Text,
                },
                State::LineStart => match byte {
                    b'.' => State::Dot,
                    b'\r' => State::Cr,
                    _ => State::Text,
                },
                State::Dot => match byte {
                    b'\r' => State::DotCr,
                    _ => State::Text,
                },
                State::DotCr => match byte {
                    b'\n' => {
                        self.state = State::Done;
                        return self.end(position + 1);
                    }
                    b'\r' => State::Cr,
                    _ => State::Text,
                },
            };
            position += 1;
        }
        debug_assert_eq!(position, input.len());
        DataStatus::NeedMore
    }
}

/// Append `message` as a DATA body: dot-stuffed (RFC 5321 §4.5.2), lines ended with
/// CRLF, and the terminator `.` CRLF. A bare CR or LF in `message` is sent as CRLF, so
/// the peer never receives a bare line ending from this server; a last line without a
/// line ending gets one. For a message whose lines all end with CRLF,
/// [`DataDecoder`] gives `message` back.
pub fn encode_data(message: &[u8], out: &mut Vec<u8>) {
    let mut position = 0;
    let mut at_line_start = true;
    while position < message.len() {
        if at_line_start && message[position] == b'.' {
            out.push(b'.');
        }
        match memchr2(b'\r', b'\n', &message[position..]) {
            Some(offset) => {
                let at = position + offset;
                out.extend_from_slice(&message[position..at]);
                out.extend_from_slice(b"\r\n");
                let crlf = message[at] == b'\r' && message.get(at + 1) == Some(&b'\n');
                position = at + if crlf { 2 } else { 1 };
                at_line_start = true;
            }
            None => {
                out.extend_from_slice(&message[position..]);
                out.extend_from_slice(b"\r\n");
                position = message.len();
                at_line_start = true;
            }
        }
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], max: u64) -> (DataStatus, Vec<u8>) {
        let mut decoder = DataDecoder::new(max);
        let mut out = Vec::new();
        (decoder.decode(input, &mut out), out)
    }

    #[test]
    fn unstuffs_and_ends() {
        let (status, out) = decode_all(b"a\r\n..b\r\n.c\r\n.\r\nQUIT\r\n", 100);
        assert_eq!(
            status,
            DataStatus::End {
                consumed: 15,
                outcome: Ok(10)
            }
        );
        assert_eq!(out, b"a\r\n.b\r\nc\r\n");
    }

    #[test]
    fn empty_message() {
        let (status, out) = decode_all(b".\r\n", 100);
        assert_eq!(
            status,
            DataStatus::End {
                consumed: 3,
                outcome: Ok(0)
            }
        );
        assert!(out.is_empty());
    }

    #[test]
    fn too_big_is_exact() {
        let (status, out) = decode_all(b"0123456789\r\n.\r\n", 12);
        assert_eq!(
            status,
            DataStatus::End {
                consumed: 15,
                outcome: Ok(12)
            }
        );
        assert_eq!(out.len(), 12);
        let (status, out) = decode_all(b"0123456789\r\n.\r\n", 11);
        assert_eq!(
            status,
            DataStatus::End {
                consumed: 15,
                outcome: Err(DataError::TooBig)
            }
        );
        assert_eq!(out, b"0123456789\r");
    }

    #[test]
    fn encode_stuffs_and_normalizes() {
        let mut out = Vec::new();
        encode_data(b".a\r\nb\nc\r.\r\n..", &mut out);
        assert_eq!(out, b"..a\r\nb\r\nc\r\n..\r\n...\r\n.\r\n");
        let mut out = Vec::new();
        encode_data(b"", &mut out);
        assert_eq!(out, b".\r\n");
    }
}
