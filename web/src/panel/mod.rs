//! The control panel and the users' workspace (SPEC §9): server-rendered pages, plain
//! forms that work without JavaScript, one small script for live updates.
//!
//! - Routes: `/` (login), `/forgot` and `/reset` (password reset), `/panel/...` for
//!   admins and domain admins, `/me/...` for every account (its own archived mail and
//!   settings), `/static/...`.
//! - Each handler makes exactly one authorisation check before it reads anything: a
//!   [`Session`] (login) and then the scope's answer for the object asked for
//!   ([`panel_scope`], [`visible_domain`], [`managed_account`], the archive's
//!   `Area`). What the scope does not admit is answered like what does not exist.
//! - Every POST has passed `session::guard_forms` (size, origin, CSRF token).
//! - Every response carries the security headers of [`security_headers`]: a CSP
//!   without inline script, no framing (but for the sandboxed message frame, which sets
//!   its own), no sniffing, no referrer to other sites.

use std::sync::{Arc, LazyLock};

use askama::Template;
use axum::extract::{Path, Query, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use lifeboat_store::{Account, Domain, Role};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::i18n::{fill, Lang, Texts, LANG_COOKIE};
use crate::session::{Flash, Session};
use crate::{AppState, Scope};

mod account;
pub(crate) mod archive;
mod audit;
mod dashboard;
mod domains;
mod login;
mod mailboxes;

pub(crate) type Shared = Arc<AppState>;

/// The pages' routes.
pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(login::page))
        .route("/login", post(login::login))
        .route("/logout", post(login::logout))
        .route("/forgot", get(login::forgot_page).post(login::forgot))
        .route("/reset", get(login::reset_page).post(login::reset))
        .route("/lang/{code}", get(switch_language))
        .route("/static/{file}", get(static_file))
        .route("/panel", get(dashboard::page))
        .route("/panel/events", get(dashboard::events))
        .route("/panel/domains", get(domains::list).post(domains::add))
        .route(
            "/panel/domains/{name}",
            get(domains::show).post(domains::update),
        )
        .route(
            "/panel/domains/{name}/mode",
            get(domains::confirm_mode).post(domains::set_mode),
        )
        .route("/panel/domains/{name}/dkim", post(domains::dkim))
        .route(
            "/panel/domains/{name}/delete",
            get(domains::confirm_delete).post(domains::delete),
        )
        .route(
            "/panel/mailboxes",
            get(mailboxes::list).post(mailboxes::add),
        )
        .route(
            "/panel/mailboxes/import",
            get(mailboxes::import_page).post(mailboxes::import),
        )
        .route(
            "/panel/mailboxes/{address}",
            get(mailboxes::show).post(mailboxes::update),
        )
        .route(
            "/panel/mailboxes/{address}/covered",
            post(mailboxes::set_covered),
        )
        .route(
            "/panel/mailboxes/{address}/password",
            post(mailboxes::set_password),
        )
        .route(
            "/panel/mailboxes/{address}/delete",
            get(mailboxes::confirm_delete).post(mailboxes::delete),
        )
        .route("/panel/archive", get(archive::panel_search))
        .route("/panel/archive/{id}", get(archive::panel_show))
        .route("/panel/archive/{id}/html", get(archive::panel_frame))
        .route(
            "/panel/archive/{id}/attachments/{n}",
            get(archive::panel_attachment),
        )
        .route(
            "/panel/archive/{id}/redeliver",
            get(archive::panel_confirm).post(archive::panel_redeliver),
        )
        .route("/panel/audit", get(audit::page))
        .route("/me", get(|| async { Redirect::to("/me/archive") }))
        .route("/me/archive", get(archive::me_search))
        .route("/me/archive/{id}", get(archive::me_show))
        .route("/me/archive/{id}/html", get(archive::me_frame))
        .route(
            "/me/archive/{id}/attachments/{n}",
            get(archive::me_attachment),
        )
        .route(
            "/me/archive/{id}/redeliver",
            get(archive::me_confirm).post(archive::me_redeliver),
        )
        .route("/me/account", get(account::page))
        .route("/me/account/password", post(account::password))
        .route("/me/account/recovery", post(account::recovery))
        .merge(crate::mail::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::session::guard_forms,
        ))
        .with_state(state)
}

