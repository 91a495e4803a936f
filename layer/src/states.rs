//! What the layer remembers about each live span, without span extensions.
//!
//! `Registry` extensions box every value inserted, one allocation per span.
//! This is instead a fixed, lock-free open-addressing table keyed by the
//! span's `Id`, one cache line per entry: written once by the thread that
//! creates the span, read by threads that create its children or record into
//! it, cleared when it closes. Tracing's reference counting orders those: a
//! child holds its parent open, so an entry is never read after it is cleared.

use std::sync::atomic::{AtomicU64, Ordering};

use xray_emitter::{SegmentId, TraceId};

use crate::classify::Class;

const EMPTY: u64 = 0;
const TOMBSTONE: u64 = u64::MAX;
const WRITING: u64 = u64::MAX - 1;
/// Entries looked at before an insert gives up or a lookup misses.
const MAX_PROBE: usize = 16;

/// Flags in [`State::flags`].
pub(crate) mod flag {
    /// The trace is sampled: emit.
    pub(crate) const SAMPLED: u8 = 1;
    /// This span claimed its trace's context slot and frees it at close.
    pub(crate) const OWNS_CONTEXT: u8 = 2;
    /// An SDK span named after its `service` field rather than its own name.
    pub(crate) const NAMED_BY_SERVICE: u8 = 8;
    /// Stands for an ancestor the table was too full to follow: what opens
    /// under it is counted, never given a trace of its own.
    pub(crate) const UNFOLLOWED: u8 = 16;

    /// [`SAMPLED`] if `sampled`.
    pub(crate) const fn sampled_if(sampled: bool) -> u8 {
        if sampled { SAMPLED } else { 0 }
    }
}

/// The layer's view of one span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) class: Class,
    pub(crate) flags: u8,
    /// This span's X-Ray id, if it becomes a document.
    pub(crate) own: Option<SegmentId>,
    /// The id children attach to: `own`, or what this span inherited.
    pub(crate) anchor: Option<SegmentId>,
    /// The AWS SDK call this span belongs to.
    pub(crate) op: Option<SegmentId>,
    pub(crate) trace: Option<TraceId>,
    /// The slot of the trace's header in the context pool.
    pub(crate) context: u16,
}

impl State {
    /// A span of `class` that belongs to no trace: nothing under it is sent.
    pub(crate) const fn untraced(class: Class) -> State {
        State {
            class,
            flags: 0,
            own: None,
            anchor: None,
            op: None,
            trace: None,
            context: crate::contexts::NONE,
        }
    }

    pub(crate) fn sampled(&self) -> bool {
        self.flags & flag::SAMPLED != 0
    }

    fn encode(&self) -> [u64; 6] {
        let id = |s: Option<SegmentId>| s.map_or(0, SegmentId::get);
        let (epoch, hi, lo) = match self.trace {
            Some(t) => {
                let (hi, lo) = t.random();
                (t.epoch(), hi, lo)
            }
            None => (0, 0, 0),
        };
        let info = u64::from(self.class as u8)
            | u64::from(self.flags) << 8
            | u64::from(self.context) << 16
            | u64::from(self.trace.is_some()) << 32;
        [
            id(self.own),
            id(self.anchor),
            id(self.op),
            u64::from(epoch) << 32 | u64::from(hi),
            lo,
            info,
        ]
    }

    fn decode(w: [u64; 6]) -> State {
        let info = w[5];
        State {
            class: Class::from_u8(info as u8),
            flags: (info >> 8) as u8,
            context: (info >> 16) as u16,
            own: SegmentId::from_u64(w[0]),
            anchor: SegmentId::from_u64(w[1]),
            op: SegmentId::from_u64(w[2]),
            trace: (info >> 32 & 1 == 1)
                .then(|| TraceId::from_parts((w[3] >> 32) as u32, w[3] as u32, w[4])),
        }
    }
}

#[repr(align(64))]
#[derive(Default)]
struct Slot {
    key: AtomicU64,
    words: [AtomicU64; 6],
}

/// The table. Its capacity bounds how many spans can be followed at once;
/// past that a span is not followed (and its children see no parent).
pub(crate) struct States {
    slots: Box<[Slot]>,
    mask: usize,
}

impl std::fmt::Debug for States {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("States")
            .field("capacity", &self.slots.len())
            .finish()
    }
}

