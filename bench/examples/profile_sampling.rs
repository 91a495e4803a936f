//! Sampling decisions for instruction counts under callgrind: the ten rules
//! of `benches/sampling.rs`, a request only the last takes.
//!
//! ```text
//! cargo build --release -p xray-bench --example profile_sampling
//! valgrind --tool=callgrind --toggle-collect='profile_sampling::decide' \
//!     target/release/examples/profile_sampling 100000
//! ```

use std::hint::black_box;

use tracing_xray::sampling_testing::Rules;

#[inline(never)]
fn decide(rules: &Rules, path: &str) -> bool {
    rules.sample(
        black_box("shop"),
        black_box("GET"),
        black_box("api.example.com"),
        black_box(path),
    )
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let path = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "/api/orders/42".into());
    let rules = xray_bench::sampling::ten_rules();
    let mut sampled = 0u64;
    for _ in 0..n {
        sampled += u64::from(decide(&rules, &path));
    }
    println!("{sampled} of {n} sampled");
}
