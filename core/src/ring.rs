//! A ring of records with one producer (a thread) and one consumer (the sender).
//!
//! A shared queue makes every producer contend on one tail with a locked
//! compare-and-swap, and every record cross cores on a line others write.
//! With one ring per producing thread a push is a plain copy into the
//! thread's own slot and a release store of its own tail: no read-modify-
//! write, no contention between producers. The consumer reads each ring up to
//! its published tail and hands the slots back with a release store of head.
//!
//! The one-producer, one-consumer rule lives in the types: [`ring`] returns
//! one [`Producer`] and one [`Consumer`], neither can be cloned, both take
//! `&mut self` to move records, and the producer cannot even be shared by
//! reference between threads:
//!
//! ```compile_fail
//! fn shared_between_threads<T: Sync>(_: &T) {}
//! let (producer, _consumer) = xray_emitter::ring::ring(8);
//! shared_between_threads(&producer);
//! ```
//!
//! ```compile_fail
//! let (_producer, consumer) = xray_emitter::ring::ring(8);
//! let second = consumer.clone();
//! ```
//!
//! Each end can move to the thread that uses it:
//!
//! ```
//! use xray_emitter::ring::{Pushed, ring};
//! use xray_emitter::{Body, Record, SegmentId, clock};
//!
//! let (mut producer, mut consumer) = ring(8);
//! let id = SegmentId::random();
//! std::thread::spawn(move || {
//!     let close = Record::new(id, Body::Close { time: clock::now() });
//!     assert_eq!(producer.push(close), Pushed::Ok);
//! })
//! .join()
//! .unwrap();
//! let mut seen = 0;
//! consumer.drain(usize::MAX, |r| seen += usize::from(r.span == id));
//! assert_eq!(seen, 1);
//! ```

use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

use crate::record::Record;

/// The slots are read with `assume_init_read` and never dropped: sound only
/// for a `Copy` type, which has no destructor and no ownership to duplicate.
const _: () = {
    const fn copy<T: Copy>() {}
    copy::<Record>()
};

/// One record per cache line: a record never straddles two lines, so the
/// producer writing one slot and the consumer reading its neighbour do not
/// share a line (on 64-byte lines; adjacent-line prefetch may still pair
/// them).
#[repr(align(64))]
struct Slot(UnsafeCell<MaybeUninit<Record>>);

/// The memory both ends share.
struct Buffer {
    slots: Box<[Slot]>,
    mask: usize,
    /// Records published by the producer (a running count).
    tail: CachePadded<AtomicUsize>,
    /// Records taken by the consumer (a running count).
    head: CachePadded<AtomicUsize>,
    /// The producer is gone: once empty, the ring can be forgotten.
    abandoned: AtomicBool,
}

// SAFETY: a slot is written only through the one `Producer` (not `Clone`,
// `push` takes `&mut self`), and only while it is free: its index is at or
// past `head`, as the producer last read it with acquire ordering, and below
// `head + capacity`; the producer then publishes it with a release store of
// `tail`. It is read only through the one `Consumer` (not `Clone`, `drain`
// takes `&mut self`), only below the `tail` it loaded with acquire ordering,
// and released with a release store of `head` after the read. So no slot is
// accessed by both at once, and each access happens after the other side's
// last one. `Record` is `Copy` (asserted above) and `Send`.
unsafe impl Sync for Buffer {}

impl Buffer {
    fn len(&self) -> usize {
        // Head first: read the other way round, a drain between the two loads
        // could move head past the tail read, and the difference would wrap.
        let head = self.head.load(Ordering::Acquire);
        self.tail.load(Ordering::Acquire).wrapping_sub(head)
    }
}

