//! Producers flat out against a stalled sender never block: the queue fills,
//! the surplus is dropped and counted, and every record is accounted for.

use std::time::Duration;

use xray_emitter::{Emitter, Kind, SegmentId, TraceId};
use xray_testkit::spans::{close, open_top};
use xray_testkit::{Daemon, Gate, count_spans, socket};

#[derive(Default)]
struct Tally {
    records: u64,
    complete_spans: u64,
}

#[test]
fn a_stalled_sender_drops_and_counts_without_blocking_producers() {
    let daemon = Daemon::start();
    let (gate, release) = Gate::new(socket(daemon.addr()));
    let (e, _guard) = Emitter::builder()
        .queue_capacity(1024)
        .start_with(move || gate)
        .unwrap();
    let trace = TraceId::new();
    let facade = SegmentId::random();
    let producers: Vec<_> = (0..4)
        .map(|_| {
            let e = e.clone();
            std::thread::spawn(move || {
                let mut t = Tally::default();
                for _ in 0..50_000 {
                    let id = SegmentId::random();
                    let opened = open_top(&e, id, trace, facade, "work", Kind::Local);
                    let closed = close(&e, id);
                    t.records += 2;
                    t.complete_spans += u64::from(opened && closed);
                }
                t
            })
        })
        .collect();
    // The gate is still shut: if a push could block, this join would hang.
    let tallies: Vec<Tally> = producers.into_iter().map(|p| p.join().unwrap()).collect();
    let produced: u64 = tallies.iter().map(|t| t.records).sum();
    let complete: u64 = tallies.iter().map(|t| t.complete_spans).sum();
    let stalled = e.stats();
    assert!(
        stalled.records_dropped > 0,
        "the queue must have overflowed"
    );
    assert!(stalled.records_dropped <= produced);
    release.release();
    assert!(e.flush(Duration::from_secs(10)).complete);
    let _ = e.shutdown(Duration::from_secs(10));
    let s = e.stats();
    assert_eq!(
        s.records_received + s.records_dropped,
        produced,
        "every record is received or counted as dropped"
    );
    assert_eq!(
        s.spans_sent, complete,
        "every span whose records all went in is sent"
    );
    daemon.wait_until(Duration::from_secs(5), |d| {
        d.iter()
            .map(|d| count_spans(&xray_testkit::check(d)))
            .sum::<usize>() as u64
            >= complete
    });
    let docs: Vec<_> = daemon.documents();
    let arrived: usize = docs.iter().map(count_spans).sum();
    assert_eq!(arrived as u64, complete, "and arrives");
}
