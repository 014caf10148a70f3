//! The POP3 state machine (RFC 1939 §3): fed command lines, it appends replies to an
//! output buffer and returns an [`Effect`] for the server to carry out. It never sees a
//! socket, a clock or the store: logins, TLS, message bodies and commits come back to
//! it as method calls.
//!
//! ```text
//!  greeting ─► AUTHORIZATION ──USER/PASS, AUTH ok──► TRANSACTION ──QUIT──► UPDATE ──► closed
//!                 │   ▲  STLS (TLS upgrade)              │ STAT LIST RETR TOP DELE
//!                 └───┘                                  │ NOOP RSET UIDL CAPA
//!                 QUIT ─► closed (nothing changes)        └─ connection lost ─► closed (nothing changes)
//! ```
//!
//! Invariants:
//! - `State` variants carry only their state's data: a maildrop exists only in
//!   TRANSACTION, and a user name only in AUTHORIZATION.
//! - Which command is legal in which state is decided in one place, [`COMMAND_STATES`].
//! - The store changes only through [`Effect::Commit`], returned once, by QUIT in the
//!   TRANSACTION state. A session that ends any other way changes nothing
//!   (RFC 1939 §6).
//! - No login is attempted without TLS unless the configuration allows plaintext
//!   logins for this connection (RFC 2595 §2.4 policy, SPEC §6).
//! - Each call appends whole reply lines only; effects that send more (a message, the
//!   TLS go-ahead) say so.

#![forbid(unsafe_code)]

mod authorization;
mod capa;
mod maildrop;
mod transaction;
mod update;

use lifeboat_store::{BodyId, FolderId};

use crate::encode::{self, MessageEncoder, ResponseCode};
use crate::parse::limits::{COMMAND_LINE_BYTES_MAX, SASL_RESPONSE_LINE_BYTES_MAX};
use crate::parse::{
    decode_command, decode_sasl_response, Command, DecodeError, Password, Reason, UserName, Verb,
};

pub use maildrop::{Maildrop, MaildropMessage, MAILDROP_MESSAGES_MAX};

/// Invalid or out-of-state commands a connection may send before it is closed.
pub const BAD_COMMANDS_MAX: u32 = 10;
/// Failed logins a connection may make before it is closed (the authenticator's
/// rate limits apply across connections on top of this).
pub const LOGIN_FAILURES_MAX: u32 = 3;
/// The `IMPLEMENTATION` capability (RFC 2449 §6.9).
pub const IMPLEMENTATION: &str = "Lifeboat";

/// What a session needs to know about its connection and policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// The server's name, for the greeting.
    pub hostname: String,
    /// Whether STLS can be offered (a TLS certificate is loaded).
    pub tls_available: bool,
    /// Whether USER/PASS and AUTH PLAIN may be used without TLS on this connection:
    /// `auth.allow_plaintext_loopback` and a loopback client (SPEC §6).
    pub plaintext_login_allowed: bool,
}

/// The RFC 1939 states, for callers and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateName {
    /// Before a successful login.
    Authorization,
    /// Logged in, working on the maildrop.
    Transaction,
    /// After QUIT in TRANSACTION, while the deletions are committed.
    Update,
    /// The session is over; the connection is to be closed.
    Closed,
}

/// The states in which a command is legal, as a set. UPDATE and the closed session
/// are in no set.
pub type States = lifeboat_net::wire::States<StateName>;

impl lifeboat_net::wire::StateIndex for StateName {
    fn index(self) -> u32 {
        self as u32
    }
}

/// AUTHORIZATION only.
const AUTHORIZATION: States = States::of(&[StateName::Authorization as u32]);
/// TRANSACTION only.
const TRANSACTION: States = States::of(&[StateName::Transaction as u32]);
/// Both.
const BOTH: States = AUTHORIZATION.or(TRANSACTION);

