//! Reading the audit log (SPEC §11) for the API and the panel: filters, paging by id,
//! and what each role may read (an admin all of it, a domain admin their domain's).

use lifeboat_store::{AuditEntry, UnixTime};

use crate::Scope;

/// Most entries one page holds.
pub(crate) const AUDIT_RESULTS_MAX: usize = 1000;

/// Which entries to show. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditQuery {
    /// At or after.
    pub(crate) since: Option<UnixTime>,
    /// Before.
    pub(crate) until: Option<UnixTime>,
    /// Substring of the actor, case-insensitive.
    pub(crate) actor: Option<String>,
    /// The action (`domain.mode`), or every action of an object kind (`domain`).
    pub(crate) action: Option<String>,
    /// Substring of the object, case-insensitive.
    pub(crate) object: Option<String>,
    /// Only entries with an id below this (the next page, going back).
    pub(crate) before: Option<u64>,
    /// Most entries.
    pub(crate) limit: usize,
}

impl AuditQuery {
    fn matches(&self, e: &AuditEntry, actor: &Option<String>, object: &Option<String>) -> bool {
        let r = &e.record;
        self.since.is_none_or(|t| r.at >= t)
            && self.until.is_none_or(|t| r.at < t)
            && actor
                .as_deref()
                .is_none_or(|a| r.actor.to_lowercase().contains(a))
            && object
                .as_deref()
                .is_none_or(|o| r.object.to_lowercase().contains(o))
            && self.action.as_deref().is_none_or(|a| {
                r.action == a
                    || r.action
                        .strip_prefix(a)
                        .is_some_and(|rest| rest.starts_with('.'))
            })
    }
}

/// Whether `scope` may read an entry: admins all, domain admins their domain's.
fn readable(scope: &Scope, e: &AuditEntry) -> bool {
    match scope {
        Scope::All => true,
        Scope::Domain(d) => e
            .record
            .domain
            .as_deref()
            .is_some_and(|own| own.eq_ignore_ascii_case(d)),
        Scope::Address(_) => false,
    }
}

/// The entries `query` asks for that `scope` may read, newest first, and whether
/// there are more (older) ones.
pub(crate) fn search(
    state: &crate::AppState,
    query: &AuditQuery,
    scope: &Scope,
) -> (Vec<AuditEntry>, bool) {
    let limit = query.limit.clamp(1, AUDIT_RESULTS_MAX);
    let lower = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase)
    };
    let (actor, object) = (lower(&query.actor), lower(&query.object));
    state.store.read(|s| {
        let mut hits: Vec<AuditEntry> = s
            .journal()
            .audit_before(query.before.unwrap_or(u64::MAX))
            .filter(|e| readable(scope, e) && query.matches(e, &actor, &object))
            .take(limit + 1)
            .cloned()
            .collect();
        let more = hits.len() > limit;
        hits.truncate(limit);
        (hits, more)
    })
}
