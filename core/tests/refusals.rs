//! A daemon that is not listening refuses each datagram with an ICMP port
//! unreachable: those spans are counted lost, not sent; when the daemon
//! comes back on the same port, every later span arrives and is counted sent.

use std::time::Duration;

use xray_emitter::{Emitter, Kind, SegmentId, TraceId};
use xray_testkit::spans::{close, open_top};
use xray_testkit::{Daemon, count_spans};

fn spans(e: &Emitter, n: usize) -> usize {
    let (trace, facade) = (TraceId::new(), SegmentId::random());
    (0..n)
        .filter(|_| {
            let id = SegmentId::random();
            open_top(e, id, trace, facade, "work", Kind::Local) & close(e, id)
        })
        .count()
}

#[test]
fn refused_spans_are_counted_lost_and_a_returning_daemon_gets_every_later_one() {
    let port = xray_testkit::closed_port();
    let (e, _guard) = Emitter::builder()
        .daemon(port)
        .report_errors(false)
        .start()
        .unwrap();
    let mut pushed = 0;
    for _ in 0..10 {
        pushed += spans(&e, 100);
        assert!(e.flush(Duration::from_secs(5)).complete);
    }
    assert_eq!(pushed, 1000);
    let down = e.stats();
    eprintln!("no daemon, 1,000 spans: {down:?}");
    assert!(
        down.spans_sent <= 50,
        "at most 5 % counted sent with no daemon: {down:?}"
    );
    assert!(
        down.spans_lost + down.spans_dropped >= 900,
        "at least 90 % counted lost or dropped: {down:?}"
    );
    assert_eq!(
        down.spans_sent + down.spans_lost + down.spans_dropped,
        1000,
        "{down:?}"
    );

    let Ok(daemon) = Daemon::bind(port) else {
        eprintln!("port {port} was taken by another program meanwhile: recovery not checked");
        return;
    };
    assert_eq!(spans(&e, 100), 100);
    assert!(e.flush(Duration::from_secs(5)).complete);
    daemon.wait_until(Duration::from_secs(5), |d| {
        d.iter()
            .map(|d| count_spans(&xray_testkit::check(d)))
            .sum::<usize>()
            >= 100
    });
    let up = e.stats();
    assert_eq!(
        up.spans_sent - down.spans_sent,
        100,
        "every span after the daemon came back is counted sent: {up:?}"
    );
    assert_eq!(up.spans_lost, down.spans_lost, "{up:?}");
}
