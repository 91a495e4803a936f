//! Outside Lambda a root span starts a segment: a new trace (or the incoming
//! `X-Amzn-Trace-Id` given as the `xray.trace_header` field), the service
//! name, the default sampling rule; `trace_header` gives what to send on.

use std::time::Duration;

use tracing::info_span;
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::{Builder, XRaySubscriber};
use xray_testkit::{Daemon, count_spans};

fn run(builder: Builder, f: impl FnOnce()) -> (Daemon, tracing_xray::XRayHandle) {
    let daemon = Daemon::start();
    let layer = builder.daemon(daemon.addr()).lambda(false).build().unwrap();
    let handle = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    let _ = handle.flush(Duration::from_secs(2));
    (daemon, handle)
}

#[test]
fn a_root_span_is_a_segment_with_its_children() {
    let mut header = None;
    let (daemon, _) = run(
        XRaySubscriber::builder()
            .service_name("orders-api")
            .sampling_rate(1.0),
        || {
            let request = info_span!(
                "GET /orders/{id}",
                http.method = "GET",
                http.url = "https://api.example.com/orders/7",
                http.status_code = tracing::field::Empty
            );
            let _r = request.enter();
            {
                let db = info_span!("query", annotation.table = "orders");
                let _d = db.enter();
                header = tracing_xray::trace_header(&db);
            }
            request.record("http.status_code", 503u64);
        },
    );
    let docs = daemon.documents_with_spans(2, Duration::from_secs(2));
    assert_eq!(docs.len(), 1);
    let seg = &docs[0];
    assert!(seg.get("type").is_none() && seg.get("parent_id").is_none());
    assert_eq!(seg["name"], "orders-api");
    assert_eq!(seg["http"]["request"]["method"], "GET");
    assert_eq!(
        seg["http"]["request"]["url"],
        "https://api.example.com/orders/7"
    );
    assert_eq!(seg["http"]["response"]["status"], 503);
    assert_eq!(seg["fault"], true);
    let query = &seg["subsegments"][0];
    assert_eq!(query["name"], "query");
    let header = header.expect("the span is traced");
    assert_eq!(
        header.root.unwrap().to_string(),
        seg["trace_id"].as_str().unwrap()
    );
    assert_eq!(
        header.parent.unwrap().to_string(),
        query["id"].as_str().unwrap()
    );
    assert!(header.is_sampled());
}

#[test]
fn an_incoming_header_is_honoured() {
    let incoming = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1";
    let mut downstream = None;
    let (daemon, handle) = run(XRaySubscriber::builder().sampling_rate(0.0), || {
        {
            let span = info_span!("handle", xray.trace_header = incoming);
            let _s = span.enter();
            downstream = tracing_xray::trace_header(&span);
        }
        drop(
            info_span!(
                "not sampled",
                xray.trace_header = "Root=1-5759e988-bd862e3fe1be46a994272794;Sampled=0"
            )
            .entered(),
        );
    });
    let docs = daemon.documents_with_spans(1, Duration::from_secs(2));
    assert_eq!(docs.len(), 1);
    let seg = &docs[0];
    assert_eq!(seg["name"], "handle");
    assert_eq!(seg["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
    assert_eq!(seg["parent_id"], "53995c3f42cd8ad8");
    assert!(
        seg.get("metadata").is_none(),
        "the header field is not metadata"
    );
    let downstream = downstream.unwrap().encode();
    assert_eq!(
        downstream.as_str(),
        format!(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent={};Sampled=1;Lineage=a87bd80c:1",
            seg["id"].as_str().unwrap()
        )
    );
    assert_eq!(handle.stats().spans_unsampled, 1);
}

#[test]
fn the_default_rule_takes_the_first_each_second_then_the_rate() {
    let n = 200;
    let (daemon, handle) = run(XRaySubscriber::builder().sampling_rate(0.0), || {
        for _ in 0..n {
            drop(info_span!("request").entered());
        }
    });
    std::thread::sleep(Duration::from_millis(50));
    let sampled: usize = daemon
        .take()
        .iter()
        .map(|d| count_spans(&xray_testkit::check(d)))
        .sum();
    // At a rate of 0 only the reservoir samples: one per second, and the loop
    // may straddle a second boundary.
    assert!((1..=2).contains(&sampled), "{sampled}");
    assert_eq!(handle.stats().spans_unsampled as usize + sampled, n);
}

#[test]
fn the_opentelemetry_field_names_work_too() {
    let (daemon, _) = run(
        XRaySubscriber::builder()
            .service_name("orders-api")
            .sampling_rate(1.0),
        || {
            let request = info_span!(
                "request",
                http.request.method = "POST",
                url.full = "https://api.example.com/orders",
                http.response.status_code = tracing::field::Empty
            );
            let _r = request.enter();
            {
                let _a = info_span!("a", xray.name = "named by xray.name").entered();
            }
            {
                let _b = info_span!("b", otel.name = "named by otel.name").entered();
            }
            request.record("http.response.status_code", 429u64);
        },
    );
    let docs = daemon.documents_with_spans(3, Duration::from_secs(2));
    let seg = &docs[0];
    assert_eq!(seg["http"]["request"]["method"], "POST");
    assert_eq!(
        seg["http"]["request"]["url"],
        "https://api.example.com/orders"
    );
    assert_eq!(seg["http"]["response"]["status"], 429);
    assert_eq!(
        (seg["error"].clone(), seg["throttle"].clone()),
        (true.into(), true.into())
    );
    let names: Vec<&str> = (seg["subsegments"].as_array().unwrap().iter())
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["named by xray.name", "named by otel.name"]);
}

#[tracing::instrument(err)]
fn charge(card: &str) -> Result<u64, String> {
    Err(format!("card {card} declined"))
}

#[test]
fn instrument_err_marks_the_span_with_the_error() {
    let (daemon, _) = run(XRaySubscriber::builder().sampling_rate(1.0), || {
        let _ = charge("4242");
    });
    let docs = daemon.documents_with_spans(1, Duration::from_secs(2));
    let seg = &docs[0];
    assert_eq!(seg["name"], "charge");
    assert_eq!(seg["fault"], true);
    assert_eq!(
        seg["cause"]["exceptions"][0]["message"],
        "card 4242 declined"
    );
}

#[test]
fn an_incoming_header_recorded_with_debug_formatting_is_honoured() {
    let incoming =
        String::from("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1");
    let (daemon, _handle) = run(XRaySubscriber::builder().sampling_rate(0.0), || {
        drop(info_span!("handle", xray.trace_header = ?incoming).entered());
    });
    let docs = daemon.documents_with_spans(1, Duration::from_secs(2));
    assert_eq!(docs[0]["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
    assert_eq!(docs[0]["parent_id"], "53995c3f42cd8ad8");
}