/// A ring of at least `capacity` records (a power of two, 2 to 2^24): its
/// only producer and its only consumer.
pub fn ring(capacity: usize) -> (Producer, Consumer) {
    let n = capacity.clamp(2, 1 << 24).next_power_of_two();
    let buffer = Arc::new(Buffer {
        slots: (0..n)
            .map(|_| Slot(UnsafeCell::new(MaybeUninit::uninit())))
            .collect(),
        mask: n - 1,
        tail: CachePadded::new(AtomicUsize::new(0)),
        head: CachePadded::new(AtomicUsize::new(0)),
        abandoned: AtomicBool::new(false),
    });
    let producer = Producer {
        buffer: buffer.clone(),
        tail: 0,
        published: 0,
        head: 0,
        not_sync: PhantomData,
    };
    (producer, Consumer { buffer })
}

/// What a push did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Stored.
    Ok,
    /// Stored, and the ring just became half full: the consumer should be woken.
    HalfFull,
    /// The ring is full: the record was not stored.
    Full,
}

/// The writing end: where it writes next, and the last head it saw.
pub struct Producer {
    buffer: Arc<Buffer>,
    /// Where the next record goes.
    tail: usize,
    /// The tail the consumer was last shown: records from here to `tail`
    /// are written but not yet visible.
    published: usize,
    head: usize,
    /// `Send` but not `Sync`: one thread at a time owns the writing end.
    not_sync: PhantomData<Cell<()>>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.buffer.slots.len())
            .field("len", &self.buffer.len())
            .finish()
    }
}

impl Producer {
    /// Appends a record and shows it to the consumer; never waits.
    #[inline]
    pub fn push(&mut self, record: Record) -> Pushed {
        if !self.write(record) {
            return Pushed::Full;
        }
        self.publish()
    }

    /// Stores a record without showing it to the consumer yet: a span's
    /// open record and its fields are written one by one and shown with one
    /// [`publish`](Producer::publish) (one store the consumer's core sees,
    /// rather than one per record). Returns `false` if the ring is full.
    #[inline]
    pub fn write(&mut self, record: Record) -> bool {
        let buffer = &*self.buffer;
        let capacity = buffer.slots.len();
        if self.tail.wrapping_sub(self.head) >= capacity {
            self.head = buffer.head.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.head) >= capacity {
                return false;
            }
        }
        let slot = &buffer.slots[self.tail & buffer.mask];
        // SAFETY: the slot is free (see `impl Sync for Buffer`): fewer than
        // `capacity` records lie between the acquire-loaded head and `tail`,
        // and only this producer writes.
        unsafe { (*slot.0.get()).write(record) };
        self.tail = self.tail.wrapping_add(1);
        true
    }

    /// Shows the consumer every record written since the last publish.
    #[inline]
    pub fn publish(&mut self) -> Pushed {
        if self.published == self.tail {
            return Pushed::Ok;
        }
        let buffer = &*self.buffer;
        buffer.tail.store(self.tail, Ordering::Release);
        let half = buffer.slots.len() / 2;
        let before = self.published.wrapping_sub(self.head);
        self.published = self.tail;
        if before < half && self.tail.wrapping_sub(self.head) >= half {
            // Crossing half full: look at the real head once before asking for help.
            self.head = buffer.head.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.head) >= half {
                return Pushed::HalfFull;
            }
        }
        Pushed::Ok
    }
}

impl Drop for Producer {
    /// The thread is gone: the consumer forgets the ring once it is empty.
    fn drop(&mut self) {
        self.buffer.abandoned.store(true, Ordering::Release);
    }
}

/// The reading end.
pub struct Consumer {
    buffer: Arc<Buffer>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("len", &self.len())
            .finish()
    }
}