/// Which commands are legal in which state: RFC 1939 §9 (summary), RFC 2449 §5 (CAPA
/// in both), RFC 2595 §4 (STLS in AUTHORIZATION), RFC 5034 §4 (AUTH in
/// AUTHORIZATION). No command is legal in UPDATE: the session ends there.
pub const COMMAND_STATES: [(Verb, States); 15] = [
    (Verb::User, AUTHORIZATION),
    (Verb::Pass, AUTHORIZATION),
    (Verb::Apop, AUTHORIZATION),
    (Verb::Auth, AUTHORIZATION),
    (Verb::Stls, AUTHORIZATION),
    (Verb::Capa, BOTH),
    (Verb::Quit, BOTH),
    (Verb::Stat, TRANSACTION),
    (Verb::List, TRANSACTION),
    (Verb::Retr, TRANSACTION),
    (Verb::Dele, TRANSACTION),
    (Verb::Noop, TRANSACTION),
    (Verb::Rset, TRANSACTION),
    (Verb::Top, TRANSACTION),
    (Verb::Uidl, TRANSACTION),
];

/// Whether `verb` is legal in `state`, from [`COMMAND_STATES`].
pub fn is_legal(verb: Verb, state: StateName) -> bool {
    COMMAND_STATES
        .iter()
        .any(|(v, states)| *v == verb && states.contains(state))
}

/// How a login was asked for, for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginMethod {
    /// `USER` and `PASS` (RFC 1939 §7).
    UserPass,
    /// `AUTH PLAIN` (RFC 5034, RFC 4616).
    SaslPlain,
}

impl LoginMethod {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginMethod::UserPass => "user/pass",
            LoginMethod::SaslPlain => "sasl-plain",
        }
    }
}

/// Credentials to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRequest {
    /// The address given.
    pub user: UserName,
    /// The password given (`Debug` hides it).
    pub password: Password,
    /// How.
    pub method: LoginMethod,
}

/// The answer to [`Effect::CheckLogin`].
#[derive(Clone, Debug)]
pub enum LoginOutcome {
    /// The credentials are good, the maildrop is locked for this session, and this is
    /// its snapshot.
    LoggedIn(Maildrop),
    /// Wrong address or password.
    Invalid,
    /// Too many failures for this account or client (the authenticator's limits).
    RateLimited,
    /// Credentials could not be checked now.
    Unavailable,
    /// Another POP3 session holds the maildrop (RFC 2449 §8.1.1).
    InUse,
    /// The account has no INBOX.
    NoMaildrop,
    /// The store failed while the maildrop was read.
    StoreFailed,
}

/// Deletions and flag changes to commit in the UPDATE state (RFC 1939 §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateRequest {
    /// The account.
    pub account: String,
    /// Its INBOX.
    pub folder: FolderId,
    /// UIDs to expunge (marked by DELE).
    pub expunge: Vec<u32>,
    /// UIDs to mark `\Seen` (retrieved with RETR, not deleted).
    pub seen: Vec<u32>,
}

/// A message to send after the `+OK` line the session wrote.
#[derive(Clone, Debug)]
pub struct SendMessage {
    /// The body to read from the store.
    pub body: BodyId,
    /// Produces the multi-line response from the body, terminator included.
    pub encoder: MessageEncoder,
}

/// What the server must do after sending the reply bytes the session appended.
#[derive(Clone, Debug)]
#[must_use]
pub enum Effect {
    /// Nothing; read the next command.
    None,
    /// Check the credentials, lock and snapshot the maildrop, then call
    /// [`Session::login_checked`].
    CheckLogin(LoginRequest),
    /// Send the reply (the `+OK` go-ahead) in plaintext, drop any input received
    /// after the STLS line, run the TLS handshake, then call [`Session::tls_started`].
    /// If the handshake fails, the connection is closed.
    StartTls,
    /// Send the message after the reply.
    SendMessage(SendMessage),
    /// Commit these changes, then call [`Session::committed`].
    Commit(UpdateRequest),
    /// Send the reply and close the connection.
    Close,
}

/// A step of the AUTHORIZATION state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Waiting for a command.
    Command,
    /// AUTH PLAIN sent its `+` challenge; the next line is the client's response.
    SaslResponse,
    /// [`Effect::CheckLogin`] is out.
    LoginCheck,
    /// [`Effect::StartTls`] is out.
    TlsUpgrade,
}

