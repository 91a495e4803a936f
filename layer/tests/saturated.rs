//! When the layer's table of span states is full, a root it cannot follow
//! is counted dropped, and so is everything under it: its children never
//! start traces of their own.

use std::time::Duration;

use tracing::info_span;
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::XRaySubscriber;
use xray_testkit::{Daemon, walk};

#[test]
fn children_of_a_root_the_full_table_could_not_follow_start_no_trace() {
    let daemon = Daemon::start();
    let layer = XRaySubscriber::builder()
        .daemon(daemon.addr())
        .lambda(false)
        .sampling_rate(1.0)
        .open_spans(16)
        .build()
        .unwrap();
    let handle = layer.handle();
    let (roots, children) = (200, 3);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let mut held: Vec<_> = (0..roots).map(|_| info_span!("root")).collect();
        // The first ones were followed; the table was full for the last ones.
        // Closing the first frees room for what opens under the last.
        let last = held.split_off(150);
        drop(held);
        for root in &last {
            for _ in 0..children {
                drop(info_span!(parent: root, "child"));
            }
        }
    });
    assert!(handle.flush(Duration::from_secs(2)).complete);
    let docs: Vec<_> = daemon.documents();
    let s = handle.stats();
    assert!(s.spans_dropped > 0, "the table must have been full: {s:?}");
    let mut segments = 0;
    for d in &docs {
        walk(d, &mut |e| {
            if e.get("trace_id").is_some() && e.get("type").is_none() {
                segments += 1;
                assert_eq!(e["name"], "root", "only roots start traces: {e}");
            }
        });
    }
    assert!(segments > 0 && segments < roots, "{segments} segments");
    let counted =
        s.spans_sent + s.spans_lost + s.spans_dropped + s.spans_unsampled + s.spans_untraced;
    assert_eq!(
        counted,
        (200 + 50 * 3) as u64,
        "every span sent or counted, once: {s:?}"
    );
}
