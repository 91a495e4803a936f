//! The sender thread: drains every producer's ring, keeps the open spans,
//! sends documents.
//!
//! It polls the rings and sleeps between passes instead of blocking: a
//! blocked consumer turns every producer's push into a wake-up (measured at
//! 2.2–2.4× the cost of a span), while a sleeping poller is never waited on.
//! Flushes, a half-full ring and shutdown unpark it early.
//!
//! Records of one span can sit in different rings (an async task moves
//! between threads), so a pass over the rings may see a span's close before
//! its fields, or its fields before its open. Closes are therefore applied
//! after the next pass, and fields of a span not yet open wait for it:
//! anything that happened before a close was published before it, so the
//! next pass, which reads every ring's tail again, sees it. Passes follow
//! each other until the rings are empty (or a bound is reached), so closes
//! wait microseconds, not a sleep; a full span table settles held closes
//! before evicting anything.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use crate::collector::Collector;
use crate::outbox::Transport;
use crate::record::{Body, Record};
use crate::ring::Ring;
use crate::stats::Counters;
use crate::table::TableConfig;

/// Records about spans not yet open, held for a pass.
const PENDING: usize = 4096;

/// Passes in one step. Producers that never let the rings run dry must not
/// keep the sender from new rings, the clock, flushes and shutdown, which are
/// looked at between steps; held closes carry over to the next step.
const PASSES: usize = 16;

/// State shared by the handles and the thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) counters: Arc<Counters>,
    pub(crate) flush_requested: AtomicU64,
    pub(crate) flush_done: Mutex<u64>,
    pub(crate) flushed: Condvar,
    pub(crate) shutdown: AtomicBool,
    pub(crate) running: AtomicBool,
    pub(crate) thread: OnceLock<Thread>,
    /// Every producer's ring; producers add theirs, the sender removes finished ones.
    pub(crate) rings: Mutex<Vec<Arc<Ring>>>,
    pub(crate) rings_version: AtomicU64,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Shared {
            counters: Arc::new(Counters::default()),
            flush_requested: AtomicU64::new(0),
            flush_done: Mutex::new(0),
            flushed: Condvar::new(),
            shutdown: AtomicBool::new(false),
            running: AtomicBool::new(false),
            thread: OnceLock::new(),
            rings: Mutex::new(Vec::new()),
            rings_version: AtomicU64::new(0),
        }
    }

    pub(crate) fn wake(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }

    /// Records waiting in all rings.
    pub(crate) fn queued(&self) -> usize {
        let rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        rings.iter().map(|r| r.len()).sum()
    }

    fn acknowledge(&self, ticket: u64) {
        let mut done = self.flush_done.lock().unwrap_or_else(|p| p.into_inner());
        if ticket > *done {
            *done = ticket;
        }
        drop(done);
        self.flushed.notify_all();
    }
}

/// The sender's working state besides the collector.
struct Passes {
    rings: Vec<Arc<Ring>>,
    version: u64,
    /// Records about spans not open yet, with the number of passes they waited.
    pending: Vec<(Record, u8)>,
    retry: Vec<(Record, u8)>,
    /// Records taken from the rings and not yet counted, kept here rather
    /// than returned so that a step that panics still counts what it took.
    received: u64,
}

impl Passes {
    fn new() -> Self {
        Passes {
            rings: Vec::new(),
            version: u64::MAX,
            pending: Vec::with_capacity(PENDING),
            retry: Vec::with_capacity(PENDING),
            received: 0,
        }
    }

    /// Counts the records taken since the last call; returns how many.
    fn count_received(&mut self, counters: &Counters) -> u64 {
        let n = std::mem::take(&mut self.received);
        Counters::add(&counters.records_received, n);
        n
    }

    /// Forgets the records held for spans not yet open (after a panic),
    /// counting them as orphaned.
    fn clear(&mut self, counters: &Counters) {
        let held = self.pending.len() + self.retry.len();
        Counters::add(&counters.records_orphaned, held as u64);
        self.pending.clear();
        self.retry.clear();
        self.version = u64::MAX;
    }

    fn refresh_rings(&mut self, shared: &Shared) {
        let version = shared.rings_version.load(Ordering::Acquire);
        if version != self.version {
            let rings = shared.rings.lock().unwrap_or_else(|p| p.into_inner());
            self.rings.clear();
            self.rings.extend(rings.iter().cloned());
            self.version = version;
        }
    }

