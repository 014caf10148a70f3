//! STARTTLS (RFC 3207): the go-ahead, and the fresh start after the handshake.

use super::{enhanced_code, reply, Effect, Outcome, Session, State};
use crate::parse::{EnhancedCode, ReplyCode};

impl Session {
    /// `STARTTLS`, in the Ready state. Nothing after this line is consumed: the server
    /// discards what the client pipelined behind it (RFC 3207 §4.2, CVE-2011-0411).
    pub(super) fn starttls(&mut self, out: &mut Vec<u8>) -> Outcome {
        if self.tls {
            return self.bad_command(
                out,
                ReplyCode::BAD_SEQUENCE,
                EnhancedCode::BAD_SEQUENCE,
                "TLS already active",
            );
        }
        if !self.config.starttls_available {
            return self.bad_command(
                out,
                ReplyCode::NOT_IMPLEMENTED,
                EnhancedCode::INVALID_COMMAND,
                "STARTTLS not available",
            );
        }
        self.state = State::StartingTls;
        // RFC 3207 §4: "220 Ready to start TLS".
        reply(
            out,
            ReplyCode::SERVICE_READY,
            enhanced_code(2, 0, 0),
            "Ready to start TLS",
        );
        Outcome::Effect(Effect::StartTls)
    }

    /// The handshake after [`Effect::StartTls`] succeeded. RFC 3207 §4.2: "the server
    /// MUST discard any knowledge obtained from the client, such as the argument to
    /// the EHLO command", and a login made before TLS is forgotten too.
    pub fn tls_started(&mut self) {
        debug_assert!(
            matches!(self.state, State::StartingTls),
            "tls_started without STARTTLS"
        );
        self.tls = true;
        self.account = None;
        self.state = State::Connected;
    }
}
