//! Load: at a nominal 50,000 spans a second (far above any one Lambda
//! sandbox), nothing is dropped and every span arrives.

use std::time::{Duration, Instant};

use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::XRaySubscriber;
use xray_testkit::Daemon;
use xray_testkit::load::{invocation, work};

#[test]
fn at_fifty_thousand_spans_a_second_nothing_is_dropped_and_all_arrive() {
    let receiver = Daemon::counting();
    let layer = XRaySubscriber::builder()
        .daemon(receiver.addr())
        .lambda(true)
        .report_errors(false)
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut produced = 0;
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        // 100 invocations of 1,000 spans, each millisecond's 50 spans at most.
        let start = Instant::now();
        for i in 0..100u64 {
            let inv = invocation(1_000_000 + i, true);
            let _in = inv.enter();
            for _ in 0..20 {
                let due = start + Duration::from_micros(produced * 20);
                while Instant::now() < due {
                    std::thread::sleep(Duration::from_micros(200));
                }
                produced += work(36);
            }
        }
    });
    let _ = handle.flush(Duration::from_secs(5));
    receiver.spans_within(produced, Duration::from_secs(10));
    let s = handle.stats();
    assert_eq!(s.records_dropped, 0, "{s:?}");
    assert_eq!(s.spans_sent, produced, "{s:?}");
    assert_eq!(receiver.spans(), produced, "every span arrived");
}
