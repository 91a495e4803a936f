//! Several records pushed as one: a span's open record and its fields.
//!
//! A push on its own finds this thread's ring (a thread-local lookup and a
//! borrow) and publishes the record (a store the sender's core has to
//! fetch back). A span's open record and its fields are several records;
//! pushed as a batch they cost one lookup and one publish, and the sender
//! sees the span whole or not at all.

use std::sync::atomic::Ordering;

use super::{Emitter, LOCAL};
use crate::id::SegmentId;
use crate::record::{Key, Record};
use crate::ring::{Producer, Pushed};

/// Records being written into this thread's ring, shown to the sender
/// together when the batch ends. Made by [`Emitter::batch`].
pub struct Batch<'a> {
    emitter: &'a Emitter,
    /// `None` when nothing can be written (the sender is gone, the thread
    /// is being torn down, or the ring is already borrowed by an outer batch).
    ring: Option<&'a mut Producer>,
    dropped: u64,
    values_cut: u64,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("writable", &self.ring.is_some())
            .field("dropped", &self.dropped)
            .finish()
    }
}

impl Batch<'_> {
    /// Writes a record; `false` (counted when the batch ends) if it was dropped.
    #[inline]
    pub fn push(&mut self, record: Record) -> bool {
        let written = match &mut self.ring {
            Some(ring) => ring.write(record),
            None => false,
        };
        self.dropped += u64::from(!written);
        written
    }

    /// A string field, in as many records as it takes (see [`Record::split_str`]).
    pub fn push_str(&mut self, span: SegmentId, key: Key, value: &str) -> bool {
        let mut all = true;
        let cut = Record::split_str(span, key, value, |r| all &= self.push(r));
        self.values_cut += u64::from(cut);
        all
    }

    /// A JSON field (see [`Emitter::push_json`]).
    pub fn push_json(&mut self, span: SegmentId, key: Key, json: &str) -> bool {
        let mut all = true;
        let cut = Record::split_json(span, key, json, |r| all &= self.push(r));
        self.values_cut += u64::from(cut);
        all
    }

    /// The emitter the batch writes for (its counters).
    pub fn emitter(&self) -> &Emitter {
        self.emitter
    }

    #[inline(always)]
    fn finish(&mut self) {
        let woke = match &mut self.ring {
            Some(ring) => ring.publish() == Pushed::HalfFull,
            None => false,
        };
        if self.values_cut > 0 || self.dropped > 0 || woke {
            self.finish_rare(woke);
        }
    }

    /// Counts what was cut or dropped, and wakes the sender.
    #[cold]
    #[inline(never)]
    fn finish_rare(&mut self, woke: bool) {
        let counters = &self.emitter.inner.shared.counters;
        if self.values_cut > 0 {
            counters.values_truncated.add(self.values_cut);
        }
        if self.dropped > 0 {
            counters.records_dropped.add(self.dropped - 1);
            // Once through the usual path: the fork warning, the wake-up.
            self.emitter.dropped();
        } else if woke {
            self.emitter.inner.shared.wake();
        }
    }
}

impl Emitter {
    /// Runs `f` with a [`Batch`]: what it pushes is written into this
    /// thread's ring and shown to the sender at once when `f` returns. The
    /// same rules as [`Emitter::push`]: never blocks, and what does not fit
    /// is dropped and counted. Within `f`, push through the batch: a push
    /// on the emitter itself would find the ring borrowed and be dropped.
    ///
    /// ```
    /// # use xray_emitter::{Emitter, Key, Value, Record, Body, SegmentId};
    /// let emitter = Emitter::disabled();
    /// let span = SegmentId::random();
    /// emitter.batch(|b| {
    ///     b.push(Record::new(span, Body::Attr { key: Key::Metadata("n"), value: Value::U64(1) }));
    ///     b.push_str(span, Key::Metadata("s"), "text");
    /// });
    /// assert_eq!(emitter.stats().records_dropped, 2, "no sender: counted, not lost");
    /// ```
    #[inline(always)]
    pub fn batch(&self, f: impl FnOnce(&mut Batch<'_>)) {
        let inner = &*self.inner;
        let mut f = Some(f);
        let open = !inner.shared.shutdown.load(Ordering::Relaxed) && !self.forked();
        if open {
            let _ = LOCAL.try_with(|local| {
                let Ok(mut local) = local.try_borrow_mut() else {
                    return;
                };
                let i = match local.iter().position(|p| p.emitter == inner.id) {
                    Some(i) => i,
                    None => match self.register(&mut local) {
                        Some(i) => i,
                        None => return,
                    },
                };
                if let Some(f) = f.take() {
                    let mut batch = Batch {
                        emitter: self,
                        ring: Some(&mut local[i].ring),
                        dropped: 0,
                        values_cut: 0,
                    };
                    f(&mut batch);
                    batch.finish();
                }
            });
        }
        if let Some(f) = f.take() {
            let mut batch = Batch {
                emitter: self,
                ring: None,
                dropped: 0,
                values_cut: 0,
            };
            f(&mut batch);
            batch.finish();
        }
    }
}
