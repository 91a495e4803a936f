//! A fixed amount of serialization work, for instruction counts under
//! callgrind (repeatable where wall time on a shared machine is not): ours
//! from records to datagram, or serde_json writing the same document.
//!
//! ```text
//! cargo build --release -p xray-bench --example profile_serialize
//! valgrind --tool=callgrind target/release/examples/profile_serialize 100000
//! valgrind --tool=callgrind target/release/examples/profile_serialize 100000 serde
//! valgrind --tool=callgrind target/release/examples/profile_serialize 100000 otlp
//! ```

use xray_bench::{Discard, aws_call};
use xray_emitter::testing::{Assembler, TableConfig};
use xray_emitter::{Format, Resource, SegmentId, TraceId};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    if std::env::args().nth(2).as_deref() == Some("serde") {
        return serde_baseline(n);
    }
    let records = aws_call::records(TraceId::new(), SegmentId::random());
    let format = match std::env::args().nth(2).as_deref() {
        Some("otlp") => Format::OtlpUdp(Resource::new(
            &[("service.name", "orders-fn"), ("cloud.provider", "aws")],
            "tracing-xray",
            "0.1.0",
        )),
        _ => Format::XRay,
    };
    let mut assembler = Assembler::with_format(TableConfig::default(), &format, Discard::default());
    for _ in 0..n {
        for r in &records {
            assembler.apply(std::hint::black_box(r));
        }
    }
    assembler.send();
    let s = assembler.stats();
    println!(
        "{} documents, {} bytes, {} per document",
        s.documents_sent,
        s.bytes_sent,
        s.bytes_sent / s.documents_sent.max(1)
    );
}

fn serde_baseline(n: u64) {
    let (id, exception_id) = (
        SegmentId::random().to_string(),
        SegmentId::random().to_string(),
    );
    let doc = aws_call::doc(&id, &exception_id);
    let mut buf = Vec::with_capacity(65_536);
    let mut total = 0;
    for _ in 0..n {
        buf.clear();
        serde_json::to_writer(&mut buf, std::hint::black_box(&doc)).unwrap();
        total += buf.len();
    }
    println!("{n} documents, {total} bytes");
}
