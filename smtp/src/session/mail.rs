//! MAIL (RFC 5321 §4.1.1.2): starts a mail transaction.

use lifeboat_store::Address;

use super::{
    enhanced_code, reply, Envelope, Outcome, Session, State, Transaction, TRANSACTIONS_MAX,
};
use crate::parse::{Body, DataError, EnhancedCode, MailParameters, ReplyCode, ReversePath};

impl Session {
    /// `MAIL FROM:<path> [parameters]`, in the Ready state.
    pub(super) fn mail(
        &mut self,
        from: ReversePath,
        parameters: MailParameters,
        out: &mut Vec<u8>,
    ) -> Outcome {
        if self.config.auth_required && self.account.is_none() {
            // RFC 4954 §6: "530 5.7.0 Authentication required".
            return self.bad_command(
                out,
                ReplyCode::AUTH_REQUIRED,
                EnhancedCode::SECURITY_ERROR,
                "Authentication required",
            );
        }
        if let (true, Some(account)) = (self.config.auth_required, &self.account) {
            // Submission: users send as themselves, never as someone else (the
            // domain part is case-insensitive, SPEC §5).
            let own = match &from {
                ReversePath::Mailbox(address) => same_address(&address.to_string(), account),
                ReversePath::Null => false,
            };
            if !own {
                return self.bad_command(
                    out,
                    ReplyCode::MAILBOX_NAME_NOT_ALLOWED,
                    EnhancedCode::NOT_AUTHORIZED,
                    "Sender address is not the address you logged in as",
                );
            }
        }
        if parameters
            .size_bytes
            .is_some_and(|size| size > self.config.limits.message_bytes_max)
        {
            // RFC 1870 §6.1: refuse at MAIL a declared size over the fixed limit.
            let (code, enhanced, text) = DataError::TooBig.reply();
            reply(out, code, enhanced, text);
            return Outcome::Continue;
        }
        if let Some(available) = self.storage_available {
            if available == 0 || parameters.size_bytes.is_some_and(|size| size > available) {
                // RFC 1870 §6.1 and RFC 3463 X.3.1 ("mail system full"): the client
                // tries again later.
                reply(
                    out,
                    ReplyCode::INSUFFICIENT_STORAGE,
                    EnhancedCode::MAIL_SYSTEM_FULL,
                    "Insufficient system storage, try again later",
                );
                return Outcome::Continue;
            }
        }
        if parameters.body == Some(Body::BinaryMime) {
            // RFC 3030 §3: BINARYMIME is not offered, so it may not be used.
            reply(
                out,
                ReplyCode::PARAMETERS_NOT_RECOGNIZED,
                EnhancedCode::INVALID_ARGUMENTS,
                "BODY=BINARYMIME not supported",
            );
            return Outcome::Continue;
        }
        if self.transactions >= TRANSACTIONS_MAX {
            return self.close_with(
                out,
                enhanced_code(4, 7, 0),
                "Too many messages in one connection, reconnect to send more",
            );
        }
        self.transactions += 1;
        let helo = self.greeted();
        // The DSN parameters (RET, ENVID, and NOTIFY/ORCPT on RCPT) are accepted and
        // ignored: DSN is not offered, and RFC 3461 lets a server without it act as
        // if they were absent. AUTH= is ignored as RFC 4954 §5 allows.
        let envelope = Envelope {
            id: format!("{:016x}-{}", self.config.connection_id, self.transactions),
            mail_from: match from {
                ReversePath::Null => String::new(),
                ReversePath::Mailbox(address) => address.to_string(),
            },
            smtputf8: parameters.smtputf8,
            size_declared: parameters.size_bytes,
            recipients: Vec::new(),
        };
        self.state = State::Mail(Transaction { helo, envelope });
        reply(out, ReplyCode::OK, EnhancedCode::SENDER_OK, "Ok");
        Outcome::Continue
    }
}

/// Whether two addresses are the same mailbox: local parts equal, domains equal
/// ignoring case.
fn same_address(a: &str, b: &str) -> bool {
    matches!((Address::try_from(a), Address::try_from(b)), (Ok(a), Ok(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::super::check::config;
    use super::super::Session;

    /// The reply to each of `mails` (after EHLO, each followed by RSET), with
    /// `available` bytes of storage: code and enhanced code.
    fn replies(available: Option<u64>, mails: &[&str]) -> Vec<String> {
        let mut session = Session::new(config(false, false), false);
        session.set_storage_available(available);
        let mut out = Vec::new();
        let mut input = b"EHLO client.test\r\n".to_vec();
        for mail in mails {
            input.extend_from_slice(format!("{mail}\r\nRSET\r\n").as_bytes());
        }
        let progress = session.receive(&input, 0, &mut out);
        assert_eq!(progress.consumed, input.len());
        let out = String::from_utf8(out).unwrap();
        // The last line of each reply: EHLO's, then MAIL's and RSET's in turn.
        let finals: Vec<&str> = out.lines().filter(|l| l.as_bytes()[3] == b' ').collect();
        assert_eq!(finals.len(), 1 + 2 * mails.len(), "{out}");
        (0..mails.len())
            .map(|i| {
                finals[1 + 2 * i]
                    .splitn(3, ' ')
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn mail_is_refused_with_452_while_the_disk_reserve_is_reached() {
        let mails = ["MAIL FROM:<a@b.test>", "MAIL FROM:<a@b.test> SIZE=200"];
        // Not checked, or room for both.
        for available in [None, Some(10_000)] {
            assert_eq!(replies(available, &mails), ["250 2.1.0", "250 2.1.0"]);
        }
        // Room, but less than the declared size (RFC 1870 §6.1).
        assert_eq!(replies(Some(100), &mails), ["250 2.1.0", "452 4.3.1"]);
        // No room at all.
        assert_eq!(replies(Some(0), &mails), ["452 4.3.1", "452 4.3.1"]);
    }
}
