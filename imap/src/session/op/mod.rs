//! One file per command (or per pair of commands that differ in one flag). Each op
//! checks its arguments, does its work against the store, writes its untagged
//! responses and returns the [`Reply`](super::Reply) whose tagged response the
//! session writes after any untagged updates.

pub(super) mod append;
pub(super) mod authenticate;
pub(super) mod capability;
pub(super) mod close;
pub(super) mod compress;
pub(super) mod copy;
pub(super) mod create;
pub(super) mod delete;
pub(super) mod enable;
pub(super) mod expunge;
pub(super) mod fetch;
pub(super) mod id;
pub(super) mod idle;
pub(super) mod list;
pub(super) mod login;
pub(super) mod logout;
pub(super) mod namespace;
pub(super) mod rename;
pub(super) mod search;
pub(super) mod select;
pub(super) mod starttls;
pub(super) mod status;
pub(super) mod store;
pub(super) mod subscribe;
pub(super) mod vanished;

use std::borrow::Cow;

use lifeboat_store::{FolderId, OpError, OpResult};

use super::archive;
use super::names::{self, NameError};
use super::{Core, Reply};
use crate::types::{Code, Mailbox};

/// CREATE and RENAME answer NO [LIMIT] beyond it.
pub(crate) use lifeboat_store::FOLDERS_PER_ACCOUNT_MAX;

/// The store's name for a mailbox argument, or the NO to answer.
fn store_name(core: &Core, mailbox: &Mailbox<'_>) -> Result<String, Reply> {
    names::to_store(mailbox, core.utf8).map_err(|error| match error {
        NameError::Encoding if core.utf8 => Reply::no(None, "Mailbox name is not valid UTF-8"),
        NameError::Encoding => Reply::no(None, "Mailbox name is not valid modified UTF-7"),
        NameError::Invalid => Reply::no(Some(Code::Cannot), "Invalid mailbox name"),
    })
}

/// The wire name of a store name, as this client reads names.
fn wire_name(core: &Core, name: &str) -> Mailbox<'static> {
    names::to_wire(name, core.utf8)
}

/// The NO for a change the archive namespace does not take.
fn archive_read_only() -> Reply {
    Reply::no(Some(Code::Cannot), archive::READ_ONLY)
}

/// The folder of the logged-in account that `mailbox` names, and its store name. A
/// name in the archive namespace names no folder.
fn folder_of(core: &Core, mailbox: &Mailbox<'_>) -> Result<(FolderId, String), Reply> {
    let name = store_name(core, mailbox)?;
    if archive::is_archive_name(&name) {
        return Err(archive_read_only());
    }
    let account = core.logged_in();
    core.store
        .read(|state| state.folder_by_name(account, &name).map(|folder| folder.id))
        .map(|id| (id, name))
        .ok_or_else(|| Reply::no(Some(Code::NonExistent), "No such mailbox"))
}

/// The NO for an op the store did not apply (a race with another session, mostly).
fn failed(results: &[Result<OpResult, OpError>]) -> Option<Reply> {
    results
        .iter()
        .find_map(|result| result.as_ref().err())
        .map(|error| Reply::no(None, Cow::Owned(error.to_string())))
}
