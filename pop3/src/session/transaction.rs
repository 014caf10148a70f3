//! The TRANSACTION state's commands (RFC 1939 §5, §7). Messages marked deleted are
//! invisible to every command but RSET (RFC 1939 §5: "may not be referred to").

use crate::encode::{self, MessageEncoder};
use crate::parse::MessageNumber;

use super::{messages, Effect, MaildropMessage, SendMessage, Session};

const NO_SUCH_MESSAGE: &str = "No such message";

impl Session {
    /// The message `number` if it exists and is not marked deleted; otherwise the
    /// `-ERR` reply is written.
    fn message(&mut self, number: MessageNumber, out: &mut Vec<u8>) -> Option<MaildropMessage> {
        let maildrop = &self.transaction().maildrop;
        if maildrop.is_deleted(number) {
            encode::err(out, None, &format!("Message {number} already deleted"));
            return None;
        }
        let message = maildrop.get(number).cloned();
        if message.is_none() {
            encode::err(out, None, NO_SUCH_MESSAGE);
        }
        message
    }

    /// `STAT` — RFC 1939 §5: `+OK nn mm`, count and size of the maildrop.
    pub(super) fn stat(&mut self, out: &mut Vec<u8>) -> Effect {
        let (count, size_bytes) = self.transaction().maildrop.stat();
        encode::ok(out, &format!("{count} {size_bytes}"));
        Effect::None
    }

    /// `LIST [msg]` — RFC 1939 §5: a scan listing, `msg size`.
    pub(super) fn list(&mut self, number: Option<MessageNumber>, out: &mut Vec<u8>) -> Effect {
        if let Some(number) = number {
            if let Some(message) = self.message(number, out) {
                encode::ok(out, &format!("{number} {}", message.size_bytes));
            }
            return Effect::None;
        }
        let maildrop = &self.transaction().maildrop;
        let (count, size_bytes) = maildrop.stat();
        encode::ok(out, &format!("{} ({size_bytes} octets)", messages(count)));
        for (number, message) in maildrop.live() {
            encode::multiline_line(out, format!("{number} {}", message.size_bytes).as_bytes());
        }
        encode::multiline_end(out);
        Effect::None
    }

    /// `UIDL [msg]` — RFC 1939 §7: a unique-id listing, `msg unique-id`.
    pub(super) fn uidl(&mut self, number: Option<MessageNumber>, out: &mut Vec<u8>) -> Effect {
        if let Some(number) = number {
            if let Some(message) = self.message(number, out) {
                let id = self.transaction().maildrop.unique_id(&message);
                encode::ok(out, &format!("{number} {id}"));
            }
            return Effect::None;
        }
        let maildrop = &self.transaction().maildrop;
        encode::ok(out, "Unique-ID listing follows");
        for (number, message) in maildrop.live() {
            let id = maildrop.unique_id(message);
            encode::multiline_line(out, format!("{number} {id}").as_bytes());
        }
        encode::multiline_end(out);
        Effect::None
    }

    /// `RETR msg` — RFC 1939 §5: the `+OK` line here, the message by the server.
    pub(super) fn retr(&mut self, number: MessageNumber, out: &mut Vec<u8>) -> Effect {
        let Some(message) = self.message(number, out) else {
            return Effect::None;
        };
        self.transaction().maildrop.retrieved(number);
        encode::ok(out, &format!("{} octets", message.size_bytes));
        Effect::SendMessage(SendMessage {
            body: message.body,
            encoder: MessageEncoder::retr(),
        })
    }

    /// `TOP msg n` — RFC 1939 §7: the header, the blank line and `n` body lines. Does
    /// not count as retrieving the message.
    pub(super) fn top(&mut self, number: MessageNumber, lines: u64, out: &mut Vec<u8>) -> Effect {
        let Some(message) = self.message(number, out) else {
            return Effect::None;
        };
        encode::ok(out, "Top of message follows");
        Effect::SendMessage(SendMessage {
            body: message.body,
            encoder: MessageEncoder::top(lines),
        })
    }

    /// `DELE msg` — RFC 1939 §5: marks the message; the store changes at QUIT.
    pub(super) fn dele(&mut self, number: MessageNumber, out: &mut Vec<u8>) -> Effect {
        if self.message(number, out).is_none() {
            return Effect::None;
        }
        self.transaction().maildrop.delete(number);
        encode::ok(out, &format!("Message {number} deleted"));
        Effect::None
    }

    /// `NOOP` — RFC 1939 §5.
    pub(super) fn noop(&mut self, out: &mut Vec<u8>) -> Effect {
        encode::ok(out, "");
        Effect::None
    }

    /// `RSET` — RFC 1939 §5: unmarks every message marked deleted.
    pub(super) fn rset(&mut self, out: &mut Vec<u8>) -> Effect {
        let maildrop = &mut self.transaction().maildrop;
        maildrop.reset();
        let (count, size_bytes) = maildrop.stat();
        encode::ok(
            out,
            &format!("Maildrop has {} ({size_bytes} octets)", messages(count)),
        );
        Effect::None
    }
}

impl Session {
    /// The server could not read the body of a message the session answered `+OK`
    /// for (RETR, TOP): it discards that reply, unsent, and sends this one instead.
    pub fn message_unavailable(&mut self, out: &mut Vec<u8>) {
        encode::err(
            out,
            Some(crate::encode::ResponseCode::SysTemp),
            "Message unavailable, try again later",
        );
    }
}
