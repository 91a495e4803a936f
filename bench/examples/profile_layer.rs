//! A fixed number of spans inside a sampled invocation, for instruction
//! counts under callgrind (`noop` for the Registry + no-op layer floor):
//!
//! ```text
//! cargo build --release -p xray-bench --example profile_layer
//! valgrind --tool=callgrind target/release/examples/profile_layer 100000 xray
//! valgrind --tool=callgrind target/release/examples/profile_layer 100000 noop
//! ```

use std::hint::black_box;
use std::time::Duration;

use tracing::info_span;
use tracing_core::Subscriber;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_xray::XRaySubscriber;

struct NoOp;
impl<S: Subscriber> Layer<S> for NoOp {}

#[inline(never)]
fn one_span(i: u64) {
    let span = info_span!("handle_item", item_id = i, status = "ok");
    let _entered = span.enter();
    black_box(&span);
}

fn run(n: u64, flush: impl Fn()) {
    let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let invocation = info_span!(target: "lambda_runtime::layers::trace", "Lambda runtime invoke", requestId = "r", xrayTraceId = header);
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
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    if which == "noop" {
        tracing::subscriber::with_default(tracing_subscriber::registry().with(NoOp), || {
            run(n, || {})
        });
    } else {
        let layer = XRaySubscriber::builder()
            .daemon(sink.local_addr().unwrap())
            .lambda(true)
            .build()
            .unwrap();
        let handle = layer.handle();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            run(n, || {
                handle.flush(Duration::from_secs(5));
            })
        });
        println!("{:?}", handle.stats());
    }
}
