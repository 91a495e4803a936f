//! A batch: a span's open record and fields written together, counted like
//! single pushes when they cannot be written.

use std::time::Duration;

use xray_emitter::clock::Ticks;
use xray_emitter::{Body, Key, Kind, Record, SegmentId, StaticName, TraceId, Value};
use xray_testkit::spans::{close, emitter};
use xray_testkit::{Daemon, check};

fn open(span: SegmentId, trace: TraceId) -> Record {
    Record::new(
        span,
        Body::Open {
            parent: SegmentId::from_u64(0xfacade),
            trace,
            time: Ticks::from_raw(0),
            name: StaticName::new("batched"),
            kind: Kind::Local,
        },
    )
}

#[test]
fn a_batch_arrives_as_one_span_with_its_fields() {
    let daemon = Daemon::start();
    let (e, _g) = emitter(&daemon);
    let span = SegmentId::random();
    e.batch(|b| {
        assert!(b.push(open(span, TraceId::new())));
        b.push(Record::new(
            span,
            Body::Attr {
                key: Key::Annotation("n"),
                value: Value::U64(7),
            },
        ));
        b.push_str(span, Key::Metadata("long"), &"x".repeat(300));
        b.push_json(span, Key::Aws("list"), "[1,2]");
    });
    close(&e, span);
    let _ = e.flush(Duration::from_secs(2));
    daemon.wait_until(Duration::from_secs(2), |d| !d.is_empty());
    let doc = check(&daemon.take().remove(0));
    assert_eq!(doc["name"], "batched");
    assert_eq!(doc["annotations"]["n"], 7);
    assert_eq!(
        doc["metadata"]["default"]["long"].as_str().unwrap().len(),
        300
    );
    assert_eq!(doc["aws"]["list"][1], 2);
    let s = e.stats();
    assert_eq!((s.spans_sent, s.records_dropped), (1, 0));
}

/// Inside a batch the thread's ring is borrowed: a push on the emitter, or
/// a batch within the batch, cannot write and is counted, never lost
/// silently (and never panics).
#[test]
fn a_push_inside_a_batch_is_dropped_and_counted() {
    let daemon = Daemon::start();
    let (e, _g) = emitter(&daemon);
    let span = SegmentId::random();
    e.batch(|b| {
        b.push(open(span, TraceId::new()));
        assert!(!e.push(Record::new(
            span,
            Body::Close {
                time: Ticks::from_raw(1)
            }
        )));
        e.batch(|inner| {
            assert!(!inner.push_str(span, Key::Metadata("k"), "v"));
        });
    });
    assert_eq!(e.stats().records_dropped, 2);
}

#[test]
fn a_batch_after_shutdown_is_counted() {
    let daemon = Daemon::start();
    let (e, g) = emitter(&daemon);
    drop(g);
    let span = SegmentId::random();
    e.batch(|b| {
        assert!(!b.push(open(span, TraceId::new())));
        assert!(!b.push_str(span, Key::Metadata("k"), &"y".repeat(200)));
    });
    let mut records = 0;
    Record::split_str(span, Key::Metadata("k"), &"y".repeat(200), |_| records += 1);
    assert!(records > 1);
    assert_eq!(e.stats().records_dropped, 1 + records);
}
