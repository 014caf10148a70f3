//! Domains (SPEC §9): list, add, edit upstream/coverage/failover, switch mode behind a
//! confirmation that says what will happen to mail, delete. Admins see and add every
//! domain; a domain admin sees and edits only their own, and adds or removes none.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use lifeboat_store::{Coverage, DkimKey, Domain, DomainDkim, Failover, Mode, INBOX};
use serde::Deserialize;

use super::dashboard::{health_label, mode_label};
use super::{
    ago, done, here, not_found_for, panel_scope, refused, render, render_status, url_encode,
    visible_domain, when, Layout, Section, Shared,
};
use crate::admin::{self, coverage_str, failover_str, Actor, DkimRequest, ModeRequest, Problem};
use crate::i18n::{fill, Lang, Texts};
use crate::session::Session;
use crate::{ClientIp, Scope};

/// Mode changes the domain page shows.
const HISTORY_ITEMS: usize = 50;

/// A row of the domain list.
struct Row {
    name: String,
    upstream: String,
    coverage: &'static str,
    failover: &'static str,
    mode: &'static str,
    mode_label: &'static str,
    forced: bool,
    accounts: usize,
}

/// The add form's values, kept when it is refused.
#[derive(Default)]
struct AddForm {
    name: String,
    upstream: String,
    coverage: String,
    failover: String,
}

#[derive(Template)]
#[template(path = "domains.html")]
struct DomainsPage {
    layout: Layout,
    t: &'static Texts,
    rows: Vec<Row>,
    may_add: bool,
    form: AddForm,
    error: Option<String>,
}

fn coverage_label(t: &Texts, c: Coverage) -> &'static str {
    match c {
        Coverage::All => t.coverage_all,
        Coverage::Selected => t.coverage_selected,
    }
}

fn failover_label(t: &Texts, f: Failover) -> &'static str {
    match f {
        Failover::Auto => t.failover_auto,
        Failover::Manual => t.failover_manual,
    }
}

#[allow(clippy::too_many_arguments)]
fn list_page(
    state: &crate::AppState,
    session: &Session,
    headers: &HeaderMap,
    uri: &Uri,
    scope: &Scope,
    status: StatusCode,
    form: AddForm,
    error: Option<String>,
) -> Response {
    let t = Lang::of(headers).texts();
    let rows = state.store.read(|s| {
        s.domains()
            .filter(|d| scope.sees_domain(&d.name))
            .map(|d| Row {
                name: d.name.clone(),
                upstream: d.upstream.clone(),
                coverage: coverage_label(t, d.coverage),
                failover: failover_label(t, d.failover),
                mode: d.mode.as_str(),
                mode_label: mode_label(t, d.mode),
                forced: d.forced.is_some(),
                accounts: s.accounts(Some(&d.name)).count(),
            })
            .collect()
    });
    let page = DomainsPage {
        layout: Layout::new(
            state,
            session,
            headers,
            &here(uri),
            Section::Domains,
            t.nav_domains,
        ),
        t,
        rows,
        may_add: *scope == Scope::All,
        form,
        error,
    };
    render_status(status, &page)
}

/// `GET /panel/domains`.
pub(crate) async fn list(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let scope = match panel_scope(&session, &headers) {
        Ok(scope) => scope,
        Err(hidden) => return hidden.into_response(),
    };
    let form = AddForm {
        coverage: "all".into(),
        failover: "auto".into(),
        ..AddForm::default()
    };
    list_page(
        &state,
        &session,
        &headers,
        &uri,
        &scope,
        StatusCode::OK,
        form,
        None,
    )
}

#[derive(Deserialize)]
pub(crate) struct NewDomainForm {
    name: String,
    upstream: String,
    coverage: String,
    failover: String,
}

fn parse_coverage(s: &str) -> Option<Coverage> {
    match s {
        "all" => Some(Coverage::All),
        "selected" => Some(Coverage::Selected),
        _ => None,
    }
}

fn parse_failover(s: &str) -> Option<Failover> {
    match s {
        "auto" => Some(Failover::Auto),
        "manual" => Some(Failover::Manual),
        _ => None,
    }
}

/// `POST /panel/domains`: admins only.
pub(crate) async fn add(
    State(state): State<Shared>,
    session: Session,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<NewDomainForm>,
) -> Response {
    if session.scope != Scope::All || !session.is_panel() {
        return not_found_for(&headers);
    }
    let t = Lang::of(&headers).texts();
    let (Some(coverage), Some(failover)) = (
        parse_coverage(&form.coverage),
        parse_failover(&form.failover),
    ) else {
        return not_found_for(&headers);
    };
    let actor = Actor::account(&session.account.address, ip);
    match admin::add_domain(
        &state,
        &actor,
        &form.name,
        &form.upstream,
        coverage,
        failover,
    )
    .await
    {
        Ok(domain) => done(
            &state,
            &session,
            &format!("/panel/domains/{}", url_encode(&domain.name)),
            fill(t.domain_added, &[&domain.name]),
        ),
        Err(problem) => list_page(
            &state,
            &session,
            &headers,
            &uri,
            &Scope::All,
            problem.status(),
            AddForm {
                name: form.name,
                upstream: form.upstream,
                coverage: form.coverage,
                failover: form.failover,
            },
            Some(problem.text(t)),
        ),
    }
}

