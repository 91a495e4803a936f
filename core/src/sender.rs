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
use std::time::{Duration, Instant};

use crate::assembler::Assembler;
use crate::outbox::Transport;
use crate::record::{Body, Record};
use crate::ring::{Consumer, Watch};
use crate::stats::Counters;
use crate::table::TableConfig;

/// Complete passes a close waits after the one it was read in: by then every
/// ring has been read past everything that happened before the close.
const CLOSE_WAIT: u8 = 1;
/// An end of trace waits one pass more than a close: a close of its trace
/// read in the pass after it may still have happened before it.
const END_WAIT: u8 = 2;
/// Complete passes a record about a span not yet open waits for the open;
/// after that the open is known to be lost (or the span evicted).
const PENDING_WAIT: u8 = 2;

/// Passes in one step, unless a flush needs more. Producers that never let
/// the rings run dry must not keep the sender from the clock, flushes and
/// shutdown, which are looked at between steps; held records carry over.
const PASSES: usize = 16;

/// Passes a flush (or the end) makes at least: one that reads everything
/// enqueued before it, then enough for its ends of traces to be due.
const SETTLE_PASSES: usize = 1 + END_WAIT as usize;

/// The pause between passes while records keep coming; while none do it
/// doubles, up to the builder's `max_idle` (2, 4, 8, 10 ms by default). On
/// a machine with one CPU (a Lambda function under 1,769 MB) each wake-up
/// of this thread lands on the caller's CPU: with every thread on one CPU,
/// tracing 20,000 GetItem calls (`bench/examples/profile_sdk_call.rs` under
/// `taskset -c 0`) added 25 µs of CPU a call with a 500 µs pause, 19.5 with
/// 1 ms and 16.5 with 2 ms when this was chosen; measured again later, 2,
/// 5 and 10 ms came out alike within noise. Nothing needs the pause
/// shorter: a flush, a half-full ring and shutdown wake the sender, and a
/// Lambda deadline's 50 ms margin is longer than the default `max_idle`.
const BUSY_PAUSE: Duration = Duration::from_millis(2);

/// How long a transport may take to finish what it holds when the sender
/// stops without a shutdown's own bound (every handle dropped).
const TRANSPORT_CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Where producers hand their rings' reading ends to the sender.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) incoming: Vec<Consumer>,
    pub(crate) watches: Vec<Watch>,
}

