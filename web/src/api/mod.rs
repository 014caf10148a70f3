//! The admin API, version 1 (docs/api.md): domains, accounts, passwords, mode
//! switches and status, JSON in and out, token auth.
//!
//! Every error is `{"error": "..."}` with the status code that fits: 400 for bad
//! input (the message names the field), 401 without a valid token, 404 for an unknown
//! domain or account, 409 for a conflict, 500 when the store fails.
//!
//! Changes go through `crate::admin`, which commits each with its audit entry; the
//! token's holder is the actor `admin token` (SPEC §11).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use lifeboat_store::latency::Snapshot;
use lifeboat_store::*;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::admin::{self, coverage_str, failover_str, role_str, Actor, ModeRequest, NewAccount};
use crate::archive::{self, ARCHIVE_RESULTS_MAX};
use crate::{AppState, ClientIp, Scope};

mod audit;
mod backup;
pub(crate) mod dkim;
mod me;
pub(crate) mod reset;
mod trace;

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
    pub(crate) fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
    /// Its status code.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }
    /// Its message.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let status = match e {
            // Nothing was changed; the same request may succeed later.
            Error::NoSpace(_) => StatusCode::INSUFFICIENT_STORAGE,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("store: {e}");
        } else {
            tracing::warn!("store: {e}");
        }
        ApiError::new(status, format!("store: {e}"))
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
        .route("/domains/{name}/history", get(mode_history))
        .route("/domains/{name}/dkim", get(dkim::show).post(dkim::change))
        .route("/accounts", get(list_accounts).post(add_account))
        .route(
            "/accounts/{address}",
            get(get_account)
                .patch(update_account)
                .delete(delete_account),
        )
        .route("/accounts/{address}/password", put(set_password))
        .route("/audit", get(audit::list))
        .route("/trace", get(trace::trace))
        .route("/backup", get(backup::backup))
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
        .nest("/api/v1/me", me::routes(state.clone()))
        .nest("/api/v1/password-reset", reset::routes())
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

pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))
}

