//! An account's own settings (SPEC §5, §9): its password (which ends its other
//! sessions) and its recovery address; and the way to webmail.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::Form;
use lifeboat_store::auth::AuthError;
use serde::Deserialize;

use super::{done, here, refused, render_status, role_label, Layout, Section, Shared};
use crate::admin::{self, Actor};
use crate::i18n::{Lang, Texts};
use crate::session::Session;
use crate::ClientIp;

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    t: &'static Texts,
    address: String,
    role: &'static str,
    recovery: String,
    protected: bool,
    error: Option<String>,
}

fn account_page(
    state: &crate::AppState,
    session: &Session,
    headers: &HeaderMap,
    uri: &Uri,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let t = Lang::of(headers).texts();
    let page = AccountPage {
        layout: Layout::new(
            state,
            session,
            headers,
            &here(uri),
            Section::Account,
            t.nav_account,
        ),
        t,
        address: session.account.address.clone(),
        role: role_label(t, session.account.role),
        recovery: session.account.recovery.clone().unwrap_or_default(),
        protected: state.store.read(|s| s.is_covered(&session.account.address)),
        error,
    };
    render_status(status, &page)
}

/// `GET /me/account`.
pub(crate) async fn page(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    account_page(&state, &session, &headers, &uri, StatusCode::OK, None)
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    current: String,
    password: String,
    confirm: String,
}

/// `POST /me/account/password`: the current password, then the new one twice.
pub(crate) async fn password(
    State(state): State<Shared>,
    session: Session,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<PasswordForm>,
) -> Response {
    let t = Lang::of(&headers).texts();
    let fail =
        |status, text: String| account_page(&state, &session, &headers, &uri, status, Some(text));
    if form.password != form.confirm {
        return fail(StatusCode::BAD_REQUEST, t.password_mismatch.to_string());
    }
    if let Err(problem) = admin::check_password(&form.password) {
        return fail(problem.status(), problem.text(t));
    }
    // The current password goes through the login checks and their limits.
    let Some(auth) = &state.auth else {
        return fail(
            StatusCode::SERVICE_UNAVAILABLE,
            t.login_unavailable.to_string(),
        );
    };
    match auth
        .login(&session.account.address, &form.current, ip)
        .await
    {
        Ok(_) => {}
        Err(AuthError::Invalid) => {
            return fail(StatusCode::FORBIDDEN, t.current_password_wrong.to_string())
        }
        Err(AuthError::RateLimited) => {
            return fail(
                StatusCode::TOO_MANY_REQUESTS,
                t.login_rate_limited.to_string(),
            )
        }
        Err(AuthError::Unavailable) => {
            return fail(
                StatusCode::SERVICE_UNAVAILABLE,
                t.login_unavailable.to_string(),
            )
        }
    }
    let actor = Actor::account(&session.account.address, ip);
    match admin::set_password(
        &state,
        &actor,
        &session.account,
        form.password,
        "changed by its owner",
    )
    .await
    {
        Ok(()) => {
            if let Some(hash) = state.store.read(|s| {
                s.account(&session.account.address)
                    .map(|a| a.password_hash.clone())
            }) {
                state
                    .sessions
                    .password_changed(&session.key, &session.account.address, &hash);
            }
            done(
                &state,
                &session,
                "/me/account",
                t.password_changed.to_string(),
            )
        }
        Err(problem) => fail(problem.status(), problem.text(t)),
    }
}

#[derive(Deserialize)]
pub(crate) struct RecoveryForm {
    recovery: String,
}

/// `POST /me/account/recovery`: sets or clears (empty) the recovery address.
pub(crate) async fn recovery(
    State(state): State<Shared>,
    session: Session,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<RecoveryForm>,
) -> Response {
    let t = Lang::of(&headers).texts();
    let recovery = form.recovery.trim().to_string();
    // Mail for a recovery address in the account's own domain would land in the
    // portal during an emergency, where it helps nobody (SPEC §5).
    if !recovery.is_empty()
        && lifeboat_store::Address::domain_of(&recovery)
            .eq_ignore_ascii_case(lifeboat_store::Address::domain_of(&session.account.address))
    {
        return account_page(
            &state,
            &session,
            &headers,
            &uri,
            StatusCode::BAD_REQUEST,
            Some(t.recovery_same_domain.to_string()),
        );
    }
    let actor = Actor::account(&session.account.address, ip);
    match admin::update_account(
        &state,
        &actor,
        &session.account,
        None,
        None,
        Some(Some(recovery)),
    )
    .await
    {
        Ok(account) => done(
            &state,
            &session,
            "/me/account",
            match account.recovery {
                Some(_) => t.recovery_saved,
                None => t.recovery_cleared,
            }
            .to_string(),
        ),
        Err(problem) => refused(&state, &session, "/me/account", problem.text(t)),
    }
}
