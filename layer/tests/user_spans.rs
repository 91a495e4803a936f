//! Spans of the user's own inside a sampled invocation become subsegments
//! nested as the spans were; fields follow the documented convention; an
//! ERROR event marks its span as a fault with the message as the cause.

use std::time::Duration;

use tracing::{error, info_span};
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::{Builder, XRaySubscriber};
use xray_testkit::{Daemon, count_spans};

const HEADER: &str =
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1";

/// A layer as in a Lambda function, sending to `daemon`.
fn in_lambda(daemon: &Daemon) -> Builder {
    XRaySubscriber::builder().daemon(daemon.addr()).lambda(true)
}

fn invocation(header: &str) -> tracing::Span {
    info_span!(target: "lambda_runtime::layers::trace", "Lambda runtime invoke", requestId = "req-1", xrayTraceId = header)
}

#[test]
fn user_spans_nest_under_the_function_segment() {
    let (docs, _) = recorded(2, || {
        let outer = info_span!(
            "handle_order",
            annotation.order_id = 42u64,
            customer = "alice",
            http.status_code = 404u64
        );
        let _o = outer.enter();
        {
            let inner = info_span!("validate", annotation.valid = false);
            let _i = inner.enter();
            error!(error = "card declined", "validation failed");
        }
        outer.record("customer", "bob");
    });
    assert_eq!(docs.len(), 1, "{docs:?}");
    let d = &docs[0];
    assert_eq!(count_spans(d), 2);
    assert_eq!(d["type"], "subsegment");
    assert_eq!(d["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
    assert_eq!(d["parent_id"], "53995c3f42cd8ad8");
    assert_eq!(d["name"], "handle_order");
    assert_eq!(d["annotations"]["order_id"], 42);
    assert_eq!(d["metadata"]["default"]["customer"], "bob");
    assert_eq!(d["http"]["response"]["status"], 404);
    assert_eq!(d["error"], true);
    let inner = &d["subsegments"][0];
    assert_eq!(inner["name"], "validate");
    assert_eq!(inner["annotations"]["valid"], false);
    assert_eq!(inner["fault"], true);
    assert_eq!(inner["cause"]["exceptions"][0]["message"], "card declined");
}

#[test]
fn unsampled_invocations_send_nothing_and_count() {
    let daemon = Daemon::start();
    let layer = in_lambda(&daemon).build().unwrap();
    let handle = layer.handle();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        // Before any invocation (the init phase): counted, not sent.
        drop(info_span!("init_work").entered());
        for header in [
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=?",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
        ] {
            let inv = invocation(header);
            let _g = inv.enter();
            let a = info_span!("a");
            let _a = a.enter();
            let _b = info_span!("b").entered();
        }
    });
    let _ = handle.flush(Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(daemon.count(), 0);
    let s = handle.stats();
    assert_eq!(s.spans_unsampled, 6);
    assert_eq!(s.spans_untraced, 1);
}

#[test]
fn spans_beyond_what_the_layer_follows_are_counted_and_the_others_arrive() {
    const N: u64 = 400;
    let daemon = Daemon::start();
    let layer = in_lambda(&daemon).open_spans(16).build().unwrap();
    let handle = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let inv = invocation(HEADER);
        let _g = inv.enter();
        let held: Vec<_> = (0..N).map(|i| info_span!("held", i)).collect();
        drop(held);
    });
    assert!(handle.flush(Duration::from_secs(5)).complete);
    let s = handle.stats();
    assert!(s.spans_dropped > 0, "more open than followed: {s:?}");
    assert!(
        s.spans_evicted > 0,
        "more open than the sender keeps: {s:?}"
    );
    assert_eq!(
        s.spans_sent + s.spans_in_progress + s.spans_dropped,
        N,
        "each span sent whole, reported in progress, or counted as dropped: {s:?}"
    );
    let docs = daemon.documents_with_spans(s.spans_sent as usize, Duration::from_secs(2));
    let arrived: usize = docs.iter().map(count_spans).sum();
    assert_eq!(arrived as u64, s.spans_sent);
}

/// Runs `f` in a sampled invocation; returns the documents of `spans` spans
/// and how many records the sender received.
fn recorded(spans: usize, f: impl Fn()) -> (Vec<serde_json::Value>, u64) {
    let daemon = Daemon::start();
    let layer = in_lambda(&daemon).build().unwrap();
    let handle = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let inv = invocation(HEADER);
        let _g = inv.enter();
        f();
    });
    let docs = daemon.documents_with_spans(spans, Duration::from_secs(2));
    assert!(handle.flush(Duration::from_secs(2)).complete);
    let stats = handle.stats();
    assert_eq!(stats.records_dropped, 0, "{stats:?}");
    (docs, stats.records_received)
}

#[test]
fn plain_fields_of_every_kind_arrive_as_recorded_two_small_ones_to_a_record() {
    let (_, bare) = recorded(1, || {
        let _s = info_span!("bare").entered();
    });
    let (docs, records) = recorded(1, || {
        let _s = info_span!(
            "plain",
            count = 7u64,
            delta = -3i64,
            ratio = 0.5f64,
            ok = true,
            word = "ok",
            eight = "12345678",
            nine = "123456789",
            accents = "é中",
            empty = "",
            debug = ?Some(1),
            display = %"shown"
        )
        .entered();
    });
    let m = &docs[0]["metadata"]["default"];
    assert_eq!(m["count"], 7);
    assert_eq!(m["delta"], -3);
    assert_eq!(m["ratio"], 0.5);
    assert_eq!(m["ok"], true);
    assert_eq!(m["word"], "ok");
    assert_eq!(m["eight"], "12345678");
    assert_eq!(m["nine"], "123456789");
    assert_eq!(m["accents"], "é中");
    assert_eq!(m["empty"], "");
    assert_eq!(m["debug"], "Some(1)");
    assert_eq!(m["display"], "shown");
    // Ten fields of at most eight bytes share five records; the nine-byte
    // string takes one of its own.
    assert_eq!(records - bare, 6, "records for the fields");

    let (docs, records) = recorded(1, || {
        let _s = info_span!("odd", a = 1u64, b = 2u64, c = "three").entered();
    });
    let m = &docs[0]["metadata"]["default"];
    assert_eq!((m["a"].clone(), m["b"].clone()), (1.into(), 2.into()));
    assert_eq!(m["c"], "three");
    assert_eq!(records - bare, 2, "a pair and one alone");

    // A field named twice: the later value wins, small or not.
    let (docs, _) = recorded(1, || {
        let _s = info_span!(
            "twice",
            k = 1u64,
            k = "a value too long to pair",
            j = "another long value",
            j = 2u64
        )
        .entered();
    });
    let m = &docs[0]["metadata"]["default"];
    assert_eq!(m["k"], "a value too long to pair");
    assert_eq!(m["j"], 2);
}
