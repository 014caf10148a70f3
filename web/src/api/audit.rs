//! `GET /api/v1/audit` (SPEC §11): the audit log, newest first, with filters.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{ApiError, ApiResult};
use crate::archive::parse_date;
use crate::audit::{search, AuditQuery};
use crate::{AppState, Scope};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditFilter {
    since: Option<String>,
    until: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    object: Option<String>,
    before: Option<u64>,
    limit: Option<usize>,
}

/// An entry as the API shows it.
pub(crate) fn entry_json(e: &lifeboat_store::AuditEntry) -> Value {
    let r = &e.record;
    json!({
        "id": e.id,
        "at": r.at,
        "actor": r.actor,
        "source": r.source,
        "action": r.action,
        "object": r.object,
        "domain": r.domain,
        "before": r.before,
        "after": r.after,
    })
}

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Query(f): Query<AuditFilter>,
) -> ApiResult {
    let date = |field: &str, value: Option<String>| {
        value
            .as_deref()
            .map(|d| parse_date(field, d))
            .transpose()
            .map_err(ApiError::bad)
    };
    let query = AuditQuery {
        since: date("since", f.since)?,
        until: date("until", f.until)?,
        actor: f.actor,
        action: f.action,
        object: f.object,
        before: f.before,
        limit: f.limit.unwrap_or(100),
    };
    let (entries, _) = search(&state, &query, &Scope::All);
    Ok(Json(Value::Array(entries.iter().map(entry_json).collect())))
}
