//! OTLP over UDP with Application Signals' unsampled spans: a `Sampled=0`
//! trace goes out in `T1U` datagrams (SDK-free here: the handler's spans),
//! a sampled one in `T1S`; without the switch an unsampled trace sends
//! nothing, as in X-Ray.

use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::{Format, XRaySubscriber};
use xray_testkit::Daemon;
use xray_testkit::otlp::{decode_any, hex, spans};

fn requests(unsampled: bool) -> Vec<(bool, Vec<(String, String)>)> {
    let daemon = Daemon::start();
    let layer = XRaySubscriber::builder()
        .daemon(daemon.addr())
        .lambda(false)
        .format(Format::Otlp)
        .otlp_unsampled(unsampled)
        .centralized_sampling(false)
        .build()
        .unwrap();
    let handle = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for header in [
            "Root=1-6720f3a0-aaaaaaaaaaaaaaaaaaaaaaaa;Sampled=0",
            "Root=1-6720f3a0-bbbbbbbbbbbbbbbbbbbbbbbb;Sampled=1",
        ] {
            let _root = tracing::info_span!("request", xray.trace_header = header).entered();
            let _child = tracing::info_span!("work").entered();
        }
    });
    assert!(handle.flush(Duration::from_secs(2)).complete);
    std::thread::sleep(Duration::from_millis(50));
    daemon
        .received()
        .iter()
        .map(|d| {
            let (sampled, request) = decode_any(d);
            let names = spans(&[request])
                .iter()
                .map(|s| (s.name.clone(), hex(&s.trace_id)))
                .collect();
            (sampled, names)
        })
        .collect()
}

#[test]
fn unsampled_traces_go_out_as_t1u_when_switched_on() {
    let mut on = requests(true);
    on.sort();
    assert_eq!(on.len(), 2, "{on:?}");
    let (unsampled, sampled) = (&on[0], &on[1]);
    assert!(!unsampled.0 && sampled.0);
    assert!(
        unsampled
            .1
            .iter()
            .all(|(_, t)| t == "6720f3a0aaaaaaaaaaaaaaaaaaaaaaaa")
    );
    assert!(
        sampled
            .1
            .iter()
            .all(|(_, t)| t == "6720f3a0bbbbbbbbbbbbbbbbbbbbbbbb")
    );
    assert_eq!(unsampled.1.len(), 2);
    assert_eq!(sampled.1.len(), 2);

    let off = requests(false);
    assert_eq!(off.len(), 1, "{off:?}");
    assert!(off[0].0);
    assert!(
        off[0]
            .1
            .iter()
            .all(|(_, t)| t == "6720f3a0bbbbbbbbbbbbbbbbbbbbbbbb")
    );
}
