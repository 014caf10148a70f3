//! APPEND — RFC 3501 §6.3.11 with APPENDUID (RFC 4315 §3). The OK is written only
//! after the store has made the message durable.

use std::borrow::Cow;
use std::num::NonZeroU32;

use lifeboat_store::{Batch, MessageData, Op, OpResult};

use super::super::archive;
use super::super::flags::{self, FlagError};
use super::super::{Core, Reply};
use crate::parse::Reason;
use crate::types::{AppendForm, Code, DateTime, Flag, Mailbox, SequenceSet};

pub(crate) async fn run(
    core: &mut Core,
    mailbox: &Mailbox<'_>,
    flags: &[Flag<'_>],
    date: Option<DateTime>,
    message: Cow<'_, [u8]>,
    // Stored as sent whichever way it came: a literal8 (RFC 3516 §4.4) may hold NUL
    // and binary parts, a UTF8 one (RFC 6855 §4) UTF-8 header fields.
    _form: AppendForm,
) -> Reply {
    // RFC 3501 §6.3.11: a missing destination is answered with TRYCREATE.
    match super::store_name(core, mailbox) {
        Ok(name) if archive::is_archive_name(&name) => return super::archive_read_only(),
        Ok(_) => {}
        Err(reply) => return reply,
    }
    let folder = match super::folder_of(core, mailbox) {
        Ok((folder, _)) => folder,
        Err(_) => return Reply::no(Some(Code::TryCreate), "No such mailbox"),
    };
    let message: MessageData = match core.literal_spill.take() {
        None if message.is_empty() => return Reply::no(None, "Empty message"),
        None => message.into_owned().into(),
        Some(Ok(spill)) if message.is_empty() && !spill.is_empty() => spill.into(),
        // The literal spilled was another of the command's (its mailbox name).
        Some(Ok(_)) => return Reply::no(Some(Code::Limit), Reason::Busy.text()),
        Some(Err(error)) if lifeboat_store::io::is_no_space(&error) => {
            tracing::warn!(%error, "imap: APPEND's spill file found the disk full");
            return Reply::no(Some(Code::OverQuota), "Not enough disk space");
        }
        Some(Err(error)) => {
            tracing::error!(%error, "imap: writing APPEND's spill file failed");
            return Reply::no(
                Some(Code::ServerBug),
                "The message could not be kept; try again",
            );
        }
    };
    let flags = match flags::to_store(flags) {
        Ok(flags) => flags,
        Err(FlagError::UnknownSystemFlag) => return Reply::bad("Invalid system flag"),
        Err(FlagError::TooMany) => {
            return Reply::no(Some(Code::Limit), "Too many or too long keywords")
        }
    };
    let internal_date = date.map_or_else(core.config.clock, DateTime::to_unix_seconds);
    let mut batch = Batch::new();
    let body = batch.put_body(message);
    batch.push(Op::Append {
        folder,
        body,
        flags,
        internal_date,
    });
    let results = match core.commit(batch).await {
        Ok(results) => results,
        Err(reply) => return reply,
    };
    match results.last() {
        Some(Ok(OpResult::Appended { uidvalidity, uid })) => {
            match (NonZeroU32::new(*uidvalidity), NonZeroU32::new(*uid)) {
                (Some(uid_validity), Some(uid)) => Reply::ok_code(
                    Code::AppendUid {
                        uid_validity,
                        uids: SequenceSet::single(uid),
                    },
                    "APPEND completed",
                ),
                _ => Reply::ok("APPEND completed"),
            }
        }
        Some(Err(error)) => Reply::no(None, error.to_string()),
        _ => Reply::no(Some(Code::ServerBug), "APPEND failed"),
    }
}
