//! Datagrams waiting to be sent, written straight into one preallocated arena.
//!
//! Documents are small (a few hundred bytes) and come in bursts, so the
//! arena collects up to [`MAX_BATCH`] of them and hands them to the transport
//! in one call: one `sendmmsg` instead of one syscall each.

use std::sync::Arc;

use arrayvec::ArrayVec;

use crate::document::{self, DATAGRAM_MAX};
use crate::id::{SegmentId, TraceId};
use crate::json::JsonWriter;
use crate::otlp::{self, Format};
use crate::socket::{DaemonSocket, MAX_BATCH, Sent};
use crate::stats::Counters;

/// Where finished datagrams go.
pub trait Transport {
    /// Sends each datagram; returns what was sent and what failed.
    fn send(&mut self, datagrams: &[&[u8]]) -> Sent;

    /// Drops connections and cached addresses: the process was restored
    /// from a snapshot, possibly on another host.
    fn reopen(&mut self) {}

    /// The spans each datagram of the next [`Transport::send`] carries: for
    /// a transport that learns of a failure after `send` returned.
    fn spans(&mut self, _per_datagram: &[u64]) {}

    /// Datagrams (and the spans in them) that `send` reported sent and that
    /// failed since (an HTTP export that failed after its retries), taken
    /// once. The sender asks after each step, once what it sent is counted,
    /// so that moving them from sent to lost never runs ahead of counting
    /// them sent.
    fn late_failures(&mut self) -> (u64, u64) {
        (0, 0)
    }

    /// The sender is stopping: a transport that sends from a thread of its
    /// own finishes what it holds by `deadline`, and reports the rest in
    /// [`Transport::late_failures`].
    fn close(&mut self, _deadline: std::time::Instant) {}
}

impl Transport for DaemonSocket {
    fn send(&mut self, datagrams: &[&[u8]]) -> Sent {
        DaemonSocket::send(self, datagrams)
    }

    fn reopen(&mut self) {
        DaemonSocket::reopen(self);
    }
}

/// The requests an OTLP outbox fills: sampled spans, and unsampled ones
/// (UDP only: `T1U`).
#[derive(Debug)]
struct OtlpRequests {
    sampled: otlp::Request,
    unsampled: otlp::Request,
    /// A UDP datagram (header and base64), or the request as it is.
    udp: bool,
}

impl OtlpRequests {
    fn of(&mut self, sampled: bool) -> &mut otlp::Request {
        if sampled {
            &mut self.sampled
        } else {
            &mut self.unsampled
        }
    }
}

/// Bytes of datagrams collected before a send.
pub const ARENA_BYTES: usize = 4 * DATAGRAM_MAX;

/// The arena, its datagram boundaries, and the transport.
#[derive(Debug)]
pub(crate) struct Outbox<T> {
    arena: Box<[u8]>,
    len: usize,
    /// End offset and span count of each datagram.
    ends: ArrayVec<(usize, u64), MAX_BATCH>,
    /// Span counts of the previous batch, for refusals that come back late.
    previous: [u64; MAX_BATCH],
    /// In OTLP mode: the requests being filled.
    otlp: Option<OtlpRequests>,
    transport: T,
    counters: Arc<Counters>,
}

impl<T: Transport> Outbox<T> {
    pub(crate) fn new(transport: T, counters: Arc<Counters>, format: &Format) -> Self {
        let requests = |resource: &otlp::Resource, udp| OtlpRequests {
            sampled: otlp::Request::new(resource.clone()),
            unsampled: otlp::Request::new(resource.clone()),
            udp,
        };
        let otlp = match format {
            Format::OtlpUdp(resource) => Some(requests(resource, true)),
            Format::OtlpRaw(resource) => Some(requests(resource, false)),
            _ => None,
        };
        Outbox {
            arena: vec![0u8; ARENA_BYTES].into_boxed_slice(),
            len: 0,
            ends: ArrayVec::new(),
            previous: [0; MAX_BATCH],
            otlp,
            transport,
            counters,
        }
    }

    /// Drops the datagrams not yet sent; returns the spans they carried.
    pub(crate) fn clear(&mut self) -> u64 {
        let mut spans: u64 = self.ends.iter().map(|&(_, n)| n).sum();
        if let Some(o) = &mut self.otlp {
            for request in [&mut o.sampled, &mut o.unsampled] {
                spans += request.spans();
                let _ = request.take();
            }
        }
        self.ends.clear();
        self.len = 0;
        spans
    }

