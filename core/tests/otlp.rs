//! OTLP over UDP, read back with the official `opentelemetry-proto` types:
//! every datagram is the daemon header, `T1S` and a base64 request within
//! 64 KB; spans map as the OpenTelemetry X-Ray exporter reads them.

use std::time::Duration;

use xray_emitter::record::{FLAG_ERROR, FLAG_FAULT};
use xray_emitter::testing::DATAGRAM_MAX;
use xray_emitter::{
    Emitter, EmitterGuard, Format, HttpField, Key, Kind, Resource, SegmentId, TraceId, Value,
};
use xray_testkit::Daemon;
use xray_testkit::otlp::tonic::common::v1::any_value::Value as Any;
use xray_testkit::otlp::{attr, attr_list, attr_str, decode_datagram, hex, spans, trace_hex};
use xray_testkit::spans::{attr as set, close, open, open_top};

fn otlp_emitter(daemon: &Daemon) -> (Emitter, EmitterGuard) {
    let resource = Resource::new(
        &[
            ("service.name", "orders-fn"),
            ("cloud.provider", "aws"),
            ("cloud.platform", "aws_lambda"),
            ("faas.name", "orders-fn"),
        ],
        "tracing-xray",
        "0.1.0",
    );
    Emitter::builder()
        .daemon(daemon.addr())
        .format(Format::OtlpUdp(resource))
        .start()
        .unwrap()
}

#[test]
fn spans_map_as_the_xray_exporter_reads_them() {
    let daemon = Daemon::start();
    let (e, _guard) = otlp_emitter(&daemon);
    let trace = TraceId::new();
    let facade = SegmentId::random();
    let handler = SegmentId::random();
    let call = SegmentId::random();
    assert!(open_top(&e, handler, trace, facade, "handler", Kind::Local));
    e.push_str(handler, Key::Annotation("order"), "o-7");
    set(&e, handler, Key::Annotation("items"), Value::U64(3));
    e.push_str(handler, Key::Metadata("note"), "fresh");
    assert!(open(&e, call, trace, Some(handler), "DynamoDB", Kind::Aws));
    e.push_str(call, Key::Aws("operation"), "GetItem");
    e.push_str(call, Key::Aws("table_name"), "orders");
    e.push_str(call, Key::Aws("request_id"), "UBQNSO5AEM8T4FDA");
    e.push_json(
        call,
        Key::Aws("consumed_capacity"),
        r#"{"CapacityUnits":0.5}"#,
    );
    set(&e, call, Key::Http(HttpField::Status), Value::U64(500));
    set(&e, call, Key::Flags, Value::U64(FLAG_FAULT));
    set(&e, call, Key::Attempt, Value::U64(0));
    set(&e, call, Key::Attempt, Value::U64(0));
    e.push_str(
        call,
        Key::Exception { remote: true },
        "Internal server error",
    );
    e.push_str(call, Key::ExceptionType, "InternalServerError");
    assert!(close(&e, call));
    assert!(close(&e, handler));
    assert!(e.flush(Duration::from_secs(2)).complete);
    daemon.wait_until(Duration::from_secs(2), |d| !d.is_empty());
    let datagrams = daemon.received();
    let requests: Vec<_> = datagrams.iter().map(|d| decode_datagram(d)).collect();

    let resource = requests[0].resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(
        attr_str(&resource.attributes, "service.name"),
        Some("orders-fn")
    );
    assert_eq!(
        attr_str(&resource.attributes, "cloud.platform"),
        Some("aws_lambda")
    );
    let scope = requests[0].resource_spans[0].scope_spans[0]
        .scope
        .as_ref()
        .unwrap();
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("tracing-xray", "0.1.0")
    );

    let all = spans(&requests);
    assert_eq!(all.len(), 2);
    let h = all.iter().find(|s| s.name == "handler").unwrap();
    let c = all.iter().find(|s| s.name == "DynamoDB.GetItem").unwrap();
    assert_eq!(hex(&h.trace_id), trace_hex(&trace.to_string()));
    assert_eq!(hex(&h.span_id), handler.to_string());
    assert_eq!(
        hex(&h.parent_span_id),
        facade.to_string(),
        "the Lambda segment is the parent"
    );
    assert_eq!(hex(&c.parent_span_id), handler.to_string());
    assert_eq!(h.kind, 1, "internal");
    assert_eq!(c.kind, 3, "client");
    assert!(
        h.end_time_unix_nano >= c.end_time_unix_nano
            && c.start_time_unix_nano >= h.start_time_unix_nano
    );
    assert_eq!(attr_str(&h.attributes, "order"), Some("o-7"));
    assert_eq!(attr(&h.attributes, "items"), Some(&Any::IntValue(3)));
    assert_eq!(attr_str(&h.attributes, "note"), Some("fresh"));
    let mut listed = attr_list(&h.attributes, "aws.xray.annotations");
    listed.sort();
    assert_eq!(listed, ["items", "order"]);
    assert!(h.status.is_none() || h.status.as_ref().unwrap().code == 0);

    assert_eq!(attr_str(&c.attributes, "rpc.system"), Some("aws-api"));
    assert_eq!(attr_str(&c.attributes, "rpc.service"), Some("DynamoDB"));
    assert_eq!(attr_str(&c.attributes, "rpc.method"), Some("GetItem"));
    assert_eq!(
        attr_str(&c.attributes, "aws.request_id"),
        Some("UBQNSO5AEM8T4FDA")
    );
    assert_eq!(
        attr_list(&c.attributes, "aws.dynamodb.table_names"),
        ["orders"]
    );
    assert_eq!(
        attr_str(&c.attributes, "aws.consumed_capacity"),
        Some(r#"{"CapacityUnits":0.5}"#)
    );
    assert_eq!(
        attr(&c.attributes, "http.response.status_code"),
        Some(&Any::IntValue(500))
    );
    assert_eq!(attr(&c.attributes, "aws.retries"), Some(&Any::IntValue(1)));
    assert_eq!(c.status.as_ref().unwrap().code, 2, "error status");
    assert_eq!(c.events.len(), 1);
    let ex = &c.events[0];
    assert_eq!(ex.name, "exception");
    assert_eq!(
        attr_str(&ex.attributes, "exception.message"),
        Some("Internal server error")
    );
    assert_eq!(
        attr_str(&ex.attributes, "exception.type"),
        Some("InternalServerError")
    );
    assert_eq!(e.stats().spans_sent, 2);
}

