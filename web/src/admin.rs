//! Changes to domains, accounts and archived mail, shared by the admin API, the
//! accounts' API and the control panel: input checks, the store ops, and the audit
//! entry committed in the same batch as the change (SPEC §11).
//!
//! - Every change takes the [`Actor`] making it and goes to the store with an
//!   `Op::Audit` after its ops, so a change made through here is never without its
//!   entry, and an entry never outlives a change that failed (the store drops it).
//! - Audit summaries name settings, never a password, hash or token.
//! - Authorisation is the caller's (the API's token, the panel's scope check): these
//!   functions trust that the actor may make the change.
//! - A [`Problem`] says what is wrong with the input, in the panel's languages; the API
//!   answers with its English text and its status code.

use std::net::IpAddr;

use axum::http::StatusCode;
use lifeboat_store::password::{hash_password, PASSWORD_BYTES_MAX, PASSWORD_BYTES_MIN};
use lifeboat_store::{
    now, Account, Address, AddressError, ArchiveEntry, AuditRecord, Coverage, Domain, DomainDkim,
    DomainName, DomainSettings, Failover, Mode, Op, Role,
};

use crate::api::{commit, ApiError};
use crate::i18n::{fill, Texts, EN};
use crate::{AppState, Scope};

/// Who makes a change, and from where.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    /// An account's address, or [`Actor::TOKEN`].
    pub(crate) who: String,
    /// The client's address.
    pub(crate) from: IpAddr,
}

impl Actor {
    /// How the admin token (the CLI, scripts) is named in the audit log.
    pub(crate) const TOKEN: &'static str = "admin token";

    /// The holder of the admin token.
    pub(crate) fn token(from: IpAddr) -> Actor {
        Actor {
            who: Actor::TOKEN.to_string(),
            from,
        }
    }

    /// A logged-in account.
    pub(crate) fn account(address: &str, from: IpAddr) -> Actor {
        Actor {
            who: address.to_string(),
            from,
        }
    }

    /// The audit op for a change this actor makes.
    fn audit(
        &self,
        action: &str,
        object: &str,
        domain: Option<&str>,
        before: Option<String>,
        after: Option<String>,
    ) -> Op {
        Op::Audit(AuditRecord {
            actor: self.who.clone(),
            source: self.from.to_string(),
            action: action.to_string(),
            object: object.to_string(),
            domain: domain.map(str::to_string),
            before,
            after,
            at: now(),
        })
    }
}

/// What is wrong with a change.
#[derive(Debug, Clone)]
pub(crate) enum Problem {
    InvalidDomain(String),
    InvalidUpstream(String),
    InvalidAddress(String),
    InvalidLocalPart(String),
    NoDomain(String),
    NoDomainForAccount(String),
    DomainExists(String),
    DomainHasAccounts(String),
    NoAccount(String),
    AccountExists(String),
    PasswordTooShort,
    PasswordTooLong,
    /// An address outside the domains the actor manages.
    OutsideDomain(String),
    /// A role the actor may not give or change.
    RoleNotAllowed,
    NoArchivedMessage(String),
    NoRelay,
    NotRedelivered(String),
    /// The store or the server failed, or refused the change: status and message.
    Failed(StatusCode, String),
}

impl Problem {
    /// The API's status code for it.
    pub(crate) fn status(&self) -> StatusCode {
        use Problem::*;
        match self {
            InvalidDomain(_) | InvalidUpstream(_) | InvalidAddress(_) | InvalidLocalPart(_)
            | PasswordTooShort | PasswordTooLong | OutsideDomain(_) => StatusCode::BAD_REQUEST,
            RoleNotAllowed => StatusCode::FORBIDDEN,
            NoDomain(_) | NoDomainForAccount(_) | NoAccount(_) | NoArchivedMessage(_) => {
                StatusCode::NOT_FOUND
            }
            DomainExists(_) | DomainHasAccounts(_) | AccountExists(_) | NotRedelivered(_) => {
                StatusCode::CONFLICT
            }
            NoRelay => StatusCode::SERVICE_UNAVAILABLE,
            Failed(status, _) => *status,
        }
    }

