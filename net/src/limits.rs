//! Connection limits per listener and per client address, enforced across threads.
//!
//! Every thread accepts on its own `SO_REUSEPORT` socket, so a per-thread count would
//! let a client open `threads × connections_per_ip_max` connections. The counts live in
//! one `ConnectionCounter` per listener shared by all threads: an atomic total, and
//! per-client counts in a map split into [`CLIENT_SHARDS`] mutex-protected shards so
//! that threads accepting different clients rarely contend.
//!
//! Invariants:
//! - A connection is counted exactly while its [`ConnectionPermit`] lives; the permit
//!   is owned by the connection, so every way a connection ends (close, error, panic,
//!   abort at shutdown) releases it.
//! - A map entry exists only while its count is non-zero, so the map holds at most
//!   `connections_max` entries.
//! - IPv6 clients are counted per /64: one subscriber usually owns a whole /64, so
//!   counting single addresses would let one client multiply its allowance freely.
//!   IPv4-mapped IPv6 addresses count as the IPv4 address.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Shards of the per-client map; a power of two well above any core count we run on.
pub const CLIENT_SHARDS: usize = 64;

/// Prefix length under which IPv6 clients are counted together.
pub const IPV6_CLIENT_PREFIX_BITS: u32 = 64;

/// Limits for one listener (`limits.connections_max`, `limits.connections_per_ip_max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once on the listener, over all threads.
    pub connections_max: usize,
    /// Connections open at once from one client address (IPv6: one /64).
    pub connections_per_ip_max: usize,
}

impl Default for ConnectionLimits {
    /// The embedded defaults of SPEC §8.
    fn default() -> Self {
        ConnectionLimits {
            connections_max: 10_000,
            connections_per_ip_max: 100,
        }
    }
}

/// Which limit refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitExceeded {
    /// `connections_max`.
    Listener,
    /// `connections_per_ip_max`.
    Client,
}

/// The key a client is counted under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey(IpAddr);

impl ClientKey {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let mask = u128::MAX << (128 - IPV6_CLIENT_PREFIX_BITS);
                ClientKey(IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)))
            }
        }
    }

    fn shard(&self) -> usize {
        let mut hasher = DefaultHasher::new();
        self.hash(&mut hasher);
        // Truncation is fine: only the low bits pick the shard.
        (hasher.finish() as usize) % CLIENT_SHARDS
    }
}

/// Shared counts for one listener.
#[derive(Debug)]
pub(crate) struct ConnectionCounter {
    limits: ConnectionLimits,
    total: AtomicUsize,
    refused_total: AtomicU64,
    clients: Box<[Mutex<HashMap<ClientKey, usize>>]>,
}

impl ConnectionCounter {
    pub(crate) fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(ConnectionCounter {
            limits,
            total: AtomicUsize::new(0),
            refused_total: AtomicU64::new(0),
            clients: (0..CLIENT_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
        })
    }

    /// Counts a new connection from `ip`, or says which limit refuses it.
    pub(crate) fn try_acquire(
        self: &Arc<Self>,
        ip: IpAddr,
    ) -> Result<ConnectionPermit, LimitExceeded> {
        let previous = self.total.fetch_add(1, Ordering::AcqRel);
        if previous >= self.limits.connections_max {
            self.total.fetch_sub(1, Ordering::AcqRel);
            self.refused_total.fetch_add(1, Ordering::Relaxed);
            return Err(LimitExceeded::Listener);
        }
        let key = ClientKey::of(ip);
        {
            let mut shard = self.lock_shard(&key);
            let count = shard.entry(key).or_insert(0);
            if *count >= self.limits.connections_per_ip_max {
                if *count == 0 {
                    shard.remove(&key);
                }
                drop(shard);
                self.total.fetch_sub(1, Ordering::AcqRel);
                self.refused_total.fetch_add(1, Ordering::Relaxed);
                return Err(LimitExceeded::Client);
            }
            *count += 1;
        }
        Ok(ConnectionPermit {
            counter: Arc::clone(self),
            key,
        })
    }

