//! The IMAP4rev1 session: the protocol state machine — RFC 3501 §3, §6.
//!
//! A [`Session`] is fed the bytes a client sent ([`Session::receive`]) and runs the
//! commands they hold ([`Session::advance`]), appending responses to an [`Output`].
//! It reads the mail store directly and awaits its commits and the authenticator
//! (futures that work in any executor), but it never touches a socket, a timer or a
//! clock: the server layer owns those, and the time for APPEND comes from
//! [`SessionConfig::clock`].
//!
//! States (RFC 3501 §3) are the variants of `State`, each holding only what that
//! state needs; [`COMMAND_STATES`] is the one table of which command is legal in
//! which state. Each command's handling lives in its own file under `op/`.
//!
//! Invariants:
//! - A command runs only in a state [`COMMAND_STATES`] allows; anything else is
//!   answered BAD without effect.
//! - The client sees only the mailboxes of the account it logged in as: every name is
//!   looked up in that account, and a selected mailbox is held by its folder id.
//! - No credentials are checked without TLS unless the configuration allows plaintext
//!   logins on this connection (SPEC §6); CAPABILITY then says LOGINDISABLED.
//! - Untagged EXPUNGE responses are sent only where RFC 3501 §7.4.1 allows them (see
//!   `view.rs`); other sessions' changes are reported after every command in the
//!   selected state and during IDLE.
//! - Nothing is acknowledged before the store has made it durable: OK to APPEND,
//!   STORE, COPY, MOVE and EXPUNGE is written only after the commit resolved.
//! - Before login the framer accepts only small literals ([`PREAUTH_LIMITS`]), so an
//!   unauthenticated client cannot make the server buffer a message-sized command.
#![forbid(unsafe_code)]

mod archive;
mod flags;
mod names;
mod op;
mod view;

use std::borrow::Cow;
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lifeboat_store::auth::Authenticator;
use lifeboat_store::{ArchiveIndex, Batch, OpError, OpResult, Spill, Store, UnixTime};

use crate::encode::CONTINUE_LITERAL;
use crate::parse::framer::{Frame, Framer};
use crate::parse::{self, DecodeError, Limits, Reason};
use crate::recent::RecentMarks;
use crate::types::{
    Capability, Code, Command, CommandBody, Condition, LiteralMode, Response, Status, Tag, Text,
};

use self::view::{MailboxView, Reporting};

/// Parser limits before login: enough for any LOGIN or AUTHENTICATE, far too little
/// for a message. After login the limits of [`SessionConfig::limits`] apply.
pub const PREAUTH_LIMITS: Limits = Limits {
    line_bytes_max: parse::LINE_BYTES_MAX_DEFAULT,
    literal_bytes_max: 8 * 1024,
    command_bytes_max: 32 * 1024,
    nesting_max: parse::NESTING_MAX_DEFAULT,
};
/// Invalid commands (BAD) a connection may send before it is closed.
pub const BAD_COMMANDS_MAX: u32 = 50;
/// Failed logins a connection may make before it is closed (the authenticator's rate
/// limits apply across connections on top of this).
pub const LOGIN_FAILURES_MAX: u32 = 3;
/// Response bytes buffered during one long response (FETCH, SEARCH, LIST) before the
/// session asks the server to send them.
pub const OUTPUT_FLUSH_BYTES: usize = 256 * 1024;
/// Messages a long command handles between two yields to the executor, so that one
/// client's FETCH or SEARCH does not starve the other connections of its thread.
pub const MESSAGES_PER_YIELD: usize = 64;
/// The server name sent in the ID response (RFC 2971).
pub const IMPLEMENTATION: &str = "Lifeboat";

/// What a session needs to know about its connection and policy.
#[derive(Clone)]
pub struct SessionConfig {
    /// The server's name, for the greeting.
    pub hostname: String,
    /// Whether STARTTLS can be offered (a plaintext connection with a certificate).
    pub tls_available: bool,
    /// Whether LOGIN and AUTHENTICATE may be used without TLS on this connection:
    /// `auth.allow_plaintext_loopback` and a loopback client (SPEC §6).
    pub plaintext_login_allowed: bool,
    /// The client's address, for the authenticator's rate limits and for logs.
    pub client: IpAddr,
    /// Parser limits after login (the literal limit is the largest message).
    pub limits: Limits,
    /// Now, in seconds since the Unix epoch (APPEND without a date).
    pub clock: fn() -> UnixTime,
    /// Which messages are `\Recent`, shared by every session of the server.
    pub recent: Arc<RecentMarks>,
    /// Whether the server can compress this connection (COMPRESS=DEFLATE, RFC 4978);
    /// the session offers it only once the connection is encrypted, or to a loopback
    /// client (compressing before TLS gains nothing a network would not see).
    pub compress_available: bool,
    /// The archive's full-text index, for SEARCH in the archive mailboxes; without
    /// one the archive is scanned.
    pub archive_index: Option<Arc<ArchiveIndex>>,
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("hostname", &self.hostname)
            .field("tls_available", &self.tls_available)
            .field("plaintext_login_allowed", &self.plaintext_login_allowed)
            .field("client", &self.client)
            .field("limits", &self.limits)
            .field("compress_available", &self.compress_available)
            .field("archive_index", &self.archive_index.is_some())
            .finish_non_exhaustive()
    }
}

