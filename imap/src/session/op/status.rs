//! STATUS — RFC 3501 §6.3.10, with HIGHESTMODSEQ (RFC 7162 §3.1.6, which makes it a
//! CONDSTORE enabling command). Also the items LIST-STATUS returns (RFC 5819).

use std::num::NonZeroU32;

use lifeboat_store::{Folder, SystemFlags};

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
        State::Selected(selected) if selected.view.folder == folder.id => {
            selected.view.recent_count()
        }
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
        })
        .collect()
}
