//! Mailboxes (SPEC §9): a list with search and paging that stays fast at 10,000 per
//! domain (one pass over the domain's accounts under the read lock, rows built only
//! for the page shown), add one, import a pasted list with a result per line,
//! covered on/off, role, recovery address, password, delete.
//!
//! A domain admin manages the accounts of their domain but the admins', and cannot
//! give the admin role. An import changes nothing unless every line is good.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Form;
use lifeboat_store::{Account, Address, Coverage, Role};
use serde::Deserialize;

use super::{
    done, here, managed_account, panel_scope, refused, render, render_status, role_label,
    url_encode, Layout, Pager, Section, Shared,
};
use crate::admin::{self, Actor, NewAccount, Problem};
use crate::i18n::{fill, Lang, Texts};
use crate::session::Session;
use crate::{AppState, ClientIp, Scope};

/// Mailboxes a list page shows.
pub(crate) const PER_PAGE: usize = 50;
/// Lines an import takes at most.
pub(crate) const IMPORT_LINES_MAX: usize = 20_000;

/// A row of the list.
pub(crate) struct Row {
    pub(crate) address: String,
    pub(crate) href: String,
    pub(crate) role: &'static str,
    pub(crate) covered: bool,
    pub(crate) protected: bool,
    pub(crate) recovery: String,
    pub(crate) portal: usize,
    pub(crate) manageable: bool,
}

/// The add form's values, kept when it is refused.
#[derive(Default)]
struct AddForm {
    address: String,
    role: String,
    covered: bool,
    recovery: String,
}

#[derive(Template)]
#[template(path = "mailboxes.html")]
struct ListPage {
    layout: Layout,
    t: &'static Texts,
    domains: Vec<(String, bool)>,
    domain: String,
    selected_coverage: bool,
    query: String,
    rows: Vec<Row>,
    pager: Pager,
    roles: Vec<(&'static str, &'static str)>,
    form: AddForm,
    error: Option<String>,
    csrf: String,
    back: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    domain: Option<String>,
    q: Option<String>,
    page: Option<usize>,
}

/// The domains `scope` sees, by name.
fn visible_domains(state: &AppState, scope: &Scope) -> Vec<String> {
    state.store.read(|s| {
        s.domains()
            .filter(|d| scope.sees_domain(&d.name))
            .map(|d| d.name.clone())
            .collect()
    })
}

/// The roles `scope` may give, with their labels.
fn grantable_roles(t: &Texts, scope: &Scope) -> Vec<(&'static str, &'static str)> {
    [Role::User, Role::DomainAdmin, Role::Admin]
        .into_iter()
        .filter(|r| scope.may_grant(*r))
        .map(|r| (admin::role_str(r), role_label(t, r)))
        .collect()
}

fn parse_role(s: &str) -> Option<Role> {
    match s {
        "user" => Some(Role::User),
        "domain-admin" => Some(Role::DomainAdmin),
        "admin" => Some(Role::Admin),
        _ => None,
    }
}

/// One page of a domain's mailboxes matching `query`, and how many match in all.
pub(crate) fn page_of(
    state: &AppState,
    t: &'static Texts,
    scope: &Scope,
    domain: &str,
    query: &str,
    page: usize,
) -> (Vec<Row>, usize) {
    let needle = query.trim().to_lowercase();
    // Any page number a URL holds: one past the last shows nothing, never overflows.
    let skip = (page.max(1) - 1).saturating_mul(PER_PAGE);
    state.store.read(|s| {
        let coverage_all = s
            .domain(domain)
            .is_some_and(|d| d.coverage == Coverage::All);
        let mut total = 0;
        let mut rows = Vec::with_capacity(PER_PAGE);
        for a in s.accounts(Some(domain)) {
            if !needle.is_empty()
                && !a.address.to_lowercase().contains(&needle)
                && !a
                    .recovery
                    .as_deref()
                    .is_some_and(|r| r.to_lowercase().contains(&needle))
            {
                continue;
            }
            total += 1;
            if total > skip && rows.len() < PER_PAGE {
                rows.push(Row {
                    address: a.address.clone(),
                    href: format!("/panel/mailboxes/{}", url_encode(&a.address)),
                    role: role_label(t, a.role),
                    covered: a.covered,
                    protected: coverage_all || a.covered,
                    recovery: a.recovery.clone().unwrap_or_default(),
                    portal: a
                        .folders
                        .get(lifeboat_store::INBOX)
                        .and_then(|id| s.folder(*id))
                        .map_or(0, |f| f.messages.len()),
                    manageable: scope.manages(a),
                });
            }
        }
        (rows, total)
    })
}

