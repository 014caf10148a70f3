//! COPY — RFC 3501 §6.4.7 — and MOVE — RFC 6851 — with COPYUID (RFC 4315 §3). MOVE
//! sends COPYUID in an untagged OK before the EXPUNGE responses (RFC 6851 §4.3).
//! Moving a message out of INBOX cancels its drain entry in the store (SPEC §1).

use lifeboat_store::{Batch, BodyRef, FolderId, Op, OpResult, Protocol, TraceNote};

use super::super::view::{Body, Current};
use super::super::{text_of, Core, Reply, Updates};
use crate::types::{Code, Condition, Mailbox, Response, SequenceSet, Status};

pub(crate) async fn run(
    core: &mut Core,
    uid: bool,
    set: &SequenceSet,
    mailbox: &Mailbox<'_>,
    moving: bool,
    out: &mut Vec<u8>,
) -> Reply {
    let store = core.store.clone();
    let target = super::folder_of(core, mailbox);
    let view = &core.selected().view;
    if set.is_saved() && view.saved.is_none() {
        return Reply::no(Some(Code::NotSaved), "No search result saved");
    }
    let indices = if uid {
        view.resolve_uid_set(set)
    } else {
        match view.resolve_sequence_set(set) {
            Ok(indices) => indices,
            Err(_) => return Reply::bad("Invalid sequence number"),
        }
    };
    if moving && view.folder().is_none() {
        return super::archive_read_only();
    }
    if moving && view.read_only {
        return Reply::no(Some(Code::ReadOnly), "Mailbox is read-only");
    }
    let target = match target {
        Ok((target, _)) => target,
        // Into the archive: refused with its reason.
        Err(
            reply @ Reply::Done {
                code: Some(Code::Cannot),
                ..
            },
        ) => return reply,
        // RFC 3501 §6.4.7: a missing destination is answered with TRYCREATE.
        Err(_) => return Reply::no(Some(Code::TryCreate), "No such mailbox"),
    };
    let mut current = view.current(&store, &indices);
    // RFC 2180 §4.4: COPY of a message expunged meanwhile fails.
    let expunged = !uid && (current.len() < indices.len() || current.iter().any(|c| c.expunged));
    current.retain(|current| !current.expunged);
    let uids: Vec<u32> = current.iter().map(|current| current.uid).collect();
    if uids.is_empty() {
        return if expunged {
            Reply::no(Some(Code::ExpungeIssued), "Messages were expunged")
        } else {
            Reply::ok(if moving {
                "MOVE completed"
            } else {
                "COPY completed"
            })
        };
    }
    let Some(from) = view.folder() else {
        // Out of the archive: the archived bodies go into the folder.
        return copy_archived(core, &current, target).await;
    };
    let mut batch = Batch::new();
    batch.push(Op::Trace(TraceNote::Via(Protocol::Imap)));
    batch.push(if moving {
        Op::Move {
            from,
            uids,
            to: target,
        }
    } else {
        Op::Copy {
            from,
            uids,
            to: target,
        }
    });
    let results = match core.commit(batch).await {
        Ok(results) => results,
        Err(reply) => return reply,
    };
    let Some(Ok(OpResult::Copied { uidvalidity, pairs })) = results.last() else {
        return super::failed(&results).unwrap_or_else(|| Reply::no(None, "Copy failed"));
    };
    let source: Vec<u32> = pairs.iter().map(|(source, _)| *source).collect();
    let destination: Vec<u32> = pairs.iter().map(|(_, destination)| *destination).collect();
    let code = match (
        std::num::NonZeroU32::new(*uidvalidity),
        SequenceSet::from_values(&source),
        SequenceSet::from_values(&destination),
    ) {
        (Some(uid_validity), Some(source), Some(destination)) => Some(Code::CopyUid {
            uid_validity,
            source,
            destination,
        }),
        _ => None,
    };
    if moving {
        if let Some(code) = code {
            Response::Status(Status::untagged(
                Condition::Ok,
                Some(code),
                text_of("Moved".to_string()),
            ))
            .encode(out);
        }
        return Reply::ok("MOVE completed").with_updates(Updates::All);
    }
    Reply::Done {
        condition: Condition::Ok,
        code,
        text: std::borrow::Cow::Borrowed("COPY completed"),
        updates: Updates::All,
    }
}

/// COPY out of an archive month: each message appended to `target` with its body
/// (`COPYUID` as for any COPY, RFC 4315 §3).
async fn copy_archived(core: &mut Core, messages: &[Current], target: FolderId) -> Reply {
    let mut batch = Batch::new();
    for current in messages {
        let Body::Stored(body, _) = current.body else {
            continue;
        };
        batch.push(Op::Append {
            folder: target,
            body: BodyRef::Stored(body),
            flags: current.message.flags.clone(),
            internal_date: current.message.internal_date,
        });
    }
    let results = match core.commit(batch).await {
        Ok(results) => results,
        Err(reply) => return reply,
    };
    let mut pairs = Vec::new();
    let mut uidvalidity = 0;
    for (current, result) in messages.iter().zip(&results) {
        if let Ok(OpResult::Appended {
            uidvalidity: validity,
            uid,
        }) = result
        {
            uidvalidity = *validity;
            pairs.push((current.uid, *uid));
        }
    }
    if pairs.len() < messages.len() {
        return super::failed(&results).unwrap_or_else(|| Reply::no(None, "Copy failed"));
    }
    let source: Vec<u32> = pairs.iter().map(|(source, _)| *source).collect();
    let destination: Vec<u32> = pairs.iter().map(|(_, destination)| *destination).collect();
    let code = match (
        std::num::NonZeroU32::new(uidvalidity),
        SequenceSet::from_values(&source),
        SequenceSet::from_values(&destination),
    ) {
        (Some(uid_validity), Some(source), Some(destination)) => Some(Code::CopyUid {
            uid_validity,
            source,
            destination,
        }),
        _ => None,
    };
    Reply::Done {
        condition: Condition::Ok,
        code,
        text: std::borrow::Cow::Borrowed("COPY completed"),
        updates: Updates::All,
    }
}
