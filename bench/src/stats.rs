//! What a run measures: per-operation success counts, error counts by kind and latency
//! histograms, plus message and byte totals, and the first few failures as they were
//! seen ([`ErrorSample`]: the command and the server's reply), so that an error count
//! can be traced to its cause.
//!
//! Each worker records into its own [`Recorder`] (no locking on the measured path) and
//! hands its [`Stats`] back when it ends; the run merges them. A few shared atomics
//! ([`Progress`]) let the once-a-second progress line see totals while workers run.

use crate::error::ErrorKind;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Latencies are recorded in microseconds, up to this bound; longer ones are clamped
/// (they can only come from a timeout far beyond any useful benchmark).
pub const LATENCY_MICROS_MAX: u64 = 3_600 * 1_000_000;

/// Significant decimal digits the histograms keep: 0.1% resolution at any magnitude.
pub const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// Failures kept with their command and reply per run (and per worker): the first
/// ones, by time. Counts are kept for all.
pub const ERROR_SAMPLES_MAX: usize = 10;

/// Longest command or reply text an [`ErrorSample`] keeps, in bytes (a reply line is
/// short; the bound only keeps a runaway line out of the report).
pub const ERROR_SAMPLE_TEXT_BYTES_MAX: usize = 512;

/// One failed operation as it happened on the wire.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorSample {
    /// Wall-clock time the failure was recorded, in seconds since the Unix epoch (to
    /// find it in the server's log).
    pub at_unix_seconds: f64,
    pub operation: &'static str,
    pub kind: &'static str,
    /// The command sent, without its tag; passwords masked. Empty when the failure
    /// came before any command (connect).
    pub command: String,
    /// The server's answer that failed it: the tagged NO or BAD line, or the line
    /// that broke the protocol. Empty when there was none (timeout, closed).
    pub reply: String,
}

impl ErrorSample {
    /// A sample of `operation` failing as `kind`, now. Non-printable bytes of the
    /// texts are escaped; each is cut at [`ERROR_SAMPLE_TEXT_BYTES_MAX`].
    pub fn new(operation: Operation, kind: ErrorKind, command: &[u8], reply: &[u8]) -> Self {
        let at_unix_seconds = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        ErrorSample {
            at_unix_seconds,
            operation: operation.name(),
            kind: kind.name(),
            command: printable(command),
            reply: printable(reply),
        }
    }
}

/// `bytes` as text: printable ASCII as it is (quotes and backslashes too, as on the
/// wire), anything else escaped (`\r`, `\xff`); cut at
/// [`ERROR_SAMPLE_TEXT_BYTES_MAX`] input bytes.
fn printable(bytes: &[u8]) -> String {
    let kept = &bytes[..bytes.len().min(ERROR_SAMPLE_TEXT_BYTES_MAX)];
    let mut text = String::with_capacity(kept.len());
    for &byte in kept {
        if byte == b' ' || byte.is_ascii_graphic() {
            text.push(char::from(byte));
        } else {
            text.extend(std::ascii::escape_default(byte).map(char::from));
        }
    }
    if kept.len() < bytes.len() {
        text.push_str("...");
    }
    text
}

/// One measured step of a protocol conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// TCP connect, greeting, capabilities and, if asked, the TLS upgrade.
    Connect,
    /// SMTP: one message transaction, MAIL FROM up to the reply to the final dot.
    Message,
    /// SMTP: the last byte of a message sent to the reply to it (the server's accept
    /// latency as a client sees it; successes only, errors count under `Message`).
    EndOfData,
    /// SMTP: one RCPT TO (counted, not timed: with pipelining it has no own latency).
    Recipient,
    /// IMAP LOGIN, POP3 USER + PASS.
    Login,
    Select,
    FetchHeaders,
    FetchBody,
    Search,
    Store,
    Append,
    Noop,
    /// IMAP EXPUNGE.
    Expunge,
    /// IMAP IDLE, timed up to the server's continuation.
    Idle,
    Logout,
    Stat,
    Retr,
    Quit,
    /// POP3: a whole session, connect to QUIT.
    Session,
}

impl Operation {
    /// The name used in tables, JSON and `--mix`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Connect => "connect",
            Operation::Message => "message",
            Operation::EndOfData => "end-of-data",
            Operation::Recipient => "recipient",
            Operation::Login => "login",
            Operation::Select => "select",
            Operation::FetchHeaders => "fetch-headers",
            Operation::FetchBody => "fetch-body",
            Operation::Search => "search",
            Operation::Store => "store",
            Operation::Append => "append",
            Operation::Noop => "noop",
            Operation::Expunge => "expunge",
            Operation::Idle => "idle",
            Operation::Logout => "logout",
            Operation::Stat => "stat",
            Operation::Retr => "retr",
            Operation::Quit => "quit",
            Operation::Session => "session",
        }
    }
}

/// Results of one operation.
#[derive(Clone, Debug)]
pub struct OperationStats {
    pub ok: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Latency of successful executions, in microseconds.
    pub latency_micros: Histogram<u64>,
}

impl OperationStats {
    fn new() -> Self {
        OperationStats {
            ok: 0,
            errors: BTreeMap::new(),
            // The bounds are constants that hdrhistogram accepts (low >= 1,
            // high >= 2 * low, digits <= 5), so this cannot fail.
            latency_micros: Histogram::new_with_bounds(
                1,
                LATENCY_MICROS_MAX,
                LATENCY_SIGNIFICANT_DIGITS,
            )
            .expect("constant histogram bounds are valid"),
        }
    }

