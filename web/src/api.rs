//! The admin API, version 1 (docs/api.md): domains, accounts, passwords, mode
//! switches and status, JSON in and out, token auth.
//!
//! Every error is `{"error": "..."}` with the status code that fits: 400 for bad
//! input (the message names the field), 401 without a valid token, 404 for an unknown
//! domain or account, 409 for a conflict, 500 when the store fails.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use lifeboat_store::password::hash_password;
use lifeboat_store::*;
use mail_parser::MimeHeaders;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{AppState, Scope};

type Shared = Arc<AppState>;

/// An API error: status code and message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
    fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        tracing::error!("store: {e}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

pub(crate) type ApiResult<T = Json<Value>> = Result<T, ApiError>;

/// The API's routes.
pub fn router(state: Shared) -> Router {
    let api = Router::new()
        .route("/status", get(status))
        .route("/domains", get(list_domains).post(add_domain))
        .route(
            "/domains/{name}",
            get(get_domain).patch(set_domain).delete(delete_domain),
        )
        .route("/domains/{name}/mode", put(set_mode))
        .route("/accounts", get(list_accounts).post(add_account))
        .route(
            "/accounts/{address}",
            get(get_account)
                .patch(update_account)
                .delete(delete_account),
        )
        .route("/accounts/{address}/password", put(set_password))
        .route("/metrics", get(metrics))
        .route("/archive", get(search_archive))
        .route("/archive/{id}", get(show_archive))
        .route(
            "/archive/{id}/redeliver",
            axum::routing::post(redeliver_archive),
        )
        .fallback(|| async { ApiError::not_found("no such API endpoint") })
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    Router::new()
        .nest("/api/v1/me", crate::user::routes(state.clone()))
        .nest("/api/v1/password-reset", crate::reset::routes())
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// Liveness for monitors: `ok`, or 503 with the reason when the store refuses writes
/// (a failed write or fsync: the server must be restarted, SPEC §3).
async fn healthz(State(state): State<Shared>) -> Response {
    match state.store.poisoned() {
        None => "ok\n".into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store refuses writes, restart required: {why}\n"),
        )
            .into_response(),
    }
}

/// Compares in time independent of where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_admin(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if same(token.as_bytes(), state.token.as_bytes()) => next.run(request).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "invalid admin token").into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing admin token: send `Authorization: Bearer <token>` (see DATA_DIR/admin.token)",
        )
        .into_response(),
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))
}

/// The op's outcome, or the error it reported, mapped to a status code.
fn applied(results: Vec<OpResult>) -> ApiResult<Vec<OpResult>> {
    for r in &results {
        if let OpResult::Failed(message) = r {
            let status = if message.starts_with("no ") {
                StatusCode::NOT_FOUND
            } else if message.contains("already exists") || message.contains("still has") {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_REQUEST
            };
            return Err(ApiError::new(status, message.clone()));
        }
    }
    Ok(results)
}

async fn commit(state: &AppState, ops: Vec<Op>) -> ApiResult<Vec<OpResult>> {
    let mut batch = Batch::new();
    for op in ops {
        batch.push(op);
    }
    applied(state.store.commit_async(batch).await?)
}

// ---- Validation ----------------------------------------------------------------

/// A domain name: lowercase LDH labels, 1–253 bytes.
pub fn valid_domain(name: &str) -> Result<String, String> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(name)
    } else {
        Err(format!("`{name}` is not a valid domain name"))
    }
}

/// `host:port`.
pub fn valid_upstream(upstream: &str) -> Result<String, String> {
    let valid = upstream.rsplit_once(':').is_some_and(|(host, port)| {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (host.parse::<std::net::IpAddr>().is_ok() || valid_domain(host).is_ok())
            && port.parse::<u16>().is_ok_and(|p| p > 0)
    });
    if valid {
        Ok(upstream.to_string())
    } else {
        Err(format!("upstream `{upstream}` must be HOST:PORT"))
    }
}

/// An address `local@domain`; returns it normalised.
pub fn valid_address(address: &str) -> Result<String, String> {
    let address = address.trim();
    let (local, domain) = address
        .rsplit_once('@')
        .ok_or_else(|| format!("`{address}` is not an address (local@domain)"))?;
    if local.is_empty()
        || local.len() > 64
        || local.bytes().any(|b| b <= b' ' || b == b'@' || b == 0x7f)
    {
        return Err(format!("`{address}` has an invalid local part"));
    }
    let domain = valid_domain(domain)?;
    Ok(format!("{local}@{domain}"))
}

