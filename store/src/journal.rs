//! The store's administrative history: every transition of a domain's mode (the
//! dashboard's timeline) and the audit log of changes made through the API, the CLI
//! and the control panel (SPEC §11).
//!
//! Invariants:
//! - Both are built only by applying ops, like the rest of the state, so replay
//!   rebuilds them exactly. A mode transition is recorded when `Op::SetMode` changes a
//!   domain's mode or its forced hold, or `Op::PutDomain` creates a domain, whoever
//!   sent the op (the router, an admin, a test): the timeline does not depend on the
//!   caller remembering to write it.
//! - An audit entry is recorded by `Op::Audit` only when every op before it in its
//!   batch applied, so the log never describes a change that did not happen, and the
//!   entry is durable exactly when the change is (same batch, same fsync).
//! - Audit entries never hold a password, a hash or a token: callers write summaries
//!   (`password changed`), and the types carry no field for a secret.
//! - Entries leave only through `Op::ExpireHistory` (retention, oldest first) or, for
//!   one domain's timeline, when it holds more than [`MODE_CHANGES_PER_DOMAIN_MAX`].
//! - Checkpoints carry the journal after the state (see `store.rs`), so a checkpoint
//!   written before the journal existed still opens, with an empty journal.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::model::{Mode, UnixTime};

/// Most mode transitions kept per domain; older ones are dropped first. An upstream
/// flapping every few minutes for the whole retention period stays under it (flap
/// damping, SPEC §1, slows it further).
pub const MODE_CHANGES_PER_DOMAIN_MAX: usize = 10_000;

/// One change of a domain's mode or of its forced hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeChange {
    /// The domain.
    pub domain: String,
    /// The mode before; `None` when the domain was just created.
    pub from: Option<Mode>,
    /// The mode after.
    pub to: Mode,
    /// The mode an admin holds after the change (`None`: the router or the failover
    /// policy decides).
    pub forced: Option<Mode>,
    /// Why, as the op said.
    pub reason: String,
    /// When.
    pub at: UnixTime,
}

/// What an audit entry says: who changed what, from where, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Who: an account's address, or `admin token` for the API's token (the CLI).
    pub actor: String,
    /// The client address the change came from.
    pub source: String,
    /// What was done, as `object.verb`: `domain.add`, `account.password`, …
    pub action: String,
    /// What it was done to: a domain, an address, `archive 12`.
    pub object: String,
    /// The domain the object belongs to (domain admins see their domain's entries).
    pub domain: Option<String>,
    /// A summary of the object before the change (never a secret).
    pub before: Option<String>,
    /// A summary of the object after the change (never a secret).
    pub after: Option<String>,
    /// When.
    pub at: UnixTime,
}

/// An audit record with its id, which orders the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Assigned on apply; only grows.
    pub id: u64,
    /// The record.
    pub record: AuditRecord,
}

/// Mode transitions and the audit log.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Journal {
    last_audit_id: u64,
    /// Oldest first.
    audit: VecDeque<AuditEntry>,
    /// Per domain, oldest first.
    modes: BTreeMap<String, VecDeque<ModeChange>>,
}

impl Journal {
    pub(crate) fn record_mode(&mut self, change: ModeChange) {
        let changes = self.modes.entry(change.domain.clone()).or_default();
        changes.push_back(change);
        while changes.len() > MODE_CHANGES_PER_DOMAIN_MAX {
            changes.pop_front();
        }
    }

    pub(crate) fn record_audit(&mut self, record: AuditRecord) -> u64 {
        self.last_audit_id += 1;
        self.audit.push_back(AuditEntry {
            id: self.last_audit_id,
            record,
        });
        self.last_audit_id
    }

    /// Removes what happened before `before`; returns how many entries went. Times
    /// come from the ops, so they are only nearly in order: every entry is looked at.
    pub(crate) fn expire(&mut self, before: UnixTime) -> usize {
        let count = self.count_before(before);
        self.audit.retain(|e| e.record.at >= before);
        self.modes.retain(|_, changes| {
            changes.retain(|c| c.at >= before);
            !changes.is_empty()
        });
        count
    }

