//! Logging in and out, and resetting a forgotten password (SPEC §5, §9).
//!
//! - Logins go through the same authenticator as IMAP, POP3 and submission: the same
//!   accounts, the same failure limits per account and per client address.
//! - Every failure reads the same ("wrong address or password"), whether the address
//!   has an account or not; the reset request answers the same either way.
//! - Passwords are taken only where they cannot cross a network in clear: over HTTPS,
//!   or plain HTTP on loopback while `auth.allow_plaintext_loopback` allows it.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use lifeboat_store::auth::AuthError;
use lifeboat_store::Account;
use serde::Deserialize;

use super::{local_path, render_status, Layout, Shared};
use crate::api::reset::{confirm_code, request_code, ResetError};
use crate::i18n::{Lang, Texts};
use crate::session::{cookie, form_token, set_cookie, Session, COOKIE, FORM_COOKIE};
use crate::ClientIp;

/// Where an account lands after login: admins and domain admins in the panel, users
/// in webmail (SPEC §9).
pub(crate) fn landing(account: &Account) -> &'static str {
    match account.role {
        lifeboat_store::Role::Admin | lifeboat_store::Role::DomainAdmin => "/panel",
        lifeboat_store::Role::User => "/mail",
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    t: &'static Texts,
    address: String,
    next: String,
    error: Option<String>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
    reset: Option<String>,
}

/// Adds the form cookie when the form token is new.
fn with_form_cookie(
    mut response: Response,
    state: &crate::AppState,
    token: &str,
    new: bool,
) -> Response {
    if new {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(FORM_COOKIE, token, state.secure_cookies, None),
        );
    }
    response
}

fn login_page(
    state: &crate::AppState,
    headers: &HeaderMap,
    status: StatusCode,
    address: &str,
    next: &str,
    error: Option<String>,
    notice: Option<&'static str>,
) -> Response {
    let lang = Lang::of(headers);
    let t = lang.texts();
    let (token, new) = form_token(headers);
    let page = LoginPage {
        layout: Layout::public(lang, &token, "/", t.login_title),
        t,
        address: address.to_string(),
        next: next.to_string(),
        error,
        notice,
    };
    with_form_cookie(render_status(status, &page), state, &token, new)
}

/// `GET /`: the login page, or the landing page of a logged-in account.
pub(crate) async fn page(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    if let Some(session) =
        cookie(&headers, COOKIE).and_then(|c| state.sessions.find(c, &state.store, false))
    {
        return Redirect::to(landing(&session.account)).into_response();
    }
    let t = Lang::of(&headers).texts();
    let notice = if query.reset.is_some() {
        Some(t.reset_done)
    } else if query.next.is_some() {
        Some(t.login_again)
    } else {
        None
    };
    let next = local_path(query.next.as_deref());
    login_page(&state, &headers, StatusCode::OK, "", &next, None, notice)
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    address: String,
    password: String,
    next: Option<String>,
}

/// `POST /login`.
pub(crate) async fn login(
    State(state): State<Shared>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let t = Lang::of(&headers).texts();
    let next = local_path(form.next.as_deref());
    let fail = |status, text: &str| {
        login_page(
            &state,
            &headers,
            status,
            &form.address,
            &next,
            Some(text.to_string()),
            None,
        )
    };
    let Some(auth) = &state.auth else {
        return fail(StatusCode::SERVICE_UNAVAILABLE, t.login_unavailable);
    };
    if !state.password_logins {
        return fail(StatusCode::FORBIDDEN, t.login_https_only);
    }
    let account = match auth.login(form.address.trim(), &form.password, ip).await {
        Ok(account) => account,
        Err(AuthError::Invalid) => return fail(StatusCode::UNAUTHORIZED, t.login_invalid),
        Err(AuthError::RateLimited) => {
            return fail(StatusCode::TOO_MANY_REQUESTS, t.login_rate_limited)
        }
        Err(AuthError::Unavailable) => {
            return fail(StatusCode::SERVICE_UNAVAILABLE, t.login_unavailable)
        }
    };
    let Some(token) = state.sessions.open(&account) else {
        return fail(StatusCode::SERVICE_UNAVAILABLE, t.login_unavailable);
    };
    tracing::info!(account = %account.address, client = %ip, "panel login");
    // Back where the login interrupted, if that is a page of this account's role.
    let panel_page = next.starts_with("/panel");
    let target = if next == "/" || (panel_page && landing(&account) != "/panel") {
        landing(&account)
    } else {
        &next
    };
    let mut response = Redirect::to(target).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(COOKIE, &token, state.secure_cookies, None),
    );
    response
}

