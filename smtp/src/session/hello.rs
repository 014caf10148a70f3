//! EHLO and HELO (RFC 5321 §4.1.1.1): greet, reset any transaction, and (EHLO) list
//! the service extensions.

use super::{Helo, Outcome, Session, State};
use crate::parse::{encode_ehlo_reply, encode_reply, EhloKeyword, Host, Mechanism, ReplyCode};

impl Session {
    /// `EHLO host`: "the state is reset as if a RSET had been issued" (RFC 5321
    /// §4.1.4), then the extension list.
    pub(super) fn ehlo(&mut self, host: Host, out: &mut Vec<u8>) -> Outcome {
        self.state = State::Ready(Helo {
            host,
            extended: true,
        });
        let mechanisms = [Mechanism::plain(), Mechanism::login()];
        let mut keywords = vec![
            EhloKeyword::Pipelining,
            EhloKeyword::Size(Some(self.config.limits.message_bytes_max)),
            EhloKeyword::EightBitMime,
            EhloKeyword::SmtpUtf8,
            EhloKeyword::EnhancedStatusCodes,
            EhloKeyword::Chunking,
        ];
        // RFC 3207 §4.2: not after the upgrade.
        if self.config.starttls_available && !self.tls {
            keywords.push(EhloKeyword::StartTls);
        }
        // RFC 4954 §4 and SPEC §6: no mechanism that sends a password in the clear is
        // offered where it would be refused.
        if self.auth_allowed() {
            keywords.push(EhloKeyword::Auth(&mechanisms));
        }
        encode_ehlo_reply(&self.config.hostname, "", &keywords, out);
        Outcome::Continue
    }

    /// `HELO host`: as EHLO, without extensions.
    pub(super) fn helo_command(&mut self, host: Host, out: &mut Vec<u8>) -> Outcome {
        self.state = State::Ready(Helo {
            host,
            extended: false,
        });
        let text = self.config.hostname.to_string();
        encode_reply(ReplyCode::OK, None, &[text.as_str()], out);
        Outcome::Continue
    }
}