#[allow(clippy::too_many_arguments)]
fn list_page(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    uri: &Uri,
    scope: &Scope,
    query: ListQuery,
    status: StatusCode,
    form: AddForm,
    error: Option<String>,
) -> Response {
    let t = Lang::of(headers).texts();
    let domains = visible_domains(state, scope);
    let domain = query
        .domain
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| domains.contains(d))
        .or_else(|| domains.first().cloned())
        .unwrap_or_default();
    let q = query.q.unwrap_or_default();
    let page = query.page.unwrap_or(1).max(1);
    let (rows, total) = page_of(state, t, scope, &domain, &q, page);
    let link = |n: usize| {
        format!(
            "/panel/mailboxes?domain={}&q={}&page={n}",
            url_encode(&domain),
            url_encode(&q)
        )
    };
    let pager = Pager::new(t, page, PER_PAGE, total, link);
    let selected_coverage = state.store.read(|s| {
        s.domain(&domain)
            .is_some_and(|d| d.coverage == Coverage::Selected)
    });
    let back = here(uri);
    let page = ListPage {
        layout: Layout::new(
            state,
            session,
            headers,
            &back,
            Section::Mailboxes,
            t.nav_mailboxes,
        ),
        t,
        domains: domains.iter().map(|d| (d.clone(), *d == domain)).collect(),
        selected_coverage,
        query: q,
        rows,
        pager,
        roles: grantable_roles(t, scope),
        form,
        error,
        csrf: session.csrf.clone(),
        domain,
        back,
    };
    render_status(status, &page)
}

/// `GET /panel/mailboxes?domain=&q=&page=`.
pub(crate) async fn list(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<ListQuery>,
) -> Response {
    let scope = match panel_scope(&session, &headers) {
        Ok(scope) => scope,
        Err(hidden) => return hidden.into_response(),
    };
    let form = AddForm {
        role: "user".into(),
        ..AddForm::default()
    };
    list_page(
        &state,
        &session,
        &headers,
        &uri,
        &scope,
        query,
        StatusCode::OK,
        form,
        None,
    )
}

#[derive(Deserialize)]
pub(crate) struct AddMailboxForm {
    address: String,
    password: Option<String>,
    role: Option<String>,
    covered: Option<String>,
    recovery: Option<String>,
}

/// Whether `scope` may create or own `address` with `role`.
fn admits_new(scope: &Scope, address: &str, role: Role) -> Result<(), Problem> {
    if !scope.sees_domain(Address::domain_of(address)) {
        return Err(Problem::OutsideDomain(address.to_string()));
    }
    if !scope.may_grant(role) {
        return Err(Problem::RoleNotAllowed);
    }
    Ok(())
}

