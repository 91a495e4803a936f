//! After `flush` returns, every record enqueued before it has been handed to
//! the socket: the datagrams are already in the receiver's queue.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use xray_emitter::{Emitter, Key, Kind, SegmentId, TraceId};
use xray_testkit::spans::{close, open, open_top};
use xray_testkit::{Daemon, check, walk};

#[test]
fn flush_returns_after_everything_enqueued_before_it_was_sent() {
    // Read when asked: what is in the socket the moment flush returns.
    let rx = Daemon::polled();
    let (e, _guard) = Emitter::builder()
        .daemon(rx.addr())
        .max_idle(Duration::from_millis(50))
        .report_errors(false)
        .start()
        .unwrap();
    let trace = TraceId::new();
    let facade = SegmentId::random();
    for round in 0..50 {
        let mut expected = HashSet::new();
        for i in 0..(round * 3 + 1) {
            let id = SegmentId::random();
            open_top(&e, id, trace, facade, "unit", Kind::Local);
            if i % 4 == 0 {
                let kid = SegmentId::random();
                open(&e, kid, trace, Some(id), "inner", Kind::Local);
                e.push_str(kid, Key::Metadata("text"), &"y".repeat(i * 7));
                close(&e, kid);
                expected.insert(kid.to_string());
            }
            close(&e, id);
            expected.insert(id.to_string());
        }
        let flushed = e.flush(Duration::from_secs(5));
        assert!(flushed.complete, "round {round}: {flushed:?}");
        let mut seen = HashSet::new();
        for d in rx.take() {
            walk(&check(&d), &mut |s| {
                seen.insert(s["id"].as_str().unwrap().to_string());
            });
        }
        assert_eq!(seen, expected, "round {round}");
    }
    assert_eq!(e.stats().records_dropped, 0);
}

#[test]
fn flush_with_a_dead_sender_returns_at_once() {
    let rx = Daemon::start();
    let (e, guard) = Emitter::builder().daemon(rx.addr()).start().unwrap();
    drop(guard);
    let start = std::time::Instant::now();
    let f = e.flush(Duration::from_secs(5));
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(f.complete);
    assert!(!open(
        &e,
        SegmentId::random(),
        TraceId::new(),
        None,
        "late",
        Kind::Local
    ));
    assert_eq!(
        e.stats().records_dropped,
        1,
        "a push after shutdown is a counted drop"
    );
}

#[test]
fn a_push_after_shutdown_from_a_thread_with_a_ring_is_counted() {
    let rx = Daemon::start();
    let (e, guard) = Emitter::builder().daemon(rx.addr()).start().unwrap();
    let id = SegmentId::random();
    assert!(open_top(
        &e,
        id,
        TraceId::new(),
        SegmentId::random(),
        "early",
        Kind::Local
    ));
    assert!(close(&e, id));
    drop(guard);
    assert!(!open(
        &e,
        SegmentId::random(),
        TraceId::new(),
        None,
        "late",
        Kind::Local
    ));
    let s = e.stats();
    assert_eq!(s.records_dropped, 1, "{s:?}");
    assert_eq!(s.records_received, 2, "the open and the close: {s:?}");
}

#[test]
fn a_flush_returns_while_producers_never_let_the_rings_run_dry() {
    let rx = Daemon::start();
    let (e, _guard) = Emitter::builder()
        .daemon(rx.addr())
        .report_errors(false)
        .start()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..2)
        .map(|_| {
            let (e, stop) = (e.clone(), stop.clone());
            std::thread::spawn(move || {
                let (trace, facade) = (TraceId::new(), SegmentId::random());
                while !stop.load(Ordering::Relaxed) {
                    let id = SegmentId::random();
                    open_top(&e, id, trace, facade, "busy", Kind::Local);
                    close(&e, id);
                }
            })
        })
        .collect();
    // A sender that only stopped for an empty pass would never get here in time.
    let flushed = e.flush(Duration::from_secs(20));
    stop.store(true, Ordering::Relaxed);
    for p in producers {
        p.join().unwrap();
    }
    assert!(flushed.complete, "{flushed:?}");
    assert_eq!(e.stats().flush_timeouts, 0);
}

/// Producers that go on pushing while the emitter shuts down: a push that
/// lands after the sender's last pass is counted as dropped, so every push
/// is received or dropped, whatever the timing.
#[test]
fn every_push_racing_a_shutdown_is_received_or_counted_dropped() {
    for _ in 0..4 {
        let daemon = xray_testkit::Daemon::start();
        let (e, guard) = xray_testkit::spans::emitter(&daemon);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let producers: Vec<_> = (0..3)
            .map(|_| {
                let (e, stop) = (e.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut attempts = 0u64;
                    let mut after = 0;
                    let (trace, facade) = (TraceId::new(), SegmentId::random());
                    while after < 2_000 {
                        let id = SegmentId::random();
                        open_top(&e, id, trace, facade, "racing", Kind::Local);
                        close(&e, id);
                        attempts += 2;
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            after += 1;
                        }
                    }
                    attempts
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(2));
        drop(guard);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let attempts: u64 = producers.into_iter().map(|p| p.join().unwrap()).sum();
        // The guard's bound may have passed with the sender still busy: wait for it.
        let _ = e.shutdown(Duration::from_secs(10));
        let s = e.stats();
        assert_eq!(s.records_received + s.records_dropped, attempts, "{s:?}");
    }
}
