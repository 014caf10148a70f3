//! STATUS — RFC 3501 §6.3.10, with HIGHESTMODSEQ (RFC 7162 §3.1.6, which makes it a
//! CONDSTORE enabling command). Also the items LIST-STATUS returns (RFC 5819).

use std::num::NonZeroU32;

use lifeboat_store::{Folder, FolderId, SystemFlags};

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
    let (folder, _) = match super::folder_of(core, mailbox) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let recent = recent_of(core, folder);
    let items = core.store.read(|state| {
        state
            .folder(folder)
            .map(|folder| items(folder, attributes, recent))
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

/// `\Recent` messages of a folder for this session: only the selected mailbox has any.
pub(crate) fn recent_of(core: &Core, folder: FolderId) -> u32 {
    match &core.state {
        State::Selected(selected) if selected.view.folder == folder => selected.view.recent_count(),
        _ => 0,
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
        })
        .collect()
}
