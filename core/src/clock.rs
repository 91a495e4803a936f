//! Timestamps: a cheap counter read on the caller, wall time on the sender.
//!
//! `SystemTime::now()` costs about 31 ns on the machines this runs on, a TSC
//! read about 12 ns, and a span needs two. So the caller stores raw ticks and
//! the sender converts them to epoch time against an anchor it refreshes as it
//! drains. Because records are converted within milliseconds of being taken,
//! the conversion error stays far below X-Ray's microsecond resolution, and a
//! jump between the counter and wall time (a SnapStart restore onto another
//! host, a frozen sandbox) only needs the anchor and rate to be measured again.
//! Where the TSC is not invariant, ticks are nanoseconds of the monotonic clock.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A raw timestamp, only meaningful to the [`Converter`] of this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ticks(u64);

impl Ticks {
    /// Ticks from a raw count (tests, fuzzing, replays): only meaningful
    /// beside [`now`]'s.
    pub const fn from_raw(raw: u64) -> Ticks {
        Ticks(raw)
    }

    /// The raw count.
    pub const fn raw(self) -> u64 {
        self.0
    }
}

const UNKNOWN: u8 = 0;
const TSC: u8 = 1;
const MONOTONIC: u8 = 2;

static SOURCE: AtomicU8 = AtomicU8::new(UNKNOWN);
static BASE: OnceLock<Instant> = OnceLock::new();

/// The current time in ticks. No syscall on x86-64 with an invariant TSC.
#[inline]
pub fn now() -> Ticks {
    match SOURCE.load(Ordering::Relaxed) {
        TSC => Ticks(read_tsc()),
        MONOTONIC => Ticks(monotonic_nanos()),
        _ => {
            choose_source();
            now()
        }
    }
}

/// Whether ticks come from the CPU's time-stamp counter.
pub fn uses_tsc() -> bool {
    if SOURCE.load(Ordering::Relaxed) == UNKNOWN {
        choose_source();
    }
    SOURCE.load(Ordering::Relaxed) == TSC
}

#[cold]
fn choose_source() {
    let _ = BASE.get_or_init(Instant::now);
    let source = if tsc_is_invariant() { TSC } else { MONOTONIC };
    // Every thread computes the same answer, so a race here is harmless.
    let _ = SOURCE.compare_exchange(UNKNOWN, source, Ordering::Relaxed, Ordering::Relaxed);
}