impl From<OpError> for ApiError {
    /// 404 for what is not there, 409 for what is in the way, 400 for the rest.
    fn from(e: OpError) -> ApiError {
        let status = match e {
            OpError::NoDomain(_)
            | OpError::NoAccount(_)
            | OpError::NoFolder(_)
            | OpError::NoFolderNamed(_)
            | OpError::NoBody(_)
            | OpError::NoQueueEntry(_) => StatusCode::NOT_FOUND,
            OpError::AccountExists(_)
            | OpError::FolderExists(_)
            | OpError::DomainHasAccounts(_)
            | OpError::NoDkimKeys(_) => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    }
}

/// The ops' outcomes; the first op the store refused is the error.
pub(crate) fn applied(results: Vec<Result<OpResult, OpError>>) -> ApiResult<Vec<OpResult>> {
    Ok(results.into_iter().collect::<Result<_, _>>()?)
}

pub(crate) async fn commit(state: &AppState, ops: Vec<Op>) -> ApiResult<Vec<OpResult>> {
    let mut batch = Batch::new();
    for op in ops {
        batch.push(op);
    }
    applied(state.store.commit_async(batch).await?)
}

// ---- Input ---------------------------------------------------------------------

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

/// Mode transitions of each domain that status shows, newest first.
const MODE_HISTORY_IN_STATUS: usize = 5;

#[derive(Deserialize)]
struct StatusQuery {
    /// With a digest of the store's logical state (the nodes of a cluster agree on it).
    #[serde(default)]
    digest: bool,
}

async fn status(State(state): State<Shared>, Query(query): Query<StatusQuery>) -> ApiResult {
    let stats = state.store.stats();
    let digest = query.digest.then(|| state.store.read(|s| s.digest()));
    let domains: Vec<Value> = state.store.read(|s| {
        let mut queue_depth: BTreeMap<&str, usize> = BTreeMap::new();
        for entry in s.queue() {
            *queue_depth
                .entry(Address::domain_of(&entry.recipient))
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
                if let Some(detail) = state
                    .status
                    .as_ref()
                    .and_then(|st| st.upstream_detail(&d.upstream))
                {
                    v["upstream_router"] = detail;
                }
                v["mode_history"] = json!(s
                    .mode_history(&d.name, MODE_HISTORY_IN_STATUS)
                    .into_iter()
                    .map(|m| json!({
                        "at": m.at,
                        "from": m.from.map(Mode::as_str),
                        "to": m.to.as_str(),
                        "forced": m.forced.map(Mode::as_str),
                        "reason": m.reason,
                    }))
                    .collect::<Vec<_>>());
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
            "space_left": state.store.space_left(),
            "digest": digest,
        },
        "archive_index": archive_index_lag(&state).map(|(indexed, pending)| json!({
            "indexed_through": indexed,
            "pending": pending,
        })),
        "cluster": state.status.as_ref().and_then(|st| st.cluster()),
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
            if let Some(n) = depth.get_mut(Address::domain_of(&e.recipient)) {
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
    if let Some(status) = &state.status {
        for (name, help, counts) in status.latencies() {
            histogram(&mut out, name, help, &[("", counts)]);
        }
    }
    let latency = state.store.latency();
    histogram(
        &mut out,
        "commit",
        "store commits by stage: queue (waiting for the writer), sync (a group's write \
         and fdatasync), apply (a group's apply), wake (waiting for the caller to run), \
         total (submitted to taken); in a cluster also publish (a frame to its majority's \
         acknowledgement) and round_trip (submitted to back from the cluster's log)",
        &[
            ("stage=\"queue\"", latency.queue.snapshot()),
            ("stage=\"sync\"", latency.sync.snapshot()),
            ("stage=\"apply\"", latency.apply.snapshot()),
            ("stage=\"wake\"", latency.wake.snapshot()),
            ("stage=\"total\"", latency.total.snapshot()),
            ("stage=\"publish\"", latency.publish.snapshot()),
            ("stage=\"round_trip\"", latency.round_trip.snapshot()),
        ],
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// A Prometheus histogram `lifeboat_{name}_seconds`, one series per label set.
fn histogram(out: &mut String, name: &str, help: &str, series: &[(&str, Snapshot)]) {
    out.push_str(&format!(
        "# HELP lifeboat_{name}_seconds {help}\n# TYPE lifeboat_{name}_seconds histogram\n"
    ));
    for (labels, counts) in series {
        let sep = if labels.is_empty() { "" } else { "," };
        for (le, count) in counts.cumulative() {
            out.push_str(&format!(
                "lifeboat_{name}_seconds_bucket{{{labels}{sep}le=\"{le}\"}} {count}\n"
            ));
        }
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        out.push_str(&format!(
            "lifeboat_{name}_seconds_sum{labels} {}\nlifeboat_{name}_seconds_count{labels} {}\n",
            counts.sum_us as f64 / 1e6,
            counts.count()
        ));
    }
}

async fn list_domains(State(state): State<Shared>) -> ApiResult {
    Ok(Json(Value::Array(
        state.store.read(|s| s.domains().map(domain_json).collect()),
    )))
}

async fn get_domain(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(domain_json(&admin::find_domain(&state, &name)?)))
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
    ClientIp(ip): ClientIp,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req: NewDomain = parse(&body)?;
    let coverage = parse_coverage(req.coverage.as_deref().unwrap_or("all"))?;
    let failover = parse_failover(req.failover.as_deref().unwrap_or("auto"))?;
    let domain = admin::add_domain(
        &state,
        &Actor::token(ip),
        &req.name,
        &req.upstream,
        coverage,
        failover,
    )
    .await?;
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
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let req: DomainChange = parse(&body)?;
    let domain = admin::find_domain(&state, &name)?;
    let coverage = req.coverage.as_deref().map(parse_coverage).transpose()?;
    let failover = req.failover.as_deref().map(parse_failover).transpose()?;
    let domain = admin::update_domain(
        &state,
        &Actor::token(ip),
        &domain,
        req.upstream.as_deref(),
        coverage,
        failover,
    )
    .await?;
    Ok(Json(domain_json(&domain)))
}

async fn delete_domain(
    State(state): State<Shared>,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
) -> ApiResult {
    let domain = admin::find_domain(&state, &name)?;
    admin::delete_domain(&state, &Actor::token(ip), &domain).await?;
    Ok(Json(json!({ "deleted": domain.name })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeChange {
    mode: String,
}

/// SPEC §1: `normal`/`emergency` force a mode until `auto` releases it; after release
/// the router decides (`failover = auto`) or the domain returns to normal (`manual`).
async fn set_mode(
    State(state): State<Shared>,
    ClientIp(ip): ClientIp,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let req: ModeChange = parse(&body)?;
    let domain = admin::find_domain(&state, &name)?;
    let Some(request) = ModeRequest::parse(&req.mode) else {
        return Err(ApiError::bad(format!(
            "mode must be \"normal\", \"emergency\" or \"auto\", not {:?}",
            req.mode
        )));
    };
    let domain = admin::set_mode(&state, &Actor::token(ip), &domain, request).await?;
    Ok(Json(domain_json(&domain)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryFilter {
    limit: Option<usize>,
}

/// Most mode changes one answer lists.
const HISTORY_RESULTS_MAX: usize = 1000;

/// A domain's mode changes, newest first (the dashboard's timeline).
async fn mode_history(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(filter): Query<HistoryFilter>,
) -> ApiResult {
    let domain = admin::find_domain(&state, &name)?;
    let limit = filter.limit.unwrap_or(100).clamp(1, HISTORY_RESULTS_MAX);
    Ok(Json(Value::Array(state.store.read(|s| {
        s.mode_history(&domain.name, limit)
            .into_iter()
            .map(|c| {
                json!({
                    "at": c.at,
                    "from": c.from.map(Mode::as_str),
                    "to": c.to.as_str(),
                    "forced": c.forced.map(Mode::as_str),
                    "reason": c.reason,
                })
            })
            .collect()
    }))))
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
        Some(d) => Some(admin::find_domain(&state, &d)?.name),
        None => None,
    };
    Ok(Json(Value::Array(state.store.read(|s| {
        s.accounts(domain.as_deref()).map(account_json).collect()
    }))))
}

async fn get_account(State(state): State<Shared>, Path(address): Path<String>) -> ApiResult {
    Ok(Json(account_json(&admin::find_account(&state, &address)?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccountRequest {
    address: String,
    password: String,
    role: Option<String>,
    covered: Option<bool>,
    recovery: Option<String>,
}

async fn add_account(
    State(state): State<Shared>,
    ClientIp(ip): ClientIp,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req: NewAccountRequest = parse(&body)?;
    let role = parse_role(req.role.as_deref().unwrap_or("user"))?;
    let account = admin::add_account(
        &state,
        &Actor::token(ip),
        NewAccount {
            address: req.address,
            password: Some(req.password),
            role,
            covered: req.covered.unwrap_or(false),
            recovery: req.recovery,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(account_json(&account))))
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
    ClientIp(ip): ClientIp,
    Path(address): Path<String>,
    body: Bytes,
) -> ApiResult {
    let req: AccountChange = parse(&body)?;
    let account = admin::find_account(&state, &address)?;
    let role = req.role.as_deref().map(parse_role).transpose()?;
    let account = admin::update_account(
        &state,
        &Actor::token(ip),
        &account,
        role,
        req.covered,
        req.recovery,
    )
    .await?;
    Ok(Json(account_json(&account)))
}

async fn delete_account(
    State(state): State<Shared>,
    ClientIp(ip): ClientIp,
    Path(address): Path<String>,
) -> ApiResult {
    let account = admin::find_account(&state, &address)?;
    admin::delete_account(&state, &Actor::token(ip), &account).await?;
    Ok(Json(json!({ "deleted": account.address })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

async fn set_password(
    State(state): State<Shared>,
    ClientIp(ip): ClientIp,
    Path(address): Path<String>,
    body: Bytes,
) -> ApiResult {
    let req: NewPassword = parse(&body)?;
    let account = admin::find_account(&state, &address)?;
    admin::set_password(
        &state,
        &Actor::token(ip),
        &account,
        req.password,
        "set by an admin",
    )
    .await?;
    Ok(Json(
        json!({ "address": account.address, "password": "changed" }),
    ))
}

// ---- Archive (SPEC §4) ---------------------------------------------------------

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

pub(crate) fn archive_json(e: &ArchiveEntry) -> Value {
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
    let date = |field: &str, value: Option<String>| {
        value
            .as_deref()
            .map(|d| archive::parse_date(field, d))
            .transpose()
            .map_err(ApiError::bad)
    };
    let query = ArchiveQuery {
        since: date("since", f.since)?,
        until: date("until", f.until)?,
        direction: f
            .direction
            .as_deref()
            .map(archive::parse_direction)
            .transpose()
            .map_err(ApiError::bad)?,
        from: f.from,
        to: f.to,
        subject: f.subject,
        text: f.text,
        limit: f.limit.unwrap_or(100).clamp(1, ARCHIVE_RESULTS_MAX),
        ..ArchiveQuery::default()
    };
    let hits = archive::search(state, query, scope).await?;
    Ok(Json(Value::Array(hits.iter().map(archive_json).collect())))
}

async fn show_archive(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult {
    show_scoped(&state, &id, &Scope::All)
}

/// The view of an archived message `scope` may see.
pub(crate) fn show_scoped(state: &AppState, id: &str, scope: &Scope) -> ApiResult {
    let entry = find_archived(state, id, scope)?;
    let view = archive::view(state, &entry)?;
    let mut out = archive_json(&entry);
    view_json(&view, &mut out);
    Ok(Json(out))
}

pub use crate::archive::VIEW_TEXT_BYTES_MAX;

/// Sets what a view shows of a message's octets in `out`: `header` (as text), `text`
/// (the body text, at most [`VIEW_TEXT_BYTES_MAX`] bytes) and `attachments` (name,
/// type, size).
pub fn message_view(bytes: &[u8], out: &mut Value) {
    view_json(&archive::view_of(bytes), out);
}

fn view_json(view: &archive::View, out: &mut Value) {
    out["header"] = json!(view.header);
    out["text"] = json!(view.text);
    out["attachments"] = Value::Array(
        view.attachments
            .iter()
            .map(|a| json!({ "name": a.name, "type": a.content_type, "size": a.size }))
            .collect(),
    );
}

/// The archived message `id` if `scope` sees it; a malformed id is bad input.
fn find_archived(state: &AppState, id: &str, scope: &Scope) -> ApiResult<ArchiveEntry> {
    if id.parse::<u64>().is_err() {
        return Err(ApiError::bad(format!(
            "archive id must be a number, not {id:?}"
        )));
    }
    Ok(archive::find(state, id, scope)?)
}

async fn redeliver_archive(
    State(state): State<Shared>,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> ApiResult {
    redeliver_scoped(&state, &Actor::token(ip), &id, &Scope::All).await
}

/// Re-delivers an archived message `scope` may see, to the mailboxes it admits.
pub(crate) async fn redeliver_scoped(
    state: &AppState,
    actor: &Actor,
    id: &str,
    scope: &Scope,
) -> ApiResult {
    let entry = find_archived(state, id, scope)?;
    let to = admin::redeliver(state, actor, &entry, scope).await?;
    Ok(Json(json!({ "id": entry.id.0, "redelivered_to": to })))
}