/// The client went away while a long response was being sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disconnected;

/// Where a session writes its responses.
pub trait Output {
    /// The bytes to send; the session appends to it.
    fn buffer(&mut self) -> &mut Vec<u8>;
    /// Sends what is buffered and empties the buffer. Called during long responses
    /// once [`OUTPUT_FLUSH_BYTES`] are buffered.
    fn flush(&mut self) -> Pin<Box<dyn Future<Output = Result<(), Disconnected>> + '_>>;
}

/// Collecting output in memory (tests, transcripts): flushing keeps everything.
impl Output for Vec<u8> {
    fn buffer(&mut self) -> &mut Vec<u8> {
        self
    }

    fn flush(&mut self) -> Pin<Box<dyn Future<Output = Result<(), Disconnected>> + '_>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// What the server does after [`Session::advance`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Progress {
    /// Every complete command has run: send the output, then read more input (and,
    /// while [`Session::idling`], also wait for changes to the account).
    NeedInput,
    /// STARTTLS was accepted: send the output in plaintext as the go-ahead, run the
    /// TLS handshake, then call [`Session::tls_started`]. `discarded_bytes` of input
    /// that followed the command were dropped unexecuted (CVE-2011-0411).
    StartTls { discarded_bytes: usize },
    /// COMPRESS DEFLATE was accepted (RFC 4978 §3): send the output as it is, then
    /// compress everything sent and decompress everything received from here on;
    /// `pending` is input that followed the command, already compressed: decompress
    /// it and give it back with [`Session::receive`].
    Compress { pending: Vec<u8> },
    /// Send the output and close the connection.
    Close,
}

/// The RFC 3501 §3 states, for callers, logs and [`COMMAND_STATES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateName {
    NotAuthenticated,
    Authenticated,
    Selected,
    Logout,
}

/// A set of states. Logout is in no set.
pub type States = lifeboat_net::wire::States<StateName>;

impl lifeboat_net::wire::StateIndex for StateName {
    fn index(self) -> u32 {
        self as u32
    }
}

const NOT_AUTHENTICATED: States = States::of(&[StateName::NotAuthenticated as u32]);
const AUTHENTICATED: States = States::of(&[StateName::Authenticated as u32]);
const SELECTED: States = States::of(&[StateName::Selected as u32]);
/// Authenticated or selected (RFC 3501 §6.3 commands).
const LOGGED_IN: States = AUTHENTICATED.or(SELECTED);
/// Any state but Logout (RFC 3501 §6.1 commands).
const ANY: States = NOT_AUTHENTICATED.or(LOGGED_IN);

/// Which commands are legal in which state: RFC 3501 §6.1–§6.4, RFC 2177 (IDLE),
/// RFC 2342 (NAMESPACE), RFC 2971 (ID, any state), RFC 3691 (UNSELECT), RFC 4315
/// (UID EXPUNGE), RFC 5161 §3.1 (ENABLE only in the authenticated state), RFC 6851
/// (MOVE), RFC 4978 (COMPRESS, after login). Names are [`CommandBody::name`].
pub const COMMAND_STATES: [(&str, States); 37] = [
    ("CAPABILITY", ANY),
    ("NOOP", ANY),
    ("LOGOUT", ANY),
    ("ID", ANY),
    ("STARTTLS", NOT_AUTHENTICATED),
    ("AUTHENTICATE", NOT_AUTHENTICATED),
    ("LOGIN", NOT_AUTHENTICATED),
    ("SELECT", LOGGED_IN),
    ("EXAMINE", LOGGED_IN),
    ("CREATE", LOGGED_IN),
    ("DELETE", LOGGED_IN),
    ("RENAME", LOGGED_IN),
    ("SUBSCRIBE", LOGGED_IN),
    ("UNSUBSCRIBE", LOGGED_IN),
    ("LIST", LOGGED_IN),
    ("LSUB", LOGGED_IN),
    ("STATUS", LOGGED_IN),
    ("APPEND", LOGGED_IN),
    ("IDLE", LOGGED_IN),
    ("NAMESPACE", LOGGED_IN),
    ("COMPRESS", LOGGED_IN),
    ("ENABLE", AUTHENTICATED),
    ("CHECK", SELECTED),
    ("CLOSE", SELECTED),
    ("UNSELECT", SELECTED),
    ("EXPUNGE", SELECTED),
    ("UID EXPUNGE", SELECTED),
    ("SEARCH", SELECTED),
    ("UID SEARCH", SELECTED),
    ("FETCH", SELECTED),
    ("UID FETCH", SELECTED),
    ("STORE", SELECTED),
    ("UID STORE", SELECTED),
    ("COPY", SELECTED),
    ("UID COPY", SELECTED),
    ("MOVE", SELECTED),
    ("UID MOVE", SELECTED),
];

