//! IMAP load (RFC 3501): clients that log in, select a mailbox and then run a weighted
//! mix of commands, plus optional IDLE holders (RFC 2177) that sit in IDLE for the
//! whole run.
//!
//! Units of work are single mix commands. The mix is a fixed sequence built by smooth
//! weighted round robin and indexed by ticket number, so a run of `k` whole periods
//! executes each command exactly `k × weight` times however the tickets fall on the
//! clients. What is recorded:
//! - `connect` (TCP, greeting, capabilities, STARTTLS), `login`, `select` for each
//!   client session set-up; that SELECT counts under `select` like mix SELECTs;
//! - one row per mix command: success when the tagged reply is OK, else `imap-no`,
//!   `imap-bad` or the connection failure; in an open loop timed from the intended
//!   start;
//! - `idle`: one per holder that entered IDLE, timed up to the continuation;
//! - `logout` at the end of each session;
//! - messages and bytes: FETCH responses and their literal bytes, APPENDed messages.
//! - the first failures with the command sent and the line that failed it (tagged
//!   NO or BAD, or the line that broke the protocol), as the report's
//!   `error_samples`.
//!
//! Commands that need a message (FETCH, STORE) on an empty mailbox are skipped and
//! counted as `skipped-empty-mailbox`.
//!
//! The stress cycle (`--stress`, [`STRESS_UNITS`]) is shaped like imaptest's default
//! stress instead: every ticket runs the next command of a session's cycle — LOGIN
//! (as a user picked at random from `1..=users` at each connection, so that several
//! sessions share a mailbox), SELECT, FETCH of a range with envelope and header
//! fields, FETCH of a whole body (again with 30% chance), SEARCH (30%), STORE of
//! flags (50%), STORE `\Deleted` of one message, EXPUNGE, APPEND, LOGOUT — and
//! starts over with a new connection. Sessions expunge what others still show,
//! which is what the mix alone never does. With `--compress` every session turns
//! on COMPRESS=DEFLATE (RFC 4978) when offered; the octets on the wire are counted
//! either way (`wire-bytes-read`, `wire-bytes-written`).
//!
//! Invariants: a session is reused only after a tagged reply; no literal is larger
//! than [`LITERAL_BYTES_MAX`]; clients never send a command before the previous one
//! got its tagged reply (no IMAP pipelining), as mail clients behave.

use crate::conn::{Connection, Security, Timeouts};
use crate::error::{ErrorKind, Outcome};
use crate::load::{run_workers, RunResult, Schedule, SplitMix64};
use crate::message::{self, Headers, LineEnd};
use crate::pattern::AddressPattern;
use crate::stats::{Operation, Progress, Recorder, Stats};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, watch, Barrier};

/// Largest literal accepted from a server (it is skipped, never held in memory; the
/// bound only catches a corrupt length).
pub const LITERAL_BYTES_MAX: u64 = 1 << 30;

/// Sum of the mix weights: the length of one period of the mix sequence.
pub const MIX_WEIGHT_TOTAL_MAX: u32 = 10_000;

/// RFC 2177 §3: clients should re-issue IDLE at least every 29 minutes.
pub const IDLE_REISSUE: Duration = Duration::from_secs(25 * 60);

/// Pause after a failed session set-up, so a refusing server is not hammered.
pub const RECONNECT_PAUSE: Duration = Duration::from_millis(20);

/// Default mix: mostly reading, as mail clients do.
pub const DEFAULT_MIX: &str = "select=1,fetch-headers=4,fetch-body=2,search=1,store=1,append=1";

/// What the stress cycle records (the units of its total).
pub const STRESS_UNITS: &[Operation] = &[
    Operation::Login,
    Operation::Select,
    Operation::FetchHeaders,
    Operation::FetchBody,
    Operation::Search,
    Operation::Store,
    Operation::Expunge,
    Operation::Append,
    Operation::Logout,
];

/// imaptest's default chances, in percent, of the states the cycle may skip.
const STRESS_FETCH_BODY_AGAIN_PERCENT: u64 = 30;
const STRESS_SEARCH_PERCENT: u64 = 30;
const STRESS_STORE_PERCENT: u64 = 50;

/// The header fields the stress cycle's range FETCH asks for (imaptest picks among
/// these).
const STRESS_FETCH_ITEMS: &str = "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY.PEEK[HEADER.FIELDS (From To Cc Subject Message-ID In-Reply-To References)])";

/// The mix commands, in the order `--mix` names them.
const MIX_OPERATIONS: [Operation; 7] = [
    Operation::Select,
    Operation::FetchHeaders,
    Operation::FetchBody,
    Operation::Search,
    Operation::Store,
    Operation::Append,
    Operation::Noop,
];

/// Why a `--mix` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MixError {
    #[error("unknown IMAP command `{0}` (known: select, fetch-headers, fetch-body, search, store, append, noop)")]
    UnknownCommand(String),
    #[error("`{0}` is not `command=weight`")]
    Syntax(String),
    #[error("the weights add up to zero")]
    Empty,
    #[error("the weights add up to more than {MIX_WEIGHT_TOTAL_MAX}")]
    TooLarge,
}

/// A weighted command mix, as a fixed sequence (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    sequence: Vec<Operation>,
    weights: Vec<(Operation, u32)>,
}

impl Mix {
    /// The command for ticket `index`.
    pub fn at(&self, index: u64) -> Operation {
        // The sequence is never empty (`FromStr` refuses a zero total) and its length
        // fits in u64.
        self.sequence[(index % self.sequence.len() as u64) as usize]
    }

