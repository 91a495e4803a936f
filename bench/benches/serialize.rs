//! Serializing a typical AWS-call subsegment: our JSON writer from the
//! sender's span state beside serde_json writing the same document from
//! derived structs into a reused buffer; and, for the whole cost on the
//! sender, ours from records to datagram (span table, JSON, datagram arena).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::Serialize;
use xray_bench::Discard;
use xray_emitter::record::FLAG_ERROR;
use xray_emitter::{
    Body, Collector, HttpField, Key, Kind, Record, SegmentId, TableConfig, TraceId, Value, clock,
};

const OPERATION: &str = "GetItem";
const REGION: &str = "eu-west-1";
const TABLE: &str = "orders-production";
const REQUEST_ID: &str = "UBQNSO5AEM8T4FDA4RQDEB94OVTDRVV4K4HIRGVJF66Q9ASUAAJG";
const MESSAGE: &str = "Requested resource not found";
const ERROR_TYPE: &str = "ResourceNotFoundException";

fn call_records(trace: TraceId, facade: SegmentId) -> Vec<Record> {
    let id = SegmentId::random();
    let mut r = vec![
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
        (Key::Aws("operation"), OPERATION),
        (Key::Aws("region"), REGION),
        (Key::Aws("table_name"), TABLE),
        (Key::Aws("request_id"), REQUEST_ID),
        (Key::Exception { remote: true }, MESSAGE),
        (Key::ExceptionType, ERROR_TYPE),
    ] {
        Record::split_str(id, key, value, |rec| r.push(rec));
    }
    r.push(Record::new(
        id,
        Body::Attr {
            key: Key::Aws("retries"),
            value: Value::U64(0),
        },
    ));
    r.push(Record::new(
        id,
        Body::Attr {
            key: Key::Http(HttpField::Status),
            value: Value::U64(400),
        },
    ));
    r.push(Record::new(
        id,
        Body::Attr {
            key: Key::Flags,
            value: Value::U64(FLAG_ERROR),
        },
    ));
    r.push(Record::new(id, Body::Close { time: clock::now() }));
    r
}

#[derive(Serialize)]
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
    http: Http,
    aws: Aws<'a>,
    cause: Cause<'a>,
}

#[derive(Serialize)]
struct Http {
    response: Response,
}

#[derive(Serialize)]
struct Response {
    status: u16,
}

#[derive(Serialize)]
struct Aws<'a> {
    operation: &'a str,
    region: &'a str,
    table_name: &'a str,
    request_id: &'a str,
    retries: u32,
}

#[derive(Serialize)]
struct Cause<'a> {
    exceptions: [Exception<'a>; 1],
}

#[derive(Serialize)]
struct Exception<'a> {
    id: &'a str,
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    remote: bool,
}

fn serialize(c: &mut Criterion) {
    let trace = TraceId::new();
    let facade = SegmentId::random();
    let records = call_records(trace, facade);

    let mut collector = Collector::new(TableConfig::default(), Discard::default());
    records.iter().for_each(|r| collector.apply(r));
    collector.send();
    let ours_bytes = collector.stats().bytes_sent;

    let (trace_text, facade_text, id_text, ex_id) = (
        trace.to_string(),
        facade.to_string(),
        SegmentId::random().to_string(),
        SegmentId::random().to_string(),
    );
    let doc = Doc {
        name: "DynamoDB",
        id: &id_text,
        start_time: 1_795_651_000.772_046,
        end_time: 1_795_651_000.781_311,
        kind: "subsegment",
        trace_id: &trace_text,
        parent_id: &facade_text,
        namespace: "aws",
        error: true,
        http: Http {
            response: Response { status: 400 },
        },
        aws: Aws {
            operation: OPERATION,
            region: REGION,
            table_name: TABLE,
            request_id: REQUEST_ID,
            retries: 0,
        },
        cause: Cause {
            exceptions: [Exception {
                id: &ex_id,
                message: MESSAGE,
                kind: ERROR_TYPE,
                remote: true,
            }],
        },
    };
    let mut buf = Vec::with_capacity(64 * 1024);
    buf.extend_from_slice(b"{\"format\":\"json\",\"version\":1}\n");
    serde_json::to_writer(&mut buf, &doc).unwrap();
    let serde_bytes = buf.len() as u64;

    // The same span, kept open, for the serialization step alone.
    let open = &records[..records.len() - 1];
    let mut held = Collector::new(TableConfig::default(), Discard::default());
    open.iter().for_each(|r| held.apply(r));
    let end = clock::now();
    let mut out = vec![0u8; 64 * 1024];
    let ours_doc = held.render(open[0].span, end, &mut out).unwrap() as u64;

    let mut g = c.benchmark_group("serialize_aws_subsegment");
    g.throughput(Throughput::Elements(1));
    g.bench_function("xray_emitter_json", |b| {
        b.iter(|| black_box(held.render(black_box(open[0].span), end, &mut out)))
    });
    g.bench_function("xray_emitter_records_to_datagram", |b| {
        b.iter(|| {
            for r in &records {
                collector.apply(black_box(r));
            }
        })
    });
    g.bench_function("serde_json_derive", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(b"{\"format\":\"json\",\"version\":1}\n");
            serde_json::to_writer(&mut buf, black_box(&doc)).unwrap();
            black_box(buf.len());
        })
    });
    g.finish();

    let mut g = c.benchmark_group("serialize_aws_subsegment_bytes");
    g.throughput(Throughput::Bytes(ours_doc));
    g.bench_function("xray_emitter_json", |b| {
        b.iter(|| black_box(held.render(black_box(open[0].span), end, &mut out)))
    });
    g.throughput(Throughput::Bytes(ours_bytes));
    g.bench_function("xray_emitter_records_to_datagram", |b| {
        b.iter(|| {
            for r in &records {
                collector.apply(black_box(r));
            }
        })
    });
    g.throughput(Throughput::Bytes(serde_bytes));
    g.bench_function("serde_json_derive", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(b"{\"format\":\"json\",\"version\":1}\n");
            serde_json::to_writer(&mut buf, black_box(&doc)).unwrap();
            black_box(buf.len());
        })
    });
    g.finish();
    collector.send();
    assert_eq!(collector.stats().spans_lost, 0);
}

criterion_group!(benches, serialize);
criterion_main!(benches);
