//! OTLP encoding on the sender: a typical AWS-call span (a failed DynamoDB
//! GetItem, as in `serialize`) from its records to OTLP/UDP datagrams —
//! span table, protobuf, request framing, base64 and datagram header — a
//! hundred spans per iteration; beside `opentelemetry-proto`'s types and
//! prost encoding the same hundred spans (built from the same values, as an
//! exporter builds them from its span data, without base64: less work than
//! ours). Our output is checked to decode to the same attributes.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span::Event};
use prost::Message;
use xray_bench::{Discard, aws_call};
use xray_emitter::testing::{Assembler, TableConfig};
use xray_emitter::{Format, Resource, SegmentId, TraceId};
use xray_testkit::Capture;

const SPANS: usize = 100;

fn resource() -> Resource {
    Resource::new(
        &[
            ("service.name", "orders-fn"),
            ("cloud.provider", "aws"),
            ("cloud.platform", "aws_lambda"),
        ],
        "tracing-xray",
        "0.1.0",
    )
}

fn kv(key: &str, value: Any) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn s(v: &str) -> Any {
    Any::StringValue(v.to_string())
}

/// The request an exporter would build for `SPANS` of the same call.
fn proto_request(trace: &[u8], parent: &[u8]) -> ExportTraceServiceRequest {
    let spans = (0..SPANS)
        .map(|i| Span {
            trace_id: trace.to_vec(),
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            parent_span_id: parent.to_vec(),
            name: "DynamoDB.GetItem".to_string(),
            kind: 3,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_004_000_000,
            attributes: vec![
                kv("rpc.method", s("GetItem")),
                kv("cloud.region", s("eu-west-1")),
                kv(
                    "aws.dynamodb.table_names",
                    Any::ArrayValue(ArrayValue {
                        values: vec![AnyValue {
                            value: Some(s("orders-production")),
                        }],
                    }),
                ),
                kv(
                    "aws.request_id",
                    s("UBQNSO5AEM8T4FDA4RQDEB94OVTDRVV4K4HIRGVJF66Q9ASUAAJG"),
                ),
                kv("aws.retries", Any::IntValue(0)),
                kv("http.response.status_code", Any::IntValue(400)),
                kv("rpc.system", s("aws-api")),
                kv("rpc.service", s("DynamoDB")),
            ],
            events: vec![Event {
                time_unix_nano: 1_700_000_000_004_000_000,
                name: "exception".to_string(),
                attributes: vec![
                    kv("exception.message", s("Requested resource not found")),
                    kv("exception.type", s("ResourceNotFoundException")),
                ],
                dropped_attributes_count: 0,
            }],
            status: Some(Status {
                message: String::new(),
                code: 2,
            }),
            ..Span::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(ProtoResource {
                attributes: vec![
                    kv("service.name", s("orders-fn")),
                    kv("cloud.provider", s("aws")),
                    kv("cloud.platform", s("aws_lambda")),
                ],
                ..ProtoResource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "tracing-xray".to_string(),
                    version: "0.1.0".to_string(),
                    ..InstrumentationScope::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn otlp(c: &mut Criterion) {
    let trace = TraceId::new();
    let facade = SegmentId::random();
    let records = aws_call::records(trace, facade);
    let format = Format::OtlpUdp(resource());

    // Ours decodes to the same span as the baseline builds (ids and times aside).
    let mut check = Assembler::with_format(TableConfig::default(), &format, Capture::default());
    records.iter().for_each(|r| check.apply(r));
    check.send();
    let ours = xray_testkit::otlp::decode_datagram(&check.transport_mut().datagrams[0]);
    let ours = &xray_testkit::otlp::spans(&[ours])[0];
    let theirs = &proto_request(&ours.trace_id, &ours.parent_span_id).resource_spans[0].scope_spans
        [0]
    .spans[0];
    let mut a: Vec<_> = ours
        .attributes
        .iter()
        .map(|kv| (&kv.key, &kv.value))
        .collect();
    let mut b: Vec<_> = theirs
        .attributes
        .iter()
        .map(|kv| (&kv.key, &kv.value))
        .collect();
    a.sort_by_key(|p| p.0);
    b.sort_by_key(|p| p.0);
    assert_eq!(a, b, "the same attributes");
    assert_eq!(
        (&ours.name, ours.kind, &ours.events[0].attributes),
        (&theirs.name, theirs.kind, &theirs.events[0].attributes)
    );

    let mut assembler = Assembler::with_format(TableConfig::default(), &format, Discard::default());
    let mut g = c.benchmark_group("otlp_encode_100_spans");
    g.throughput(Throughput::Elements(SPANS as u64));
    g.bench_function("xray_emitter_records_to_otlp_datagrams", |b| {
        b.iter(|| {
            for _ in 0..SPANS {
                for r in &records {
                    assembler.apply(black_box(r));
                }
            }
            assembler.send();
        })
    });
    let (trace_bytes, parent) = (ours.trace_id.clone(), ours.parent_span_id.clone());
    let mut buf = Vec::with_capacity(64 * 1024);
    g.bench_function("opentelemetry_proto_build_and_prost_encode", |b| {
        b.iter(|| {
            let request = proto_request(black_box(&trace_bytes), black_box(&parent));
            buf.clear();
            request.encode(&mut buf).unwrap();
            black_box(&buf);
        })
    });
    g.finish();
    assert_eq!(assembler.stats().spans_lost, 0);
}

criterion_group!(benches, otlp);
criterion_main!(benches);