    /// Length of one period.
    pub fn period(&self) -> u64 {
        self.sequence.len() as u64
    }

    /// The weight given to `operation` (0 if absent).
    pub fn weight(&self, operation: Operation) -> u32 {
        self.weights
            .iter()
            .find(|(candidate, _)| *candidate == operation)
            .map_or(0, |(_, weight)| *weight)
    }

    /// The commands with a non-zero weight.
    pub fn operations(&self) -> Vec<Operation> {
        self.weights
            .iter()
            .map(|(operation, _)| *operation)
            .collect()
    }
}

impl FromStr for Mix {
    type Err = MixError;

    fn from_str(value: &str) -> Result<Self, MixError> {
        let mut weights: Vec<(Operation, u32)> = Vec::new();
        for item in value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (name, weight) = item
                .split_once('=')
                .ok_or_else(|| MixError::Syntax(item.to_string()))?;
            let operation = MIX_OPERATIONS
                .into_iter()
                .find(|operation| operation.name() == name.trim())
                .ok_or_else(|| MixError::UnknownCommand(name.trim().to_string()))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| MixError::Syntax(item.to_string()))?;
            if weight > MIX_WEIGHT_TOTAL_MAX {
                return Err(MixError::TooLarge);
            }
            match weights.iter_mut().find(|(known, _)| *known == operation) {
                Some((_, known_weight)) => *known_weight += weight,
                None => weights.push((operation, weight)),
            }
        }
        weights.retain(|(_, weight)| *weight > 0);
        let total: u32 = weights.iter().map(|(_, weight)| weight).sum();
        if total == 0 {
            return Err(MixError::Empty);
        }
        if total > MIX_WEIGHT_TOTAL_MAX {
            return Err(MixError::TooLarge);
        }
        // Smooth weighted round robin: spreads each command evenly over the period
        // instead of running all FETCHes, then all SEARCHes.
        let mut current: Vec<i64> = vec![0; weights.len()];
        let mut sequence = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (slot, (_, weight)) in current.iter_mut().zip(&weights) {
                *slot += i64::from(*weight);
            }
            let mut best = 0;
            for (index, value) in current.iter().enumerate() {
                if *value > current[best] {
                    best = index;
                }
            }
            current[best] -= i64::from(total);
            sequence.push(weights[best].0);
        }
        Ok(Mix { sequence, weights })
    }
}

/// How the IMAP load is shaped.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub server: SocketAddr,
    pub timeouts: Timeouts,
    pub security: Security,
    /// Login name, may contain `{n}`.
    pub user: AddressPattern,
    /// How many numbers `{n}` cycles through; client `i` logs in as user `i % users + 1`.
    pub users: u64,
    pub password: String,
    pub mailbox: String,
    pub mix: Mix,
    /// Extra connections that sit in IDLE for the whole run.
    pub idle_holders: usize,
    /// Messages per `fetch-headers`.
    pub fetch_count: u32,
    /// Size of APPENDed messages.
    /// What appended messages' bodies are made of.
    pub append_body: message::Body,
    pub append_size_bytes: usize,
    /// SEARCH criteria, sent as given.
    pub search_query: String,
    /// Before the run, APPEND until each user's mailbox holds this many messages.
    pub fill: u32,
    /// Run the stress cycle instead of the mix (see the module documentation).
    pub stress: bool,
    /// COMPRESS=DEFLATE after login when the server offers it.
    pub compress: bool,
    /// Seed of the stress cycle's choices (users, messages, chances).
    pub seed: u64,
}

impl ImapConfig {
    /// Defaults for everything but the server.
    pub fn new(server: SocketAddr) -> Self {
        ImapConfig {
            server,
            timeouts: Timeouts::default(),
            security: Security::Plain,
            user: AddressPattern::new("user{n}@example.test"),
            users: 1,
            password: "password".into(),
            mailbox: "INBOX".into(),
            // A constant the unit tests parse (`mix_periods_hold_exact_weights`).
            mix: DEFAULT_MIX.parse().expect("the default mix is a valid mix"),
            idle_holders: 0,
            fetch_count: 10,
            append_size_bytes: 4096,
            append_body: message::Body::Repeated,
            search_query: "SUBJECT \"lifeboat\"".into(),
            fill: 0,
            stress: false,
            compress: false,
            seed: 1,
        }
    }
}

/// `quoted = DQUOTE *QUOTED-CHAR DQUOTE` — RFC 3501 §9.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for character in value.chars() {
        if character == '"' || character == '\\' {
            out.push('\\');
        }
        out.push(character);
    }
    out.push('"');
    out
}

/// The `{N}` or `{N+}` literal announcement that ends a response line, if any:
/// `literal = "{" number ["+"] "}" CRLF *CHAR8` — RFC 3501 §9, RFC 7888 §3.
fn trailing_literal(line: &[u8]) -> Outcome<Option<u64>> {
    let Some(inner) = line.strip_suffix(b"}") else {
        return Ok(None);
    };
    let Some(open) = inner.iter().rposition(|&byte| byte == b'{') else {
        return Ok(None);
    };
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Ok(None);
    }
    let size = digits
        .iter()
        .fold(0u64, |size, digit| size * 10 + u64::from(digit - b'0'));
    if size > LITERAL_BYTES_MAX {
        return Err(ErrorKind::Protocol);
    }
    Ok(Some(size))
}