    /// Connections open now.
    pub(crate) fn active(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Connections refused by a limit since start.
    pub(crate) fn refused_total(&self) -> u64 {
        self.refused_total.load(Ordering::Relaxed)
    }

    /// Connections open now from `ip` (IPv6: its /64).
    #[cfg(test)]
    pub(crate) fn active_from(&self, ip: IpAddr) -> usize {
        let key = ClientKey::of(ip);
        self.lock_shard(&key).get(&key).copied().unwrap_or(0)
    }

    fn lock_shard(&self, key: &ClientKey) -> std::sync::MutexGuard<'_, HashMap<ClientKey, usize>> {
        // A panic while holding a shard lock leaves the map consistent (every update
        // is a single insert/increment/remove), so poisoning is ignored rather than
        // letting one panic refuse all future connections.
        self.clients[key.shard()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn release(&self, key: &ClientKey) {
        {
            let mut shard = self.lock_shard(key);
            if let Some(count) = shard.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    shard.remove(key);
                }
            }
        }
        self.total.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Proof that a connection is counted; dropping it releases the count.
#[derive(Debug)]
pub struct ConnectionPermit {
    counter: Arc<ConnectionCounter>,
    key: ClientKey,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.counter.release(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn client_keys_group_ipv6_by_64_and_unmap_ipv4() {
        let cases = [
            ("192.0.2.1", "192.0.2.1"),
            ("::ffff:192.0.2.1", "192.0.2.1"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"),
            ("2001:db8:1:2:ffff::1", "2001:db8:1:2::"),
            ("::1", "::"),
        ];
        for (input, expected) in cases {
            assert_eq!(ClientKey::of(ip(input)), ClientKey(ip(expected)), "{input}");
        }
        assert_ne!(
            ClientKey::of(ip("2001:db8:1:2::1")),
            ClientKey::of(ip("2001:db8:1:3::1"))
        );
    }

    #[test]
    fn per_client_limit_refuses_and_releases() {
        let counter = ConnectionCounter::new(ConnectionLimits {
            connections_max: 10,
            connections_per_ip_max: 2,
        });
        let a = ip("192.0.2.1");
        let first = counter.try_acquire(a).unwrap();
        let _second = counter.try_acquire(a).unwrap();
        assert!(matches!(counter.try_acquire(a), Err(LimitExceeded::Client)));
        // Another client is unaffected.
        let _other = counter.try_acquire(ip("192.0.2.2")).unwrap();
        assert_eq!(counter.active(), 3);
        assert_eq!(counter.refused_total(), 1);
        drop(first);
        assert_eq!(counter.active_from(a), 1);
        let _third = counter.try_acquire(a).unwrap();
        assert_eq!(counter.active(), 3);
    }

    #[test]
    fn listener_limit_refuses_and_entries_are_removed_at_zero() {
        let counter = ConnectionCounter::new(ConnectionLimits {
            connections_max: 2,
            connections_per_ip_max: 5,
        });
        let permits: Vec<_> = ["192.0.2.1", "192.0.2.2"]
            .iter()
            .map(|text| counter.try_acquire(ip(text)).unwrap())
            .collect();
        assert!(matches!(
            counter.try_acquire(ip("192.0.2.3")),
            Err(LimitExceeded::Listener)
        ));
        drop(permits);
        assert_eq!(counter.active(), 0);
        let entries: usize = counter
            .clients
            .iter()
            .map(|shard| shard.lock().unwrap().len())
            .sum();
        assert_eq!(entries, 0);
    }

    #[test]
    fn counts_are_exact_under_contention() {
        let counter = ConnectionCounter::new(ConnectionLimits {
            connections_max: 1_000,
            connections_per_ip_max: 50,
        });
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    let mut granted = Vec::new();
                    for _ in 0..100 {
                        if let Ok(permit) = counter.try_acquire(ip("192.0.2.9")) {
                            granted.push(permit);
                        }
                    }
                    // Returned, not dropped, so no slot frees up while others race.
                    granted
                })
            })
            .collect();
        let granted: Vec<ConnectionPermit> = threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .collect();
        assert_eq!(granted.len(), 50);
        assert_eq!(counter.active(), 50);
        drop(granted);
        assert_eq!(counter.active(), 0);
    }
}
