//! One `ExportTraceServiceRequest` being filled with spans.
//!
//! The spans are written after room left for the request's head, whose
//! lengths are known only at the end: the head is then written just before
//! them, so the finished request is one contiguous slice, never copied.

use super::wire::{Proto, len_field_size, tag_size, varint_size};
use super::{REQUEST_MAX, Resource};

/// `ScopeSpans.spans`.
const SPANS: u32 = 2;

#[derive(Debug)]
pub(crate) struct Request {
    buf: Box<[u8]>,
    /// Where the spans start (room for the head before it).
    reserved: usize,
    len: usize,
    spans: u64,
    resource: Resource,
}

impl Request {
    pub(crate) fn new(resource: Resource) -> Self {
        let reserved = 2 * (tag_size(1) + varint_size(REQUEST_MAX as u64))
            + resource.resource.len()
            + resource.scope.len();
        Request {
            buf: vec![0u8; reserved + REQUEST_MAX].into_boxed_slice(),
            reserved,
            len: reserved,
            spans: 0,
            resource,
        }
    }

    pub(crate) fn spans(&self) -> u64 {
        self.spans
    }

    /// The head's size for spans of `spans_len` bytes in all.
    fn head(&self, spans_len: usize) -> (usize, usize, usize) {
        let scope_spans = self.resource.scope.len() + spans_len;
        let resource_spans = self.resource.resource.len() + len_field_size(2, scope_spans);
        let total = len_field_size(1, resource_spans);
        (total, resource_spans, scope_spans)
    }

    /// Whether a span of `body` bytes still fits in this request.
    pub(crate) fn fits(&self, body: usize) -> bool {
        let spans = self.len - self.reserved + len_field_size(SPANS, body);
        self.head(spans).0 <= REQUEST_MAX
    }

    /// Whether a span of `body` bytes fits in a request of its own.
    pub(crate) fn fits_alone(&self, body: usize) -> bool {
        self.head(len_field_size(SPANS, body)).0 <= REQUEST_MAX
    }

    /// The largest span body that fits in a request of its own.
    pub(crate) fn max_body(&self) -> usize {
        let room = REQUEST_MAX.saturating_sub(self.head(0).0);
        room.saturating_sub(tag_size(SPANS) + varint_size(room as u64))
    }

    /// Adds a span (see [`Request::fits`]).
    pub(crate) fn push(&mut self, body: &[u8]) {
        let mut w = Proto::new(&mut self.buf[self.len..]);
        w.bytes(SPANS, body);
        if !w.overflowed() {
            self.len += w.len();
            self.spans += 1;
        }
    }

    /// The finished request; the next span starts a new one.
    pub(crate) fn take(&mut self) -> &[u8] {
        let spans_len = self.len - self.reserved;
        let (total, resource_spans, scope_spans) = self.head(spans_len);
        let head_len = total - spans_len;
        let start = self.reserved - head_len;
        let mut w = Proto::new(&mut self.buf[start..self.reserved]);
        w.len_prefix(1, resource_spans);
        w.raw(&self.resource.resource);
        w.len_prefix(2, scope_spans);
        w.raw(&self.resource.scope);
        debug_assert_eq!(w.len(), head_len);
        let end = self.len;
        self.len = self.reserved;
        self.spans = 0;
        &self.buf[start..end]
    }
}
