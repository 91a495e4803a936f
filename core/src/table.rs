//! The sender's table of open spans, and what happens when one closes.
//!
//! A closed span is written once, in embedded form. If its parent is still
//! open and the result stays within a datagram, it waits in the parent's
//! child buffer and travels nested in the parent's document; otherwise it is
//! sent on its own with `type`, `trace_id` and `parent_id`. Everything here
//! is preallocated: slots, the index (kept under half full, so it never
//! grows), child buffers and the scratch buffer.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use arrayvec::ArrayVec;

use crate::children::ChildBuffers;
use crate::clock::Converter;
use crate::document::{self, ENTITY_MAX, TRIM_LEVELS};
use crate::id::{SegmentId, TraceId};
use crate::json::JsonWriter;
use crate::outbox::{Outbox, Transport};
use crate::record::{Body, Key, Record};
use crate::span::Span;
use crate::stats::Counters;

/// Sizes of the preallocated state.
#[derive(Clone, Copy, Debug)]
pub struct TableConfig {
    /// Spans open at once; past this the oldest is reported in progress and evicted.
    pub open_spans: usize,
    /// Bytes of string values kept per span.
    pub text_bytes: usize,
    /// Spans with closed children waiting to be nested, at once.
    pub child_buffers: usize,
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            open_spans: 1024,
            text_bytes: 2048,
            child_buffers: 16,
        }
    }
}

/// Span ids are random, so they are their own hash.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Open spans and the documents they become.
pub(crate) struct SpanTable {
    slots: Vec<Span>,
    free: Vec<u32>,
    index: HashMap<SegmentId, u32, BuildHasherDefault<IdHasher>>,
    children: ChildBuffers,
    scratch: Box<[u8]>,
    seq: u64,
    /// The last span looked up: its records usually come one after another.
    last: Option<(SegmentId, u32)>,
    /// Traces to report in progress at a time (epoch microseconds) unless
    /// they end first: Lambda invocations and their deadlines.
    deadlines: ArrayVec<(TraceId, u64), MAX_DEADLINES>,
    counters: Arc<Counters>,
}

/// Deadlines followed at once: one per invocation running concurrently in
/// a sandbox. Past this the earliest registered gives way.
const MAX_DEADLINES: usize = 64;

impl std::fmt::Debug for SpanTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanTable")
            .field("open", &self.index.len())
            .field("capacity", &self.slots.len())
            .finish()
    }
}

impl SpanTable {
    pub(crate) fn new(config: TableConfig, counters: Arc<Counters>) -> Self {
        // Bounded so that sizes and slot numbers fit their types whatever
        // the configuration says.
        let open = config.open_spans.clamp(1, 1 << 20);
        let text_bytes = config.text_bytes.min(1 << 20);
        let child_buffers = config.child_buffers.min(4096);
        SpanTable {
            slots: (0..open).map(|_| Span::with_capacity(text_bytes)).collect(),
            free: (0..open as u32).rev().collect(),
            // Twice the spans: a map kept under half full stays fast.
            index: HashMap::with_capacity_and_hasher(2 * open, BuildHasherDefault::default()),
            children: ChildBuffers::new(child_buffers),
            scratch: vec![0u8; ENTITY_MAX].into_boxed_slice(),
            seq: 0,
            last: None,
            deadlines: ArrayVec::new(),
            counters,
        }
    }

    /// Forgets every span, keeping the memory;
    /// returns how many spans (open, or closed and waiting in a parent's
    /// buffer) were forgotten.
    pub(crate) fn clear(&mut self) -> u64 {
        let held = self.index.len() as u64 + self.children.clear();
        self.index.clear();
        self.free.clear();
        self.free.extend((0..self.slots.len() as u32).rev());
        for slot in &mut self.slots {
            slot.children = None;
        }
        self.last = None;
        self.seq = 0;
        self.deadlines.clear();
        held
    }

