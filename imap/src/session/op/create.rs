//! CREATE — RFC 3501 §6.3.3. Missing superior levels are created too ("the server
//! SHOULD create any superior hierarchical names that are needed"), in the same batch.

use lifeboat_store::{Batch, Op, OpResult, INBOX};

use super::super::archive;
use super::super::names::{ancestors, check_new};
use super::super::{Core, Reply};
use super::FOLDERS_PER_ACCOUNT_MAX;
use crate::types::{Code, Mailbox};

pub(crate) async fn run(core: &mut Core, mailbox: &Mailbox<'_>) -> Reply {
    let name = match super::store_name(core, mailbox) {
        Ok(name) => name,
        Err(reply) => return reply,
    };
    if archive::is_archive_name(&name) {
        return super::archive_read_only();
    }
    if name == INBOX {
        return Reply::no(Some(Code::AlreadyExists), "INBOX always exists");
    }
    if check_new(&name).is_err() {
        return Reply::no(Some(Code::Cannot), "Invalid mailbox name");
    }
    let account = core.logged_in().to_string();
    let (exists, missing, count) = core.store.read(|state| {
        let exists = state.folder_by_name(&account, &name).is_some();
        let missing: Vec<String> = ancestors(&name)
            .filter(|ancestor| state.folder_by_name(&account, ancestor).is_none())
            .map(str::to_string)
            .collect();
        (exists, missing, state.folders_of(&account).len())
    });
    if exists {
        return Reply::no(Some(Code::AlreadyExists), "Mailbox already exists");
    }
    if count + missing.len() + 1 > FOLDERS_PER_ACCOUNT_MAX {
        return Reply::no(Some(Code::Limit), "Too many mailboxes");
    }
    let batch = create_batch(&account, missing.into_iter().chain([name]));
    let results = match core.commit(batch).await {
        Ok(results) => results,
        Err(reply) => return reply,
    };
    // Another session may have created one of the names meanwhile; only the last
    // (the name asked for) matters.
    match results.last() {
        Some(Ok(OpResult::Folder { .. })) => Reply::ok("CREATE completed"),
        _ => Reply::no(Some(Code::AlreadyExists), "Mailbox already exists"),
    }
}

/// A batch creating the named folders in order.
pub(crate) fn create_batch(account: &str, names: impl IntoIterator<Item = String>) -> Batch {
    let mut batch = Batch::new();
    for name in names {
        batch.push(Op::CreateFolder {
            account: account.to_string(),
            name,
            special_use: None,
        });
    }
    batch
}
