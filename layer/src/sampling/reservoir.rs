//! A rule's decision state: reservoir, fixed rate and the counts reported
//! to X-Ray. All atomics, read and updated on the caller's thread without a
//! lock; the poller thread writes the targets X-Ray hands out.

use std::sync::atomic::{AtomicU64, Ordering};

/// `f64` rates kept as their bits in an `AtomicU64`.
fn bits(rate: f64) -> u64 {
    let rate = if rate.is_finite() {
        rate.clamp(0.0, 1.0)
    } else {
        0.0
    };
    rate.to_bits()
}

/// What a rule decided, for the statistics.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) requests: AtomicU64,
    pub(crate) sampled: AtomicU64,
    pub(crate) borrowed: AtomicU64,
}

/// A counted snapshot of [`Counts`], taken (and zeroed) when reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Taken {
    pub(crate) requests: u64,
    pub(crate) sampled: u64,
    pub(crate) borrowed: u64,
}

/// The rate as a bound on a uniform `u64`: sampled below it (always at `u64::MAX`).
fn threshold(rate: f64) -> u64 {
    let rate = f64::from_bits(bits(rate));
    if rate >= 1.0 {
        u64::MAX
    } else {
        (rate * u64::MAX as f64) as u64
    }
}

#[derive(Debug)]
pub(crate) struct RuleState {
    /// The rate applied once the reservoir is spent.
    fixed_rate: AtomicU64,
    /// The same rate as [`threshold`] gives it: an integer comparison per decision.
    threshold: AtomicU64,
    /// Requests a second the reservoir takes: X-Ray's quota, or a local
    /// rule's `fixed_target`.
    quota: AtomicU64,
    /// Until when (seconds of [`super::now`]) `quota` holds; `u64::MAX` for
    /// a local rule, 0 while X-Ray has given no quota (then one request a
    /// second is borrowed).
    quota_until: AtomicU64,
    /// The second being counted (high 40 bits) and how many the reservoir
    /// took in it (low 24 bits), changed together by one compare-exchange.
    window: AtomicU64,
    /// The last second one request was borrowed in, plus one.
    borrowed_second: AtomicU64,
    pub(crate) counts: Counts,
    /// Seconds between reports X-Ray asked for (`Interval`), 0 if none.
    pub(crate) interval: AtomicU64,
}

const USED_BITS: u32 = 24;
const USED_MASK: u64 = (1 << USED_BITS) - 1;

impl RuleState {
    /// A rule X-Ray manages: no quota until the first target arrives.
    pub(crate) fn centralized(fixed_rate: f64) -> RuleState {
        RuleState::new(fixed_rate, 0, 0)
    }

    /// A local rule (or the built-in default): `per_second` from the
    /// reservoir, for good, then the rate.
    pub(crate) fn local(per_second: u64, fixed_rate: f64) -> RuleState {
        RuleState::new(fixed_rate, per_second, u64::MAX)
    }

    fn new(fixed_rate: f64, quota: u64, quota_until: u64) -> RuleState {
        RuleState {
            fixed_rate: AtomicU64::new(bits(fixed_rate)),
            threshold: AtomicU64::new(threshold(fixed_rate)),
            quota: AtomicU64::new(quota.min(USED_MASK)),
            quota_until: AtomicU64::new(quota_until),
            window: AtomicU64::new(0),
            borrowed_second: AtomicU64::new(0),
            counts: Counts::default(),
            interval: AtomicU64::new(0),
        }
    }

    /// A target from X-Ray: the rate, and a quota valid until `until`.
    pub(crate) fn set_target(&self, fixed_rate: f64, quota: Option<(u64, u64)>, interval: u64) {
        self.set_rate(fixed_rate);
        if let Some((quota, until)) = quota {
            self.quota.store(quota.min(USED_MASK), Ordering::Relaxed);
            self.quota_until.store(until, Ordering::Release);
        }
        self.interval.store(interval, Ordering::Relaxed);
    }

    /// The rate a newer version of the rule brings (its quota stays).
    pub(crate) fn set_rate(&self, fixed_rate: f64) {
        self.fixed_rate.store(bits(fixed_rate), Ordering::Relaxed);
        self.threshold
            .store(threshold(fixed_rate), Ordering::Relaxed);
    }