/// `* <number> <keyword>` untagged responses the client follows.
fn untagged_number(rest: &[u8]) -> Option<(u32, &[u8])> {
    let space = rest.iter().position(|&byte| byte == b' ')?;
    let number = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
    let keyword_end = rest[space + 1..]
        .iter()
        .position(|&byte| byte == b' ')
        .map_or(rest.len(), |offset| space + 1 + offset);
    Some((number, &rest[space + 1..keyword_end]))
}

/// Server capabilities the client acts on.
#[derive(Debug, Default, Clone, Copy)]
struct Capabilities {
    known: bool,
    literal_plus: bool,
    starttls: bool,
    compress: bool,
}

impl Capabilities {
    /// Reads the capability list that follows `CAPABILITY` in `text`, if any.
    fn update_from(&mut self, text: &[u8]) {
        let Some(position) = find_ignore_case(text, b"CAPABILITY ") else {
            return;
        };
        let list = &text[position + b"CAPABILITY ".len()..];
        let list = list.split(|&byte| byte == b']').next().unwrap_or_default();
        *self = Capabilities {
            known: true,
            ..Capabilities::default()
        };
        for word in list.split(|&byte| byte == b' ') {
            if word.eq_ignore_ascii_case(b"LITERAL+") {
                self.literal_plus = true;
            } else if word.eq_ignore_ascii_case(b"STARTTLS") {
                self.starttls = true;
            } else if word.eq_ignore_ascii_case(b"COMPRESS=DEFLATE") {
                self.compress = true;
            }
        }
    }
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
}

/// The tagged status of a completed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    No,
    Bad,
}

impl Status {
    fn into_outcome(self) -> Outcome<()> {
        match self {
            Status::Ok => Ok(()),
            Status::No => Err(ErrorKind::ImapNo),
            Status::Bad => Err(ErrorKind::ImapBad),
        }
    }
}

/// What came back for one command.
#[derive(Debug, Default, Clone, Copy)]
struct Completion {
    fetches: u64,
    literal_bytes: u64,
}

/// What [`ImapSession::read_response`] found.
enum Response {
    Tagged(Status),
    Continuation,
    Untagged,
}

/// An open IMAP connection.
struct ImapSession {
    connection: Connection,
    next_tag: u64,
    tag: String,
    capabilities: Capabilities,
    /// Messages in the selected mailbox, as the last EXISTS said.
    exists: u32,
    /// Untagged EXISTS seen since the counter was last read (IDLE notifications).
    exists_updates: u64,
    /// The next STORE adds the flag (else removes it).
    store_adds: bool,
    /// The command under the current tag as an error sample shows it: no tag, no
    /// CRLF, no literal, passwords masked.
    sent: Vec<u8>,
    /// The line that failed the current command: its tagged NO or BAD, or the line
    /// that broke the protocol; empty while nothing did.
    failed_reply: Vec<u8>,
    /// Set when the connection must not be used again.
    broken: bool,
}

impl ImapSession {
    /// Starts a command under a new tag; `shown` is what an error sample shows of it.
    fn new_tag(&mut self, shown: &[u8]) {
        self.next_tag += 1;
        self.tag = format!("b{}", self.next_tag);
        self.sent.clear();
        self.sent.extend_from_slice(shown);
        self.failed_reply.clear();
    }

    /// Records a failure of the current command, with the command and the reply.
    fn record_error(&self, recorder: &mut Recorder, operation: Operation, kind: ErrorKind) {
        recorder.error_with_reply(operation, kind, &self.sent, &self.failed_reply);
    }