/// Whether the command called `name` is legal in `state`, from [`COMMAND_STATES`].
pub fn is_legal(name: &str, state: StateName) -> bool {
    COMMAND_STATES
        .iter()
        .any(|(known, states)| *known == name && states.contains(state))
}

/// Logged in, no mailbox selected (RFC 3501 §3.2).
#[derive(Debug)]
struct Authenticated {
    account: String,
}

/// A mailbox is selected (RFC 3501 §3.3).
#[derive(Debug)]
struct Selected {
    account: String,
    view: MailboxView,
}

#[derive(Debug)]
enum State {
    /// RFC 3501 §3.1.
    NotAuthenticated,
    Authenticated(Authenticated),
    Selected(Selected),
    /// RFC 3501 §3.4: the connection is closing.
    Logout,
}

/// A multi-line exchange in progress: the next line is not a command.
#[derive(Debug)]
enum Exchange {
    /// AUTHENTICATE PLAIN sent its (empty) challenge; the next line is the response.
    Authenticate { tag: Tag<'static> },
    /// IDLE is running; the next line should be `DONE` (RFC 2177).
    Idle { tag: Tag<'static> },
}

/// Which untagged updates may accompany a command's completion (RFC 3501 §7.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Updates {
    /// EXISTS, RECENT, FETCH and EXPUNGE.
    All,
    /// No EXPUNGE: FETCH, STORE and SEARCH by sequence number.
    NoExpunge,
}

/// How an op ends: the tagged response, or an exchange that continues.
#[derive(Debug)]
pub(crate) enum Reply {
    Done {
        condition: Condition,
        code: Option<Code<'static>>,
        text: Cow<'static, str>,
        updates: Updates,
    },
    /// A continuation request was written; the command goes on with the next line.
    Continues,
    /// STARTTLS accepted: the tagged OK was written.
    StartTls,
    /// COMPRESS DEFLATE accepted: the tagged OK was written.
    Compress,
    /// The connection closes after the output (the op wrote BYE).
    Close,
}

impl Reply {
    pub(crate) fn ok(text: &'static str) -> Reply {
        Reply::Done {
            condition: Condition::Ok,
            code: None,
            text: Cow::Borrowed(text),
            updates: Updates::All,
        }
    }

    pub(crate) fn ok_code(code: Code<'static>, text: &'static str) -> Reply {
        Reply::Done {
            condition: Condition::Ok,
            code: Some(code),
            text: Cow::Borrowed(text),
            updates: Updates::All,
        }
    }

    pub(crate) fn no(code: Option<Code<'static>>, text: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Done {
            condition: Condition::No,
            code,
            text: text.into(),
            updates: Updates::All,
        }
    }

    pub(crate) fn bad(text: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Done {
            condition: Condition::Bad,
            code: None,
            text: text.into(),
            updates: Updates::All,
        }
    }

    /// The same reply, with updates limited as RFC 3501 §7.4.1 requires.
    pub(crate) fn with_updates(self, limit: Updates) -> Reply {
        match self {
            Reply::Done {
                condition,
                code,
                text,
                ..
            } => Reply::Done {
                condition,
                code,
                text,
                updates: limit,
            },
            other => other,
        }
    }
}

/// The part of a session the commands work on (everything but the framer, which the
/// command being run borrows its bytes from).
pub(crate) struct Core {
    config: SessionConfig,
    store: Store,
    auth: Arc<Authenticator>,
    tls: bool,
    state: State,
    exchange: Option<Exchange>,
    /// CONDSTORE was enabled (RFC 7162 §3.1): by ENABLE or by any command that uses
    /// it. Stays on for the connection.
    condstore: bool,
    /// ENABLE QRESYNC (RFC 7162 §3.2.3): VANISHED instead of EXPUNGE, SELECT's
    /// QRESYNC parameter.
    qresync: bool,
    /// ENABLE UTF8=ACCEPT (RFC 6855) or IMAP4rev2: mailbox names in UTF-8.
    utf8: bool,
    /// ENABLE UTF8=ACCEPT itself (reported once).
    utf8_accept: bool,
    /// ENABLE IMAP4rev2 (RFC 9051): the responses change as that RFC says.
    rev2: bool,
    /// COMPRESS DEFLATE is in effect (RFC 4978).
    compressed: bool,
    /// The command being run enabled CONDSTORE with a mailbox selected: the mailbox's
    /// HIGHESTMODSEQ goes out before its tagged response (RFC 7162 §3.1).
    announce_highest_modseq: bool,
    bad_commands: u32,
    login_failures: u32,
    /// The message literal of the APPEND being received, written to a spill file
    /// ([`Session::spill_literal`]), or why writing it failed; taken by the APPEND,
    /// dropped with any other end of its command.
    literal_spill: Option<std::io::Result<Spill>>,
}

