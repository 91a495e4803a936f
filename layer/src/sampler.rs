//! The X-Ray SDKs' default sampling rule, outside Lambda: the first request
//! of each second, then a fixed share of the rest (5 %). In Lambda no
//! sampler runs; the invocation's header decides.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use xray_emitter::SegmentId;

/// A reservoir of one per second plus a fixed rate.
#[derive(Debug)]
pub(crate) struct Sampler {
    /// The second whose reservoir was last taken (seconds since `base`, plus one).
    taken: AtomicU64,
    /// `rate` as a threshold on a random `u64`.
    threshold: u64,
}

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

impl Sampler {
    pub(crate) fn new(rate: f64) -> Self {
        let rate = if rate.is_finite() {
            rate.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Sampler {
            taken: AtomicU64::new(0),
            threshold: (rate * u64::MAX as f64) as u64,
        }
    }

    /// Whether to record a new trace.
    pub(crate) fn sample(&self) -> bool {
        let second = base().elapsed().as_secs() + 1;
        let last = self.taken.load(Ordering::Relaxed);
        if last != second
            && self
                .taken
                .compare_exchange(last, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return true;
        }
        SegmentId::random().get() < self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_each_second_then_the_rate() {
        let s = Sampler::new(0.05);
        assert!(s.sample(), "the first request of a second is recorded");
        let n = 200_000;
        let taken = (0..n).filter(|_| s.sample()).count();
        let share = taken as f64 / n as f64;
        assert!((0.04..0.06).contains(&share), "{share}");
        let none = Sampler::new(0.0);
        assert!(none.sample());
        assert!((0..1000).all(|_| !none.sample()) || base().elapsed().as_secs() > 0);
    }
}
