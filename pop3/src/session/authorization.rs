//! The AUTHORIZATION state's commands (RFC 1939 §4, §7; RFC 2595 §4; RFC 5034 §4)
//! and the answers to its effects: login checks and the TLS upgrade.

use crate::encode::{self, ResponseCode};
use crate::parse::{
    decode_plain, DecodeError, Mechanism, Password, PlainCredentials, SaslResponse, UserName,
};

use super::{
    messages, Authorization, Effect, LoginMethod, LoginOutcome, LoginRequest, Session, State, Step,
    Transaction, LOGIN_FAILURES_MAX,
};

const PLAINTEXT_REFUSED: &str = "Plaintext authentication disallowed without TLS, use STLS";
const PLAINTEXT_REFUSED_NO_TLS: &str = "Plaintext authentication disallowed without TLS";

impl Session {
    /// Refuses a login attempt on a connection that may not log in yet.
    fn refuse_plaintext(&mut self, out: &mut Vec<u8>) -> Effect {
        // RFC 3206 §5: [AUTH] tells the client the login itself is the problem, so it
        // does not blame the server; there is no POP3 code for "encryption required".
        let text = if self.config.tls_available {
            PLAINTEXT_REFUSED
        } else {
            PLAINTEXT_REFUSED_NO_TLS
        };
        encode::err(out, Some(ResponseCode::Auth), text);
        Effect::None
    }

    /// `USER name` — RFC 1939 §7.
    pub(super) fn user(&mut self, name: UserName, out: &mut Vec<u8>) -> Effect {
        if !self.login_allowed() {
            return self.refuse_plaintext(out);
        }
        self.authorization().user = Some(name);
        encode::ok(out, "Send PASS");
        Effect::None
    }

    /// `PASS string` — RFC 1939 §7: only right after a successful USER.
    pub(super) fn pass(&mut self, password: Password, out: &mut Vec<u8>) -> Effect {
        if !self.login_allowed() {
            return self.refuse_plaintext(out);
        }
        let authorization = self.authorization();
        let Some(user) = authorization.user.take() else {
            return self.bad_command(out, "Send USER first");
        };
        authorization.step = Step::LoginCheck;
        Effect::CheckLogin(LoginRequest {
            user,
            password,
            method: LoginMethod::UserPass,
        })
    }

    /// `APOP name digest` — RFC 1939 §7. Refused: APOP needs the plaintext password on
    /// the server, and the store keeps only Argon2id hashes. The greeting carries no
    /// timestamp, so clients that follow RFC 1939 do not try it.
    pub(super) fn apop(&mut self, out: &mut Vec<u8>) -> Effect {
        self.authorization().user = None;
        encode::err(out, None, "APOP not supported, use USER/PASS or AUTH PLAIN");
        Effect::None
    }

    /// `AUTH mechanism [initial-response]` — RFC 5034 §4. Only PLAIN (RFC 4616).
    pub(super) fn auth(
        &mut self,
        mechanism: Mechanism,
        initial_response: Option<Vec<u8>>,
        out: &mut Vec<u8>,
    ) -> Effect {
        self.authorization().user = None;
        if mechanism != Mechanism::plain() {
            encode::err(out, None, "Unsupported authentication mechanism");
            return Effect::None;
        }
        if !self.login_allowed() {
            return self.refuse_plaintext(out);
        }
        match initial_response {
            Some(message) => self.plain(&message, out),
            None => {
                // RFC 4616 §2: the server's challenge for PLAIN is empty.
                self.authorization().step = Step::SaslResponse;
                encode::continue_req(out, b"");
                Effect::None
            }
        }
    }

    /// `AUTH` alone: the mechanisms, as a multi-line response (see
    /// [`Command::AuthMechanisms`](crate::parse::Command::AuthMechanisms)).
    pub(super) fn auth_mechanisms(&mut self, out: &mut Vec<u8>) -> Effect {
        encode::ok(out, "Supported mechanisms follow");
        if self.login_allowed() {
            encode::multiline_line(out, Mechanism::plain().as_str().as_bytes());
        }
        encode::multiline_end(out);
        Effect::None
    }

