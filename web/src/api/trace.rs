//! `GET /api/v1/trace?q=QUERY[&since=DATE]` (SPEC §11): the life of each message a
//! Message-ID, an archive id or an address names, step by step.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use lifeboat_store::{ArchiveEntry, MessageTrace, TraceStep};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::api::{archive_json, ApiError, ApiResult};
use crate::archive::parse_date;
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TraceFilter {
    q: Option<String>,
    since: Option<String>,
}

/// A step as the API shows it: when, the event's name, a line for people, and the
/// event's own fields.
fn step_json(step: &TraceStep) -> Value {
    let mut out = Map::new();
    out.insert("at".into(), json!(step.at));
    out.insert("event".into(), json!(step.event.name()));
    out.insert("detail".into(), json!(step.event.describe()));
    // The event serialises as `{"Variant": {fields}}`; its fields go beside the rest,
    // with the store's enum names in the API's lowercase.
    if let Ok(Value::Object(outer)) = serde_json::to_value(&step.event) {
        for (_, fields) in outer {
            if let Value::Object(fields) = fields {
                for (k, v) in fields {
                    let v = if ENUM_FIELDS.contains(&k.as_str()) {
                        lowercase_names(v)
                    } else {
                        v
                    };
                    out.entry(k).or_insert(v);
                }
            }
        }
    }
    Value::Object(out)
}

/// The fields of trace events that hold the store's enums (a folder's name, which may
/// be a capitalised word too, is not one of them).
const ENUM_FIELDS: [&str; 4] = ["protocol", "direction", "modes", "destination"];

/// `"Imap"` → `"imap"`, `{"Upstream": "a.test"}` → `{"upstream": "a.test"}`, inside
/// arrays too (the modes' `[domain, "Emergency"]`); domain names are lowercase
/// already.
fn lowercase_names(v: Value) -> Value {
    let is_name = |s: &str| {
        s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && s.chars().all(|c| c.is_ascii_alphanumeric())
    };
    match v {
        Value::String(s) if is_name(&s) => Value::String(s.to_ascii_lowercase()),
        Value::Array(items) => Value::Array(items.into_iter().map(lowercase_names).collect()),
        Value::Object(map) if map.len() == 1 => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let k = if is_name(&k) {
                        k.to_ascii_lowercase()
                    } else {
                        k
                    };
                    (k, v)
                })
                .collect(),
        ),
        other => other,
    }
}

/// One message and its trace.
pub(crate) fn message_json(entry: &ArchiveEntry, trace: Option<&MessageTrace>) -> Value {
    let steps: Vec<Value> = trace
        .map(|t| t.steps().iter().map(step_json).collect())
        .unwrap_or_default();
    json!({
        "archive": archive_json(entry),
        "traced": trace.is_some(),
        "omitted": trace.map_or(0, |t| t.omitted),
        "steps": steps,
    })
}

pub(crate) async fn trace(
    State(state): State<Arc<AppState>>,
    Query(f): Query<TraceFilter>,
) -> ApiResult {
    let query = f
        .q
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| ApiError::bad("q: a Message-ID, an archive id or an address is required"))?;
    let since = f
        .since
        .as_deref()
        .map(|d| parse_date("since", d))
        .transpose()
        .map_err(ApiError::bad)?;
    // A scan of the archive: off the request thread, like an archive search.
    let store = state.store.clone();
    let messages: Vec<Value> = tokio::task::spawn_blocking(move || {
        store.read(|s| {
            s.find_traced(&query, since)
                .into_iter()
                .rev()
                .map(|(entry, trace)| message_json(entry, trace))
                .collect()
        })
    })
    .await
    .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(Value::Array(messages)))
}
