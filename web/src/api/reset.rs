//! Password resets (SPEC §5): an account's owner asks for a reset code, which goes by
//! mail to the account's recovery address (on another domain), or to the account's
//! own address when it has none; with the code they choose a new password.
//!
//! - The request answers the same whether the account exists or not, so it cannot be
//!   used to find out which addresses have accounts.
//! - A code is 32 random bytes, kept only as its SHA-256 (in memory: a restart
//!   forgets open resets, and the owner asks again), valid for one hour and once.
//!   Asking again replaces the account's previous code.
//! - Requests are limited per client address and per account, so the endpoint cannot
//!   be used to flood a mailbox.
//! - Without a recovery address during an emergency, the code lands in the portal
//!   INBOX, which the owner cannot open without the password: the answer says so, and
//!   an administrator has to set the password.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::admin::{self, Actor, Problem};
use crate::api::{ApiError, ApiResult};
use crate::{AppState, ClientIp};

type Shared = Arc<AppState>;

/// How long a reset code is valid.
const CODE_LIFETIME: Duration = Duration::from_secs(3600);
/// Reset requests one client address may make per window.
const REQUESTS_PER_CLIENT: usize = 10;
/// Shortest time between two codes mailed for one account.
const ACCOUNT_INTERVAL: Duration = Duration::from_secs(60);
/// The window of the per-client limit.
const CLIENT_WINDOW: Duration = Duration::from_secs(600);
/// Open codes and rate-limit entries kept at most (oldest dropped first).
const ENTRIES_MAX: usize = 10_000;

/// Open reset codes and request counts.
#[derive(Default)]
pub(crate) struct Resets {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// SHA-256 of a code → (account, expiry).
    codes: HashMap<[u8; 32], (String, Instant)>,
    /// Account → when its last code was mailed.
    mailed: HashMap<String, Instant>,
    /// Client network ([`lifeboat_store::auth::client_network`]) → times of its
    /// recent requests.
    clients: HashMap<IpAddr, Vec<Instant>>,
}

impl Inner {
    fn prune(&mut self, now: Instant) {
        self.codes.retain(|_, (_, expires)| *expires > now);
        self.mailed
            .retain(|_, at| now.duration_since(*at) < ACCOUNT_INTERVAL);
        self.clients.retain(|_, times| {
            times.retain(|t| now.duration_since(*t) < CLIENT_WINDOW);
            !times.is_empty()
        });
    }
}

impl Inner {
    /// Counts a request from `client` (after [`Inner::prune`]): refused past
    /// [`REQUESTS_PER_CLIENT`] in the window, and when [`ENTRIES_MAX`] networks are
    /// counted already and this is a new one.
    fn admit(&mut self, client: IpAddr, now: Instant) -> Result<(), ResetError> {
        let client = lifeboat_store::auth::client_network(client);
        if self.clients.len() >= ENTRIES_MAX && !self.clients.contains_key(&client) {
            return Err(ResetError::Unavailable(
                "too many reset requests, try again later",
            ));
        }
        let times = self.clients.entry(client).or_default();
        if times.len() >= REQUESTS_PER_CLIENT {
            return Err(ResetError::TooMany);
        }
        times.push(now);
        Ok(())
    }
}

fn digest(code: &str) -> [u8; 32] {
    Sha256::digest(code.trim().as_bytes()).into()
}

/// The routes under `/api/v1/password-reset` (no token, no password).
pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/", post(request))
        .route("/confirm", post(confirm))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    address: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetConfirm {
    code: String,
    password: String,
}

/// The answer to every reset request, whether the account exists or not.
pub(crate) const ANSWER: &str =
    "If this address has an account, a reset code is on its way to the \
account's recovery address, or to the address itself when it has none. While the \
address's domain is in an emergency that mail lands in the portal mailbox, which cannot \
be opened without the password: then ask an administrator to set a new password.";

/// Why a reset request or confirmation was refused.
#[derive(Debug)]
pub(crate) enum ResetError {
    /// Too many requests from this client.
    TooMany,
    /// The reset mail cannot be sent now.
    Unavailable(&'static str),
    /// The code is unknown, used or expired.
    BadCode,
    /// The new password is refused, or the change failed.
    Change(Problem),
}

impl From<ResetError> for ApiError {
    fn from(e: ResetError) -> ApiError {
        match e {
            ResetError::TooMany => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many reset requests from this address, try again later",
            ),
            ResetError::Unavailable(why) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why),
            ResetError::BadCode => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid or expired reset code: ask for a new one",
            ),
            ResetError::Change(Problem::NoAccount(a)) => {
                ApiError::new(StatusCode::NOT_FOUND, format!("no account {a}"))
            }
            ResetError::Change(problem) => problem.into(),
        }
    }
}