fn parse_coverage(s: &str) -> ApiResult<Coverage> {
    match s {
        "all" => Ok(Coverage::All),
        "selected" => Ok(Coverage::Selected),
        _ => Err(ApiError::bad(format!(
            "coverage must be \"all\" or \"selected\", not {s:?}"
        ))),
    }
}

fn parse_failover(s: &str) -> ApiResult<Failover> {
    match s {
        "auto" => Ok(Failover::Auto),
        "manual" => Ok(Failover::Manual),
        _ => Err(ApiError::bad(format!(
            "failover must be \"auto\" or \"manual\", not {s:?}"
        ))),
    }
}

fn parse_role(s: &str) -> ApiResult<Role> {
    match s {
        "user" => Ok(Role::User),
        "domain-admin" => Ok(Role::DomainAdmin),
        "admin" => Ok(Role::Admin),
        _ => Err(ApiError::bad(format!(
            "role must be \"user\", \"domain-admin\" or \"admin\", not {s:?}"
        ))),
    }
}

fn coverage_str(c: Coverage) -> &'static str {
    match c {
        Coverage::All => "all",
        Coverage::Selected => "selected",
    }
}

fn failover_str(f: Failover) -> &'static str {
    match f {
        Failover::Auto => "auto",
        Failover::Manual => "manual",
    }
}

fn role_str(r: Role) -> &'static str {
    match r {
        Role::User => "user",
        Role::DomainAdmin => "domain-admin",
        Role::Admin => "admin",
    }
}

fn domain_json(d: &Domain) -> Value {
    json!({
        "name": d.name,
        "upstream": d.upstream,
        "coverage": coverage_str(d.coverage),
        "failover": failover_str(d.failover),
        "mode": d.mode.as_str(),
        "forced": d.forced.map(Mode::as_str),
        "mode_since": d.mode_since,
        "mode_reason": d.mode_reason,
    })
}

fn account_json(a: &Account) -> Value {
    json!({
        "address": a.address,
        "role": role_str(a.role),
        "covered": a.covered,
        "recovery": a.recovery,
    })
}

// ---- Handlers ------------------------------------------------------------------

async fn status(State(state): State<Shared>) -> ApiResult {
    let stats = state.store.stats();
    let domains: Vec<Value> = state.store.read(|s| {
        let mut queue_depth: BTreeMap<&str, usize> = BTreeMap::new();
        for entry in s.queue() {
            *queue_depth
                .entry(address_domain(&entry.recipient))
                .or_default() += 1;
        }
        s.domains()
            .map(|d| {
                let accounts: Vec<&Account> = s.accounts(Some(&d.name)).collect();
                let portal_inbox: usize = accounts
                    .iter()
                    .filter_map(|a| s.folder_by_name(&a.address, INBOX))
                    .map(|f| f.messages.len())
                    .sum();
                let mut v = domain_json(d);
                v["accounts"] = json!(accounts.len());
                v["queue_depth"] = json!(queue_depth.get(d.name.as_str()).copied().unwrap_or(0));
                v["portal_inbox_messages"] = json!(portal_inbox);
                let (health, since) = state
                    .status
                    .as_ref()
                    .map(|st| st.upstream_health(&d.upstream))
                    .unwrap_or_else(|| ("unknown".to_string(), 0));
                v["upstream_health"] = json!(health);
                v["upstream_health_since"] = json!(since);
                v
            })
            .collect()
    });
    let counters: serde_json::Map<String, Value> = state
        .status
        .as_ref()
        .map(|st| st.counters())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "counters": counters,
        "uptime_seconds": state.started.elapsed().as_secs(),
        "io_backend": state.io_backend,
        "domains": domains,
        "store": {
            "segments": stats.segments,
            "log_bytes": stats.log_bytes,
            "live_body_bytes": stats.live_body_bytes,
            "batches": stats.batches,
            "group_commits": stats.groups,
            "poisoned": state.store.poisoned(),
        },
        "archive_index": archive_index_lag(&state).map(|(indexed, pending)| json!({
            "indexed_through": indexed,
            "pending": pending,
        })),
    })))
}

/// The archive index's progress: the newest archive id it covers, and how many
/// archived messages it does not cover yet. `None` without an index.
fn archive_index_lag(state: &AppState) -> Option<(u64, u64)> {
    let indexed = state.archive_index.as_ref()?.indexed();
    let pending = state
        .store
        .read(|s| s.archive_above(ArchiveId(indexed)).count());
    Some((indexed, pending as u64))
}

