//! `CAPA` — RFC 2449 §5.

use crate::encode;

use super::{Effect, Session, IMPLEMENTATION};

impl Session {
    /// `CAPA` — RFC 2449 §5. The same list in both states ("capabilities available in
    /// the AUTHORIZATION state MUST be announced in both states"), shaped by the
    /// connection: login mechanisms only where a login would be accepted (as IMAP's
    /// LOGINDISABLED does, so clients do not send a password that will be refused),
    /// STLS only before TLS (RFC 2595 §4).
    pub(super) fn capa(&mut self, out: &mut Vec<u8>) -> Effect {
        encode::ok(out, "Capability list follows");
        let mut line = |capability: &str| encode::multiline_line(out, capability.as_bytes());
        if self.login_allowed() {
            // RFC 2449 §6.8, RFC 5034 §3 (RFC 2449 §6.3).
            line("USER");
            line("SASL PLAIN");
        }
        line("TOP"); // RFC 2449 §6.4
        line("UIDL"); // RFC 2449 §6.7
        line("PIPELINING"); // RFC 2449 §6.6
        line("RESP-CODES"); // RFC 2449 §6.2
        line("AUTH-RESP-CODE"); // RFC 3206 §6
        if !self.tls && self.config.tls_available {
            line("STLS"); // RFC 2595 §4
        }
        line(&format!("IMPLEMENTATION {IMPLEMENTATION}")); // RFC 2449 §6.9
        encode::multiline_end(out);
        Effect::None
    }
}