    /// Reports the open spans of every trace whose deadline is at or before
    /// `now` (epoch microseconds) in progress, once.
    pub(crate) fn report_due<T: Transport>(&mut self, now: u64, out: &mut Outbox<T>) {
        let mut i = 0;
        while i < self.deadlines.len() {
            let (trace, at) = self.deadlines[i];
            if at <= now {
                self.deadlines.swap_remove(i);
                self.report_open(Some(trace), out);
            } else {
                i += 1;
            }
        }
    }

    fn forget_deadline(&mut self, trace: TraceId) {
        self.deadlines.retain(|(t, _)| *t != trace);
    }

    /// Spans open now.
    pub(crate) fn open_spans(&self) -> usize {
        self.index.len()
    }

    /// Whether an open would have to evict a span to find a slot.
    pub(crate) fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    /// Applies one record; documents that become complete go to `out`.
    /// Returns `false` for a record about a span that is not open (its open
    /// record may not have arrived yet, or was lost); nothing was done.
    pub(crate) fn apply<T: Transport>(
        &mut self,
        record: &Record,
        clock: &Converter,
        out: &mut Outbox<T>,
    ) -> bool {
        let id = record.span;
        match record.body {
            Body::Open {
                parent,
                trace,
                time,
                name,
                kind,
            } => {
                if let Some(old) = self.index.get(&id).copied() {
                    // The id is taken: the older span's close must have been lost.
                    self.evict(old, out);
                }
                if self.free.is_empty() {
                    let oldest = self.oldest();
                    self.evict(oldest, out);
                }
                let Some(slot) = self.free.pop() else {
                    return true;
                };
                self.seq += 1;
                let start = clock.epoch_micros(time);
                self.slots[slot as usize].reset(
                    id,
                    parent,
                    trace,
                    kind,
                    name.as_str(),
                    start,
                    self.seq,
                );
                // Never more entries than slots: a taken id was released above.
                self.index.insert(id, slot);
            }
            Body::Attr { key, ref value } => match self.slot(id) {
                Some(slot) => self.slots[slot].set(key, value),
                None => return false,
            },
            Body::More(ref chunk) => match self.slot(id) {
                Some(slot) => self.slots[slot].more(chunk),
                None => return false,
            },
            Body::Pair(first, second) => match self.slot(id) {
                Some(slot) => {
                    let span = &mut self.slots[slot];
                    for f in std::iter::once(first).chain(second) {
                        span.set(Key::Metadata(f.name()), &f.value());
                    }
                }
                None => return false,
            },
            Body::Close { time } => match self.slot(id) {
                Some(slot) => {
                    let end = clock.epoch_micros(time);
                    self.close(slot as u32, end, out);
                }
                None => return false,
            },
            Body::EndTrace { trace } => {
                self.forget_deadline(trace);
                self.report_open(Some(trace), out);
            }
            Body::Deadline { trace, at } => {
                self.forget_deadline(trace);
                if self.deadlines.is_full() {
                    self.deadlines.remove(0);
                }
                self.deadlines.push((trace, at));
            }
        }
        true
    }

    /// Reports an open span in progress and forgets it: it cannot be sent
    /// complete any more, so it counts as lost (a close that comes later is
    /// an orphan).
    fn evict<T: Transport>(&mut self, slot: u32, out: &mut Outbox<T>) {
        self.report_in_progress(slot, out);
        self.release(slot);
        self.counters.spans_evicted.add(1);
        self.counters.spans_lost.add(1);
    }

    /// Writes the document of an open span, as its close would with `end`,
    /// into `buf` (no `subsegments`, no independent-subsegment fields).
    pub(crate) fn render(&mut self, id: SegmentId, end: u64, buf: &mut [u8]) -> Option<usize> {
        let slot = self.slot(id)?;
        let mut w = JsonWriter::new(buf);
        document::write_own(&mut w, &self.slots[slot], Some(end), TRIM_LEVELS[0], false);
        w.byte(b'}');
        w.finish().ok()
    }