#[test]
fn six_hundred_spans_split_into_datagrams_within_64_kb() {
    let daemon = Daemon::start();
    let (e, _guard) = otlp_emitter(&daemon);
    let trace = TraceId::new();
    let facade = SegmentId::random();
    let root = SegmentId::random();
    assert!(open_top(&e, root, trace, facade, "handler", Kind::Local));
    let mut ids = vec![root];
    let filler = "x".repeat(300);
    for i in 0..599 {
        let id = SegmentId::random();
        assert!(open(&e, id, trace, Some(root), "step", Kind::Local));
        set(&e, id, Key::Metadata("index"), Value::U64(i));
        e.push_str(id, Key::Metadata("filler"), &filler);
        assert!(close(&e, id));
        ids.push(id);
        if i % 100 == 0 {
            // Give the sender's ring room.
            let _ = e.flush(Duration::from_secs(2));
        }
    }
    assert!(close(&e, root));
    assert!(e.flush(Duration::from_secs(5)).complete);
    daemon.wait_until(Duration::from_secs(3), |d| {
        d.iter()
            .map(|d| spans(&[decode_datagram(d)]).len())
            .sum::<usize>()
            >= 600
    });
    let datagrams = daemon.received();
    assert!(
        datagrams.len() >= 2,
        "600 spans of ~400 bytes take several datagrams"
    );
    for d in &datagrams {
        assert!(d.len() <= DATAGRAM_MAX, "{} bytes", d.len());
    }
    let all = spans(
        &datagrams
            .iter()
            .map(|d| decode_datagram(d))
            .collect::<Vec<_>>(),
    );
    let mut seen: Vec<String> = all.iter().map(|s| hex(&s.span_id)).collect();
    seen.sort();
    let mut expected: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    expected.sort();
    assert_eq!(seen, expected, "every span once");
    let s = e.stats();
    assert_eq!((s.spans_sent, s.spans_lost), (600, 0));
    assert_eq!(s.documents_sent, datagrams.len() as u64);
}

