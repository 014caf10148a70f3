//! Archived mail in the browser (SPEC §4, §9): search, view, attachments and
//! re-delivery, in two areas with one code: the panel's (`/panel/archive`, an admin's
//! or domain admin's scope) and every account's own (`/me/archive`, the mail it sent
//! or received, whatever its role).
//!
//! A message's HTML is shown only inside `<iframe sandbox>` loading `…/html`, which
//! answers with the sanitised HTML and a CSP of its own: no script, nothing remote
//! unless the reader asks (`?remote=1`), framed only by this site.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use lifeboat_store::{Address, ArchiveEntry, ArchiveQuery, Direction, Mode};
use serde::Deserialize;

use super::{
    done, here, not_found_for, panel_scope, refused, render, render_status, size, url_encode, when,
    Hidden, Layout, Pager, Section, Shared,
};
use crate::admin::{self, Actor};
use crate::archive::{self as store_archive, parse_date, parse_direction, ARCHIVE_RESULTS_MAX};
use crate::i18n::{fill, Lang, Texts};
use crate::session::Session;
use crate::{AppState, ClientIp, Scope};

/// Results a search page shows.
const PER_PAGE: usize = 50;

/// Which archive a page is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    /// The panel's: what the role sees.
    Panel,
    /// The account's own mail.
    Me,
}

impl Area {
    fn base(self) -> &'static str {
        match self {
            Area::Panel => "/panel/archive",
            Area::Me => "/me/archive",
        }
    }

    fn section(self) -> Section {
        match self {
            Area::Panel => Section::Archive,
            Area::Me => Section::MyArchive,
        }
    }

    /// The one check of an archive page: the scope this session reads it with.
    fn scope(self, session: &Session, headers: &HeaderMap) -> Result<Scope, Hidden> {
        match self {
            Area::Panel => panel_scope(session, headers),
            Area::Me => Ok(Scope::Address(session.account.address.clone())),
        }
    }
}

/// A result row.
struct Row {
    href: String,
    when: String,
    outbound: bool,
    from: String,
    to: String,
    subject: String,
    size: String,
}

#[derive(Deserialize, Default, Clone)]
pub(crate) struct SearchForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    direction: String,
    page: Option<usize>,
}

impl SearchForm {
    fn is_empty(&self) -> bool {
        [
            &self.from,
            &self.to,
            &self.subject,
            &self.text,
            &self.since,
            &self.until,
            &self.direction,
        ]
        .iter()
        .all(|f| f.trim().is_empty())
    }

    /// Whether a filter beyond the words is set (the page then shows them open).
    fn advanced(&self) -> bool {
        [
            &self.from,
            &self.to,
            &self.subject,
            &self.since,
            &self.until,
            &self.direction,
        ]
        .iter()
        .any(|f| !f.trim().is_empty())
    }

    fn link(&self, base: &str, page: usize) -> String {
        let fields = [
            ("from", &self.from),
            ("to", &self.to),
            ("subject", &self.subject),
            ("text", &self.text),
            ("since", &self.since),
            ("until", &self.until),
            ("direction", &self.direction),
        ];
        let mut out = format!("{base}?page={page}");
        for (k, v) in fields {
            if !v.is_empty() {
                out.push_str(&format!("&{k}={}", url_encode(v)));
            }
        }
        out
    }
}

#[derive(Template)]
#[template(path = "archive.html")]
struct SearchPage {
    layout: Layout,
    t: &'static Texts,
    base: &'static str,
    own: bool,
    form: SearchForm,
    rows: Vec<Row>,
    pager: Option<Pager>,
    capped: bool,
    searched: bool,
    error: Option<String>,
}