    /// The client's line after the `+` challenge (RFC 5034 §4).
    pub(super) fn sasl_response(
        &mut self,
        response: Result<SaslResponse, DecodeError>,
        out: &mut Vec<u8>,
    ) -> Effect {
        self.authorization().step = Step::Command;
        match response {
            Ok(SaslResponse::Data(message)) => self.plain(&message, out),
            // RFC 5034 §4: "If the client wishes to cancel the authentication
            // exchange, it issues a line with a single "*". If the server receives
            // such a response, it MUST reject the AUTH command by sending a -ERR reply."
            Ok(SaslResponse::Cancel) => {
                encode::err(out, None, "Authentication cancelled");
                Effect::None
            }
            Err(DecodeError::LineTooLong) => self.bad_command(out, "Line too long"),
            Err(_) => self.bad_command(out, "Invalid base64 in SASL response"),
        }
    }

    /// A PLAIN message (RFC 4616 §2), from the initial response or the continuation.
    fn plain(&mut self, message: &[u8], out: &mut Vec<u8>) -> Effect {
        let PlainCredentials {
            authzid,
            authcid,
            password,
        } = match decode_plain(message) {
            Ok(credentials) => credentials,
            Err(_) => return self.bad_command(out, "Malformed PLAIN message"),
        };
        // Acting as another user (RFC 4616 §2 authzid) is not offered.
        if authzid.is_some_and(|authzid| authzid != authcid) {
            encode::err(
                out,
                Some(ResponseCode::Auth),
                "Authorization identity must match the authentication identity",
            );
            return Effect::None;
        }
        self.authorization().step = Step::LoginCheck;
        Effect::CheckLogin(LoginRequest {
            user: authcid,
            password,
            method: LoginMethod::SaslPlain,
        })
    }

    /// `STLS` — RFC 2595 §4.
    pub(super) fn stls(&mut self, out: &mut Vec<u8>) -> Effect {
        if self.tls {
            // RFC 2595 §4 example: "-ERR Command not permitted when TLS active".
            encode::err(out, None, "Command not permitted when TLS active");
            return Effect::None;
        }
        if !self.config.tls_available {
            encode::err(out, None, "TLS not available");
            return Effect::None;
        }
        self.authorization().step = Step::TlsUpgrade;
        encode::ok(out, "Begin TLS negotiation");
        Effect::StartTls
    }

    /// The TLS handshake after STLS succeeded. RFC 2595 §4: the session starts over
    /// in AUTHORIZATION; anything learned before (a USER name) is forgotten.
    pub fn tls_started(&mut self) {
        debug_assert!(matches!(
            &self.state,
            State::Authorization(Authorization {
                step: Step::TlsUpgrade,
                ..
            })
        ));
        self.tls = true;
        self.state = State::Authorization(Authorization::new());
    }

    /// The answer to [`Effect::CheckLogin`].
    pub fn login_checked(&mut self, outcome: LoginOutcome, out: &mut Vec<u8>) -> Effect {
        debug_assert!(matches!(
            &self.state,
            State::Authorization(Authorization {
                step: Step::LoginCheck,
                ..
            })
        ));
        let counts_as_failure =
            matches!(outcome, LoginOutcome::Invalid | LoginOutcome::RateLimited);
        let (code, text) = match outcome {
            LoginOutcome::LoggedIn(maildrop) => {
                let (count, size_bytes) = maildrop.stat();
                encode::ok(
                    out,
                    &format!(
                        "Logged in, maildrop has {} ({size_bytes} octets)",
                        messages(count)
                    ),
                );
                self.state = State::Transaction(Transaction { maildrop });
                return Effect::None;
            }
            LoginOutcome::Invalid => (ResponseCode::Auth, "Authentication failed"),
            LoginOutcome::RateLimited => (
                ResponseCode::SysTemp,
                "Too many failed logins, try again later",
            ),
            LoginOutcome::Unavailable => (
                ResponseCode::SysTemp,
                "Authentication temporarily unavailable",
            ),
            // RFC 2449 §8.1.1.
            LoginOutcome::InUse => (
                ResponseCode::InUse,
                "Maildrop is locked by another POP3 session",
            ),
            LoginOutcome::NoMaildrop => (ResponseCode::SysPerm, "No maildrop for this account"),
            LoginOutcome::StoreFailed => (ResponseCode::SysTemp, "Maildrop unavailable"),
        };
        self.state = State::Authorization(Authorization::new());
        encode::err(out, Some(code), text);
        if counts_as_failure {
            self.login_failures += 1;
            if self.login_failures >= LOGIN_FAILURES_MAX {
                self.state = State::Closed;
                return Effect::Close;
            }
        }
        Effect::None
    }
}