    async fn send(&mut self, bytes: &[u8]) -> Outcome<()> {
        let result = self.connection.write_all(bytes).await;
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    /// Reads one whole response (its literals included) and acts on what it says.
    async fn read_response(&mut self, completion: &mut Completion) -> Outcome<Response> {
        let outcome = self.read_response_inner(completion).await;
        if outcome.is_err() {
            self.broken = true;
        }
        outcome
    }

    async fn read_response_inner(&mut self, completion: &mut Completion) -> Outcome<Response> {
        let line = self.connection.read_line().await?;
        let literal = trailing_literal(line)?;
        let response = if let Some(rest) = line.strip_prefix(b"* ") {
            if let Some((number, keyword)) = untagged_number(rest) {
                if keyword.eq_ignore_ascii_case(b"EXISTS") {
                    self.exists = number;
                    self.exists_updates += 1;
                } else if keyword.eq_ignore_ascii_case(b"FETCH") {
                    completion.fetches += 1;
                } else if keyword.eq_ignore_ascii_case(b"EXPUNGE") {
                    self.exists = self.exists.saturating_sub(1);
                }
            } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"BYE") {
                // The server is about to close; whatever comes next fails as
                // `closed`, which is what happened.
            } else {
                self.capabilities.update_from(rest);
            }
            Response::Untagged
        } else if line.first() == Some(&b'+') {
            Response::Continuation
        } else if let Some(rest) = line
            .strip_prefix(self.tag.as_bytes())
            .and_then(|rest| rest.strip_prefix(b" "))
        {
            let status = if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"OK") {
                Status::Ok
            } else if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"NO") {
                Status::No
            } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"BAD") {
                Status::Bad
            } else {
                self.failed_reply = line.to_vec();
                return Err(ErrorKind::Protocol);
            };
            if status == Status::Ok {
                self.capabilities.update_from(rest);
            } else {
                self.failed_reply = line.to_vec();
            }
            Response::Tagged(status)
        } else {
            self.failed_reply = line.to_vec();
            return Err(ErrorKind::Protocol);
        };
        // A literal continues the same response on the line after it, which may
        // announce another literal.
        let mut literal = literal;
        while let Some(size) = literal {
            self.connection.skip_exact(size).await?;
            completion.literal_bytes += size;
            let rest = self.connection.read_line().await?;
            literal = trailing_literal(rest)?;
        }
        Ok(response)
    }

    /// Reads responses up to the tagged one.
    async fn finish(&mut self, completion: &mut Completion) -> Outcome<Status> {
        loop {
            match self.read_response(completion).await? {
                Response::Tagged(status) => return Ok(status),
                Response::Untagged => {}
                Response::Continuation => {
                    self.broken = true;
                    return Err(ErrorKind::Protocol);
                }
            }
        }
    }

    /// Sends `command` under a new tag and waits for its completion.
    async fn command(&mut self, command: &str) -> Outcome<Completion> {
        self.command_shown(command, command).await
    }

    /// [`ImapSession::command`], shown in error samples as `shown`.
    async fn command_shown(&mut self, command: &str, shown: &str) -> Outcome<Completion> {
        self.new_tag(shown.as_bytes());
        let line = format!("{} {command}\r\n", self.tag);
        self.send(line.as_bytes()).await?;
        let mut completion = Completion::default();
        self.finish(&mut completion).await?.into_outcome()?;
        Ok(completion)
    }

    /// LOGIN as `user` (the password is not shown in error samples).
    async fn login(&mut self, user: &str, password: &str) -> Outcome<Completion> {
        let login = format!("LOGIN {} {}", quoted(user), quoted(password));
        let shown = format!("LOGIN {} \"***\"", quoted(user));
        self.command_shown(&login, &shown).await
    }

    /// COMPRESS DEFLATE when `config.compress` asks for it and the server offers it
    /// (RFC 4978 §3: the tagged OK is the last uncompressed answer).
    async fn compress(&mut self, config: &ImapConfig) -> Outcome<()> {
        if !config.compress || !self.capabilities.compress || self.connection.is_compressed() {
            return Ok(());
        }
        self.command("COMPRESS DEFLATE").await?;
        self.connection.start_deflate()
    }

    /// Counts the octets this connection moved, once, before it is closed.
    fn count_wire(&self, recorder: &mut Recorder) {
        let (read, written) = self.connection.wire_bytes();
        recorder.count("wire-bytes-read", read);
        recorder.count("wire-bytes-written", written);
    }

    /// Connects, reads the greeting and capabilities, and upgrades to TLS if asked.
    async fn connect(config: &ImapConfig) -> Outcome<ImapSession> {
        let connection =
            Connection::open(config.server, &config.timeouts, config.security.implicit()).await?;
        let mut session = ImapSession {
            connection,
            next_tag: 0,
            tag: String::new(),
            capabilities: Capabilities::default(),
            exists: 0,
            exists_updates: 0,
            store_adds: true,
            sent: Vec::new(),
            failed_reply: Vec::new(),
            broken: false,
        };
        let greeting = session.connection.read_line().await?;
        if greeting.len() >= 7 && greeting[..7].eq_ignore_ascii_case(b"* BYE ") {
            return Err(ErrorKind::Closed);
        }
        if !(greeting.len() >= 4 && greeting[..4].eq_ignore_ascii_case(b"* OK")) {
            return Err(ErrorKind::Protocol);
        }
        session.capabilities.update_from(&greeting[4..]);
        if !session.capabilities.known {
            session.command("CAPABILITY").await?;
        }
        if let Some(tls) = config.security.upgrade() {
            if !session.capabilities.starttls {
                return Err(ErrorKind::Protocol);
            }
            session.command("STARTTLS").await?;
            session.connection.start_tls(tls).await?;
            // RFC 3501 §6.2.1: capabilities learned before TLS are void.
            session.capabilities = Capabilities::default();
            session.command("CAPABILITY").await?;
        }
        Ok(session)
    }

    /// Appends one message; returns its size.
    async fn append(&mut self, config: &ImapConfig, index: u64) -> Outcome<u64> {
        let subject = format!("lifeboat bench append {index}");
        let message_id = format!(
            "<append.{index}.{}@lifeboat-bench.test>",
            std::process::id()
        );
        let date = message::rfc5322_date(SystemTime::now());
        let to = config.user.render(1);
        let headers = Headers {
            from: "Lifeboat Bench <bench@lifeboat-bench.test>",
            to: &to,
            subject: &subject,
            message_id: &message_id,
            date: &date,
        };
        let mut body = message::build_with(
            &headers,
            config.append_size_bytes,
            LineEnd::Crlf,
            config.append_body.for_message(index),
        );
        let size = body.len();
        body.extend_from_slice(b"\r\n");
        let mailbox = quoted(&config.mailbox);
        self.new_tag(format!("APPEND {mailbox} (\\Seen) {{{size}}}").as_bytes());
        let mut completion = Completion::default();
        if self.capabilities.literal_plus {
            // RFC 7888: a non-synchronizing literal needs no round trip.
            let mut command =
                format!("{} APPEND {mailbox} (\\Seen) {{{size}+}}\r\n", self.tag).into_bytes();
            command.extend_from_slice(&body);
            self.send(&command).await?;
        } else {
            let command = format!("{} APPEND {mailbox} (\\Seen) {{{size}}}\r\n", self.tag);
            self.send(command.as_bytes()).await?;
            loop {
                match self.read_response(&mut completion).await? {
                    Response::Continuation => break,
                    Response::Untagged => {}
                    Response::Tagged(status) => {
                        status.into_outcome()?;
                        // OK before the literal was sent is nonsense.
                        self.broken = true;
                        return Err(ErrorKind::Protocol);
                    }
                }
            }
            self.send(&body).await?;
        }
        self.finish(&mut completion).await?.into_outcome()?;
        Ok(size as u64)
    }

    /// Runs one mix command. `Ok(None)` means skipped (empty mailbox).
    async fn run(
        &mut self,
        operation: Operation,
        config: &ImapConfig,
        index: u64,
        random: &mut SplitMix64,
        recorder: &mut Recorder,
    ) -> Outcome<Option<()>> {
        let needs_message = matches!(
            operation,
            Operation::FetchHeaders | Operation::FetchBody | Operation::Store
        );
        if needs_message && self.exists == 0 {
            return Ok(None);
        }
        let exists = u64::from(self.exists);
        let completion = match operation {
            Operation::Select => {
                self.command(&format!("SELECT {}", quoted(&config.mailbox)))
                    .await?
            }
            Operation::FetchHeaders => {
                let count = u64::from(config.fetch_count.max(1)).min(exists);
                let first = random.range_inclusive(1, exists - count + 1);
                let last = first + count - 1;
                self.command(&format!(
                    "FETCH {first}:{last} (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER])"
                ))
                .await?
            }
            Operation::FetchBody => {
                let number = random.range_inclusive(1, exists);
                self.command(&format!("FETCH {number} (UID BODY.PEEK[])"))
                    .await?
            }
            Operation::Search => {
                self.command(&format!("SEARCH {}", config.search_query))
                    .await?
            }
            Operation::Store => {
                let number = random.range_inclusive(1, exists);
                let sign = if self.store_adds { '+' } else { '-' };
                self.store_adds = !self.store_adds;
                self.command(&format!("STORE {number} {sign}FLAGS (\\Flagged)"))
                    .await?
            }
            Operation::Append => {
                let size = self.append(config, index).await?;
                recorder.transferred(1, size);
                return Ok(Some(()));
            }
            _ => self.command("NOOP").await?,
        };
        if matches!(operation, Operation::FetchHeaders | Operation::FetchBody) {
            recorder.transferred(completion.fetches, completion.literal_bytes);
        }
        Ok(Some(()))
    }

    /// LOGOUT, then close; recorded under `logout`.
    async fn logout(mut self, recorder: &mut Recorder) {
        if !self.broken {
            let started = Instant::now();
            match self.command("LOGOUT").await {
                Ok(_) => recorder.ok(Operation::Logout, started.elapsed()),
                Err(kind) => self.record_error(recorder, Operation::Logout, kind),
            }
        }
        self.close(recorder).await;
    }

    /// Closes the connection, counting its octets.
    async fn close(self, recorder: &mut Recorder) {
        self.count_wire(recorder);
        self.connection.close().await;
    }
}

