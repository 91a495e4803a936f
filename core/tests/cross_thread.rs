//! A span's records may come from different threads (an async task moves
//! between worker threads), so from different rings: opened on one thread,
//! given a field on a second, closed on a third. Every such span still
//! arrives whole, with its field.

use std::sync::mpsc;
use std::time::Duration;

use xray_emitter::{Emitter, Key, Kind, SegmentId, TraceId, Value};
use xray_testkit::spans::{attr, close, open_top};
use xray_testkit::{Daemon, entities};

#[test]
fn spans_handed_between_threads_arrive_whole() {
    let daemon = Daemon::start();
    // Rings and a span table large enough that neither fills even when a
    // debug build's sender falls behind: this is about order, not capacity.
    let (e, _guard) = Emitter::builder()
        .daemon(daemon.addr())
        .queue_capacity(1 << 16)
        .open_spans(1 << 14)
        .report_errors(false)
        .start()
        .unwrap();
    let trace = TraceId::new();
    let facade = SegmentId::random();
    let n = 3_000u64;
    // Bounded hand-offs: at most a few hundred spans in flight, as with a
    // bounded number of tasks.
    let (to_b, at_b) = mpsc::sync_channel::<(SegmentId, u64)>(128);
    let (to_c, at_c) = mpsc::sync_channel::<SegmentId>(128);
    let (ea, eb, ec) = (e.clone(), e.clone(), e.clone());
    let a = std::thread::spawn(move || {
        for i in 0..n {
            let id = SegmentId::random();
            assert!(open_top(&ea, id, trace, facade, "moved", Kind::Local));
            to_b.send((id, i)).unwrap();
        }
    });
    let b = std::thread::spawn(move || {
        for (id, i) in at_b {
            assert!(attr(&eb, id, Key::Annotation("index"), Value::U64(i)));
            assert!(eb.push_str(
                id,
                Key::Metadata("where"),
                "recorded on another thread than the open"
            ));
            to_c.send(id).unwrap();
        }
    });
    let c = std::thread::spawn(move || {
        for id in at_c {
            assert!(close(&ec, id));
        }
    });
    a.join().unwrap();
    b.join().unwrap();
    c.join().unwrap();
    assert!(e.flush(Duration::from_secs(5)).complete);
    let docs = daemon.documents_with_spans(n as usize, Duration::from_secs(5));
    let all = entities(&docs);
    assert_eq!(all.len() as u64, n);
    let mut indexes: Vec<u64> = all
        .iter()
        .map(|s| s["annotations"]["index"].as_u64().expect("field present"))
        .collect();
    indexes.sort();
    assert_eq!(indexes, (0..n).collect::<Vec<_>>());
    assert!(all.iter().all(|s| {
        s["metadata"]["default"]["where"]
            .as_str()
            .unwrap()
            .starts_with("recorded")
    }));
    let s = e.stats();
    assert_eq!(s.records_orphaned, 0, "{s:?}");
    assert_eq!(s.records_dropped, 0);
}

/// Thousands of closes read in one pass, before the ring holding their
/// spans' opens and fields (a sender that fell behind, then reads the
/// closing thread's ring first): every close waits for the opens, however
/// many there are, and every span arrives complete with its field.
#[test]
fn more_closes_in_one_pass_than_ever_held_before_all_wait_for_their_opens() {
    let daemon = Daemon::start();
    let (gate, release) = xray_testkit::Gate::new(xray_testkit::socket(daemon.addr()));
    let (e, _guard) = Emitter::builder()
        .queue_capacity(1 << 15)
        .open_spans(1 << 14)
        .report_errors(false)
        .start_with(move || gate)
        .unwrap();
    let (trace, facade) = (TraceId::new(), SegmentId::random());
    let n = 6_000usize;
    // The closing thread registers its ring first.
    let (to_closer, at_closer) = mpsc::channel::<SegmentId>();
    let ec = e.clone();
    let closer = std::thread::spawn(move || {
        let warm = SegmentId::random();
        assert!(open_top(&ec, warm, trace, facade, "warm", Kind::Local) && close(&ec, warm));
        for id in at_closer {
            assert!(close(&ec, id));
        }
    });
    // The warm span's datagram holds the sender in its transport.
    std::thread::sleep(Duration::from_millis(50));
    for _ in 0..n {
        let id = SegmentId::random();
        assert!(open_top(&e, id, trace, facade, "late_open", Kind::Local));
        assert!(attr(&e, id, Key::Annotation("n"), Value::U64(1)));
        to_closer.send(id).unwrap();
    }
    drop(to_closer);
    closer.join().unwrap();
    release.release();
    assert!(e.flush(Duration::from_secs(10)).complete);
    let docs = daemon.documents_with_spans(n + 1, Duration::from_secs(10));
    let all = entities(&docs);
    let s = e.stats();
    assert_eq!(s.records_orphaned, 0, "{s:?}");
    assert_eq!(s.spans_in_progress, 0, "{s:?}");
    assert_eq!(s.spans_sent, n as u64 + 1, "{s:?}");
    assert_eq!(
        all.iter().filter(|e| e["annotations"]["n"] == 1).count(),
        n,
        "every span with its field"
    );
}
