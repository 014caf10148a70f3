//! A budget of message bytes held in memory, shared by every session of the process:
//! what bounds the memory of many clients sending large messages at once
//! (`limits.message_memory_max`).
//!
//! A session holds a [`Reservation`] while it receives a message and grows it with the
//! message ([`Reservation::cover`]); when the budget cannot cover the growth, the
//! session refuses the message with a temporary failure (the client tries again later)
//! instead of growing the process. Dropping the reservation gives its bytes back.
//!
//! Invariant: the bytes reserved by all live reservations never pass the limit, except
//! for what [`Reservation::force`] records of bytes already held.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Reservations grow in steps of this many bytes, so that a message costs a few
/// atomic operations per step rather than one per input chunk.
pub const RESERVATION_STEP_BYTES: u64 = 256 * 1024;

/// The process's budget; see the module documentation.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicU64::new(0),
        })
    }

    /// The limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes reserved now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn try_take(&self, bytes: u64) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let Some(after) = used.checked_add(bytes).filter(|&after| after <= self.limit) else {
                return false;
            };
            match self
                .used
                .compare_exchange_weak(used, after, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }
}

/// Bytes one session holds of a [`MemoryBudget`]; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Option<Arc<MemoryBudget>>,
    bytes: u64,
}

impl Reservation {
    /// An empty reservation of `budget`; `None` means no budget (every cover holds).
    pub fn new(budget: Option<Arc<MemoryBudget>>) -> Reservation {
        Reservation { budget, bytes: 0 }
    }

    /// Bytes reserved.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Grows the reservation to cover `bytes` (rounded up to a step); false, with the
    /// reservation unchanged, when the budget cannot.
    pub fn cover(&mut self, bytes: u64) -> bool {
        if bytes <= self.bytes {
            return true;
        }
        let wanted = bytes.div_ceil(RESERVATION_STEP_BYTES) * RESERVATION_STEP_BYTES;
        if let Some(budget) = &self.budget {
            if !budget.try_take(wanted - self.bytes) {
                return false;
            }
        }
        self.bytes = wanted;
        true
    }

    /// Records `bytes` the session already holds, whether or not the budget has room
    /// (a message complete in memory is committed rather than thrown away).
    pub fn force(&mut self, bytes: u64) {
        if bytes > self.bytes {
            if let Some(budget) = &self.budget {
                budget.used.fetch_add(bytes - self.bytes, Ordering::AcqRel);
            }
            self.bytes = bytes;
        }
    }

    /// Gives everything back.
    pub fn release(&mut self) {
        if let Some(budget) = &self.budget {
            budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
        }
        self.bytes = 0;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_budget_and_give_it_back() {
        let budget = MemoryBudget::new(4 * RESERVATION_STEP_BYTES);
        let mut a = Reservation::new(Some(budget.clone()));
        let mut b = Reservation::new(Some(budget.clone()));
        assert!(a.cover(1));
        assert_eq!(a.bytes(), RESERVATION_STEP_BYTES);
        assert!(a.cover(3 * RESERVATION_STEP_BYTES));
        assert!(!b.cover(2 * RESERVATION_STEP_BYTES), "over the limit");
        assert_eq!(b.bytes(), 0);
        assert!(b.cover(RESERVATION_STEP_BYTES));
        assert_eq!(budget.used(), budget.limit());
        a.release();
        assert_eq!(budget.used(), RESERVATION_STEP_BYTES);
        assert!(b.cover(4 * RESERVATION_STEP_BYTES));
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn force_records_what_is_held_past_the_limit() {
        let budget = MemoryBudget::new(RESERVATION_STEP_BYTES);
        let mut a = Reservation::new(Some(budget.clone()));
        a.force(3 * RESERVATION_STEP_BYTES);
        assert_eq!(budget.used(), 3 * RESERVATION_STEP_BYTES);
        let mut b = Reservation::new(Some(budget.clone()));
        assert!(!b.cover(1));
        drop(a);
        assert!(b.cover(1));
    }

    #[test]
    fn without_a_budget_everything_is_covered() {
        let mut a = Reservation::new(None);
        assert!(a.cover(u64::MAX / 2));
    }
}
