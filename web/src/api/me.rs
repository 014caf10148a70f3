//! The API for mailbox accounts (`/api/v1/me`, docs/api.md): a user logs in with their
//! address and password (HTTP Basic) and searches, views and re-delivers the archived
//! mail their role lets them see (SPEC §4, §5): their own, their domain's, or all.
//!
//! Passwords are checked by the same authenticator as IMAP, POP3 and submission
//! (Argon2id off the request thread, failures rate-limited per account and per client
//! address), and only where they cannot cross a network in clear: over HTTPS, or over
//! plain HTTP on loopback when `auth.allow_plaintext_loopback` allows it.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use lifeboat_store::auth::AuthError;
use lifeboat_store::{Account, Address, Mode, Role};
use serde_json::json;

use crate::admin::Actor;
use crate::api::{
    redeliver_scoped, search_scoped, show_scoped, ApiError, ApiResult, ArchiveFilter,
};
use crate::{AppState, ClientIp, Peer, Scope};

type Shared = Arc<AppState>;

/// The account a request was authenticated as.
#[derive(Debug, Clone)]
struct Caller {
    account: Account,
    scope: Scope,
}

/// The routes under `/api/v1/me`.
pub(crate) fn routes(state: Shared) -> Router<Shared> {
    Router::new()
        .route("/", get(me))
        .route("/archive", get(search))
        .route("/archive/{id}", get(show))
        .route("/archive/{id}/redeliver", post(redeliver))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API endpoint") })
        .route_layer(middleware::from_fn_with_state(state, require_user))
}

fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Lifeboat\", charset=\"UTF-8\""),
    );
    response
}

/// `Authorization: Basic base64(address:password)`.
fn credentials(request: &Request) -> Option<(String, String)> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (address, password) = decoded.split_once(':')?;
    Some((address.to_string(), password.to_string()))
}

async fn require_user(State(state): State<Shared>, mut request: Request, next: Next) -> Response {
    let Some(auth) = &state.auth else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "account logins are not available on this server",
        )
        .into_response();
    };
    if !state.password_logins {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "passwords are accepted only over HTTPS here (auth.allow_plaintext_loopback is off)",
        )
        .into_response();
    }
    let Some((address, password)) = credentials(&request) else {
        return unauthorized("log in with your address and password (HTTP Basic)");
    };
    let client = request
        .extensions()
        .get::<Peer>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.ip());
    match auth.login(&address, &password, client).await {
        Ok(account) => {
            let scope = Scope::of(&account);
            request.extensions_mut().insert(Caller { account, scope });
            next.run(request).await
        }
        Err(AuthError::Invalid) => unauthorized("invalid address or password"),
        Err(e @ AuthError::RateLimited) => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()).into_response()
        }
        Err(e @ AuthError::Unavailable) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
    }
}

/// Who is logged in, and the state of their domain.
async fn me(State(state): State<Shared>, Extension(caller): Extension<Caller>) -> ApiResult {
    let account = &caller.account;
    let domain = Address::domain_of(&account.address).to_ascii_lowercase();
    let mode = state.store.read(|s| s.domain(&domain).map(|d| d.mode));
    Ok(Json(json!({
        "address": account.address,
        "role": match account.role {
            Role::Admin => "admin",
            Role::DomainAdmin => "domain-admin",
            Role::User => "user",
        },
        "domain": domain,
        "mode": mode.map(|m| match m {
            Mode::Normal => "normal",
            Mode::Emergency => "emergency",
        }),
        "covered": state.store.read(|s| s.is_covered(&account.address)),
        "archive_scope": match &caller.scope {
            Scope::All => "all".to_string(),
            Scope::Domain(d) => format!("domain {d}"),
            Scope::Address(a) => format!("address {a}"),
        },
    })))
}

async fn search(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Query(filter): Query<ArchiveFilter>,
) -> ApiResult {
    search_scoped(&state, filter, &caller.scope).await
}

async fn show(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    show_scoped(&state, &id, &caller.scope)
}

async fn redeliver(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> ApiResult {
    let actor = Actor::account(&caller.account.address, ip);
    redeliver_scoped(&state, &actor, &id, &caller.scope).await
}
