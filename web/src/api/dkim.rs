//! `GET` and `POST /api/v1/domains/{name}/dkim` (SPEC §12): a domain's DKIM keys,
//! the DNS records to publish, and the requests that make, enable, disable and
//! rotate them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use lifeboat_smtp::dkim::dns_record;
use lifeboat_store::{DkimAlgorithm, DkimKey, DomainDkim};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::admin::{self, Actor, DkimRequest};
use crate::api::{parse, ApiError, ApiResult};
use crate::{AppState, ClientIp};

/// The name of an algorithm in signatures (`a=`).
pub(crate) fn algorithm_str(a: DkimAlgorithm) -> &'static str {
    match a {
        DkimAlgorithm::Ed25519Sha256 => "ed25519-sha256",
        DkimAlgorithm::RsaSha256 => "rsa-sha256",
    }
}

fn key_json(domain: &str, key: &DkimKey) -> Value {
    let record = dns_record(domain, key);
    json!({
        "selector": key.selector,
        "algorithm": algorithm_str(key.algorithm),
        "created": key.created,
        "record": {
            "name": record.name,
            "type": "TXT",
            "value": record.value,
            "zone": record.zone_line(),
        },
    })
}

/// A domain's DKIM state as the API shows it: never a private key.
pub(crate) fn dkim_json(domain: &str, dkim: &DomainDkim) -> Value {
    json!({
        "domain": domain,
        "signing": dkim.enabled,
        "keys": dkim.keys.iter().map(|k| key_json(domain, k)).collect::<Vec<_>>(),
        "retired": dkim.retired.iter().map(|k| key_json(domain, k)).collect::<Vec<_>>(),
    })
}

pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult {
    let domain = admin::find_domain(&state, &name)?;
    let dkim = state
        .store
        .read(|s| s.dkim(&domain.name).cloned())
        .unwrap_or_default();
    Ok(Json(dkim_json(&domain.name, &dkim)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    action: Option<String>,
}

pub(crate) async fn change(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let req: Change = if body.is_empty() {
        Change { action: None }
    } else {
        parse(&body)?
    };
    let action = req.action.as_deref().unwrap_or("keys");
    let Some(request) = DkimRequest::parse(action) else {
        return Err(ApiError::bad(format!(
            "action must be \"keys\", \"enable\", \"disable\" or \"rotate\", not {action:?}"
        )));
    };
    let domain = admin::find_domain(&state, &name)?;
    let dkim = admin::dkim(&state, &Actor::token(ip), &domain, request).await?;
    Ok(Json(dkim_json(&domain.name, &dkim)))
}