/// `POST /logout`: ends the session and forgets the cookie.
pub(crate) async fn logout(State(state): State<Shared>, session: Session) -> Response {
    state.sessions.end(&session.key);
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(COOKIE, "", state.secure_cookies, Some(0)),
    );
    response
}

// ---- Forgotten password ---------------------------------------------------------

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    layout: Layout,
    t: &'static Texts,
    address: String,
    sent: bool,
    error: Option<&'static str>,
}

fn forgot_page_with(
    state: &crate::AppState,
    headers: &HeaderMap,
    status: StatusCode,
    address: &str,
    sent: bool,
    error: Option<&'static str>,
) -> Response {
    let lang = Lang::of(headers);
    let t = lang.texts();
    let (token, new) = form_token(headers);
    let page = ForgotPage {
        layout: Layout::public(lang, &token, "/forgot", t.forgot_title),
        t,
        address: address.to_string(),
        sent,
        error,
    };
    with_form_cookie(render_status(status, &page), state, &token, new)
}

/// `GET /forgot`.
pub(crate) async fn forgot_page(State(state): State<Shared>, headers: HeaderMap) -> Response {
    forgot_page_with(&state, &headers, StatusCode::OK, "", false, None)
}

#[derive(Deserialize)]
pub(crate) struct ForgotForm {
    address: String,
}

/// `POST /forgot`: mails a code when the account exists; the page reads the same
/// either way.
pub(crate) async fn forgot(
    State(state): State<Shared>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<ForgotForm>,
) -> Response {
    let t = Lang::of(&headers).texts();
    let address = form.address.trim();
    match request_code(&state, address, ip).await {
        Ok(()) => forgot_page_with(&state, &headers, StatusCode::OK, address, true, None),
        Err(ResetError::TooMany) => forgot_page_with(
            &state,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            address,
            false,
            Some(t.forgot_too_many),
        ),
        Err(_) => forgot_page_with(
            &state,
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            address,
            false,
            Some(t.forgot_unavailable),
        ),
    }
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    layout: Layout,
    t: &'static Texts,
    code: String,
    error: Option<String>,
}

fn reset_page_with(
    state: &crate::AppState,
    headers: &HeaderMap,
    status: StatusCode,
    code: &str,
    error: Option<String>,
) -> Response {
    let lang = Lang::of(headers);
    let t = lang.texts();
    let (token, new) = form_token(headers);
    let page = ResetPage {
        layout: Layout::public(lang, &token, "/reset", t.reset_title),
        t,
        code: code.to_string(),
        error,
    };
    with_form_cookie(render_status(status, &page), state, &token, new)
}

/// `GET /reset`: the code and the new password.
pub(crate) async fn reset_page(State(state): State<Shared>, headers: HeaderMap) -> Response {
    reset_page_with(&state, &headers, StatusCode::OK, "", None)
}

#[derive(Deserialize)]
pub(crate) struct ResetForm {
    code: String,
    password: String,
    confirm: String,
}

/// `POST /reset`.
pub(crate) async fn reset(
    State(state): State<Shared>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<ResetForm>,
) -> Response {
    let t = Lang::of(&headers).texts();
    let code = form.code.trim();
    if form.password != form.confirm {
        return reset_page_with(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            code,
            Some(t.password_mismatch.to_string()),
        );
    }
    match confirm_code(&state, code, form.password, ip).await {
        Ok(_) => {
            let mut response = Redirect::to("/?reset=done").into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(ResetError::Change(problem)) => reset_page_with(
            &state,
            &headers,
            problem.status(),
            code,
            Some(problem.text(t)),
        ),
        Err(_) => reset_page_with(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            code,
            Some(t.reset_bad_code.to_string()),
        ),
    }
}
