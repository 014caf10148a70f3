//! Change signals that wake waiters on any thread and in any executor (IMAP IDLE on a
//! tokio-uring core, the delivery queue worker on a plain thread).
//!
//! A [`Signal`] is a version counter. A waiter remembers the version it has seen and
//! waits until the counter moves past it, so a change that lands between a read and a
//! wait is never missed.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// A version counter with waiters.
#[derive(Default, Debug)]
pub struct Signal {
    version: AtomicU64,
    wakers: Mutex<Vec<Waker>>,
    condvar: Condvar,
}

impl Signal {
    /// The current version.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Moves the version on and wakes every waiter.
    pub fn notify(&self) {
        let wakers = {
            let mut wakers = self.wakers.lock();
            self.version.fetch_add(1, Ordering::AcqRel);
            self.condvar.notify_all();
            std::mem::take(&mut *wakers)
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// Blocks until the version differs from `seen` or `timeout` passes; returns the
    /// version then.
    pub fn wait_timeout(&self, seen: u64, timeout: Duration) -> u64 {
        let deadline = std::time::Instant::now() + timeout;
        let mut wakers = self.wakers.lock();
        while self.version() == seen {
            if self.condvar.wait_until(&mut wakers, deadline).timed_out() {
                break;
            }
        }
        self.version()
    }

    /// A future that resolves (to the new version) once the version differs from `seen`.
    pub fn changed(self: &Arc<Self>, seen: u64) -> Changed {
        Changed {
            signal: self.clone(),
            seen,
        }
    }
}

/// Resolves when a [`Signal`] moves past a version.
pub struct Changed {
    signal: Arc<Signal>,
    seen: u64,
}

impl Future for Changed {
    type Output = u64;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let now = self.signal.version();
        if now != self.seen {
            return Poll::Ready(now);
        }
        let mut wakers = self.signal.wakers.lock();
        // Checked again under the lock: `notify` bumps the version while holding it.
        let now = self.signal.version();
        if now != self.seen {
            return Poll::Ready(now);
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