fn monotonic_nanos() -> u64 {
    let base = BASE.get_or_init(Instant::now);
    base.elapsed().as_nanos() as u64
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline]
fn read_tsc() -> u64 {
    // SAFETY: RDTSC exists on every x86-64 CPU and has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(all(target_arch = "x86_64", not(miri))))]
#[inline]
fn read_tsc() -> u64 {
    monotonic_nanos()
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
fn tsc_is_invariant() -> bool {
    if std::env::var_os("XRAY_EMITTER_NO_TSC").is_some() {
        return false;
    }
    // CPUID leaf 0x8000_0007, EDX bit 8: the TSC runs at a constant rate in every
    // power state and is synchronised across cores.
    let max_ext = core::arch::x86_64::__cpuid(0x8000_0000).eax;
    max_ext >= 0x8000_0007 && core::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0
}

#[cfg(not(all(target_arch = "x86_64", not(miri))))]
fn tsc_is_invariant() -> bool {
    false
}

/// Turns [`Ticks`] into microseconds since the Unix epoch. Owned by the sender.
#[derive(Debug)]
pub struct Converter {
    tsc: bool,
    /// Ticks and epoch nanoseconds read together.
    anchor_ticks: u64,
    anchor_epoch_nanos: u64,
    anchor_at: Instant,
    /// Start of the window the rate is measured over.
    base_ticks: u64,
    base_at: Instant,
    nanos_per_tick: f64,
    /// Seconds per tick in 0.64 fixed point: whole seconds from ticks in
    /// one widening multiply, no float conversions.
    seconds_per_tick_q64: u64,
}

impl Default for Converter {
    fn default() -> Self {
        Self::new()
    }
}

impl Converter {
    /// Takes a first anchor. The tick rate is measured once per process
    /// (about 2 ms when the TSC is used) and refined by every converter.
    pub fn new() -> Self {
        let tsc = uses_tsc();
        let nanos_per_tick = if tsc {
            *FIRST_RATE.get_or_init(first_rate)
        } else {
            1.0
        };
        let (ticks, at, epoch) = read_pair();
        Converter {
            tsc,
            anchor_ticks: ticks,
            anchor_epoch_nanos: epoch,
            anchor_at: at,
            base_ticks: ticks,
            base_at: at,
            nanos_per_tick,
            seconds_per_tick_q64: q64(nanos_per_tick),
        }
    }

    /// Re-reads the anchor if it is older than `max_age`, and refines the rate.
    pub fn refresh(&mut self, max_age: Duration) {
        if self.anchor_at.elapsed() >= max_age {
            self.measure_rate();
        }
    }

    /// Re-reads the anchor now; call after a freeze or restore is suspected.
    pub fn reanchor(&mut self) {
        self.measure_rate();
    }

    fn measure_rate(&mut self) {
        let (ticks, at, epoch) = read_pair();
        if self.tsc {
            let elapsed = at.duration_since(self.base_at).as_nanos() as f64;
            let counted = ticks.wrapping_sub(self.base_ticks) as f64;
            let rate = elapsed / counted;
            let plausible = ticks > self.base_ticks && rate.is_finite() && rate > 0.0;
            // A rate far from the last one means the counter jumped (a restore onto
            // another host): start a new measuring window and keep the old rate.
            let consistent = (rate / self.nanos_per_tick - 1.0).abs() < 0.01;
            // A short window measures less precisely than the one the rate came from.
            let long_enough = elapsed >= 10_000_000.0;
            if plausible && consistent {
                if long_enough {
                    self.nanos_per_tick = rate;
                    self.seconds_per_tick_q64 = q64(rate);
                }
            } else {
                self.base_ticks = ticks;
                self.base_at = at;
            }
        }
        self.anchor_ticks = ticks;
        self.anchor_epoch_nanos = epoch;
        self.anchor_at = at;
    }

    /// Microseconds since the Unix epoch.
    pub fn epoch_micros(&self, t: Ticks) -> u64 {
        // Ticks near the anchor: the difference fits an i64 comfortably.
        let delta_ticks = t.0.wrapping_sub(self.anchor_ticks) as i64;
        let delta_nanos = if self.tsc {
            (delta_ticks as f64 * self.nanos_per_tick) as i64
        } else {
            delta_ticks
        };
        let nanos = (self.anchor_epoch_nanos as i64).saturating_add(delta_nanos);
        (nanos.max(0) / 1000) as u64
    }

    /// Whole seconds from this converter's anchor to `t` (0 before it): a
    /// monotonic clock of its own, for counting requests per second
    /// without reading the system clock.
    pub fn seconds_since_anchor(&self, t: Ticks) -> u64 {
        let delta_ticks = t.0.wrapping_sub(self.anchor_ticks);
        if (delta_ticks as i64) < 0 {
            return 0;
        }
        ((u128::from(delta_ticks) * u128::from(self.seconds_per_tick_q64)) >> 64) as u64
    }

    /// The current wall time in microseconds since the epoch.
    pub fn now_micros(&self) -> u64 {
        self.epoch_micros(now())
    }
}

/// `nanos_per_tick` as seconds per tick in 0.64 fixed point (saturating:
/// a tick longer than a second is not a clock this runs on).
fn q64(nanos_per_tick: f64) -> u64 {
    (nanos_per_tick * 1e-9 * 18_446_744_073_709_551_616.0) as u64
}

static FIRST_RATE: OnceLock<f64> = OnceLock::new();

/// Nanoseconds per TSC tick over a 2 ms window.
fn first_rate() -> f64 {
    let (t0, i0, _) = read_pair();
    std::thread::sleep(Duration::from_millis(2));
    let (t1, i1, _) = read_pair();
    let rate = i1.duration_since(i0).as_nanos() as f64 / t1.wrapping_sub(t0) as f64;
    if rate.is_finite() && rate > 0.0 {
        rate
    } else {
        1.0
    }
}

/// Ticks, `Instant` and epoch nanoseconds read as close together as the OS allows.
fn read_pair() -> (u64, Instant, u64) {
    let mut best = None;
    for _ in 0..3 {
        let before = now().0;
        let at = Instant::now();
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let after = now().0;
        let spread = after.wrapping_sub(before);
        let mid = before.wrapping_add(spread / 2);
        match best {
            Some((s, _, _, _)) if s <= spread => {}
            _ => best = Some((spread, mid, at, epoch)),
        }
    }
    let (_, ticks, at, epoch) = best.unwrap_or((0, now().0, Instant::now(), 0));
    (ticks, at, epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_in_fixed_point_agree_with_floats() {
        let c = Converter::new();
        for secs in [0.0, 0.5, 1.0, 1.999, 59.0, 3600.25, 86_400.0 * 365.0] {
            let delta = (secs * 1e9 / c.nanos_per_tick) as u64;
            let expected = (delta as f64 * c.nanos_per_tick * 1e-9) as u64;
            let got = c.seconds_since_anchor(Ticks(c.anchor_ticks.wrapping_add(delta)));
            assert!(got.abs_diff(expected) <= 1, "{secs}: {got} vs {expected}");
        }
        assert_eq!(
            c.seconds_since_anchor(Ticks(c.anchor_ticks.wrapping_sub(5))),
            0
        );
    }

    #[test]
    fn ticks_advance() {
        let a = now();
        std::thread::sleep(Duration::from_millis(1));
        let b = now();
        assert!(b > a);
    }

    #[test]
    fn conversion_tracks_wall_time() {
        let c = Converter::new();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64;
        let converted = c.now_micros() as i64;
        assert!(
            (wall - converted).abs() < 2_000,
            "wall {wall} converted {converted}"
        );
    }

    #[test]
    fn durations_are_measured() {
        let c = Converter::new();
        let a = now();
        std::thread::sleep(Duration::from_millis(20));
        let b = now();
        let d = c.epoch_micros(b) as i64 - c.epoch_micros(a) as i64;
        assert!((20_000..200_000).contains(&d), "{d}");
    }
}
