//! A fixed number of spans inside a sampled invocation, for instruction
//! counts under callgrind (`noop` for the Registry + no-op layer baseline,
//! `floor` for the least a layer that hands spans to another thread does:
//! see `xray_bench::spans::Floor`).
//! Counting only inside `one_span` keeps the sender thread, set-up and
//! flushes out: the total divided by the spans is the caller's cost per span.
//!
//! ```text
//! cargo build --release -p xray-bench --example profile_layer
//! valgrind --tool=callgrind --toggle-collect='xray_bench::spans::one_span' \
//!     target/release/examples/profile_layer 100000 xray
//! valgrind --tool=callgrind --toggle-collect='xray_bench::spans::one_span' \
//!     target/release/examples/profile_layer 100000 noop
//! valgrind --tool=callgrind --toggle-collect='xray_bench::spans::one_span' \
//!     target/release/examples/profile_layer 100000 floor
//! ```

use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::XRaySubscriber;
use xray_bench::spans::{Floor, NoOp, invocation, one_span};

fn run(n: u64, flush: impl Fn()) {
    let invocation = invocation();
    let _in = invocation.enter();
    for i in 0..n {
        one_span(i);
        if i % 1000 == 999 {
            flush();
        }
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let which = std::env::args().nth(2).unwrap_or_else(|| "xray".into());
    let sink = xray_testkit::Daemon::counting();
    if which == "noop" {
        tracing::subscriber::with_default(tracing_subscriber::registry().with(NoOp), || {
            run(n, || {})
        });
    } else if which == "floor" {
        tracing::subscriber::with_default(tracing_subscriber::registry().with(Floor), || {
            run(n, || {})
        });
        println!("floor ring checksum {:x}", Floor::checksum());
    } else {
        let layer = XRaySubscriber::builder()
            .daemon(sink.addr())
            .lambda(true)
            .build()
            .unwrap();
        let handle = layer.handle();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            run(n, || {
                let _ = handle.flush(Duration::from_secs(5));
            })
        });
        println!("{:?}", handle.stats());
    }
}
