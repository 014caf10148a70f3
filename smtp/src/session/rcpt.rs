//! RCPT (RFC 5321 §4.1.1.3): adds a recipient, once the relay accepts it.

use super::{
    enhanced_code, reply, Effect, Outcome, RecipientCheck, Rejection, Session, State,
    RECIPIENT_REFUSALS_MAX,
};
use crate::parse::{EnhancedCode, ForwardPath, RcptParameters, Reason, ReplyCode};

impl Session {
    /// `RCPT TO:<path> [parameters]`, in the Mail and Rcpt states.
    pub(super) fn rcpt(
        &mut self,
        to: ForwardPath,
        _parameters: RcptParameters,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let (State::Mail(transaction) | State::Rcpt(transaction)) = &self.state else {
            // COMMAND_STATES lets RCPT run only in these states.
            unreachable!("RCPT outside a transaction");
        };
        let envelope = &transaction.envelope;
        if !to.is_ascii() && !envelope.smtputf8 {
            // RFC 6531 §3.4: a non-ASCII recipient needs SMTPUTF8 on MAIL.
            let (code, enhanced, text) = Reason::Utf8WithoutSmtpUtf8.reply();
            reply(out, code, enhanced, text);
            return Outcome::Continue;
        }
        let recipient = match to {
            // RFC 5321 §4.5.1: `<Postmaster>` is the postmaster of this server.
            ForwardPath::Postmaster => format!("postmaster@{}", self.config.hostname),
            ForwardPath::Mailbox(address) => address.to_string(),
        };
        if envelope.recipients.contains(&recipient) {
            // Listed twice, delivered once.
            reply(out, ReplyCode::OK, EnhancedCode::RECIPIENT_OK, "Ok");
            return Outcome::Continue;
        }
        if envelope.recipients.len() >= self.config.limits.recipients_max {
            // RFC 5321 §4.5.3.1.10: "452 Too many recipients"; the client sends the
            // rest in another transaction.
            reply(
                out,
                ReplyCode::INSUFFICIENT_STORAGE,
                EnhancedCode::TOO_MANY_RECIPIENTS,
                "Too many recipients",
            );
            return Outcome::Continue;
        }
        let mail_from = envelope.mail_from.clone();
        let (State::Mail(transaction) | State::Rcpt(transaction)) = self.take_state() else {
            unreachable!("the state was checked above");
        };
        self.state = State::CheckingRecipient {
            transaction,
            recipient: recipient.clone(),
        };
        Outcome::Effect(Effect::CheckRecipient(RecipientCheck {
            mail_from,
            recipient,
        }))
    }

    /// The relay's answer to [`Effect::CheckRecipient`]: the recipient is added, or
    /// the refusal is passed on to the client.
    pub fn recipient_checked(&mut self, result: Result<(), Rejection>, out: &mut Vec<u8>) {
        let State::CheckingRecipient {
            mut transaction,
            recipient,
        } = self.take_state()
        else {
            debug_assert!(false, "recipient_checked without a recipient check");
            return;
        };
        match result {
            Ok(()) => {
                transaction.envelope.recipients.push(recipient);
                self.state = State::Rcpt(transaction);
                reply(out, ReplyCode::OK, EnhancedCode::RECIPIENT_OK, "Ok");
            }
            Err(rejection) => {
                self.state = if transaction.envelope.recipients.is_empty() {
                    State::Mail(transaction)
                } else {
                    State::Rcpt(transaction)
                };
                if rejection.code.class() == 5 {
                    self.recipient_refusals += 1;
                    if self.recipient_refusals > RECIPIENT_REFUSALS_MAX {
                        let _ = self.close_with(
                            out,
                            enhanced_code(4, 7, 0),
                            "Too many refused recipients, closing connection",
                        );
                        return;
                    }
                }
                reply(out, rejection.code, rejection.enhanced, &rejection.text);
            }
        }
    }
}
