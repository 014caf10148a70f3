//! The SMTP server state machine (RFC 5321 §3, §4.1.4, with PIPELINING, SIZE, 8BITMIME,
//! SMTPUTF8, ENHANCEDSTATUSCODES, STARTTLS, AUTH and CHUNKING). It is fed the bytes the
//! client sent, appends replies to an output buffer and returns an [`Effect`] for the
//! server layer to carry out. It never sees a socket, a clock, the store or the relay:
//! recipient checks, message acceptance, logins and TLS come back to it as method
//! calls, and the time is an argument.
//!
//! ```text
//!            ┌──────────── STARTTLS (TLS upgrade, back to Connected) ◄─────────┐
//!            ▼                                                                 │
//!  greeting ─► Connected ──EHLO/HELO──► Ready ──MAIL──► Mail ──RCPT ok──► Rcpt ─┤
//!                              ▲   │ AUTH (SASL exchange, login check)  │ RCPT │
//!                              │   └──────────────┘                     ▼      │
//!                              │◄──── 250 queued / refusal ◄─── Data (DATA) ───┤
//!                              │◄──── 250 queued / refusal ◄─── Bdat (BDAT …) ─┘
//!                              └──── RSET, EHLO, HELO from any greeted state
//! ```
//!
//! Invariants:
//! - `State` variants carry only their state's data: an envelope exists only inside a
//!   mail transaction, a message body only while it is being received.
//! - Which command is legal in which state is decided in one place,
//!   [`COMMAND_STATES`]; anything else is `503 5.5.1`.
//! - A DATA body ends only where [`DataDecoder`] finds `<CRLF>.<CRLF>`, and a BDAT chunk
//!   only after its announced octet count, whatever state the session is in. A refused
//!   body (bare CR or LF, NUL, too big) gets exactly one reply after its real end, so
//!   no part of a message is ever read as a command (SMTP smuggling).
//! - Bytes after a STARTTLS command are never consumed: the server discards them with
//!   the plaintext buffer, and after the upgrade the session starts over (RFC 3207
//!   §4.2), forgetting the EHLO name and any login.
//! - Credentials are never asked for on a plaintext connection unless the
//!   configuration allows it for this client ([`SessionConfig::plaintext_auth_allowed`]).
//! - [`Effect::Accept`] is returned only for a complete message with at least one
//!   recipient the relay accepted, and the reply to it is written only once the server
//!   reports the outcome ([`Session::accepted`]): a 250 after the end of data means
//!   the server said the message is durable.
//! - Every count the client controls has a limit: line length, message size,
//!   recipients, bad commands, refused recipients, failed logins, transactions, hops.

#![forbid(unsafe_code)]

mod auth;
mod bdat;
#[doc(hidden)]
pub mod check;
mod data;
mod hello;
mod mail;
mod message;
mod rcpt;
pub(crate) mod received;
mod simple;
mod starttls;

use std::fmt;
use std::net::IpAddr;

use lifeboat_store::{MessageData, Spill};
use message::MessageBuf;

use crate::parse::limits::AUTH_LINE_BYTES_MAX;
use crate::parse::{
    decode_command, skip_line, Command, DataDecoder, DataError, DecodeError, Domain, EnhancedCode,
    ErrorReply, Host, Reason, ReplyCode,
};

pub use received::{date_time, received_header, Protocol};

/// Invalid, unknown or out-of-sequence commands a connection may send before it is
/// closed: a client that keeps getting 5xx replies is broken or probing.
pub const BAD_COMMANDS_MAX: u32 = 10;
/// RSET, NOOP, VRFY, EXPN and HELP a connection may send between two messages it
/// delivers before it is closed (Postfix's `smtpd_junk_command_limit`): they cost a
/// reply each and carry no mail, and could keep a connection open for good.
pub const JUNK_COMMANDS_MAX: u32 = 100;
/// Recipients the relay may refuse permanently (5xx) in one connection before it is
/// closed: this bounds address harvesting and the verification work each costs.
pub const RECIPIENT_REFUSALS_MAX: u32 = 20;
/// Failed logins a connection may make before it is closed (the authenticator's rate
/// limits apply across connections on top of this).
pub const AUTH_FAILURES_MAX: u32 = 3;
/// Mail transactions (accepted MAIL commands) per connection: a client with more mail
/// reconnects, which lets connection limits share the server fairly. High enough that
/// a customer server or smart-host client streaming mail over one connection (as
/// Postfix's and Exim's clients do) rarely meets it.
pub const TRANSACTIONS_MAX: u32 = 10_000;
/// Received header fields a message may already carry. RFC 5321 §6.3 suggests
/// rejecting at "a rejection threshold of 100 Received fields" to break mail loops.
pub const HOPS_MAX: usize = 100;

