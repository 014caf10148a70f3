//! The shared shutdown signal.
//!
//! One [`Shutdown`] is cloned into every thread, accept loop and connection. Triggering
//! it is idempotent and visible to every thread at once: accept loops stop accepting,
//! [`crate::Framed`] reads waiting for input return [`crate::NetError::ShuttingDown`],
//! and handlers may also await [`Shutdown::triggered`] themselves.
//!
//! Invariant: the drain deadline is fixed before the flag becomes visible, so anyone
//! who sees the flag also sees the deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Drain time granted to running connections when shutdown is triggered without an
/// explicit deadline (e.g. straight from a signal handler).
pub const DRAIN_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);

/// A cloneable shutdown signal shared by all threads.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    triggered: AtomicBool,
    deadline: OnceLock<Instant>,
    notify: Notify,
}

impl Shutdown {
    /// A signal that has not been triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts shutdown with the default drain time.
    pub fn trigger(&self) {
        self.trigger_with_deadline(Instant::now() + DRAIN_TIMEOUT_DEFAULT);
    }

    /// Starts shutdown; connections still running at `deadline` are aborted. The first
    /// deadline set wins, so a later trigger cannot extend or shorten a shutdown that
    /// is already under way.
    pub fn trigger_with_deadline(&self, deadline: Instant) {
        let _ = self.inner.deadline.set(deadline);
        if !self.inner.triggered.swap(true, Ordering::AcqRel) {
            self.inner.notify.notify_waiters();
        }
    }

    /// True once shutdown has started.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::Acquire)
    }

    /// When running connections will be aborted, once shutdown has started.
    pub fn deadline(&self) -> Option<Instant> {
        if self.is_triggered() {
            self.inner.deadline.get().copied()
        } else {
            None
        }
    }

    /// Completes when shutdown starts (at once if it already has). Cancel-safe.
    pub async fn triggered(&self) {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            // Register before checking the flag so a trigger between the check and the
            // await cannot be missed.
            notified.as_mut().enable();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_wakes_waiters_on_other_threads() {
        let shutdown = Shutdown::new();
        assert!(!shutdown.is_triggered());
        assert_eq!(shutdown.deadline(), None);
        let waiter = {
            let shutdown = shutdown.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(shutdown.triggered());
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        let deadline = Instant::now() + Duration::from_secs(1);
        shutdown.trigger_with_deadline(deadline);
        waiter.join().unwrap();
        assert!(shutdown.is_triggered());
        assert_eq!(shutdown.deadline(), Some(deadline));
        // The first deadline wins.
        shutdown.trigger();
        assert_eq!(shutdown.deadline(), Some(deadline));
    }
}