/// One IMAP session; see the module documentation.
pub struct Session {
    framer: Framer,
    /// The framer still has the [`PREAUTH_LIMITS`].
    preauth_framer: bool,
    core: Core,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state())
            .field("tls", &self.core.tls)
            .field("account", &self.account())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session on a connection that uses TLS already (`tls`: imaps) or not (imap).
    pub fn new(
        config: SessionConfig,
        store: Store,
        auth: Arc<Authenticator>,
        tls: bool,
    ) -> Session {
        Session {
            framer: Framer::new(PREAUTH_LIMITS),
            preauth_framer: true,
            core: Core {
                config,
                store,
                auth,
                tls,
                state: State::NotAuthenticated,
                exchange: None,
                condstore: false,
                qresync: false,
                utf8: false,
                utf8_accept: false,
                rev2: false,
                compressed: false,
                announce_highest_modseq: false,
                bad_commands: 0,
                login_failures: 0,
                literal_spill: None,
            },
        }
    }

    /// Appends the greeting (RFC 3501 §7.1.1), with the capabilities so that clients
    /// need not ask.
    pub fn greeting(&self, out: &mut Vec<u8>) {
        let text = format!("{} IMAP4rev1 server ready", self.core.config.hostname);
        Response::Status(Status::untagged(
            Condition::Ok,
            Some(Code::Capability(self.core.capabilities())),
            text_of(text),
        ))
        .encode(out);
    }

    pub fn state(&self) -> StateName {
        self.core.state_name()
    }

    /// The logged-in account.
    pub fn account(&self) -> Option<&str> {
        self.core.account()
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.core.tls
    }

    /// IDLE is running: the server should also wait for changes to the account and
    /// call [`Session::idle_update`] when one comes.
    pub fn idling(&self) -> bool {
        matches!(self.core.exchange, Some(Exchange::Idle { .. }))
    }

    /// Input received and not yet run.
    pub fn buffered_input(&self) -> usize {
        self.framer.buffered_len()
    }

    /// Takes bytes the client sent.
    pub fn receive(&mut self, bytes: &[u8]) {
        let (diverted, rest) = self.framer.split_diverted(bytes);
        if !diverted.is_empty() {
            if let Some(Ok(spill)) = &mut self.core.literal_spill {
                if let Err(error) = spill.append(diverted) {
                    // The rest of the literal is dropped as it comes; the APPEND is
                    // answered with the error.
                    self.core.literal_spill = Some(Err(error));
                }
            }
        }
        self.framer.push(rest);
    }

    /// Moves the message literal of an APPEND now arriving to a new spill file in
    /// `dir`: what has arrived of it, and the rest as it comes, so that the session
    /// holds no more of it in memory. False when no APPEND's literal is arriving.
    pub fn spill_literal(&mut self, dir: &Path) -> std::io::Result<bool> {
        let Some(received) = self.framer.divertable() else {
            return Ok(false);
        };
        let mut spill = Spill::create_in(dir)?;
        spill.append(received)?;
        self.framer.divert();
        self.core.literal_spill = Some(Ok(spill));
        Ok(true)
    }

    /// Whether the literal being received goes to a spill file.
    pub fn literal_spilled(&self) -> bool {
        self.framer.diverting() > 0
    }

    /// Runs every complete command received, appending the responses to `out`.
    pub async fn advance(&mut self, out: &mut dyn Output) -> Result<Progress, Disconnected> {
        loop {
            if self.preauth_framer
                && !matches!(self.core.state, State::NotAuthenticated)
                && self.framer.buffered_len() == 0
            {
                // Nothing of the pre-login stream is left, so the new framer starts
                // at a command boundary.
                self.framer = Framer::new(self.core.config.limits);
                self.preauth_framer = false;
            }
            let limits = *self.framer.limits();
            let step = match self.framer.next() {
                Frame::NeedMore => return Ok(Progress::NeedInput),
                Frame::Continue { .. } => {
                    out.buffer().extend_from_slice(CONTINUE_LITERAL);
                    continue;
                }
                Frame::Rejected { tag, reason } => {
                    self.core.literal_spill = None;
                    let tag = tag.map(Tag::into_owned);
                    self.core.rejected(tag, reason, out.buffer())
                }
                Frame::Fatal { reason } => {
                    self.core.bye(out.buffer(), None, reason.text());
                    self.core.state = State::Logout;
                    return Ok(Progress::Close);
                }
                Frame::Unit(unit) => {
                    let step = self.core.unit(unit, &limits, out).await;
                    // Not the APPEND's, or the APPEND did not get to it.
                    self.core.literal_spill = None;
                    step?
                }
            };
            // Many small pipelined commands: their answers go out in batches.
            if out.buffer().len() >= OUTPUT_FLUSH_BYTES {
                out.flush().await?;
            }
            match step {
                Progress::NeedInput => {}
                Progress::StartTls { .. } => {
                    let discarded_bytes = self.framer.buffered_len();
                    self.framer = Framer::new(PREAUTH_LIMITS);
                    return Ok(Progress::StartTls { discarded_bytes });
                }
                Progress::Compress { .. } => {
                    let pending = self.framer.take_buffered();
                    return Ok(Progress::Compress { pending });
                }
                Progress::Close => return Ok(Progress::Close),
            }
        }
    }

    /// Bytes of client input the session holds (a literal being received is most
    /// of it).
    pub fn held_bytes(&self) -> usize {
        self.framer.held_bytes()
    }

    /// Gives up the command whose literal is arriving, for want of memory: what was
    /// received of it is freed, the rest is dropped as it comes, and the command is
    /// answered `NO [LIMIT]`. False when no literal is arriving.
    pub fn abandon_literal(&mut self) -> bool {
        self.framer.abandon(Reason::Busy)
    }

    /// As [`Session::abandon_literal`], for want of disk space to spill it: the
    /// command is answered `NO [OVERQUOTA]`.
    pub fn abandon_literal_for_space(&mut self) -> bool {
        self.framer.abandon(Reason::NoSpace)
    }

    /// The TLS handshake after STARTTLS succeeded.
    pub fn tls_started(&mut self) {
        self.core.tls = true;
    }

    /// The account changed during IDLE: reports it (RFC 2177 §3).
    pub async fn idle_update(&mut self, out: &mut dyn Output) -> Result<(), Disconnected> {
        if self.idling() {
            self.core.updates(Updates::All, out.buffer());
        }
        if out.buffer().len() >= OUTPUT_FLUSH_BYTES {
            out.flush().await?;
        }
        Ok(())
    }

    /// The client was silent for too long (RFC 3501 §5.4): appends the BYE.
    pub fn autologout(&mut self, out: &mut Vec<u8>) {
        let text = if self.idling() {
            "IDLE timed out"
        } else if self.account().is_none() {
            "Autologout; no login in time"
        } else {
            "Autologout; idle for too long"
        };
        self.core.bye(out, None, text);
        self.core.state = State::Logout;
    }

    /// The server is shutting down: appends the BYE.
    pub fn shutting_down(&mut self, out: &mut Vec<u8>) {
        self.core
            .bye(out, Some(Code::Unavailable), "Server shutting down");
        self.core.state = State::Logout;
    }
}