    #[cfg(test)]
    pub(crate) fn fixed_rate(&self) -> f64 {
        f64::from_bits(self.fixed_rate.load(Ordering::Relaxed))
    }

    /// Decides one request at second `now`; `random` draws a uniform `u64`
    /// (only if the reservoir does not take the request).
    #[inline]
    pub(crate) fn decide(&self, now: u64, random: impl FnOnce() -> u64) -> bool {
        self.counts.requests.fetch_add(1, Ordering::Relaxed);
        let until = self.quota_until.load(Ordering::Acquire);
        let taken = if until == 0 || now >= until {
            // No quota from X-Ray (yet, or any more): one a second, borrowed.
            let borrowed = self.borrow(now);
            if borrowed {
                self.counts.borrowed.fetch_add(1, Ordering::Relaxed);
            }
            borrowed
        } else {
            self.take(now, self.quota.load(Ordering::Relaxed))
        };
        let sampled = taken || {
            let threshold = self.threshold.load(Ordering::Relaxed);
            threshold == u64::MAX || random() < threshold
        };
        if sampled {
            self.counts.sampled.fetch_add(1, Ordering::Relaxed);
        }
        sampled
    }

    /// One of this second's `quota`, if any is left.
    fn take(&self, now: u64, quota: u64) -> bool {
        let mut window = self.window.load(Ordering::Relaxed);
        loop {
            let (second, used) = (window >> USED_BITS, window & USED_MASK);
            let used = if second == now { used } else { 0 };
            if used >= quota {
                return false;
            }
            let next = (now << USED_BITS) | (used + 1);
            match self.window.compare_exchange_weak(
                window,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => window = seen,
            }
        }
    }

    fn borrow(&self, now: u64) -> bool {
        let last = self.borrowed_second.load(Ordering::Relaxed);
        last != now + 1
            && self
                .borrowed_second
                .compare_exchange(last, now + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// The counts since the last call, zeroed.
    pub(crate) fn take_counts(&self) -> Taken {
        Taken {
            requests: self.counts.requests.swap(0, Ordering::Relaxed),
            sampled: self.counts.sampled.swap(0, Ordering::Relaxed),
            borrowed: self.counts.borrowed.swap(0, Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_is_taken_once_per_request_a_second_then_the_rate() {
        let s = RuleState::local(3, 0.0);
        let taken: Vec<bool> = (0..5).map(|_| s.decide(10, || u64::MAX)).collect();
        assert_eq!(taken, [true, true, true, false, false]);
        assert!(s.decide(11, || u64::MAX), "a new second, a new quota");
        assert_eq!(
            s.take_counts(),
            Taken {
                requests: 6,
                sampled: 4,
                borrowed: 0
            }
        );
        assert_eq!(s.take_counts(), Taken::default(), "zeroed when reported");
    }

    #[test]
    fn without_a_target_one_a_second_is_borrowed_then_the_rate_applies() {
        let s = RuleState::centralized(0.5);
        assert!(s.decide(5, || u64::MAX), "borrowed");
        assert!(!s.decide(5, || u64::MAX), "over the rate");
        assert!(s.decide(5, || 0), "under the rate");
        assert!(s.decide(6, || u64::MAX), "the next second borrows again");
        let c = s.take_counts();
        assert_eq!((c.requests, c.sampled, c.borrowed), (4, 3, 2));
        // A target: two a second until second 20, no borrowing meanwhile.
        s.set_target(0.0, Some((2, 20)), 10);
        let at = |now| (0..4).filter(|_| s.decide(now, || u64::MAX)).count();
        assert_eq!(at(7), 2);
        assert_eq!(at(19), 2);
        assert_eq!(at(20), 1, "expired: one borrowed");
        assert_eq!(s.take_counts().borrowed, 1);
    }

    #[test]
    fn threads_racing_for_a_quota_take_exactly_it() {
        let s = std::sync::Arc::new(RuleState::local(1000, 0.0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || (0..1000).filter(|_| s.decide(42, || u64::MAX)).count())
            })
            .collect();
        let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 1000);
        assert_eq!(s.take_counts().requests, 4000);
    }
}