// ---- Security headers -----------------------------------------------------------

/// The pages' Content-Security-Policy: scripts and styles only from `/static`, no
/// inline script, frames only from this origin (the message frame), no framing.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; frame-src 'self'; form-action 'self'; \
frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers a response does not set itself.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut default = |name: header::HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    default(header::CONTENT_SECURITY_POLICY, PAGE_CSP);
    default(header::X_FRAME_OPTIONS, "DENY");
    default(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    default(header::REFERRER_POLICY, "same-origin");
    default(header::CACHE_CONTROL, "no-store");
    response
}

// ---- Rendering ------------------------------------------------------------------

/// Renders a page; a template error (none is expected) is a 500.
pub(crate) fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!("rendering a page: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "page rendering failed").into_response()
        }
    }
}

/// [`render`] with another status.
pub(crate) fn render_status(status: StatusCode, page: &impl Template) -> Response {
    let mut response = render(page);
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

/// A link of the navigation bar.
pub(crate) struct NavItem {
    pub(crate) href: &'static str,
    pub(crate) label: &'static str,
    pub(crate) active: bool,
}

/// The sections of the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Dashboard,
    Domains,
    Mailboxes,
    Archive,
    Audit,
    MyArchive,
    Account,
    Webmail,
}

/// What every page's frame shows: title, navigation, who is logged in, the language
/// switch, a message left by the last action.
pub(crate) struct Layout {
    pub(crate) t: &'static Texts,
    pub(crate) lang: &'static str,
    pub(crate) title: String,
    pub(crate) nav: Vec<NavItem>,
    pub(crate) address: String,
    pub(crate) role: &'static str,
    pub(crate) csrf: String,
    pub(crate) flash: Option<Flash>,
    pub(crate) languages: Vec<(&'static str, &'static str, bool)>,
    /// Where the language switch comes back to.
    pub(crate) here: String,
    pub(crate) assets: &'static str,
}

impl Layout {
    /// The frame of a logged-in page.
    pub(crate) fn new(
        state: &AppState,
        session: &Session,
        headers: &HeaderMap,
        here: &str,
        section: Section,
        title: &str,
    ) -> Layout {
        let lang = Lang::of(headers);
        let t = lang.texts();
        let item = |href, label, s| NavItem {
            href,
            label,
            active: s == section,
        };
        let mut nav = Vec::new();
        if session.is_panel() {
            nav.push(item("/panel", t.nav_dashboard, Section::Dashboard));
            nav.push(item("/panel/domains", t.nav_domains, Section::Domains));
            nav.push(item(
                "/panel/mailboxes",
                t.nav_mailboxes,
                Section::Mailboxes,
            ));
            nav.push(item("/panel/archive", t.nav_archive, Section::Archive));
            nav.push(item("/panel/audit", t.nav_audit, Section::Audit));
        } else {
            nav.push(item("/me/archive", t.nav_my_archive, Section::MyArchive));
        }
        nav.push(item("/mail", t.nav_webmail, Section::Webmail));
        nav.push(item("/me/account", t.nav_account, Section::Account));
        Layout {
            t,
            lang: lang.code(),
            title: title.to_string(),
            nav,
            address: session.account.address.clone(),
            role: role_label(t, session.account.role),
            csrf: session.csrf.clone(),
            flash: state.sessions.take_flash(&session.key),
            languages: languages(lang),
            here: here.to_string(),
            assets: asset_version(),
        }
    }

    /// The frame of a page shown before login.
    pub(crate) fn public(lang: Lang, csrf: &str, here: &str, title: &str) -> Layout {
        Layout {
            t: lang.texts(),
            lang: lang.code(),
            title: title.to_string(),
            nav: Vec::new(),
            address: String::new(),
            role: "",
            csrf: csrf.to_string(),
            flash: None,
            languages: languages(lang),
            here: here.to_string(),
            assets: asset_version(),
        }
    }
}