    /// How many entries happened before `before` (what expiring at `before` would remove).
    pub fn count_before(&self, before: UnixTime) -> usize {
        let audit = self.audit.iter().filter(|e| e.record.at < before).count();
        let modes: usize = self
            .modes
            .values()
            .map(|c| c.iter().filter(|c| c.at < before).count())
            .sum();
        audit + modes
    }

    /// A domain's mode transitions, newest first, at most `limit`.
    pub fn mode_history(&self, domain: &str, limit: usize) -> Vec<&ModeChange> {
        self.modes
            .get(&domain.to_ascii_lowercase())
            .map(|changes| changes.iter().rev().take(limit).collect())
            .unwrap_or_default()
    }

    /// The audit log, oldest first.
    pub fn audit(&self) -> impl DoubleEndedIterator<Item = &AuditEntry> + ExactSizeIterator {
        self.audit.iter()
    }

    /// The audit entries with an id below `id`, newest first (for paging back).
    pub fn audit_before(&self, id: u64) -> impl Iterator<Item = &AuditEntry> {
        // Ids grow along the deque, so the entries below `id` are a prefix of it.
        let end = self.audit.partition_point(|e| e.id < id);
        self.audit.range(..end).rev()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(at: UnixTime) -> AuditRecord {
        AuditRecord {
            actor: "admin token".into(),
            source: "127.0.0.1".into(),
            action: "domain.add".into(),
            object: "example.test".into(),
            domain: Some("example.test".into()),
            before: None,
            after: Some("upstream=mx:25".into()),
            at,
        }
    }

    fn change(domain: &str, at: UnixTime) -> ModeChange {
        ModeChange {
            domain: domain.into(),
            from: Some(Mode::Normal),
            to: Mode::Emergency,
            forced: None,
            reason: "upstream down".into(),
            at,
        }
    }

    #[test]
    fn expiry_removes_only_older_entries() {
        let mut journal = Journal::default();
        for at in [10, 20, 30] {
            journal.record_audit(record(at));
            journal.record_mode(change("a.test", at));
        }
        journal.record_mode(change("b.test", 5));
        assert_eq!(journal.count_before(20), 3);
        assert_eq!(journal.expire(20), 3);
        assert_eq!(journal.count_before(20), 0);
        let left: Vec<u64> = journal.audit().map(|e| e.id).collect();
        assert_eq!(left, vec![2, 3]);
        assert_eq!(journal.mode_history("a.test", 10).len(), 2);
        assert!(journal.mode_history("b.test", 10).is_empty());
    }

    #[test]
    fn ids_keep_growing_and_page_backwards() {
        let mut journal = Journal::default();
        for at in 0..5 {
            journal.record_audit(record(at));
        }
        journal.expire(2);
        assert_eq!(journal.record_audit(record(9)), 6);
        let page: Vec<u64> = journal.audit_before(5).map(|e| e.id).collect();
        assert_eq!(page, vec![4, 3]);
        let all: Vec<u64> = journal.audit_before(u64::MAX).map(|e| e.id).collect();
        assert_eq!(all, vec![6, 5, 4, 3]);
    }

    #[test]
    fn a_domain_keeps_at_most_its_limit_of_transitions() {
        let mut journal = Journal::default();
        for at in 0..(MODE_CHANGES_PER_DOMAIN_MAX as i64 + 3) {
            journal.record_mode(change("a.test", at));
        }
        let history = journal.mode_history("A.test", usize::MAX);
        assert_eq!(history.len(), MODE_CHANGES_PER_DOMAIN_MAX);
        assert_eq!(history[0].at, MODE_CHANGES_PER_DOMAIN_MAX as i64 + 2);
        assert_eq!(history.last().unwrap().at, 3);
    }
}
