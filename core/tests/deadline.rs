//! A deadline reports the open spans of its trace in progress when it comes,
//! from the sender thread, and what closes afterwards is still sent complete.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use xray_emitter::{Body, Emitter, Kind, Record, SegmentId, TraceId};
use xray_testkit::spans::{close, emitter, open, open_top};
use xray_testkit::{Daemon, entities};

fn epoch_micros_in(d: Duration) -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (now + d).as_micros() as u64
}

/// Every document received so far (kept for the next look).
fn docs(datagrams: &[Vec<u8>]) -> Vec<serde_json::Value> {
    datagrams.iter().map(|d| xray_testkit::check(d)).collect()
}

fn in_progress(datagrams: &[Vec<u8>], id: SegmentId) -> bool {
    entities(&docs(datagrams))
        .iter()
        .any(|e| e["id"] == id.to_string() && e["in_progress"] == true)
}

/// Opens the handler's subsegment under the function's segment `function`.
fn open_handler(e: &Emitter, trace: TraceId, function: SegmentId) -> SegmentId {
    let handler = SegmentId::random();
    assert!(open_top(
        e,
        handler,
        trace,
        function,
        "handler",
        Kind::Local
    ));
    handler
}

/// Sets `trace`'s deadline `d` from now; returns it in epoch microseconds.
fn deadline_in(e: &Emitter, handler: SegmentId, trace: TraceId, d: Duration) -> u64 {
    let at = epoch_micros_in(d);
    assert!(e.push(Record::new(handler, Body::Deadline { trace, at })));
    at
}

#[test]
fn open_spans_are_reported_when_the_deadline_comes_then_sent_complete() {
    let daemon = Daemon::start();
    let (e, _guard) = emitter(&daemon);
    let trace = TraceId::new();
    let function = SegmentId::random();
    let handler = open_handler(&e, trace, function);
    let child = SegmentId::random();
    let other_trace = TraceId::new();
    let other = SegmentId::random();
    assert!(open(&e, child, trace, Some(handler), "load", Kind::Local));
    assert!(close(&e, child));
    assert!(open_top(
        &e,
        other,
        other_trace,
        function,
        "other",
        Kind::Local
    ));
    let at = deadline_in(&e, handler, trace, Duration::from_millis(300));

    // Nothing before the deadline: the handler is open, its child waits in it.
    std::thread::sleep(Duration::from_millis(150));
    assert!(
        !in_progress(&daemon.received(), handler),
        "reported before its deadline"
    );
    daemon.wait_until(Duration::from_secs(2), |d| in_progress(d, handler));
    let reported_at = epoch_micros_in(Duration::ZERO);
    assert!(reported_at >= at, "reported {} µs early", at - reported_at);
    let received = docs(&daemon.received());
    let seen = entities(&received);
    assert!(
        seen.iter()
            .any(|e| e["id"] == child.to_string() && e.get("end_time").is_some()),
        "the closed child goes out with the report: {received:?}"
    );
    assert!(
        !seen.iter().any(|e| e["id"] == other.to_string()),
        "another trace's span is not reported"
    );

    // The invocation ends after all: the complete document follows.
    assert!(close(&e, handler));
    assert!(close(&e, other));
    assert!(e.flush(Duration::from_secs(2)).complete);
    daemon.wait_until(Duration::from_secs(2), |d| {
        entities(&docs(d))
            .iter()
            .any(|e| e["id"] == handler.to_string() && e.get("end_time").is_some())
    });
    let stats = e.stats();
    assert_eq!(stats.spans_in_progress, 1);
    assert_eq!(stats.spans_lost, 0);
}

#[test]
fn an_ended_trace_forgets_its_deadline() {
    let daemon = Daemon::start();
    let (e, _guard) = emitter(&daemon);
    let trace = TraceId::new();
    let function = SegmentId::random();
    let handler = open_handler(&e, trace, function);
    deadline_in(&e, handler, trace, Duration::from_millis(200));
    assert!(close(&e, handler));
    assert!(e.push(Record::new(function, Body::EndTrace { trace })));
    assert!(e.flush(Duration::from_secs(2)).complete);
    // A span of the same trace opened later (a late background task) is
    // not reported by the forgotten deadline.
    let late = SegmentId::random();
    assert!(open_top(&e, late, trace, function, "late", Kind::Local));
    std::thread::sleep(Duration::from_millis(400));
    assert!(e.flush(Duration::from_secs(2)).complete);
    assert!(!in_progress(&daemon.received(), late));
    assert_eq!(e.stats().spans_in_progress, 0);
}
