//! A span handed to another thread (`.instrument(span)` on a spawned task)
//! keeps its trace, parent and children whichever ring the sender reads
//! first: every span arrives once, placed where it was opened.

use std::sync::mpsc;
use std::time::Duration;

use tracing::{Dispatch, info_span};
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::XRaySubscriber;
use xray_testkit::{Daemon, placed};

const TRACE: &str = "1-5759e988-bd862e3fe1be46a994272793";
const FUNCTION: &str = "53995c3f42cd8ad8";
const HEADER: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const CHILDREN: usize = 300;

/// Thread A's ring is registered before main's: A opens the invocation and
/// a span first. Then main opens `P` and hands it to A, which opens `M`
/// under it and, under `M`, 300 children with two fields each.
fn round(daemon: &Daemon) {
    let layer = XRaySubscriber::builder()
        .daemon(daemon.addr())
        .lambda(true)
        .build()
        .unwrap();
    let handle = layer.handle();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let (to_a, from_main) = mpsc::channel::<tracing::Span>();
    let (a_ready, main_waits) = mpsc::channel::<()>();
    let (a_done, main_done) = mpsc::channel::<()>();
    let (to_main, from_a) = mpsc::channel::<tracing::Span>();
    tracing::dispatcher::with_default(&dispatch, || {
        let a_dispatch = dispatch.clone();
        let a = std::thread::spawn(move || {
            tracing::dispatcher::with_default(&a_dispatch, || {
                // A's first span: its ring is the first the sender knows.
                let invocation = info_span!(target: "lambda_runtime::layers::trace",
                    "Lambda runtime invoke", requestId = "req-1", xrayTraceId = HEADER);
                drop(info_span!(parent: &invocation, "first_on_a"));
                to_main.send(invocation).unwrap();
                a_ready.send(()).unwrap();
                let p = from_main.recv().unwrap();
                let m = info_span!(parent: &p, "M");
                for i in 0..CHILDREN {
                    let child = info_span!(parent: &m, "child", index = i as u64, kind = "leaf");
                    drop(child);
                }
                drop(m);
                drop(p);
                a_done.send(()).unwrap();
            })
        });
        main_waits.recv().unwrap();
        let invocation = from_a.recv().unwrap();
        let p = info_span!(parent: &invocation, "P");
        to_a.send(p.clone()).unwrap();
        main_done.recv().unwrap();
        drop(p);
        a.join().unwrap();
        drop(invocation);
    });
    let expected = CHILDREN + 3;
    // The end of the invocation flushed: everything is in the socket.
    let _ = handle.shutdown(Duration::from_secs(1));
    let docs: Vec<_> = daemon.documents();
    let spans = placed(&docs);
    let stats = handle.stats();
    assert_eq!(spans.len(), expected, "every span once: {stats:?}");
    assert_eq!(stats.spans_lost, 0, "{stats:?}");
    assert_eq!(stats.spans_sent, expected as u64, "{stats:?}");
    assert!(spans.iter().all(|s| s.trace == TRACE), "one trace");
    let id_of = |name: &str| spans.iter().find(|s| s.name == name).unwrap().id.clone();
    let (p, m) = (id_of("P"), id_of("M"));
    for s in &spans {
        let parent = match s.name.as_str() {
            "P" | "first_on_a" => FUNCTION,
            "M" => &p,
            _ => &m,
        };
        assert_eq!(s.parent, parent, "{} placed under its parent", s.name);
    }
}

#[test]
fn a_span_handed_to_a_thread_whose_ring_is_read_first_keeps_its_whole_subtree() {
    let daemon = Daemon::start();
    for _ in 0..12 {
        round(&daemon);
    }
}