/// A mode change in the domain's history.
struct HistoryItem {
    when: String,
    ago: String,
    from_label: &'static str,
    to: &'static str,
    to_label: &'static str,
    forced: bool,
    reason: String,
}

#[derive(Template)]
#[template(path = "domain.html")]
struct DomainPage {
    layout: Layout,
    t: &'static Texts,
    name: String,
    upstream: String,
    coverage: &'static str,
    failover: &'static str,
    mode: &'static str,
    mode_label: &'static str,
    control: &'static str,
    forced: Option<&'static str>,
    health_label: &'static str,
    health: String,
    accounts: usize,
    portal: usize,
    history: Vec<HistoryItem>,
    may_delete: bool,
    dkim: DkimCard,
    error: Option<String>,
}

/// One DNS record of the DKIM card.
struct DkimRecord {
    algorithm: &'static str,
    name: String,
    value: String,
}

/// The DKIM card: whether the domain signs, and the records to publish.
struct DkimCard {
    signing: bool,
    keys: Vec<DkimRecord>,
    retired: Vec<DkimRecord>,
}

impl DkimCard {
    fn of(domain: &str, dkim: &DomainDkim) -> DkimCard {
        let records = |keys: &[DkimKey]| {
            keys.iter()
                .map(|k| {
                    let record = lifeboat_smtp::dkim::dns_record(domain, k);
                    DkimRecord {
                        algorithm: crate::api::dkim::algorithm_str(k.algorithm),
                        name: record.name,
                        value: record.value,
                    }
                })
                .collect()
        };
        DkimCard {
            signing: dkim.enabled,
            keys: records(&dkim.keys),
            retired: records(&dkim.retired),
        }
    }
}

fn domain_page(
    state: &crate::AppState,
    session: &Session,
    headers: &HeaderMap,
    uri: &Uri,
    domain: &Domain,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let t = Lang::of(headers).texts();
    let (accounts, portal, history) = state.store.read(|s| {
        let mut accounts = 0;
        let mut portal = 0;
        for a in s.accounts(Some(&domain.name)) {
            accounts += 1;
            portal += s
                .folder_by_name(&a.address, INBOX)
                .map_or(0, |f| f.messages.len());
        }
        let history = s
            .mode_history(&domain.name, HISTORY_ITEMS)
            .into_iter()
            .map(|c| HistoryItem {
                when: when(c.at),
                ago: ago(t, c.at),
                from_label: c.from.map_or(t.mode_none, |m| mode_label(t, m)),
                to: c.to.as_str(),
                to_label: mode_label(t, c.to),
                forced: c.forced.is_some(),
                reason: c.reason.clone(),
            })
            .collect();
        (accounts, portal, history)
    });
    let health = state
        .status
        .as_ref()
        .map(|st| st.upstream_health(&domain.upstream).0)
        .unwrap_or_else(|| "unknown".into());
    let page = DomainPage {
        layout: Layout::new(
            state,
            session,
            headers,
            &here(uri),
            Section::Domains,
            &domain.name,
        ),
        t,
        name: domain.name.clone(),
        upstream: domain.upstream.clone(),
        coverage: coverage_str(domain.coverage),
        failover: failover_str(domain.failover),
        mode: domain.mode.as_str(),
        mode_label: mode_label(t, domain.mode),
        control: match (domain.forced, domain.failover) {
            (Some(_), _) => t.control_forced,
            (None, Failover::Auto) => t.control_auto,
            (None, Failover::Manual) => t.control_manual,
        },
        forced: domain.forced.map(|m| m.as_str()),
        health_label: health_label(t, &health),
        health,
        accounts,
        portal,
        history,
        may_delete: session.scope == Scope::All,
        dkim: DkimCard::of(
            &domain.name,
            &state
                .store
                .read(|s| s.dkim(&domain.name).cloned())
                .unwrap_or_default(),
        ),
        error,
    };
    render_status(status, &page)
}

/// `GET /panel/domains/{name}`.
pub(crate) async fn show(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Path(name): Path<String>,
) -> Response {
    let domain = match visible_domain(&state, &session, &headers, &name) {
        Ok(domain) => domain,
        Err(hidden) => return hidden.into_response(),
    };
    domain_page(
        &state,
        &session,
        &headers,
        &uri,
        &domain,
        StatusCode::OK,
        None,
    )
}