/// Connect, LOGIN and SELECT, each recorded; `None` if any of them failed.
async fn open_session(
    config: &ImapConfig,
    user: &str,
    recorder: &mut Recorder,
) -> Option<ImapSession> {
    let started = Instant::now();
    let mut session = match ImapSession::connect(config).await {
        Ok(session) => {
            recorder.ok(Operation::Connect, started.elapsed());
            session
        }
        Err(kind) => {
            recorder.error_with_reply(Operation::Connect, kind, b"", b"");
            return None;
        }
    };
    let started = Instant::now();
    if let Err(kind) = session.login(user, &config.password).await {
        session.record_error(recorder, Operation::Login, kind);
        session.connection.close().await;
        return None;
    }
    recorder.ok(Operation::Login, started.elapsed());
    if let Err(kind) = session.compress(config).await {
        session.record_error(recorder, Operation::Login, kind);
        session.close(recorder).await;
        return None;
    }
    let started = Instant::now();
    if let Err(kind) = session
        .command(&format!("SELECT {}", quoted(&config.mailbox)))
        .await
    {
        session.record_error(recorder, Operation::Select, kind);
        session.close(recorder).await;
        return None;
    }
    recorder.ok(Operation::Select, started.elapsed());
    Some(session)
}

/// Tops the selected mailbox up to `config.fill` messages; not measured.
async fn fill_mailbox(session: &mut ImapSession, config: &ImapConfig) -> Outcome<()> {
    let mut index = 0u64;
    while session.exists < config.fill {
        session.append(config, index).await?;
        index += 1;
        // Servers report the new count with EXISTS; one that does not would loop
        // forever, so stop after as many APPENDs as were missing.
        if index >= u64::from(config.fill) {
            break;
        }
    }
    Ok(())
}

