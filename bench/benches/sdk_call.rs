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
use xray_bench::sdk::{Call, client, one_call, runtime, traced};
use xray_bench::spans::{NoOp, invocation};
use xray_testkit::Daemon;

fn measure(c: &mut Criterion, call: Call, name: &str) {
    let mut g = c.benchmark_group(format!("sdk_call/{name}"));
    if call == Call::Query {
        g.sample_size(20);
    }
    let rt = runtime();
    let daemon = Daemon::counting();
    let xray = || traced(daemon.addr());
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
/// Between them, (b): the untraced call plus the traced call's datagram,
/// sent alone as the sender would send it: the protocol's share.
#[cfg(target_os = "linux")]
fn one_cpu(c: &mut Criterion) {
    use xray_bench::one_cpu::{DatagramsAlone, Pinned, get_item_datagram};
    let rt = runtime();
    let datagram = get_item_datagram(&rt);
    let Some(_pinned) = Pinned::to_one_cpu() else {
        eprintln!("sdk_call_one_cpu: the affinity cannot be set here; skipped");
        return;
    };
    let mut g = c.benchmark_group("sdk_call_one_cpu/get_item");
    // Made after pinning: the daemon's and the sender's threads inherit it.
    let daemon = Daemon::counting();
    let noop = Dispatch::new(tracing_subscriber::registry().with(NoOp));
    let plain = client(Call::GetItem, false);
    // Each made when its turn comes: no other variant's thread shares the
    // CPU while one is measured.
    tracing::dispatcher::with_default(&noop, || {
        let invocation = invocation();
        let _in = invocation.enter();
        g.bench_function(BenchmarkId::from_parameter("a_registry_noop"), |b| {
            b.iter(|| one_call(&rt, &plain, Call::GetItem))
        });
        let alone = DatagramsAlone::start(daemon.addr(), datagram.clone());
        let mut ran = false;
        g.bench_function(BenchmarkId::from_parameter("b_datagrams_alone"), |b| {
            ran = true;
            b.iter(|| {
                one_call(&rt, &plain, Call::GetItem);
                alone.one();
            })
        });
        drop(alone);
        // As for the OpenTelemetry baseline: sends that failed would look cheap.
        if ran {
            assert!(
                daemon.spans() > 0,
                "the protocol's datagrams reached no daemon"
            );
        }
    });
    let dispatch = traced(daemon.addr());
    let c = client(Call::GetItem, true);
    tracing::dispatcher::with_default(&dispatch, || {
        let invocation = invocation();
        let _in = invocation.enter();
        g.bench_function(
            BenchmarkId::from_parameter("d_subscriber_and_interceptor"),
            |b| b.iter(|| one_call(&rt, &c, Call::GetItem)),
        );
    });
    g.finish();
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
