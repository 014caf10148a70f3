//! Browser sessions for the control panel and webmail (SPEC §9): login cookies, their
//! expiry, and the CSRF token every state change carries.
//!
//! Invariants:
//! - The cookie holds 32 random bytes; the table is keyed by their SHA-256, so looking
//!   a session up compares no secret byte by byte.
//! - A session ends after `session_idle` without a request of its owner, after
//!   `session_max` in any case, on logout, when its account is removed, and when its
//!   account's password changes by any path (panel, API, CLI, reset code): each
//!   session remembers a digest of the password hash it was opened with.
//! - Every POST under the panel passes [`guard_forms`] before any handler: a body of
//!   at most [`FORM_BYTES_MAX`] carrying the session's CSRF token (or, for the forms
//!   shown before login, the token of the form cookie), and not sent from another
//!   site. A handler cannot forget the check. An upload (`multipart/form-data`, the
//!   webmail composer) carries the session's token in its address instead, and its
//!   handler bounds the body as it reads it.
//! - The table is bounded: [`SESSIONS_MAX`] in all, [`SESSIONS_PER_ACCOUNT_MAX`] per
//!   account (an account's oldest session ends first).
//! - Sessions live in memory: a restart logs everyone out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use lifeboat_store::{Account, Role, Store};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::i18n::Lang;
use crate::{AppState, Scope};

/// The session cookie.
pub(crate) const COOKIE: &str = "lifeboat_session";
/// The cookie holding the CSRF token of forms shown before login (double submit).
pub(crate) const FORM_COOKIE: &str = "lifeboat_form";
/// The form field carrying the CSRF token.
pub(crate) const CSRF_FIELD: &str = "_csrf";
/// Sessions kept at most; a login beyond it is refused until some expire.
pub(crate) const SESSIONS_MAX: usize = 100_000;
/// Sessions one account keeps at most; a new one ends the oldest.
pub(crate) const SESSIONS_PER_ACCOUNT_MAX: usize = 50;
/// Largest form body taken (a pasted list of 10,000 addresses fits many times).
pub(crate) const FORM_BYTES_MAX: usize = 2 << 20;

/// A one-time message shown on the next page (after a redirect).
#[derive(Debug, Clone)]
pub(crate) struct Flash {
    pub(crate) ok: bool,
    pub(crate) text: String,
}

struct Entry {
    address: String,
    csrf: String,
    password_mark: [u8; 32],
    created: Instant,
    seen: Instant,
    flash: Option<Flash>,
}

/// The session table.
pub(crate) struct Sessions {
    table: Mutex<HashMap<[u8; 32], Entry>>,
    idle: Duration,
    max: Duration,
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn random_hex() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares in time independent of where the inputs differ.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A logged-in request's session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) key: [u8; 32],
    /// The account as the store has it now.
    pub(crate) account: Account,
    pub(crate) csrf: String,
    /// What the account may see.
    pub(crate) scope: Scope,
}

impl Session {
    /// Whether the account uses the control panel (admins and domain admins).
    pub(crate) fn is_panel(&self) -> bool {
        matches!(self.account.role, Role::Admin | Role::DomainAdmin)
    }
}

impl Sessions {
    pub(crate) fn new(idle: Duration, max: Duration) -> Sessions {
        Sessions {
            table: Mutex::new(HashMap::new()),
            idle,
            max,
        }
    }

    fn expired(&self, entry: &Entry, now: Instant) -> bool {
        now.duration_since(entry.created) >= self.max || now.duration_since(entry.seen) >= self.idle
    }

    /// Opens a session for `account`; the cookie value, or `None` when the table is
    /// full.
    pub(crate) fn open(&self, account: &Account) -> Option<String> {
        let now = Instant::now();
        let token = random_hex();
        let mut table = self.table.lock();
        if table.len() >= SESSIONS_MAX {
            table.retain(|_, e| !self.expired(e, now));
            if table.len() >= SESSIONS_MAX {
                return None;
            }
        }
        let mut own: Vec<([u8; 32], Instant)> = table
            .iter()
            .filter(|(_, e)| e.address == account.address)
            .map(|(k, e)| (*k, e.created))
            .collect();
        if own.len() >= SESSIONS_PER_ACCOUNT_MAX {
            own.sort_by_key(|(_, created)| *created);
            for (key, _) in &own[..=own.len() - SESSIONS_PER_ACCOUNT_MAX] {
                table.remove(key);
            }
        }
        table.insert(
            digest(token.as_bytes()),
            Entry {
                address: account.address.clone(),
                csrf: random_hex(),
                password_mark: digest(account.password_hash.as_bytes()),
                created: now,
                seen: now,
                flash: None,
            },
        );
        Some(token)
    }

