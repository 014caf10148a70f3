//! Lifeboat's mail store: an append-only log of checksummed records in segment files,
//! read through memory maps, with the directory, mailboxes, delivery queue and archive
//! kept as in-memory indexes rebuilt from the log (and checkpoints) on open.
//!
//! - [`Store::commit`] writes a [`Batch`] atomically and returns once it is durable
//!   (one `fdatasync` covers every batch that was waiting: group commit).
//! - Reads go through [`Store::read`] (the indexes) and [`Store::body`] (bytes).
//! - [`Store::checkpoint`], [`Store::expire_archive`] and [`Store::compact`] keep
//!   restart time and disk use bounded.
//!
//! The engine runs over the [`io::Vfs`] trait; [`io::SimFs`] injects torn writes,
//! failed fsyncs and crashes for tests.

pub mod address;
pub mod auth;
#[doc(hidden)]
pub mod fuzz_support;
mod index;
pub mod io;
pub mod journal;
pub mod latency;
mod log;
pub mod message;
pub mod model;
mod notify;
pub mod password;
pub mod replica;
pub mod spill;
mod state;
mod store;
mod tags;
pub mod text;
pub mod trace;

pub use address::{Address, AddressError, DomainName};
pub use index::ArchiveIndex;
pub use journal::{AuditEntry, AuditRecord, Journal, ModeChange};
pub use log::{Bytes, LogPos, RECORD_PAYLOAD_MAX};
pub use model::*;
pub use notify::{Changed, Signal};
pub use replica::Replicator;
pub use spill::{MessageData, Spill};
pub use state::{
    canonical_folder_name, BodyInfo, ExpungedSince, OpError, RetainedMessage, State,
    EXPUNGED_REMEMBERED_PER_FOLDER, RETAINED_PER_FOLDER_MAX, TRACE_RESULTS_MAX,
};
pub use store::{
    ApplyFuture, ArchiveQuery, Batch, CommitFuture, CommitLatency, FolderWatch, Options, Stats,
    Store,
};
pub use trace::{MessageTrace, Protocol, TraceEvent, TraceNote, TraceStep, Traces};

/// The on-disk format this build writes, and the newest it reads: the layout of
/// segment headers, records, batch payloads and checkpoints, and the encoding of ops
/// and of the state (postcard, with the enum tags of `tags.rs`). Every segment header
/// and checkpoint header carries it. Files written before versions were recorded
/// carry none and hold this layout: they are read as version 1, on purpose (see
/// `tests/fixtures/legacy`).
///
/// A build that changes the format raises the version, reads every older version (or
/// migrates it) and starts a new segment before it writes records in the new layout.
///
/// - 1: batches and seals; a checkpoint is the position and the state.
/// - 2: also `Replicated` records (cluster mode, `replica.rs`), and a checkpoint may
///   carry tagged sections after the state (the last replicated sequence applied).
/// - 3: a record header's bytes 25..29 hold the record's index in the group it was
///   written with, so recovery can tell a group a crash cut short from damage; a
///   segment may end in zeros (space made ready for records before they came).
pub const FORMAT_VERSION: u32 = 3;

/// Most folders an account may have: IMAP's CREATE and RENAME and webmail refuse to
/// make more. (The store applies what its log holds whatever the count, so that a
/// replay always gives the same state.)
pub const FOLDERS_PER_ACCOUNT_MAX: usize = 1000;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed.
    #[error("{context}: {source}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The log or a checkpoint is damaged somewhere recovery may not repair.
    #[error("{file}: corrupt at offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        file: String,
        /// Byte offset of the damage.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A file was written in a newer on-disk format than this build reads
    /// ([`FORMAT_VERSION`]): the store was last opened by a newer Lifeboat.
    #[error("{file}: written in store format version {found}; this build reads versions up to {supported}")]
    Version {
        /// The file.
        file: String,
        /// The version its header names.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A write or fsync failed earlier; the store acknowledges nothing more until it
    /// is reopened (after a restart the log is verified again).
    #[error("store is poisoned after an I/O failure, restart required: {0}")]
    Poisoned(String),
    /// Not enough disk space: less is free than the store keeps in reserve
    /// ([`Options::disk_free_min`]) and the batch adds a message, or the file system
    /// is full. Nothing of the batch was kept; the store goes on, and the same batch
    /// may succeed once there is room.
    #[error("not enough disk space: {0}")]
    NoSpace(String),
    /// The store is shut down.
    #[error("store is closed")]
    Closed,
    /// Cluster mode: the cluster did not store the batch (no majority of its log's
    /// replicas answered); nothing was acknowledged, try again later.
    #[error("the cluster cannot store now: {0}")]
    Unavailable(String),
    /// The request is invalid.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// Whether a failed file operation found the file system full (or the quota used
    /// up): see [`io::is_no_space`].
    pub(crate) fn is_no_space(&self) -> bool {
        matches!(self, Error::Io { source, .. } if io::is_no_space(source))
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

/// Store results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