    pub(crate) fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Writes one datagram with `write`; it is kept only if it fits in
    /// [`DATAGRAM_MAX`]. Returns whether it was kept.
    fn datagram(&mut self, spans: u64, write: impl FnOnce(&mut JsonWriter<'_>)) -> bool {
        if self.ends.is_full() || self.arena.len() - self.len < DATAGRAM_MAX {
            self.send_arena();
        }
        let start = self.len;
        let limit = (start + DATAGRAM_MAX).min(self.arena.len());
        let mut w = JsonWriter::resume(&mut self.arena[..limit], start);
        write(&mut w);
        match w.finish() {
            Ok(end) => {
                self.len = end;
                self.ends.push((end, spans));
                true
            }
            Err(_) => false,
        }
    }

    /// A segment document (already complete JSON).
    pub(crate) fn document(&mut self, entity: &[u8], spans: u64) -> bool {
        self.datagram(spans, |w| {
            w.raw(document::HEADER);
            w.raw(entity);
        })
    }

    /// A subsegment sent on its own: `entity` in embedded form gets its
    /// `type`, `trace_id` and `parent_id`.
    pub(crate) fn independent(
        &mut self,
        trace: TraceId,
        parent: SegmentId,
        entity: &[u8],
        spans: u64,
    ) -> bool {
        self.datagram(spans, |w| {
            document::write_independent(w, trace, parent, entity)
        })
    }

    /// Whether spans go out as OTLP.
    pub(crate) fn is_otlp(&self) -> bool {
        self.otlp.is_some()
    }

    /// The largest OTLP span body that can go out (0 if not in OTLP mode).
    pub(crate) fn otlp_span_max(&self) -> usize {
        self.otlp.as_ref().map_or(0, |o| o.sampled.max_body())
    }

    /// A closed span as an OTLP `Span` body; `false` if it cannot go out
    /// (too big for a datagram of its own, not in OTLP mode, or unsampled
    /// where only UDP carries those).
    pub(crate) fn otlp_span(&mut self, body: &[u8], sampled: bool) -> bool {
        let Some(o) = &mut self.otlp else {
            return false;
        };
        if !sampled && !o.udp {
            return false;
        }
        let request = o.of(sampled);
        if !request.fits_alone(body.len()) {
            return false;
        }
        if !request.fits(body.len()) {
            self.finish_request(sampled);
        }
        if let Some(o) = &mut self.otlp {
            o.of(sampled).push(body);
        }
        true
    }

    /// Turns the request being filled into a datagram.
    fn finish_request(&mut self, sampled: bool) {
        if self
            .otlp
            .as_mut()
            .is_none_or(|o| o.of(sampled).spans() == 0)
        {
            return;
        }
        if self.ends.is_full() || self.arena.len() - self.len < DATAGRAM_MAX {
            self.send_arena();
        }
        let Some(o) = &mut self.otlp else {
            return;
        };
        let udp = o.udp;
        let request = o.of(sampled);
        let spans = request.spans();
        let n = otlp::write_datagram(request.take(), udp, sampled, &mut self.arena[self.len..]);
        self.len += n;
        self.ends.push((self.len, spans));
    }

    /// Hands every collected datagram to the transport.
    pub(crate) fn send_all(&mut self) {
        self.finish_request(true);
        self.finish_request(false);
        self.send_arena();
    }

    fn send_arena(&mut self) {
        if self.ends.is_empty() {
            return;
        }
        let mut slices: ArrayVec<&[u8], MAX_BATCH> = ArrayVec::new();
        let mut start = 0;
        for &(end, _) in &self.ends {
            slices.push(&self.arena[start..end]);
            start = end;
        }
        let mut counts: ArrayVec<u64, MAX_BATCH> = ArrayVec::new();
        counts.extend(self.ends.iter().map(|&(_, n)| n));
        self.transport.spans(&counts);
        let sent = self.transport.send(&slices);
        let spans: u64 = self.ends.iter().map(|&(_, n)| n).sum();
        let c = &self.counters;
        c.documents_sent.add(sent.datagrams as u64);
        c.bytes_sent.add(sent.bytes as u64);
        c.send_errors.add(sent.errors as u64);
        let failed: u64 = (self.ends.iter().enumerate())
            .filter(|&(i, _)| sent.failed & (1 << i) != 0)
            .map(|(_, &(_, n))| n)
            .sum();
        c.spans_sent.add(spans - failed);
        c.spans_lost.add(failed);
        // Datagrams of the previous batch counted as sent, refused since:
        // moved from sent to lost.
        for i in (0..MAX_BATCH).filter(|&i| sent.late & (1 << i) != 0) {
            let n = std::mem::take(&mut self.previous[i]);
            c.spans_sent.sub(n);
            c.spans_lost.add(n);
            c.documents_sent.sub(1);
        }
        self.previous = [0; MAX_BATCH];
        for (i, &(_, n)) in self.ends.iter().enumerate() {
            if sent.failed & (1 << i) == 0 {
                self.previous[i] = n;
            }
        }
        self.ends.clear();
        self.len = 0;
    }
}
