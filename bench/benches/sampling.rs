//! A sampling decision on the request's thread: the rules of an account
//! (ten, with globs on path, method, host and service name) matched against
//! a request that only the last rule takes, beside a baseline that does the
//! least any sampler must (one random number and one comparison).
//!
//! `cargo bench -p xray-bench --bench sampling`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use xray_bench::sampling::ten_rules;

fn sampling(c: &mut Criterion) {
    let rules = ten_rules();
    let mut g = c.benchmark_group("sampling_decision");
    g.bench_function("baseline_random_and_compare", |b| {
        b.iter(|| black_box(xray_emitter::SegmentId::random().get()) < black_box(u64::MAX / 20))
    });
    g.bench_function("first_rule_matches", |b| {
        b.iter(|| {
            rules.sample(
                black_box("shop"),
                black_box("GET"),
                black_box("api.example.com"),
                black_box("/health"),
            )
        })
    });
    g.bench_function("ten_rules_last_matches", |b| {
        b.iter(|| {
            rules.sample(
                black_box("shop"),
                black_box("GET"),
                black_box("api.example.com"),
                black_box("/api/orders/42"),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, sampling);
criterion_main!(benches);