    /// Errors of every kind.
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Errors of one kind.
    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        self.errors.get(&kind).copied().unwrap_or(0)
    }

    fn merge(&mut self, other: &OperationStats) {
        self.ok += other.ok;
        for (kind, count) in &other.errors {
            *self.errors.entry(*kind).or_insert(0) += count;
        }
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency_micros.add(&other.latency_micros);
    }
}

/// Everything one worker (or, merged, the whole run) measured.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub operations: BTreeMap<Operation, OperationStats>,
    /// Messages moved: SMTP accepted, IMAP fetched or appended, POP3 retrieved.
    pub messages: u64,
    /// Bytes of those messages.
    pub bytes: u64,
    /// Named event counts that are neither operations nor errors.
    pub counters: BTreeMap<&'static str, u64>,
    /// The first failures, by time, at most [`ERROR_SAMPLES_MAX`].
    pub error_samples: Vec<ErrorSample>,
}

impl Stats {
    /// The results of `operation` (all zero if it never ran).
    pub fn operation(&self, operation: Operation) -> OperationStats {
        self.operations
            .get(&operation)
            .cloned()
            .unwrap_or_else(OperationStats::new)
    }

    /// Successful executions of `operation`.
    pub fn ok(&self, operation: Operation) -> u64 {
        self.operations.get(&operation).map_or(0, |stats| stats.ok)
    }

    /// Failed executions of `operation` classified as `kind`.
    pub fn errors(&self, operation: Operation, kind: ErrorKind) -> u64 {
        self.operations
            .get(&operation)
            .map_or(0, |stats| stats.errors_of(kind))
    }

    /// Failed executions of `operation`, any kind.
    pub fn error_total(&self, operation: Operation) -> u64 {
        self.operations
            .get(&operation)
            .map_or(0, OperationStats::error_total)
    }

    /// A named counter.
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        for (operation, stats) in &other.operations {
            self.operations
                .entry(*operation)
                .or_insert_with(OperationStats::new)
                .merge(stats);
        }
        self.messages += other.messages;
        self.bytes += other.bytes;
        for (name, count) in &other.counters {
            *self.counters.entry(name).or_insert(0) += count;
        }
        self.error_samples
            .extend(other.error_samples.iter().cloned());
        self.error_samples
            .sort_by(|a, b| a.at_unix_seconds.total_cmp(&b.at_unix_seconds));
        self.error_samples.truncate(ERROR_SAMPLES_MAX);
    }

    /// The merged results of several operations (e.g. all operations of an IMAP mix).
    pub fn combined(&self, operations: &[Operation]) -> OperationStats {
        let mut total = OperationStats::new();
        for operation in operations {
            if let Some(stats) = self.operations.get(operation) {
                total.merge(stats);
            }
        }
        total
    }
}

/// Totals shared by all workers, read by the progress line.
#[derive(Debug, Default)]
pub struct Progress {
    pub ok: AtomicU64,
    pub errors: AtomicU64,
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
}

/// A snapshot of [`Progress`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgressSnapshot {
    pub ok: u64,
    pub errors: u64,
    pub messages: u64,
    pub bytes: u64,
}

impl Progress {
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            ok: self.ok.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            messages: self.messages.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

/// One worker's measuring instrument.
#[derive(Debug)]
pub struct Recorder {
    stats: Stats,
    progress: Arc<Progress>,
}

impl Recorder {
    pub fn new(progress: Arc<Progress>) -> Self {
        Recorder {
            stats: Stats::default(),
            progress,
        }
    }

    fn entry(&mut self, operation: Operation) -> &mut OperationStats {
        self.stats
            .operations
            .entry(operation)
            .or_insert_with(OperationStats::new)
    }

    /// A successful execution that took `latency`.
    pub fn ok(&mut self, operation: Operation, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let entry = self.entry(operation);
        entry.ok += 1;
        entry
            .latency_micros
            .saturating_record(micros.clamp(1, LATENCY_MICROS_MAX));
        self.progress.ok.fetch_add(1, Ordering::Relaxed);
    }

    /// A successful execution without a latency of its own.
    pub fn ok_untimed(&mut self, operation: Operation) {
        self.entry(operation).ok += 1;
        self.progress.ok.fetch_add(1, Ordering::Relaxed);
    }

    /// A failed execution.
    pub fn error(&mut self, operation: Operation, kind: ErrorKind) {
        *self.entry(operation).errors.entry(kind).or_insert(0) += 1;
        self.progress.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A failed execution, with the command that failed and the server's reply to it
    /// (kept as an [`ErrorSample`] while fewer than [`ERROR_SAMPLES_MAX`] are).
    pub fn error_with_reply(
        &mut self,
        operation: Operation,
        kind: ErrorKind,
        command: &[u8],
        reply: &[u8],
    ) {
        self.error(operation, kind);
        if self.stats.error_samples.len() < ERROR_SAMPLES_MAX {
            self.stats
                .error_samples
                .push(ErrorSample::new(operation, kind, command, reply));
        }
    }

    /// `messages` messages of `bytes` bytes in total were moved.
    pub fn transferred(&mut self, messages: u64, bytes: u64) {
        self.stats.messages += messages;
        self.stats.bytes += bytes;
        self.progress
            .messages
            .fetch_add(messages, Ordering::Relaxed);
        self.progress.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Adds `count` to a named counter.
    pub fn count(&mut self, name: &'static str, count: u64) {
        *self.stats.counters.entry(name).or_insert(0) += count;
    }

    /// Ends recording and returns what was measured.
    pub fn finish(self) -> Stats {
        self.stats
    }
}