fn optional(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn search_query(t: &Texts, form: &SearchForm, limit: usize) -> Result<ArchiveQuery, String> {
    let date = |value: &str| {
        optional(value)
            .map(|v| parse_date("", &v).map_err(|_| fill(t.archive_bad_date, &[&v])))
            .transpose()
    };
    Ok(ArchiveQuery {
        from: optional(&form.from),
        to: optional(&form.to),
        subject: optional(&form.subject),
        text: optional(&form.text),
        since: date(&form.since)?,
        until: date(&form.until)?,
        direction: optional(&form.direction)
            .map(|d| parse_direction(&d).map_err(|_| fill(t.archive_bad_direction, &[&d])))
            .transpose()?,
        limit,
        ..ArchiveQuery::default()
    })
}

fn row(area: Area, e: &ArchiveEntry) -> Row {
    let from = if e.headers.from.is_empty() {
        e.mail_from.clone()
    } else {
        e.headers.from.clone()
    };
    let to = if e.headers.to.is_empty() {
        e.rcpt_to.join(", ")
    } else {
        e.headers.to.clone()
    };
    Row {
        href: format!("{}/{}", area.base(), e.id),
        when: when(e.date),
        outbound: e.direction == Direction::Out,
        from,
        to,
        subject: e.headers.subject.clone(),
        size: size(e.size),
    }
}

async fn search(
    area: Area,
    state: Shared,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    form: SearchForm,
) -> Response {
    let scope = match area.scope(&session, &headers) {
        Ok(scope) => scope,
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    let page = form.page.unwrap_or(1).max(1);
    let deepest = ARCHIVE_RESULTS_MAX / PER_PAGE;
    let page = page.min(deepest);
    let limit = (page * PER_PAGE + 1).min(ARCHIVE_RESULTS_MAX);
    let (rows, pager, capped, error) = match search_query(t, &form, limit) {
        Err(error) => (Vec::new(), None, false, Some(error)),
        Ok(query) => match store_archive::search(&state, query, &scope).await {
            Err(problem) => (Vec::new(), None, false, Some(problem.text(t))),
            Ok(hits) => {
                let capped = hits.len() >= ARCHIVE_RESULTS_MAX;
                let more = hits.len() > page * PER_PAGE;
                let rows: Vec<Row> = hits
                    .iter()
                    .skip((page - 1) * PER_PAGE)
                    .take(PER_PAGE)
                    .map(|e| row(area, e))
                    .collect();
                let known = (page - 1) * PER_PAGE + rows.len() + usize::from(more);
                let pager = Pager::new(t, page, PER_PAGE, known, |n| form.link(area.base(), n));
                (rows, Some(pager), capped, None)
            }
        },
    };
    let title = match area {
        Area::Panel => t.nav_archive,
        Area::Me => t.nav_my_archive,
    };
    let page = SearchPage {
        layout: Layout::new(
            &state,
            &session,
            &headers,
            &here(&uri),
            area.section(),
            title,
        ),
        t,
        base: area.base(),
        own: area == Area::Me,
        searched: !form.is_empty(),
        form,
        rows,
        pager,
        capped,
        error: error.clone(),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render_status(status, &page)
}

/// An attachment as the view lists it.
struct AttachmentRow {
    href: String,
    name: String,
    kind: String,
    size: String,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    layout: Layout,
    t: &'static Texts,
    base: &'static str,
    id: String,
    subject: String,
    from: String,
    to: String,
    cc: String,
    date: String,
    received: String,
    outbound: bool,
    envelope_from: String,
    envelope_to: String,
    message_id: String,
    size: String,
    header: String,
    text: String,
    html_src: Option<String>,
    remote: bool,
    remote_href: String,
    attachments: Vec<AttachmentRow>,
}

#[derive(Deserialize)]
pub(crate) struct ViewQuery {
    remote: Option<String>,
}

async fn show(
    area: Area,
    state: Shared,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    id: String,
    query: ViewQuery,
) -> Response {
    let scope = match area.scope(&session, &headers) {
        Ok(scope) => scope,
        Err(hidden) => return hidden.into_response(),
    };
    let Ok(entry) = store_archive::find(&state, &id, &scope) else {
        return not_found_for(&headers);
    };
    let t = Lang::of(&headers).texts();
    let view = match store_archive::view(&state, &entry) {
        Ok(view) => view,
        Err(problem) => {
            return super::problem_page(Lang::of(&headers), problem.status(), &problem.text(t))
        }
    };
    let remote = query.remote.is_some();
    let href = format!("{}/{}", area.base(), entry.id);
    let subject = if entry.headers.subject.is_empty() {
        t.no_subject.to_string()
    } else {
        entry.headers.subject.clone()
    };
    let page = MessagePage {
        layout: Layout::new(
            &state,
            &session,
            &headers,
            &here(&uri),
            area.section(),
            &subject,
        ),
        t,
        base: area.base(),
        id: entry.id.to_string(),
        subject,
        from: entry.headers.from.clone(),
        to: entry.headers.to.clone(),
        cc: entry.headers.cc.clone(),
        date: entry.headers.date.clone(),
        received: when(entry.date),
        outbound: entry.direction == Direction::Out,
        envelope_from: if entry.mail_from.is_empty() {
            "<>".into()
        } else {
            entry.mail_from.clone()
        },
        envelope_to: entry.rcpt_to.join(", "),
        message_id: entry.headers.message_id.clone(),
        size: size(entry.size),
        header: view.header,
        text: view.text,
        html_src: view
            .has_html
            .then(|| format!("{href}/html{}", if remote { "?remote=1" } else { "" })),
        remote,
        remote_href: if remote {
            href.clone()
        } else {
            format!("{href}?remote=1")
        },
        attachments: view
            .attachments
            .iter()
            .map(|a| AttachmentRow {
                href: format!("{href}/attachments/{}", a.index),
                name: a.name.clone().unwrap_or_else(|| t.unnamed.to_string()),
                kind: a.content_type.clone().unwrap_or_default(),
                size: size(a.size as u64),
            })
            .collect(),
    };
    render(&page)
}

/// The frame's CSP: inline styles of the mail, images only inline (or remote when the
/// reader asked), nothing else; sandboxed again by the header itself.
fn frame_csp(remote: bool) -> &'static str {
    if remote {
        "default-src 'none'; style-src 'unsafe-inline'; img-src data: https: http:; \
         font-src data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'; \
         sandbox allow-popups allow-popups-to-escape-sandbox"
    } else {
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; \
         frame-ancestors 'self'; base-uri 'none'; form-action 'none'; \
         sandbox allow-popups allow-popups-to-escape-sandbox"
    }
}

async fn frame(
    area: Area,
    state: Shared,
    session: Session,
    headers: HeaderMap,
    id: String,
    query: ViewQuery,
) -> Response {
    let scope = match area.scope(&session, &headers) {
        Ok(scope) => scope,
        Err(hidden) => return hidden.into_response(),
    };
    let Ok(entry) = store_archive::find(&state, &id, &scope) else {
        return not_found_for(&headers);
    };
    let remote = query.remote.is_some();
    let Ok(Some((html, _blocked))) = store_archive::safe_html(&state, &entry, remote) else {
        return not_found_for(&headers);
    };
    frame_response(&html, remote)
}

/// The document of a message frame: the sanitised HTML with the frame's own CSP
/// ([`frame_csp`]), framed by this site only.
pub(crate) fn frame_response(html: &str, remote: bool) -> Response {
    let document = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>body{{font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
         color:#1f2933;margin:16px;overflow-wrap:anywhere}}img{{max-width:100%;height:auto}}\
         table{{max-width:100%}}</style></head><body>{html}</body></html>"
    );
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        document,
    )
        .into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(frame_csp(remote)),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `filename*` of RFC 6266 §4.3 with an ASCII fallback.
fn disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

async fn attachment(
    area: Area,
    state: Shared,
    session: Session,
    headers: HeaderMap,
    id: String,
    n: usize,
) -> Response {
    let scope = match area.scope(&session, &headers) {
        Ok(scope) => scope,
        Err(hidden) => return hidden.into_response(),
    };
    let Ok(entry) = store_archive::find(&state, &id, &scope) else {
        return not_found_for(&headers);
    };
    let Ok(Some(found)) = store_archive::attachment(&state, &entry, n) else {
        return not_found_for(&headers);
    };
    attachment_response(found, n)
}

/// An attachment as a download: its name (RFC 6266), its type if it is a plain
/// `type/subtype`, never rendered by the browser (`attachment`, no sniffing, a CSP
/// that runs nothing should it be opened anyway).
pub(crate) fn attachment_response(found: store_archive::AttachmentBytes, n: usize) -> Response {
    let store_archive::AttachmentBytes {
        bytes,
        name,
        content_type: kind,
    } = found;
    let name = name.unwrap_or_else(|| format!("attachment-{}", n + 1));
    // `type/subtype` of token characters, or no type the browser could act on.
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".+-".contains(&b))
    };
    let kind = kind
        .filter(|k| {
            k.split_once('/')
                .is_some_and(|(t, sub)| token(t) && token(sub))
        })
        .unwrap_or_else(|| "application/octet-stream".into());
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&kind) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&disposition(&name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Where a re-delivery would go.
struct Target {
    address: String,
    place: &'static str,
}

#[derive(Template)]
#[template(path = "redeliver.html")]
struct RedeliverPage {
    layout: Layout,
    t: &'static Texts,
    href: String,
    subject: String,
    from: String,
    targets: Vec<Target>,
}

/// The mailboxes a re-delivery of `entry` reaches for `scope` (as the relay decides:
/// inbound to its recipients, outbound to its sender, protected domains only), and
/// where each goes now.
fn targets(state: &AppState, t: &Texts, entry: &ArchiveEntry, scope: &Scope) -> Vec<Target> {
    let candidates = match entry.direction {
        Direction::In => entry.rcpt_to.clone(),
        Direction::Out => vec![entry.mail_from.clone()],
    };
    state.store.read(|s| {
        candidates
            .into_iter()
            .filter(|a| scope.admits(a))
            .filter_map(|a| {
                let domain = s.domain(Address::domain_of(&a))?;
                let place = if domain.mode == Mode::Emergency && s.is_covered(&a) {
                    t.redeliver_to_portal
                } else {
                    t.redeliver_to_upstream
                };
                Some(Target { address: a, place })
            })
            .collect()
    })
}

async fn confirm(
    area: Area,
    state: Shared,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    id: String,
) -> Response {
    let scope = match area.scope(&session, &headers) {
        Ok(scope) => scope,
        Err(hidden) => return hidden.into_response(),
    };
    let Ok(entry) = store_archive::find(&state, &id, &scope) else {
        return not_found_for(&headers);
    };
    let t = Lang::of(&headers).texts();
    let page = RedeliverPage {
        layout: Layout::new(
            &state,
            &session,
            &headers,
            &here(&uri),
            area.section(),
            t.redeliver_title,
        ),
        t,
        href: format!("{}/{}", area.base(), entry.id),
        subject: if entry.headers.subject.is_empty() {
            t.no_subject.to_string()
        } else {
            entry.headers.subject.clone()
        },
        from: entry.headers.from.clone(),
        targets: targets(&state, t, &entry, &scope),
    };
    render(&page)
}

async fn redeliver(
    area: Area,
    state: Shared,
    session: Session,
    ip: std::net::IpAddr,
    headers: HeaderMap,
    id: String,
) -> Response {
    let scope = match area.scope(&session, &headers) {
        Ok(scope) => scope,
        Err(hidden) => return hidden.into_response(),
    };
    let Ok(entry) = store_archive::find(&state, &id, &scope) else {
        return not_found_for(&headers);
    };
    let t = Lang::of(&headers).texts();
    let href = format!("{}/{}", area.base(), entry.id);
    let actor = Actor::account(&session.account.address, ip);
    match admin::redeliver(&state, &actor, &entry, &scope).await {
        Ok(to) => done(
            &state,
            &session,
            &href,
            fill(t.redelivered, &[&to.join(", ")]),
        ),
        Err(problem) => refused(&state, &session, &href, problem.text(t)),
    }
}

// ---- Routes of both areas -------------------------------------------------------

pub(crate) async fn panel_search(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Query(form): Query<SearchForm>,
) -> Response {
    search(Area::Panel, state, session, headers, uri, form).await
}

pub(crate) async fn me_search(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Query(form): Query<SearchForm>,
) -> Response {
    search(Area::Me, state, session, headers, uri, form).await
}

pub(crate) async fn panel_show(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Query(query): Query<ViewQuery>,
) -> Response {
    show(Area::Panel, state, session, headers, uri, id, query).await
}

pub(crate) async fn me_show(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Query(query): Query<ViewQuery>,
) -> Response {
    show(Area::Me, state, session, headers, uri, id, query).await
}

pub(crate) async fn panel_frame(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<ViewQuery>,
) -> Response {
    frame(Area::Panel, state, session, headers, id, query).await
}

pub(crate) async fn me_frame(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<ViewQuery>,
) -> Response {
    frame(Area::Me, state, session, headers, id, query).await
}

pub(crate) async fn panel_attachment(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    Path((id, n)): Path<(String, usize)>,
) -> Response {
    attachment(Area::Panel, state, session, headers, id, n).await
}

pub(crate) async fn me_attachment(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    Path((id, n)): Path<(String, usize)>,
) -> Response {
    attachment(Area::Me, state, session, headers, id, n).await
}

pub(crate) async fn panel_confirm(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    confirm(Area::Panel, state, session, headers, uri, id).await
}

pub(crate) async fn me_confirm(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    confirm(Area::Me, state, session, headers, uri, id).await
}

pub(crate) async fn panel_redeliver(
    State(state): State<Shared>,
    session: Session,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    redeliver(Area::Panel, state, session, ip, headers, id).await
}

pub(crate) async fn me_redeliver(
    State(state): State<Shared>,
    session: Session,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    redeliver(Area::Me, state, session, ip, headers, id).await
}
