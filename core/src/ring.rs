//! A ring of records with one producer (a thread) and one consumer (the sender).
//!
//! A shared queue makes every producer contend on one tail with a locked
//! compare-and-swap, and every record cross cores on a line others write.
//! With one ring per producing thread a push is a plain copy into the
//! thread's own slot and a release store of its own tail: no read-modify-
//! write, no contention between producers. The consumer reads each ring up to
//! its published tail and hands the slots back with a release store of head.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::record::Record;

/// Keeps the producer's and the consumer's indices on separate cache lines.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Padded(AtomicUsize);

struct Slot(UnsafeCell<MaybeUninit<Record>>);

/// The ring itself, shared by its producer and the consumer.
pub(crate) struct Ring {
    slots: Box<[Slot]>,
    mask: usize,
    /// Records published by the producer (a running count).
    tail: Padded,
    /// Records taken by the consumer (a running count).
    head: Padded,
    /// The producing thread is gone: once empty, the ring can be forgotten.
    abandoned: AtomicBool,
}

// SAFETY: a slot is written only by the one producer, and only while it is
// free (its index is at or past `head`, as the producer last read it with
// acquire ordering, and below `head + capacity`); the producer then publishes
// it with a release store of `tail`. The one consumer reads only slots below
// the `tail` it loaded with acquire ordering and releases them with a release
// store of `head`. So no slot is accessed by both at once, and each access
// happens after the other side's last one. `Record` is `Copy` and `Send`.
unsafe impl Sync for Ring {}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.slots.len())
            .field("len", &self.len())
            .finish()
    }
}

/// The producer's private view: where it writes next, and the last head it saw.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    tail: usize,
    head: usize,
}

/// What a push did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Stored.
    Ok,
    /// Stored, and the ring just became half full: the consumer should be woken.
    HalfFull,
    /// The ring is full: the record was not stored.
    Full,
}

impl Ring {
    /// A ring of at least `capacity` records (a power of two, 2 to 2^24).
    pub(crate) fn new(capacity: usize) -> Ring {
        let n = capacity.clamp(2, 1 << 24).next_power_of_two();
        Ring {
            slots: (0..n)
                .map(|_| Slot(UnsafeCell::new(MaybeUninit::uninit())))
                .collect(),
            mask: n - 1,
            tail: Padded::default(),
            head: Padded::default(),
            abandoned: AtomicBool::new(false),
        }
    }

    /// Records published and not yet taken.
    pub(crate) fn len(&self) -> usize {
        // Head first: read the other way round, a drain between the two loads
        // could move head past the tail read, and the difference would wrap.
        let head = self.head.0.load(Ordering::Acquire);
        self.tail.0.load(Ordering::Acquire).wrapping_sub(head)
    }

    /// Appends a record. Only the ring's one producer may call this, always
    /// with the same cursor.
    #[inline]
    pub(crate) fn push(&self, cursor: &mut Cursor, record: Record) -> Pushed {
        let capacity = self.slots.len();
        let mut used = cursor.tail.wrapping_sub(cursor.head);
        if used >= capacity {
            cursor.head = self.head.0.load(Ordering::Acquire);
            used = cursor.tail.wrapping_sub(cursor.head);
            if used >= capacity {
                return Pushed::Full;
            }
        }
        let slot = &self.slots[cursor.tail & self.mask];
        // SAFETY: the slot is free (see `impl Sync`): `used < capacity` per the
        // acquire-loaded head, and only this producer writes slots.
        unsafe { (*slot.0.get()).write(record) };
        cursor.tail = cursor.tail.wrapping_add(1);
        self.tail.0.store(cursor.tail, Ordering::Release);
        if used + 1 == capacity / 2 {
            // Crossing half full: look at the real head once before asking for help.
            cursor.head = self.head.0.load(Ordering::Acquire);
            if cursor.tail.wrapping_sub(cursor.head) >= capacity / 2 {
                return Pushed::HalfFull;
            }
        }
        Pushed::Ok
    }

    /// Hands up to `limit` published records to `f`, in order; returns how
    /// many. Only the one consumer may call this. Each record is handed back
    /// to the producer before `f` sees it, so a panic in `f` loses that record
    /// rather than replaying it forever.
    pub(crate) fn drain(&self, limit: usize, mut f: impl FnMut(&Record)) -> usize {
        let head = self.head.0.load(Ordering::Relaxed);
        let tail = self.tail.0.load(Ordering::Acquire);
        let n = tail.wrapping_sub(head).min(limit);
        for i in 0..n {
            let at = head.wrapping_add(i);
            let slot = &self.slots[at & self.mask];
            // SAFETY: slots between head and the acquire-loaded tail were written
            // and published by the producer, which will not touch this one until
            // the release store of head just below, made after the copy.
            let record = unsafe { (*slot.0.get()).assume_init_read() };
            self.head.0.store(at.wrapping_add(1), Ordering::Release);
            f(&record);
        }
        n
    }

    /// The producer is gone.
    pub(crate) fn abandon(&self) {
        self.abandoned.store(true, Ordering::Release);
    }

    /// Whether the producer is gone and nothing is left.
    pub(crate) fn is_finished(&self) -> bool {
        self.abandoned.load(Ordering::Acquire) && self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Ticks;
    use crate::id::SegmentId;
    use crate::record::Body;
    use std::sync::Arc;

    fn record(n: u64) -> Record {
        Record::new(
            SegmentId::from_u64(n + 1).unwrap(),
            Body::Close { time: Ticks(n) },
        )
    }

    fn time(r: &Record) -> u64 {
        match r.body {
            Body::Close { time } => time.0,
            _ => unreachable!(),
        }
    }

    #[test]
    fn fills_drains_and_wraps() {
        let ring = Ring::new(8);
        let mut c = Cursor::default();
        for round in 0..5u64 {
            let mut results = Vec::new();
            for i in 0..9 {
                results.push(ring.push(&mut c, record(round * 100 + i)));
            }
            assert_eq!(results[3], Pushed::HalfFull);
            assert_eq!(results[8], Pushed::Full);
            let mut seen = Vec::new();
            assert_eq!(ring.drain(usize::MAX, |r| seen.push(time(r))), 8);
            assert_eq!(seen, (0..8).map(|i| round * 100 + i).collect::<Vec<_>>());
            assert_eq!(ring.len(), 0);
        }
        assert!(!ring.is_finished());
        ring.abandon();
        assert!(ring.is_finished());
    }

    #[test]
    fn a_producer_and_a_consumer_on_two_threads() {
        let n: u64 = if cfg!(miri) { 2_000 } else { 1_000_000 };
        let ring = Arc::new(Ring::new(64));
        let producer = {
            let ring = ring.clone();
            std::thread::spawn(move || {
                let mut c = Cursor::default();
                let mut i = 0;
                while i < n {
                    if ring.push(&mut c, record(i)) != Pushed::Full {
                        i += 1;
                    } else {
                        std::thread::yield_now();
                    }
                }
            })
        };
        let mut next = 0;
        while next < n {
            ring.drain(7, |r| {
                assert_eq!(time(r), next, "in order, none lost or repeated");
                next += 1;
            });
            std::thread::yield_now();
        }
        producer.join().unwrap();
    }
}
