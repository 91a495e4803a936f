//! Every datagram is the daemon header plus exactly one schema-valid document
//! of at most 64,512 bytes, and a span tree arrives nested as it was opened.

use std::time::Duration;

use serde_json::Value as Json;
use xray_emitter::record::{FLAG_ERROR, FLAG_THROTTLE};
use xray_emitter::{HttpField, Key, Kind, SegmentId, TraceId, Value};
use xray_testkit::spans::{attr, close, emitter, open, open_top};
use xray_testkit::{Daemon, count_spans, entities};

#[test]
fn aws_call_subsegment_has_every_part() {
    let daemon = Daemon::start();
    let (e, _guard) = emitter(&daemon);
    let trace = TraceId::new();
    let facade = SegmentId::random();
    let call = SegmentId::random();
    assert!(open_top(&e, call, trace, facade, "DynamoDB", Kind::Aws));
    e.push_str(call, Key::Aws("operation"), "GetItem");
    e.push_str(call, Key::Aws("region"), "eu-west-1");
    e.push_str(call, Key::Aws("table_name"), "scorekeep-user");
    e.push_str(
        call,
        Key::Aws("request_id"),
        "UBQNSO5AEM8T4FDA4RQDEB94OVTDRVV4K4HIRGVJF66Q9ASUAAJG",
    );
    attr(&e, call, Key::Aws("retries"), Value::U64(1));
    attr(&e, call, Key::Http(HttpField::Status), Value::U64(400));
    attr(&e, call, Key::Flags, Value::U64(FLAG_ERROR | FLAG_THROTTLE));
    e.push_str(
        call,
        Key::Exception { remote: true },
        "The level of configured provisioned throughput for the table was exceeded.",
    );
    e.push_str(
        call,
        Key::ExceptionType,
        "ProvisionedThroughputExceededException",
    );
    close(&e, call);
    assert!(e.flush(Duration::from_secs(2)).complete);
    let docs = daemon.documents_with_spans(1, Duration::from_secs(2));
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    assert_eq!(d["type"], "subsegment");
    assert_eq!(d["trace_id"], trace.to_string());
    assert_eq!(d["parent_id"], facade.to_string());
    assert_eq!(d["id"], call.to_string());
    assert_eq!(d["name"], "DynamoDB");
    assert_eq!(d["namespace"], "aws");
    assert_eq!(d["aws"]["operation"], "GetItem");
    assert_eq!(d["aws"]["region"], "eu-west-1");
    assert_eq!(d["aws"]["table_name"], "scorekeep-user");
    assert_eq!(d["aws"]["retries"], 1);
    assert_eq!(
        d["aws"]["request_id"],
        "UBQNSO5AEM8T4FDA4RQDEB94OVTDRVV4K4HIRGVJF66Q9ASUAAJG"
    );
    assert_eq!(d["http"]["response"]["status"], 400);
    assert_eq!(d["error"], true);
    assert_eq!(d["throttle"], true);
    assert!(d.get("fault").is_none());
    let ex = &d["cause"]["exceptions"][0];
    assert_eq!(ex["type"], "ProvisionedThroughputExceededException");
    assert_eq!(ex["remote"], true);
    assert!(
        ex["message"]
            .as_str()
            .unwrap()
            .starts_with("The level of configured")
    );
    assert!(d["end_time"].as_f64().unwrap() >= d["start_time"].as_f64().unwrap());
}

#[test]
fn children_nest_in_their_parent() {
    let daemon = Daemon::start();
    let (e, _guard) = emitter(&daemon);
    let trace = TraceId::new();
    let facade = SegmentId::random();
    let root = SegmentId::random();
    open_top(&e, root, trace, facade, "handler", Kind::Local);
    attr(&e, root, Key::Annotation("user.id"), Value::I64(42));
    e.push_str(root, Key::Metadata("note"), "free \"text\"\n");
    let mut kids = Vec::new();
    for _ in 0..3 {
        let kid = SegmentId::random();
        open(&e, kid, trace, Some(root), "step", Kind::Local);
        let grandkid = SegmentId::random();
        open(&e, grandkid, trace, Some(kid), "S3", Kind::Aws);
        close(&e, grandkid);
        close(&e, kid);
        kids.push((kid, grandkid));
    }
    close(&e, root);
    let _ = e.flush(Duration::from_secs(2));
    let docs = daemon.documents_with_spans(7, Duration::from_secs(2));
    assert_eq!(docs.len(), 1, "one document for the whole tree");
    let d = &docs[0];
    assert_eq!(count_spans(d), 7);
    assert_eq!(d["annotations"]["user_id"], 42);
    assert_eq!(d["metadata"]["default"]["note"], "free \"text\"\n");
    let subs = d["subsegments"].as_array().unwrap();
    assert_eq!(subs.len(), 3);
    for (s, (kid, grandkid)) in subs.iter().zip(&kids) {
        assert_eq!(s["id"], kid.to_string());
        assert!(s.get("type").is_none() && s.get("trace_id").is_none());
        assert_eq!(s["subsegments"][0]["id"], grandkid.to_string());
        assert_eq!(s["subsegments"][0]["namespace"], "aws");
    }
}

