//! Hostile input: huge strings, too many fields, control characters, names
//! X-Ray would reject. Every document stays valid and bounded, and what was
//! cut is counted.

use std::time::Duration;

use xray_emitter::record::MAX_VALUE_BYTES;
use xray_emitter::{Emitter, Key, Kind, SegmentId, TraceId, Value};
use xray_testkit::spans::{attr, close, emitter, open_top};
use xray_testkit::{Daemon, check};

fn one_span(e: &Emitter, name: &'static str, fill: impl FnOnce(SegmentId)) -> SegmentId {
    let id = SegmentId::random();
    open_top(
        e,
        id,
        TraceId::new(),
        SegmentId::random(),
        name,
        Kind::Local,
    );
    fill(id);
    close(e, id);
    id
}

#[test]
fn a_one_megabyte_string_is_cut_and_counted() {
    let daemon = Daemon::start();
    let (e, _g) = emitter(&daemon);
    let huge = "ab\u{1}é".repeat(250_000);
    one_span(&e, "huge", |id| {
        e.push_str(id, Key::Metadata("body"), &huge);
        e.push_str(id, Key::Annotation("huge"), &huge);
        e.push_str(id, Key::Name, &huge);
    });
    let _ = e.flush(Duration::from_secs(2));
    let docs = daemon.documents_with_spans(1, Duration::from_secs(2));
    let d = &docs[0];
    let body = d["metadata"]["default"]["body"].as_str().unwrap();
    assert!(body.len() <= MAX_VALUE_BYTES);
    assert!(huge.starts_with(body), "a prefix of the value survives");
    let annotation = d["annotations"]["huge"].as_str().unwrap();
    assert!(annotation.chars().count() <= 1000);
    assert!(d["name"].as_str().unwrap().chars().count() <= 200);
    assert_eq!(d["metadata"]["xray_emitter"]["truncated"], true);
    let s = e.stats();
    assert_eq!(s.values_truncated, 3);
    assert_eq!(s.spans_truncated, 1);
}

#[test]
fn a_thousand_fields_keep_the_first_and_count_the_rest() {
    let daemon = Daemon::start();
    let (e, _g) = emitter(&daemon);
    static KEYS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0..1000)
            .map(|i| &*Box::leak(format!("field{i}").into_boxed_str()))
            .collect()
    });
    one_span(&e, "wide", |id| {
        for (i, k) in keys.iter().enumerate() {
            attr(&e, id, Key::Annotation(k), Value::I64(i as i64));
        }
    });
    let _ = e.flush(Duration::from_secs(2));
    let docs = daemon.documents_with_spans(1, Duration::from_secs(2));
    let ann = docs[0]["annotations"].as_object().unwrap();
    assert_eq!(ann.len(), xray_emitter::MAX_ATTRS);
    assert_eq!(ann["field0"], 0);
    assert_eq!(docs[0]["metadata"]["xray_emitter"]["truncated"], true);
    assert_eq!(e.stats().spans_truncated, 1);
}

#[test]
fn control_characters_and_unicode_round_trip() {
    let daemon = Daemon::start();
    let (e, _g) = emitter(&daemon);
    let nasty: String = (0u8..0x20)
        .map(char::from)
        .chain("\"\\/\u{7f}é中😀\u{2028}".chars())
        .collect();
    one_span(&e, "escapes", |id| {
        e.push_str(id, Key::Metadata("nasty"), &nasty);
        e.push_str(id, Key::Aws("table_name"), &nasty);
        e.push_str(id, Key::Exception { remote: false }, &nasty);
    });
    let _ = e.flush(Duration::from_secs(2));
    let docs = daemon.documents_with_spans(1, Duration::from_secs(2));
    let d = &docs[0];
    assert_eq!(d["metadata"]["default"]["nasty"], nasty.as_str());
    assert_eq!(d["aws"]["table_name"], nasty.as_str());
    assert_eq!(d["cause"]["exceptions"][0]["message"], nasty.as_str());
}

#[test]
fn invalid_names_and_keys_are_rewritten() {
    let daemon = Daemon::start();
    let (e, _g) = emitter(&daemon);
    one_span(&e, "GET /users/{id}?x=1;y=<2>", |id| {
        attr(&e, id, Key::Annotation("http.route"), Value::Bool(true));
        attr(&e, id, Key::Annotation("naïve key!"), Value::F64(f64::NAN));
        attr(&e, id, Key::Annotation(""), Value::U64(1));
    });
    one_span(&e, "", |_| {});
    one_span(&e, "😀😀😀", |_| {});
    let long: &'static str = Box::leak("名".repeat(500).into_boxed_str());
    one_span(&e, long, |_| {});
    let _ = e.flush(Duration::from_secs(2));
    let docs = daemon.documents_with_spans(4, Duration::from_secs(2));
    let names: Vec<&str> = docs.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"GET /users/_id__x=1_y=_2_"), "{names:?}");
    assert!(names.contains(&"unnamed"));
    assert!(names.contains(&"___"));
    assert!(
        names
            .iter()
            .any(|n| n.chars().count() == 200 && n.chars().all(|c| c == '名'))
    );
    let d = docs
        .iter()
        .find(|d| d["name"] == "GET /users/_id__x=1_y=_2_")
        .unwrap();
    assert_eq!(d["annotations"]["http_route"], true);
    assert_eq!(d["annotations"]["na_ve_key_"], "NaN");
    assert_eq!(d["annotations"]["_"], 1);
}