    fn slot(&mut self, id: SegmentId) -> Option<usize> {
        if let Some((last, slot)) = self.last
            && last == id
        {
            return Some(slot as usize);
        }
        let slot = *self.index.get(&id)?;
        self.last = Some((id, slot));
        Some(slot as usize)
    }

    fn oldest(&self) -> u32 {
        self.index
            .values()
            .copied()
            .min_by_key(|&s| self.slots[s as usize].seq)
            .unwrap_or(0)
    }

    /// Frees a slot and its child buffer.
    fn release(&mut self, slot: u32) {
        let span = &mut self.slots[slot as usize];
        if let Some(c) = span.children.take() {
            self.children.release(c);
        }
        let id = span.id;
        if self.last.is_some_and(|(_, s)| s == slot) {
            self.last = None;
        }
        if self.index.get(&id) == Some(&slot) {
            self.index.remove(&id);
            self.free.push(slot);
        }
    }

    /// Writes the span's own fields into the scratch buffer, trimming until
    /// they fit with `reserve` bytes to spare. Returns the length and whether
    /// anything was trimmed.
    fn write_own(
        &mut self,
        slot: usize,
        end: Option<u64>,
        reserve: usize,
    ) -> Option<(usize, bool)> {
        let span = &self.slots[slot];
        let limit = ENTITY_MAX - reserve;
        for (level, trim) in TRIM_LEVELS.iter().enumerate() {
            let mut w = JsonWriter::new(&mut self.scratch[..limit]);
            document::write_own(&mut w, span, end, *trim, level > 0);
            if let Ok(n) = w.finish() {
                return Some((n, level > 0));
            }
        }
        None
    }

    fn close<T: Transport>(&mut self, slot: u32, end: u64, out: &mut Outbox<T>) {
        let s = slot as usize;
        self.slots[s].finish_pending();
        if out.is_otlp() {
            return self.close_otlp(slot, end, out);
        }
        if !self.slots[s].sampled {
            // Recorded for OTLP's unsampled datagrams only.
            self.release(slot);
            return;
        }
        let Some((mut len, trimmed)) = self.write_own(s, Some(end), 1) else {
            self.lose(slot, out);
            return;
        };
        let mut spans = 1u64;
        if let Some(c) = self.slots[s].children {
            match self.children.nest(c, &mut self.scratch, len, ENTITY_MAX) {
                Some((nested, n)) => {
                    self.slots[s].children = None;
                    len = nested;
                    spans += n;
                }
                None => self.stream_children(slot, out),
            }
        }
        self.scratch[len] = b'}';
        len += 1;
        if trimmed || self.slots[s].truncated {
            self.counters.spans_truncated.add(1);
        }
        self.route(slot, len, spans, out);
        self.release(slot);
    }

    /// OTLP: every span on its own (children name their parent), written
    /// whole, or without metadata and with short strings if that is what
    /// fits a datagram.
    fn close_otlp<T: Transport>(&mut self, slot: u32, end: u64, out: &mut Outbox<T>) {
        let span = &self.slots[slot as usize];
        let max = out.otlp_span_max().min(self.scratch.len());
        let written = crate::otlp::LEVELS
            .iter()
            .enumerate()
            .find_map(|(level, &l)| {
                let n = crate::otlp::encode_span(span, end, l, &mut self.scratch[..max])?;
                Some((n, level > 0))
            });
        match written {
            Some((n, trimmed)) if out.otlp_span(&self.scratch[..n], span.sampled) => {
                if trimmed || span.truncated {
                    self.counters.spans_truncated.add(1);
                }
            }
            _ => self.counters.spans_lost.add(1),
        }
        self.release(slot);
    }