#[test]
fn large_trees_split_into_independent_documents() {
    let daemon = Daemon::start();
    let (e, _guard) = emitter(&daemon);
    let trace = TraceId::new();
    let facade = SegmentId::random();
    let root = SegmentId::random();
    open_top(&e, root, trace, facade, "batch", Kind::Local);
    let filler = "x".repeat(1000);
    let n = 400;
    for i in 0..n {
        let kid = SegmentId::random();
        open(&e, kid, trace, Some(root), "item", Kind::Local);
        e.push_str(kid, Key::Metadata("payload"), &filler);
        attr(&e, kid, Key::Annotation("index"), Value::I64(i));
        close(&e, kid);
        if i % 50 == 0 {
            let _ = e.flush(Duration::from_secs(2));
        }
    }
    close(&e, root);
    let _ = e.flush(Duration::from_secs(2));
    let docs = daemon.documents_with_spans(n as usize + 1, Duration::from_secs(5));
    assert!(
        docs.len() > 1,
        "400 kB of children cannot travel in one datagram"
    );
    let all = entities(&docs);
    assert_eq!(all.len(), n as usize + 1);
    let root_text = root.to_string();
    for d in &docs {
        if d["id"] != root_text.as_str() {
            assert_eq!(d["parent_id"], root_text.as_str());
            assert_eq!(d["trace_id"], trace.to_string());
        }
    }
    let mut indexes: Vec<i64> = all
        .iter()
        .filter_map(|e| e["annotations"]["index"].as_i64())
        .collect();
    indexes.sort();
    assert_eq!(indexes, (0..n).collect::<Vec<_>>());
    assert_eq!(e.stats().spans_sent, n as u64 + 1);
}

#[test]
fn segments_carry_trace_and_parent() {
    let daemon = Daemon::start();
    let (e, _guard) = emitter(&daemon);
    let trace = TraceId::new();
    let upstream = SegmentId::random();
    let seg = SegmentId::random();
    open_top(&e, seg, trace, upstream, "orders-api", Kind::Segment);
    e.push_str(seg, Key::Http(HttpField::Method), "GET");
    e.push_str(
        seg,
        Key::Http(HttpField::Url),
        "https://example.com/orders/7",
    );
    attr(&e, seg, Key::Http(HttpField::Status), Value::U64(503));
    attr(
        &e,
        seg,
        Key::Flags,
        Value::U64(xray_emitter::record::FLAG_FAULT),
    );
    e.push_str(seg, Key::User, "alice");
    e.push_str(seg, Key::Http(HttpField::ClientIp), "203.0.113.7");
    e.push_str(seg, Key::Http(HttpField::UserAgent), "curl/8.5.0");
    attr(
        &e,
        seg,
        Key::Http(HttpField::XForwardedFor),
        Value::Bool(true),
    );
    e.push_str(seg, Key::ServiceVersion, "1.4.2");
    e.push_str(seg, Key::Origin, "AWS::ECS::Container");
    // A call's `traced` has no place in a segment.
    attr(&e, seg, Key::Traced, Value::Bool(true));
    close(&e, seg);
    let _ = e.flush(Duration::from_secs(2));
    let docs = daemon.documents_with_spans(1, Duration::from_secs(2));
    let d: &Json = &docs[0];
    assert!(d.get("type").is_none());
    assert_eq!(d["trace_id"], trace.to_string());
    assert_eq!(d["parent_id"], upstream.to_string());
    assert_eq!(d["http"]["request"]["method"], "GET");
    assert_eq!(d["http"]["response"]["status"], 503);
    assert_eq!(d["fault"], true);
    assert_eq!(d["user"], "alice");
    assert_eq!(d["http"]["request"]["client_ip"], "203.0.113.7");
    assert_eq!(d["http"]["request"]["user_agent"], "curl/8.5.0");
    assert_eq!(d["http"]["request"]["x_forwarded_for"], true);
    assert_eq!(d["service"]["version"], "1.4.2");
    assert_eq!(d["origin"], "AWS::ECS::Container");
    assert!(d.get("traced").is_none());
}

