//! A sampling decision on the request's thread: the rules of an account
//! (ten, with globs on path, method, host and service name) matched against
//! a request that only the last rule takes, beside a baseline that does the
//! least any sampler must (one random number and one comparison). The last
//! case decides as the layer does, with the clock the root span read for
//! its start time.
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
    // As the layer decides: the clock is read once for the root span's
    // start and its decision, so the decision itself does not read it.
    let at = xray_emitter::clock::now();
    g.bench_function("ten_rules_last_matches_clock_read_by_span", |b| {
        b.iter(|| {
            rules.sample_at(
                black_box("shop"),
                black_box("GET"),
                black_box("api.example.com"),
                black_box("/api/orders/42"),
                black_box(at),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, sampling);
criterion_main!(benches);