/// The limits of one session, from the configuration (SPEC §8 `[limits]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `limits.message_size_max`: most message bytes a client may send (after
    /// un-stuffing; the Received header this server adds is not counted). Advertised
    /// with `SIZE` (RFC 1870).
    pub message_bytes_max: u64,
    /// `limits.recipients_max`: most accepted recipients per transaction; more get
    /// `452 4.5.3` (RFC 5321 §4.5.3.1.10).
    pub recipients_max: usize,
    /// `limits.line_bytes_max`: the longest command line, CRLF included. RFC 5321
    /// §4.5.3.1.4 requires at least 512.
    pub line_bytes_max: usize,
}

/// What a session needs to know about its listener, its connection and its policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// `server.hostname`: named in the greeting, EHLO reply and Received header.
    pub hostname: Domain,
    /// The client's address, for the Received header.
    pub client_ip: IpAddr,
    /// Identifies the connection in Received headers and logs; each transaction adds
    /// its number to it.
    pub connection_id: u64,
    /// Whether STARTTLS can be offered (a TLS certificate is loaded).
    pub starttls_available: bool,
    /// Whether MAIL requires a successful AUTH first (the submission listeners,
    /// RFC 6409 §4.3).
    pub auth_required: bool,
    /// Whether AUTH may be used without TLS on this connection:
    /// `auth.allow_plaintext_loopback` and a loopback client (SPEC §6, RFC 4954 §4).
    pub plaintext_auth_allowed: bool,
    /// Size and count limits.
    pub limits: Limits,
}

/// Names of the states, for the command table, callers and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateName {
    /// Greeting sent (or TLS just started); waiting for EHLO or HELO.
    Connected,
    /// Greeted, no mail transaction.
    Ready,
    /// MAIL accepted, no recipient yet.
    Mail,
    /// At least one recipient accepted.
    Rcpt,
    /// Receiving a DATA body.
    Data,
    /// Between the chunks of a BDAT transfer.
    Bdat,
    /// Receiving the octets of a BDAT chunk.
    BdatChunk,
    /// In a SASL exchange: the next line is the client's response.
    Sasl,
    /// An effect is out; no input is read until the server reports back.
    Waiting,
    /// The session is over.
    Closed,
}

/// A set of [`StateName`]s in which a command is legal. States that read no commands
/// are in no set.
pub type States = lifeboat_net::wire::States<StateName>;

impl lifeboat_net::wire::StateIndex for StateName {
    fn index(self) -> u32 {
        self as u32
    }
}

/// Before EHLO/HELO.
const CONNECTED: States = States::of(&[StateName::Connected as u32]);
/// Greeted, outside a transaction.
const READY: States = States::of(&[StateName::Ready as u32]);
/// A transaction before its data: after MAIL, or after an accepted RCPT.
const ENVELOPE: States = States::of(&[StateName::Mail as u32, StateName::Rcpt as u32]);
/// Between BDAT chunks.
const BDAT: States = States::of(&[StateName::Bdat as u32]);
/// Every state that reads commands.
const ALL: States = CONNECTED.or(READY).or(ENVELOPE).or(BDAT);

/// The command words, as the command table names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// `EHLO`
    Ehlo,
    /// `HELO`
    Helo,
    /// `MAIL`
    Mail,
    /// `RCPT`
    Rcpt,
    /// `DATA`
    Data,
    /// `BDAT`
    Bdat,
    /// `RSET`
    Rset,
    /// `NOOP`
    Noop,
    /// `QUIT`
    Quit,
    /// `VRFY`
    Vrfy,
    /// `EXPN`
    Expn,
    /// `HELP`
    Help,
    /// `STARTTLS`
    StartTls,
    /// `AUTH`
    Auth,
}