/// AUTHORIZATION (RFC 1939 §4).
#[derive(Clone, Debug)]
struct Authorization {
    /// The name a successful USER gave, waiting for PASS.
    user: Option<UserName>,
    step: Step,
}

impl Authorization {
    fn new() -> Authorization {
        Authorization {
            user: None,
            step: Step::Command,
        }
    }
}

/// TRANSACTION (RFC 1939 §5).
#[derive(Clone, Debug)]
struct Transaction {
    maildrop: Maildrop,
}

/// UPDATE (RFC 1939 §6), while the commit is out.
#[derive(Clone, Debug)]
struct Update {
    deleted: usize,
}

#[derive(Clone, Debug)]
enum State {
    Authorization(Authorization),
    Transaction(Transaction),
    Update(Update),
    Closed,
}

/// One POP3 session; see the module documentation.
#[derive(Clone, Debug)]
pub struct Session {
    config: SessionConfig,
    tls: bool,
    state: State,
    bad_commands: u32,
    login_failures: u32,
}

impl Session {
    /// A session on a connection that uses TLS already (`tls`: pop3s) or not (pop3).
    pub fn new(config: SessionConfig, tls: bool) -> Session {
        Session {
            config,
            tls,
            state: State::Authorization(Authorization::new()),
            bad_commands: 0,
            login_failures: 0,
        }
    }

    /// Appends the greeting (RFC 1939 §4). No APOP timestamp: APOP needs the
    /// plaintext password on the server, which the store does not keep.
    pub fn greeting(&self, out: &mut Vec<u8>) {
        encode::ok(out, &format!("{} POP3 server ready", self.config.hostname));
    }

    /// The current state.
    pub fn state(&self) -> StateName {
        match self.state {
            State::Authorization(_) => StateName::Authorization,
            State::Transaction(_) => StateName::Transaction,
            State::Update(_) => StateName::Update,
            State::Closed => StateName::Closed,
        }
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The logged-in account, in TRANSACTION.
    pub fn account(&self) -> Option<&str> {
        match &self.state {
            State::Transaction(t) => Some(t.maildrop.account()),
            _ => None,
        }
    }

    /// Whether a login may be attempted on this connection now.
    fn login_allowed(&self) -> bool {
        self.tls || self.config.plaintext_login_allowed
    }

    /// Handles one line from the client, CRLF included: a command, or the response
    /// of a SASL exchange.
    pub fn receive_line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Effect {
        let step = match &self.state {
            State::Closed => return Effect::Close,
            State::Authorization(auth) => auth.step,
            State::Transaction(_) | State::Update(_) => Step::Command,
        };
        match step {
            Step::Command => match decode_command(line, COMMAND_LINE_BYTES_MAX) {
                Ok((command, _)) => self.command(command, out),
                Err(error) => self.decode_failed(error, out),
            },
            Step::SaslResponse => {
                let response = decode_sasl_response(line, SASL_RESPONSE_LINE_BYTES_MAX);
                self.sasl_response(response.map(|(r, _)| r), out)
            }
            Step::LoginCheck | Step::TlsUpgrade => {
                // The server resolves an effect before it reads on; getting here is
                // a bug in the caller, answered without changing anything.
                debug_assert!(false, "line received while an effect is outstanding");
                encode::err(out, Some(ResponseCode::SysTemp), "Busy");
                Effect::None
            }
        }
    }

    /// Handles a decoded command.
    pub fn command(&mut self, command: Command, out: &mut Vec<u8>) -> Effect {
        let state = self.state();
        if state == StateName::Closed {
            return Effect::Close;
        }
        if !is_legal(command.verb(), state) {
            return self.bad_command(out, "Command not valid in this state");
        }
        match command {
            Command::User { name } => self.user(name, out),
            Command::Pass { password } => self.pass(password, out),
            Command::Apop { .. } => self.apop(out),
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response, out),
            Command::AuthMechanisms => self.auth_mechanisms(out),
            Command::Stls => self.stls(out),
            Command::Capa => self.capa(out),
            Command::Quit => self.quit(out),
            Command::Stat => self.stat(out),
            Command::List { message } => self.list(message, out),
            Command::Retr { message } => self.retr(message, out),
            Command::Top { message, lines } => self.top(message, lines, out),
            Command::Dele { message } => self.dele(message, out),
            Command::Noop => self.noop(out),
            Command::Rset => self.rset(out),
            Command::Uidl { message } => self.uidl(message, out),
        }
    }

