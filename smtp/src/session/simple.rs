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