    /// What it says, in the language of `t`.
    pub(crate) fn text(&self, t: &Texts) -> String {
        use Problem::*;
        let one = |template: &str, value: &str| fill(template, &[value]);
        match self {
            InvalidDomain(name) => one(t.problem_invalid_domain, name),
            InvalidUpstream(upstream) => one(t.problem_invalid_upstream, upstream),
            InvalidAddress(address) => one(t.problem_invalid_address, address),
            InvalidLocalPart(address) => one(t.problem_invalid_local_part, address),
            NoDomain(name) => one(t.problem_no_domain, name),
            NoDomainForAccount(name) => one(t.problem_no_domain_for_account, name),
            DomainExists(name) => one(t.problem_domain_exists, name),
            DomainHasAccounts(name) => one(t.problem_domain_has_accounts, name),
            NoAccount(address) => one(t.problem_no_account, address),
            AccountExists(address) => one(t.problem_account_exists, address),
            PasswordTooShort => one(t.problem_password_short, &PASSWORD_BYTES_MIN.to_string()),
            PasswordTooLong => one(t.problem_password_long, &PASSWORD_BYTES_MAX.to_string()),
            OutsideDomain(address) => one(t.problem_outside_domain, address),
            RoleNotAllowed => t.problem_role_not_allowed.to_string(),
            NoArchivedMessage(id) => one(t.problem_no_archived_message, id),
            NoRelay => t.problem_no_relay.to_string(),
            NotRedelivered(why) => one(t.problem_not_redelivered, why),
            Failed(_, message) => message.clone(),
        }
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> ApiError {
        ApiError::new(problem.status(), problem.text(&EN))
    }
}

impl From<ApiError> for Problem {
    fn from(e: ApiError) -> Problem {
        Problem::Failed(e.status(), e.message().to_string())
    }
}

// ---- Input ---------------------------------------------------------------------

/// A domain name as typed (see [`DomainName::parse`]).
pub(crate) fn domain_name(name: &str) -> Result<String, Problem> {
    DomainName::parse(name)
        .map(String::from)
        .map_err(|_| Problem::InvalidDomain(name.trim().to_ascii_lowercase()))
}

/// `host:port`.
pub(crate) fn upstream(upstream: &str) -> Result<String, Problem> {
    let upstream = upstream.trim();
    let valid = upstream.rsplit_once(':').is_some_and(|(host, port)| {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (host.parse::<IpAddr>().is_ok() || domain_name(host).is_ok())
            && port.parse::<u16>().is_ok_and(|p| p > 0)
    });
    if valid {
        Ok(upstream.to_string())
    } else {
        Err(Problem::InvalidUpstream(upstream.to_string()))
    }
}

/// An address `local@domain` as typed; returns it normalised (the domain lowercased).
pub(crate) fn address(address: &str) -> Result<String, Problem> {
    Address::parse(address)
        .map(String::from)
        .map_err(|e| match e {
            AddressError::LocalPart(_) => Problem::InvalidLocalPart(address.trim().to_string()),
            _ => Problem::InvalidAddress(address.trim().to_string()),
        })
}

/// A recovery address: empty for none.
pub(crate) fn recovery(value: Option<&str>) -> Result<Option<String>, Problem> {
    match value.map(str::trim) {
        Some(r) if !r.is_empty() => Ok(Some(address(r)?)),
        _ => Ok(None),
    }
}

/// The password policy, checked before any hashing work.
pub(crate) fn check_password(password: &str) -> Result<(), Problem> {
    if password.len() < PASSWORD_BYTES_MIN {
        Err(Problem::PasswordTooShort)
    } else if password.len() > PASSWORD_BYTES_MAX {
        Err(Problem::PasswordTooLong)
    } else {
        Ok(())
    }
}

/// Hashes a password off the request thread.
pub(crate) async fn hash(password: String) -> Result<String, Problem> {
    check_password(&password)?;
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| Problem::Failed(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| Problem::Failed(StatusCode::BAD_REQUEST, e))
}

/// A hash of a random password nobody knows, for accounts created without one: no
/// password opens them, and checking one costs as long as for any account, so
/// timing does not tell them apart. One hash serves a whole import (its secret is
/// thrown away at once).
async fn unusable_hash() -> Result<String, Problem> {
    let secret: [u8; 32] = rand::random();
    let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    hash(secret).await
}

// ---- Summaries (audit before/after) ---------------------------------------------

pub(crate) fn coverage_str(c: Coverage) -> &'static str {
    match c {
        Coverage::All => "all",
        Coverage::Selected => "selected",
    }
}

