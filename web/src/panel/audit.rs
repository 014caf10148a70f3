//! The audit log page (SPEC §11): filters by actor, action, object and dates, newest
//! first, paged back by id. Admins read all of it, domain admins their domain's.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{here, panel_scope, render_status, url_encode, when, Layout, Section, Shared};
use crate::archive::parse_date;
use crate::audit::{search, AuditQuery};
use crate::i18n::{fill, Lang, Texts};
use crate::session::Session;

/// Entries a page shows.
const PER_PAGE: usize = 100;

/// The actions the filter offers, as stored.
const ACTIONS: [&str; 11] = [
    "domain",
    "domain.add",
    "domain.update",
    "domain.mode",
    "domain.delete",
    "account",
    "account.add",
    "account.update",
    "account.password",
    "account.delete",
    "archive.redeliver",
];

/// An action's name in the page's language.
pub(crate) fn action_label(t: &Texts, action: &str) -> &'static str {
    match action {
        "domain" => t.action_domain_any,
        "domain.add" => t.action_domain_add,
        "domain.update" => t.action_domain_update,
        "domain.mode" => t.action_domain_mode,
        "domain.delete" => t.action_domain_delete,
        "account" => t.action_account_any,
        "account.add" => t.action_account_add,
        "account.update" => t.action_account_update,
        "account.password" => t.action_account_password,
        "account.delete" => t.action_account_delete,
        "archive.redeliver" => t.action_archive_redeliver,
        _ => t.action_other,
    }
}

struct Row {
    when: String,
    actor: String,
    source: String,
    action: &'static str,
    code: String,
    object: String,
    before: String,
    after: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct AuditForm {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    object: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    before: Option<u64>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    t: &'static Texts,
    form: AuditForm,
    actions: Vec<(&'static str, &'static str, bool)>,
    rows: Vec<Row>,
    older: Option<String>,
    newest: Option<String>,
    error: Option<String>,
}

/// `GET /panel/audit`.
pub(crate) async fn page(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Query(form): Query<AuditForm>,
) -> Response {
    let scope = match panel_scope(&session, &headers) {
        Ok(scope) => scope,
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    let date = |v: &str| {
        let v = v.trim();
        if v.is_empty() {
            Ok(None)
        } else {
            parse_date("", v)
                .map(Some)
                .map_err(|_| fill(t.archive_bad_date, &[v]))
        }
    };
    let query = date(&form.since).and_then(|since| {
        Ok(AuditQuery {
            since,
            until: date(&form.until)?,
            actor: Some(form.actor.clone()),
            action: Some(form.action.clone()).filter(|a| !a.is_empty()),
            object: Some(form.object.clone()),
            before: form.before,
            limit: PER_PAGE,
        })
    });
    let (rows, older, error) = match query {
        Err(error) => (Vec::new(), None, Some(error)),
        Ok(query) => {
            let (entries, more) = search(&state, &query, &scope);
            let older = more.then(|| {
                let last = entries.last().map_or(0, |e| e.id);
                format!(
                    "/panel/audit?actor={}&action={}&object={}&since={}&until={}&before={last}",
                    url_encode(&form.actor),
                    url_encode(&form.action),
                    url_encode(&form.object),
                    url_encode(&form.since),
                    url_encode(&form.until),
                )
            });
            let rows = entries
                .into_iter()
                .map(|e| {
                    let r = e.record;
                    Row {
                        when: when(r.at),
                        action: action_label(t, &r.action),
                        code: r.action,
                        actor: if r.actor == crate::admin::Actor::TOKEN {
                            t.actor_token.to_string()
                        } else {
                            r.actor
                        },
                        source: r.source,
                        object: r.object,
                        before: r.before.unwrap_or_default(),
                        after: r.after.unwrap_or_default(),
                    }
                })
                .collect();
            (rows, older, None)
        }
    };
    let newest = form.before.is_some().then(|| {
        format!(
            "/panel/audit?actor={}&action={}&object={}&since={}&until={}",
            url_encode(&form.actor),
            url_encode(&form.action),
            url_encode(&form.object),
            url_encode(&form.since),
            url_encode(&form.until),
        )
    });
    let actions = ACTIONS
        .iter()
        .map(|a| (*a, action_label(t, a), *a == form.action))
        .collect();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = AuditPage {
        layout: Layout::new(
            &state,
            &session,
            &headers,
            &here(&uri),
            Section::Audit,
            t.nav_audit,
        ),
        t,
        form,
        actions,
        rows,
        older,
        newest,
        error,
    };
    render_status(status, &page)
}
