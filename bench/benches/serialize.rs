//! Serializing a typical AWS-call subsegment: our JSON writer from the
//! sender's span state beside serde_json writing the same document (checked
//! member for member) from derived structs into a reused buffer; and, for
//! the whole cost on the sender, ours from records to datagram (span table,
//! JSON, datagram arena, header and the independent subsegment's ids).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xray_bench::{Discard, aws_call};
use xray_emitter::testing::{Assembler, TableConfig};
use xray_emitter::{SegmentId, TraceId, clock};

fn serialize(c: &mut Criterion) {
    let trace = TraceId::new();
    let facade = SegmentId::random();
    let records = aws_call::records(trace, facade);

    let mut assembler = Assembler::new(TableConfig::default(), Discard::default());
    records.iter().for_each(|r| assembler.apply(r));
    assembler.send();
    let datagram_bytes = assembler.stats().bytes_sent;

    // The same span, kept open, for the serialization step alone.
    let open = &records[..records.len() - 1];
    let mut held = Assembler::new(TableConfig::default(), Discard::default());
    open.iter().for_each(|r| held.apply(r));
    let end = clock::now();
    let mut out = vec![0u8; 64 * 1024];
    let ours_len = held.render(open[0].span, end, &mut out).unwrap();

    let (id, exception_id) = (
        SegmentId::random().to_string(),
        SegmentId::random().to_string(),
    );
    let doc = aws_call::doc(&id, &exception_id);
    let mut buf = Vec::with_capacity(64 * 1024);
    serde_json::to_writer(&mut buf, &doc).unwrap();
    assert!(
        aws_call::same_shape(&out[..ours_len], &buf),
        "both write the same document:\n{}\n{}",
        String::from_utf8_lossy(&out[..ours_len]),
        String::from_utf8_lossy(&buf)
    );

    let per_doc = |bytes: usize| Throughput::ElementsAndBytes {
        elements: 1,
        bytes: bytes as u64,
    };
    let mut g = c.benchmark_group("serialize_aws_subsegment");
    g.throughput(per_doc(ours_len));
    g.bench_function("xray_emitter_json", |b| {
        b.iter(|| black_box(held.render(black_box(open[0].span), end, black_box(&mut out))))
    });
    g.throughput(per_doc(buf.len()));
    g.bench_function("serde_json_derive", |b| {
        b.iter(|| {
            buf.clear();
            serde_json::to_writer(&mut buf, black_box(&doc)).unwrap();
            black_box(&buf);
        })
    });
    g.throughput(per_doc(datagram_bytes as usize));
    g.bench_function("xray_emitter_records_to_datagram", |b| {
        b.iter(|| {
            for r in &records {
                assembler.apply(black_box(r));
            }
        })
    });
    g.finish();
    assembler.send();
    assert_eq!(assembler.stats().spans_lost, 0);
}

criterion_group!(benches, serialize);
criterion_main!(benches);
