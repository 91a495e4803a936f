//! No allocation per span on the caller's thread in steady state: span
//! creation, fields, enter, exit, close, events, inside a sampled Lambda
//! invocation — counted exactly with a counting global allocator.
//!
//! One test per binary, so no other test thread allocates meanwhile.

use std::time::Duration;

use tracing::{info, info_span};
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::XRaySubscriber;

#[global_allocator]
static GLOBAL: xray_testkit::Counting = xray_testkit::Counting;

fn handler_work(i: u64) {
    let order = info_span!("handle_order", annotation.order_id = i, customer = "alice");
    let _o = order.enter();
    for step in 0..3u64 {
        let s = info_span!("step", annotation.step = step, ok = true);
        let _s = s.enter();
        info!(step, "an ordinary log event, ignored by the layer");
    }
    order.record("customer", "bob");
}

#[test]
fn spans_allocate_nothing_on_the_callers_thread() {
    let rx = xray_testkit::Daemon::counting();
    let layer = XRaySubscriber::builder()
        .daemon(rx.addr())
        .lambda(true)
        .report_errors(false)
        .build()
        .unwrap();
    let handle = layer.handle();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let invocation = info_span!(target: "lambda_runtime::layers::trace", "Lambda runtime invoke", requestId = "r", xrayTraceId = header);
        let _i = invocation.enter();
        for i in 0..2_000 {
            handler_work(i);
            if i % 200 == 0 {
                let _ = handle.flush(Duration::from_secs(2));
            }
        }
        let _ = handle.flush(Duration::from_secs(2));
        let before = xray_testkit::allocations_here();
        let spans = 4 * 5_000;
        for i in 0..5_000 {
            handler_work(i);
            if i % 200 == 0 {
                let _ = handle.flush(Duration::from_secs(2));
            }
        }
        let allocations = xray_testkit::allocations_here() - before;
        assert_eq!(
            allocations, 0,
            "allocations on the caller's thread for {spans} spans"
        );
    });
    assert!(handle.flush(Duration::from_secs(5)).complete);
    let s = handle.stats();
    assert_eq!(s.records_dropped, 0);
    assert_eq!(s.spans_sent, 4 * 7_000, "{s:?}");
}
