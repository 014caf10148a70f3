//! RENAME — RFC 3501 §6.3.5. Inferior names move along (the store renames children
//! with their parent); missing superior levels of the new name are created. Renaming
//! INBOX moves all its messages to a new mailbox and leaves INBOX empty.

use lifeboat_store::{Batch, Op, INBOX};

use super::super::archive;
use super::super::names::{ancestors, check_new, DELIMITER};
use super::super::{Core, Reply};
use super::create::create_batch;
use super::FOLDERS_PER_ACCOUNT_MAX;
use crate::types::{Code, Mailbox};

pub(crate) async fn run(core: &mut Core, from: &Mailbox<'_>, to: &Mailbox<'_>) -> Reply {
    let (source, from_name) = match super::folder_of(core, from) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let to_name = match super::store_name(core, to) {
        Ok(name) => name,
        Err(reply) => return reply,
    };
    if archive::is_archive_name(&to_name) {
        return super::archive_read_only();
    }
    if to_name == INBOX || to_name == from_name {
        return Reply::no(Some(Code::AlreadyExists), "Target mailbox exists");
    }
    if check_new(&to_name).is_err() {
        return Reply::no(Some(Code::Cannot), "Invalid mailbox name");
    }
    if to_name.starts_with(&format!("{from_name}{DELIMITER}")) {
        return Reply::no(Some(Code::Cannot), "Cannot move a mailbox into itself");
    }
    let account = core.logged_in().to_string();
    let (exists, missing, count) = core.store.read(|state| {
        let exists = state.folder_by_name(&account, &to_name).is_some();
        let missing: Vec<String> = ancestors(&to_name)
            .filter(|ancestor| state.folder_by_name(&account, ancestor).is_none())
            .map(str::to_string)
            .collect();
        (exists, missing, state.folders_of(&account).len())
    });
    if exists {
        return Reply::no(Some(Code::AlreadyExists), "Target mailbox exists");
    }
    if count + missing.len() + 1 > FOLDERS_PER_ACCOUNT_MAX {
        return Reply::no(Some(Code::Limit), "Too many mailboxes");
    }
    if from_name == INBOX {
        return rename_inbox(core, &account, source, missing, to_name).await;
    }
    let mut batch = create_batch(&account, missing);
    batch.push(Op::RenameFolder {
        account,
        from: from_name,
        to: to_name,
    });
    match core.commit(batch).await {
        Ok(results) => match results.last() {
            Some(Err(error)) => Reply::no(None, error.to_string()),
            _ => Reply::ok("RENAME completed"),
        },
        Err(reply) => reply,
    }
}

/// RFC 3501 §6.3.5: renaming INBOX moves its messages to the new name; INBOX stays.
async fn rename_inbox(
    core: &mut Core,
    account: &str,
    inbox: lifeboat_store::FolderId,
    missing: Vec<String>,
    to_name: String,
) -> Reply {
    let batch = create_batch(account, missing.into_iter().chain([to_name.clone()]));
    let results = match core.commit(batch).await {
        Ok(results) => results,
        Err(reply) => return reply,
    };
    let Some(Ok(lifeboat_store::OpResult::Folder { id: target, .. })) = results.last() else {
        return Reply::no(Some(Code::AlreadyExists), "Target mailbox exists");
    };
    let uids: Vec<u32> = core.store.read(|state| {
        state
            .folder(inbox)
            .map(|folder| folder.messages.keys().copied().collect())
            .unwrap_or_default()
    });
    if uids.is_empty() {
        return Reply::ok("RENAME completed");
    }
    let mut batch = Batch::new();
    batch.push(Op::Move {
        from: inbox,
        uids,
        to: *target,
    });
    match core.commit(batch).await {
        Ok(results) => super::failed(&results).unwrap_or_else(|| Reply::ok("RENAME completed")),
        Err(reply) => reply,
    }
}