impl Core {
    fn state_name(&self) -> StateName {
        match self.state {
            State::NotAuthenticated => StateName::NotAuthenticated,
            State::Authenticated(_) => StateName::Authenticated,
            State::Selected(_) => StateName::Selected,
            State::Logout => StateName::Logout,
        }
    }

    fn account(&self) -> Option<&str> {
        match &self.state {
            State::Authenticated(Authenticated { account })
            | State::Selected(Selected { account, .. }) => Some(account),
            State::NotAuthenticated | State::Logout => None,
        }
    }

    /// The account of a command legal only after login.
    fn logged_in(&self) -> &str {
        // COMMAND_STATES admits these commands only in Authenticated and Selected.
        self.account()
            .unwrap_or_else(|| unreachable!("a logged-in command outside the logged-in states"))
    }

    /// The selected mailbox of a command legal only in Selected.
    fn selected(&mut self) -> &mut Selected {
        match &mut self.state {
            State::Selected(selected) => selected,
            // COMMAND_STATES admits these commands only in Selected.
            _ => unreachable!("a selected-state command outside Selected"),
        }
    }

    fn login_allowed(&self) -> bool {
        self.tls || self.config.plaintext_login_allowed
    }

    /// COMPRESS=DEFLATE is offered: the server can, the connection is encrypted or
    /// on loopback, and it is not compressed yet.
    fn compress_offered(&self) -> bool {
        self.config.compress_available
            && (self.tls || self.config.client.is_loopback())
            && !self.compressed
    }