pub(crate) fn failover_str(f: Failover) -> &'static str {
    match f {
        Failover::Auto => "auto",
        Failover::Manual => "manual",
    }
}

pub(crate) fn role_str(r: Role) -> &'static str {
    match r {
        Role::User => "user",
        Role::DomainAdmin => "domain-admin",
        Role::Admin => "admin",
    }
}

fn domain_summary(upstream: &str, coverage: Coverage, failover: Failover) -> String {
    format!(
        "upstream={upstream} coverage={} failover={}",
        coverage_str(coverage),
        failover_str(failover)
    )
}

fn mode_summary(mode: Mode, forced: Option<Mode>) -> String {
    match forced {
        Some(_) => format!("{} (forced)", mode.as_str()),
        None => format!("{} (automatic)", mode.as_str()),
    }
}

fn account_summary(role: Role, covered: bool, recovery: Option<&str>) -> String {
    format!(
        "role={} covered={} recovery={}",
        role_str(role),
        if covered { "yes" } else { "no" },
        recovery.unwrap_or("-")
    )
}

// ---- Lookups -------------------------------------------------------------------

pub(crate) fn find_domain(state: &AppState, name: &str) -> Result<Domain, Problem> {
    let name = domain_name(name)?;
    state
        .store
        .read(|s| s.domain(&name).cloned())
        .ok_or(Problem::NoDomain(name))
}

pub(crate) fn find_account(state: &AppState, address: &str) -> Result<Account, Problem> {
    let address = self::address(address)?;
    state
        .store
        .read(|s| s.account(&address).cloned())
        .ok_or(Problem::NoAccount(address))
}

// ---- Domains -------------------------------------------------------------------

/// Protects a new domain.
pub(crate) async fn add_domain(
    state: &AppState,
    actor: &Actor,
    name: &str,
    upstream: &str,
    coverage: Coverage,
    failover: Failover,
) -> Result<Domain, Problem> {
    let name = domain_name(name)?;
    let upstream = self::upstream(upstream)?;
    if state.store.read(|s| s.domain(&name).is_some()) {
        return Err(Problem::DomainExists(name));
    }
    let after = domain_summary(&upstream, coverage, failover);
    commit(
        state,
        vec![
            Op::PutDomain(DomainSettings {
                name: name.clone(),
                upstream,
                coverage,
                failover,
            }),
            actor.audit("domain.add", &name, Some(&name), None, Some(after)),
        ],
    )
    .await?;
    tracing::info!(domain = %name, actor = %actor.who, "domain added");
    find_domain(state, &name)
}

