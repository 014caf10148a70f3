//! The maildrop of one TRANSACTION state: the messages of the account's INBOX as they
//! were at login, numbered from 1 (RFC 1939 §5), with this session's deletion marks.
//!
//! Invariants:
//! - Message numbers never change during a session, and a message marked deleted keeps
//!   its number (RFC 1939 §5: "message numbers ... are not re-used").
//! - At most [`MAILDROP_MESSAGES_MAX`] messages, the oldest (lowest UIDs) first.
//! - Nothing here changes the store: marks become an expunge only in the UPDATE state.

use lifeboat_store::{BodyId, FolderId};

use crate::parse::MessageNumber;

/// Most messages one session sees; a larger INBOX shows its oldest messages first and
/// the rest after the client has deleted those. Keeps a session's memory and its
/// LIST and UIDL answers bounded.
pub const MAILDROP_MESSAGES_MAX: usize = 100_000;

/// One message of the maildrop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaildropMessage {
    /// The message's UID in the INBOX.
    pub uid: u32,
    /// Its body in the store.
    pub body: BodyId,
    /// Its size as POP3 sends it ([`crate::encode::message_size`]).
    pub size_bytes: u64,
    /// Whether it had `\Seen` at login.
    pub seen: bool,
}

/// The maildrop of a session; see the module documentation.
#[derive(Clone, Debug)]
pub struct Maildrop {
    account: String,
    folder: FolderId,
    uidvalidity: u32,
    messages: Vec<MaildropMessage>,
    deleted: Vec<bool>,
    retrieved: Vec<bool>,
}

impl Maildrop {
    /// The maildrop of `account`, whose INBOX is `folder`. `messages` in UID order;
    /// more than [`MAILDROP_MESSAGES_MAX`] are cut to the oldest.
    pub fn new(
        account: String,
        folder: FolderId,
        uidvalidity: u32,
        mut messages: Vec<MaildropMessage>,
    ) -> Maildrop {
        messages.truncate(MAILDROP_MESSAGES_MAX);
        let count = messages.len();
        Maildrop {
            account,
            folder,
            uidvalidity,
            messages,
            deleted: vec![false; count],
            retrieved: vec![false; count],
        }
    }

    /// The account's address.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The INBOX.
    pub fn folder(&self) -> FolderId {
        self.folder
    }

    /// The INBOX's UIDVALIDITY.
    pub fn uidvalidity(&self) -> u32 {
        self.uidvalidity
    }

    /// Every message, marked or not, in message-number order.
    pub fn messages(&self) -> &[MaildropMessage] {
        &self.messages
    }

    /// The message `number` unless it does not exist or is marked deleted.
    pub fn get(&self, number: MessageNumber) -> Option<&MaildropMessage> {
        let index = number.index();
        match self.deleted.get(index) {
            Some(false) => self.messages.get(index),
            _ => None,
        }
    }

    /// Whether `number` exists and is marked deleted.
    pub fn is_deleted(&self, number: MessageNumber) -> bool {
        self.deleted.get(number.index()) == Some(&true)
    }

    /// The messages not marked deleted, with their numbers.
    pub fn live(&self) -> impl Iterator<Item = (MessageNumber, &MaildropMessage)> {
        self.messages
            .iter()
            .zip(&self.deleted)
            .enumerate()
            .filter(|(_, (_, deleted))| !**deleted)
            .map(|(index, (message, _))| (number_of(index), message))
    }

    /// Count and total size of the messages not marked deleted (RFC 1939 §5 STAT).
    pub fn stat(&self) -> (usize, u64) {
        self.live().fold((0, 0), |(count, size), (_, m)| {
            (count + 1, size + m.size_bytes)
        })
    }

    /// Marks a message deleted; false if it does not exist or already is.
    pub fn delete(&mut self, number: MessageNumber) -> bool {
        match self.deleted.get_mut(number.index()) {
            Some(deleted) if !*deleted => {
                *deleted = true;
                true
            }
            _ => false,
        }
    }

    /// Notes that a message was retrieved in full, to be marked `\Seen` at QUIT.
    pub fn retrieved(&mut self, number: MessageNumber) {
        if let Some(retrieved) = self.retrieved.get_mut(number.index()) {
            *retrieved = true;
        }
    }

    /// Unmarks every message (RFC 1939 §5 RSET).
    pub fn reset(&mut self) {
        self.deleted.fill(false);
    }

    /// The UIDs marked deleted, ascending.
    pub fn deleted_uids(&self) -> Vec<u32> {
        self.messages
            .iter()
            .zip(&self.deleted)
            .filter(|(_, deleted)| **deleted)
            .map(|(m, _)| m.uid)
            .collect()
    }

    /// The UIDs retrieved in full, not marked deleted and not `\Seen` at login.
    pub fn newly_seen_uids(&self) -> Vec<u32> {
        self.messages
            .iter()
            .zip(self.deleted.iter().zip(&self.retrieved))
            .filter(|(m, (deleted, retrieved))| **retrieved && !**deleted && !m.seen)
            .map(|(m, _)| m.uid)
            .collect()
    }

    /// The unique-id of a message: `uidvalidity.uid`, stable across sessions and
    /// restarts and the same identity IMAP gives the message (RFC 1939 §7: 1 to 70
    /// characters of 0x21 to 0x7E; at most 21 here).
    pub fn unique_id(&self, message: &MaildropMessage) -> String {
        format!("{}.{}", self.uidvalidity, message.uid)
    }
}

/// The number of the message at `index` (the count is bounded by
/// [`MAILDROP_MESSAGES_MAX`], far below `u32::MAX`).
fn number_of(index: usize) -> MessageNumber {
    MessageNumber::try_from(index as u64 + 1).expect("index + 1 is a valid message number")
}