impl Consumer {
    /// Records published and not yet taken.
    pub fn len(&self) -> usize {
        self.buffer.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the producer is gone and nothing is left.
    pub fn is_finished(&self) -> bool {
        self.buffer.abandoned.load(Ordering::Acquire) && self.is_empty()
    }

    /// A read-only view of how full the ring is, for other threads.
    pub(crate) fn watch(&self) -> Watch {
        Watch(self.buffer.clone())
    }

    /// Whether `watch` is this ring's.
    pub(crate) fn is_watched_by(&self, watch: &Watch) -> bool {
        Arc::ptr_eq(&self.buffer, &watch.0)
    }

    /// Hands up to `limit` published records to `f`, in order; returns how
    /// many. Each record is handed back to the producer before `f` sees it,
    /// so a panic in `f` loses that record rather than replaying it forever.
    pub fn drain(&mut self, limit: usize, mut f: impl FnMut(&Record)) -> usize {
        let buffer = &*self.buffer;
        let head = buffer.head.load(Ordering::Relaxed);
        let tail = buffer.tail.load(Ordering::Acquire);
        let n = tail.wrapping_sub(head).min(limit);
        for i in 0..n {
            let at = head.wrapping_add(i);
            let slot = &buffer.slots[at & buffer.mask];
            // SAFETY: slots between head and the acquire-loaded tail were
            // written and published by the producer, which will not touch
            // this one until the release store of head just below, made after
            // the copy (`Record: Copy`, asserted above).
            let record = unsafe { (*slot.0.get()).assume_init_read() };
            buffer.head.store(at.wrapping_add(1), Ordering::Release);
            f(&record);
        }
        n
    }
}

/// How full a ring is, readable from any thread (flush results, stats).
#[derive(Clone)]
pub(crate) struct Watch(Arc<Buffer>);

impl Watch {
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("len", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Ticks;
    use crate::id::SegmentId;
    use crate::record::Body;

    fn record(n: u64) -> Record {
        Record::new(
            SegmentId::from_u64(n + 1).unwrap(),
            Body::Close {
                time: Ticks::from_raw(n),
            },
        )
    }

    fn time(r: &Record) -> u64 {
        match r.body {
            Body::Close { time } => time.raw(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn fills_drains_and_wraps() {
        let (mut p, mut c) = ring(8);
        for round in 0..5u64 {
            let mut results = Vec::new();
            for i in 0..9 {
                results.push(p.push(record(round * 100 + i)));
            }
            assert_eq!(results[3], Pushed::HalfFull);
            assert_eq!(results[8], Pushed::Full);
            let mut seen = Vec::new();
            assert_eq!(c.drain(usize::MAX, |r| seen.push(time(r))), 8);
            assert_eq!(seen, (0..8).map(|i| round * 100 + i).collect::<Vec<_>>());
            assert_eq!(c.len(), 0);
        }
        assert!(!c.is_finished());
        drop(p);
        assert!(c.is_finished());
    }

    #[test]
    fn a_producer_and_a_consumer_on_two_threads() {
        let n: u64 = if cfg!(miri) { 2_000 } else { 1_000_000 };
        let (mut p, mut c) = ring(64);
        let producer = std::thread::spawn(move || {
            let mut i = 0;
            while i < n {
                if p.push(record(i)) != Pushed::Full {
                    i += 1;
                } else {
                    std::thread::yield_now();
                }
            }
        });
        let mut next = 0;
        while next < n {
            c.drain(7, |r| {
                assert_eq!(time(r), next, "in order, none lost or repeated");
                next += 1;
            });
            std::thread::yield_now();
        }
        producer.join().unwrap();
    }

    #[test]
    fn written_records_appear_together_when_published() {
        let (mut p, mut c) = ring(8);
        for round in 0..4u64 {
            for i in 0..5 {
                assert!(p.write(record(round * 10 + i)));
            }
            assert_eq!(c.drain(usize::MAX, |_| {}), 0, "nothing before the publish");
            let shown = p.publish();
            if round == 0 {
                assert_eq!(shown, Pushed::HalfFull, "0 to 5 of 8 crosses half");
            }
            let mut seen = Vec::new();
            c.drain(usize::MAX, |r| seen.push(time(r)));
            assert_eq!(seen, (0..5).map(|i| round * 10 + i).collect::<Vec<_>>());
            assert_eq!(p.publish(), Pushed::Ok, "nothing new: nothing to show");
        }
        // A batch larger than the room left: the rest is refused, the part
        // that fits is shown.
        let written = (0..10).filter(|&i| p.write(record(i))).count();
        assert_eq!(written, 8);
        assert_ne!(p.publish(), Pushed::Full);
        assert_eq!(c.drain(usize::MAX, |_| {}), 8);
    }
}
