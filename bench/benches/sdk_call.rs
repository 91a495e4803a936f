//! The cost of tracing an AWS SDK call, measured on the call: the real
//! `aws-sdk-dynamodb` client answered in-process (no network), inside a
//! sampled Lambda invocation (with the environment `lambda_runtime` sets),
//! on the caller's thread. Variants: (a)
//! `Registry` + no-op layer, plain client (the baseline); (b) +
//! `XRaySubscriber`; (c) + `XRayInterceptor` only; (d) both; (e)
//! tracing-opentelemetry with the OpenTelemetry SDK and opentelemetry-aws's
//! X-Ray exporter, from the SDK's own spans. A small GetItem and a Query
//! answered with a 1 MB page.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_aws::xray_exporter::XrayExporter;
use opentelemetry_aws::xray_exporter::daemon_client::XrayDaemonClient;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_core::Dispatch;
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::XRaySubscriber;
use xray_bench::sdk::{Call, client, one_call, runtime};
use xray_bench::spans::{NoOp, invocation};
use xray_testkit::Daemon;

/// `Registry` + `XRaySubscriber` as in Lambda, sending to `daemon`.
fn traced(daemon: &Daemon) -> Dispatch {
    let layer = XRaySubscriber::builder()
        .daemon(daemon.addr())
        .lambda(true)
        .report_errors(false)
        .build()
        .unwrap();
    Dispatch::new(tracing_subscriber::registry().with(layer))
}

fn measure(c: &mut Criterion, call: Call, name: &str) {
    let mut g = c.benchmark_group(format!("sdk_call/{name}"));
    if call == Call::Query {
        g.sample_size(20);
    }
    let rt = runtime();
    let daemon = Daemon::counting();
    let xray = || traced(&daemon);
    let noop = || Dispatch::new(tracing_subscriber::registry().with(NoOp));
    let variants: [(&str, Dispatch, bool); 4] = [
        ("a_registry_noop", noop(), false),
        ("b_xray_subscriber", xray(), false),
        ("c_xray_interceptor", noop(), true),
        ("d_subscriber_and_interceptor", xray(), true),
    ];
    for (label, dispatch, interceptor) in variants {
        let c = client(call, interceptor);
        tracing::dispatcher::with_default(&dispatch, || {
            let invocation = invocation();
            let _in = invocation.enter();
            g.bench_function(BenchmarkId::from_parameter(label), |b| {
                b.iter(|| one_call(&rt, &c, call))
            });
        });
    }
    let otel_daemon = Daemon::counting();
    let provider = SdkTracerProvider::builder()
        .with_id_generator(XrayIdGenerator::default())
        .with_batch_exporter(XrayExporter::new(
            XrayDaemonClient::new(otel_daemon.addr()).expect("the daemon client"),
        ))
        .build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(otel));
    let c = client(call, false);
    let mut ran = false;
    tracing::dispatcher::with_default(&dispatch, || {
        let invocation = invocation();
        let _in = invocation.enter();
        g.bench_function(BenchmarkId::from_parameter("e_opentelemetry_xray"), |b| {
            ran = true;
            b.iter(|| one_call(&rt, &c, call))
        });
    });
    let _ = provider.force_flush();
    let _ = provider.shutdown();
    // The baseline is only one if its spans reach the daemon: an exporter
    // failing fast would look cheap.
    if ran {
        let received = otel_daemon.spans_within(1, Duration::from_secs(2));
        assert!(received > 0, "the OpenTelemetry exporter delivered no span");
    }
    g.finish();
}

/// The baseline and the traced call on one CPU, as in a Lambda function
/// under 1,769 MB (less than one vCPU): there the sender's and the daemon's
/// work, and the caches they leave behind, land on the caller's CPU, which
/// two CPUs hide. This thread is pinned, and the threads it then makes (the
/// daemon's, the sender's) inherit the pin; those made before it are not.
#[cfg(target_os = "linux")]
fn one_cpu(c: &mut Criterion) {
    let Some(_pinned) = Pinned::to_one_cpu() else {
        eprintln!("sdk_call_one_cpu: the affinity cannot be set here; skipped");
        return;
    };
    let mut g = c.benchmark_group("sdk_call_one_cpu/get_item");
    let rt = runtime();
    // Made after pinning: the daemon's and the sender's threads inherit it.
    let daemon = Daemon::counting();
    // Each made when its turn comes: the traced variant's sender does not
    // share the CPU while the baseline is measured.
    let noop = || Dispatch::new(tracing_subscriber::registry().with(NoOp));
    let xray = || traced(&daemon);
    let variants: [(&str, &dyn Fn() -> Dispatch, bool); 2] = [
        ("a_registry_noop", &noop, false),
        ("d_subscriber_and_interceptor", &xray, true),
    ];
    for (label, make, interceptor) in variants {
        let dispatch = make();
        let c = client(Call::GetItem, interceptor);
        tracing::dispatcher::with_default(&dispatch, || {
            let invocation = invocation();
            let _in = invocation.enter();
            g.bench_function(BenchmarkId::from_parameter(label), |b| {
                b.iter(|| one_call(&rt, &c, Call::GetItem))
            });
        });
    }
    g.finish();
}

/// This thread held to the first CPU it may run on, and what it had before
/// restored on drop.
#[cfg(target_os = "linux")]
struct Pinned(libc::cpu_set_t);

#[cfg(target_os = "linux")]
impl Pinned {
    fn to_one_cpu() -> Option<Pinned> {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: an all-zero `cpu_set_t` is the empty set.
        let mut before: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `before` is a `cpu_set_t` of `size` bytes; 0 is this thread.
        if unsafe { libc::sched_getaffinity(0, size, &mut before) } != 0 {
            return None;
        }
        // SAFETY: `before` was filled in above; the index is below its capacity.
        let first =
            (0..libc::CPU_SETSIZE as usize).find(|&i| unsafe { libc::CPU_ISSET(i, &before) })?;
        // SAFETY: as for `before`.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `first` is below the set's capacity; `one` is a valid set of `size` bytes.
        let set = unsafe {
            libc::CPU_SET(first, &mut one);
            libc::sched_setaffinity(0, size, &one)
        };
        (set == 0).then_some(Pinned(before))
    }
}

#[cfg(target_os = "linux")]
impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: the set read when pinning, of its own size; 0 is this thread.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0) };
    }
}

fn sdk_call(c: &mut Criterion) {
    // SAFETY: first thing the benchmark does; no other thread runs yet.
    unsafe { xray_bench::sdk::lambda_environment() };
    measure(c, Call::GetItem, "get_item");
    measure(c, Call::Query, "query_1mb");
    #[cfg(target_os = "linux")]
    one_cpu(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = sdk_call
}
criterion_main!(benches);