fn languages(current: Lang) -> Vec<(&'static str, &'static str, bool)> {
    Lang::ALL
        .iter()
        .map(|l| (l.code(), l.name(), *l == current))
        .collect()
}

pub(crate) fn role_label(t: &Texts, role: Role) -> &'static str {
    match role {
        Role::Admin => t.role_admin,
        Role::DomainAdmin => t.role_domain_admin,
        Role::User => t.role_user,
    }
}

/// The current path and query, for links back.
pub(crate) fn here(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into())
}

/// Percent-encodes a value for a URL's query or path.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A date and time as the pages show it (UTC).
pub(crate) fn when(unix: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .map(|s| format!("{s} UTC"))
        .unwrap_or_else(|| "-".into())
}

/// How long ago, in words.
pub(crate) fn ago(t: &Texts, unix: i64) -> String {
    let seconds = (lifeboat_store::now() - unix).max(0);
    match seconds {
        0..=59 => t.ago_now.to_string(),
        60..=3599 => fill(t.ago_minutes, &[&(seconds / 60).to_string()]),
        3600..=172_799 => fill(t.ago_hours, &[&(seconds / 3600).to_string()]),
        _ => fill(t.ago_days, &[&(seconds / 86_400).to_string()]),
    }
}

/// A size in bytes, in words.
pub(crate) fn size(bytes: u64) -> String {
    match bytes {
        0..=1023 => format!("{bytes} B"),
        1024..=1_048_575 => format!("{:.1} KB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MB", bytes as f64 / 1_048_576.0),
    }
}

// ---- Errors and checks ----------------------------------------------------------

#[derive(Template)]
#[template(path = "problem.html")]
struct ProblemPage {
    layout: Layout,
    t: &'static Texts,
    heading: &'static str,
    text: String,
}

/// A page saying what went wrong, with a way back.
pub(crate) fn problem_page(lang: Lang, status: StatusCode, text: &str) -> Response {
    let t = lang.texts();
    let heading = match status {
        StatusCode::NOT_FOUND => t.error_not_found_title,
        StatusCode::FORBIDDEN => t.error_forbidden_title,
        StatusCode::PAYLOAD_TOO_LARGE => t.error_too_large_title,
        _ => t.error_title,
    };
    let page = ProblemPage {
        layout: Layout::public(lang, "", "/", heading),
        t,
        heading,
        text: text.to_string(),
    };
    render_status(status, &page)
}

/// The answer for anything the caller may not see: the same as for what does not
/// exist.
pub(crate) fn not_found_for(headers: &HeaderMap) -> Response {
    let lang = Lang::of(headers);
    problem_page(lang, StatusCode::NOT_FOUND, lang.texts().error_not_found)
}

async fn not_found(headers: HeaderMap) -> Response {
    not_found_for(&headers)
}

/// What a check answers for what the caller may not see: the page for what does
/// not exist.
pub(crate) struct Hidden(Lang);

impl Hidden {
    pub(crate) fn of(headers: &HeaderMap) -> Hidden {
        Hidden(Lang::of(headers))
    }
}

impl IntoResponse for Hidden {
    fn into_response(self) -> Response {
        problem_page(
            self.0,
            StatusCode::NOT_FOUND,
            self.0.texts().error_not_found,
        )
    }
}

/// The one check of panel pages that show no single object: the account's role uses
/// the panel. Returns its scope.
pub(crate) fn panel_scope(session: &Session, headers: &HeaderMap) -> Result<Scope, Hidden> {
    if session.is_panel() {
        Ok(session.scope.clone())
    } else {
        Err(Hidden::of(headers))
    }
}

/// The one check of pages about a domain: it exists and the session's scope sees it.
pub(crate) fn visible_domain(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    name: &str,
) -> Result<Domain, Hidden> {
    let scope = panel_scope(session, headers)?;
    crate::admin::find_domain(state, name)
        .ok()
        .filter(|d| scope.sees_domain(&d.name))
        .ok_or_else(|| Hidden::of(headers))
}