    /// The live session of a cookie value. `touch` counts the request as activity
    /// (live updates do not: an open dashboard alone keeps no session alive).
    pub(crate) fn find(&self, token: &str, store: &Store, touch: bool) -> Option<Session> {
        let key = digest(token.as_bytes());
        let now = Instant::now();
        let mut table = self.table.lock();
        let entry = table.get_mut(&key)?;
        let account = store.read(|s| s.account(&entry.address).cloned());
        let live = !self.expired(entry, now)
            && account
                .as_ref()
                .is_some_and(|a| same(&digest(a.password_hash.as_bytes()), &entry.password_mark));
        let Some(account) = account.filter(|_| live) else {
            table.remove(&key);
            return None;
        };
        if touch {
            entry.seen = now;
        }
        Some(Session {
            key,
            scope: Scope::of(&account),
            csrf: entry.csrf.clone(),
            account,
        })
    }

    /// Whether session `key` is still live, without counting as activity (for live
    /// updates, which end with it).
    pub(crate) fn alive(&self, key: &[u8; 32], store: &Store) -> bool {
        let now = Instant::now();
        let mut table = self.table.lock();
        let Some(entry) = table.get(key) else {
            return false;
        };
        let live = !self.expired(entry, now)
            && store.read(|s| {
                s.account(&entry.address).is_some_and(|a| {
                    same(&digest(a.password_hash.as_bytes()), &entry.password_mark)
                })
            });
        if !live {
            table.remove(key);
        }
        live
    }

    /// Ends a session.
    pub(crate) fn end(&self, key: &[u8; 32]) {
        self.table.lock().remove(key);
    }

    /// After the owner changed their password in session `key`: that session goes on
    /// with the new password, every other session of the account ends.
    pub(crate) fn password_changed(&self, key: &[u8; 32], address: &str, new_hash: &str) {
        let mut table = self.table.lock();
        table.retain(|k, e| k == key || e.address != address);
        if let Some(entry) = table.get_mut(key) {
            entry.password_mark = digest(new_hash.as_bytes());
        }
    }

    /// Leaves a message for the session's next page.
    pub(crate) fn flash(&self, key: &[u8; 32], ok: bool, text: String) {
        if let Some(entry) = self.table.lock().get_mut(key) {
            entry.flash = Some(Flash { ok, text });
        }
    }

    /// Takes the message left for this page, if any.
    pub(crate) fn take_flash(&self, key: &[u8; 32]) -> Option<Flash> {
        self.table.lock().get_mut(key)?.flash.take()
    }

    /// Sessions open now.
    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        self.table.lock().len()
    }
}

/// The value of cookie `name`.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Secure when served over TLS;
/// `max_age` of `Some(0)` removes it, `None` makes it last until the browser closes.
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    secure: bool,
    max_age: Option<u64>,
) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        text.push_str("; Secure");
    }
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&text).expect("cookie names and values are ASCII tokens")
}

/// The CSRF token for forms shown before login: the form cookie's, or a new one (the
/// caller sets the cookie when it is new).
pub(crate) fn form_token(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, FORM_COOKIE) {
        Some(token) if token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (token.to_string(), false)
        }
        _ => (random_hex(), true),
    }
}

/// Paths whose forms are used before login (their token is the form cookie's).
fn public_form(path: &str) -> bool {
    matches!(path, "/login" | "/forgot" | "/reset")
}

/// Where a rejected request goes: the login page, remembering where it was going.
pub(crate) struct LoginFirst(String);

impl IntoResponse for LoginFirst {
    fn into_response(self) -> Response {
        let target = if self.0 == "/" || self.0.is_empty() {
            "/".to_string()
        } else {
            format!("/?next={}", crate::panel::url_encode(&self.0))
        };
        Redirect::to(&target).into_response()
    }
}

impl FromRequestParts<Arc<AppState>> for Session {
    type Rejection = LoginFirst;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Session, LoginFirst> {
        let login_first = || {
            let path = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            // Only pages are worth coming back to after login.
            let back = if parts.method == Method::GET {
                path
            } else {
                "/"
            };
            LoginFirst(back.to_string())
        };
        let token = cookie(&parts.headers, COOKIE).ok_or_else(login_first)?;
        let touch = !parts.uri.path().ends_with("/events");
        state
            .sessions
            .find(token, &state.store, touch)
            .ok_or_else(login_first)
    }
}

