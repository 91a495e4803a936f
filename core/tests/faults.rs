//! What goes wrong around the emitter: a daemon host that does not resolve,
//! a socket whose send buffer stays full, a transport that panics, a program
//! that exits with its guard. Producers never block, errors are counted, the
//! sender recovers, and the guard's final flush arrives within its bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use xray_emitter::{DaemonAddress, Emitter, Kind, SegmentId, TraceId};
use xray_testkit::spans::{close, open_top};
use xray_testkit::{Daemon, Failing, PanicsOnce, count_spans, socket};

fn spans(e: &Emitter, n: usize) -> usize {
    let (trace, facade) = (TraceId::new(), SegmentId::random());
    let mut pushed = 0;
    for _ in 0..n {
        let id = SegmentId::random();
        if open_top(e, id, trace, facade, "work", Kind::Local) & close(e, id) {
            pushed += 1;
        }
    }
    pushed
}

#[test]
fn a_host_that_does_not_resolve_is_counted_and_the_program_runs_on() {
    let address = DaemonAddress::parse("no-such-daemon.invalid:2000").unwrap();
    let (e, _guard) = Emitter::builder()
        .daemon_address(&address)
        .report_errors(false)
        .start()
        .unwrap();
    assert_eq!(spans(&e, 100), 100, "producers are not held up");
    assert!(e.flush(Duration::from_secs(10)).complete);
    let s = e.stats();
    assert!(s.send_errors > 0, "{s:?}");
    assert_eq!(s.documents_sent, 0);
    assert_eq!(
        s.spans_lost, 100,
        "the spans of refused datagrams are counted"
    );
}

#[test]
fn a_full_send_buffer_costs_producers_nothing_and_the_sender_recovers() {
    let daemon = Daemon::start();
    // A send buffer that stays full: each send waits the socket's send
    // timeout, then fails, 20 times over.
    let failing = Arc::new(AtomicUsize::new(20));
    let full = Failing {
        failing: failing.clone(),
        delay: Duration::from_millis(20),
        inner: socket(daemon.addr()),
    };
    let (e, _guard) = Emitter::builder()
        .report_errors(false)
        .start_with(move || full)
        .unwrap();
    let mut pushed = 0;
    for _ in 0..20 {
        pushed += spans(&e, 50);
        let _ = e.flush(Duration::from_secs(2));
    }
    assert_eq!(pushed, 1000);
    let s = e.stats();
    assert!(s.send_errors > 0, "{s:?}");
    // Recovered: what is sent now arrives.
    while failing.load(Ordering::Relaxed) > 0 {
        spans(&e, 1);
        let _ = e.flush(Duration::from_secs(2));
    }
    daemon.take();
    assert_eq!(spans(&e, 10), 10);
    assert!(e.flush(Duration::from_secs(2)).complete);
    daemon.wait_until(Duration::from_secs(2), |d| {
        d.iter()
            .map(|d| count_spans(&xray_testkit::check(d)))
            .sum::<usize>()
            >= 10
    });
    let s = e.stats();
    assert_eq!(
        s.spans_sent + s.spans_lost,
        s.records_received / 2,
        "every span is sent or counted lost: {s:?}"
    );
}

#[test]
fn the_sender_survives_a_panic() {
    let daemon = Daemon::start();
    let panicked = Arc::new(AtomicBool::new(false));
    let buggy = PanicsOnce {
        panicked: panicked.clone(),
        inner: socket(daemon.addr()),
    };
    let (e, _guard) = Emitter::builder().start_with(move || buggy).unwrap();
    spans(&e, 5);
    let _ = e.flush(Duration::from_secs(2));
    assert!(panicked.load(Ordering::Relaxed));
    spans(&e, 5);
    assert!(
        e.flush(Duration::from_secs(2)).complete,
        "the sender is still there"
    );
    daemon.wait_until(Duration::from_secs(2), |d| !d.is_empty());
    let s = e.stats();
    assert!(s.spans_lost >= 1, "what the panic cost is counted: {s:?}");
    assert_eq!(s.spans_sent + s.spans_lost, 10, "{s:?}");
}

const CHILD: &str = "XRAY_EMITTER_EXIT_CHILD";

/// Run as a child process by the test below: emits and exits with the guard.
#[test]
fn exit_child() {
    let Ok(addr) = std::env::var(CHILD) else {
        return;
    };
    let (e, guard) = Emitter::builder()
        .daemon(addr.parse().unwrap())
        .guard_timeout(Duration::from_secs(2))
        .start()
        .unwrap();
    spans(&e, 500);
    drop(e);
    drop(guard);
    std::process::exit(0);
}

#[test]
fn exiting_with_the_guard_flushes_within_its_bound() {
    let rx = Daemon::polled();
    let start = Instant::now();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "exit_child", "--nocapture"])
        .env(CHILD, rx.addr().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(start.elapsed() < Duration::from_secs(10), "bounded");
    let spans: usize = (rx.take().iter())
        .map(|d| count_spans(&xray_testkit::check(d)))
        .sum();
    assert_eq!(
        spans, 500,
        "everything was flushed before the process ended"
    );
}