impl Verb {
    /// The verb of a decoded command.
    pub fn of(command: &Command) -> Verb {
        match command {
            Command::Ehlo { .. } => Verb::Ehlo,
            Command::Helo { .. } => Verb::Helo,
            Command::Mail { .. } => Verb::Mail,
            Command::Rcpt { .. } => Verb::Rcpt,
            Command::Data => Verb::Data,
            Command::Bdat { .. } => Verb::Bdat,
            Command::Rset => Verb::Rset,
            Command::Noop { .. } => Verb::Noop,
            Command::Quit => Verb::Quit,
            Command::Vrfy { .. } => Verb::Vrfy,
            Command::Expn { .. } => Verb::Expn,
            Command::Help { .. } => Verb::Help,
            Command::StartTls => Verb::StartTls,
            Command::Auth { .. } => Verb::Auth,
        }
    }
}

/// Which commands are legal in which state. RFC 5321 §4.1.4: EHLO/HELO start over
/// from any state, and RSET, NOOP, QUIT, VRFY, EXPN and HELP may come at any time;
/// MAIL starts a transaction only outside one; RCPT needs MAIL; DATA and BDAT need
/// MAIL (the handlers answer 554 when no recipient was accepted, RFC 5321 §3.3).
/// RFC 3030 §2: once BDAT has started, only BDAT, RSET, QUIT and the harmless
/// commands are legal — "DATA after BDAT" and a new EHLO are sequence errors. RFC 3207
/// §4 and RFC 4954 §4: STARTTLS and AUTH only after EHLO and outside a transaction.
pub const COMMAND_STATES: [(Verb, States); 14] = [
    (Verb::Ehlo, CONNECTED.or(READY).or(ENVELOPE)),
    (Verb::Helo, CONNECTED.or(READY).or(ENVELOPE)),
    (Verb::Mail, READY),
    (Verb::Rcpt, ENVELOPE),
    (Verb::Data, ENVELOPE),
    (Verb::Bdat, ENVELOPE.or(BDAT)),
    (Verb::Rset, ALL),
    (Verb::Noop, ALL),
    (Verb::Quit, ALL),
    (Verb::Vrfy, ALL),
    (Verb::Expn, ALL),
    (Verb::Help, ALL),
    (Verb::StartTls, READY),
    (Verb::Auth, READY),
];

/// Whether `verb` is legal in `state`, from [`COMMAND_STATES`].
pub fn is_legal(verb: Verb, state: StateName) -> bool {
    COMMAND_STATES
        .iter()
        .any(|(v, states)| *v == verb && states.contains(state))
}

/// What the server must do after sending the replies the session appended.
#[derive(Debug)]
#[must_use]
pub enum Effect {
    /// Every complete command in the input was handled: send the replies (RFC 2920
    /// §3: before blocking on a read) and call [`Session::receive`] with more input.
    NeedInput,
    /// Ask the relay whether the recipient is acceptable, then call
    /// [`Session::recipient_checked`].
    CheckRecipient(RecipientCheck),
    /// Store the message durably (archive plus queue or portal), then call
    /// [`Session::accepted`].
    Accept(Delivery),
    /// Check the credentials, then call [`Session::authenticated`].
    Authenticate(Credentials),
    /// Send the replies in plaintext (the last is the `220` go-ahead), discard any
    /// input after what was consumed, run the TLS handshake, then call
    /// [`Session::tls_started`]. If the handshake fails the connection is closed.
    StartTls,
    /// Send the replies and close the connection.
    Close,
}

/// The outcome of one [`Session::receive`] call.
#[derive(Debug)]
#[must_use]
pub struct Progress {
    /// Bytes of the input that were used; the rest is to be offered again (with more
    /// input appended) on the next call.
    pub consumed: usize,
    /// What the server does next.
    pub effect: Effect,
}

/// A recipient to check ([`Effect::CheckRecipient`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientCheck {
    /// The reverse-path as a plain address, `""` for the null path.
    pub mail_from: String,
    /// The recipient as a plain address, without angle brackets.
    pub recipient: String,
}