/// The one check of pages about a mailbox: it exists and the session's scope manages
/// it.
pub(crate) fn managed_account(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    address: &str,
) -> Result<Account, Hidden> {
    let scope = panel_scope(session, headers)?;
    crate::admin::find_account(state, address)
        .ok()
        .filter(|a| scope.manages(a))
        .ok_or_else(|| Hidden::of(headers))
}

/// Redirects after a change, leaving a message for the next page.
pub(crate) fn done(state: &AppState, session: &Session, to: &str, text: String) -> Response {
    state.sessions.flash(&session.key, true, text);
    Redirect::to(to).into_response()
}

/// Redirects after a refused change, leaving the reason for the next page.
pub(crate) fn refused(state: &AppState, session: &Session, to: &str, text: String) -> Response {
    state.sessions.flash(&session.key, false, text);
    Redirect::to(to).into_response()
}

/// Page numbers for lists.
pub(crate) struct Pager {
    pub(crate) page: usize,
    pub(crate) pages: usize,
    pub(crate) prev: Option<String>,
    pub(crate) next: Option<String>,
    pub(crate) summary: String,
}

impl Pager {
    /// Page `page` (from 1) of `total` items, `per_page` a page; `link(n)` is page n's
    /// address.
    pub(crate) fn new(
        t: &Texts,
        page: usize,
        per_page: usize,
        total: usize,
        link: impl Fn(usize) -> String,
    ) -> Pager {
        let pages = total.div_ceil(per_page).max(1);
        let page = page.clamp(1, pages);
        let first = if total == 0 {
            0
        } else {
            (page - 1) * per_page + 1
        };
        let last = (page * per_page).min(total);
        Pager {
            page,
            pages,
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
            summary: fill(
                t.pager_summary,
                &[&first.to_string(), &last.to_string(), &total.to_string()],
            ),
        }
    }
}

// ---- Language and static files --------------------------------------------------

#[derive(Deserialize)]
struct Back {
    back: Option<String>,
}

/// A path on this site to come back to, or `/` (never another site's address:
/// browsers drop tabs and newlines from addresses and read `\` as `/`, so
/// `/<tab>/host` or `/\host` would lead elsewhere).
pub(crate) fn local_path(back: Option<&str>) -> String {
    match back {
        Some(p)
            if p.starts_with('/')
                && p.bytes().all(|b| b.is_ascii_graphic())
                && !p.starts_with("//")
                && !p.contains('\\') =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

/// The language switch: remembers the choice for a year, then goes back.
async fn switch_language(Path(code): Path<String>, Query(back): Query<Back>) -> Response {
    let target = local_path(back.back.as_deref());
    let Some(lang) = Lang::from_code(&code) else {
        return Redirect::to(&target).into_response();
    };
    let mut response = Redirect::to(&target).into_response();
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
        lang.code()
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

const CSS: &str = include_str!("../../static/panel.css");
const JS: &str = include_str!("../../static/panel.js");
const LOGO: &str = include_str!("../../static/logo.svg");

/// A short digest of the static files, in their links, so a new release's are fetched
/// at once while each stays cached for a long time.
pub(crate) fn asset_version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        let digest = Sha256::new()
            .chain_update(CSS)
            .chain_update(JS)
            .chain_update(LOGO)
            .finalize();
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    });
    &VERSION
}

async fn static_file(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let (body, content_type) = match file.as_str() {
        "panel.css" => (CSS, "text/css; charset=utf-8"),
        "panel.js" => (JS, "text/javascript; charset=utf-8"),
        "logo.svg" => (LOGO, "image/svg+xml"),
        _ => return not_found_for(&headers),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_paths_of_this_site_are_gone_back_to() {
        assert_eq!(local_path(Some("/panel/audit?x=1")), "/panel/audit?x=1");
        for elsewhere in [
            "//evil.test/",
            "/\\evil.test",
            "/\t/evil.test",
            "/\n/evil.test",
            "https://evil.test/",
            "evil.test",
            "",
        ] {
            assert_eq!(local_path(Some(elsewhere)), "/", "{elsewhere:?}");
        }
        assert_eq!(local_path(None), "/");
    }
}