/// `POST /panel/mailboxes`: adds one mailbox.
pub(crate) async fn add(
    State(state): State<Shared>,
    session: Session,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<AddMailboxForm>,
) -> Response {
    let scope = match panel_scope(&session, &headers) {
        Ok(scope) => scope,
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    let role_name = form.role.clone().unwrap_or_else(|| "user".into());
    let covered = form.covered.is_some();
    let outcome = async {
        let address = admin::address(&form.address)?;
        let role = parse_role(&role_name).ok_or(Problem::RoleNotAllowed)?;
        admits_new(&scope, &address, role)?;
        let password = form.password.clone().filter(|p| !p.is_empty());
        admin::add_account(
            &state,
            &Actor::account(&session.account.address, ip),
            NewAccount {
                address,
                password,
                role,
                covered,
                recovery: form.recovery.clone(),
            },
        )
        .await
    }
    .await;
    let domain = Address::domain_of(form.address.trim()).to_ascii_lowercase();
    match outcome {
        Ok(account) => done(
            &state,
            &session,
            &format!("/panel/mailboxes?domain={}", url_encode(&domain)),
            fill(t.mailbox_added, &[&account.address]),
        ),
        Err(problem) => list_page(
            &state,
            &session,
            &headers,
            &uri,
            &scope,
            ListQuery {
                domain: Some(domain),
                ..ListQuery::default()
            },
            problem.status(),
            AddForm {
                address: form.address,
                role: role_name,
                covered,
                recovery: form.recovery.unwrap_or_default(),
            },
            Some(problem.text(t)),
        ),
    }
}

// ---- Import ----------------------------------------------------------------------

/// One line's result.
struct LineResult {
    number: usize,
    text: String,
    ok: bool,
    outcome: String,
}

#[derive(Template)]
#[template(path = "import.html")]
struct ImportPage {
    layout: Layout,
    t: &'static Texts,
    domain: String,
    text: String,
    results: Vec<LineResult>,
    summary: Option<(bool, String)>,
}

#[derive(Deserialize)]
pub(crate) struct ImportQuery {
    domain: Option<String>,
}

/// `GET /panel/mailboxes/import`.
pub(crate) async fn import_page(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<ImportQuery>,
) -> Response {
    if let Err(hidden) = panel_scope(&session, &headers) {
        return hidden.into_response();
    }
    let t = Lang::of(&headers).texts();
    let page = ImportPage {
        layout: Layout::new(
            &state,
            &session,
            &headers,
            &here(&uri),
            Section::Mailboxes,
            t.import_title,
        ),
        t,
        domain: query.domain.unwrap_or_default(),
        text: String::new(),
        results: Vec::new(),
        summary: None,
    };
    render(&page)
}

#[derive(Deserialize)]
pub(crate) struct ImportForm {
    lines: String,
    domain: Option<String>,
}

/// A line of an import: `address[,covered][,recovery@address]`, in any order after
/// the address; blank lines and `#` comments are skipped.
fn parse_line(scope: &Scope, line: &str) -> Result<NewAccount, Problem> {
    let mut fields = line.split(',').map(str::trim);
    let address = admin::address(fields.next().unwrap_or(""))?;
    admits_new(scope, &address, Role::User)?;
    let mut account = NewAccount {
        address,
        password: None,
        role: Role::User,
        covered: false,
        recovery: None,
    };
    for field in fields.filter(|f| !f.is_empty()) {
        if field.eq_ignore_ascii_case("covered") {
            account.covered = true;
        } else if field.contains('@') && account.recovery.is_none() {
            account.recovery = Some(admin::address(field)?);
        } else {
            return Err(Problem::InvalidAddress(field.to_string()));
        }
    }
    Ok(account)
}

/// `POST /panel/mailboxes/import`: every line checked first; all added in one batch
/// if every line is good, none otherwise.
pub(crate) async fn import(
    State(state): State<Shared>,
    session: Session,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<ImportForm>,
) -> Response {
    let scope = match panel_scope(&session, &headers) {
        Ok(scope) => scope,
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    let domain = form.domain.clone().unwrap_or_default();
    let render_with = |status, results, summary: (bool, String), text: String| {
        let page = ImportPage {
            layout: Layout::new(
                &state,
                &session,
                &headers,
                &here(&uri),
                Section::Mailboxes,
                t.import_title,
            ),
            t,
            domain: domain.clone(),
            text,
            results,
            summary: Some(summary),
        };
        render_status(status, &page)
    };
    let lines: Vec<(usize, &str)> = form
        .lines
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    if lines.is_empty() {
        return render_with(
            StatusCode::BAD_REQUEST,
            Vec::new(),
            (false, t.import_empty.to_string()),
            form.lines.clone(),
        );
    }
    if lines.len() > IMPORT_LINES_MAX {
        return render_with(
            StatusCode::BAD_REQUEST,
            Vec::new(),
            (
                false,
                fill(t.import_too_many, &[&IMPORT_LINES_MAX.to_string()]),
            ),
            String::new(),
        );
    }
    // Check every line against the store and the other lines.
    let mut seen = std::collections::HashSet::new();
    // (line number, text, the account to add or `None` when it exists already)
    type Checked<'a> = (usize, &'a str, Result<Option<NewAccount>, Problem>);
    let mut checked: Vec<Checked> = Vec::new();
    for (number, text) in &lines {
        let outcome = parse_line(&scope, text).and_then(|account| {
            let exists = state.store.read(|s| s.account(&account.address).is_some());
            if !state
                .store
                .read(|s| s.domain(Address::domain_of(&account.address)).is_some())
            {
                Err(Problem::NoDomainForAccount(
                    Address::domain_of(&account.address).to_string(),
                ))
            } else if exists || !seen.insert(account.address.to_lowercase()) {
                Ok(None)
            } else {
                Ok(Some(account))
            }
        });
        checked.push((*number, text, outcome));
    }
    let bad = checked.iter().filter(|(_, _, o)| o.is_err()).count();
    let result_of = |number: usize, text: &str, ok: bool, outcome: String| LineResult {
        number,
        text: text.to_string(),
        ok,
        outcome,
    };
    if bad > 0 {
        let results = checked
            .iter()
            .map(|(n, text, o)| match o {
                Ok(Some(_)) => result_of(*n, text, true, t.import_line_good.into()),
                Ok(None) => result_of(*n, text, true, t.import_line_exists.into()),
                Err(problem) => result_of(*n, text, false, problem.text(t)),
            })
            .collect();
        return render_with(
            StatusCode::BAD_REQUEST,
            results,
            (false, fill(t.import_refused, &[&bad.to_string()])),
            form.lines.clone(),
        );
    }
    let new: Vec<NewAccount> = checked
        .iter()
        .filter_map(|(_, _, o)| o.as_ref().ok().cloned().flatten())
        .collect();
    let added = new.len();
    let actor = Actor::account(&session.account.address, ip);
    let outcomes = if new.is_empty() {
        Ok(Vec::new())
    } else {
        admin::import_accounts(&state, &actor, new).await
    };
    match outcomes {
        Ok(_) => {
            let results = checked
                .iter()
                .map(|(n, text, o)| match o {
                    Ok(Some(_)) => result_of(*n, text, true, t.import_line_added.into()),
                    _ => result_of(*n, text, true, t.import_line_exists.into()),
                })
                .collect();
            let summary = fill(
                t.import_done,
                &[&added.to_string(), &(checked.len() - added).to_string()],
            );
            render_with(StatusCode::OK, results, (true, summary), String::new())
        }
        Err(problem) => render_with(
            problem.status(),
            Vec::new(),
            (false, problem.text(t)),
            form.lines.clone(),
        ),
    }
}

// ---- One mailbox -----------------------------------------------------------------

#[derive(Template)]
#[template(path = "mailbox.html")]
struct MailboxPage {
    layout: Layout,
    t: &'static Texts,
    address: String,
    href: String,
    domain: String,
    role: &'static str,
    roles: Vec<(&'static str, &'static str)>,
    covered: bool,
    protected: bool,
    coverage_selected: bool,
    recovery: String,
    folders: Vec<(String, usize)>,
    error: Option<String>,
}

fn mailbox_page(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    uri: &Uri,
    account: &Account,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let t = Lang::of(headers).texts();
    let domain = Address::domain_of(&account.address).to_string();
    let (coverage_selected, protected, mut folders) = state.store.read(|s| {
        (
            s.domain(&domain)
                .is_some_and(|d| d.coverage == Coverage::Selected),
            s.is_covered(&account.address),
            s.folders_of(&account.address)
                .into_iter()
                .map(|f| (f.name.clone(), f.messages.len()))
                .collect::<Vec<_>>(),
        )
    });
    folders.sort_by_key(|(name, _)| (name != lifeboat_store::INBOX, name.clone()));
    let page = MailboxPage {
        layout: Layout::new(
            state,
            session,
            headers,
            &here(uri),
            Section::Mailboxes,
            &account.address,
        ),
        t,
        href: format!("/panel/mailboxes/{}", url_encode(&account.address)),
        address: account.address.clone(),
        domain,
        role: admin::role_str(account.role),
        roles: grantable_roles(t, &session.scope),
        covered: account.covered,
        protected,
        coverage_selected,
        recovery: account.recovery.clone().unwrap_or_default(),
        folders,
        error,
    };
    render_status(status, &page)
}

/// `GET /panel/mailboxes/{address}`.
pub(crate) async fn show(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Path(address): Path<String>,
) -> Response {
    let account = match managed_account(&state, &session, &headers, &address) {
        Ok(account) => account,
        Err(hidden) => return hidden.into_response(),
    };
    mailbox_page(
        &state,
        &session,
        &headers,
        &uri,
        &account,
        StatusCode::OK,
        None,
    )
}

#[derive(Deserialize)]
pub(crate) struct MailboxForm {
    role: String,
    covered: Option<String>,
    recovery: String,
}

/// `POST /panel/mailboxes/{address}`: role, covered, recovery address.
pub(crate) async fn update(
    State(state): State<Shared>,
    session: Session,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    uri: Uri,
    Path(address): Path<String>,
    Form(form): Form<MailboxForm>,
) -> Response {
    let account = match managed_account(&state, &session, &headers, &address) {
        Ok(account) => account,
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    let outcome = async {
        let role = parse_role(&form.role).ok_or(Problem::RoleNotAllowed)?;
        if role != account.role && !session.scope.may_grant(role) {
            return Err(Problem::RoleNotAllowed);
        }
        admin::update_account(
            &state,
            &Actor::account(&session.account.address, ip),
            &account,
            Some(role),
            Some(form.covered.is_some()),
            Some(Some(form.recovery.clone())),
        )
        .await
    }
    .await;
    match outcome {
        Ok(account) => done(
            &state,
            &session,
            &format!("/panel/mailboxes/{}", url_encode(&account.address)),
            fill(t.mailbox_saved, &[&account.address]),
        ),
        Err(problem) => mailbox_page(
            &state,
            &session,
            &headers,
            &uri,
            &account,
            problem.status(),
            Some(problem.text(t)),
        ),
    }
}

#[derive(Deserialize)]
pub(crate) struct CoveredForm {
    covered: String,
    back: Option<String>,
}

/// `POST /panel/mailboxes/{address}/covered`: the list's on/off switch.
pub(crate) async fn set_covered(
    State(state): State<Shared>,
    session: Session,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(address): Path<String>,
    Form(form): Form<CoveredForm>,
) -> Response {
    let account = match managed_account(&state, &session, &headers, &address) {
        Ok(account) => account,
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    let back = super::local_path(form.back.as_deref());
    let covered = form.covered == "on";
    match admin::update_account(
        &state,
        &Actor::account(&session.account.address, ip),
        &account,
        None,
        Some(covered),
        None,
    )
    .await
    {
        Ok(account) => done(
            &state,
            &session,
            &back,
            fill(
                if covered {
                    t.mailbox_covered_on
                } else {
                    t.mailbox_covered_off
                },
                &[&account.address],
            ),
        ),
        Err(problem) => refused(&state, &session, &back, problem.text(t)),
    }
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    password: String,
    confirm: String,
}

/// `POST /panel/mailboxes/{address}/password`: the account's sessions end with it.
pub(crate) async fn set_password(
    State(state): State<Shared>,
    session: Session,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    uri: Uri,
    Path(address): Path<String>,
    Form(form): Form<PasswordForm>,
) -> Response {
    let account = match managed_account(&state, &session, &headers, &address) {
        Ok(account) => account,
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    if form.password != form.confirm {
        return mailbox_page(
            &state,
            &session,
            &headers,
            &uri,
            &account,
            StatusCode::BAD_REQUEST,
            Some(t.password_mismatch.to_string()),
        );
    }
    let actor = Actor::account(&session.account.address, ip);
    match admin::set_password(&state, &actor, &account, form.password, "set by an admin").await {
        Ok(()) => {
            // An admin who set their own password here stays logged in.
            if account.address == session.account.address {
                if let Some(hash) = state
                    .store
                    .read(|s| s.account(&account.address).map(|a| a.password_hash.clone()))
                {
                    state
                        .sessions
                        .password_changed(&session.key, &account.address, &hash);
                }
            }
            done(
                &state,
                &session,
                &format!("/panel/mailboxes/{}", url_encode(&account.address)),
                fill(t.mailbox_password_set, &[&account.address]),
            )
        }
        Err(problem) => mailbox_page(
            &state,
            &session,
            &headers,
            &uri,
            &account,
            problem.status(),
            Some(problem.text(t)),
        ),
    }
}

#[derive(Template)]
#[template(path = "mailbox_delete.html")]
struct DeletePage {
    layout: Layout,
    t: &'static Texts,
    address: String,
    href: String,
    heading: String,
    messages: usize,
}

/// `GET /panel/mailboxes/{address}/delete`.
pub(crate) async fn confirm_delete(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    Path(address): Path<String>,
) -> Response {
    let account = match managed_account(&state, &session, &headers, &address) {
        Ok(account) => account,
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    let messages = state.store.read(|s| {
        s.folders_of(&account.address)
            .iter()
            .map(|f| f.messages.len())
            .sum()
    });
    let heading = fill(t.mailbox_delete_title, &[&account.address]);
    let page = DeletePage {
        layout: Layout::new(
            &state,
            &session,
            &headers,
            &here(&uri),
            Section::Mailboxes,
            &heading,
        ),
        t,
        href: format!("/panel/mailboxes/{}", url_encode(&account.address)),
        address: account.address,
        heading,
        messages,
    };
    render(&page)
}

/// `POST /panel/mailboxes/{address}/delete`.
pub(crate) async fn delete(
    State(state): State<Shared>,
    session: Session,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(address): Path<String>,
) -> Response {
    let account = match managed_account(&state, &session, &headers, &address) {
        Ok(account) => account,
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    let domain = Address::domain_of(&account.address).to_string();
    let actor = Actor::account(&session.account.address, ip);
    match admin::delete_account(&state, &actor, &account).await {
        Ok(()) => done(
            &state,
            &session,
            &format!("/panel/mailboxes?domain={}", url_encode(&domain)),
            fill(t.mailbox_deleted, &[&account.address]),
        ),
        Err(problem) => refused(
            &state,
            &session,
            &format!("/panel/mailboxes/{}", url_encode(&account.address)),
            problem.text(t),
        ),
    }
}
