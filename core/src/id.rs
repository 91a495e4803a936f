//! X-Ray identifiers: 64-bit entity ids and `1-xxxxxxxx-yyyy…` trace ids.
//!
//! Entity ids are made on the caller's thread for every span, so they come
//! from a per-thread generator (one multiply per id, seeded once from the OS
//! through `RandomState`). Trace ids are rarer and end up in HTTP headers that
//! cross trust boundaries, so they come from SipHash keyed by OS randomness.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Why an id did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdError {
    /// The text has the wrong number of characters.
    Length,
    /// A character is not a hex digit (or a dash is missing in a trace id).
    Character,
    /// The trace id does not start with version `1-`.
    Version,
    /// The entity id is all zeros, which X-Ray does not accept.
    Zero,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdError::Length => "wrong length",
            IdError::Character => "not a hex digit",
            IdError::Version => "trace id version is not 1",
            IdError::Zero => "id (or trace id epoch) is zero",
        })
    }
}

impl std::error::Error for IdError {}

/// The 64-bit id of a segment or subsegment: 16 lowercase hex digits, never zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId(NonZeroU64);

impl SegmentId {
    /// A fresh random id.
    #[inline]
    pub fn random() -> Self {
        loop {
            if let Some(id) = NonZeroU64::new(fast_random()) {
                return SegmentId(id);
            }
        }
    }

    /// The id with this numeric value; `None` for zero.
    #[inline]
    pub const fn from_u64(value: u64) -> Option<Self> {
        match NonZeroU64::new(value) {
            Some(v) => Some(SegmentId(v)),
            None => None,
        }
    }

    /// The numeric value.
    #[inline]
    pub const fn get(self) -> u64 {
        self.0.get()
    }

    /// The 16 lowercase hex digits X-Ray expects.
    pub fn to_hex(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        write_hex(self.get(), &mut out);
        out
    }

    /// Parses 16 hex digits (either case).
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let bytes = text.as_bytes();
        if bytes.len() != 16 {
            return Err(IdError::Length);
        }
        let value = parse_hex(bytes)?;
        SegmentId::from_u64(value).ok_or(IdError::Zero)
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.to_hex();
        // The buffer holds only ASCII hex digits.
        f.write_str(std::str::from_utf8(&hex).unwrap_or("0000000000000000"))
    }
}

impl fmt::Debug for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SegmentId({self})")
    }
}

/// An X-Ray trace id: version 1, the epoch second the trace began, 96 random bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId {
    /// Never zero: X-Ray rejects old trace ids, and the all-zero "no-op" id
    /// some SDKs use for unsampled requests is never a trace. The niche also
    /// keeps `Option<TraceId>` at 16 bytes, so it fits in a record.
    epoch: NonZeroU32,
    random_hi: u32,
    random_lo: u64,
}

impl TraceId {
    /// Length of the text form, `1-` + 8 + `-` + 24.
    pub const LEN: usize = 35;