    /// The client sent a line longer than the server reads (the server drops the rest
    /// of it). Ends a SASL exchange in progress.
    pub fn line_too_long(&mut self, out: &mut Vec<u8>) -> Effect {
        if let State::Authorization(auth) = &mut self.state {
            if auth.step == Step::SaslResponse {
                auth.step = Step::Command;
            }
        }
        self.bad_command(out, "Line too long")
    }

    fn decode_failed(&mut self, error: DecodeError, out: &mut Vec<u8>) -> Effect {
        let text = match error {
            DecodeError::LineTooLong => "Line too long",
            DecodeError::Incomplete => "Syntax error",
            DecodeError::Failed { reason, .. } => match reason {
                Reason::UnknownCommand => "Unknown command",
                Reason::BareLineFeed => "Lines must end with CRLF",
                Reason::ControlCharacter => "Control character in command",
                Reason::InvalidUtf8 => "Invalid UTF-8",
                Reason::InvalidMessageNumber => "Invalid message number",
                Reason::NumberTooLarge => "Number too large",
                Reason::TooLong => "Argument too long",
                Reason::InvalidMechanism => "Invalid mechanism name",
                Reason::InvalidBase64 => "Invalid base64",
                _ => "Syntax error",
            },
        };
        self.bad_command(out, text)
    }

    /// Answers a command that could not be run; closes after [`BAD_COMMANDS_MAX`].
    fn bad_command(&mut self, out: &mut Vec<u8>, text: &str) -> Effect {
        self.bad_commands += 1;
        if self.bad_commands >= BAD_COMMANDS_MAX {
            encode::err(out, None, "Too many invalid commands, closing connection");
            self.state = State::Closed;
            return Effect::Close;
        }
        encode::err(out, None, text);
        Effect::None
    }

    fn transaction(&mut self) -> &mut Transaction {
        match &mut self.state {
            State::Transaction(transaction) => transaction,
            // `command` checked the state against COMMAND_STATES first.
            _ => unreachable!("TRANSACTION command outside TRANSACTION"),
        }
    }

    fn authorization(&mut self) -> &mut Authorization {
        match &mut self.state {
            State::Authorization(authorization) => authorization,
            // `command` checked the state against COMMAND_STATES first.
            _ => unreachable!("AUTHORIZATION command outside AUTHORIZATION"),
        }
    }
}

/// `1 message`, `2 messages`.
fn messages(count: usize) -> String {
    if count == 1 {
        "1 message".to_string()
    } else {
        format!("{count} messages")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verb_has_exactly_one_row() {
        for verb in Verb::ALL {
            let rows = COMMAND_STATES.iter().filter(|(v, _)| *v == verb).count();
            assert_eq!(rows, 1, "{verb:?}");
        }
    }

    #[test]
    fn nothing_is_legal_in_update_or_after_the_end() {
        for verb in Verb::ALL {
            assert!(!is_legal(verb, StateName::Update), "{verb:?}");
            assert!(!is_legal(verb, StateName::Closed), "{verb:?}");
        }
        assert!(is_legal(Verb::Capa, StateName::Authorization));
        assert!(is_legal(Verb::Capa, StateName::Transaction));
        assert!(!is_legal(Verb::Stls, StateName::Transaction));
        assert!(!is_legal(Verb::Retr, StateName::Authorization));
    }

    #[test]
    fn message_counts_read_naturally() {
        assert_eq!(messages(0), "0 messages");
        assert_eq!(messages(1), "1 message");
        assert_eq!(messages(2), "2 messages");
    }
}