#[derive(Deserialize)]
pub(crate) struct DomainForm {
    upstream: String,
    coverage: String,
    failover: String,
}

/// `POST /panel/domains/{name}`: upstream, coverage, failover.
pub(crate) async fn update(
    State(state): State<Shared>,
    session: Session,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    uri: Uri,
    Path(name): Path<String>,
    Form(form): Form<DomainForm>,
) -> Response {
    let domain = match visible_domain(&state, &session, &headers, &name) {
        Ok(domain) => domain,
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    let (Some(coverage), Some(failover)) = (
        parse_coverage(&form.coverage),
        parse_failover(&form.failover),
    ) else {
        return not_found_for(&headers);
    };
    let actor = Actor::account(&session.account.address, ip);
    match admin::update_domain(
        &state,
        &actor,
        &domain,
        Some(&form.upstream),
        Some(coverage),
        Some(failover),
    )
    .await
    {
        Ok(domain) => done(
            &state,
            &session,
            &format!("/panel/domains/{}", url_encode(&domain.name)),
            fill(t.domain_saved, &[&domain.name]),
        ),
        Err(problem) => refused_here(&state, &session, &headers, &uri, &domain, problem),
    }
}

/// The domain's page again, saying why a change was refused.
fn refused_here(
    state: &crate::AppState,
    session: &Session,
    headers: &HeaderMap,
    uri: &Uri,
    domain: &Domain,
    problem: Problem,
) -> Response {
    let t = Lang::of(headers).texts();
    domain_page(
        state,
        session,
        headers,
        uri,
        domain,
        problem.status(),
        Some(problem.text(t)),
    )
}

// ---- DKIM ----------------------------------------------------------------------

#[derive(Deserialize)]
pub(crate) struct DkimForm {
    action: String,
}

/// `POST /panel/domains/{name}/dkim`: create keys, enable, disable or rotate.
pub(crate) async fn dkim(
    State(state): State<Shared>,
    session: Session,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    uri: Uri,
    Path(name): Path<String>,
    Form(form): Form<DkimForm>,
) -> Response {
    let domain = match visible_domain(&state, &session, &headers, &name) {
        Ok(domain) => domain,
        Err(hidden) => return hidden.into_response(),
    };
    let Some(request) = DkimRequest::parse(&form.action) else {
        return not_found_for(&headers);
    };
    let t = Lang::of(&headers).texts();
    let actor = Actor::account(&session.account.address, ip);
    match admin::dkim(&state, &actor, &domain, request).await {
        Ok(_) => done(
            &state,
            &session,
            &format!("/panel/domains/{}#dkim", url_encode(&domain.name)),
            fill(t.dkim_saved, &[&domain.name]),
        ),
        Err(problem) => refused_here(&state, &session, &headers, &uri, &domain, problem),
    }
}

// ---- Mode ----------------------------------------------------------------------

#[derive(Deserialize)]
pub(crate) struct ModeQuery {
    to: Option<String>,
}

#[derive(Template)]
#[template(path = "domain_mode.html")]
struct ModePage {
    layout: Layout,
    t: &'static Texts,
    name: String,
    to: &'static str,
    heading: String,
    effects: Vec<String>,
    current_label: &'static str,
    control: &'static str,
}

/// What switching `domain` as `request` asks does to mail, in sentences.
fn effects(
    t: &Texts,
    domain: &Domain,
    request: ModeRequest,
    portal: usize,
    health: &str,
) -> Vec<String> {
    let drain = |out: &mut Vec<String>| {
        if domain.mode == Mode::Emergency {
            out.push(fill(
                t.effect_drain,
                &[&portal.to_string(), &domain.upstream],
            ));
        }
    };
    let mut out = Vec::new();
    match request {
        ModeRequest::Emergency => {
            out.push(fill(t.effect_emergency, &[&domain.name, &domain.upstream]));
            out.push(
                match domain.coverage {
                    Coverage::All => t.effect_emergency_all,
                    Coverage::Selected => t.effect_emergency_selected,
                }
                .to_string(),
            );
            out.push(t.effect_forced_holds.to_string());
        }
        ModeRequest::Normal => {
            drain(&mut out);
            out.push(fill(t.effect_normal, &[&domain.upstream]));
            out.push(t.effect_forced_holds.to_string());
        }
        ModeRequest::Auto => match domain.failover {
            Failover::Auto => out.push(fill(
                t.effect_auto_router,
                &[health_label(t, health), mode_label(t, domain.mode)],
            )),
            Failover::Manual => {
                drain(&mut out);
                out.push(t.effect_auto_manual.to_string());
            }
        },
    }
    out
}

fn mode_heading(t: &Texts, request: ModeRequest, name: &str) -> String {
    let template = match request {
        ModeRequest::Normal => t.mode_confirm_normal,
        ModeRequest::Emergency => t.mode_confirm_emergency,
        ModeRequest::Auto => t.mode_confirm_auto,
    };
    fill(template, &[name])
}

/// `GET /panel/domains/{name}/mode?to=...`: what will happen, and the button.
pub(crate) async fn confirm_mode(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Path(name): Path<String>,
    Query(query): Query<ModeQuery>,
) -> Response {
    let domain = match visible_domain(&state, &session, &headers, &name) {
        Ok(domain) => domain,
        Err(hidden) => return hidden.into_response(),
    };
    let Some(request) = query.to.as_deref().and_then(ModeRequest::parse) else {
        return Redirect::to(&format!("/panel/domains/{}", url_encode(&domain.name)))
            .into_response();
    };
    let t = Lang::of(&headers).texts();
    let portal = state.store.read(|s| {
        s.accounts(Some(&domain.name))
            .filter_map(|a| s.folder_by_name(&a.address, INBOX))
            .map(|f| f.messages.len())
            .sum()
    });
    let health = state
        .status
        .as_ref()
        .map(|st| st.upstream_health(&domain.upstream).0)
        .unwrap_or_else(|| "unknown".into());
    let heading = mode_heading(t, request, &domain.name);
    let page = ModePage {
        layout: Layout::new(
            &state,
            &session,
            &headers,
            &here(&uri),
            Section::Domains,
            &heading,
        ),
        t,
        name: domain.name.clone(),
        to: request.as_str(),
        effects: effects(t, &domain, request, portal, &health),
        heading,
        current_label: mode_label(t, domain.mode),
        control: match (domain.forced, domain.failover) {
            (Some(_), _) => t.control_forced,
            (None, Failover::Auto) => t.control_auto,
            (None, Failover::Manual) => t.control_manual,
        },
    };
    render(&page)
}

#[derive(Deserialize)]
pub(crate) struct ModeForm {
    to: String,
}

/// `POST /panel/domains/{name}/mode`.
pub(crate) async fn set_mode(
    State(state): State<Shared>,
    session: Session,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<ModeForm>,
) -> Response {
    let domain = match visible_domain(&state, &session, &headers, &name) {
        Ok(domain) => domain,
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    let back = format!("/panel/domains/{}", url_encode(&domain.name));
    let Some(request) = ModeRequest::parse(&form.to) else {
        return Redirect::to(&back).into_response();
    };
    let actor = Actor::account(&session.account.address, ip);
    match admin::set_mode(&state, &actor, &domain, request).await {
        Ok(domain) => {
            let text = match domain.forced {
                Some(_) => fill(
                    t.mode_now_forced,
                    &[&domain.name, mode_label(t, domain.mode)],
                ),
                None => fill(t.mode_now_auto, &[&domain.name, mode_label(t, domain.mode)]),
            };
            done(&state, &session, &back, text)
        }
        Err(problem) => refused(&state, &session, &back, problem.text(t)),
    }
}

// ---- Delete --------------------------------------------------------------------

#[derive(Template)]
#[template(path = "domain_delete.html")]
struct DeletePage {
    layout: Layout,
    t: &'static Texts,
    name: String,
    heading: String,
    accounts: usize,
    blocked: Option<String>,
}

/// `GET /panel/domains/{name}/delete`: admins only.
pub(crate) async fn confirm_delete(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Path(name): Path<String>,
) -> Response {
    let domain = match visible_domain(&state, &session, &headers, &name) {
        Ok(domain) if session.scope == Scope::All => domain,
        Ok(_) => return not_found_for(&headers),
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    let accounts = state.store.read(|s| s.accounts(Some(&domain.name)).count());
    let heading = fill(t.domain_delete_title, &[&domain.name]);
    let page = DeletePage {
        layout: Layout::new(
            &state,
            &session,
            &headers,
            &here(&uri),
            Section::Domains,
            &heading,
        ),
        t,
        heading,
        blocked: (accounts > 0).then(|| Problem::DomainHasAccounts(domain.name.clone()).text(t)),
        accounts,
        name: domain.name,
    };
    render(&page)
}

/// `POST /panel/domains/{name}/delete`: admins only.
pub(crate) async fn delete(
    State(state): State<Shared>,
    session: Session,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let domain = match visible_domain(&state, &session, &headers, &name) {
        Ok(domain) if session.scope == Scope::All => domain,
        Ok(_) => return not_found_for(&headers),
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    let actor = Actor::account(&session.account.address, ip);
    match admin::delete_domain(&state, &actor, &domain).await {
        Ok(()) => done(
            &state,
            &session,
            "/panel/domains",
            fill(t.domain_deleted, &[&domain.name]),
        ),
        Err(problem) => refused(
            &state,
            &session,
            &format!("/panel/domains/{}", url_encode(&domain.name)),
            problem.text(t),
        ),
    }
}
