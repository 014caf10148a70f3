//! Latency histograms with fixed buckets, recorded without locks from any thread and
//! read as Prometheus histograms (`/metrics`) or, between two snapshots, as
//! percentiles (the bench harness). The buckets follow a 1–1.5–2–3–5–7 series from
//! 50 µs to 10 s: a percentile read from them is the upper bound of its bucket, within
//! half a step of the true value, enough to tell which stage of a commit holds a tail.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The upper bounds of the buckets, in microseconds; one more bucket holds the rest.
pub const BOUNDS_US: [u64; 32] = [
    50, 70, 100, 150, 200, 300, 500, 700, 1_000, 1_500, 2_000, 3_000, 5_000, 7_000, 10_000, 15_000,
    20_000, 30_000, 50_000, 70_000, 100_000, 150_000, 200_000, 300_000, 500_000, 700_000,
    1_000_000, 1_500_000, 2_000_000, 3_000_000, 5_000_000, 10_000_000,
];

const BUCKETS: usize = BOUNDS_US.len() + 1;

/// Counts of durations by bucket, and their sum.
#[derive(Debug)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Counts one duration.
    pub fn record(&self, duration: Duration) {
        let us = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_US.partition_point(|&bound| bound < us);
        self.counts[bucket].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// The counts now. Recording goes on meanwhile, so a snapshot taken under load
    /// may be off by the few durations recorded while it was read.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            counts: std::array::from_fn(|i| self.counts[i].load(Relaxed)),
            sum_us: self.sum_us.load(Relaxed),
        }
    }
}

/// A histogram's counts at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Per bucket (not cumulative); the last one counts what is above every bound.
    pub counts: [u64; BUCKETS],
    /// The sum of the durations, in microseconds.
    pub sum_us: u64,
}

impl Default for Snapshot {
    fn default() -> Snapshot {
        Snapshot {
            counts: [0; BUCKETS],
            sum_us: 0,
        }
    }
}

impl Snapshot {
    /// How many durations were counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// What was counted after `earlier` (a snapshot of the same histogram).
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            counts: std::array::from_fn(|i| self.counts[i].saturating_sub(earlier.counts[i])),
            sum_us: self.sum_us.saturating_sub(earlier.sum_us),
        }
    }

    /// The upper bound of the bucket holding quantile `q` (0 < q ≤ 1), in
    /// microseconds; `None` when nothing was counted or it lies above the last bound.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return BOUNDS_US.get(i).copied();
            }
        }
        None
    }

    /// The cumulative counts as Prometheus wants them: `(le, count)` for every bound
    /// in seconds, then `("+Inf", total)`.
    pub fn cumulative(&self) -> Vec<(String, u64)> {
        let mut seen = 0;
        let mut out = Vec::with_capacity(BUCKETS);
        for (i, count) in self.counts.iter().enumerate() {
            seen += count;
            let le = match BOUNDS_US.get(i) {
                Some(&us) => format!("{}", us as f64 / 1e6),
                None => "+Inf".to_string(),
            };
            out.push((le, seen));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_the_bucket_whose_bound_is_the_first_at_or_above_them() {
        let h = Histogram::default();
        h.record(Duration::from_micros(10));
        h.record(Duration::from_micros(50));
        h.record(Duration::from_micros(51));
        h.record(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.counts[0], 2);
        assert_eq!(s.counts[1], 1);
        assert_eq!(s.counts[BUCKETS - 1], 1);
        assert_eq!(s.sum_us, 10 + 50 + 51 + 60_000_000);
        assert_eq!(s.cumulative().last(), Some(&("+Inf".to_string(), 4)));
        assert_eq!(s.cumulative()[0], ("0.00005".to_string(), 2));
    }

    #[test]
    fn quantiles_are_read_between_snapshots() {
        let h = Histogram::default();
        for _ in 0..1000 {
            h.record(Duration::from_millis(40));
        }
        let before = h.snapshot();
        for _ in 0..98 {
            h.record(Duration::from_micros(900));
        }
        h.record(Duration::from_millis(4));
        h.record(Duration::from_millis(12));
        let window = h.snapshot().since(&before);
        assert_eq!(window.count(), 100);
        assert_eq!(window.quantile_us(0.5), Some(1_000));
        assert_eq!(window.quantile_us(0.98), Some(1_000));
        assert_eq!(window.quantile_us(0.99), Some(5_000));
        assert_eq!(window.quantile_us(1.0), Some(15_000));
        assert_eq!(Snapshot::default().quantile_us(0.5), None);
    }
}
