//! STATUS — RFC 3501 §6.3.10, with HIGHESTMODSEQ (RFC 7162 §3.1.6, which makes it a
//! CONDSTORE enabling command), SIZE (RFC 8438 §3: the octets of every message) and
//! DELETED (RFC 9051 §6.3.11: messages with `\Deleted`). Also the items LIST-STATUS
//! returns (RFC 5819). An archive month has no modification sequences (HIGHESTMODSEQ
//! 0, RFC 7162 §3.1.6) and its messages are all `\Seen`.

use std::num::NonZeroU32;

use lifeboat_store::{Folder, SystemFlags};

use super::super::archive;
use super::super::{Core, Reply, State};
use crate::types::{Data, Mailbox, Response, StatusAttribute, StatusItem};

pub(crate) fn run(
    core: &mut Core,
    mailbox: &Mailbox<'_>,
    attributes: &[StatusAttribute],
    out: &mut Vec<u8>,
) -> Reply {
    if attributes.contains(&StatusAttribute::HighestModSeq) {
        core.condstore = true;
    }
    if let Ok(name) = super::store_name(core, mailbox) {
        let now = (core.config.clock)();
        let month = archive::Month::from_name(&name).filter(|month| {
            core.store
                .read(|state| archive::months(state, now).contains(month))
        });
        if let Some(month) = month {
            let items = archive_items(core, month, attributes);
            Response::Data(Data::Status {
                mailbox: mailbox.clone(),
                items,
            })
            .encode(out);
            return Reply::ok("STATUS completed");
        }
    }
    let (folder, _) = match super::folder_of(core, mailbox) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let items = core.store.read(|state| {
        state
            .folder(folder)
            .map(|folder| items(folder, attributes, recent_of(core, folder)))
    });
    let Some(items) = items else {
        return Reply::no(Some(crate::types::Code::NonExistent), "No such mailbox");
    };
    Response::Data(Data::Status {
        mailbox: mailbox.clone(),
        items,
    })
    .encode(out);
    Reply::ok("STATUS completed")
}

/// `\Recent` messages of a folder: this session's, if it has the folder selected;
/// otherwise those no session has taken yet (what a SELECT now would show).
pub(crate) fn recent_of(core: &Core, folder: &Folder) -> u32 {
    match &core.state {
        State::Selected(selected) if selected.view.shows(folder.id) => selected.view.recent_count(),
        _ => core.config.recent.untaken(folder),
    }
}

/// The STATUS items of a folder.
pub(crate) fn items(
    folder: &Folder,
    attributes: &[StatusAttribute],
    recent: u32,
) -> Vec<StatusItem> {
    attributes
        .iter()
        .map(|attribute| match attribute {
            StatusAttribute::Messages => {
                StatusItem::Messages(u32::try_from(folder.messages.len()).unwrap_or(u32::MAX))
            }
            StatusAttribute::Recent => StatusItem::Recent(recent),
            StatusAttribute::UidNext => {
                StatusItem::UidNext(NonZeroU32::new(folder.uidnext).unwrap_or(NonZeroU32::MIN))
            }
            StatusAttribute::UidValidity => StatusItem::UidValidity(
                NonZeroU32::new(folder.uidvalidity).unwrap_or(NonZeroU32::MIN),
            ),
            StatusAttribute::Unseen => {
                let unseen = folder
                    .messages
                    .values()
                    .filter(|message| !message.flags.system.contains(SystemFlags::SEEN))
                    .count();
                StatusItem::Unseen(u32::try_from(unseen).unwrap_or(u32::MAX))
            }
            StatusAttribute::HighestModSeq => StatusItem::HighestModSeq(folder.highest_modseq),
            StatusAttribute::Size => {
                StatusItem::Size(folder.messages.values().map(|message| message.size).sum())
            }
            StatusAttribute::Deleted => {
                let deleted = folder
                    .messages
                    .values()
                    .filter(|message| message.flags.system.contains(SystemFlags::DELETED))
                    .count();
                StatusItem::Deleted(u32::try_from(deleted).unwrap_or(u32::MAX))
            }
        })
        .collect()
}

/// The STATUS items of an archive month of the logged-in account.
pub(crate) fn archive_items(
    core: &Core,
    month: archive::Month,
    attributes: &[StatusAttribute],
) -> Vec<StatusItem> {
    let account = core.logged_in();
    let (count, size, last) = core.store.read(|state| {
        let mut count = 0u32;
        let mut size = 0u64;
        let mut last = 0u32;
        for entry in state
            .archive()
            .filter(|entry| archive::belongs(entry, account, month))
        {
            count = count.saturating_add(1);
            size = size.saturating_add(entry.size);
            last = last.max(archive::uid_of(entry.id).unwrap_or(0));
        }
        (count, size, last)
    });
    attributes
        .iter()
        .map(|attribute| match attribute {
            StatusAttribute::Messages => StatusItem::Messages(count),
            StatusAttribute::Recent | StatusAttribute::Unseen | StatusAttribute::Deleted => {
                match attribute {
                    StatusAttribute::Recent => StatusItem::Recent(0),
                    StatusAttribute::Unseen => StatusItem::Unseen(0),
                    _ => StatusItem::Deleted(0),
                }
            }
            StatusAttribute::UidNext => StatusItem::UidNext(
                NonZeroU32::new(last.saturating_add(1)).unwrap_or(NonZeroU32::MIN),
            ),
            StatusAttribute::UidValidity => StatusItem::UidValidity(
                NonZeroU32::new(month.uidvalidity()).unwrap_or(NonZeroU32::MIN),
            ),
            StatusAttribute::HighestModSeq => StatusItem::HighestModSeq(0),
            StatusAttribute::Size => StatusItem::Size(size),
        })
        .collect()
}