/// A complete message to accept ([`Effect::Accept`]).
pub struct Delivery {
    /// The transaction's identifier, as written in the Received header.
    pub transaction_id: String,
    /// The reverse-path as a plain address, `""` for the null path.
    pub mail_from: String,
    /// The accepted recipients, plain addresses, in the order given, without
    /// duplicates.
    pub recipients: Vec<String>,
    /// The message: this server's Received header, then the client's data; in a
    /// spill file when it was received past the memory budget.
    pub message: MessageData,
    /// Bytes the client sent as message data (after un-stuffing).
    pub data_bytes: u64,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("transaction_id", &self.transaction_id)
            .field("mail_from", &self.mail_from)
            .field("recipients", &self.recipients)
            .field("message_bytes", &self.message.len())
            .field("data_bytes", &self.data_bytes)
            .finish()
    }
}

/// Credentials from an AUTH exchange ([`Effect::Authenticate`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The SASL mechanism used, for logs.
    pub mechanism: &'static str,
    /// The authentication identity: the account address.
    pub username: String,
    /// The password. `Debug` does not show it.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The answer to [`Effect::Authenticate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The credentials are good; the account's address.
    Authenticated(String),
    /// Wrong address or password.
    Invalid,
    /// Too many failures for this account or client; try later.
    RateLimited,
    /// The credentials could not be checked now.
    Unavailable,
}

/// A refusal from the relay, sent to the client as the reply to RCPT or to the end of
/// data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// A 4xx or 5xx reply code.
    pub code: ReplyCode,
    /// The enhanced status code (RFC 3463); its class is made to match `code`.
    pub enhanced: EnhancedCode,
    /// The reply text.
    pub text: String,
}

/// The client's EHLO or HELO.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Helo {
    /// The name the client gave.
    host: Host,
    /// EHLO (true) or HELO (false): whether service extensions were negotiated.
    extended: bool,
}

/// The envelope of a mail transaction (RFC 5321 §3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Envelope {
    /// `{connection_id}-{n}`: names the transaction in the Received header and logs.
    id: String,
    /// The reverse-path as a plain address, `""` for `<>`.
    mail_from: String,
    /// MAIL had the SMTPUTF8 parameter (RFC 6531 §3.4).
    smtputf8: bool,
    /// The SIZE the client declared, already checked against the limit.
    size_declared: Option<u64>,
    /// Accepted recipients, plain addresses, without duplicates.
    recipients: Vec<String>,
}

/// A mail transaction before its data.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Transaction {
    helo: Helo,
    envelope: Envelope,
}

/// A message being received with DATA.
#[derive(Debug)]
struct DataBody {
    transaction: Transaction,
    /// The Received header, then the data decoded so far.
    message: MessageBuf,
    decoder: DataDecoder,
}

/// A message being received with BDAT.
#[derive(Debug)]
struct Chunks {
    transaction: Transaction,
    /// The Received header, then the chunks so far (emptied once `failed`).
    message: MessageBuf,
    /// Bytes of chunk data received.
    data_bytes: u64,
    /// Why the message fails (the chunks passed the size limit, or the server has no
    /// memory for them): the rest is discarded and the transaction fails at the end
    /// of the chunk.
    failed: Option<DataError>,
}

/// A BDAT chunk being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Chunk {
    /// Bytes of the chunk still to come.
    remaining_bytes: u64,
    /// The chunk is the last one (`BDAT n LAST`).
    last: bool,
    /// Its announced size, for the reply.
    chunk_bytes: u64,
}

/// Where a SASL exchange is (RFC 4954 §4).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Sasl {
    /// `AUTH PLAIN` without an initial response: the next line is the response.
    PlainResponse,
    /// `AUTH LOGIN`: the next line is the user name.
    LoginUsername,
    /// `AUTH LOGIN`: the next line is the password.
    LoginPassword { username: String },
}

/// The protocol state; see the module documentation.
#[derive(Debug)]
enum State {
    Connected,
    Ready(Helo),
    /// MAIL accepted, no recipient yet.
    Mail(Transaction),
    /// At least one recipient accepted.
    Rcpt(Transaction),
    /// [`Effect::CheckRecipient`] is out for `recipient`.
    CheckingRecipient {
        transaction: Transaction,
        recipient: String,
    },
    Data(DataBody),
    /// Between BDAT chunks.
    Bdat(Chunks),
    BdatChunk {
        chunks: Chunks,
        chunk: Chunk,
    },
    /// [`Effect::Accept`] is out.
    Accepting(Helo),
    Sasl {
        helo: Helo,
        exchange: Sasl,
    },
    /// [`Effect::Authenticate`] is out.
    Authenticating(Helo),
    /// [`Effect::StartTls`] is out.
    StartingTls,
    Closed,
}