    /// A new trace id stamped with the current time.
    pub fn new() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self::with_epoch(now as u32)
    }

    const fn nonzero_epoch(epoch: u32) -> NonZeroU32 {
        match NonZeroU32::new(epoch) {
            Some(e) => e,
            None => NonZeroU32::MIN,
        }
    }

    /// A new trace id stamped with the given epoch second.
    pub fn with_epoch(epoch: u32) -> Self {
        let a = secure_random();
        let b = secure_random();
        TraceId {
            epoch: Self::nonzero_epoch(epoch),
            random_hi: (a >> 32) as u32,
            random_lo: b,
        }
    }

    /// Builds an id from its parts (the random part is the low 96 bits); an
    /// epoch of 0 becomes 1.
    pub const fn from_parts(epoch: u32, random_hi: u32, random_lo: u64) -> Self {
        TraceId {
            epoch: Self::nonzero_epoch(epoch),
            random_hi,
            random_lo,
        }
    }

    /// The epoch second encoded in the id.
    pub const fn epoch(self) -> u32 {
        self.epoch.get()
    }

    /// The high 32 and low 64 bits of the random part.
    pub const fn random(self) -> (u32, u64) {
        (self.random_hi, self.random_lo)
    }

    /// The text form, e.g. `1-5759e988-bd862e3fe1be46a994272793`.
    pub fn to_text(self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = b'1';
        out[1] = b'-';
        write_hex(u64::from(self.epoch.get()), &mut out[2..10]);
        out[10] = b'-';
        write_hex(u64::from(self.random_hi), &mut out[11..19]);
        write_hex(self.random_lo, &mut out[19..35]);
        out
    }

    /// Parses `1-` + 8 hex + `-` + 24 hex (either case).
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let b = text.as_bytes();
        if b.len() != Self::LEN {
            return Err(IdError::Length);
        }
        if b[0] != b'1' {
            return Err(IdError::Version);
        }
        if b[1] != b'-' || b[10] != b'-' {
            return Err(IdError::Character);
        }
        Ok(TraceId {
            epoch: NonZeroU32::new(parse_hex(&b[2..10])? as u32).ok_or(IdError::Zero)?,
            random_hi: parse_hex(&b[11..19])? as u32,
            random_lo: parse_hex(&b[19..35])?,
        })
    }
}

impl Default for TraceId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_text();
        f.write_str(std::str::from_utf8(&text).unwrap_or("1-00000000-000000000000000000000000"))
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

/// Writes `value`'s low `out.len()` nibbles as lowercase hex, most significant first.
pub(crate) fn write_hex(mut value: u64, out: &mut [u8]) {
    for slot in out.iter_mut().rev() {
        *slot = HEX[(value & 0xf) as usize];
        value >>= 4;
    }
}

fn parse_hex(bytes: &[u8]) -> Result<u64, IdError> {
    let mut value = 0u64;
    for &c in bytes {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return Err(IdError::Character),
        };
        value = (value << 4) | u64::from(digit);
    }
    Ok(value)
}

/// Bumped when every thread's generator must be seeded again: in a child
/// after `fork()` (which copies the parent's state, so both would make the
/// same ids) and after a SnapStart restore (every sandbox restored from one
/// snapshot shares it).
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// Mixed into every secure draw; replaced with fresh OS entropy on re-seeding.
static SALT: AtomicU64 = AtomicU64::new(0);
/// Set by the fork handler, which may only touch atomics: the child's next
/// draw fetches fresh entropy itself.
static SALT_STALE: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Seeded from [`secure_random`]: distinct and unpredictable per thread;
    /// the generation it was seeded in.
    static FAST_STATE: Cell<(u64, u64)> = Cell::new((secure_random(), GENERATION.load(Ordering::Relaxed)));
}

