//! The extra keys of each open trace's header (`Lineage=…`), kept for
//! propagation downstream.
//!
//! Only the SDK interceptor and [`crate::trace_header`] read them, once per
//! call; the hot path never does. A root span (a Lambda invocation, or a
//! segment with an incoming header) claims a slot when it opens and frees it
//! when it closes; its descendants, which keep it open, read the slot. The
//! bytes live in atomics, so a misbehaving reader can see stale text but
//! never tear memory.

use std::sync::atomic::{AtomicU64, Ordering};

use xray_emitter::header::EXTRAS_CAPACITY;

/// The slot number meaning "no extras" (what `State::untraced` holds).
pub(crate) const NONE: u16 = u16::MAX;

const WORDS: usize = EXTRAS_CAPACITY.div_ceil(8);
const FREE: u64 = 0;
const CLAIMED: u64 = 1;
const LIVE: u64 = 2;

#[derive(Default)]
struct Slot {
    state: AtomicU64,
    len: AtomicU64,
    words: [AtomicU64; WORDS],
}

/// A fixed pool of header extras.
pub(crate) struct Contexts {
    slots: Box<[Slot]>,
}

impl std::fmt::Debug for Contexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contexts")
            .field("capacity", &self.slots.len())
            .finish()
    }
}

impl Contexts {
    pub(crate) fn new(capacity: usize) -> Self {
        Contexts {
            slots: (0..capacity.min(usize::from(NONE)))
                .map(|_| Slot::default())
                .collect(),
        }
    }

    /// Stores `extras`; returns its slot, or [`NONE`] if it is empty or the pool is full.
    pub(crate) fn claim(&self, extras: &str) -> u16 {
        if extras.is_empty() || extras.len() > EXTRAS_CAPACITY {
            return NONE;
        }
        for (i, slot) in self.slots.iter().enumerate() {
            // A plain load first: a write to every busy slot's line on the way
            // would make claims contend with each other and with readers.
            if slot.state.load(Ordering::Relaxed) == FREE
                && slot
                    .state
                    .compare_exchange(FREE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                for (w, chunk) in slot.words.iter().zip(extras.as_bytes().chunks(8)) {
                    let mut b = [0u8; 8];
                    b[..chunk.len()].copy_from_slice(chunk);
                    w.store(u64::from_le_bytes(b), Ordering::Relaxed);
                }
                slot.len.store(extras.len() as u64, Ordering::Relaxed);
                slot.state.store(LIVE, Ordering::Release);
                return i as u16;
            }
        }
        NONE
    }

    /// Copies the extras of slot `i` into `out`; returns their length (0 if none).
    pub(crate) fn read(&self, i: u16, out: &mut [u8; EXTRAS_CAPACITY]) -> usize {
        let Some(slot) = self.slots.get(usize::from(i)) else {
            return 0;
        };
        if slot.state.load(Ordering::Acquire) != LIVE {
            return 0;
        }
        let len = (slot.len.load(Ordering::Relaxed) as usize).min(EXTRAS_CAPACITY);
        for (chunk, w) in out[..len].chunks_mut(8).zip(&slot.words) {
            let b = w.load(Ordering::Relaxed).to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        len
    }

    /// Frees slot `i`.
    pub(crate) fn release(&self, i: u16) {
        if let Some(slot) = self.slots.get(usize::from(i)) {
            slot.state.store(FREE, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_read_release() {
        let c = Contexts::new(2);
        let a = c.claim("Lineage=a87bd80c:1|68fd508a:5");
        let b = c.claim("Foo=bar");
        assert_eq!(c.claim("Full=yes"), NONE);
        assert_eq!(c.claim(""), NONE);
        let mut buf = [0u8; EXTRAS_CAPACITY];
        let n = c.read(a, &mut buf);
        assert_eq!(&buf[..n], b"Lineage=a87bd80c:1|68fd508a:5");
        let n = c.read(b, &mut buf);
        assert_eq!(&buf[..n], b"Foo=bar");
        c.release(a);
        assert_eq!(c.read(a, &mut buf), 0);
        assert_eq!(c.claim("Again=1"), a);
    }
}
