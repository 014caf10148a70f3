//! BDAT (RFC 3030 §2): the message in chunks of announced size. A chunk's octets are
//! always consumed, whether the chunk is accepted or not, so none of them is ever read
//! as a command.

use super::data::NO_VALID_RECIPIENTS;
use super::message::MessageBuf;
use super::{reply, Chunk, Chunks, Discard, Outcome, Session, State};
use crate::parse::{DataError, EnhancedCode, ReplyCode};

impl Session {
    /// `BDAT size [LAST]`, in the Mail, Rcpt and Bdat states.
    pub(super) fn bdat(
        &mut self,
        chunk_bytes: u64,
        last: bool,
        now_unix_seconds: u64,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let mut chunks = match self.take_state() {
            State::Rcpt(transaction) => Chunks {
                message: self.start_message(&transaction, now_unix_seconds),
                transaction,
                data_bytes: 0,
                failed: None,
            },
            State::Bdat(chunks) => chunks,
            State::Mail(transaction) => {
                self.state = State::Mail(transaction);
                self.discard = Discard::Bytes(chunk_bytes);
                reply(
                    out,
                    ReplyCode::TRANSACTION_FAILED,
                    EnhancedCode::BAD_SEQUENCE,
                    NO_VALID_RECIPIENTS,
                );
                return Outcome::Continue;
            }
            // COMMAND_STATES lets BDAT run only in these states.
            _ => unreachable!("BDAT outside a transaction"),
        };
        if chunks.failed.is_none()
            && chunks.data_bytes.saturating_add(chunk_bytes) > self.config.limits.message_bytes_max
        {
            // Known from the announced size already: keep nothing more, and free what
            // was kept.
            chunks.failed = Some(DataError::TooBig);
            chunks.message = MessageBuf::Empty;
        }
        let chunk = Chunk {
            remaining_bytes: chunk_bytes,
            last,
            chunk_bytes,
        };
        if chunk_bytes == 0 {
            return self.end_chunk(chunks, chunk, out);
        }
        self.state = State::BdatChunk { chunks, chunk };
        Outcome::Continue
    }

    /// Chunk octets, in the BdatChunk state.
    pub(super) fn chunk_input(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, Outcome) {
        let State::BdatChunk { chunks, chunk } = &mut self.state else {
            unreachable!("chunk_input outside the BdatChunk state");
        };
        // At most `input.len()`, so it fits usize.
        let take = chunk.remaining_bytes.min(input.len() as u64) as usize;
        if chunks.failed.is_none() {
            chunks.message.extend(&input[..take]);
            chunks.data_bytes += take as u64;
        }
        chunk.remaining_bytes -= take as u64;
        if chunk.remaining_bytes > 0 {
            return (take, Outcome::NeedInput);
        }
        let State::BdatChunk { chunks, chunk } = self.take_state() else {
            unreachable!("checked above");
        };
        (take, self.end_chunk(chunks, chunk, out))
    }

    /// The last octet of a chunk has arrived: answer it, and after the LAST chunk hand
    /// the message over.
    fn end_chunk(&mut self, chunks: Chunks, chunk: Chunk, out: &mut Vec<u8>) -> Outcome {
        if let Some(error) = chunks.failed {
            // RFC 3030 §2: the transaction has failed; further chunks already in the
            // pipeline are discarded as BDAT outside a transaction.
            self.state = State::Ready(chunks.transaction.helo);
            let (code, enhanced, text) = error.reply();
            reply(out, code, enhanced, text);
            return Outcome::Continue;
        }
        if chunk.last {
            return self.finish_message(chunks.transaction, chunks.message, chunks.data_bytes, out);
        }
        self.state = State::Bdat(chunks);
        let text = format!("{} octets received", chunk.chunk_bytes);
        reply(out, ReplyCode::OK, EnhancedCode::OK, &text);
        Outcome::Continue
    }
}
