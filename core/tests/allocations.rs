//! No allocation per record on the producer, and none on the sender once it
//! is warm: counted exactly with a counting global allocator.
//!
//! One test per binary, so no other test thread allocates meanwhile.

use std::time::Duration;

use xray_emitter::record::FLAG_ERROR;
use xray_emitter::{Body, Emitter, HttpField, Key, Kind, Record, SegmentId, TraceId, Value, clock};
use xray_testkit::Daemon;

#[global_allocator]
static GLOBAL: xray_testkit::Counting = xray_testkit::Counting;

/// A typical invocation: an SDK call with its fields and an error, nested in
/// a user span with an annotation, both under the function segment.
fn invocation(e: &Emitter, trace: TraceId, facade: SegmentId) -> u64 {
    let user = SegmentId::random();
    let call = SegmentId::random();
    let mut n = 0;
    let mut push = |r| {
        n += 1;
        assert!(e.push(r));
    };
    push(Record::new(
        user,
        Body::Open {
            parent: Some(facade),
            trace,
            time: clock::now(),
            name: "handler".into(),
            kind: Kind::Local,
        },
    ));
    push(Record::new(
        user,
        Body::Attr {
            key: Key::Annotation("customer"),
            value: Value::U64(42),
        },
    ));
    push(Record::new(
        call,
        Body::Open {
            parent: Some(user),
            trace,
            time: clock::now(),
            name: "DynamoDB".into(),
            kind: Kind::Aws,
        },
    ));
    Record::split_str(call, Key::Aws("operation"), "GetItem", &mut push);
    Record::split_str(
        call,
        Key::Aws("table_name"),
        "a-table-with-a-rather-long-name-for-chunks",
        &mut push,
    );
    Record::split_str(
        call,
        Key::Exception { remote: true },
        "Requested resource not found",
        &mut push,
    );
    push(Record::new(
        call,
        Body::Attr {
            key: Key::Http(HttpField::Status),
            value: Value::U64(400),
        },
    ));
    push(Record::new(
        call,
        Body::Attr {
            key: Key::Flags,
            value: Value::U64(FLAG_ERROR),
        },
    ));
    push(Record::new(call, Body::Close { time: clock::now() }));
    push(Record::new(user, Body::Close { time: clock::now() }));
    n
}

#[test]
fn no_allocation_per_record_on_the_producer_nor_the_warm_sender() {
    // Counts into a fixed buffer: the reader allocates nothing either.
    let rx = Daemon::counting();
    let addr = rx.addr();
    let (e, guard) = Emitter::builder()
        .daemon(addr)
        .report_errors(false)
        .start()
        .unwrap();
    let trace = TraceId::new();
    let facade = SegmentId::random();
    // Warm up: first-use paths (thread-locals, the sender's lazily touched state).
    for _ in 0..60 {
        for _ in 0..100 {
            invocation(&e, trace, facade);
        }
        assert!(e.flush(Duration::from_secs(5)).complete);
    }
    let all_before = xray_testkit::allocations_anywhere();
    let mine_before = xray_testkit::allocations_here();
    let mut records = 0;
    for _ in 0..100 {
        for _ in 0..100 {
            records += invocation(&e, trace, facade);
        }
        assert!(e.flush(Duration::from_secs(5)).complete);
    }
    let mine = xray_testkit::allocations_here() - mine_before;
    let all = xray_testkit::allocations_anywhere() - all_before;
    let stats = e.stats();
    drop(guard);
    assert_eq!(stats.records_dropped, 0);
    assert_eq!(
        stats.spans_sent,
        2 * 5 * 2_000 + 2 * 3 * 2_000,
        "every span sent"
    );
    assert!(records > 100_000);
    assert_eq!(
        mine, 0,
        "allocations on the producer thread for {records} records"
    );
    assert_eq!(
        all, 0,
        "allocations in the whole process (producer, sender, reader) for {records} records"
    );
    assert!(rx.spans() > 0);
}
