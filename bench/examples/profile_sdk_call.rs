//! A fixed number of AWS SDK calls inside a sampled invocation (with the
//! environment `lambda_runtime` sets), for
//! instruction counts under callgrind: `noop` (Registry + no-op layer, plain
//! client), `layer` (+ XRaySubscriber), `interceptor` (+ XRayInterceptor
//! only), `both`; `get` (small GetItem) or `query` (1 MB page); a fourth
//! argument `unread` sends the datagrams to a socket that nobody reads,
//! leaving out the daemon's wake-ups (for whole-process CPU on one CPU:
//! `taskset -c 0 /usr/bin/time … 20000 layer get unread`).
//!
//! ```text
//! cargo build --release -p xray-bench --example profile_sdk_call
//! valgrind --tool=callgrind --toggle-collect='xray_bench::sdk::one_call' \
//!     target/release/examples/profile_sdk_call 200 both get
//! ```

use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::XRaySubscriber;
use xray_bench::sdk::{Call, client, one_call, runtime, warm_up};
use xray_bench::spans::{NoOp, invocation};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let which = args.next().unwrap_or_else(|| "both".into());
    let call = match args.next().as_deref() {
        Some("query") => Call::Query,
        _ => Call::GetItem,
    };
    let unread = args.next().as_deref() == Some("unread");
    // SAFETY: first thing the program does; no other thread runs yet.
    unsafe { xray_bench::sdk::lambda_environment() };
    let rt = runtime();
    let sink = xray_testkit::Daemon::counting();
    let nobody = std::net::UdpSocket::bind("127.0.0.1:0").expect("a socket");
    let daemon = if unread {
        nobody.local_addr().expect("its address")
    } else {
        sink.addr()
    };
    let interceptor = matches!(which.as_str(), "interceptor" | "both");
    let c = client(call, interceptor);
    let run = || {
        let invocation = invocation();
        let _in = invocation.enter();
        warm_up(&rt, &c, call);
        for _ in 0..n {
            one_call(&rt, &c, call);
        }
    };
    if matches!(which.as_str(), "layer" | "both") {
        let layer = XRaySubscriber::builder()
            .daemon(daemon)
            .lambda(true)
            .build()
            .unwrap();
        let handle = layer.handle();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), run);
        let _ = handle.flush(Duration::from_secs(5));
        println!("{:?}", handle.stats());
    } else {
        tracing::subscriber::with_default(tracing_subscriber::registry().with(NoOp), run);
    }
}