impl State {
    fn name(&self) -> StateName {
        match self {
            State::Connected => StateName::Connected,
            State::Ready(_) => StateName::Ready,
            State::Mail(_) => StateName::Mail,
            State::Rcpt(_) => StateName::Rcpt,
            State::Data(_) => StateName::Data,
            State::Bdat(_) => StateName::Bdat,
            State::BdatChunk { .. } => StateName::BdatChunk,
            State::Sasl { .. } => StateName::Sasl,
            State::CheckingRecipient { .. }
            | State::Accepting(_)
            | State::Authenticating(_)
            | State::StartingTls => StateName::Waiting,
            State::Closed => StateName::Closed,
        }
    }

    /// The client's EHLO/HELO, in every state after it.
    fn helo(&self) -> Option<&Helo> {
        match self {
            State::Ready(helo)
            | State::Accepting(helo)
            | State::Authenticating(helo)
            | State::Sasl { helo, .. } => Some(helo),
            State::Mail(transaction)
            | State::Rcpt(transaction)
            | State::CheckingRecipient { transaction, .. }
            | State::Data(DataBody { transaction, .. })
            | State::Bdat(Chunks { transaction, .. })
            | State::BdatChunk {
                chunks: Chunks { transaction, .. },
                ..
            } => Some(&transaction.helo),
            State::Connected | State::StartingTls | State::Closed => None,
        }
    }
}

/// Input the session is throwing away, whatever its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Discard {
    /// Nothing.
    Nothing,
    /// The rest of an over-long line, through its LF.
    Line,
    /// The octets of a BDAT chunk that was refused when its command was read (RFC 3030
    /// §2: the server "MUST be prepared to accept and discard additional BDAT chunks").
    Bytes(u64),
}

/// What a step of [`Session::receive`] leads to.
enum Outcome {
    /// Go on with the rest of the input.
    Continue,
    /// Nothing more can be done with the input at hand.
    NeedInput,
    /// Stop and hand this to the server.
    Effect(Effect),
}

/// One SMTP session; see the module documentation.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    tls: bool,
    state: State,
    discard: Discard,
    /// The account a successful AUTH logged in; kept until STARTTLS.
    account: Option<String>,
    bad_commands: u32,
    /// Commands that carry no mail since the last message accepted
    /// ([`JUNK_COMMANDS_MAX`]).
    junk_commands: u32,
    recipient_refusals: u32,
    auth_failures: u32,
    transactions: u32,
    /// Bytes the store may still take, as the server last said
    /// ([`Session::set_storage_available`]); `None`: not known, not checked.
    storage_available: Option<u64>,
}

impl Session {
    /// A session on a connection that uses TLS already (`tls`: implicit TLS) or not.
    pub fn new(config: SessionConfig, tls: bool) -> Session {
        Session {
            config,
            tls,
            state: State::Connected,
            discard: Discard::Nothing,
            account: None,
            bad_commands: 0,
            junk_commands: 0,
            recipient_refusals: 0,
            auth_failures: 0,
            transactions: 0,
            storage_available: None,
        }
    }

    /// How many bytes the store may still take before it reaches its disk reserve: a
    /// MAIL is refused with `452 4.3.1` when that is nothing, or less than the size
    /// the client declares (RFC 1870 §6.1).
    pub fn set_storage_available(&mut self, bytes: Option<u64>) {
        self.storage_available = bytes;
    }

    /// Appends the greeting (RFC 5321 §4.2, §3.1).
    pub fn greeting(&self, out: &mut Vec<u8>) {
        let text = format!("{} ESMTP Lifeboat", self.config.hostname);
        crate::parse::encode_reply(ReplyCode::SERVICE_READY, None, &[text.as_str()], out);
    }

