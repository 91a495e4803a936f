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

use crate::clock::Converter;
use crate::document::{self, ENTITY_MAX, TRIM_LEVELS};
use crate::id::{SegmentId, TraceId};
use crate::json::JsonWriter;
use crate::outbox::{Outbox, Transport};
use crate::record::{Body, Record};
use crate::span::Span;
use crate::stats::Counters;

/// Closes held back at once; past this they are applied as they come.
const DEFERRED: usize = 4096;

/// Closed children kept per child buffer before the next ones go on their own.
const MAX_CHILDREN: usize = 256;
/// Bytes of closed children one parent nests: half a document, leaving room
/// for the parent's own fields and the array's punctuation.
const CHILDREN_MAX: usize = ENTITY_MAX / 2;
const SUBSEGMENTS: &[u8] = b",\"subsegments\":[";

/// Sizes of the preallocated state.
#[derive(Clone, Copy, Debug)]
pub struct TableConfig {
    /// Spans open at once; past this the oldest is reported in progress and evicted.
    pub open_spans: usize,
    /// Bytes of string values kept per span.
    pub text_bytes: usize,
    /// Spans with closed children waiting to be nested, at once.
    pub child_buffers: usize,
    /// Traces announced at once (open invocations and segments); past this
    /// the oldest announcement is forgotten.
    pub traces: usize,
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            open_spans: 1024,
            text_bytes: 2048,
            child_buffers: 16,
            traces: 256,
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

#[derive(Debug)]
struct Children {
    bytes: Vec<u8>,
    /// End offset and span count of each child.
    ends: ArrayVec<(u32, u64), MAX_CHILDREN>,
}

/// Open spans and the documents they become.
pub(crate) struct SpanTable {
    slots: Vec<Span>,
    free: Vec<u32>,
    index: HashMap<SegmentId, u32, BuildHasherDefault<IdHasher>>,
    /// Announcements kept at once.
    max_traces: usize,
    children: Vec<Children>,
    free_children: Vec<u32>,
    /// Announced traces, by upstream id, and their order for eviction.
    traces: HashMap<SegmentId, TraceId, BuildHasherDefault<IdHasher>>,
    trace_order: std::collections::VecDeque<SegmentId>,
    scratch: Box<[u8]>,
    seq: u64,
    /// The last span looked up: its records usually come one after another.
    last: Option<(SegmentId, u32)>,
    /// Closes held back until the rings have been read once more (see the
    /// sender), and those of the pass before, now due.
    deferred: Vec<Record>,
    due: Vec<Record>,
    counters: Arc<Counters>,
}

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
        let max_traces = config.traces.clamp(1, 1 << 20);
        SpanTable {
            slots: (0..open).map(|_| Span::with_capacity(text_bytes)).collect(),
            free: (0..open as u32).rev().collect(),
            // Twice the spans: a map kept under half full stays fast.
            index: HashMap::with_capacity_and_hasher(2 * open, BuildHasherDefault::default()),
            max_traces,
            children: (0..child_buffers)
                .map(|_| Children {
                    bytes: Vec::with_capacity(CHILDREN_MAX),
                    ends: ArrayVec::new(),
                })
                .collect(),
            free_children: (0..child_buffers as u32).rev().collect(),
            traces: HashMap::with_capacity_and_hasher(
                2 * max_traces,
                BuildHasherDefault::default(),
            ),
            trace_order: std::collections::VecDeque::with_capacity(max_traces),
            scratch: vec![0u8; ENTITY_MAX].into_boxed_slice(),
            seq: 0,
            last: None,
            // Twice the bound: `settle(all)` joins both lists without growing one.
            deferred: Vec::with_capacity(2 * DEFERRED),
            due: Vec::with_capacity(2 * DEFERRED),
            counters,
        }
    }

    /// Forgets every span, announcement and held close, keeping the memory;
    /// returns how many spans (open, or closed and waiting in a parent's
    /// buffer) were forgotten.
    pub(crate) fn clear(&mut self) -> u64 {
        let children: u64 = (self.children.iter())
            .flat_map(|c| c.ends.iter().map(|&(_, n)| n))
            .sum();
        let held = self.index.len() as u64 + children;
        self.index.clear();
        self.free.clear();
        self.free.extend((0..self.slots.len() as u32).rev());
        for slot in &mut self.slots {
            slot.children = None;
        }
        for c in &mut self.children {
            c.bytes.clear();
            c.ends.clear();
        }
        self.free_children.clear();
        self.free_children
            .extend((0..self.children.len() as u32).rev());
        self.traces.clear();
        self.trace_order.clear();
        self.deferred.clear();
        self.due.clear();
        self.last = None;
        self.seq = 0;
        held
    }

    /// Spans open now.
    pub(crate) fn open_spans(&self) -> usize {
        self.index.len()
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
                time,
                name,
                kind,
            } => {
                if let Some(old) = self.index.get(&id).copied() {
                    // The id is taken: the older span's close must have been lost.
                    self.report_in_progress(old, out);
                    self.release(old);
                    Counters::add(&self.counters.spans_evicted, 1);
                }
                let trace = self.trace_for(id, parent);
                if self.free.is_empty() {
                    // Spans whose close is only held back are not open: settle them first.
                    self.settle(clock, out, true);
                }
                let slot = match self.free.pop() {
                    Some(slot) => slot,
                    None => {
                        let oldest = self.oldest();
                        self.report_in_progress(oldest, out);
                        self.release(oldest);
                        Counters::add(&self.counters.spans_evicted, 1);
                        match self.free.pop() {
                            Some(slot) => slot,
                            None => return true,
                        }
                    }
                };
                self.seq += 1;
                let start = clock.epoch_micros(time);
                self.slots[slot as usize].reset(id, parent, trace, kind, name, start, self.seq);
                // Never more entries than slots: a taken id was released above.
                self.index.insert(id, slot);
            }
            Body::Trace { trace } => {
                self.announce(id, trace);
                if let Some(slot) = self.slot(id) {
                    self.slots[slot].trace = Some(trace);
                }
            }
            Body::Attr { key, ref value } => match self.slot(id) {
                Some(slot) => self.slots[slot].set(key, value),
                None => return false,
            },
            Body::More(ref chunk) => match self.slot(id) {
                Some(slot) => self.slots[slot].more(chunk),
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
                self.end_trace(trace, out);
                self.traces.remove(&id);
            }
        }
        true
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

    /// Holds a close (or the end of a trace) back until [`SpanTable::settle`];
    /// applies it now if too many are held.
    pub(crate) fn defer<T: Transport>(
        &mut self,
        record: &Record,
        clock: &Converter,
        out: &mut Outbox<T>,
    ) {
        if self.deferred.len() < DEFERRED {
            self.deferred.push(*record);
        } else if !self.apply(record, clock, out) {
            Counters::add(&self.counters.records_orphaned, 1);
        }
    }

    /// Applies the closes deferred before the last pass (with `all`, every
    /// one held), in the order their spans ended: rings are read one after
    /// another, so a parent's close can be read before its child's, and a
    /// child must close first to travel nested in its parent's document.
    pub(crate) fn settle<T: Transport>(
        &mut self,
        clock: &Converter,
        out: &mut Outbox<T>,
        all: bool,
    ) {
        let mut due = std::mem::take(&mut self.due);
        if all {
            due.append(&mut self.deferred);
        }
        due.sort_unstable_by_key(|r| match r.body {
            Body::Close { time } => time.0,
            // The end of an invocation comes after every close it waited for.
            _ => u64::MAX,
        });
        for record in due.drain(..) {
            if !self.apply(&record, clock, out) {
                Counters::add(&self.counters.records_orphaned, 1);
            }
        }
        self.due = due;
        if !all {
            std::mem::swap(&mut self.due, &mut self.deferred);
        }
    }

    /// A span whose trace was not known when it opened (its parent's open or
    /// the trace's announcement came from another thread, later) learns it now.
    fn resolve_trace(&mut self, slot: usize) {
        if self.slots[slot].trace.is_some() {
            return;
        }
        let span = &self.slots[slot];
        self.slots[slot].trace = self.trace_for(span.id, span.parent);
    }

    /// The trace of span `id`: its open parent's, else one announced for its
    /// parent or for itself.
    fn trace_for(&self, id: SegmentId, parent: Option<SegmentId>) -> Option<TraceId> {
        match parent.and_then(|p| self.index.get(&p)) {
            Some(&p) => self.slots[p as usize].trace,
            None => parent
                .and_then(|p| self.traces.get(&p))
                .or_else(|| self.traces.get(&id))
                .copied(),
        }
    }

    /// Remembers that `id` (and what opens under it) belongs to `trace`.
    fn announce(&mut self, id: SegmentId, trace: TraceId) {
        if self.traces.insert(id, trace).is_none() {
            if self.trace_order.len() >= self.max_traces {
                // The oldest announcement goes (it may already be gone).
                if let Some(old) = self.trace_order.pop_front() {
                    self.traces.remove(&old);
                }
            }
            self.trace_order.push_back(id);
        }
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
            self.children[c].bytes.clear();
            self.children[c].ends.clear();
            self.free_children.push(c as u32);
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
        self.resolve_trace(s);
        let Some((mut len, trimmed)) = self.write_own(s, Some(end), 1) else {
            self.lose(slot, out);
            return;
        };
        let span = &self.slots[s];
        let mut spans = 1u64;
        if let Some(c) = span.children {
            let kids = &self.children[c];
            let needed = SUBSEGMENTS.len() + kids.bytes.len() + kids.ends.len() + 1;
            if len + needed < ENTITY_MAX {
                self.scratch[len..len + SUBSEGMENTS.len()].copy_from_slice(SUBSEGMENTS);
                len += SUBSEGMENTS.len();
                let mut start = 0usize;
                for (i, &(child_end, n)) in kids.ends.iter().enumerate() {
                    if i > 0 {
                        self.scratch[len] = b',';
                        len += 1;
                    }
                    let piece = &kids.bytes[start..child_end as usize];
                    self.scratch[len..len + piece.len()].copy_from_slice(piece);
                    len += piece.len();
                    start = child_end as usize;
                    spans += n;
                }
                self.scratch[len] = b']';
                len += 1;
            } else {
                self.stream_children(slot, out);
            }
        }
        self.scratch[len] = b'}';
        len += 1;
        if trimmed || self.slots[s].lost {
            Counters::add(&self.counters.spans_truncated, 1);
        }
        self.route(slot, len, spans, out);
        self.release(slot);
        // A segment announced itself; it is over.
        self.traces.remove(&self.slots[s].id);
    }

    /// Sends or keeps the entity in `scratch[..len]`.
    fn route<T: Transport>(&mut self, slot: u32, len: usize, spans: u64, out: &mut Outbox<T>) {
        let span = &self.slots[slot as usize];
        let entity = &self.scratch[..len];
        if span.kind == crate::record::Kind::Segment {
            if span.trace.is_some() {
                out.document(entity, spans);
            } else {
                Counters::add(&self.counters.spans_lost, spans);
            }
            return;
        }
        let Some(parent) = span.parent else {
            Counters::add(&self.counters.spans_lost, spans);
            return;
        };
        if let Some(&parent_slot) = self.index.get(&parent)
            && self.keep_child(parent_slot as usize, len, spans)
        {
            return;
        }
        match self.slots[slot as usize].trace {
            Some(trace) => {
                out.independent(trace, parent, &self.scratch[..len], spans);
            }
            None => Counters::add(&self.counters.spans_lost, spans),
        }
    }

    /// Copies `scratch[..len]` into the parent's child buffer if it fits.
    fn keep_child(&mut self, parent_slot: usize, len: usize, spans: u64) -> bool {
        let c = match self.slots[parent_slot].children {
            Some(c) => c,
            None => match self.free_children.pop() {
                Some(c) => {
                    self.slots[parent_slot].children = Some(c as usize);
                    c as usize
                }
                None => return false,
            },
        };
        let kids = &mut self.children[c];
        if kids.ends.is_full() || kids.bytes.len() + len + 1 > CHILDREN_MAX {
            return false;
        }
        kids.bytes.extend_from_slice(&self.scratch[..len]);
        kids.ends.push((kids.bytes.len() as u32, spans));
        true
    }

    /// Sends every kept child of `slot` on its own and empties its buffer.
    fn stream_children<T: Transport>(&mut self, slot: u32, out: &mut Outbox<T>) {
        let span = &mut self.slots[slot as usize];
        let Some(c) = span.children.take() else {
            return;
        };
        let (parent, trace) = (span.id, span.trace);
        let kids = &mut self.children[c];
        let mut start = 0usize;
        for &(end, n) in &kids.ends {
            let piece = &kids.bytes[start..end as usize];
            match trace {
                Some(trace) => {
                    out.independent(trace, parent, piece, n);
                }
                None => Counters::add(&self.counters.spans_lost, n),
            }
            start = end as usize;
        }
        kids.bytes.clear();
        kids.ends.clear();
        self.free_children.push(c as u32);
    }

    /// Sends an open span as `in_progress`, and its closed children on their own.
    fn report_in_progress<T: Transport>(&mut self, slot: u32, out: &mut Outbox<T>) {
        self.resolve_trace(slot as usize);
        self.stream_children(slot, out);
        let s = slot as usize;
        self.slots[s].finish_pending();
        let Some((mut len, _)) = self.write_own(s, None, 1) else {
            return;
        };
        self.scratch[len] = b'}';
        len += 1;
        let span = &self.slots[s];
        let sent = match (span.kind, span.trace, span.parent) {
            (crate::record::Kind::Segment, Some(_), _) => out.document(&self.scratch[..len], 0),
            (_, Some(trace), Some(parent)) => {
                out.independent(trace, parent, &self.scratch[..len], 0)
            }
            _ => false,
        };
        if sent {
            Counters::add(&self.counters.spans_in_progress, 1);
        }
    }

    fn lose<T: Transport>(&mut self, slot: u32, out: &mut Outbox<T>) {
        self.stream_children(slot, out);
        Counters::add(&self.counters.spans_lost, 1);
        self.release(slot);
    }

    /// Reports every open span of `trace` as in progress, and sends their
    /// closed children, so nothing of a finished invocation waits for the next thaw.
    fn end_trace<T: Transport>(&mut self, trace: TraceId, out: &mut Outbox<T>) {
        self.report_open(Some(trace), out);
    }

    /// Reports every open span as in progress (at shutdown).
    pub(crate) fn report_all_in_progress<T: Transport>(&mut self, out: &mut Outbox<T>) {
        self.report_open(None, out);
    }

    fn report_open<T: Transport>(&mut self, trace: Option<TraceId>, out: &mut Outbox<T>) {
        let mut open: ArrayVec<u32, 64> = ArrayVec::new();
        loop {
            open.clear();
            for &slot in self.index.values() {
                let span = &self.slots[slot as usize];
                let wanted = trace.is_none_or(|t| span.trace == Some(t));
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
