//! Login checking shared by every protocol: Argon2id verification off the protocol
//! cores, a short-lived cache of successful logins, and rate limits on failures per
//! account and per client address.
//!
//! Invariants:
//! - Argon2 runs only on the authenticator's own threads, never on the caller's: a
//!   protocol core awaiting a login keeps serving its other connections.
//! - A client that has used up its failures is refused before its password is
//!   checked, so it learns nothing more, whether the password was right or not.
//! - An unknown address costs as much as a wrong password (a dummy hash is verified),
//!   so timing does not tell which addresses exist.
//! - A cached success is keyed by the address and a keyed hash of the password and
//!   the stored hash, so a password change invalidates it.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::model::Account;
use crate::password::verify_password;
use crate::Store;

/// Failed logins an account may have before it is throttled.
pub const ACCOUNT_FAILURES_MAX: f64 = 10.0;
/// One failure is forgiven per this interval, per account.
pub const ACCOUNT_REFILL: Duration = Duration::from_secs(30);
/// Failed logins a client address may have before it is throttled.
pub const IP_FAILURES_MAX: f64 = 30.0;
/// One failure is forgiven per this interval, per client address.
pub const IP_REFILL: Duration = Duration::from_secs(10);
/// How long a successful login is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(600);
/// Most entries kept in the cache and in each limiter table.
pub const TABLE_ENTRIES_MAX: usize = 100_000;
/// Threads that run Argon2.
pub const VERIFY_THREADS: usize = 2;
/// Logins waiting for a verifier before new ones are refused as unavailable.
pub const VERIFY_QUEUE_MAX: usize = 1024;

/// Failure budgets; [`Limits::default`] uses the constants above.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures per account before throttling.
    pub account_failures_max: f64,
    /// One account failure forgiven per this interval.
    pub account_refill: Duration,
    /// Failures per client address before throttling.
    pub ip_failures_max: f64,
    /// One address failure forgiven per this interval.
    pub ip_refill: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            account_failures_max: ACCOUNT_FAILURES_MAX,
            account_refill: ACCOUNT_REFILL,
            ip_failures_max: IP_FAILURES_MAX,
            ip_refill: IP_REFILL,
        }
    }
}

/// Why a login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// Wrong address or password.
    Invalid,
    /// Too many failures from this client or for this account; try later.
    RateLimited,
    /// The verifier is overloaded or gone.
    Unavailable,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthError::Invalid => "invalid credentials",
            AuthError::RateLimited => "too many failed logins, try again later",
            AuthError::Unavailable => "authentication temporarily unavailable",
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

struct Limiter {
    capacity: f64,
    refill: Duration,
    buckets: HashMap<String, Bucket>,
}

impl Limiter {
    fn new(capacity: f64, refill: Duration) -> Limiter {
        Limiter {
            capacity,
            refill,
            buckets: HashMap::new(),
        }
    }

    fn tokens(&mut self, key: &str, now: Instant) -> f64 {
        match self.buckets.get_mut(key) {
            Some(bucket) => {
                let refilled =
                    now.duration_since(bucket.updated).as_secs_f64() / self.refill.as_secs_f64();
                bucket.tokens = (bucket.tokens + refilled).min(self.capacity);
                bucket.updated = now;
                bucket.tokens
            }
            None => self.capacity,
        }
    }

    fn allowed(&mut self, key: &str, now: Instant) -> bool {
        self.tokens(key, now) >= 1.0
    }

    fn fail(&mut self, key: &str, now: Instant) {
        let tokens = self.tokens(key, now);
        if self.buckets.len() >= TABLE_ENTRIES_MAX {
            let capacity = self.capacity;
            let refill = self.refill;
            // Forget clients that have recovered fully; they would start full anyway.
            self.buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() / refill.as_secs_f64()
                    < capacity
            });
        }
        self.buckets.insert(
            key.to_string(),
            Bucket {
                tokens: (tokens - 1.0).max(0.0),
                updated: now,
            },
        );
    }
}

struct Job {
    password: String,
    hash: String,
    done: Arc<Slot>,
}

#[derive(Default)]
struct Slot {
    state: Mutex<(Option<bool>, Option<Waker>)>,
    condvar: parking_lot::Condvar,
}

