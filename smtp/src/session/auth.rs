//! AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login)
//! mechanisms: the exchange of challenges and responses, and the login outcome.

use super::{
    enhanced_code, reply, reply_code, AuthOutcome, Credentials, Discard, Effect, Helo, Outcome,
    Sasl, Session, State, AUTH_FAILURES_MAX,
};
use crate::parse::{
    decode_auth_response, AuthResponse, DecodeError, EnhancedCode, ErrorReply, Mechanism, ReplyCode,
};

/// The LOGIN mechanism's prompts, base64 of `Username:` and `Password:`.
const LOGIN_USERNAME_PROMPT: &[u8] = b"334 VXNlcm5hbWU6\r\n";
const LOGIN_PASSWORD_PROMPT: &[u8] = b"334 UGFzc3dvcmQ6\r\n";
/// The empty challenge that asks for PLAIN's response (RFC 4954 §4: "334 " followed
/// by nothing).
const PLAIN_PROMPT: &[u8] = b"334 \r\n";

impl Session {
    /// `AUTH mechanism [initial-response]`, in the Ready state.
    pub(super) fn auth(
        &mut self,
        mechanism: Mechanism,
        initial_response: Option<Vec<u8>>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        if self.account.is_some() {
            // RFC 4954 §4: "a server MUST reject any further AUTH commands with a
            // 503 reply".
            return self.bad_command(
                out,
                ReplyCode::BAD_SEQUENCE,
                EnhancedCode::BAD_SEQUENCE,
                "Already authenticated",
            );
        }
        if !self.auth_allowed() {
            // RFC 4954 §6: "538 5.7.11 Encryption required for requested
            // authentication mechanism"; SPEC §6: no password in the clear.
            reply(
                out,
                reply_code(538),
                enhanced_code(5, 7, 11),
                "Encryption required for requested authentication mechanism",
            );
            return Outcome::Continue;
        }
        let helo = self.greeted();
        match (mechanism.as_str(), initial_response) {
            ("PLAIN", Some(response)) => self.plain_response(helo, &response, out),
            ("PLAIN", None) => {
                self.state = State::Sasl {
                    helo,
                    exchange: Sasl::PlainResponse,
                };
                out.extend_from_slice(PLAIN_PROMPT);
                Outcome::Continue
            }
            ("LOGIN", Some(username)) => self.login_username(helo, username, out),
            ("LOGIN", None) => {
                self.state = State::Sasl {
                    helo,
                    exchange: Sasl::LoginUsername,
                };
                out.extend_from_slice(LOGIN_USERNAME_PROMPT);
                Outcome::Continue
            }
            // RFC 4954 §4: "504 5.5.4 Unrecognized authentication type".
            _ => self.bad_command(
                out,
                ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                EnhancedCode::INVALID_ARGUMENTS,
                "Unrecognized authentication type",
            ),
        }
    }

    /// A client line during the exchange, in the Sasl state.
    pub(super) fn sasl_input(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, Outcome) {
        let decoded = decode_auth_response(input, self.sasl_line_bytes_max());
        if decoded == Err(DecodeError::Incomplete) {
            return (0, Outcome::NeedInput);
        }
        let State::Sasl { helo, exchange } = self.take_state() else {
            unreachable!("sasl_input outside the Sasl state");
        };
        // Whatever the line holds, the exchange is over unless LOGIN asks for more.
        self.state = State::Ready(helo.clone());
        match decoded {
            Err(DecodeError::Incomplete) => unreachable!("handled above"),
            Err(DecodeError::LineTooLong) => {
                self.discard = Discard::Line;
                (0, self.line_too_long(out))
            }
            Err(error @ DecodeError::Failed { line_bytes, .. }) => {
                // RFC 4954 §4: a response that cannot be decoded is refused with 501.
                let (code, enhanced, text) = error.reply();
                (line_bytes, self.bad_command(out, code, enhanced, text))
            }
            Ok((AuthResponse::Cancel, used)) => {
                // RFC 4954 §4: "the server MUST reject the AUTH command by sending a
                // 501 reply".
                reply(
                    out,
                    ReplyCode::PARAMETER_SYNTAX_ERROR,
                    enhanced_code(5, 0, 0),
                    "Authentication cancelled",
                );
                (used, Outcome::Continue)
            }
            Ok((AuthResponse::Response(response), used)) => {
                let outcome = match exchange {
                    Sasl::PlainResponse => self.plain_response(helo, &response, out),
                    Sasl::LoginUsername => self.login_username(helo, response, out),
                    Sasl::LoginPassword { username } => {
                        self.login_password(helo, username, response, out)
                    }
                };
                (used, outcome)
            }
        }
    }