    /// The capabilities to announce now — RFC 3501 §7.2.1.
    fn capabilities(&self) -> Vec<Capability<'static>> {
        let mut capabilities = vec![
            Capability::Imap4Rev1,
            Capability::Imap4Rev2,
            Capability::LiteralPlus,
            Capability::SaslIr,
            Capability::Id,
            Capability::Enable,
            Capability::Idle,
        ];
        match self.state {
            State::NotAuthenticated => {
                if !self.tls && self.config.tls_available {
                    capabilities.push(Capability::StartTls);
                }
                if self.login_allowed() {
                    capabilities.push(Capability::Auth(atom("PLAIN")));
                } else {
                    capabilities.push(Capability::LoginDisabled);
                }
            }
            _ => {
                capabilities.extend([
                    Capability::Namespace,
                    Capability::UidPlus,
                    Capability::Move,
                    Capability::Unselect,
                    Capability::CondStore,
                    Capability::ESearch,
                    Capability::SpecialUse,
                    Capability::ListExtended,
                    Capability::ListStatus,
                    Capability::QResync,
                    Capability::Binary,
                    Capability::SearchRes,
                    Capability::StatusSize,
                    Capability::Utf8Accept,
                ]);
                if self.compress_offered() {
                    capabilities.push(Capability::CompressDeflate);
                }
            }
        }
        capabilities
    }

    /// Runs one framed unit: a command, or the next line of an exchange.
    async fn unit(
        &mut self,
        unit: &[u8],
        limits: &Limits,
        out: &mut dyn Output,
    ) -> Result<Progress, Disconnected> {
        if let Some(exchange) = self.exchange.take() {
            let (tag, reply) = match exchange {
                Exchange::Authenticate { tag } => {
                    let response = parse::authenticate_data(unit, limits);
                    (tag, op::authenticate::response(self, response).await)
                }
                Exchange::Idle { tag } => {
                    let done = parse::idle_done(unit, limits).is_ok();
                    (tag, op::idle::done(done))
                }
            };
            return Ok(self.finish(Some(&tag), reply, out.buffer()));
        }
        match parse::command(unit, limits) {
            Ok((_, command)) => self.command(command, out).await,
            Err(DecodeError::Failed { tag, reason }) => {
                let tag = tag.map(Tag::into_owned);
                Ok(self.rejected(tag, reason, out.buffer()))
            }
            // A framed unit is complete; the parser never asks for more of it.
            Err(DecodeError::Incomplete | DecodeError::Literal { .. }) => {
                let tag = parse::tag_of(unit).map(Tag::into_owned);
                Ok(self.rejected(tag, Reason::Syntax, out.buffer()))
            }
        }
    }

    /// Runs one parsed command.
    async fn command(
        &mut self,
        command: Command<'_>,
        out: &mut dyn Output,
    ) -> Result<Progress, Disconnected> {
        let Command { tag, body } = command;
        let tag = tag.into_owned();
        let name = body.name();
        if !is_legal(name, self.state_name()) {
            let reply = Reply::bad(format!("{name} not allowed now"));
            return Ok(self.finish(Some(&tag), reply, out.buffer()));
        }
        tracing::trace!(command = name, tag = tag.as_str(), "imap command");
        let condstore_before = self.condstore;
        let reply = self.run_command(&tag, body, out).await?;
        // RFC 7162 §3.1: the first CONDSTORE enabling command with a mailbox selected
        // tells the client the mailbox's HIGHESTMODSEQ (SELECT and EXAMINE always do).
        self.announce_highest_modseq = !condstore_before
            && self.condstore
            && !matches!(name, "SELECT" | "EXAMINE")
            && matches!(self.state, State::Selected(_));
        Ok(self.finish(Some(&tag), reply, out.buffer()))
    }

    /// Runs one legal command and returns how it ends.
    async fn run_command(
        &mut self,
        tag: &Tag<'static>,
        body: CommandBody<'_>,
        out: &mut dyn Output,
    ) -> Result<Reply, Disconnected> {
        let tag = tag.clone();
        let reply = match body {
            CommandBody::Capability => op::capability::run(self, out.buffer()),
            CommandBody::Noop | CommandBody::Check => Reply::ok("NOOP completed"),
            CommandBody::Logout => op::logout::run(self, &tag, out.buffer()),
            CommandBody::Id(_) => op::id::run(out.buffer()),
            CommandBody::StartTls => op::starttls::run(self, &tag, out.buffer()),
            CommandBody::Login { username, password } => {
                op::login::run(self, username, password).await
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => op::authenticate::run(self, &tag, mechanism, initial_response, out).await,
            CommandBody::Select {
                mailbox,
                condstore,
                qresync,
            } => op::select::run(self, &mailbox, false, condstore, qresync, out.buffer()),
            CommandBody::Examine {
                mailbox,
                condstore,
                qresync,
            } => op::select::run(self, &mailbox, true, condstore, qresync, out.buffer()),
            CommandBody::Create { mailbox } => op::create::run(self, &mailbox).await,
            CommandBody::Delete { mailbox } => op::delete::run(self, &mailbox).await,
            CommandBody::Rename { from, to } => op::rename::run(self, &from, &to).await,
            CommandBody::Subscribe { mailbox } => op::subscribe::run(self, &mailbox, true).await,
            CommandBody::Unsubscribe { mailbox } => op::subscribe::run(self, &mailbox, false).await,
            CommandBody::List {
                reference,
                patterns,
                selection,
                returns,
            } => op::list::list(self, &reference, &patterns, &selection, &returns, out).await?,
            CommandBody::Lsub { reference, pattern } => {
                op::list::lsub(self, &reference, &pattern, out).await?
            }
            CommandBody::Status { mailbox, items } => {
                op::status::run(self, &mailbox, &items, out.buffer())
            }
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
                form,
            } => op::append::run(self, &mailbox, &flags, date, message, form).await,
            CommandBody::Idle => op::idle::run(self, &tag, out.buffer()),
            CommandBody::Enable(capabilities) => op::enable::run(self, &capabilities, out.buffer()),
            CommandBody::Namespace => op::namespace::run(self, out.buffer()),
            CommandBody::Compress { algorithm } => {
                op::compress::run(self, &tag, &algorithm, out.buffer())
            }
            CommandBody::Close => op::close::close(self).await,
            CommandBody::Unselect => op::close::unselect(self),
            CommandBody::Expunge => op::expunge::run(self, None).await,
            CommandBody::UidExpunge(set) => op::expunge::run(self, Some(&set)).await,
            CommandBody::Search {
                uid,
                returns,
                charset,
                criteria,
            } => op::search::run(self, &tag, uid, returns, charset, &criteria, out).await?,
            CommandBody::Fetch {
                uid,
                sequence_set,
                items,
                changed_since,
                vanished,
            } => {
                let request = op::fetch::Request {
                    uid,
                    set: &sequence_set,
                    items: &items,
                    changed_since,
                    vanished,
                };
                op::fetch::run(self, request, out).await?
            }
            CommandBody::Store {
                uid,
                sequence_set,
                kind,
                silent,
                flags,
                unchanged_since,
            } => {
                let request = op::store::Request {
                    uid,
                    sequence_set: &sequence_set,
                    kind,
                    silent,
                    flags: &flags,
                    unchanged_since,
                };
                op::store::run(self, request, out.buffer()).await
            }
            CommandBody::Copy {
                uid,
                sequence_set,
                mailbox,
            } => op::copy::run(self, uid, &sequence_set, &mailbox, false, out.buffer()).await,
            CommandBody::Move {
                uid,
                sequence_set,
                mailbox,
            } => op::copy::run(self, uid, &sequence_set, &mailbox, true, out.buffer()).await,
            // The parser knows no other commands; should one be added without a case
            // here, it is refused rather than silently ignored.
            #[allow(unreachable_patterns)]
            _ => Reply::bad("Command not implemented"),
        };
        Ok(reply)
    }

    /// Writes the updates a reply allows and its tagged response.
    fn finish(&mut self, tag: Option<&Tag<'_>>, reply: Reply, out: &mut Vec<u8>) -> Progress {
        match reply {
            Reply::Done {
                condition,
                code,
                text,
                updates,
            } => {
                self.updates(updates, out);
                if std::mem::take(&mut self.announce_highest_modseq) {
                    self.highest_modseq_now(out);
                }
                if condition == Condition::Bad {
                    self.bad_commands += 1;
                }
                let text = text_of(text.into_owned());
                match tag {
                    Some(tag) => {
                        Response::Status(Status::tagged(tag.clone(), condition, code, text))
                    }
                    None => Response::Status(Status::untagged(condition, code, text)),
                }
                .encode(out);
                if self.bad_commands >= BAD_COMMANDS_MAX {
                    self.bye(out, None, "Too many invalid commands");
                    self.state = State::Logout;
                    return Progress::Close;
                }
                if self.login_failures >= LOGIN_FAILURES_MAX {
                    self.bye(out, None, "Too many failed logins");
                    self.state = State::Logout;
                    return Progress::Close;
                }
                Progress::NeedInput
            }
            Reply::Continues => Progress::NeedInput,
            Reply::StartTls => Progress::StartTls { discarded_bytes: 0 },
            Reply::Compress => Progress::Compress {
                pending: Vec::new(),
            },
            Reply::Close => {
                self.state = State::Logout;
                Progress::Close
            }
        }
    }

    /// What the client enabled that changes how updates are reported.
    fn reporting(&self) -> Reporting {
        Reporting {
            condstore: self.condstore,
            qresync: self.qresync,
            rev2: self.rev2,
        }
    }

    /// Reports changes to the selected mailbox.
    fn updates(&mut self, updates: Updates, out: &mut Vec<u8>) {
        let reporting = self.reporting();
        let store = self.store.clone();
        if let State::Selected(selected) = &mut self.state {
            selected.view.sync(
                &store,
                &self.config.recent,
                updates == Updates::All,
                reporting,
                out,
            );
        }
    }

    /// `* OK [HIGHESTMODSEQ n]` for the selected mailbox, as far as the client has
    /// been told everything (`* OK [NOMODSEQ]` for an archive month).
    fn highest_modseq_now(&mut self, out: &mut Vec<u8>) {
        let State::Selected(selected) = &self.state else {
            return;
        };
        let code = if selected.view.folder().is_none() {
            Code::NoModSeq
        } else {
            Code::HighestModSeq(
                std::num::NonZeroU64::new(selected.view.told_modseq())
                    .unwrap_or(std::num::NonZeroU64::MIN),
            )
        };
        Response::Status(Status::untagged(
            Condition::Ok,
            Some(code),
            text_of("Highest".to_string()),
        ))
        .encode(out);
    }

    /// Answers a command the framer or parser refused.
    fn rejected(
        &mut self,
        tag: Option<Tag<'static>>,
        reason: Reason,
        out: &mut Vec<u8>,
    ) -> Progress {
        // A refused line ends an exchange in progress: the client's next line is a
        // command again.
        let exchange_tag = match self.exchange.take() {
            Some(Exchange::Authenticate { tag } | Exchange::Idle { tag }) => Some(tag),
            None => None,
        };
        let tag = tag.or(exchange_tag);
        let reply = match reason {
            // RFC 7888 §4 / RFC 4469 §5: a literal above the limit is refused with
            // TOOBIG; a non-synchronizing one (already on its way) with BAD.
            Reason::LiteralTooLarge { mode, .. } => Reply::Done {
                condition: if mode == LiteralMode::Sync {
                    Condition::No
                } else {
                    Condition::Bad
                },
                code: Some(Code::TooBig),
                text: Cow::Borrowed(if matches!(self.state, State::NotAuthenticated) {
                    "Literal too large before login"
                } else {
                    "Literal too large"
                }),
                updates: Updates::NoExpunge,
            },
            // RFC 5530 LIMIT: the server's memory budget, not the client's fault.
            Reason::Busy => {
                Reply::no(Some(Code::Limit), Reason::Busy.text()).with_updates(Updates::NoExpunge)
            }
            // As a commit refused for space is answered.
            Reason::NoSpace => Reply::no(Some(Code::OverQuota), Reason::NoSpace.text())
                .with_updates(Updates::NoExpunge),
            other => Reply::bad(other.text()).with_updates(Updates::NoExpunge),
        };
        self.finish(tag.as_ref(), reply, out)
    }

    /// Appends `* BYE`.
    fn bye(&self, out: &mut Vec<u8>, code: Option<Code<'static>>, text: &str) {
        Response::Status(Status::Bye {
            code,
            text: text_of(text.to_string()),
        })
        .encode(out);
    }

    /// Commits a batch; `Err` carries the NO to answer when the store refused it.
    async fn commit(&self, batch: Batch) -> Result<Vec<Result<OpResult, OpError>>, Reply> {
        match self.store.commit_async(batch).await {
            Ok(results) => Ok(results),
            // As Dovecot answers it: clients show it as a quota problem.
            Err(error @ lifeboat_store::Error::NoSpace(_)) => {
                tracing::warn!(%error, "imap: change refused");
                Err(Reply::no(Some(Code::OverQuota), "Not enough disk space"))
            }
            Err(error) => {
                tracing::error!(%error, "imap: store commit failed");
                Err(Reply::no(Some(Code::ServerBug), "Mail store unavailable"))
            }
        }
    }
}