/// Changes a domain's settings; `None` keeps one.
pub(crate) async fn update_domain(
    state: &AppState,
    actor: &Actor,
    domain: &Domain,
    upstream: Option<&str>,
    coverage: Option<Coverage>,
    failover: Option<Failover>,
) -> Result<Domain, Problem> {
    let settings = DomainSettings {
        name: domain.name.clone(),
        upstream: match upstream {
            Some(u) => self::upstream(u)?,
            None => domain.upstream.clone(),
        },
        coverage: coverage.unwrap_or(domain.coverage),
        failover: failover.unwrap_or(domain.failover),
    };
    let before = domain_summary(&domain.upstream, domain.coverage, domain.failover);
    let after = domain_summary(&settings.upstream, settings.coverage, settings.failover);
    let mut ops = vec![Op::PutDomain(settings)];
    if before != after {
        ops.push(actor.audit(
            "domain.update",
            &domain.name,
            Some(&domain.name),
            Some(before),
            Some(after),
        ));
    }
    commit(state, ops).await?;
    tracing::info!(domain = %domain.name, actor = %actor.who, "domain changed");
    find_domain(state, &domain.name)
}

/// What an admin asks of a domain's DKIM keys (SPEC §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DkimRequest {
    /// Make keys if the domain has none; otherwise change nothing.
    Keys,
    /// Sign from now on (making keys first if there are none).
    Enable,
    /// Stop signing; the keys are kept.
    Disable,
    /// New keys under a new selector; the current ones are retired.
    Rotate,
}

impl DkimRequest {
    /// `keys`, `enable`, `disable` or `rotate`.
    pub(crate) fn parse(s: &str) -> Option<DkimRequest> {
        match s {
            "keys" => Some(DkimRequest::Keys),
            "enable" => Some(DkimRequest::Enable),
            "disable" => Some(DkimRequest::Disable),
            "rotate" => Some(DkimRequest::Rotate),
            _ => None,
        }
    }
}

fn dkim_summary(dkim: &DomainDkim) -> String {
    let selectors: Vec<&str> = dkim.keys.iter().map(|k| k.selector.as_str()).collect();
    format!(
        "signing={} selectors={}",
        if dkim.enabled { "on" } else { "off" },
        if selectors.is_empty() {
            "-".to_string()
        } else {
            selectors.join(",")
        }
    )
}