    /// Sends or keeps the entity in `scratch[..len]`.
    fn route<T: Transport>(&mut self, slot: u32, len: usize, spans: u64, out: &mut Outbox<T>) {
        let span = &self.slots[slot as usize];
        let entity = &self.scratch[..len];
        if span.kind == crate::record::Kind::Segment {
            if !out.document(entity, spans) {
                self.counters.spans_lost.add(spans);
            }
            return;
        }
        let Some(parent) = span.parent else {
            self.counters.spans_lost.add(spans);
            return;
        };
        if let Some(&parent_slot) = self.index.get(&parent)
            && self.keep_child(parent_slot as usize, len, spans)
        {
            return;
        }
        let trace = self.slots[slot as usize].trace;
        if !out.independent(trace, parent, &self.scratch[..len], spans) {
            self.counters.spans_lost.add(spans);
        }
    }

    /// Copies `scratch[..len]` into the parent's child buffer if it fits.
    fn keep_child(&mut self, parent_slot: usize, len: usize, spans: u64) -> bool {
        let holder = &mut self.slots[parent_slot].children;
        self.children.keep(holder, &self.scratch[..len], spans)
    }

    /// Sends every kept child of `slot` on its own and empties its buffer.
    fn stream_children<T: Transport>(&mut self, slot: u32, out: &mut Outbox<T>) {
        let span = &mut self.slots[slot as usize];
        let Some(c) = span.children.take() else {
            return;
        };
        let (parent, trace) = (span.id, span.trace);
        let lost = &self.counters.spans_lost;
        self.children.each(c, |piece, n| {
            if !out.independent(trace, parent, piece, n) {
                lost.add(n);
            }
        });
    }

    /// Sends an open span as `in_progress`, and its closed children on their own.
    fn report_in_progress<T: Transport>(&mut self, slot: u32, out: &mut Outbox<T>) {
        if out.is_otlp() || !self.slots[slot as usize].sampled {
            // OTLP has no in-progress spans: it is sent when it closes.
            return;
        }
        self.stream_children(slot, out);
        let s = slot as usize;
        self.slots[s].finish_pending();
        let Some((mut len, _)) = self.write_own(s, None, 1) else {
            return;
        };
        self.scratch[len] = b'}';
        len += 1;
        let span = &self.slots[s];
        let sent = match (span.kind, span.parent) {
            (crate::record::Kind::Segment, _) => out.document(&self.scratch[..len], 0),
            (_, Some(parent)) => out.independent(span.trace, parent, &self.scratch[..len], 0),
            _ => false,
        };
        if sent {
            self.counters.spans_in_progress.add(1);
        }
    }

    fn lose<T: Transport>(&mut self, slot: u32, out: &mut Outbox<T>) {
        self.stream_children(slot, out);
        self.counters.spans_lost.add(1);
        self.release(slot);
    }

    /// Reports every open span as in progress (at shutdown): none of them
    /// will be sent complete, so each counts as lost.
    pub(crate) fn report_all_in_progress<T: Transport>(&mut self, out: &mut Outbox<T>) {
        self.counters.spans_lost.add(self.index.len() as u64);
        self.report_open(None, out);
    }

    /// Reports every open span of `trace` (or every one) as in progress, and
    /// sends their closed children, so nothing of a finished invocation
    /// waits for the next thaw. A span reported stays open: if it closes
    /// after all, its complete document replaces the report.
    fn report_open<T: Transport>(&mut self, trace: Option<TraceId>, out: &mut Outbox<T>) {
        let mut open: ArrayVec<u32, 64> = ArrayVec::new();
        loop {
            open.clear();
            for &slot in self.index.values() {
                let span = &self.slots[slot as usize];
                let wanted = trace.is_none_or(|t| span.trace == t);
                if wanted && span.seq != 0 && open.try_push(slot).is_err() {
                    break;
                }
            }
            for &slot in &open {
                self.report_in_progress(slot, out);
                // Reported: an open order of 0 keeps it out of the next pass
                // (and makes it the first to evict).
                self.slots[slot as usize].seq = 0;
            }
            if !open.is_full() {
                return;
            }
        }
    }
}
