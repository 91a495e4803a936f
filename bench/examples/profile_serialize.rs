//! A fixed amount of serialization work, for instruction counts under
//! callgrind (repeatable where wall time on a shared machine is not):
//!
//! ```text
//! cargo build --release -p xray-bench --example profile_serialize
//! valgrind --tool=callgrind target/release/examples/profile_serialize 100000
//! valgrind --tool=callgrind target/release/examples/profile_serialize 100000 serde
//! ```

use xray_bench::Discard;
use xray_emitter::record::FLAG_ERROR;
use xray_emitter::{
    Body, Collector, HttpField, Key, Kind, Record, SegmentId, TableConfig, TraceId, Value, clock,
};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    if std::env::args().nth(2).as_deref() == Some("serde") {
        return serde_baseline(n);
    }
    let trace = TraceId::new();
    let facade = SegmentId::random();
    let id = SegmentId::random();
    let mut records = vec![
        Record::new(
            id,
            Body::Open {
                parent: Some(facade),
                time: clock::now(),
                name: "DynamoDB",
                kind: Kind::Aws,
            },
        ),
        Record::new(id, Body::Trace { trace }),
    ];
    for (key, value) in [
        (Key::Aws("operation"), "GetItem"),
        (Key::Aws("region"), "eu-west-1"),
        (Key::Aws("table_name"), "orders-production"),
        (
            Key::Aws("request_id"),
            "UBQNSO5AEM8T4FDA4RQDEB94OVTDRVV4K4HIRGVJF66Q9ASUAAJG",
        ),
        (
            Key::Exception { remote: true },
            "Requested resource not found",
        ),
        (Key::ExceptionType, "ResourceNotFoundException"),
    ] {
        Record::split_str(id, key, value, |r| records.push(r));
    }
    for (key, value) in [
        (Key::Aws("retries"), 0),
        (Key::Http(HttpField::Status), 400),
        (Key::Flags, FLAG_ERROR),
    ] {
        records.push(Record::new(
            id,
            Body::Attr {
                key,
                value: Value::U64(value),
            },
        ));
    }
    records.push(Record::new(id, Body::Close { time: clock::now() }));
    let mut collector = Collector::new(TableConfig::default(), Discard::default());
    for _ in 0..n {
        for r in &records {
            collector.apply(std::hint::black_box(r));
        }
    }
    collector.send();
    let s = collector.stats();
    println!(
        "{} documents, {} bytes, {} per document",
        s.documents_sent,
        s.bytes_sent,
        s.bytes_sent / s.documents_sent.max(1)
    );
}

#[derive(serde::Serialize)]
struct Doc<'a> {
    name: &'a str,
    id: &'a str,
    start_time: f64,
    end_time: f64,
    #[serde(rename = "type")]
    kind: &'a str,
    trace_id: &'a str,
    parent_id: &'a str,
    namespace: &'a str,
    error: bool,
    http: serde_json::Value,
    aws: [(&'a str, &'a str); 4],
    retries: u32,
    message: &'a str,
    exception_type: &'a str,
}

/// Roughly the same document through serde_json, for an instruction count beside ours.
fn serde_baseline(n: u64) {
    let (trace, id, parent) = (
        TraceId::new().to_string(),
        SegmentId::random().to_string(),
        SegmentId::random().to_string(),
    );
    let doc = Doc {
        name: "DynamoDB",
        id: &id,
        start_time: 1_795_651_000.772_046,
        end_time: 1_795_651_000.781_311,
        kind: "subsegment",
        trace_id: &trace,
        parent_id: &parent,
        namespace: "aws",
        error: true,
        http: serde_json::json!({"response": {"status": 400}}),
        aws: [
            ("operation", "GetItem"),
            ("region", "eu-west-1"),
            ("table_name", "orders-production"),
            (
                "request_id",
                "UBQNSO5AEM8T4FDA4RQDEB94OVTDRVV4K4HIRGVJF66Q9ASUAAJG",
            ),
        ],
        retries: 0,
        message: "Requested resource not found",
        exception_type: "ResourceNotFoundException",
    };
    let mut buf = Vec::with_capacity(65_536);
    let mut total = 0;
    for _ in 0..n {
        buf.clear();
        buf.extend_from_slice(b"{\"format\":\"json\",\"version\":1}\n");
        serde_json::to_writer(&mut buf, std::hint::black_box(&doc)).unwrap();
        total += buf.len();
    }
    println!("{n} documents, {total} bytes");
}