/// Applies a DKIM request to a domain; returns its keys as they are after it.
pub(crate) async fn dkim(
    state: &AppState,
    actor: &Actor,
    domain: &Domain,
    request: DkimRequest,
) -> Result<DomainDkim, Problem> {
    let current = state
        .store
        .read(|s| s.dkim(&domain.name).cloned())
        .unwrap_or_default();
    let mut ops = Vec::new();
    let new_keys = match request {
        DkimRequest::Rotate => true,
        DkimRequest::Keys | DkimRequest::Enable => current.keys.is_empty(),
        DkimRequest::Disable => false,
    };
    if new_keys {
        let taken = current.clone();
        // An RSA key takes a good part of a second to make: not on the event loop.
        let keys =
            tokio::task::spawn_blocking(move || lifeboat_smtp::dkim::generate(now(), &taken))
                .await
                .map_err(|e| Problem::Failed(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
                .map_err(|e| Problem::Failed(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        ops.push(Op::SetDkimKeys {
            domain: domain.name.clone(),
            keys,
        });
    }
    match request {
        DkimRequest::Enable if !current.enabled => ops.push(Op::SetDkimEnabled {
            domain: domain.name.clone(),
            enabled: true,
        }),
        DkimRequest::Disable if current.enabled => ops.push(Op::SetDkimEnabled {
            domain: domain.name.clone(),
            enabled: false,
        }),
        _ => {}
    }
    if ops.is_empty() {
        return Ok(current);
    }
    let mut after = current.clone();
    for op in &ops {
        match op {
            Op::SetDkimKeys { keys, .. } => {
                after.retired = std::mem::replace(&mut after.keys, keys.clone())
            }
            Op::SetDkimEnabled { enabled, .. } => after.enabled = *enabled,
            _ => {}
        }
    }
    let action = match request {
        DkimRequest::Keys => "domain.dkim.keys",
        DkimRequest::Enable => "domain.dkim.enable",
        DkimRequest::Disable => "domain.dkim.disable",
        DkimRequest::Rotate => "domain.dkim.rotate",
    };
    ops.push(actor.audit(
        action,
        &domain.name,
        Some(&domain.name),
        Some(dkim_summary(&current)),
        Some(dkim_summary(&after)),
    ));
    commit(state, ops).await?;
    tracing::info!(domain = %domain.name, actor = %actor.who, action, "DKIM changed");
    Ok(state
        .store
        .read(|s| s.dkim(&domain.name).cloned())
        .unwrap_or_default())
}

/// Stops protecting a domain (it must have no accounts left).
pub(crate) async fn delete_domain(
    state: &AppState,
    actor: &Actor,
    domain: &Domain,
) -> Result<(), Problem> {
    let accounts = state
        .store
        .read(|s| s.accounts(Some(&domain.name)).next().is_some());
    if accounts {
        return Err(Problem::DomainHasAccounts(domain.name.clone()));
    }
    let before = domain_summary(&domain.upstream, domain.coverage, domain.failover);
    commit(
        state,
        vec![
            Op::DeleteDomain(domain.name.clone()),
            actor.audit(
                "domain.delete",
                &domain.name,
                Some(&domain.name),
                Some(before),
                None,
            ),
        ],
    )
    .await?;
    tracing::info!(domain = %domain.name, actor = %actor.who, "domain removed");
    Ok(())
}

/// A mode an admin asks for (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModeRequest {
    /// Force normal.
    Normal,
    /// Force emergency.
    Emergency,
    /// Release a forced mode.
    Auto,
}

impl ModeRequest {
    pub(crate) fn parse(s: &str) -> Option<ModeRequest> {
        match s {
            "normal" => Some(ModeRequest::Normal),
            "emergency" => Some(ModeRequest::Emergency),
            "auto" => Some(ModeRequest::Auto),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ModeRequest::Normal => "normal",
            ModeRequest::Emergency => "emergency",
            ModeRequest::Auto => "auto",
        }
    }

    /// The mode, the hold and the reason recorded when it is applied to `domain`:
    /// `normal`/`emergency` force that mode until `auto` releases it; after release
    /// the router decides (`failover = auto`) or the domain returns to normal
    /// (`manual`).
    pub(crate) fn outcome(self, domain: &Domain) -> (Mode, Option<Mode>, &'static str) {
        match self {
            ModeRequest::Normal => (
                Mode::Normal,
                Some(Mode::Normal),
                "forced normal by an admin",
            ),
            ModeRequest::Emergency => (
                Mode::Emergency,
                Some(Mode::Emergency),
                "forced emergency by an admin",
            ),
            ModeRequest::Auto => match domain.failover {
                Failover::Manual => (Mode::Normal, None, "released by an admin (manual failover)"),
                Failover::Auto => (domain.mode, None, "released by an admin to the router"),
            },
        }
    }
}

/// Forces a domain's mode, or releases it.
pub(crate) async fn set_mode(
    state: &AppState,
    actor: &Actor,
    domain: &Domain,
    request: ModeRequest,
) -> Result<Domain, Problem> {
    let (mode, forced, reason) = request.outcome(domain);
    let reason = if actor.who == Actor::TOKEN {
        reason.to_string()
    } else {
        format!("{reason} ({})", actor.who)
    };
    commit(
        state,
        vec![
            Op::SetMode {
                domain: domain.name.clone(),
                mode,
                forced,
                reason: reason.clone(),
                at: now(),
            },
            actor.audit(
                "domain.mode",
                &domain.name,
                Some(&domain.name),
                Some(mode_summary(domain.mode, domain.forced)),
                Some(mode_summary(mode, forced)),
            ),
        ],
    )
    .await?;
    tracing::info!(domain = %domain.name, mode = mode.as_str(), %reason, actor = %actor.who, "mode changed");
    find_domain(state, &domain.name)
}

// ---- Accounts ------------------------------------------------------------------

/// A new account as asked for.
#[derive(Debug, Clone)]
pub(crate) struct NewAccount {
    pub(crate) address: String,
    /// `None`: no password opens it until one is set (or reset by the owner).
    pub(crate) password: Option<String>,
    pub(crate) role: Role,
    pub(crate) covered: bool,
    pub(crate) recovery: Option<String>,
}

/// A new account checked and ready to commit.
struct CheckedAccount {
    address: String,
    role: Role,
    covered: bool,
    recovery: Option<String>,
}

fn check_new_account(state: &AppState, new: &NewAccount) -> Result<CheckedAccount, Problem> {
    let address = address(&new.address)?;
    let domain = Address::domain_of(&address).to_string();
    if state.store.read(|s| s.domain(&domain).is_none()) {
        return Err(Problem::NoDomainForAccount(domain));
    }
    if state.store.read(|s| s.account(&address).is_some()) {
        return Err(Problem::AccountExists(address));
    }
    Ok(CheckedAccount {
        address,
        role: new.role,
        covered: new.covered,
        recovery: recovery(new.recovery.as_deref())?,
    })
}

/// The op adding an account, and its audit op (to go after it).
fn add_ops(actor: &Actor, account: CheckedAccount, password_hash: String, how: &str) -> (Op, Op) {
    let domain = Address::domain_of(&account.address).to_string();
    let mut after = account_summary(account.role, account.covered, account.recovery.as_deref());
    after.push_str(how);
    let audit = actor.audit(
        "account.add",
        &account.address,
        Some(&domain),
        None,
        Some(after),
    );
    let add = Op::AddAccount {
        address: account.address,
        password_hash,
        role: account.role,
        covered: account.covered,
        recovery: account.recovery,
    };
    (add, audit)
}

/// Adds an account with its portal mailbox.
pub(crate) async fn add_account(
    state: &AppState,
    actor: &Actor,
    new: NewAccount,
) -> Result<Account, Problem> {
    let checked = check_new_account(state, &new)?;
    let (password_hash, how) = match new.password {
        Some(password) => (hash(password).await?, ""),
        None => (unusable_hash().await?, " (no password yet)"),
    };
    let address = checked.address.clone();
    let (add, audit) = add_ops(actor, checked, password_hash, how);
    commit(state, vec![add, audit]).await?;
    tracing::info!(account = %address, actor = %actor.who, "account added");
    find_account(state, &address)
}

/// One line of an import, checked: the account to add, or why not.
pub(crate) type ImportOutcome = Result<(), Problem>;

/// Adds many accounts at once, none with a password yet, in one batch: either every
/// one is added with its audit entry, or (the store failing) none. Accounts that
/// exist already are left alone and reported as such.
pub(crate) async fn import_accounts(
    state: &AppState,
    actor: &Actor,
    accounts: Vec<NewAccount>,
) -> Result<Vec<ImportOutcome>, Problem> {
    let mut outcomes = Vec::with_capacity(accounts.len());
    let mut checked = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for new in &accounts {
        match check_new_account(state, new) {
            Ok(c) if !seen.insert(c.address.clone()) => {
                outcomes.push(Err(Problem::AccountExists(c.address)))
            }
            Ok(c) => {
                outcomes.push(Ok(()));
                checked.push(c);
            }
            Err(problem) => outcomes.push(Err(problem)),
        }
    }
    if checked.is_empty() {
        return Ok(outcomes);
    }
    let password_hash = unusable_hash().await?;
    let mut ops = Vec::with_capacity(checked.len() * 2);
    let count = checked.len();
    for c in checked {
        let (add, audit) = add_ops(
            actor,
            c,
            password_hash.clone(),
            " (imported, no password yet)",
        );
        ops.push(add);
        ops.push(audit);
    }
    commit(state, ops).await?;
    tracing::info!(accounts = count, actor = %actor.who, "accounts imported");
    Ok(outcomes)
}

/// Changes an account's role, coverage or recovery address; `None` keeps one.
pub(crate) async fn update_account(
    state: &AppState,
    actor: &Actor,
    account: &Account,
    role: Option<Role>,
    covered: Option<bool>,
    recovery: Option<Option<String>>,
) -> Result<Account, Problem> {
    let recovery = match recovery {
        Some(r) => Some(self::recovery(r.as_deref())?),
        None => None,
    };
    let before = account_summary(account.role, account.covered, account.recovery.as_deref());
    let after = account_summary(
        role.unwrap_or(account.role),
        covered.unwrap_or(account.covered),
        recovery
            .as_ref()
            .map_or(account.recovery.as_deref(), |r| r.as_deref()),
    );
    let mut ops = vec![Op::UpdateAccount {
        address: account.address.clone(),
        role,
        covered,
        recovery,
    }];
    if before != after {
        ops.push(actor.audit(
            "account.update",
            &account.address,
            Some(Address::domain_of(&account.address)),
            Some(before),
            Some(after),
        ));
    }
    commit(state, ops).await?;
    find_account(state, &account.address)
}

/// Removes an account and its portal mailbox.
pub(crate) async fn delete_account(
    state: &AppState,
    actor: &Actor,
    account: &Account,
) -> Result<(), Problem> {
    let before = account_summary(account.role, account.covered, account.recovery.as_deref());
    commit(
        state,
        vec![
            Op::DeleteAccount(account.address.clone()),
            actor.audit(
                "account.delete",
                &account.address,
                Some(Address::domain_of(&account.address)),
                Some(before),
                None,
            ),
        ],
    )
    .await?;
    tracing::info!(account = %account.address, actor = %actor.who, "account removed");
    Ok(())
}

/// Sets an account's password; `how` says in the audit log how (`set by an admin`,
/// `changed by its owner`, `reset with a code`). Sessions opened with the old one end
/// (see `session.rs`).
pub(crate) async fn set_password(
    state: &AppState,
    actor: &Actor,
    account: &Account,
    password: String,
    how: &str,
) -> Result<(), Problem> {
    let password_hash = hash(password).await?;
    commit(
        state,
        vec![
            Op::SetPassword {
                address: account.address.clone(),
                password_hash,
            },
            actor.audit(
                "account.password",
                &account.address,
                Some(Address::domain_of(&account.address)),
                None,
                Some(format!("password {how}")),
            ),
        ],
    )
    .await?;
    tracing::info!(account = %account.address, actor = %actor.who, "password changed");
    Ok(())
}

// ---- Archive -------------------------------------------------------------------

/// Re-delivers an archived message to the mailboxes `scope` admits (SPEC §4); the
/// addresses it went to. The audit entry goes into the re-delivery's own batch.
pub(crate) async fn redeliver(
    state: &AppState,
    actor: &Actor,
    entry: &ArchiveEntry,
    scope: &Scope,
) -> Result<Vec<String>, Problem> {
    let Some(status) = &state.status else {
        return Err(Problem::NoRelay);
    };
    let domain = match scope {
        Scope::Domain(d) => Some(d.clone()),
        _ => None,
    };
    let object = format!("archive {}", entry.id);
    let subject = entry.headers.subject.clone();
    let record = |to: &[String]| {
        vec![actor.audit(
            "archive.redeliver",
            &object,
            domain
                .as_deref()
                .or_else(|| to.first().map(|a| Address::domain_of(a))),
            Some(format!("subject={subject:?}")),
            Some(format!("to={}", to.join(","))),
        )]
    };
    let to = status
        .redeliver(entry.id, scope, &record)
        .await
        .map_err(Problem::NotRedelivered)?;
    tracing::info!(id = %entry.id, to = ?to, actor = %actor.who, "archived message re-delivered");
    Ok(to)
}
