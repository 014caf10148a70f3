//! SELECT and EXAMINE — RFC 3501 §6.3.1, §6.3.2, with HIGHESTMODSEQ (RFC 7162
//! §3.1.2.1), the `(CONDSTORE)` parameter (RFC 7162 §3.1.8), the `(QRESYNC ...)`
//! parameter (RFC 7162 §3.2.5), IMAP4rev2's responses (RFC 9051 §6.3.2: a LIST
//! response, no RECENT and no UNSEEN code) and the archive months
//! (`session/archive.rs`, always read-only, `NOMODSEQ`).
//!
//! A previously selected mailbox is closed first, without expunging, whether or not
//! the new one can be opened (RFC 3501 §6.3.1).

use std::num::{NonZeroU32, NonZeroU64};

use lifeboat_store::FolderId;

use super::super::archive::{self, Month};
use super::super::flags::{defined_flags, fetch_flags, permanent_flags};
use super::super::names::DELIMITER;
use super::super::view::{MailboxView, Opened};
use super::super::{text_of, Authenticated, Core, Reply, Selected, State};
use super::vanished;
use crate::types::{
    Code, Condition, Data, Delimiter, FetchData, ListItem, Mailbox, QResync, Response, Status,
};

pub(crate) fn run(
    core: &mut Core,
    mailbox: &Mailbox<'_>,
    read_only: bool,
    condstore: bool,
    qresync: Option<QResync>,
    out: &mut Vec<u8>,
) -> Reply {
    // RFC 7162 §3.2.5: "A server MUST respond with a tagged BAD response if the
    // Quick Resynchronization parameter to SELECT/EXAMINE command is specified and
    // the client hasn't issued "ENABLE QRESYNC" in the current connection".
    if qresync.is_some() && !core.qresync {
        return Reply::bad("QRESYNC is not enabled");
    }
    if condstore || qresync.is_some() {
        core.condstore = true;
    }
    let account = core.logged_in().to_string();
    if matches!(core.state, State::Selected(_)) {
        untagged_ok(out, Some(Code::Closed), "Previous mailbox closed");
    }
    core.state = State::Authenticated(Authenticated {
        account: account.clone(),
    });
    let name = match super::store_name(core, mailbox) {
        Ok(name) => name,
        Err(reply) => return reply,
    };
    let now = (core.config.clock)();
    let month = Month::from_name(&name).filter(|month| {
        core.store
            .read(|state| archive::months(state, now).contains(month))
    });
    let opened = if let Some(month) = month {
        MailboxView::open_archive(&core.store, &account, month)
    } else if archive::is_archive_name(&name) {
        return Reply::no(Some(Code::NonExistent), "No such mailbox");
    } else {
        let (folder, _) = match super::folder_of(core, mailbox) {
            Ok(found) => found,
            Err(reply) => return reply,
        };
        match MailboxView::open(
            &core.store,
            folder,
            read_only,
            &core.config.recent,
            core.rev2,
        ) {
            Some(opened) => opened,
            None => return Reply::no(Some(Code::NonExistent), "No such mailbox"),
        }
    };
    report_opened(core, &opened, &name, out);
    if let (Some(qresync), Some(folder)) = (&qresync, opened.view.folder()) {
        if qresync.uidvalidity.get() == opened.view.uidvalidity {
            resynchronize(core, folder, qresync, &opened.view, out);
        }
    }
    let writable = !opened.view.read_only;
    core.state = State::Selected(Selected {
        account,
        view: opened.view,
    });
    match (read_only, writable) {
        (true, _) => Reply::ok_code(Code::ReadOnly, "EXAMINE completed"),
        (false, true) => Reply::ok_code(Code::ReadWrite, "SELECT completed"),
        // SELECT of an archive month: read-only all the same (RFC 3501 §6.3.1).
        (false, false) => Reply::ok_code(Code::ReadOnly, "SELECT completed"),
    }
}

/// The untagged data of a successful SELECT or EXAMINE.
fn report_opened(core: &Core, opened: &Opened, name: &str, out: &mut Vec<u8>) {
    Response::Data(Data::Flags(defined_flags(&opened.keywords))).encode(out);
    let permanent = if opened.view.read_only {
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
    if !core.rev2 {
        Response::Data(Data::Recent(opened.view.recent_count())).encode(out);
        if let Some(first) = opened.first_unseen {
            untagged_ok(out, Some(Code::Unseen(first)), "First unseen");
        }
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
    match opened.highest_modseq {
        Some(modseq) => untagged_ok(
            out,
            Some(Code::HighestModSeq(
                NonZeroU64::new(modseq).unwrap_or(NonZeroU64::MIN),
            )),
            "Highest",
        ),
        None => untagged_ok(out, Some(Code::NoModSeq), "No modification sequences"),
    }
    if core.rev2 {
        // RFC 9051 §6.3.2: the LIST response names the mailbox as the server
        // knows it.
        Response::Data(Data::List(ListItem {
            attributes: Vec::new(),
            delimiter: Delimiter::try_from(DELIMITER).ok(),
            mailbox: super::wire_name(core, name),
            extended: Vec::new(),
        }))
        .encode(out);
    }
}

/// RFC 7162 §3.2.5: what changed since the client's mod-sequence, in the UIDs it
/// knows: `VANISHED (EARLIER)` for what was expunged, then FETCH for flags changed.
fn resynchronize(
    core: &Core,
    folder: FolderId,
    qresync: &QResync,
    view: &MailboxView,
    out: &mut Vec<u8>,
) {
    let known = qresync.known_uids.as_ref();
    if let Some(uids) = vanished::earlier(&core.store, folder, qresync.modseq, known) {
        Response::Data(Data::Vanished {
            earlier: true,
            uids,
        })
        .encode(out);
    }
    let changed: Vec<(u32, lifeboat_store::Flags, u64)> = core.store.read(|state| {
        let Some(current) = state.folder(folder) else {
            return Vec::new();
        };
        let highest_uid = current.uidnext.saturating_sub(1);
        current
            .messages
            .values()
            .filter(|message| message.modseq > qresync.modseq)
            .filter(|message| known.is_none_or(|set| set.contains(message.uid, highest_uid)))
            .map(|message| (message.uid, message.flags.clone(), message.modseq))
            .collect()
    });
    for (uid, flags, modseq) in changed {
        let Some(index) = view.index_of_uid(uid) else {
            continue;
        };
        let recent = view.is_recent(index) && !core.rev2;
        Response::Data(Data::Fetch {
            sequence_number: MailboxView::sequence_number(index),
            items: vec![
                FetchData::Uid(NonZeroU32::new(uid).unwrap_or(NonZeroU32::MIN)),
                FetchData::Flags(fetch_flags(&flags, recent)),
                FetchData::ModSeq(NonZeroU64::new(modseq).unwrap_or(NonZeroU64::MIN)),
            ],
        })
        .encode(out);
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
