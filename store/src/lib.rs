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

pub mod auth;
#[doc(hidden)]
pub mod fuzz_support;
mod index;
pub mod io;
mod log;
pub mod message;
pub mod model;
mod notify;
pub mod password;
mod state;
mod store;
pub mod text;

pub use index::ArchiveIndex;
pub use log::{Bytes, LogPos, RECORD_PAYLOAD_MAX};
pub use model::*;
pub use notify::{Changed, Signal};
pub use state::{address_domain, canonical_folder_name, normalize_address, BodyInfo, State};
pub use store::{ArchiveQuery, Batch, CommitFuture, Options, Stats, Store};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
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
    /// A write or fsync failed earlier; the store acknowledges nothing more until it
    /// is reopened (after a restart the log is verified again).
    #[error("store is poisoned after an I/O failure, restart required: {0}")]
    Poisoned(String),
    /// The store is shut down.
    #[error("store is closed")]
    Closed,
    /// The request is invalid.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

/// Store results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
