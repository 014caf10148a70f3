//! Domains and accounts: applying their ops, and reading them.
//!
//! Invariants: every account's domain exists (a domain with accounts cannot be
//! removed); an account's key is its address as given to `AddAccount`, which callers
//! normalise with [`Address`]; lookups normalise the same way.

use std::collections::BTreeMap;

use super::{Ctx, OpError, State, Touched};
use crate::address::Address;
use crate::journal::ModeChange;
use crate::model::*;

impl State {
    pub(super) fn apply_directory(
        &mut self,
        ctx: Ctx,
        op: &Op,
        touched: &mut Touched,
    ) -> Result<OpResult, OpError> {
        match op {
            Op::PutDomain(settings) => self.put_domain(ctx, settings),
            Op::DeleteDomain(name) => {
                if self.accounts.keys().any(|a| Address::domain_of(a) == name) {
                    return Err(OpError::DomainHasAccounts(name.clone()));
                }
                self.domains
                    .remove(name)
                    .ok_or_else(|| OpError::NoDomain(name.clone()))?;
                self.dkim.remove(name);
            }
            Op::SetMode {
                domain,
                mode,
                forced,
                reason,
                at,
            } => {
                let d = self
                    .domains
                    .get_mut(domain)
                    .ok_or_else(|| OpError::NoDomain(domain.clone()))?;
                if (d.mode, d.forced) != (*mode, *forced) {
                    self.journal.record_mode(ModeChange {
                        domain: domain.clone(),
                        from: Some(d.mode),
                        to: *mode,
                        forced: *forced,
                        reason: reason.clone(),
                        at: *at,
                    });
                }
                if d.mode != *mode {
                    d.mode_since = *at;
                }
                d.mode = *mode;
                d.forced = *forced;
                d.mode_reason = reason.clone();
            }
            Op::RouterSetMode {
                domain,
                mode,
                reason,
                at,
            } => {
                let d = self
                    .domains
                    .get(domain)
                    .ok_or_else(|| OpError::NoDomain(domain.clone()))?;
                if d.forced.is_some() || d.failover != Failover::Auto {
                    // An admin decided since: theirs stands.
                    return Ok(OpResult::Done);
                }
                return self.apply_directory(
                    ctx,
                    &Op::SetMode {
                        domain: domain.clone(),
                        mode: *mode,
                        forced: None,
                        reason: reason.clone(),
                        at: *at,
                    },
                    touched,
                );
            }
            Op::SetDkimKeys { domain, keys } => {
                if !self.domains.contains_key(domain) {
                    return Err(OpError::NoDomain(domain.clone()));
                }
                let dkim = self.dkim.entry(domain.clone()).or_default();
                dkim.retired = std::mem::replace(&mut dkim.keys, keys.clone());
            }
            Op::SetDkimEnabled { domain, enabled } => {
                if !self.domains.contains_key(domain) {
                    return Err(OpError::NoDomain(domain.clone()));
                }
                match self.dkim.get_mut(domain) {
                    Some(dkim) if !dkim.keys.is_empty() => dkim.enabled = *enabled,
                    _ if !*enabled => {}
                    _ => return Err(OpError::NoDkimKeys(domain.clone())),
                }
            }
            Op::AddAccount {
                address,
                password_hash,
                role,
                covered,
                recovery,
            } => {
                if self.accounts.contains_key(address) {
                    return Err(OpError::AccountExists(address.clone()));
                }
                let domain = Address::domain_of(address);
                if !self.domains.contains_key(domain) {
                    return Err(OpError::NoDomain(domain.to_string()));
                }
                let mut folders = BTreeMap::new();
                for (name, special_use) in DEFAULT_FOLDERS {
                    let id = self.new_folder(ctx, address, name, special_use);
                    folders.insert(name.to_string(), id);
                }
                self.accounts.insert(
                    address.clone(),
                    Account {
                        address: address.clone(),
                        password_hash: password_hash.clone(),
                        role: *role,
                        covered: *covered,
                        recovery: recovery.clone(),
                        folders,
                    },
                );
                touched.accounts.insert(address.clone());
            }
            Op::UpdateAccount {
                address,
                role,
                covered,
                recovery,
            } => {
                let account = self.account_mut(address)?;
                if let Some(role) = role {
                    account.role = *role;
                }
                if let Some(covered) = covered {
                    account.covered = *covered;
                }
                if let Some(recovery) = recovery {
                    account.recovery = recovery.clone();
                }
            }
            Op::SetPassword {
                address,
                password_hash,
            } => self.account_mut(address)?.password_hash = password_hash.clone(),
            Op::DeleteAccount(address) => {
                let account = self
                    .accounts
                    .remove(address)
                    .ok_or_else(|| OpError::NoAccount(address.clone()))?;
                for id in account.folders.values() {
                    self.drop_folder(*id, touched);
                }
                self.folder_sync.forget_account(address);
                touched.accounts.insert(address.clone());
            }
            _ => unreachable!("not a directory op: {op:?}"),
        }
        touched.directory = true;
        Ok(OpResult::Done)
    }

    /// Adds a domain in normal mode, or updates its settings (its mode untouched).
    fn put_domain(&mut self, ctx: Ctx, settings: &DomainSettings) {
        if let Some(domain) = self.domains.get_mut(&settings.name) {
            domain.upstream = settings.upstream.clone();
            domain.coverage = settings.coverage;
            domain.failover = settings.failover;
            return;
        }
        self.journal.record_mode(ModeChange {
            domain: settings.name.clone(),
            from: None,
            to: Mode::Normal,
            forced: None,
            reason: "domain added".to_string(),
            at: ctx.time,
        });
        self.domains.insert(
            settings.name.clone(),
            Domain {
                name: settings.name.clone(),
                upstream: settings.upstream.clone(),
                coverage: settings.coverage,
                failover: settings.failover,
                mode: Mode::Normal,
                forced: None,
                mode_since: ctx.time,
                mode_reason: "domain added".to_string(),
            },
        );
    }

    pub(super) fn account_mut(&mut self, address: &str) -> Result<&mut Account, OpError> {
        self.accounts
            .get_mut(address)
            .ok_or_else(|| OpError::NoAccount(address.to_string()))
    }

    /// All domains.
    pub fn domains(&self) -> impl Iterator<Item = &Domain> {
        self.domains.values()
    }

    /// One domain by name (any case).
    pub fn domain(&self, name: &str) -> Option<&Domain> {
        self.domains.get(&name.to_ascii_lowercase())
    }

    /// A domain's DKIM keys, if it has any (any case).
    pub fn dkim(&self, domain: &str) -> Option<&DomainDkim> {
        self.dkim.get(&domain.to_ascii_lowercase())
    }

    /// All accounts, or those of one domain.
    pub fn accounts<'a>(
        &'a self,
        domain: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Account> + 'a {
        self.accounts.values().filter(move |a| {
            domain.is_none_or(|d| Address::domain_of(&a.address).eq_ignore_ascii_case(d))
        })
    }

    /// One account by address (domain part case-insensitive).
    pub fn account(&self, address: &str) -> Option<&Account> {
        self.accounts.get(Address::try_from(address).ok()?.as_str())
    }

    /// Whether a registered account is protected by its domain's coverage.
    pub fn is_covered(&self, address: &str) -> bool {
        let Some(account) = self.account(address) else {
            return false;
        };
        match self.domain(Address::domain_of(&account.address)) {
            Some(domain) => domain.coverage == Coverage::All || account.covered,
            None => false,
        }
    }
}