    /// The current state.
    pub fn state(&self) -> StateName {
        self.state.name()
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The account a successful AUTH logged in.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// The name the client gave with EHLO or HELO, once it has.
    pub fn helo(&self) -> Option<String> {
        self.state.helo().map(|helo| helo.host.to_string())
    }

    /// Whether a message body is being received: the server may let it finish during
    /// shutdown rather than cut it off.
    pub fn in_message(&self) -> bool {
        matches!(self.state, State::Data(_) | State::BdatChunk { .. })
    }

    /// Bytes of the message being received that the session holds (0 between
    /// messages).
    pub fn message_bytes(&self) -> usize {
        match &self.state {
            State::Data(body) => body.message.memory_bytes(),
            State::Bdat(chunks) | State::BdatChunk { chunks, .. } => chunks.message.memory_bytes(),
            _ => 0,
        }
    }

    /// Whether the message being received goes to a spill file
    /// ([`Session::spill_message`]).
    pub fn message_spilled(&self) -> bool {
        match &self.state {
            State::Data(body) => body.message.is_spilled(),
            State::Bdat(chunks) | State::BdatChunk { chunks, .. } => chunks.message.is_spilled(),
            _ => false,
        }
    }

    /// Refuses the message being received for want of memory (`why`:
    /// [`DataError::Busy`], or [`DataError::NoSpace`] when it could not be spilled to
    /// a full disk either): what it holds is freed, the rest of it is read and
    /// dropped, and its end is answered with `why`'s temporary failure (`451 4.3.0`,
    /// `452 4.3.1`), so the client sends it again later.
    pub fn refuse_message(&mut self, why: DataError) {
        match &mut self.state {
            State::Data(body) => {
                body.decoder.refuse(why);
                body.message = MessageBuf::Empty;
            }
            State::Bdat(chunks) | State::BdatChunk { chunks, .. } => {
                chunks.failed.get_or_insert(why);
                chunks.message = MessageBuf::Empty;
            }
            _ => {}
        }
    }

    /// Moves the message being received to `spill` (the server's memory budget is
    /// spent): what the session holds of it is written there, and so is the rest as
    /// it comes. An error leaves the message as it was.
    pub fn spill_message(&mut self, spill: Spill) -> std::io::Result<()> {
        match &mut self.state {
            State::Data(DataBody { message, .. })
            | State::Bdat(Chunks { message, .. })
            | State::BdatChunk {
                chunks: Chunks { message, .. },
                ..
            } => message.spill(spill),
            _ => Ok(()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Handles the client's input: commands (as many as are complete, RFC 2920), the
    /// lines of a SASL exchange, DATA bodies and BDAT chunks. `now_unix_seconds` dates
    /// the Received header of a message that starts in this input. Replies are
    /// appended to `out`.
    pub fn receive(&mut self, input: &[u8], now_unix_seconds: u64, out: &mut Vec<u8>) -> Progress {
        let mut consumed = 0;
        loop {
            if self.state.name() == StateName::Closed {
                return Progress {
                    consumed,
                    effect: Effect::Close,
                };
            }
            let rest = &input[consumed..];
            let (used, outcome) = if self.discard != Discard::Nothing {
                (self.discard_input(rest), Outcome::Continue)
            } else {
                self.step(rest, now_unix_seconds, out)
            };
            consumed += used;
            let effect = match outcome {
                Outcome::Continue if consumed < input.len() => continue,
                Outcome::Continue | Outcome::NeedInput => Effect::NeedInput,
                Outcome::Effect(effect) => effect,
            };
            return Progress { consumed, effect };
        }
    }

    /// One unit of input for the current state: a command line, a SASL line, or part
    /// of a message body.
    fn step(&mut self, input: &[u8], now_unix_seconds: u64, out: &mut Vec<u8>) -> (usize, Outcome) {
        match self.state.name() {
            StateName::Data => self.data_input(input, out),
            StateName::BdatChunk => self.chunk_input(input, out),
            StateName::Sasl => self.sasl_input(input, out),
            StateName::Waiting => {
                // The server resolves an effect before it offers more input; getting
                // here is a bug in the caller. Nothing is consumed or answered.
                debug_assert!(false, "input offered while an effect is outstanding");
                (0, Outcome::NeedInput)
            }
            StateName::Closed => (0, Outcome::Effect(Effect::Close)),
            StateName::Connected
            | StateName::Ready
            | StateName::Mail
            | StateName::Rcpt
            | StateName::Bdat => self.command_input(input, now_unix_seconds, out),
        }
    }

    /// Decodes and runs one command line.
    fn command_input(
        &mut self,
        input: &[u8],
        now_unix_seconds: u64,
        out: &mut Vec<u8>,
    ) -> (usize, Outcome) {
        match decode_command(input, self.config.limits.line_bytes_max) {
            Ok((command, used)) => (used, self.command(command, now_unix_seconds, out)),
            Err(DecodeError::Incomplete) => (0, Outcome::NeedInput),
            Err(DecodeError::LineTooLong) => {
                self.discard = Discard::Line;
                (0, self.line_too_long(out))
            }
            Err(error @ DecodeError::Failed { reason, line_bytes }) => {
                let outcome = if reason == Reason::UnknownCommand {
                    // RFC 5321 §4.2.4: 500 for an unrecognized command; 5.5.2 as
                    // Postfix and the other major servers send.
                    self.bad_command(
                        out,
                        ReplyCode::SYNTAX_ERROR,
                        EnhancedCode::SYNTAX_ERROR,
                        "Command unrecognized",
                    )
                } else {
                    let (code, enhanced, text) = error.reply();
                    self.bad_command(out, code, enhanced, text)
                };
                (line_bytes, outcome)
            }
        }
    }

    /// Runs a decoded command, after checking it against [`COMMAND_STATES`].
    fn command(&mut self, command: Command, now_unix_seconds: u64, out: &mut Vec<u8>) -> Outcome {
        let verb = Verb::of(&command);
        let state = self.state.name();
        if !is_legal(verb, state) {
            if let Command::Bdat { chunk_bytes, .. } = command {
                // The chunk's octets follow the line whatever we think of it: they
                // must never be read as commands.
                self.discard = Discard::Bytes(chunk_bytes);
            }
            return self.bad_sequence(verb, state, out);
        }
        if matches!(
            command,
            Command::Rset
                | Command::Noop { .. }
                | Command::Vrfy { .. }
                | Command::Expn { .. }
                | Command::Help { .. }
        ) {
            self.junk_commands += 1;
            if self.junk_commands > JUNK_COMMANDS_MAX {
                return self.close_with(
                    out,
                    enhanced_code(4, 7, 0),
                    "Too many commands without mail, closing connection",
                );
            }
        }
        match command {
            Command::Ehlo { host } => self.ehlo(host, out),
            Command::Helo { host } => self.helo_command(host, out),
            Command::Mail { from, parameters } => self.mail(from, parameters, out),
            Command::Rcpt { to, parameters } => self.rcpt(to, parameters, out),
            Command::Data => self.data(now_unix_seconds, out),
            Command::Bdat { chunk_bytes, last } => {
                self.bdat(chunk_bytes, last, now_unix_seconds, out)
            }
            Command::Rset => self.rset(out),
            Command::Noop { .. } => self.noop(out),
            Command::Quit => self.quit(out),
            Command::Vrfy { .. } => self.vrfy(out),
            Command::Expn { .. } => self.expn(out),
            Command::Help { .. } => self.help(out),
            Command::StartTls => self.starttls(out),
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response, out),
        }
    }

    /// Throws away input according to [`Session::discard`]; returns the bytes used.
    fn discard_input(&mut self, input: &[u8]) -> usize {
        match self.discard {
            Discard::Nothing => 0,
            Discard::Line => match skip_line(input) {
                Some(used) => {
                    self.discard = Discard::Nothing;
                    used
                }
                None => input.len(),
            },
            Discard::Bytes(remaining) => {
                // `take` is at most `input.len()`, a usize.
                let take = remaining.min(input.len() as u64);
                self.discard = match remaining - take {
                    0 => Discard::Nothing,
                    left => Discard::Bytes(left),
                };
                take as usize
            }
        }
    }

    /// A line longer than `line_bytes_max` (or, in a SASL exchange, than RFC 4954's
    /// limit); the caller has arranged for its rest to be discarded.
    fn line_too_long(&mut self, out: &mut Vec<u8>) -> Outcome {
        // RFC 5321 §4.5.3.1.10: "500 Line too long".
        let (code, enhanced, text) = DecodeError::LineTooLong.reply();
        self.bad_command(out, code, enhanced, text)
    }

    /// The reply to a command that is not legal in `state`.
    fn bad_sequence(&mut self, verb: Verb, state: StateName, out: &mut Vec<u8>) -> Outcome {
        let text = match (verb, state) {
            (_, StateName::Connected) => "Send EHLO or HELO first",
            (Verb::Mail, StateName::Mail | StateName::Rcpt) => "Nested MAIL command",
            (Verb::Rcpt | Verb::Data | Verb::Bdat, StateName::Ready) => "Need MAIL command",
            (Verb::Data, StateName::Bdat) => "DATA cannot follow BDAT; send RSET",
            (_, StateName::Bdat) => "BDAT transfer in progress; send BDAT or RSET",
            (Verb::StartTls | Verb::Auth, _) => "Not allowed in a mail transaction",
            _ => "Bad sequence of commands",
        };
        self.bad_command(
            out,
            ReplyCode::BAD_SEQUENCE,
            EnhancedCode::BAD_SEQUENCE,
            text,
        )
    }

    /// Answers a command that could not be run; closes the connection after
    /// [`BAD_COMMANDS_MAX`].
    fn bad_command(
        &mut self,
        out: &mut Vec<u8>,
        code: ReplyCode,
        enhanced: EnhancedCode,
        text: &str,
    ) -> Outcome {
        self.bad_commands += 1;
        if self.bad_commands >= BAD_COMMANDS_MAX {
            return self.close_with(
                out,
                enhanced_code(4, 7, 0),
                "Too many errors, closing connection",
            );
        }
        reply(out, code, enhanced, text);
        Outcome::Continue
    }

    /// Sends `421` with `enhanced` and ends the session (RFC 5321 §3.8).
    fn close_with(&mut self, out: &mut Vec<u8>, enhanced: EnhancedCode, text: &str) -> Outcome {
        let text = format!("{} {text}", self.config.hostname);
        reply(out, ReplyCode::SERVICE_NOT_AVAILABLE, enhanced, &text);
        self.state = State::Closed;
        self.discard = Discard::Nothing;
        Outcome::Effect(Effect::Close)
    }

    /// The client sent nothing for the idle timeout: appends `421 4.4.2` (RFC 5321
    /// §4.5.3.2, RFC 3463 "bad connection") and ends the session.
    pub fn timed_out(&mut self, out: &mut Vec<u8>) {
        let _ = self.close_with(
            out,
            enhanced_code(4, 4, 2),
            "Timeout exceeded, closing connection",
        );
    }

    /// The server is stopping: appends `421 4.3.2` ("system not accepting network
    /// messages", RFC 3463) and ends the session.
    pub fn shutting_down(&mut self, out: &mut Vec<u8>) {
        let _ = self.close_with(out, enhanced_code(4, 3, 2), "Service shutting down");
    }

    /// Takes the state out, leaving [`State::Closed`] until the caller puts one back.
    fn take_state(&mut self) -> State {
        std::mem::replace(&mut self.state, State::Closed)
    }

    /// The EHLO/HELO of the current state, for handlers the command table only lets
    /// run after it.
    fn greeted(&self) -> Helo {
        match self.state.helo() {
            Some(helo) => helo.clone(),
            // COMMAND_STATES lets these commands run only in greeted states.
            None => unreachable!("command needing EHLO ran before it"),
        }
    }

    /// Whether AUTH may be used now: over TLS, or where plaintext is allowed.
    fn auth_allowed(&self) -> bool {
        self.tls || self.config.plaintext_auth_allowed
    }

    /// The line length limit for SASL responses: RFC 4954 §4's 12288 octets, or the
    /// command limit if that is larger.
    fn sasl_line_bytes_max(&self) -> usize {
        AUTH_LINE_BYTES_MAX.max(self.config.limits.line_bytes_max)
    }
}

/// Appends a one-line reply with an enhanced status code (RFC 2034 §3).
fn reply(out: &mut Vec<u8>, code: ReplyCode, enhanced: EnhancedCode, text: &str) {
    crate::parse::encode_reply(code, Some(enhanced.with_class_of(code)), &[text], out);
}

/// A reply code the parse layer has no constant for.
fn reply_code(code: u16) -> ReplyCode {
    match ReplyCode::try_from(code) {
        Ok(code) => code,
        // Every call passes a literal code of RFC 5321 §4.2's form.
        Err(_) => unreachable!("reply code {code} out of range"),
    }
}

/// An enhanced status code the parse layer has no constant for.
fn enhanced_code(class: u8, subject: u16, detail: u16) -> EnhancedCode {
    match EnhancedCode::new(class, subject, detail) {
        Some(code) => code,
        // Every call passes literal parts within RFC 3463's ranges.
        None => unreachable!("enhanced status code {class}.{subject}.{detail} out of range"),
    }
}