/// Response text from our own strings (never CR, LF or NUL; an empty or invalid one
/// becomes a plain word so the response stays valid).
pub(crate) fn text_of(text: String) -> Text<'static> {
    let cleaned: String = text
        .chars()
        .map(|character| {
            if matches!(character, '\r' | '\n' | '\0') {
                ' '
            } else {
                character
            }
        })
        .collect();
    Text::try_from(cleaned).unwrap_or_else(|_| {
        Text::try_from("Done").unwrap_or_else(|_| unreachable!("a constant word is valid text"))
    })
}

/// An atom from a constant.
fn atom(text: &'static str) -> crate::types::Atom<'static> {
    crate::types::Atom::try_from(text).unwrap_or_else(|_| unreachable!("a constant atom"))
}

/// Lets the executor run other tasks once.
pub(crate) struct YieldNow(bool);

impl YieldNow {
    pub(crate) fn new() -> YieldNow {
        YieldNow(false)
    }
}

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Sends the output if it has grown large, and lets other connections run; called
/// between messages of long responses.
pub(crate) async fn pace(out: &mut dyn Output, handled: usize) -> Result<(), Disconnected> {
    if out.buffer().len() >= OUTPUT_FLUSH_BYTES {
        out.flush().await?;
    }
    if handled > 0 && handled.is_multiple_of(MESSAGES_PER_YIELD) {
        YieldNow::new().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command the parser knows has a row in the table.
    #[test]
    fn every_command_has_states() {
        let names = [
            "CAPABILITY",
            "NOOP",
            "LOGOUT",
            "ID",
            "STARTTLS",
            "AUTHENTICATE",
            "LOGIN",
            "SELECT",
            "EXAMINE",
            "CREATE",
            "DELETE",
            "RENAME",
            "SUBSCRIBE",
            "UNSUBSCRIBE",
            "LIST",
            "LSUB",
            "STATUS",
            "APPEND",
            "IDLE",
            "ENABLE",
            "NAMESPACE",
            "COMPRESS",
            "CHECK",
            "CLOSE",
            "EXPUNGE",
            "UID EXPUNGE",
            "UNSELECT",
            "SEARCH",
            "UID SEARCH",
            "FETCH",
            "UID FETCH",
            "STORE",
            "UID STORE",
            "COPY",
            "UID COPY",
            "MOVE",
            "UID MOVE",
        ];
        assert_eq!(names.len(), COMMAND_STATES.len());
        for name in names {
            assert!(
                COMMAND_STATES.iter().any(|(known, _)| *known == name),
                "{name} has no row"
            );
        }
        assert!(is_legal("LOGIN", StateName::NotAuthenticated));
        assert!(!is_legal("LOGIN", StateName::Authenticated));
        assert!(is_legal("ENABLE", StateName::Authenticated));
        assert!(!is_legal("ENABLE", StateName::Selected));
        assert!(is_legal("UID MOVE", StateName::Selected));
        assert!(!is_legal("NOOP", StateName::Logout));
    }
}