#[test]
fn documents_too_big_for_a_datagram_are_trimmed_and_marked() {
    let daemon = Daemon::start();
    let (e, _g) = Emitter::builder()
        .daemon(daemon.addr())
        .span_text_bytes(1 << 20)
        .report_errors(false)
        .start()
        .unwrap();
    static KEYS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0..15)
            .map(|i| &*Box::leak(format!("k{i}").into_boxed_str()))
            .collect()
    });
    // Control characters escape to six bytes each: 30 values of 1,000 of them
    // are about 180 kB of JSON.
    let value = "\u{1}".repeat(1000);
    one_span(&e, "bloated", |id| {
        for k in keys {
            e.push_str(id, Key::Metadata(k), &value);
            e.push_str(id, Key::Annotation(k), &value);
        }
        attr(&e, id, Key::Aws("retries"), Value::U64(2));
    });
    let _ = e.flush(Duration::from_secs(2));
    let datagrams = {
        daemon.wait_until(Duration::from_secs(2), |d| !d.is_empty());
        daemon.take()
    };
    assert_eq!(datagrams.len(), 1);
    assert!(datagrams[0].len() <= xray_testkit::DATAGRAM_MAX);
    let d = check(&datagrams[0]);
    assert!(
        d["metadata"].get("default").is_none(),
        "metadata goes first"
    );
    assert_eq!(d["metadata"]["xray_emitter"]["truncated"], true);
    assert_eq!(d["aws"]["retries"], 2, "small fields survive");
    let kept = d["annotations"]["k0"].as_str().unwrap();
    assert!(
        !kept.is_empty() && kept.chars().count() < 1000,
        "long strings are shortened"
    );
    assert_eq!(e.stats().spans_truncated, 1);
    assert_eq!(e.stats().spans_sent, 1);
}

#[test]
fn annotation_keys_that_sanitize_alike_are_written_once_the_last_value_winning() {
    let daemon = Daemon::start();
    let (e, _g) = emitter(&daemon);
    one_span(&e, "dupes", |id| {
        attr(&e, id, Key::Annotation("order-id"), Value::U64(1));
        attr(&e, id, Key::Annotation("order.id"), Value::U64(2));
        attr(&e, id, Key::Annotation("order_id"), Value::U64(3));
        attr(&e, id, Key::Annotation("other"), Value::U64(4));
    });
    let _ = e.flush(Duration::from_secs(2));
    daemon.wait_until(Duration::from_secs(2), |d| !d.is_empty());
    let raw = daemon.take().remove(0);
    let text = String::from_utf8_lossy(&raw);
    assert_eq!(text.matches("\"order_id\":").count(), 1, "{text}");
    let doc = check(&raw);
    assert_eq!(doc["annotations"]["order_id"], 3);
    assert_eq!(doc["annotations"]["other"], 4);
}

/// A JSON value (a service's object or list) goes into `aws` and
/// `metadata` as it is when it is valid JSON, and as a string otherwise;
/// never where X-Ray wants a scalar.
#[test]
fn json_values_are_written_as_they_are_only_when_valid() {
    let daemon = Daemon::start();
    let (e, _g) = emitter(&daemon);
    let capacity = r#"{"TableName":"orders","CapacityUnits":0.5,"Table":{"CapacityUnits":0.5}}"#;
    let long = format!("[{}1]", "1,".repeat(MAX_VALUE_BYTES));
    one_span(&e, "json", |id| {
        e.push_json(id, Key::Aws("consumed_capacity"), capacity);
        e.push_json(id, Key::Aws("table_names"), r#"["invoices","customers"]"#);
        e.push_json(id, Key::Aws("quoted"), r#""a\"b""#);
        e.push_json(id, Key::Aws("broken"), r#"{"a":1,"b":]}"#);
        e.push_json(id, Key::Aws("injected"), r#"1},"name":"evil"#);
        e.push_json(id, Key::Aws("long"), &long);
        e.push_json(id, Key::Metadata("list"), "[1,2]");
        e.push_json(id, Key::Annotation("object"), r#"{"a":1}"#);
    });
    let _ = e.flush(Duration::from_secs(2));
    daemon.wait_until(Duration::from_secs(2), |d| !d.is_empty());
    let doc = check(&daemon.take().remove(0));
    let aws = &doc["aws"];
    assert_eq!(aws["consumed_capacity"]["CapacityUnits"], 0.5);
    assert_eq!(aws["consumed_capacity"]["Table"]["CapacityUnits"], 0.5);
    assert_eq!(aws["table_names"][1], "customers");
    assert_eq!(aws["quoted"], "a\"b");
    assert_eq!(aws["broken"], r#"{"a":1,"b":]}"#);
    assert_eq!(aws["injected"], r#"1},"name":"evil"#);
    assert_eq!(doc["name"], "json");
    let cut = aws["long"].as_str().expect("a cut list is a string");
    assert!(long.starts_with(cut) && cut.len() <= MAX_VALUE_BYTES);
    assert_eq!(doc["metadata"]["default"]["list"][1], 2);
    assert_eq!(doc["annotations"]["object"], r#"{"a":1}"#);
    assert_eq!(e.stats().values_truncated, 1);
}