#[test]
fn errors_without_a_fault_are_error_status_too() {
    let daemon = Daemon::start();
    let (e, _guard) = otlp_emitter(&daemon);
    let trace = TraceId::new();
    let seg = SegmentId::random();
    assert!(open(&e, seg, trace, None, "api", Kind::Segment));
    e.push_str(seg, Key::Http(HttpField::Method), "GET");
    e.push_str(
        seg,
        Key::Http(HttpField::Url),
        "https://example.com/orders/7",
    );
    set(&e, seg, Key::Http(HttpField::Status), Value::U64(404));
    set(&e, seg, Key::Flags, Value::U64(FLAG_ERROR));
    e.push_str(seg, Key::User, "u-42");
    assert!(close(&e, seg));
    assert!(e.flush(Duration::from_secs(2)).complete);
    daemon.wait_until(Duration::from_secs(2), |d| !d.is_empty());
    let all = spans(&[decode_datagram(&daemon.received()[0])]);
    let s = &all[0];
    assert_eq!(s.kind, 2, "a segment is a server span");
    assert!(s.parent_span_id.is_empty());
    assert_eq!(attr_str(&s.attributes, "http.request.method"), Some("GET"));
    assert_eq!(
        attr_str(&s.attributes, "url.full"),
        Some("https://example.com/orders/7")
    );
    assert_eq!(attr_str(&s.attributes, "enduser.id"), Some("u-42"));
    assert_eq!(s.status.as_ref().unwrap().code, 2);
}

/// Opens a sampled segment `api` of `trace` and an unsampled one `health`
/// of another trace; returns their ids.
fn kept_and_unsampled(e: &Emitter, trace: TraceId) -> (SegmentId, SegmentId) {
    let (kept, unsampled) = (SegmentId::random(), SegmentId::random());
    assert!(open(e, kept, trace, None, "api", Kind::Segment));
    assert!(open(
        e,
        unsampled,
        TraceId::new(),
        None,
        "health",
        Kind::Segment
    ));
    set(e, unsampled, Key::Unsampled, Value::Bool(true));
    (kept, unsampled)
}

#[test]
fn unsampled_spans_go_out_as_t1u_and_never_as_xray() {
    let daemon = Daemon::start();
    let (e, _guard) = otlp_emitter(&daemon);
    let trace = TraceId::new();
    let (kept, unsampled) = kept_and_unsampled(&e, trace);
    assert!(close(&e, kept));
    assert!(close(&e, unsampled));
    assert!(e.flush(Duration::from_secs(2)).complete);
    daemon.wait_until(Duration::from_secs(2), |d| d.len() >= 2);
    let mut by_flag: Vec<(bool, Vec<String>)> = daemon
        .received()
        .iter()
        .map(|d| {
            let (sampled, request) = xray_testkit::otlp::decode_any(d);
            (
                sampled,
                spans(&[request]).iter().map(|s| s.name.clone()).collect(),
            )
        })
        .collect();
    by_flag.sort();
    assert_eq!(
        by_flag,
        [
            (false, vec!["health".to_string()]),
            (true, vec!["api".to_string()])
        ]
    );

    // The same records as X-Ray documents: the unsampled span is not sent.
    let xray = Daemon::start();
    let (e, _guard) = xray_testkit::spans::emitter(&xray);
    let (kept, unsampled) = kept_and_unsampled(&e, trace);
    assert!(close(&e, unsampled));
    assert!(close(&e, kept));
    assert!(e.flush(Duration::from_secs(2)).complete);
    let docs = xray.documents_with_spans(1, Duration::from_secs(2));
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["name"], "api");
}
