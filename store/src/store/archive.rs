//! Archive search by scan, and retention.

use super::{Batch, Store};
use crate::address::Address;
use crate::model::*;
use crate::text::{archive_text, TextQuery};
use crate::Result;

/// Archive entries removed per retention batch.
const EXPIRE_BATCH_MAX: usize = 10_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// An archive search. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct ArchiveQuery {
    /// Substring of the From header or envelope sender (case-insensitive).
    pub from: Option<String>,
    /// Substring of To/Cc or an envelope recipient (case-insensitive).
    pub to: Option<String>,
    /// Substring of the subject (case-insensitive).
    pub subject: Option<String>,
    /// Words of the message's text: headers and decoded body (see [`crate::text`]).
    pub text: Option<String>,
    /// Accepted at or after.
    pub since: Option<UnixTime>,
    /// Accepted before.
    pub until: Option<UnixTime>,
    /// Direction.
    pub direction: Option<Direction>,
    /// Only mail this address sent or received (envelope); how users search.
    pub participant: Option<String>,
    /// Only mail of these domains (envelope); how domain admins search.
    pub domains: Option<Vec<String>>,
    /// Most results (newest first); 0 means 100.
    pub limit: usize,
}

impl ArchiveQuery {
    /// The most results it asks for (100 when `limit` is 0).
    pub fn limit_or_default(&self) -> usize {
        if self.limit == 0 {
            100
        } else {
            self.limit
        }
    }
}

/// An [`ArchiveQuery`]'s conditions other than `text`, ready to test entries.
pub(crate) struct ArchiveFilter<'q> {
    query: &'q ArchiveQuery,
    from: Option<String>,
    to: Option<String>,
    subject: Option<String>,
    participant: Option<String>,
}

impl<'q> ArchiveFilter<'q> {
    pub(crate) fn new(query: &'q ArchiveQuery) -> ArchiveFilter<'q> {
        let lower = |s: &Option<String>| s.as_ref().map(|s| s.to_lowercase());
        ArchiveFilter {
            query,
            from: lower(&query.from),
            to: lower(&query.to),
            subject: lower(&query.subject),
            participant: lower(&query.participant),
        }
    }

    pub(crate) fn matches(&self, e: &ArchiveEntry) -> bool {
        let q = self.query;
        let contains = |hay: &str, needle: &str| hay.to_lowercase().contains(needle);
        q.direction.is_none_or(|d| e.direction == d)
            && q.since.is_none_or(|t| e.date >= t)
            && q.until.is_none_or(|t| e.date < t)
            && self
                .from
                .as_deref()
                .is_none_or(|f| contains(&e.headers.from, f) || contains(&e.mail_from, f))
            && self.to.as_deref().is_none_or(|t| {
                contains(&e.headers.to, t)
                    || contains(&e.headers.cc, t)
                    || e.rcpt_to.iter().any(|r| contains(r, t))
            })
            && self
                .subject
                .as_deref()
                .is_none_or(|s| contains(&e.headers.subject, s))
            && self.participant.as_deref().is_none_or(|p| {
                e.mail_from.to_lowercase() == p || e.rcpt_to.iter().any(|r| r.to_lowercase() == p)
            })
            && q.domains.as_ref().is_none_or(|domains| {
                std::iter::once(&e.mail_from)
                    .chain(e.rcpt_to.iter())
                    .any(|a| {
                        domains
                            .iter()
                            .any(|d| Address::domain_of(a).eq_ignore_ascii_case(d))
                    })
            })
    }
}

impl Store {
    /// Archive entries matching `query`, newest first, by a scan of the archive (an
    /// [`crate::ArchiveIndex`] answers text searches faster). `query.text` matches as
    /// [`crate::text`] defines.
    pub fn archive_search(&self, query: &ArchiveQuery) -> Vec<ArchiveEntry> {
        let words = query.text.as_deref().and_then(TextQuery::new);
        self.scan_archive(query, words.as_ref(), 0)
    }

    /// [`Store::archive_search`] over the entries with an id above `above`, with the
    /// query's words already split.
    pub(crate) fn scan_archive(
        &self,
        query: &ArchiveQuery,
        words: Option<&TextQuery>,
        above: u64,
    ) -> Vec<ArchiveEntry> {
        let limit = query.limit_or_default();
        let filter = ArchiveFilter::new(query);
        let Some(words) = words else {
            return self.read(|state| {
                state
                    .archive_above(ArchiveId(above))
                    .rev()
                    .filter(|e| filter.matches(e))
                    .take(limit)
                    .cloned()
                    .collect()
            });
        };
        // Only ids under the lock; each body is read and parsed outside it.
        let candidates: Vec<(ArchiveId, BodyId)> = self.read(|state| {
            state
                .archive_above(ArchiveId(above))
                .rev()
                .filter(|e| filter.matches(e))
                .map(|e| (e.id, e.body))
                .collect()
        });
        let mut analyzer = crate::text::analyzer();
        let mut hits = Vec::new();
        for (id, body) in candidates {
            let Ok(raw) = self.body(body) else {
                continue; // removed by retention meanwhile
            };
            let Some(entry) = self.read(|s| s.archive_entry(id).cloned()) else {
                continue;
            };
            if words.matches(&mut analyzer, &archive_text(&entry, &raw)) {
                hits.push(entry);
                if hits.len() >= limit {
                    break;
                }
            }
        }
        hits
    }

    /// Removes audit entries, mode transitions and message traces older than
    /// `retention_days` before `now` (SPEC §11: they are kept as long as the archive);
    /// returns how many.
    pub fn expire_history(&self, now: UnixTime, retention_days: u32) -> Result<usize> {
        let before = now - retention_days as i64 * SECONDS_PER_DAY;
        let expired =
            self.read(|s| s.journal().count_before(before) + s.traces().count_before(before));
        if expired > 0 {
            let mut batch = Batch::new();
            batch.push(Op::ExpireHistory { before });
            self.commit(batch)?;
            tracing::info!(
                removed = expired,
                retention_days,
                "audit log and mode history retention"
            );
        }
        Ok(expired)
    }

    /// Removes archive entries older than `retention_days` before `now`; returns how
    /// many. Their bodies become garbage once nothing else refers to them.
    pub fn expire_archive(&self, now: UnixTime, retention_days: u32) -> Result<usize> {
        let cutoff = now - retention_days as i64 * SECONDS_PER_DAY;
        let expired: Vec<ArchiveId> = self.read(|s| {
            s.archive()
                .filter(|e| e.date < cutoff)
                .map(|e| e.id)
                .collect()
        });
        for chunk in expired.chunks(EXPIRE_BATCH_MAX) {
            let mut batch = Batch::new();
            batch.push(Op::Unarchive(chunk.to_vec()));
            self.commit(batch)?;
        }
        if !expired.is_empty() {
            tracing::info!(removed = expired.len(), retention_days, "archive retention");
        }
        Ok(expired.len())
    }
}