/// Prometheus text format: relay counters, store sizes, per-domain gauges.
async fn metrics(State(state): State<Shared>) -> Response {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: Vec<(String, u64)>| {
        out.push_str(&format!(
            "# HELP lifeboat_{name} {help}\n# TYPE lifeboat_{name} {kind}\n"
        ));
        for (labels, value) in lines {
            out.push_str(&format!("lifeboat_{name}{labels} {value}\n"));
        }
    };
    if let Some(status) = &state.status {
        for (name, value) in status.counters() {
            metric(
                &format!("{name}_total"),
                "counter",
                name,
                vec![(String::new(), value)],
            );
        }
    }
    if let Some((_, pending)) = archive_index_lag(&state) {
        metric(
            "archive_index_pending",
            "gauge",
            "archived messages the full-text index does not cover yet",
            vec![(String::new(), pending)],
        );
    }
    let stats = state.store.stats();
    metric(
        "store_log_bytes",
        "gauge",
        "bytes in log segments",
        vec![(String::new(), stats.log_bytes)],
    );
    metric(
        "store_batches_total",
        "counter",
        "batches committed",
        vec![(String::new(), stats.batches)],
    );
    metric(
        "store_fsyncs_total",
        "counter",
        "group commits",
        vec![(String::new(), stats.groups)],
    );
    type Series = Vec<(String, u64)>;
    let (queue, modes): (Series, Series) = state.store.read(|s| {
        let mut depth: BTreeMap<String, u64> = s.domains().map(|d| (d.name.clone(), 0)).collect();
        for e in s.queue() {
            if let Some(n) = depth.get_mut(address_domain(&e.recipient)) {
                *n += 1;
            }
        }
        let modes = s
            .domains()
            .map(|d| {
                (
                    format!("{{domain=\"{}\"}}", d.name),
                    u64::from(d.mode == Mode::Emergency),
                )
            })
            .collect();
        (
            depth
                .into_iter()
                .map(|(d, n)| (format!("{{domain=\"{d}\"}}"), n))
                .collect(),
            modes,
        )
    });
    metric("queue_depth", "gauge", "queued messages per domain", queue);
    metric(
        "emergency",
        "gauge",
        "1 while the domain is in emergency mode",
        modes,
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

async fn list_domains(State(state): State<Shared>) -> ApiResult {
    Ok(Json(Value::Array(
        state.store.read(|s| s.domains().map(domain_json).collect()),
    )))
}

fn find_domain(state: &AppState, name: &str) -> ApiResult<Domain> {
    let name = valid_domain(name).map_err(ApiError::bad)?;
    state
        .store
        .read(|s| s.domain(&name).cloned())
        .ok_or_else(|| ApiError::not_found(format!("no domain {name}")))
}

async fn get_domain(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(domain_json(&find_domain(&state, &name)?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDomain {
    name: String,
    upstream: String,
    coverage: Option<String>,
    failover: Option<String>,
}

async fn add_domain(
    State(state): State<Shared>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req: NewDomain = parse(&body)?;
    let name = valid_domain(&req.name).map_err(ApiError::bad)?;
    if state.store.read(|s| s.domain(&name).is_some()) {
        return Err(ApiError::conflict(format!("domain {name} already exists")));
    }
    let settings = DomainSettings {
        name: name.clone(),
        upstream: valid_upstream(&req.upstream).map_err(ApiError::bad)?,
        coverage: parse_coverage(req.coverage.as_deref().unwrap_or("all"))?,
        failover: parse_failover(req.failover.as_deref().unwrap_or("auto"))?,
    };
    commit(&state, vec![Op::PutDomain(settings)]).await?;
    tracing::info!(domain = %name, "domain added");
    let domain = find_domain(&state, &name)?;
    Ok((StatusCode::CREATED, Json(domain_json(&domain))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainChange {
    upstream: Option<String>,
    coverage: Option<String>,
    failover: Option<String>,
}

async fn set_domain(
    State(state): State<Shared>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let req: DomainChange = parse(&body)?;
    let domain = find_domain(&state, &name)?;
    let settings = DomainSettings {
        name: domain.name.clone(),
        upstream: match req.upstream {
            Some(u) => valid_upstream(&u).map_err(ApiError::bad)?,
            None => domain.upstream,
        },
        coverage: match req.coverage {
            Some(c) => parse_coverage(&c)?,
            None => domain.coverage,
        },
        failover: match req.failover {
            Some(f) => parse_failover(&f)?,
            None => domain.failover,
        },
    };
    commit(&state, vec![Op::PutDomain(settings)]).await?;
    tracing::info!(domain = %domain.name, "domain changed");
    Ok(Json(domain_json(&find_domain(&state, &domain.name)?)))
}

async fn delete_domain(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let domain = find_domain(&state, &name)?;
    commit(&state, vec![Op::DeleteDomain(domain.name.clone())]).await?;
    tracing::info!(domain = %domain.name, "domain removed");
    Ok(Json(json!({ "deleted": domain.name })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeChange {
    mode: String,
}

/// SPEC §1: `normal`/`emergency` force a mode until `auto` releases it; after release
/// the router decides (`failover = auto`) or the domain returns to normal (`manual`).
async fn set_mode(State(state): State<Shared>, Path(name): Path<String>, body: Bytes) -> ApiResult {
    let req: ModeChange = parse(&body)?;
    let domain = find_domain(&state, &name)?;
    let (mode, forced, reason) = match req.mode.as_str() {
        "normal" => (
            Mode::Normal,
            Some(Mode::Normal),
            "forced normal by an admin".to_string(),
        ),
        "emergency" => (
            Mode::Emergency,
            Some(Mode::Emergency),
            "forced emergency by an admin".to_string(),
        ),
        "auto" => match domain.failover {
            Failover::Manual => (
                Mode::Normal,
                None,
                "released by an admin (manual failover)".to_string(),
            ),
            Failover::Auto => (
                domain.mode,
                None,
                "released by an admin to the router".to_string(),
            ),
        },
        other => {
            return Err(ApiError::bad(format!(
                "mode must be \"normal\", \"emergency\" or \"auto\", not {other:?}"
            )))
        }
    };
    commit(
        &state,
        vec![Op::SetMode {
            domain: domain.name.clone(),
            mode,
            forced,
            reason: reason.clone(),
            at: now(),
        }],
    )
    .await?;
    tracing::info!(domain = %domain.name, mode = mode.as_str(), %reason, "mode changed");
    Ok(Json(domain_json(&find_domain(&state, &domain.name)?)))
}

#[derive(Deserialize)]
struct AccountFilter {
    domain: Option<String>,
}

async fn list_accounts(
    State(state): State<Shared>,
    Query(filter): Query<AccountFilter>,
) -> ApiResult {
    let domain = match filter.domain {
        Some(d) => Some(find_domain(&state, &d)?.name),
        None => None,
    };
    Ok(Json(Value::Array(state.store.read(|s| {
        s.accounts(domain.as_deref()).map(account_json).collect()
    }))))
}

fn find_account(state: &AppState, address: &str) -> ApiResult<Account> {
    let address = valid_address(address).map_err(ApiError::bad)?;
    state
        .store
        .read(|s| s.account(&address).cloned())
        .ok_or_else(|| ApiError::not_found(format!("no account {address}")))
}

async fn get_account(State(state): State<Shared>, Path(address): Path<String>) -> ApiResult {
    Ok(Json(account_json(&find_account(&state, &address)?)))
}

async fn hash(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::bad)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    address: String,
    password: String,
    role: Option<String>,
    covered: Option<bool>,
    recovery: Option<String>,
}

async fn add_account(
    State(state): State<Shared>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req: NewAccount = parse(&body)?;
    let address = valid_address(&req.address).map_err(ApiError::bad)?;
    let domain = address_domain(&address).to_string();
    if state.store.read(|s| s.domain(&domain).is_none()) {
        return Err(ApiError::not_found(format!(
            "no domain {domain}: add it first (lifeboat domain add)"
        )));
    }
    if state.store.read(|s| s.account(&address).is_some()) {
        return Err(ApiError::conflict(format!(
            "account {address} already exists"
        )));
    }
    let recovery = match req.recovery {
        Some(r) if !r.is_empty() => Some(valid_address(&r).map_err(ApiError::bad)?),
        _ => None,
    };
    let role = parse_role(req.role.as_deref().unwrap_or("user"))?;
    let password_hash = hash(req.password).await?;
    commit(
        &state,
        vec![Op::AddAccount {
            address: address.clone(),
            password_hash,
            role,
            covered: req.covered.unwrap_or(false),
            recovery,
        }],
    )
    .await?;
    tracing::info!(account = %address, "account added");
    Ok((
        StatusCode::CREATED,
        Json(account_json(&find_account(&state, &address)?)),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountChange {
    role: Option<String>,
    covered: Option<bool>,
    recovery: Option<Option<String>>,
}

async fn update_account(
    State(state): State<Shared>,
    Path(address): Path<String>,
    body: Bytes,
) -> ApiResult {
    let req: AccountChange = parse(&body)?;
    let account = find_account(&state, &address)?;
    let recovery = match req.recovery {
        Some(Some(r)) if !r.is_empty() => Some(Some(valid_address(&r).map_err(ApiError::bad)?)),
        Some(_) => Some(None),
        None => None,
    };
    let role = req.role.as_deref().map(parse_role).transpose()?;
    commit(
        &state,
        vec![Op::UpdateAccount {
            address: account.address.clone(),
            role,
            covered: req.covered,
            recovery,
        }],
    )
    .await?;
    Ok(Json(account_json(&find_account(&state, &account.address)?)))
}

async fn delete_account(State(state): State<Shared>, Path(address): Path<String>) -> ApiResult {
    let account = find_account(&state, &address)?;
    commit(&state, vec![Op::DeleteAccount(account.address.clone())]).await?;
    tracing::info!(account = %account.address, "account removed");
    Ok(Json(json!({ "deleted": account.address })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

async fn set_password(
    State(state): State<Shared>,
    Path(address): Path<String>,
    body: Bytes,
) -> ApiResult {
    let req: NewPassword = parse(&body)?;
    let account = find_account(&state, &address)?;
    let password_hash = hash(req.password).await?;
    commit(
        &state,
        vec![Op::SetPassword {
            address: account.address.clone(),
            password_hash,
        }],
    )
    .await?;
    tracing::info!(account = %account.address, "password changed");
    Ok(Json(
        json!({ "address": account.address, "password": "changed" }),
    ))
}

// ---- Archive (SPEC §4) ---------------------------------------------------------

/// `YYYY-MM-DD` (midnight UTC) or Unix seconds.
fn parse_date(field: &str, value: &str) -> ApiResult<i64> {
    if let Ok(seconds) = value.parse::<i64>() {
        return Ok(seconds);
    }
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, FORMAT)
        .map(|date| date.midnight().assume_utc().unix_timestamp())
        .map_err(|_| {
            ApiError::bad(format!(
                "{field} must be a date YYYY-MM-DD or Unix seconds, not {value:?}"
            ))
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArchiveFilter {
    from: Option<String>,
    to: Option<String>,
    subject: Option<String>,
    text: Option<String>,
    since: Option<String>,
    until: Option<String>,
    direction: Option<String>,
    limit: Option<usize>,
}

/// Most results of one archive search.
const ARCHIVE_RESULTS_MAX: usize = 1000;

fn archive_json(e: &ArchiveEntry) -> Value {
    json!({
        "id": e.id.0,
        "direction": match e.direction { Direction::In => "in", Direction::Out => "out" },
        "mail_from": e.mail_from,
        "rcpt_to": e.rcpt_to,
        "date": e.date,
        "size": e.size,
        "from": e.headers.from,
        "to": e.headers.to,
        "cc": e.headers.cc,
        "subject": e.headers.subject,
        "message_id": e.headers.message_id,
    })
}

async fn search_archive(State(state): State<Shared>, Query(f): Query<ArchiveFilter>) -> ApiResult {
    search_scoped(&state, f, &Scope::All).await
}

/// An archive search limited to what `scope` may see.
pub(crate) async fn search_scoped(state: &Shared, f: ArchiveFilter, scope: &Scope) -> ApiResult {
    let mut query = ArchiveQuery {
        from: f.from,
        to: f.to,
        subject: f.subject,
        text: f.text,
        since: f
            .since
            .as_deref()
            .map(|d| parse_date("since", d))
            .transpose()?,
        until: f
            .until
            .as_deref()
            .map(|d| parse_date("until", d))
            .transpose()?,
        direction: match f.direction.as_deref() {
            None => None,
            Some("in") => Some(Direction::In),
            Some("out") => Some(Direction::Out),
            Some(other) => {
                return Err(ApiError::bad(format!(
                    "direction must be \"in\" or \"out\", not {other:?}"
                )))
            }
        },
        limit: f.limit.unwrap_or(100).clamp(1, ARCHIVE_RESULTS_MAX),
        ..ArchiveQuery::default()
    };
    scope.restrict(&mut query);
    let store = state.store.clone();
    let index = state.archive_index.clone();
    let hits = tokio::task::spawn_blocking(move || match index {
        Some(index) => index.search(&query),
        None => store.archive_search(&query),
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(Value::Array(hits.iter().map(archive_json).collect())))
}

/// Most bytes of body text a view shows.
pub const VIEW_TEXT_BYTES_MAX: usize = 256 * 1024;
/// A message naming more nested messages than this is shown without its structure,
/// as is one whose nesting could exhaust the stack (`lifeboat_store::message`).
const VIEW_NESTED_MESSAGES_MAX: usize = 64;

/// The archived message `id`, if `scope` may see it (otherwise it does not exist).
fn find_archived(state: &AppState, id: &str, scope: &Scope) -> ApiResult<ArchiveEntry> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad(format!("archive id must be a number, not {id:?}")))?;
    state
        .store
        .read(|s| s.archive_entry(ArchiveId(id)).cloned())
        .filter(|e| scope.sees(e))
        .ok_or_else(|| ApiError::not_found(format!("no archived message {id}")))
}

async fn show_archive(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult {
    show_scoped(&state, &id, &Scope::All)
}

/// The view of an archived message `scope` may see.
pub(crate) fn show_scoped(state: &AppState, id: &str, scope: &Scope) -> ApiResult {
    let entry = find_archived(state, id, scope)?;
    let bytes = state.store.body(entry.body)?;
    let mut view = archive_json(&entry);
    message_view(&bytes, &mut view);
    Ok(Json(view))
}

/// Sets what a view shows of a message's octets in `view`: `header` (as text),
/// `text` (the body text, at most [`VIEW_TEXT_BYTES_MAX`] bytes) and `attachments`
/// (name, type, size).
pub fn message_view(bytes: &[u8], view: &mut Value) {
    let nested = memchr_count(bytes, b"message/");
    let parsed = if nested <= VIEW_NESTED_MESSAGES_MAX {
        message::parse_message(&mail_parser::MessageParser::new(), bytes)
            .ok()
            .flatten()
    } else {
        None
    };
    let header_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 2)
        .unwrap_or(bytes.len());
    view["header"] = json!(String::from_utf8_lossy(
        &bytes[..header_end.min(VIEW_TEXT_BYTES_MAX)]
    ));
    match parsed {
        Some(message) => {
            let mut text = message
                .body_text(0)
                .map(|t| t.into_owned())
                .unwrap_or_default();
            if text.len() > VIEW_TEXT_BYTES_MAX {
                let mut end = VIEW_TEXT_BYTES_MAX;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
            view["text"] = json!(text);
            view["attachments"] = Value::Array(
                message
                    .attachments()
                    .map(|a| {
                        json!({
                            "name": a.attachment_name(),
                            "type": a.content_type().map(|c| match c.subtype() {
                                Some(sub) => format!("{}/{}", c.ctype(), sub),
                                None => c.ctype().to_string(),
                            }),
                            "size": a.len(),
                        })
                    })
                    .collect(),
            );
        }
        None => {
            view["text"] = json!(String::from_utf8_lossy(
                &bytes[header_end..bytes.len().min(header_end + VIEW_TEXT_BYTES_MAX)]
            ));
            view["attachments"] = json!([]);
        }
    }
}

fn memchr_count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .filter(|w| w.eq_ignore_ascii_case(needle))
        .count()
}

async fn redeliver_archive(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult {
    redeliver_scoped(&state, &id, &Scope::All).await
}

/// Re-delivers an archived message `scope` may see, to the mailboxes it admits.
pub(crate) async fn redeliver_scoped(state: &AppState, id: &str, scope: &Scope) -> ApiResult {
    let entry = find_archived(state, id, scope)?;
    let Some(status) = &state.status else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no relay is running",
        ));
    };
    let to = status
        .redeliver(entry.id, scope)
        .await
        .map_err(ApiError::conflict)?;
    Ok(Json(json!({ "id": entry.id.0, "redelivered_to": to })))
}

#[cfg(test)]
mod tests {
    use super::parse_date;

    #[test]
    fn dates_are_days_or_unix_seconds() {
        assert_eq!(parse_date("since", "1970-01-02").unwrap(), 86_400);
        assert_eq!(parse_date("since", "2000-03-01").unwrap(), 951_868_800);
        assert_eq!(parse_date("since", "1700000000").unwrap(), 1_700_000_000);
        for bad in ["2026-02-30", "2026-13-01", "yesterday", "2026-1-5", ""] {
            let e = parse_date("since", bad).unwrap_err();
            assert!(e.message.contains("since must be a date"), "{bad}: {e:?}");
        }
    }
}