/// One mix client.
async fn worker(
    id: usize,
    config: Arc<ImapConfig>,
    schedule: Arc<Schedule>,
    progress: Arc<Progress>,
    ready: Arc<Barrier>,
) -> Stats {
    let mut recorder = Recorder::new(progress);
    let user = config.user.cycle(id as u64, config.users);
    let mut random = SplitMix64::new(id as u64 + 1);
    let mut session = open_session(&config, &user, &mut recorder).await;
    // The first client of each user fills its mailbox, once.
    if (id as u64) < config.users && config.fill > 0 {
        if let Some(open) = session.as_mut() {
            if fill_mailbox(open, &config).await.is_err() {
                recorder.count("fill-failed", 1);
            }
        }
    }
    // All clients are connected before the clock starts, as a mail client population
    // would be.
    ready.wait().await;
    while let Some(ticket) = schedule.next().await {
        let origin = ticket.latency_origin(Instant::now());
        let operation = config.mix.at(ticket.index);
        let mut current = match session.take() {
            Some(current) => current,
            None => match open_session(&config, &user, &mut recorder).await {
                Some(current) => current,
                None => {
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            },
        };
        let started = if ticket.intended.is_some() {
            origin
        } else {
            Instant::now()
        };
        match current
            .run(operation, &config, ticket.index, &mut random, &mut recorder)
            .await
        {
            Ok(Some(())) => recorder.ok(operation, started.elapsed()),
            Ok(None) => recorder.count("skipped-empty-mailbox", 1),
            Err(kind) => {
                current.record_error(&mut recorder, operation, kind);
                if kind.drops_connection() {
                    current.broken = true;
                }
            }
        }
        if current.broken {
            current.close(&mut recorder).await;
        } else {
            session = Some(current);
        }
    }
    if let Some(current) = session {
        current.logout(&mut recorder).await;
    }
    recorder.finish()
}

/// Where a stress session is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StressState {
    Login,
    Select,
    Fetch,
    FetchBody,
    Search,
    Store,
    Delete,
    Expunge,
    Append,
    Logout,
}

impl StressState {
    fn next(self) -> StressState {
        match self {
            StressState::Login => StressState::Select,
            StressState::Select => StressState::Fetch,
            StressState::Fetch => StressState::FetchBody,
            StressState::FetchBody => StressState::Search,
            StressState::Search => StressState::Store,
            StressState::Store => StressState::Delete,
            StressState::Delete => StressState::Expunge,
            StressState::Expunge => StressState::Append,
            StressState::Append => StressState::Logout,
            StressState::Logout => StressState::Login,
        }
    }
}

/// Whether a `percent` chance comes up.
fn chance(random: &mut SplitMix64, percent: u64) -> bool {
    random.range_inclusive(0, 99) < percent
}