#[inline]
fn home(id: u64, mask: usize) -> usize {
    (id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & mask
}

impl States {
    /// A table of at least `capacity` entries (rounded up to a power of two,
    /// 64 to 2^24). Kept mostly empty, so that probes stay short.
    pub(crate) fn new(capacity: usize) -> Self {
        let n = capacity.clamp(64, 1 << 24).next_power_of_two();
        States {
            slots: (0..n).map(|_| Slot::default()).collect(),
            mask: n - 1,
        }
    }

    fn write(slot: &Slot, state: &State) {
        for (w, v) in slot.words.iter().zip(state.encode()) {
            w.store(v, Ordering::Relaxed);
        }
    }

    fn read(slot: &Slot) -> State {
        let mut w = [0u64; 6];
        for (dst, src) in w.iter_mut().zip(&slot.words) {
            *dst = src.load(Ordering::Relaxed);
        }
        State::decode(w)
    }

    /// Remembers `state` for span `id`; `false` if the table is too full around it.
    #[inline]
    pub(crate) fn insert(&self, id: u64, state: &State) -> bool {
        if id >= WRITING {
            return false;
        }
        let mut i = home(id, self.mask);
        for _ in 0..MAX_PROBE {
            let slot = &self.slots[i];
            let key = slot.key.load(Ordering::Relaxed);
            if key == id {
                // A span with this id whose close was never seen: replace it.
                Self::write(slot, state);
                return true;
            }
            if (key == EMPTY || key == TOMBSTONE)
                && slot
                    .key
                    .compare_exchange(key, WRITING, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                Self::write(slot, state);
                slot.key.store(id, Ordering::Release);
                return true;
            }
            i = (i + 1) & self.mask;
        }
        false
    }

    fn find(&self, id: u64) -> Option<&Slot> {
        let mut i = home(id, self.mask);
        for _ in 0..MAX_PROBE {
            let slot = &self.slots[i];
            match slot.key.load(Ordering::Acquire) {
                k if k == id => return Some(slot),
                EMPTY => return None,
                _ => i = (i + 1) & self.mask,
            }
        }
        None
    }

    /// What is known about span `id`.
    #[inline]
    pub(crate) fn get(&self, id: u64) -> Option<State> {
        self.find(id).map(Self::read)
    }

    /// Forgets span `id`, returning what was known.
    #[inline]
    pub(crate) fn remove(&self, id: u64) -> Option<State> {
        let slot = self.find(id)?;
        let state = Self::read(slot);
        slot.key.store(TOMBSTONE, Ordering::Release);
        Some(state)
    }
}

/// One [`State`] that one thread at a time replaces and any thread reads
/// whole (a sequence lock): the last Lambda invocation, for spans that find
/// no parent.
#[derive(Default)]
pub(crate) struct StateCell {
    /// Odd while a write is under way; 0 until the first.
    seq: AtomicU64,
    words: [AtomicU64; 6],
}

impl StateCell {
    pub(crate) fn set(&self, state: &State) {
        self.seq.fetch_add(1, Ordering::Relaxed);
        // Pairs with the reader's acquire fence: a reader that sees any word
        // written below also sees the odd sequence number, and retries.
        std::sync::atomic::fence(Ordering::Release);
        for (w, v) in self.words.iter().zip(state.encode()) {
            w.store(v, Ordering::Relaxed);
        }
        self.seq.fetch_add(1, Ordering::Release);
    }

    /// The state last set; `None` before the first, or if writes kept
    /// overlapping the read.
    pub(crate) fn get(&self) -> Option<State> {
        for _ in 0..4 {
            let before = self.seq.load(Ordering::Acquire);
            if before == 0 {
                return None;
            }
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let mut w = [0u64; 6];
            for (dst, src) in w.iter_mut().zip(&self.words) {
                *dst = src.load(Ordering::Relaxed);
            }
            std::sync::atomic::fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return Some(State::decode(w));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(n: u64) -> State {
        State {
            class: Class::User,
            flags: flag::SAMPLED,
            own: SegmentId::from_u64(n),
            anchor: SegmentId::from_u64(n + 1),
            op: None,
            trace: Some(TraceId::from_parts(0x5759e988, 0xdead, n)),
            context: 7,
        }
    }

    #[test]
    fn round_trip_and_remove() {
        let t = States::new(64);
        for id in 1..=40 {
            assert!(t.insert(id, &state(id)));
        }
        for id in 1..=40 {
            assert_eq!(t.get(id), Some(state(id)));
        }
        assert_eq!(t.remove(5), Some(state(5)));
        assert_eq!(t.get(5), None);
        assert!(t.insert(5, &state(50)));
        assert_eq!(t.get(5), Some(state(50)));
    }

    #[test]
    fn churn_reuses_tombstones() {
        let t = States::new(64);
        for round in 0..10_000u64 {
            let id = round % 97 + 1;
            assert!(t.insert(id, &state(round)));
            assert_eq!(t.get(id).unwrap().own, SegmentId::from_u64(round));
            t.remove(id);
        }
    }

    #[test]
    fn a_cell_is_read_whole_while_it_is_rewritten() {
        let cell = std::sync::Arc::new(StateCell::default());
        assert_eq!(cell.get(), None);
        cell.set(&state(1));
        let writer = {
            let cell = cell.clone();
            std::thread::spawn(move || {
                for i in 1..100_000 {
                    cell.set(&state(i));
                }
            })
        };
        for _ in 0..100_000 {
            if let Some(s) = cell.get() {
                let n = s.own.unwrap().get();
                assert_eq!(s, state(n), "never a mix of two states");
            }
        }
        writer.join().unwrap();
    }

    #[test]
    fn concurrent_threads_see_their_own() {
        let t = std::sync::Arc::new(States::new(4096));
        let handles: Vec<_> = (0..4u64)
            .map(|k| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for i in 0..50_000u64 {
                        let id = (k << 40) | (i % 500 + 1);
                        assert!(t.insert(id, &state(i)));
                        assert_eq!(t.get(id), Some(state(i)));
                        assert_eq!(t.remove(id), Some(state(i)));
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
    }
}