/// wyrand: one add and one 64×64→128 multiply per value, per thread.
#[inline]
fn fast_random() -> u64 {
    let generation = GENERATION.load(Ordering::Relaxed);
    FAST_STATE.with(|state| {
        let (mut s, seeded) = state.get();
        if seeded != generation {
            s = secure_random();
        }
        s = s.wrapping_add(0xa076_1d64_78bd_642f);
        state.set((s, generation));
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

/// SipHash-1-3 under a key drawn from the OS, over a process-wide counter
/// and the salt: unpredictable without the key, which never leaves the process.
fn secure_random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    if SALT_STALE.swap(false, Ordering::AcqRel) {
        SALT.store(os_entropy(), Ordering::Relaxed);
    }
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u64(SALT.load(Ordering::Relaxed));
    h.finish()
}

/// Makes every thread draw new seeds from fresh OS entropy before its next
/// id: after a SnapStart restore, or whenever two processes may share this
/// one's state.
pub fn reseed() {
    SALT.store(os_entropy(), Ordering::Relaxed);
    GENERATION.fetch_add(1, Ordering::Release);
}

/// Re-seeds the child after `fork()`: registered once per process.
pub(crate) fn watch_fork() {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        extern "C" fn child() {
            // Only atomics here: the child may hold no lock the parent held.
            SALT_STALE.store(true, Ordering::Release);
            GENERATION.fetch_add(1, Ordering::Release);
            FORKS.fetch_add(1, Ordering::Release);
        }
        ONCE.call_once(|| {
            // SAFETY: registers a handler that only stores to atomics, which is
            // async-signal-safe, as code run in a child after fork must be.
            unsafe { libc::pthread_atfork(None, None, Some(child)) };
        });
    }
}

/// Forks this process descends from since [`watch_fork`] was first called.
static FORKS: AtomicU64 = AtomicU64::new(0);

/// See [`FORKS`].
#[inline]
pub(crate) fn forks() -> u64 {
    FORKS.load(Ordering::Relaxed)
}

/// 64 bits from the OS: `getrandom` where there is one, else a std hasher
/// key made on a new thread (std draws those from the OS per thread), mixed
/// with the process id and the time.
fn os_entropy() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut v = 0u64;
        // SAFETY: writes at most 8 bytes into `v`, which lives through the call.
        let n = unsafe { libc::getrandom((&mut v as *mut u64).cast(), 8, 0) };
        if n == 8 {
            return v;
        }
    }
    let fresh = std::thread::spawn(|| RandomState::new().build_hasher().finish())
        .join()
        .unwrap_or(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    fresh ^ u64::from(std::process::id()).rotate_left(32) ^ nanos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_id_text_round_trip() {
        for _ in 0..1000 {
            let id = SegmentId::random();
            let text = id.to_string();
            assert_eq!(text.len(), 16);
            assert!(
                text.bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            );
            assert_eq!(SegmentId::parse(&text), Ok(id));
        }
    }

    #[test]
    fn segment_id_rejects_bad_text() {
        assert_eq!(SegmentId::parse("0000000000000000"), Err(IdError::Zero));
        assert_eq!(SegmentId::parse("abc"), Err(IdError::Length));
        assert_eq!(
            SegmentId::parse("53995c3f42cd8ax8"),
            Err(IdError::Character)
        );
        assert_eq!(
            SegmentId::parse("53995C3F42CD8AD8").map(|i| i.to_string()),
            Ok("53995c3f42cd8ad8".to_string())
        );
    }

    #[test]
    fn trace_id_format() {
        let id = TraceId::with_epoch(0x5759e988);
        let text = id.to_string();
        assert_eq!(text.len(), 35);
        assert!(text.starts_with("1-5759e988-"));
        assert_eq!(TraceId::parse(&text), Ok(id));
        let known = TraceId::parse("1-5759e988-bd862e3fe1be46a994272793").unwrap();
        assert_eq!(known.to_string(), "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(known.epoch(), 0x5759e988);
    }

    #[test]
    fn trace_id_rejects_bad_text() {
        assert_eq!(
            TraceId::parse("2-5759e988-bd862e3fe1be46a994272793"),
            Err(IdError::Version)
        );
        assert_eq!(
            TraceId::parse("1-5759e988xbd862e3fe1be46a994272793"),
            Err(IdError::Character)
        );
        assert_eq!(
            TraceId::parse("1-5759e988-bd862e3fe1be46a99427279"),
            Err(IdError::Length)
        );
        assert_eq!(
            TraceId::parse("1-5759e98g-bd862e3fe1be46a994272793"),
            Err(IdError::Character)
        );
        assert_eq!(
            TraceId::parse("1-00000000-000000000000000000000000"),
            Err(IdError::Zero)
        );
    }

    #[test]
    fn ids_differ() {
        let a = TraceId::new();
        let b = TraceId::new();
        assert_ne!(a, b);
        assert_ne!(SegmentId::random(), SegmentId::random());
    }
}
