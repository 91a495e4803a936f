//! Records in, datagrams out, synchronously: the work of the sender thread,
//! usable on its own by tests, fuzzers and benchmarks.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Converter, Ticks};
use crate::id::SegmentId;
use crate::otlp::Format;
use crate::outbox::{Outbox, Transport};
use crate::record::Record;
use crate::stats::{Counters, Stats};
use crate::table::{SpanTable, TableConfig};

/// Keeps the open spans and turns finished ones into datagrams for `T`.
#[derive(Debug)]
pub struct Assembler<T: Transport> {
    clock: Converter,
    table: SpanTable,
    out: Outbox<T>,
    counters: Arc<Counters>,
}

impl<T: Transport> Assembler<T> {
    /// A assembler with its own counters.
    pub fn new(config: TableConfig, transport: T) -> Self {
        Self::with_format(config, &Format::XRay, transport)
    }

    /// An assembler writing `format` (X-Ray documents or OTLP).
    pub fn with_format(config: TableConfig, format: &Format, transport: T) -> Self {
        Self::with_counters(config, format, transport, Arc::new(Counters::default()))
    }

    pub(crate) fn with_counters(
        config: TableConfig,
        format: &Format,
        transport: T,
        counters: Arc<Counters>,
    ) -> Self {
        Assembler {
            clock: Converter::new(),
            table: SpanTable::new(config, counters.clone()),
            out: Outbox::new(transport, counters.clone(), format),
            counters,
        }
    }

    /// Applies one record; complete documents are collected for
    /// [`Assembler::send`]. A record about a span that is not open is counted
    /// as orphaned.
    #[inline]
    pub fn apply(&mut self, record: &Record) {
        if !self.try_apply(record) {
            self.counters.records_orphaned.add(1);
        }
    }

    /// Applies one record; `false` (and nothing done, nothing counted) if it
    /// is about a span that is not open.
    #[inline]
    pub(crate) fn try_apply(&mut self, record: &Record) -> bool {
        self.table.apply(record, &self.clock, &mut self.out)
    }

    /// Whether the next open would evict a span.
    pub(crate) fn table_full(&self) -> bool {
        self.table.is_full()
    }

    /// The counters this assembler adds to.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Writes the JSON of the open span `id` as its close at `end` would (its
    /// own fields only) into `buf`; `None` if the span is not open or the
    /// document does not fit. The serialization step alone, for benchmarks
    /// and debugging.
    pub fn render(&mut self, id: SegmentId, end: Ticks, buf: &mut [u8]) -> Option<usize> {
        let end = self.clock.epoch_micros(end);
        self.table.render(id, end, buf)
    }

    /// The transport (to read what a test transport captured).
    pub fn transport_mut(&mut self) -> &mut T {
        self.out.transport_mut()
    }

    /// Hands the collected datagrams to the transport (also done whenever a
    /// batch is full).
    pub fn send(&mut self) {
        self.out.send_all();
    }

    /// Moves what the transport learned failed, since it was counted sent,
    /// from sent to lost.
    pub(crate) fn count_late_failures(&mut self) {
        let (datagrams, spans) = self.out.transport_mut().late_failures();
        if datagrams > 0 || spans > 0 {
            self.counters.failed_late(datagrams, spans);
        }
    }

    /// The sender stops: the transport finishes by `deadline`, and what it
    /// could not is counted.
    pub(crate) fn close(&mut self, deadline: std::time::Instant) {
        self.out.transport_mut().close(deadline);
        self.count_late_failures();
    }

    /// Reports every open span as in progress (each counted lost: it will
    /// never be sent complete) and sends everything.
    pub fn finish(&mut self) {
        self.table.report_all_in_progress(&mut self.out);
        self.out.send_all();
    }

    /// After a restore from a snapshot: a new clock anchor (the counter may
    /// run on another host now) and a new socket.
    pub fn restored(&mut self) {
        self.clock.reanchor();
        self.out.transport_mut().reopen();
    }

    /// Reports the open spans of traces whose deadline has come (see
    /// [`Body::Deadline`](crate::Body::Deadline)) in progress.
    pub fn report_deadlines(&mut self) {
        let now = self.clock.epoch_micros(crate::clock::now());
        self.table.report_due(now, &mut self.out);
    }

    /// Re-reads the clock anchor if it is older than `max_age`.
    pub fn refresh_clock(&mut self, max_age: Duration) {
        self.clock.refresh(max_age);
    }

    /// Forgets every open span and unsent datagram, keeping the memory: a fresh start without allocating (after
    /// a bug made the state suspect, or between fuzz inputs). The spans
    /// forgotten are counted as lost.
    pub fn clear(&mut self) {
        let lost = self.table.clear() + self.out.clear();
        self.counters.spans_lost.add(lost);
    }

    /// Spans open now (never more than the table's capacity).
    pub fn open_spans(&self) -> usize {
        self.table.open_spans()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }
}