/// Takes a reset request for `address` from `client`: mails a code when the account
/// exists and had none mailed within the last minute. The outcome does not say
/// whether the account exists.
pub(crate) async fn request_code(
    state: &AppState,
    address: &str,
    client: IpAddr,
) -> Result<(), ResetError> {
    let now = Instant::now();
    let account = state.store.read(|s| s.account(address).cloned());
    let code = {
        let mut inner = state.resets.inner.lock();
        inner.prune(now);
        inner.admit(client, now)?;
        match &account {
            Some(account) if !inner.mailed.contains_key(&account.address) => {
                if inner.codes.len() >= ENTRIES_MAX {
                    return Err(ResetError::Unavailable(
                        "too many open resets, try again later",
                    ));
                }
                inner.mailed.insert(account.address.clone(), now);
                // One open code per account: a new one replaces the old.
                inner
                    .codes
                    .retain(|_, (address, _)| *address != account.address);
                let bytes: [u8; 32] = rand::random();
                let code: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                inner.codes.insert(
                    digest(&code),
                    (account.address.clone(), now + CODE_LIFETIME),
                );
                Some(code)
            }
            _ => None,
        }
    };
    if let (Some(account), Some(code)) = (account, code) {
        let to = account.recovery.clone().unwrap_or(account.address.clone());
        let text = format!(
            "Someone, hopefully you, asked to reset the password of {address} at Lifeboat.\n\
             \n\
             Reset code: {code}\n\
             \n\
             It is valid once, for one hour. To choose a new password, open Lifeboat's\n\
             sign-in page, choose \"Forgot your password?\" and then \"I have a code\".\n\
             Or send the code to the server (your administrator can tell you its address):\n\
             \n\
             \x20 curl -X POST https://SERVER/api/v1/password-reset/confirm \\\n\
             \x20      -H 'Content-Type: application/json' \\\n\
             \x20      -d '{{\"code\": \"{code}\", \"password\": \"...\"}}'\n\
             \n\
             If you did not ask for this, ignore this message: the password stays as it is.\n",
            address = account.address,
        );
        match &state.status {
            Some(status) => {
                let subject = format!("Password reset for {}", account.address);
                if let Err(e) = status.send_notice(&to, &subject, &text).await {
                    tracing::error!(account = %account.address, to, "password reset mail failed: {e}");
                    return Err(ResetError::Unavailable(
                        "the reset mail could not be sent, try again later",
                    ));
                }
                tracing::info!(account = %account.address, to, %client, "password reset code mailed");
            }
            None => {
                return Err(ResetError::Unavailable(
                    "no relay is running to send the reset mail",
                ))
            }
        }
    }
    Ok(())
}

/// Spends a reset code on a new password; the account's address.
pub(crate) async fn confirm_code(
    state: &AppState,
    code: &str,
    password: String,
    client: IpAddr,
) -> Result<String, ResetError> {
    let now = Instant::now();
    let key = digest(code);
    let address = {
        let inner = state.resets.inner.lock();
        match inner.codes.get(&key) {
            Some((address, expires)) if *expires > now => address.clone(),
            _ => return Err(ResetError::BadCode),
        }
    };
    // The password is checked before the code is spent, so a password that is too
    // short costs no new code.
    admin::check_password(&password).map_err(ResetError::Change)?;
    let account = admin::find_account(state, &address).map_err(ResetError::Change)?;
    if state.resets.inner.lock().codes.remove(&key).is_none() {
        return Err(ResetError::BadCode);
    }
    let actor = Actor::account(&address, client);
    admin::set_password(state, &actor, &account, password, "reset with a code")
        .await
        .map_err(ResetError::Change)?;
    tracing::info!(account = %address, "password reset");
    Ok(address)
}

async fn request(
    State(state): State<Shared>,
    ClientIp(client): ClientIp,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let req: ResetRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))?;
    request_code(&state, &req.address, client).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "message": ANSWER }))))
}

async fn confirm(
    State(state): State<Shared>,
    ClientIp(client): ClientIp,
    body: Bytes,
) -> ApiResult {
    let req: ResetConfirm = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))?;
    let address = confirm_code(&state, &req.code, req.password, client).await?;
    Ok(Json(json!({ "address": address, "password": "changed" })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_count_by_network_and_the_table_is_bounded() {
        let mut inner = Inner::default();
        let now = Instant::now();
        for i in 0..REQUESTS_PER_CLIENT {
            let ip: IpAddr = format!("2001:db8::{i:x}").parse().unwrap();
            inner.admit(ip, now).unwrap();
        }
        let same: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        assert!(matches!(inner.admit(same, now), Err(ResetError::TooMany)));
        for i in 1..ENTRIES_MAX as u32 {
            inner.admit(IpAddr::from(i.to_be_bytes()), now).unwrap();
        }
        assert_eq!(inner.clients.len(), ENTRIES_MAX);
        let new: IpAddr = "192.0.2.200".parse().unwrap();
        assert!(matches!(
            inner.admit(new, now),
            Err(ResetError::Unavailable(_))
        ));
        // A network already counted goes on being counted.
        inner.admit(IpAddr::from(7u32.to_be_bytes()), now).unwrap();
        // The window passes: the table empties.
        inner.prune(now + CLIENT_WINDOW);
        assert!(inner.clients.is_empty());
        inner.admit(new, now + CLIENT_WINDOW).unwrap();
    }
}
