//! The commands that need no transaction: RSET, NOOP, QUIT, VRFY, EXPN and HELP
//! (RFC 5321 §4.1.1.5 to §4.1.1.10).

use super::{reply, Effect, Outcome, Session, State};
use crate::parse::{encode_reply, EnhancedCode, ReplyCode};

impl Session {
    /// `RSET`: abort the transaction, keep the EHLO name and any login.
    pub(super) fn rset(&mut self, out: &mut Vec<u8>) -> Outcome {
        if let Some(helo) = self.state.helo().cloned() {
            self.state = State::Ready(helo);
        }
        reply(out, ReplyCode::OK, EnhancedCode::OK, "Ok");
        Outcome::Continue
    }

    /// `NOOP`.
    pub(super) fn noop(&mut self, out: &mut Vec<u8>) -> Outcome {
        reply(out, ReplyCode::OK, EnhancedCode::OK, "Ok");
        Outcome::Continue
    }

    /// `QUIT`: RFC 5321 §4.1.1.10, 221 and close.
    pub(super) fn quit(&mut self, out: &mut Vec<u8>) -> Outcome {
        let text = format!("{} closing connection", self.config.hostname);
        reply(out, ReplyCode::CLOSING, EnhancedCode::OK, &text);
        self.state = State::Closed;
        Outcome::Effect(Effect::Close)
    }

    /// `VRFY`: RFC 5321 §3.5.3, 252 rather than confirm which addresses exist.
    pub(super) fn vrfy(&mut self, out: &mut Vec<u8>) -> Outcome {
        reply(
            out,
            ReplyCode::CANNOT_VERIFY,
            EnhancedCode::RECIPIENT_OK,
            "Cannot VRFY user, but will accept message and attempt delivery",
        );
        Outcome::Continue
    }

    /// `EXPN`: RFC 5321 §3.5.2 lets a server refuse it; there are no lists to expand.
    pub(super) fn expn(&mut self, out: &mut Vec<u8>) -> Outcome {
        reply(
            out,
            ReplyCode::NOT_IMPLEMENTED,
            EnhancedCode::INVALID_COMMAND,
            "EXPN not available",
        );
        Outcome::Continue
    }

    /// `HELP`: RFC 5321 §4.1.1.8.
    pub(super) fn help(&mut self, out: &mut Vec<u8>) -> Outcome {
        encode_reply(
            ReplyCode::HELP,
            Some(EnhancedCode::OK),
            &[
                "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
                "See RFC 5321",
            ],
            out,
        );
        Outcome::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::run;

    /// A connection may send 100 commands that carry no mail between two messages;
    /// the next closes it, and a message accepted starts the count again.
    #[test]
    fn commands_without_mail_are_bounded() {
        let mut input = b"EHLO client.test\r\n".to_vec();
        input.extend(b"NOOP\r\n".repeat(100));
        input.extend_from_slice(
            b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n\
              Subject: x\r\n\r\nhi\r\n.\r\n",
        );
        input.extend(b"RSET\r\n".repeat(99));
        input.extend(b"VRFY b\r\nNOOP\r\nNOOP\r\n");
        let transcript = run(&input, &[], false, false).concat();
        let accepted = transcript
            .find("E:accept")
            .expect("the message is accepted");
        let closed = transcript
            .find("421 4.7.0 mx.example.test Too many commands without mail")
            .expect("closed");
        assert!(accepted < closed);
        assert!(transcript.ends_with("E:close"), "{transcript}");
        // The 100th after the message was answered, the 101st closed the connection.
        assert_eq!(transcript[accepted..closed].matches("252 ").count(), 1);
        assert_eq!(transcript[closed..].matches("250 ").count(), 0);
    }
}
