//! A transport that learns of failures after `send` returned (an HTTP
//! export's worker) reports them when the sender asks, after it counted the
//! datagrams sent: a failure known before `send` even returns never makes
//! the sent counters run below zero. At shutdown the transport gets the
//! shutdown's own deadline, and what it could not finish is counted lost.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use xray_emitter::testing::{Sent, Transport};
use xray_emitter::{Emitter, Kind, SegmentId, Stats, TraceId};
use xray_testkit::spans::{close, open_top};

fn spans(e: &Emitter, n: usize) {
    let (trace, facade) = (TraceId::new(), SegmentId::random());
    for _ in 0..n {
        let id = SegmentId::random();
        assert!(open_top(e, id, trace, facade, "work", Kind::Local) & close(e, id));
    }
}

/// An emitter writing OTLP requests (which tell the transport the spans
/// each one carries) to `transport`.
fn otlp_emitter<T: Transport + Send + 'static>(
    transport: T,
) -> (Emitter, xray_emitter::EmitterGuard) {
    let resource = xray_emitter::Resource::new(&[("service.name", "t")], "t", "0");
    Emitter::builder()
        .format(xray_emitter::Format::OtlpRaw(resource))
        .start_with(move || transport)
        .unwrap()
}

/// The datagrams, and the spans in them, a test transport took.
#[derive(Default)]
struct Tally {
    per_datagram: Vec<u64>,
    taken: (u64, u64),
}

impl Tally {
    fn take(&mut self, datagrams: &[&[u8]]) -> Sent {
        self.taken.0 += datagrams.len() as u64;
        self.taken.1 += self.per_datagram.iter().sum::<u64>();
        Sent::all(datagrams)
    }
}

/// Fails every datagram at once, as a worker would whose collector refuses
/// before the sender is back from `send`; reads the stats from inside `send`.
#[derive(Default)]
struct FailsAtOnce {
    emitter: Arc<OnceLock<Emitter>>,
    seen: Arc<Mutex<Vec<Stats>>>,
    tally: Tally,
}

impl Transport for FailsAtOnce {
    fn spans(&mut self, per_datagram: &[u64]) {
        self.tally.per_datagram = per_datagram.to_vec();
    }

    fn send(&mut self, datagrams: &[&[u8]]) -> Sent {
        let sent = self.tally.take(datagrams);
        if let Some(e) = self.emitter.get() {
            self.seen.lock().unwrap().push(e.stats());
        }
        sent
    }

    fn late_failures(&mut self) -> (u64, u64) {
        std::mem::take(&mut self.tally.taken)
    }
}

#[test]
fn failures_known_before_send_returns_never_run_the_counters_below_zero() {
    let t = FailsAtOnce::default();
    let (cell, seen) = (t.emitter.clone(), t.seen.clone());
    let (e, _guard) = otlp_emitter(t);
    let _ = cell.set(e.clone());
    for _ in 0..20 {
        spans(&e, 50);
        assert!(e.flush(Duration::from_secs(5)).complete);
    }
    let s = e.stats();
    assert_eq!((s.spans_sent, s.spans_lost), (0, 1000), "{s:?}");
    assert_eq!(s.documents_sent, 0, "{s:?}");
    assert!(s.send_errors > 0, "{s:?}");
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty());
    for s in seen.iter() {
        assert!(
            s.spans_sent <= 1000 && s.documents_sent <= 1000,
            "a read while a failure was known: {s:?}"
        );
    }
}

/// Holds every datagram until it is closed, then fails what it holds.
struct HoldsUntilClosed {
    held: Tally,
    closed_with: Arc<Mutex<Option<Instant>>>,
}

impl Transport for HoldsUntilClosed {
    fn spans(&mut self, per_datagram: &[u64]) {
        self.held.per_datagram = per_datagram.to_vec();
    }

    fn send(&mut self, datagrams: &[&[u8]]) -> Sent {
        self.held.take(datagrams)
    }

    fn close(&mut self, deadline: Instant) {
        *self.closed_with.lock().unwrap() = Some(deadline);
    }

    fn late_failures(&mut self) -> (u64, u64) {
        if self.closed_with.lock().unwrap().is_some() {
            std::mem::take(&mut self.held.taken)
        } else {
            (0, 0)
        }
    }
}

#[test]
fn what_a_transport_holds_at_shutdown_is_counted_lost_by_the_shutdown_deadline() {
    let closed_with = Arc::new(Mutex::new(None));
    let (e, _guard) = otlp_emitter(HoldsUntilClosed {
        held: Tally::default(),
        closed_with: closed_with.clone(),
    });
    spans(&e, 30);
    assert!(e.flush(Duration::from_secs(5)).complete);
    assert_eq!(e.stats().spans_sent, 30);
    let started = Instant::now();
    assert!(e.shutdown(Duration::from_secs(3)).complete);
    let deadline = closed_with
        .lock()
        .unwrap()
        .expect("the transport was closed");
    let bound = deadline.saturating_duration_since(started);
    assert!(
        bound > Duration::from_millis(2500) && bound < Duration::from_millis(3500),
        "the transport's deadline is the shutdown's: {bound:?}"
    );
    let s = e.stats();
    assert_eq!((s.spans_sent, s.spans_lost), (0, 30), "{s:?}");
}