    /// Drops rings whose thread is gone and which are empty.
    fn forget_finished(&mut self, shared: &Shared) {
        if !self.rings.iter().any(|r| r.is_finished()) {
            return;
        }
        let mut rings = shared.rings.lock().unwrap_or_else(|p| p.into_inner());
        rings.retain(|r| !r.is_finished());
        shared.rings_version.fetch_add(1, Ordering::AcqRel);
    }

    /// One pass over every ring, each read up to its tail. Returns the number
    /// of records taken.
    fn pass<T: Transport>(&mut self, collector: &mut Collector<T>, counters: &Counters) -> usize {
        let mut taken = 0;
        let Passes {
            rings,
            pending,
            received,
            ..
        } = self;
        for ring in rings.iter() {
            taken += ring.drain(usize::MAX, |record| {
                *received += 1;
                match record.body {
                    Body::Close { .. } | Body::EndTrace { .. } => collector.defer(record),
                    _ if collector.try_apply(record) => {}
                    _ if pending.len() < pending.capacity() => pending.push((*record, 0)),
                    _ => Counters::add(&counters.records_orphaned, 1),
                }
            });
        }
        taken
    }

    /// Retries records of spans that were not open; gives up after two passes.
    fn retry_pending<T: Transport>(
        &mut self,
        collector: &mut Collector<T>,
        counters: &Counters,
        final_pass: bool,
    ) {
        std::mem::swap(&mut self.pending, &mut self.retry);
        for (record, age) in self.retry.drain(..) {
            if collector.try_apply(&record) {
                continue;
            }
            if age >= 2 || final_pass {
                Counters::add(&counters.records_orphaned, 1);
            } else {
                self.pending.push((record, age + 1));
            }
        }
    }

    /// Passes until the rings are empty (at most [`PASSES`]), each followed
    /// by the closes of the one before; `complete` then settles everything
    /// seen (a flush, the end).
    fn step<T: Transport>(
        &mut self,
        shared: &Shared,
        collector: &mut Collector<T>,
        complete: bool,
    ) {
        self.refresh_rings(shared);
        collector.refresh_clock(Duration::from_millis(50));
        let counters = &shared.counters;
        for _ in 0..PASSES {
            let pass = self.pass(collector, counters);
            self.retry_pending(collector, counters, false);
            collector.settle(false);
            if pass == 0 {
                break;
            }
        }
        if complete {
            collector.settle(true);
            self.retry_pending(collector, counters, false);
        }
        collector.send();
        self.forget_finished(shared);
    }
}

/// The loop; returns when shut down or when every handle is gone.
pub(crate) fn run<T: Transport>(
    shared: Arc<Shared>,
    table: TableConfig,
    max_idle: Duration,
    transport: T,
) {
    shared.running.store(true, Ordering::Release);
    let mut collector = Collector::with_counters(table, transport, shared.counters.clone());
    let mut passes = Passes::new();
    let mut idle = 0u32;
    let mut acked = 0u64;
    loop {
        let ticket = shared.flush_requested.load(Ordering::Acquire);
        let stopping = shared.shutdown.load(Ordering::Acquire);
        let complete = ticket > acked || stopping;
        let step = catch_unwind(AssertUnwindSafe(|| {
            passes.step(&shared, &mut collector, complete)
        }));
        if step.is_err() {
            // A bug, not bad data: start over with empty state rather than
            // die, counting what is forgotten.
            collector.clear();
            passes.clear(&shared.counters);
        }
        let taken = passes.count_received(&shared.counters);
        if ticket > acked {
            shared.acknowledge(ticket);
            acked = ticket;
        }
        if stopping {
            let _ = catch_unwind(AssertUnwindSafe(|| {
                passes.step(&shared, &mut collector, true);
                passes.retry_pending(&mut collector, &shared.counters, true);
                collector.finish();
            }));
            passes.count_received(&shared.counters);
            // Pushed between the last drain and producers seeing the shutdown.
            shared.counters.records_dropped.add(shared.queued() as u64);
            shared.running.store(false, Ordering::Release);
            shared.acknowledge(u64::MAX);
            return;
        }
        idle = if taken == 0 {
            idle.saturating_add(1)
        } else {
            0
        };
        let pause = Duration::from_micros(500u64 << idle.min(8)).min(max_idle);
        if shared.flush_requested.load(Ordering::Acquire) == ticket
            && !shared.shutdown.load(Ordering::Acquire)
        {
            std::thread::park_timeout(pause);
        }
    }
}