#[test]
fn a_call_that_sent_the_trace_header_is_traced() {
    let daemon = Daemon::start();
    let (e, _guard) = emitter(&daemon);
    let trace = TraceId::new();
    let facade = SegmentId::random();
    let call = SegmentId::random();
    let plain = SegmentId::random();
    open_top(&e, call, trace, facade, "api.partner.example", Kind::Remote);
    attr(&e, call, Key::Traced, Value::Bool(true));
    // Where X-Ray wants a boolean, only a boolean (or 1/0) is one.
    open_top(&e, plain, trace, facade, "local", Kind::Local);
    e.push_str(plain, Key::Traced, "yes");
    close(&e, call);
    close(&e, plain);
    let _ = e.flush(Duration::from_secs(2));
    let docs = daemon.documents_with_spans(2, Duration::from_secs(2));
    let all = entities(&docs);
    let get = |id: SegmentId| all.iter().find(|e| e["id"] == id.to_string()).unwrap();
    assert_eq!(get(call)["traced"], true);
    assert!(get(plain).get("traced").is_none());
}

#[test]
fn the_checker_rejects_what_the_daemon_or_service_would() {
    let ok = br#"{"format":"json","version":1}
{"name":"a","id":"53995c3f42cd8ad8","start_time":1795651000.100000,"end_time":1795651000.200000,"trace_id":"1-5759e988-bd862e3fe1be46a994272793"}"#;
    xray_testkit::check(ok);
    let bad: [&[u8]; 6] = [
        br#"{"format":"json","version":"1"}
{"name":"a","id":"53995c3f42cd8ad8","start_time":1795651000.100000,"end_time":1795651000.200000,"trace_id":"1-5759e988-bd862e3fe1be46a994272793"}"#,
        br#"{"format":"json","version":1}
{"name":"a!","id":"53995c3f42cd8ad8","start_time":1795651000.100000,"end_time":1795651000.200000,"trace_id":"1-5759e988-bd862e3fe1be46a994272793"}"#,
        br#"{"format":"json","version":1}
{"name":"a","id":"53995c3f42cd8ad","start_time":1795651000.100000,"end_time":1795651000.200000,"trace_id":"1-5759e988-bd862e3fe1be46a994272793"}"#,
        br#"{"format":"json","version":1}
{"name":"a","id":"53995c3f42cd8ad8","start_time":1795651000.100000,"end_time":1795651000.200000,"trace_id":"1-5759e988-bd862e3fe1be46a994272793"}{}"#,
        br#"{"format":"json","version":1}
{"type":"subsegment","name":"a","id":"53995c3f42cd8ad8","start_time":1795651000.100000,"end_time":1795651000.200000,"trace_id":"1-5759e988-bd862e3fe1be46a994272793"}"#,
        br#"{"format":"json","version":1}
{"name":"a","id":"53995c3f42cd8ad8","start_time":1795651000.100000,"end_time":1795651000.200000,"trace_id":"1-5759e988-bd862e3fe1be46a994272793","annotations":{"a.b":1}}"#,
    ];
    for d in bad {
        let text = String::from_utf8_lossy(d).into_owned();
        assert!(
            std::panic::catch_unwind(|| xray_testkit::check(d)).is_err(),
            "accepted: {text}"
        );
    }
}

/// A span written twice (a trim retry, an in-progress report and then its
/// close) is the same document: nothing random is drawn while writing.
#[test]
fn writing_a_span_twice_gives_the_same_bytes() {
    use xray_emitter::clock::Ticks;
    use xray_emitter::testing::{Assembler, Sent, TableConfig, Transport};
    use xray_emitter::{Body, Record};

    struct Nowhere;
    impl Transport for Nowhere {
        fn send(&mut self, datagrams: &[&[u8]]) -> Sent {
            Sent::all(datagrams)
        }
    }
    let mut a = Assembler::new(TableConfig::default(), Nowhere);
    let id = SegmentId::random();
    a.apply(&Record::new(
        id,
        Body::Open {
            parent: Some(SegmentId::random()),
            trace: TraceId::new(),
            time: Ticks::from_raw(1),
            name: "failing".into(),
            kind: Kind::Aws,
        },
    ));
    for (key, text) in [
        (
            Key::Exception { remote: true },
            "Requested resource not found",
        ),
        (Key::ExceptionType, "ResourceNotFoundException"),
        (Key::Exception { remote: false }, "and then this"),
    ] {
        Record::split_str(id, key, text, |r| a.apply(&r));
    }
    let (mut first, mut second) = (vec![0u8; 4096], vec![0u8; 4096]);
    let n = a.render(id, Ticks::from_raw(2), &mut first).unwrap();
    let m = a.render(id, Ticks::from_raw(2), &mut second).unwrap();
    assert_eq!(first[..n], second[..m]);
    let doc: Json = serde_json::from_slice(&first[..n]).unwrap();
    let ids: Vec<&str> = (doc["cause"]["exceptions"].as_array().unwrap().iter())
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1], "each exception its own id");
}
