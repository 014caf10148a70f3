//! SELECT and EXAMINE — RFC 3501 §6.3.1, §6.3.2, with HIGHESTMODSEQ (RFC 7162
//! §3.1.2.1) and the `(CONDSTORE)` parameter (RFC 7162 §3.1.8).
//!
//! A previously selected mailbox is closed first, without expunging, whether or not
//! the new one can be opened (RFC 3501 §6.3.1).

use std::num::{NonZeroU32, NonZeroU64};

use super::super::flags::{defined_flags, permanent_flags};
use super::super::view::MailboxView;
use super::super::{text_of, Authenticated, Core, Reply, Selected, State};
use crate::types::{Code, Condition, Data, Mailbox, Response, Status};

pub(crate) fn run(
    core: &mut Core,
    mailbox: &Mailbox<'_>,
    read_only: bool,
    condstore: bool,
    out: &mut Vec<u8>,
) -> Reply {
    if condstore {
        core.condstore = true;
    }
    let account = core.logged_in().to_string();
    if matches!(core.state, State::Selected(_)) {
        untagged_ok(out, Some(Code::Closed), "Previous mailbox closed");
    }
    core.state = State::Authenticated(Authenticated {
        account: account.clone(),
    });
    let (folder, _) = match super::folder_of(core, mailbox) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let Some(opened) = core
        .store
        .read(|state| MailboxView::open(state, folder, read_only, &core.config.recent))
    else {
        return Reply::no(Some(Code::NonExistent), "No such mailbox");
    };
    Response::Data(Data::Flags(defined_flags(&opened.keywords))).encode(out);
    let permanent = if read_only {
        Vec::new()
    } else {
        permanent_flags(&opened.keywords)
    };
    untagged_ok(
        out,
        Some(Code::PermanentFlags(permanent)),
        "Flags permitted",
    );
    Response::Data(Data::Exists(opened.exists)).encode(out);
    Response::Data(Data::Recent(opened.view.recent_count())).encode(out);
    if let Some(first) = opened.first_unseen {
        untagged_ok(out, Some(Code::Unseen(first)), "First unseen");
    }
    untagged_ok(
        out,
        Some(Code::UidValidity(
            NonZeroU32::new(opened.view.uidvalidity).unwrap_or(NonZeroU32::MIN),
        )),
        "UIDs valid",
    );
    untagged_ok(
        out,
        Some(Code::UidNext(
            NonZeroU32::new(opened.uidnext).unwrap_or(NonZeroU32::MIN),
        )),
        "Predicted next UID",
    );
    untagged_ok(
        out,
        Some(Code::HighestModSeq(
            NonZeroU64::new(opened.highest_modseq).unwrap_or(NonZeroU64::MIN),
        )),
        "Highest",
    );
    core.state = State::Selected(Selected {
        account,
        view: opened.view,
    });
    if read_only {
        Reply::ok_code(Code::ReadOnly, "EXAMINE completed")
    } else {
        Reply::ok_code(Code::ReadWrite, "SELECT completed")
    }
}

fn untagged_ok(out: &mut Vec<u8>, code: Option<Code<'static>>, text: &str) {
    Response::Status(Status::untagged(
        Condition::Ok,
        code,
        text_of(text.to_string()),
    ))
    .encode(out);
}
