//! STORE and UID STORE — RFC 3501 §6.4.6 — with UNCHANGEDSINCE and MODIFIED (RFC 7162
//! §3.1.3). The FETCH responses are written after the commit, from the flags as
//! stored; with `.SILENT` they are left out, except that a CONDSTORE client still
//! learns the new MODSEQ of each message changed (RFC 7162 §3.1.3).
//!
//! A message another session expunged and this one has not been told of is left
//! alone, and the command still answers OK: RFC 2180 §4.2 lets the server treat a
//! STORE to it as a harmless no-op until the EXPUNGE is sent ("4.2.1 If the
//! ".SILENT" suffix is used, and the STORE completed successfully for all the
//! non-expunged messages, the server SHOULD return a tagged OK."); this server does
//! so with or without `.SILENT`, as the most interoperable servers do, so that no
//! client shows an error for a race it cannot see.

use std::collections::HashSet;
use std::num::{NonZeroU32, NonZeroU64};

use lifeboat_store::{Batch, FlagAction, Op, OpResult, Protocol, TraceNote};

use super::super::flags::{self, FlagError};
use super::super::view::MailboxView;
use super::super::{Core, Reply, Updates};
use crate::types::{Code, Condition, Data, FetchData, Flag, Response, SequenceSet, StoreKind};

/// The arguments of a STORE.
pub(crate) struct Request<'r, 'a> {
    pub(crate) uid: bool,
    pub(crate) sequence_set: &'r SequenceSet,
    pub(crate) kind: StoreKind,
    pub(crate) silent: bool,
    pub(crate) flags: &'r [Flag<'a>],
    pub(crate) unchanged_since: Option<u64>,
}

pub(crate) async fn run(core: &mut Core, request: Request<'_, '_>, out: &mut Vec<u8>) -> Reply {
    // RFC 3501 §7.4.1: no EXPUNGE responses during STORE by sequence number.
    let updates = if request.uid {
        Updates::All
    } else {
        Updates::NoExpunge
    };
    if request.unchanged_since.is_some() {
        core.condstore = true;
    }
    let condstore = core.condstore;
    let store = core.store.clone();
    let flags = match flags::to_store(request.flags) {
        Ok(flags) => flags,
        Err(FlagError::UnknownSystemFlag) => {
            return Reply::bad("Invalid system flag").with_updates(updates)
        }
        Err(FlagError::TooMany) => {
            return Reply::no(Some(Code::Limit), "Too many or too long keywords")
                .with_updates(updates)
        }
    };
    let view = &mut core.selected().view;
    if request.sequence_set.is_saved() && view.saved.is_none() {
        return Reply::no(Some(Code::NotSaved), "No search result saved").with_updates(updates);
    }
    let indices = if request.uid {
        view.resolve_uid_set(request.sequence_set)
    } else {
        match view.resolve_sequence_set(request.sequence_set) {
            Ok(indices) => indices,
            Err(_) => return Reply::bad("Invalid sequence number").with_updates(updates),
        }
    };
    let Some(folder) = view.folder() else {
        return Reply::no(Some(Code::Cannot), super::super::archive::READ_ONLY)
            .with_updates(updates);
    };
    if view.read_only {
        return Reply::no(Some(Code::ReadOnly), "Mailbox is read-only").with_updates(updates);
    }
    let mut targets = view.current(&store, &indices);
    // A UID that no longer exists is simply not there (RFC 3501 §6.4.8); a sequence
    // number whose message the store no longer keeps for this session is reported.
    let expunged = !request.uid && targets.len() < indices.len();
    // RFC 2180 §4.2: expunged but not yet reported: a no-op.
    targets.retain(|target| !target.expunged);
    if targets.is_empty() {
        return done(expunged, None, updates);
    }
    let mut batch = Batch::new();
    batch.push(Op::Trace(TraceNote::Via(Protocol::Imap)));
    batch.push(Op::StoreFlags {
        folder,
        uids: targets.iter().map(|target| target.uid).collect(),
        action: match request.kind {
            StoreKind::Replace => FlagAction::Replace,
            StoreKind::Add => FlagAction::Add,
            StoreKind::Remove => FlagAction::Remove,
        },
        flags,
        unchanged_since: request.unchanged_since,
    });
    let results = match core.commit(batch).await {
        Ok(results) => results,
        Err(reply) => return reply.with_updates(updates),
    };
    let Some(Ok(OpResult::Stored { changed, failed })) = results.last() else {
        return super::failed(&results)
            .unwrap_or_else(|| Reply::no(None, "STORE failed"))
            .with_updates(updates);
    };
    let view = &mut core.selected().view;
    for (uid, modseq) in changed {
        view.note_modseq(*uid, *modseq);
    }
    let failed: HashSet<u32> = failed.iter().copied().collect();
    let changed: HashSet<u32> = changed.iter().map(|(uid, _)| *uid).collect();
    let reported: Vec<usize> = targets
        .iter()
        .filter(|target| !failed.contains(&target.uid))
        .filter(|target| !request.silent || (condstore && changed.contains(&target.uid)))
        .map(|target| target.index)
        .collect();
    let mut reported = view.current(&store, &reported);
    reported.retain(|current| !current.expunged);
    view.announce_keywords(reported.iter().map(|current| &current.message.flags), out);
    for current in reported {
        let mut items = Vec::new();
        if !request.silent {
            items.push(view.flags_item(current.index, &current.message.flags));
        }
        if request.uid || condstore {
            items.push(FetchData::Uid(
                NonZeroU32::new(current.uid).unwrap_or(NonZeroU32::MIN),
            ));
        }
        if condstore {
            if let Some(modseq) = NonZeroU64::new(current.message.modseq) {
                items.push(FetchData::ModSeq(modseq));
            }
        }
        Response::Data(Data::Fetch {
            sequence_number: MailboxView::sequence_number(current.index),
            items,
        })
        .encode(out);
    }
    // RFC 7162 §3.1.3: the messages that failed UNCHANGEDSINCE, by UID for UID STORE.
    let modified: Vec<u32> = targets
        .iter()
        .filter(|target| failed.contains(&target.uid))
        .map(|target| {
            if request.uid {
                target.uid
            } else {
                MailboxView::sequence_number(target.index).get()
            }
        })
        .collect();
    done(
        expunged,
        SequenceSet::from_values(&modified).map(Code::Modified),
        updates,
    )
}

fn done(expunged: bool, modified: Option<Code<'static>>, updates: Updates) -> Reply {
    if expunged {
        // RFC 2180 §4.2.1 / RFC 5530: some messages of the set are gone.
        return Reply::no(Some(Code::ExpungeIssued), "Some messages were expunged")
            .with_updates(updates);
    }
    Reply::Done {
        condition: Condition::Ok,
        code: modified,
        text: std::borrow::Cow::Borrowed("STORE completed"),
        updates,
    }
}
