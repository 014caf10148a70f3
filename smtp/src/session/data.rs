//! DATA (RFC 5321 §4.1.1.4): the body up to `<CRLF>.<CRLF>`, and what DATA and BDAT
//! share: starting a message with its Received header and handing a complete one to
//! the server.

use super::message::MessageBuf;
use super::received::{count_received, received_header, Protocol};
use super::{reply, DataBody, Delivery, Effect, Outcome, Session, State, Transaction, HOPS_MAX};
use crate::parse::{encode_reply, DataDecoder, DataStatus, EnhancedCode, ReplyCode};

/// Most bytes reserved for a message up front from its declared SIZE: enough to avoid
/// most reallocations, not so much that idle clients declaring large sizes tie up
/// memory.
pub const MESSAGE_RESERVE_BYTES_MAX: usize = 1024 * 1024;

/// How a transaction ends when the data command comes before any recipient was
/// accepted (RFC 5321 §3.3: "no valid recipients", 554).
pub(super) const NO_VALID_RECIPIENTS: &str = "No valid recipients";

impl Session {
    /// `DATA`, in the Mail and Rcpt states.
    pub(super) fn data(&mut self, now_unix_seconds: u64, out: &mut Vec<u8>) -> Outcome {
        let transaction = match self.take_state() {
            State::Rcpt(transaction) => transaction,
            State::Mail(transaction) => {
                // With PIPELINING the client sends DATA before it sees its RCPTs
                // refused; this is the answer it expects (RFC 2920 §3.1).
                self.state = State::Mail(transaction);
                reply(
                    out,
                    ReplyCode::TRANSACTION_FAILED,
                    EnhancedCode::BAD_SEQUENCE,
                    NO_VALID_RECIPIENTS,
                );
                return Outcome::Continue;
            }
            // COMMAND_STATES lets DATA run only in these states.
            _ => unreachable!("DATA outside a transaction"),
        };
        let message = self.start_message(&transaction, now_unix_seconds);
        self.state = State::Data(DataBody {
            transaction,
            message,
            decoder: DataDecoder::new(self.config.limits.message_bytes_max),
        });
        encode_reply(
            ReplyCode::START_MAIL_INPUT,
            None,
            &["End data with <CR><LF>.<CR><LF>"],
            out,
        );
        Outcome::Continue
    }

    /// Body bytes, in the Data state. Everything up to the end of data is consumed,
    /// whether the message is good or not, and answered once at the end.
    pub(super) fn data_input(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, Outcome) {
        let State::Data(body) = &mut self.state else {
            unreachable!("data_input outside the Data state");
        };
        let status = body.decoder.decode(input, body.message.tail());
        body.message.settle();
        match status {
            DataStatus::NeedMore => (input.len(), Outcome::NeedInput),
            DataStatus::End { consumed, outcome } => {
                let State::Data(DataBody {
                    transaction,
                    message,
                    ..
                }) = self.take_state()
                else {
                    unreachable!("checked above");
                };
                let outcome = match outcome {
                    Ok(data_bytes) => self.finish_message(transaction, message, data_bytes, out),
                    Err(error) => {
                        // One reply for the whole refused body (SMTP smuggling: the
                        // bytes up to the real end are never read as commands).
                        self.state = State::Ready(transaction.helo);
                        let (code, enhanced, text) = error.reply();
                        reply(out, code, enhanced, text);
                        Outcome::Continue
                    }
                };
                (consumed, outcome)
            }
        }
    }

    /// A new message buffer holding this server's Received header (RFC 5321 §4.4).
    pub(super) fn start_message(
        &self,
        transaction: &Transaction,
        now_unix_seconds: u64,
    ) -> MessageBuf {
        let envelope = &transaction.envelope;
        let protocol = Protocol {
            extended: transaction.helo.extended,
            smtputf8: envelope.smtputf8,
            tls: self.tls,
            authenticated: self.account.is_some(),
        };
        let header = received_header(
            &transaction.helo.host,
            self.config.client_ip,
            &self.config.hostname,
            protocol,
            &envelope.id,
            &envelope.recipients,
            now_unix_seconds,
        );
        let declared = envelope
            .size_declared
            .and_then(|size| usize::try_from(size).ok())
            .unwrap_or(0)
            .min(MESSAGE_RESERVE_BYTES_MAX);
        let mut message = Vec::with_capacity(header.len() + declared);
        message.extend_from_slice(header.as_bytes());
        MessageBuf::Memory(message)
    }

    /// A complete, well-formed message: refused if it has looped, otherwise handed to
    /// the server to accept.
    pub(super) fn finish_message(
        &mut self,
        transaction: Transaction,
        message: MessageBuf,
        data_bytes: u64,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let Transaction { helo, envelope } = transaction;
        // The first Received field is this server's own.
        let hops = message
            .finish()
            .and_then(|m| Ok((m.with_bytes(|b| count_received(b, HOPS_MAX + 1))?, m)));
        let message = match hops {
            Ok((hops, message)) if hops <= HOPS_MAX + 1 => message,
            Ok(_) => {
                self.state = State::Ready(helo);
                // RFC 5321 §6.3 and RFC 3463 5.4.6 "routing loop detected".
                reply(
                    out,
                    ReplyCode::TRANSACTION_FAILED,
                    super::enhanced_code(5, 4, 6),
                    "Too many hops, mail loop suspected",
                );
                return Outcome::Continue;
            }
            Err(e) => {
                self.state = State::Ready(helo);
                if lifeboat_store::io::is_no_space(&e) {
                    // RFC 3463 X.3.1 "mail system full", as at MAIL below the reserve.
                    tracing::warn!("writing the message to its spill file: {e}");
                    reply(
                        out,
                        ReplyCode::INSUFFICIENT_STORAGE,
                        EnhancedCode::MAIL_SYSTEM_FULL,
                        "Insufficient system storage, try again later",
                    );
                } else {
                    tracing::error!("writing the message to its spill file: {e}");
                    reply(
                        out,
                        ReplyCode::LOCAL_ERROR,
                        EnhancedCode::TEMPORARY_SYSTEM_ERROR,
                        "Local error in processing, try again later",
                    );
                }
                return Outcome::Continue;
            }
        };
        self.state = State::Accepting(helo);
        Outcome::Effect(Effect::Accept(Delivery {
            transaction_id: envelope.id,
            mail_from: envelope.mail_from,
            recipients: envelope.recipients,
            message,
            data_bytes,
        }))
    }

    /// The server's answer to [`Effect::Accept`]: `Ok` with the store's id once the
    /// message is durable, or the refusal.
    pub fn accepted(&mut self, result: Result<String, super::Rejection>, out: &mut Vec<u8>) {
        let State::Accepting(helo) = self.take_state() else {
            debug_assert!(false, "accepted without an accept");
            return;
        };
        self.state = State::Ready(helo);
        match result {
            Ok(id) => {
                self.junk_commands = 0;
                let text = format!("Ok: queued as {id}");
                reply(out, ReplyCode::OK, EnhancedCode::OK, &text);
            }
            Err(rejection) => reply(out, rejection.code, rejection.enhanced, &rejection.text),
        }
    }
}