/// One stress client: the cycle of the module documentation, one command per ticket.
async fn stress_worker(
    id: usize,
    config: Arc<ImapConfig>,
    schedule: Arc<Schedule>,
    progress: Arc<Progress>,
    ready: Arc<Barrier>,
) -> Stats {
    let mut recorder = Recorder::new(progress);
    let mut random = SplitMix64::new(config.seed.wrapping_mul(1_000_003) + id as u64);
    let mut session: Option<ImapSession> = None;
    let mut state = StressState::Login;
    // This cycle marked a message \Deleted: EXPUNGE follows.
    let mut deleted = false;
    ready.wait().await;
    while let Some(ticket) = schedule.next().await {
        let origin = ticket.latency_origin(Instant::now());
        let started = if ticket.intended.is_some() {
            origin
        } else {
            Instant::now()
        };
        // The states skipped by their chance (or for want of a message) take no
        // ticket.
        loop {
            let exists = session.as_ref().map_or(0, |session| session.exists);
            let runs = match state {
                StressState::Login => session.is_none(),
                StressState::Select | StressState::Append | StressState::Logout => true,
                StressState::Fetch | StressState::FetchBody | StressState::Delete => exists > 0,
                StressState::Search => chance(&mut random, STRESS_SEARCH_PERCENT),
                StressState::Store => exists > 0 && chance(&mut random, STRESS_STORE_PERCENT),
                StressState::Expunge => deleted,
            };
            if runs {
                break;
            }
            state = state.next();
        }
        // What succeeded; failures are recorded where they happen, with the reply.
        let succeeded = match (state, session.as_mut()) {
            (StressState::Login, _) => {
                let user = config.user.render(random.range_inclusive(1, config.users));
                stress_login(&config, &user, &mut recorder)
                    .await
                    .map(|opened| {
                        session = Some(opened);
                        Operation::Login
                    })
            }
            (_, None) => {
                // Only LOGIN runs without a session.
                state = StressState::Login;
                continue;
            }
            (state, Some(current)) => {
                let operation =
                    stress_command(state, current, &config, &mut random, ticket.index).await;
                if state == StressState::Delete && operation.is_ok() {
                    deleted = true;
                }
                if state == StressState::Expunge {
                    deleted = false;
                }
                if let Ok((Operation::FetchHeaders | Operation::FetchBody, completion)) = &operation
                {
                    recorder.transferred(completion.fetches, completion.literal_bytes);
                }
                if let Ok((Operation::Append, completion)) = &operation {
                    recorder.transferred(1, completion.literal_bytes);
                }
                match operation {
                    Ok((operation, _)) => Some(operation),
                    Err((operation, kind)) => {
                        current.record_error(&mut recorder, operation, kind);
                        if kind.drops_connection() {
                            current.broken = true;
                        }
                        None
                    }
                }
            }
        };
        if let Some(operation) = succeeded {
            recorder.ok(operation, started.elapsed());
        }
        let broken = session.as_ref().is_some_and(|current| current.broken);
        if broken || state == StressState::Logout {
            if let Some(current) = session.take() {
                current.close(&mut recorder).await;
            }
            state = StressState::Login;
            deleted = false;
            if broken {
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
            continue;
        }
        // FETCH of a body again, with imaptest's chance; otherwise on.
        if !(state == StressState::FetchBody
            && chance(&mut random, STRESS_FETCH_BODY_AGAIN_PERCENT))
        {
            state = state.next();
        }
    }
    // Cycles cut short by the end of the run: LOGOUT, not counted (every unit was
    // one ticket).
    if let Some(mut current) = session {
        if !current.broken {
            let _ = current.command("LOGOUT").await;
        }
        current.close(&mut recorder).await;
    }
    recorder.finish()
}

/// Connect and LOGIN as `user` (and COMPRESS if asked); one `login` unit, whose
/// failure is recorded here (with the reply, while the connection is at hand).
async fn stress_login(
    config: &ImapConfig,
    user: &str,
    recorder: &mut Recorder,
) -> Option<ImapSession> {
    let mut session = match ImapSession::connect(config).await {
        Ok(session) => session,
        Err(kind) => {
            recorder.error_with_reply(Operation::Login, kind, b"", b"");
            return None;
        }
    };
    let outcome = match session.login(user, &config.password).await {
        Ok(_) => session.compress(config).await,
        Err(kind) => Err(kind),
    };
    match outcome {
        Ok(()) => Some(session),
        Err(kind) => {
            session.record_error(recorder, Operation::Login, kind);
            session.connection.close().await;
            None
        }
    }
}

/// One command of the stress cycle in `state`; what it counts as.
async fn stress_command(
    state: StressState,
    session: &mut ImapSession,
    config: &ImapConfig,
    random: &mut SplitMix64,
    index: u64,
) -> Result<(Operation, Completion), (Operation, ErrorKind)> {
    let exists = u64::from(session.exists.max(1));
    let (operation, command) = match state {
        StressState::Select => (
            Operation::Select,
            format!("SELECT {}", quoted(&config.mailbox)),
        ),
        StressState::Fetch => {
            let count = u64::from(config.fetch_count.max(1)).min(exists);
            let first = random.range_inclusive(1, exists - count + 1);
            let last = first + count - 1;
            (
                Operation::FetchHeaders,
                format!("FETCH {first}:{last} {STRESS_FETCH_ITEMS}"),
            )
        }
        StressState::FetchBody => {
            let number = random.range_inclusive(1, exists);
            (
                Operation::FetchBody,
                format!("FETCH {number} (UID BODY.PEEK[])"),
            )
        }
        StressState::Search => (Operation::Search, format!("SEARCH {}", config.search_query)),
        StressState::Store => {
            let first = random.range_inclusive(1, exists);
            let last = random.range_inclusive(first, exists.min(first + 4));
            let sign = if chance(random, 50) { '+' } else { '-' };
            (
                Operation::Store,
                format!("STORE {first}:{last} {sign}FLAGS (\\Flagged $Bench)"),
            )
        }
        StressState::Delete => {
            let number = random.range_inclusive(1, exists);
            (
                Operation::Store,
                format!("STORE {number} +FLAGS.SILENT (\\Deleted)"),
            )
        }
        StressState::Expunge => (Operation::Expunge, "EXPUNGE".to_string()),
        StressState::Append => {
            return session
                .append(config, index)
                .await
                .map(|size| {
                    (
                        Operation::Append,
                        Completion {
                            fetches: 0,
                            literal_bytes: size,
                        },
                    )
                })
                .map_err(|kind| (Operation::Append, kind));
        }
        StressState::Logout => (Operation::Logout, "LOGOUT".to_string()),
        StressState::Login => return Err((Operation::Login, ErrorKind::Protocol)),
    };
    session
        .command(&command)
        .await
        .map(|completion| (operation, completion))
        .map_err(|kind| (operation, kind))
}

/// One IDLE holder: set up, enter IDLE, report readiness, wait for the end.
async fn idle_holder(
    id: usize,
    config: Arc<ImapConfig>,
    progress: Arc<Progress>,
    ready: mpsc::Sender<()>,
    mut stop: watch::Receiver<bool>,
) -> Stats {
    let mut recorder = Recorder::new(progress);
    let user = config.user.cycle(id as u64, config.users);
    let Some(mut session) = open_session(&config, &user, &mut recorder).await else {
        let _ = ready.send(()).await;
        return recorder.finish();
    };
    let mut reported_ready = false;
    let outcome: Outcome<()> = async {
        loop {
            session.new_tag(b"IDLE");
            let started = Instant::now();
            let command = format!("{} IDLE\r\n", session.tag);
            session.send(command.as_bytes()).await?;
            let mut completion = Completion::default();
            loop {
                match session.read_response(&mut completion).await? {
                    Response::Continuation => break,
                    Response::Untagged => {}
                    Response::Tagged(status) => {
                        status.into_outcome()?;
                        return Err(ErrorKind::Protocol);
                    }
                }
            }
            recorder.ok(Operation::Idle, started.elapsed());
            if !reported_ready {
                reported_ready = true;
                recorder.count("idle-holders", 1);
                let _ = ready.send(()).await;
            }
            session.exists_updates = 0;
            // A server in IDLE is silent until there is news: reads wait for as long
            // as the IDLE lasts, not the usual read timeout.
            let io_timeout = session.connection.io_timeout();
            session
                .connection
                .set_io_timeout(IDLE_REISSUE + Duration::from_secs(60));
            let reissue = tokio::time::sleep(IDLE_REISSUE);
            tokio::pin!(reissue);
            let stopping = loop {
                tokio::select! {
                    _ = stop.changed() => break true,
                    _ = &mut reissue => break false,
                    response = session.read_response(&mut completion) => {
                        if let Response::Tagged(status) = response? {
                            // The server ended IDLE on its own.
                            status.into_outcome()?;
                            return Err(ErrorKind::Protocol);
                        }
                    }
                }
            };
            session.connection.set_io_timeout(io_timeout);
            session.send(b"DONE\r\n").await?;
            let done = session.finish(&mut completion).await;
            // Counted after DONE's reply: a notification sent just before the stop
            // may only be read while waiting for it.
            recorder.count("idle-notifications", session.exists_updates);
            done?.into_outcome()?;
            if stopping {
                return Ok(());
            }
        }
    }
    .await;
    if let Err(kind) = outcome {
        session.record_error(&mut recorder, Operation::Idle, kind);
        if kind.drops_connection() {
            session.broken = true;
        }
    }
    if !reported_ready {
        let _ = ready.send(()).await;
    }
    session.logout(&mut recorder).await;
    recorder.finish()
}

/// Runs the IMAP load: IDLE holders first (all in IDLE, or failed, before the mix
/// starts), then the mix clients on `schedule`; holders leave IDLE when the mix ends.
pub async fn run(
    config: Arc<ImapConfig>,
    schedule: Arc<Schedule>,
    progress: Arc<Progress>,
) -> RunResult {
    let sessions = schedule.plan().sessions;
    let (stop_holders, holders_stop) = watch::channel(false);
    let (ready_sender, mut ready_receiver) = mpsc::channel(config.idle_holders.max(1));
    let holders: Vec<_> = (0..config.idle_holders)
        .map(|index| {
            tokio::spawn(idle_holder(
                sessions + index,
                config.clone(),
                progress.clone(),
                ready_sender.clone(),
                holders_stop.clone(),
            ))
        })
        .collect();
    drop(ready_sender);
    for _ in 0..config.idle_holders {
        if ready_receiver.recv().await.is_none() {
            break;
        }
    }
    let ready = Arc::new(Barrier::new(sessions));
    let stress = config.stress;
    let mut stats = run_workers(sessions, |id| {
        let (config, schedule, progress, ready) = (
            config.clone(),
            schedule.clone(),
            progress.clone(),
            ready.clone(),
        );
        async move {
            if stress {
                stress_worker(id, config, schedule, progress, ready).await
            } else {
                worker(id, config, schedule, progress, ready).await
            }
        }
    })
    .await;
    // The run's duration is the mix's: the holders' DONE and LOGOUT are not part of it.
    let mix_elapsed = schedule.elapsed();
    stop_holders.send_replace(true);
    for holder in holders {
        match holder.await {
            Ok(holder_stats) => stats.merge(&holder_stats),
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_cancelled) => {}
        }
    }
    let mut finished = RunResult::finish(&schedule, stats);
    finished.elapsed = mix_elapsed;
    finished
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_periods_hold_exact_weights() {
        let mix: Mix = DEFAULT_MIX.parse().expect("valid");
        assert_eq!(mix.period(), 10);
        let mut counts = std::collections::BTreeMap::new();
        for index in 0..mix.period() * 3 {
            *counts.entry(mix.at(index)).or_insert(0) += 1;
        }
        assert_eq!(counts[&Operation::FetchHeaders], 12);
        assert_eq!(counts[&Operation::FetchBody], 6);
        assert_eq!(counts[&Operation::Append], 3);
        // Smooth: the heaviest command does not come in one block.
        let first_four: Vec<_> = (0..4).map(|index| mix.at(index)).collect();
        assert_ne!(first_four, vec![Operation::FetchHeaders; 4]);
    }

    #[test]
    fn mix_errors() {
        assert!(matches!(
            "frob=1".parse::<Mix>(),
            Err(MixError::UnknownCommand(_))
        ));
        assert!(matches!("select".parse::<Mix>(), Err(MixError::Syntax(_))));
        assert!(matches!(
            "select=x".parse::<Mix>(),
            Err(MixError::Syntax(_))
        ));
        assert!(matches!("select=0".parse::<Mix>(), Err(MixError::Empty)));
        assert!(matches!(
            "select=20000".parse::<Mix>(),
            Err(MixError::TooLarge)
        ));
        let repeated: Mix = "noop=1,noop=2".parse().expect("valid");
        assert_eq!(repeated.weight(Operation::Noop), 3);
    }

    #[test]
    fn literals() {
        let cases: [(&[u8], Outcome<Option<u64>>); 6] = [
            (b"* 1 FETCH (BODY[] {123}", Ok(Some(123))),
            (b"* 1 FETCH (BODY[] {7+}", Ok(Some(7))),
            (b"* 1 FETCH (FLAGS ())", Ok(None)),
            (b"* OK {x}", Ok(None)),
            (b"}", Ok(None)),
            (b"* 1 FETCH (BODY[] {99999999999999})", Ok(None)),
        ];
        for (line, expected) in cases {
            assert_eq!(trailing_literal(line), expected, "{:?}", line);
        }
        assert_eq!(
            trailing_literal(b"* 1 FETCH (BODY[] {99999999999}"),
            Err(ErrorKind::Protocol)
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted("user1@example.test"), "\"user1@example.test\"");
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn capabilities() {
        let mut capabilities = Capabilities::default();
        capabilities.update_from(b"OK [CAPABILITY IMAP4rev1 LITERAL+ STARTTLS IDLE] ready");
        assert!(capabilities.known && capabilities.literal_plus && capabilities.starttls);
        capabilities.update_from(b"CAPABILITY IMAP4rev1 IDLE");
        assert!(capabilities.known && !capabilities.literal_plus && !capabilities.starttls);
    }
}