impl Slot {
    fn complete(&self, ok: bool) {
        let waker = {
            let mut state = self.state.lock();
            state.0 = Some(ok);
            state.1.take()
        };
        self.condvar.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

struct Verified(Arc<Slot>);

impl Future for Verified {
    type Output = bool;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let mut state = self.0.state.lock();
        match state.0 {
            Some(ok) => Poll::Ready(ok),
            None => {
                state.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Checks logins against the store's accounts. Share it (`Arc`) between protocols.
pub struct Authenticator {
    store: Store,
    jobs: Sender<Job>,
    accounts: Mutex<Limiter>,
    ips: Mutex<Limiter>,
    cache: Mutex<HashMap<String, ([u8; 32], Instant)>>,
    secret: [u8; 32],
    dummy_hash: String,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Starts the verifier threads, with the default limits.
    pub fn new(store: Store) -> Arc<Authenticator> {
        Authenticator::with_limits(store, Limits::default())
    }

    /// Starts the verifier threads.
    pub fn with_limits(store: Store, limits: Limits) -> Arc<Authenticator> {
        let (jobs, rx) = crossbeam_channel::bounded::<Job>(VERIFY_QUEUE_MAX);
        for i in 0..VERIFY_THREADS {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("auth-verify-{i}"))
                .spawn(move || {
                    for job in rx {
                        job.done.complete(verify_password(&job.password, &job.hash));
                    }
                })
                .expect("starting an authentication thread");
        }
        let secret: [u8; 32] = rand::random();
        let dummy_hash = crate::password::hash_password("dummy password for unknown users")
            .expect("hashing a fixed password");
        Arc::new(Authenticator {
            store,
            jobs,
            accounts: Mutex::new(Limiter::new(
                limits.account_failures_max,
                limits.account_refill,
            )),
            ips: Mutex::new(Limiter::new(limits.ip_failures_max, limits.ip_refill)),
            cache: Mutex::new(HashMap::new()),
            secret,
            dummy_hash,
        })
    }

    fn cache_key(&self, password: &str, hash: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update((password.len() as u64).to_le_bytes());
        h.update(password.as_bytes());
        h.update(hash.as_bytes());
        h.finalize().into()
    }

    fn verify(&self, password: &str, hash: &str) -> Result<Verified, AuthError> {
        let done = Arc::new(Slot::default());
        self.jobs
            .try_send(Job {
                password: password.to_string(),
                hash: hash.to_string(),
                done: done.clone(),
            })
            .map_err(|_| AuthError::Unavailable)?;
        Ok(Verified(done))
    }

    /// Checks `address` and `password` for a client at `client`; on success returns
    /// the account. Usable from any executor.
    pub async fn login(
        &self,
        address: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<Account, AuthError> {
        let now = Instant::now();
        let account = self.store.read(|s| s.account(address).cloned());
        let account_key = account
            .as_ref()
            .map(|a| a.address.clone())
            .unwrap_or_else(|| address.to_ascii_lowercase());
        let ip_key = client_network(client).to_string();
        if !self.ips.lock().allowed(&ip_key, now)
            || !self.accounts.lock().allowed(&account_key, now)
        {
            return Err(AuthError::RateLimited);
        }
        let hash = account
            .as_ref()
            .map(|a| a.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash.clone());
        let key = self.cache_key(password, &hash);
        if let Some(account) = &account {
            let cache = self.cache.lock();
            if let Some((cached, at)) = cache.get(&account.address) {
                if *cached == key && now.duration_since(*at) < CACHE_TTL {
                    return Ok(account.clone());
                }
            }
        }
        let ok = self.verify(password, &hash)?.await;
        match account {
            Some(account) if ok => {
                let mut cache = self.cache.lock();
                if cache.len() >= TABLE_ENTRIES_MAX {
                    cache.retain(|_, (_, at)| now.duration_since(*at) < CACHE_TTL);
                }
                cache.insert(account.address.clone(), (key, now));
                Ok(account)
            }
            _ => {
                self.ips.lock().fail(&ip_key, now);
                self.accounts.lock().fail(&account_key, now);
                tracing::info!(address, %client, "failed login");
                Err(AuthError::Invalid)
            }
        }
    }

    /// [`Authenticator::login`] for threads that may block.
    pub fn login_blocking(
        &self,
        address: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<Account, AuthError> {
        block_on(self.login(address, password, client))
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// The network a client counts as for rate limits: its IPv4 address, or the /64 its
/// IPv6 address is in (one subscriber's network, as the connection limits count
/// them), so that rotating through one's addresses does not escape a limit.
pub fn client_network(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    fn store_with_user(dir: &std::path::Path) -> Store {
        let store = Store::open(dir, Options::default()).unwrap();
        let mut batch = Batch::new();
        batch.push(Op::PutDomain(DomainSettings {
            name: "example.test".into(),
            upstream: "127.0.0.1:25".into(),
            coverage: Coverage::All,
            failover: Failover::Auto,
        }));
        batch.push(Op::AddAccount {
            address: "Alice@example.test".into(),
            password_hash: crate::password::hash_password("s3cret pass").unwrap(),
            role: Role::User,
            covered: false,
            recovery: None,
        });
        store.commit(batch).unwrap();
        store
    }

    #[test]
    fn logins_check_password_case_and_rate_limits() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            account_failures_max: 5.0,
            account_refill: Duration::from_secs(3600),
            ..Limits::default()
        };
        let auth = Authenticator::with_limits(store_with_user(dir.path()), limits);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        // The domain part is case-insensitive, the local part is not.
        assert!(auth
            .login_blocking("Alice@EXAMPLE.test", "s3cret pass", ip)
            .is_ok());
        assert_eq!(
            auth.login_blocking("alice@example.test", "s3cret pass", ip)
                .unwrap_err(),
            AuthError::Invalid
        );
        // Cached success is still checked against the password.
        assert_eq!(
            auth.login_blocking("Alice@example.test", "wrong", ip)
                .unwrap_err(),
            AuthError::Invalid
        );
        for _ in 0..4 {
            let _ = auth.login_blocking("Alice@example.test", "wrong", ip);
        }
        // The account is throttled now, even with the right password ...
        assert_eq!(
            auth.login_blocking("Alice@example.test", "s3cret pass", ip)
                .unwrap_err(),
            AuthError::RateLimited
        );
        // ... from another address too.
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(
            auth.login_blocking("Alice@example.test", "s3cret pass", other)
                .unwrap_err(),
            AuthError::RateLimited
        );
    }

    #[test]
    fn an_address_is_throttled_across_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            ip_failures_max: 5.0,
            ip_refill: Duration::from_secs(3600),
            ..Limits::default()
        };
        let auth = Authenticator::with_limits(store_with_user(dir.path()), limits);
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        for i in 0..5 {
            let _ = auth.login_blocking(&format!("nobody{i}@example.test"), "x", ip);
        }
        assert_eq!(
            auth.login_blocking("Alice@example.test", "s3cret pass", ip)
                .unwrap_err(),
            AuthError::RateLimited
        );
        let fresh: IpAddr = "198.51.100.8".parse().unwrap();
        assert!(auth
            .login_blocking("Alice@example.test", "s3cret pass", fresh)
            .is_ok());
        // An IPv6 client counts by its /64: another address in it is throttled too,
        // one in the next /64 is not.
        for i in 0..5 {
            let ip: IpAddr = format!("2001:db8:0:1::{i:x}").parse().unwrap();
            let _ = auth.login_blocking("nobody@example.test", "x", ip);
        }
        let same: IpAddr = "2001:db8:0:1:ffff::1".parse().unwrap();
        assert_eq!(
            auth.login_blocking("Alice@example.test", "s3cret pass", same)
                .unwrap_err(),
            AuthError::RateLimited
        );
        let next: IpAddr = "2001:db8:0:2::1".parse().unwrap();
        assert!(auth
            .login_blocking("Alice@example.test", "s3cret pass", next)
            .is_ok());
        // An IPv4 address mapped into IPv6 is the IPv4 address.
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        assert_eq!(
            auth.login_blocking("Alice@example.test", "s3cret pass", mapped)
                .unwrap_err(),
            AuthError::RateLimited
        );
    }
}
