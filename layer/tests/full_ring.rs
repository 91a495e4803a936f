//! A span whose open record was queued but whose close record found its
//! ring full, or was refused as the layer shut down, is counted once: by
//! the sender, which never sees it complete (lost when it shuts down), not
//! also by the layer as dropped.

use std::time::Duration;

use tracing::info_span;
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::XRaySubscriber;
use xray_testkit::{Discard, Gate};

#[test]
fn a_close_that_finds_its_ring_full_is_counted_once() {
    let (gate, release) = Gate::new(Discard::default());
    let layer = XRaySubscriber::builder()
        .lambda(false)
        .sampling_rate(1.0)
        .centralized_sampling(false)
        .report_errors(false)
        .queue_capacity(64)
        .build_with(move || gate)
        .unwrap();
    let handle = layer.handle();
    let mut created = 0u64;
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        // A complete segment: the sender reads it and waits in its send
        // (if it has not by the end of the pause, it reads some of what
        // follows too; the ring still fills, and the count holds either way).
        drop(info_span!("first"));
        created += 1;
        std::thread::sleep(Duration::from_millis(100));
        // Opened while the ring has room; the ring is then filled with
        // other spans' opens, until an open is refused.
        let kept = info_span!("kept");
        created += 1;
        let mut held = Vec::new();
        while handle.stats().spans_dropped == 0 {
            held.push(info_span!("filler"));
            created += 1;
            assert!(held.len() < 10_000, "the ring never filled");
        }
        // Its close finds the ring full; so do the fillers'.
        drop(kept);
        drop(held);
    });
    release.release();
    assert!(handle.shutdown(Duration::from_secs(10)).complete);
    let s = handle.stats();
    assert!(
        s.spans_lost > 0,
        "`kept` never closed for the sender: {s:?}"
    );
    assert_eq!(
        s.spans_sent + s.spans_lost + s.spans_dropped + s.spans_unsampled + s.spans_untraced,
        created,
        "every span counted once: {s:?}"
    );
}

/// Threads making spans while the layer shuts down: whichever side of the
/// sender's last pass an open or a close lands on, and whether its push is
/// refused, each span is counted once.
#[test]
fn spans_racing_a_shutdown_are_each_counted_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    for round in 0..20 {
        let layer = XRaySubscriber::builder()
            .lambda(false)
            .sampling_rate(1.0)
            .centralized_sampling(false)
            .report_errors(false)
            .queue_capacity(256)
            .build_with(Discard::default)
            .unwrap();
        let handle = layer.handle();
        let dispatch = tracing_core::Dispatch::new(tracing_subscriber::registry().with(layer));
        let (stop, created) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (dispatch, stop, created) = (dispatch.clone(), stop.clone(), created.clone());
                std::thread::spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        while !stop.load(Ordering::Relaxed) {
                            let root = info_span!("request", n = 1u64);
                            let child = info_span!(parent: &root, "step");
                            created.fetch_add(2, Ordering::Relaxed);
                            drop(child);
                            drop(root);
                        }
                    })
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(5 + round % 7));
        assert!(handle.shutdown(Duration::from_secs(5)).complete);
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        drop(dispatch);
        let s = handle.stats();
        assert_eq!(
            s.spans_sent + s.spans_lost + s.spans_dropped + s.spans_unsampled + s.spans_untraced,
            created.load(Ordering::Relaxed),
            "round {round}: every span counted once: {s:?}"
        );
    }
}
