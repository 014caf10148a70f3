//! `QUIT` (RFC 1939 §4, §6) and the UPDATE state.

use crate::encode::{self, ResponseCode};

use super::{messages, Effect, Session, State, Update, UpdateRequest};

impl Session {
    /// `QUIT` — RFC 1939 §4 (AUTHORIZATION: just close) and §6 (TRANSACTION: enter
    /// UPDATE and remove the messages marked deleted).
    pub(super) fn quit(&mut self, out: &mut Vec<u8>) -> Effect {
        let state = std::mem::replace(&mut self.state, State::Closed);
        let State::Transaction(transaction) = state else {
            encode::ok(out, "Bye");
            return Effect::Close;
        };
        let maildrop = transaction.maildrop;
        let expunge = maildrop.deleted_uids();
        let seen = maildrop.newly_seen_uids();
        if expunge.is_empty() && seen.is_empty() {
            encode::ok(out, "Bye");
            return Effect::Close;
        }
        self.state = State::Update(Update {
            deleted: expunge.len(),
        });
        Effect::Commit(UpdateRequest {
            account: maildrop.account().to_string(),
            folder: maildrop.folder(),
            expunge,
            seen,
        })
    }

    /// The answer to [`Effect::Commit`]: `Ok` once the changes are durable. The
    /// session ends either way (RFC 1939 §6).
    pub fn committed(&mut self, result: Result<(), ()>, out: &mut Vec<u8>) -> Effect {
        let deleted = match &self.state {
            State::Update(update) => update.deleted,
            _ => {
                debug_assert!(false, "commit answered outside UPDATE");
                0
            }
        };
        self.state = State::Closed;
        match result {
            Ok(()) if deleted == 0 => encode::ok(out, "Bye"),
            Ok(()) => encode::ok(out, &format!("Bye, {} deleted", messages(deleted))),
            // RFC 1939 §6: "-ERR some deleted messages not removed".
            Err(()) => encode::err(
                out,
                Some(ResponseCode::SysTemp),
                "Some deleted messages not removed",
            ),
        }
        Effect::Close
    }
}