/// State shared by the handles and the thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) counters: Arc<Counters>,
    pub(crate) flush_requested: AtomicU64,
    pub(crate) flush_done: Mutex<u64>,
    pub(crate) flushed: Condvar,
    pub(crate) shutdown: AtomicBool,
    /// When the first shutdown asked to be done by: the transport's bound
    /// for finishing what it holds.
    pub(crate) shutdown_deadline: OnceLock<Instant>,
    pub(crate) running: AtomicBool,
    /// The sender has read the rings for the last time: what is left in them
    /// (pushed after the final pass) is counted as dropped by [`Shared::reap`].
    pub(crate) stopped: AtomicBool,
    /// The process was restored from a snapshot: re-anchor, reopen.
    pub(crate) restored: AtomicBool,
    pub(crate) thread: OnceLock<Thread>,
    /// Rings registered and not yet taken by the sender (and, once it has
    /// stopped, the ones it hands back to [`Shared::reap`]), with a view of
    /// every ring's length.
    pub(crate) rings: Mutex<Registry>,
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
            shutdown_deadline: OnceLock::new(),
            running: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            restored: AtomicBool::new(false),
            thread: OnceLock::new(),
            rings: Mutex::new(Registry::default()),
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
        rings.watches.iter().map(|r| r.len()).sum()
    }

    /// Once the sender has stopped, takes what producers pushed after its
    /// last pass and counts it as dropped (and each open among it as a
    /// dropped span), so every record is accounted for whenever the counters
    /// are read. The rings have no other reader then; the lock keeps two
    /// callers from reading one at once.
    pub(crate) fn reap(&self) {
        if !self.stopped.load(Ordering::Acquire) {
            return;
        }
        let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        for ring in rings.incoming.iter_mut() {
            let (mut records, mut opens) = (0u64, 0u64);
            ring.drain(usize::MAX, |r| {
                records += 1;
                opens += u64::from(matches!(r.body, Body::Open { .. }));
            });
            self.counters.records_dropped.add(records);
            self.counters.spans_dropped.add(opens);
        }
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

/// The sender's working state besides the assembler.
///
/// A close is never applied in the pass that read it: records of its span
/// (fields, children, even its open) may sit in a ring read later in that
/// pass, or in one read earlier before they were pushed. Everything that
/// happened before the close was published before the next pass starts, so
/// once a whole pass has followed, every ring has been read past it. Every
/// pass reads every ring (the list refreshed at its start) up to the tail it
/// finds, so every pass counts.
struct Passes {
    rings: Vec<Consumer>,
    version: u64,
    /// Closes and ends of traces read in earlier passes, with the complete
    /// passes each still waits.
    held: Vec<(Record, u8)>,
    /// Those read in the current pass.
    fresh: Vec<(Record, u8)>,
    /// Records about spans not open (yet), with the passes they have waited.
    pending: Vec<(Record, u8)>,
    /// Scratch lists, kept to reuse their memory.
    due: Vec<Record>,
    retry: Vec<(Record, u8)>,
    /// Records taken from the rings and not yet counted, kept here rather
    /// than returned so that a step that panics still counts what it took.
    received: u64,
}

/// Closes in the order their spans ended (a child must close before its
/// parent to travel nested in it); ends of traces after every close.
fn end_order(r: &Record) -> u64 {
    match r.body {
        Body::Close { time } => time.raw(),
        _ => u64::MAX,
    }
}

impl Passes {
    fn new() -> Self {
        // Preallocated for a busy steady state; under a burst the lists grow
        // once and keep their memory. A close waits one pass after the one
        // that read it, an end of trace two, a record for a span not yet
        // open two: none holds more than three passes read, and a pass
        // reads at most what the rings hold.
        Passes {
            rings: Vec::new(),
            version: u64::MAX,
            held: Vec::with_capacity(4096),
            fresh: Vec::with_capacity(4096),
            pending: Vec::with_capacity(1024),
            due: Vec::with_capacity(4096),
            retry: Vec::with_capacity(1024),
            received: 0,
        }
    }

    /// Counts the records taken since the last call; returns how many.
    fn count_received(&mut self, counters: &Counters) -> u64 {
        let n = std::mem::take(&mut self.received);
        counters.records_received.add(n);
        n
    }

    /// Forgets the records held (after a panic), counting them as orphaned.
    fn clear(&mut self, counters: &Counters) {
        let held = self.held.len() + self.fresh.len() + self.pending.len();
        counters.records_orphaned.add(held as u64);
        self.held.clear();
        self.fresh.clear();
        self.pending.clear();
        self.version = u64::MAX;
    }

    /// Takes the rings registered since the last look.
    fn refresh_rings(&mut self, shared: &Shared) {
        let version = shared.rings_version.load(Ordering::Acquire);
        if version != self.version {
            let mut rings = shared.rings.lock().unwrap_or_else(|p| p.into_inner());
            self.rings.append(&mut rings.incoming);
            self.version = version;
        }
    }

    /// Drops rings whose thread is gone and which are empty.
    fn forget_finished(&mut self, shared: &Shared) {
        if !self.rings.iter().any(|r| r.is_finished()) {
            return;
        }
        let mut rings = shared.rings.lock().unwrap_or_else(|p| p.into_inner());
        let finished =
            |w: &Watch| (self.rings.iter()).any(|r| r.is_finished() && r.is_watched_by(w));
        rings.watches.retain(|w| !finished(w));
        drop(rings);
        self.rings.retain(|r| !r.is_finished());
    }

    /// Hands the rings back for [`Shared::reap`]: the sender reads no more.
    fn hand_back(&mut self, shared: &Shared) {
        let mut rings = shared.rings.lock().unwrap_or_else(|p| p.into_inner());
        rings.incoming.append(&mut self.rings);
    }

    /// One pass: every ring registered when it starts, each read up to its
    /// tail, then what became due. Returns the number of records taken.
    fn pass<T: Transport>(&mut self, shared: &Shared, assembler: &mut Assembler<T>) -> usize {
        self.refresh_rings(shared);
        let mut rings = std::mem::take(&mut self.rings);
        let taken = rings.iter_mut().map(|r| self.read(r, assembler)).sum();
        self.rings = rings;
        self.after_pass(assembler, false);
        taken
    }

    /// Reads one ring up to its tail: opens and fields are applied at once,
    /// closes and ends of traces held. Returns the number of records taken.
    fn read<T: Transport>(&mut self, ring: &mut Consumer, assembler: &mut Assembler<T>) -> usize {
        let Passes {
            held,
            fresh,
            pending,
            due,
            received,
            ..
        } = self;
        ring.drain(usize::MAX, |record| {
            *received += 1;
            match record.body {
                Body::Close { .. } => fresh.push((*record, CLOSE_WAIT)),
                Body::EndTrace { .. } => fresh.push((*record, END_WAIT)),
                Body::Open { .. } => {
                    // Closes held free slots before an open span is
                    // evicted, the longest held first. Counted: a late
                    // field of theirs would be orphaned.
                    for list in [&mut *held, &mut *fresh] {
                        if assembler.table_full() && !list.is_empty() {
                            let closes = (list.iter())
                                .filter(|(r, _)| matches!(r.body, Body::Close { .. }))
                                .count();
                            assembler.counters().closes_settled_early.add(closes as u64);
                            due.extend(list.drain(..).map(|(r, _)| r));
                            Self::apply_due(due, pending, assembler);
                        }
                    }
                    assembler.try_apply(record);
                }
                _ => {
                    if !assembler.try_apply(record) {
                        pending.push((*record, 0));
                    }
                }
            }
        })
    }

    /// After a complete pass: records of spans that opened in it, then the
    /// closes and ends of traces whose wait is over. `last`: no pass follows,
    /// so everything held is applied and what still finds no span is orphaned.
    fn after_pass<T: Transport>(&mut self, assembler: &mut Assembler<T>, last: bool) {
        std::mem::swap(&mut self.pending, &mut self.retry);
        for (record, age) in self.retry.drain(..) {
            if assembler.try_apply(&record) {
                continue;
            }
            if age + 1 >= PENDING_WAIT {
                assembler.counters().records_orphaned.add(1);
            } else {
                self.pending.push((record, age + 1));
            }
        }
        let (held, due) = (&mut self.held, &mut self.due);
        held.retain_mut(|(record, wait)| {
            *wait = wait.saturating_sub(1);
            let now = *wait == 0 || last;
            if now {
                due.push(*record);
            }
            !now
        });
        if last {
            due.extend(self.fresh.drain(..).map(|(r, _)| r));
        }
        Self::apply_due(&mut self.due, &mut self.pending, assembler);
        self.held.append(&mut self.fresh);
        if last {
            for (record, _) in self.pending.drain(..) {
                if !assembler.try_apply(&record) {
                    assembler.counters().records_orphaned.add(1);
                }
            }
        }
    }

    /// Applies `due` in end order; a close whose span is not open waits in
    /// `pending` for its open (read late, or lost).
    fn apply_due<T: Transport>(
        due: &mut Vec<Record>,
        pending: &mut Vec<(Record, u8)>,
        assembler: &mut Assembler<T>,
    ) {
        due.sort_unstable_by_key(end_order);
        for record in due.drain(..) {
            if !assembler.try_apply(&record) {
                pending.push((record, 0));
            }
        }
    }

    /// Passes until the rings are empty (at most [`PASSES`]); `complete`
    /// (a flush, the end) makes at least [`SETTLE_PASSES`], so that
    /// everything enqueued before it is read and settled.
    fn step<T: Transport>(
        &mut self,
        shared: &Shared,
        assembler: &mut Assembler<T>,
        complete: bool,
    ) {
        if shared.restored.swap(false, Ordering::AcqRel) {
            assembler.restored();
        }
        assembler.refresh_clock(Duration::from_millis(50));
        let least = if complete { SETTLE_PASSES } else { 1 };
        for done in 1..=PASSES {
            let taken = self.pass(shared, assembler);
            if taken == 0 && done >= least {
                break;
            }
        }
        assembler.report_deadlines();
        assembler.send();
        self.forget_finished(shared);
    }
}

#[cfg(test)]
mod orderings;

/// The loop; returns when shut down or when every handle is gone.
pub(crate) fn run<T: Transport>(
    shared: Arc<Shared>,
    table: TableConfig,
    format: &crate::otlp::Format,
    max_idle: Duration,
    transport: T,
) {
    shared.running.store(true, Ordering::Release);
    let mut assembler = Assembler::with_counters(table, format, transport, shared.counters.clone());
    let mut passes = Passes::new();
    let mut idle = 0u32;
    let mut acked = 0u64;
    loop {
        let ticket = shared.flush_requested.load(Ordering::Acquire);
        let stopping = shared.shutdown.load(Ordering::Acquire);
        let complete = ticket > acked || stopping;
        let step = catch_unwind(AssertUnwindSafe(|| {
            passes.step(&shared, &mut assembler, complete)
        }));
        if step.is_err() {
            // A bug, not bad data: start over with empty state rather than
            // die, counting what is forgotten.
            assembler.clear();
            passes.clear(&shared.counters);
        }
        let taken = passes.count_received(&shared.counters);
        assembler.count_late_failures();
        if ticket > acked {
            shared.acknowledge(ticket);
            acked = ticket;
        }
        if stopping {
            let _ = catch_unwind(AssertUnwindSafe(|| {
                passes.step(&shared, &mut assembler, true);
                passes.after_pass(&mut assembler, true);
                assembler.finish();
            }));
            // On its own: what the transport holds is counted even if the
            // last pass failed.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                let deadline = shared.shutdown_deadline.get().copied();
                assembler.close(deadline.unwrap_or_else(|| Instant::now() + TRANSPORT_CLOSE_WAIT));
            }));
            passes.count_received(&shared.counters);
            // Pushed between the last pass and producers seeing the shutdown.
            passes.refresh_rings(&shared);
            passes.hand_back(&shared);
            shared.stopped.store(true, Ordering::Release);
            shared.reap();
            shared.running.store(false, Ordering::Release);
            shared.acknowledge(u64::MAX);
            return;
        }
        idle = if taken == 0 {
            idle.saturating_add(1)
        } else {
            0
        };
        let pause = BUSY_PAUSE.saturating_mul(1 << idle.min(8)).min(max_idle);
        if shared.flush_requested.load(Ordering::Acquire) == ticket
            && !shared.shutdown.load(Ordering::Acquire)
        {
            std::thread::park_timeout(pause);
        }
    }
}
