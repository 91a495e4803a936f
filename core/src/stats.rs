//! Counters a user can read: what was sent, and everything that was not.
//!
//! Producers touch these only on the rare paths (a full queue, a cut value),
//! never per record, so the hot path shares no cache line with the sender
//! through them; the ones a producer may bump per span or per record
//! (unsampled, untraced, dropped) are striped.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

macro_rules! counters {
    (
        $( $(#[$doc:meta])* $name:ident ),* $(,)?
        ; striped: $( $(#[$sdoc:meta])* $sname:ident ),* $(,)?
    ) => {
        /// A snapshot of the emitter's counters.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Stats {
            $( $(#[$doc])* pub $name: u64, )*
            $( $(#[$sdoc])* pub $sname: u64, )*
        }

        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $( pub(crate) $name: Counter, )*
            $( pub(crate) $sname: Striped, )*
        }

        impl Counters {
            pub(crate) fn snapshot(&self) -> Stats {
                Stats {
                    $( $name: self.$name.0.load(Ordering::Relaxed), )*
                    $( $sname: self.$sname.sum(), )*
                }
            }
        }
    };
}

counters! {
    /// Records the sender took from the queue.
    records_received,
    /// Datagrams handed to the socket (one document each) and not refused.
    documents_sent,
    /// Bytes handed to the socket, headers included.
    bytes_sent,
    /// Segments and subsegments inside the documents sent, nested ones included.
    spans_sent,
    /// Spans sent with something left out: metadata or long strings trimmed to
    /// fit a datagram, fields beyond the per-span capacity, or values cut.
    spans_truncated,
    /// String values a producer cut at `MAX_VALUE_BYTES`.
    values_truncated,
    /// Spans reported with `in_progress: true` because their trace ended or
    /// the table of open spans was full.
    spans_in_progress,
    /// Open spans pushed out of a full table (reported in progress first;
    /// also counted in `spans_lost`, as they are never sent complete).
    spans_evicted,
    /// Spans that reached the sender and were not sent complete: evicted,
    /// still open at shutdown, too large for a datagram even trimmed, or in a
    /// datagram the daemon refused.
    spans_lost,
    /// Records about spans the sender does not know (their open record was lost
    /// or they were evicted).
    records_orphaned,
    /// Closes applied before a whole pass over the rings had followed them,
    /// because the table of open spans was full: their spans are sent, but a
    /// field of theirs still in another ring then counts as orphaned, and a
    /// child closing late travels on its own instead of nested.
    closes_settled_early,
    /// Datagrams refused by the daemon's host (ICMP port unreachable) or
    /// not sent (no address, a socket error).
    send_errors,
    /// Flushes that returned because the timeout elapsed first.
    flush_timeouts;
    striped:
    /// Records refused because the queue was full or the sender was gone
    /// (striped: under overload every push of every thread lands here).
    records_dropped,
    /// Spans a producer did not send because their trace is not sampled.
    spans_unsampled,
    /// Spans a producer did not send because they belong to no trace.
    spans_untraced,
    /// Spans whose open record a producer could not enqueue. (A span whose
    /// open was enqueued and whose close was not is the sender's to count:
    /// it stays open there, and is counted in `spans_lost`.)
    spans_dropped,
}

/// A counter the sender bumps (producers only on rare paths).
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes back a count made too early (a datagram refused after it was
    /// counted as sent).
    pub(crate) fn sub(&self, n: u64) {
        self.0.fetch_sub(n, Ordering::Relaxed);
    }
}

const STRIPES: usize = 16;

/// A counter that producers bump per span (an unsampled trace can be most of
/// the traffic): split across cache lines so threads rarely share one.
#[derive(Debug, Default)]
pub(crate) struct Striped {
    cells: [CachePadded<AtomicU64>; STRIPES],
}

impl Striped {
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.cells[stripe()].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.cells.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

impl Counters {
    /// `datagrams` carrying `spans`, counted as sent, failed after all: they
    /// move from sent to lost, and count as send errors. Only the sender
    /// calls it, after counting them sent.
    pub(crate) fn failed_late(&self, datagrams: u64, spans: u64) {
        self.documents_sent.sub(datagrams);
        self.spans_sent.sub(spans);
        self.spans_lost.add(spans);
        self.send_errors.add(datagrams);
    }
}