/// Whether a request's body is `multipart/form-data` (RFC 7578).
pub(crate) fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// Checks every POST before its handler: size, origin and CSRF token (see the module
/// docs); the form's bytes go on to the handler unchanged.
pub(crate) async fn guard_forms(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let lang = Lang::of(request.headers());
    let refuse = |status: StatusCode, text: &str| crate::panel::problem_page(lang, status, text);
    let t = lang.texts();
    // Browsers say where a request comes from; a form of another site is refused
    // whatever it carries.
    let cross_site = request
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site");
    if cross_site {
        return refuse(StatusCode::FORBIDDEN, t.error_csrf);
    }
    if is_multipart(request.headers()) {
        // A file upload (webmail's composer): the body may be as large as a message
        // and is read by its handler as it streams, so the token travels in the
        // form's address (`?_csrf=`) instead.
        let presented = request.uri().query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == CSRF_FIELD)
                .map(|(_, v)| v.into_owned())
        });
        let session_token = cookie(request.headers(), COOKIE)
            .and_then(|token| state.sessions.find(token, &state.store, false))
            .map(|s| s.csrf);
        let valid = matches!((presented, session_token), (Some(p), Some(e)) if same(p.as_bytes(), e.as_bytes()));
        if !valid {
            tracing::info!(path = %request.uri().path(), "upload refused: missing or wrong CSRF token");
            return refuse(StatusCode::FORBIDDEN, t.error_csrf);
        }
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, FORM_BYTES_MAX).await {
        Ok(bytes) => bytes,
        Err(error) if crate::body::timed_out(&error) => {
            tracing::info!(path = %parts.uri.path(), "form refused: {error}");
            return refuse(StatusCode::REQUEST_TIMEOUT, t.error_timed_out);
        }
        Err(_) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, t.error_too_large),
    };
    let presented = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned());
    let session_token = cookie(&parts.headers, COOKIE)
        .and_then(|token| state.sessions.find(token, &state.store, false))
        .map(|s| s.csrf);
    let form_token = public_form(parts.uri.path())
        .then(|| cookie(&parts.headers, FORM_COOKIE))
        .flatten()
        .filter(|t| t.len() == 64)
        .map(str::to_string);
    let valid = presented.as_deref().is_some_and(|p| {
        [session_token, form_token]
            .iter()
            .flatten()
            .any(|expected| same(p.as_bytes(), expected.as_bytes()))
    });
    if !valid {
        tracing::info!(path = %parts.uri.path(), "form refused: missing or wrong CSRF token");
        return refuse(StatusCode::FORBIDDEN, t.error_csrf);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_store::{Batch, Coverage, DomainSettings, Failover, Op, Options};

    fn store_with(address: &str) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Options::default()).unwrap();
        let mut batch = Batch::new();
        batch.push(Op::PutDomain(DomainSettings {
            name: "example.test".into(),
            upstream: "127.0.0.1:25".into(),
            coverage: Coverage::All,
            failover: Failover::Auto,
        }));
        batch.push(Op::AddAccount {
            address: address.into(),
            password_hash: "first".into(),
            role: Role::User,
            covered: false,
            recovery: None,
        });
        store.commit(batch).unwrap();
        (dir, store)
    }

    fn set_hash(store: &Store, address: &str, hash: &str) {
        let mut batch = Batch::new();
        batch.push(Op::SetPassword {
            address: address.into(),
            password_hash: hash.into(),
        });
        store.commit(batch).unwrap();
    }

    #[test]
    fn sessions_end_when_idle_or_old() {
        let (_dir, store) = store_with("alice@example.test");
        let account = store.read(|s| s.account("alice@example.test").cloned().unwrap());
        let sessions = Sessions::new(Duration::from_millis(200), Duration::from_millis(500));
        let token = sessions.open(&account).unwrap();
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(120));
            assert!(sessions.find(&token, &store, true).is_some(), "kept alive");
        }
        std::thread::sleep(Duration::from_millis(150));
        assert!(
            sessions.find(&token, &store, true).is_none(),
            "past session_max"
        );

        let token = sessions.open(&account).unwrap();
        std::thread::sleep(Duration::from_millis(250));
        assert!(
            sessions.find(&token, &store, true).is_none(),
            "idle too long"
        );
        assert_eq!(sessions.count(), 0);
        assert!(sessions.find("nonsense", &store, true).is_none());
    }

    #[test]
    fn a_password_change_ends_the_other_sessions() {
        let (_dir, store) = store_with("alice@example.test");
        let account = store.read(|s| s.account("alice@example.test").cloned().unwrap());
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(60));
        let mine = sessions.open(&account).unwrap();
        let other = sessions.open(&account).unwrap();
        let key = sessions.find(&mine, &store, true).unwrap().key;

        // Changed by the owner in session `mine`.
        set_hash(&store, "alice@example.test", "second");
        sessions.password_changed(&key, "alice@example.test", "second");
        assert!(sessions.find(&mine, &store, true).is_some());
        assert!(sessions.find(&other, &store, true).is_none());

        // Changed elsewhere (an admin, the CLI, a reset code): every session ends.
        set_hash(&store, "alice@example.test", "third");
        assert!(sessions.find(&mine, &store, true).is_none());
    }

    #[test]
    fn an_account_keeps_a_bounded_number_of_sessions() {
        let (_dir, store) = store_with("alice@example.test");
        let account = store.read(|s| s.account("alice@example.test").cloned().unwrap());
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(60));
        let first = sessions.open(&account).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        for _ in 0..SESSIONS_PER_ACCOUNT_MAX {
            sessions.open(&account).unwrap();
        }
        assert_eq!(sessions.count(), SESSIONS_PER_ACCOUNT_MAX);
        assert!(
            sessions.find(&first, &store, true).is_none(),
            "the oldest went"
        );
    }

    #[test]
    fn cookies_are_strict_and_http_only() {
        let value = set_cookie(COOKIE, "abc", true, None);
        assert_eq!(
            value.to_str().unwrap(),
            "lifeboat_session=abc; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; lifeboat_session=xyz"),
        );
        assert_eq!(cookie(&headers, COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), None);
    }
}