    /// PLAIN's response: `[authzid] NUL authcid NUL passwd` (RFC 4616 §2).
    fn plain_response(&mut self, helo: Helo, response: &[u8], out: &mut Vec<u8>) -> Outcome {
        let mut parts = response.split(|&byte| byte == 0);
        let (Some(authzid), Some(authcid), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return self.malformed_response(out);
        };
        let (Ok(authzid), Ok(username), Ok(password)) = (
            std::str::from_utf8(authzid),
            std::str::from_utf8(authcid),
            std::str::from_utf8(password),
        ) else {
            return self.malformed_response(out);
        };
        if !authzid.is_empty() && authzid != username {
            // Acting as another user (proxy authorization) is not supported.
            self.state = State::Ready(helo);
            return self.login_failed(out);
        }
        self.check_credentials(helo, "PLAIN", username.to_owned(), password.to_owned())
    }

    /// LOGIN's first response, the user name.
    fn login_username(&mut self, helo: Helo, username: Vec<u8>, out: &mut Vec<u8>) -> Outcome {
        let Ok(username) = String::from_utf8(username) else {
            return self.malformed_response(out);
        };
        self.state = State::Sasl {
            helo,
            exchange: Sasl::LoginPassword { username },
        };
        out.extend_from_slice(LOGIN_PASSWORD_PROMPT);
        Outcome::Continue
    }

    /// LOGIN's second response, the password.
    fn login_password(
        &mut self,
        helo: Helo,
        username: String,
        password: Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let Ok(password) = String::from_utf8(password) else {
            return self.malformed_response(out);
        };
        self.check_credentials(helo, "LOGIN", username, password)
    }

    /// Asks the server to check the credentials.
    fn check_credentials(
        &mut self,
        helo: Helo,
        mechanism: &'static str,
        username: String,
        password: String,
    ) -> Outcome {
        self.state = State::Authenticating(helo);
        Outcome::Effect(Effect::Authenticate(Credentials {
            mechanism,
            username,
            password,
        }))
    }

    /// A response that decodes as base64 but not as the mechanism's message.
    fn malformed_response(&mut self, out: &mut Vec<u8>) -> Outcome {
        self.bad_command(
            out,
            ReplyCode::PARAMETER_SYNTAX_ERROR,
            EnhancedCode::SYNTAX_ERROR,
            "Malformed authentication response",
        )
    }

    /// Wrong credentials: `535 5.7.8` (RFC 4954 §6), closing after
    /// [`AUTH_FAILURES_MAX`].
    fn login_failed(&mut self, out: &mut Vec<u8>) -> Outcome {
        self.auth_failures += 1;
        if self.auth_failures >= AUTH_FAILURES_MAX {
            return self.close_with(
                out,
                enhanced_code(4, 7, 0),
                "Too many failed logins, closing connection",
            );
        }
        reply(
            out,
            ReplyCode::AUTH_INVALID,
            EnhancedCode::AUTH_INVALID,
            "Authentication credentials invalid",
        );
        Outcome::Continue
    }

    /// The server's answer to [`Effect::Authenticate`].
    pub fn authenticated(&mut self, outcome: AuthOutcome, out: &mut Vec<u8>) {
        let State::Authenticating(helo) = self.take_state() else {
            debug_assert!(false, "authenticated without a login check");
            return;
        };
        self.state = State::Ready(helo);
        // RFC 4954 §6: 454 4.7.0 "Temporary authentication failure".
        let temporary = |out: &mut Vec<u8>, text: &str| {
            reply(
                out,
                ReplyCode::TEMPORARY_AUTH_FAILURE,
                enhanced_code(4, 7, 0),
                text,
            );
        };
        match outcome {
            AuthOutcome::Authenticated(account) => {
                self.account = Some(account);
                reply(
                    out,
                    ReplyCode::AUTH_SUCCEEDED,
                    EnhancedCode::AUTH_SUCCEEDED,
                    "Authentication successful",
                );
            }
            AuthOutcome::Invalid => {
                let _ = self.login_failed(out);
            }
            AuthOutcome::RateLimited => temporary(out, "Too many failed logins, try again later"),
            AuthOutcome::Unavailable => temporary(out, "Temporary authentication failure"),
        }
    }
}
