//! The ladder for one span (create, enter, exit, close, two fields) inside a
//! sampled Lambda invocation, on the handler's thread:
//!
//! 1. `Registry` + a no-op layer: the floor any `tracing` layer stands on;
//! 2. `Registry` + `XRaySubscriber`, sending to a UDP socket a thread drains;
//! 3. `tracing-opentelemetry` + the OpenTelemetry SDK (batch processor) +
//!    `opentelemetry-aws`'s X-Ray exporter to the daemon: the route a user
//!    would pick instead;
//! 4. a layer that serializes and sends each span synchronously when it
//!    closes, the approach of the existing nightly-only layer.
//!
//! Spans are timed in batches of 1,000; between batches (untimed) each
//! pipeline is flushed, so no queue is ever full and no span is dropped.

use std::collections::HashMap;
use std::net::UdpSocket;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_aws::xray_exporter::XrayExporter;
use opentelemetry_aws::xray_exporter::daemon_client::XrayDaemonClient;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id};
use tracing_core::{Dispatch, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_xray::{XRayHandle, XRaySubscriber};
use xray_bench::spans::{Floor, NoOp, invocation, one_span};
use xray_testkit::{Daemon, Discard, Gate, closed_port};

const BATCH: u64 = 1_000;

/// Serializes a span with serde_json and sends it on the caller's thread when it closes.
struct SyncSend {
    socket: UdpSocket,
}

struct Started {
    start: f64,
    fields: HashMap<&'static str, serde_json::Value>,
}

struct Collect<'a>(&'a mut HashMap<&'static str, serde_json::Value>);

impl Visit for Collect<'_> {
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.0.insert(f.name(), v.into());
    }
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.insert(f.name(), v.into());
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        self.0.insert(f.name(), format!("{v:?}").into());
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SyncSend {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        attrs.record(&mut Collect(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Started {
                start: now_secs(),
                fields,
            });
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let ext = span.extensions();
        let Some(started) = ext.get::<Started>() else {
            return;
        };
        let doc = serde_json::json!({
            "name": span.name(),
            "id": format!("{:016x}", id.into_u64()),
            "start_time": started.start,
            "end_time": now_secs(),
            "type": "subsegment",
            "trace_id": "1-5759e988-bd862e3fe1be46a994272793",
            "parent_id": "53995c3f42cd8ad8",
            "metadata": { "default": started.fields },
        });
        let mut datagram = b"{\"format\":\"json\",\"version\":1}\n".to_vec();
        serde_json::to_writer(&mut datagram, &doc).unwrap();
        let _ = self.socket.send(&datagram);
    }
}

fn ladder_step(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    dispatch: Dispatch,
    mut settle: impl FnMut(),
) {
    tracing::dispatcher::with_default(&dispatch, || {
        let invocation = invocation();
        let _in = invocation.enter();
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let n = (iters - done).min(BATCH);
                    let start = Instant::now();
                    for i in 0..n {
                        one_span(i);
                    }
                    total += start.elapsed();
                    settle();
                    done += n;
                }
                total
            })
        });
    });
}

/// A step with an `XRaySubscriber`, flushed between batches if `flush`;
/// returns its handle for the stats.
fn xray_step(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    layer: XRaySubscriber,
    flush: bool,
) -> XRayHandle {
    let handle = layer.handle();
    let h = handle.clone();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    ladder_step(g, name, dispatch, move || {
        if flush {
            let _ = h.flush(Duration::from_secs(5));
        }
    });
    handle
}

fn ladder(c: &mut Criterion) {
    let mut g = c.benchmark_group("span_in_invocation");
    g.throughput(Throughput::Elements(1));

    ladder_step(
        &mut g,
        "1_registry_noop_layer",
        Dispatch::new(tracing_subscriber::registry().with(NoOp)),
        || {},
    );

    // The least any layer that hands spans to another thread costs (see
    // `Floor`): what is left above it for following a trace.
    ladder_step(
        &mut g,
        "1b_registry_floor_layer",
        Dispatch::new(tracing_subscriber::registry().with(Floor)),
        || {
            std::hint::black_box(Floor::checksum());
        },
    );

    let daemon = Daemon::counting();
    let layer = XRaySubscriber::builder()
        .daemon(daemon.addr())
        .lambda(true)
        .build()
        .unwrap();
    let handle = xray_step(&mut g, "2_registry_xray_subscriber", layer, true);
    let stats = handle.stats();
    assert_eq!(
        stats.records_dropped, 0,
        "no span may be dropped while measuring: {stats:?}"
    );

    let otel_daemon = Daemon::counting();
    let provider = SdkTracerProvider::builder()
        .with_id_generator(XrayIdGenerator::default())
        .with_batch_exporter(XrayExporter::new(
            XrayDaemonClient::new(otel_daemon.addr()).unwrap(),
        ))
        .build();
    let tracer = provider.tracer("bench");
    let otel =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
    let p = provider.clone();
    let ran = std::rc::Rc::new(std::cell::Cell::new(false));
    let r = ran.clone();
    ladder_step(
        &mut g,
        "3_tracing_opentelemetry_xray_exporter",
        Dispatch::new(otel),
        move || {
            r.set(true);
            let _ = p.force_flush();
        },
    );
    let _ = provider.shutdown();
    // The baseline is only one if its spans reach the daemon: an exporter
    // failing fast would look cheap.
    if ran.get() {
        let received = otel_daemon.spans_within(1, Duration::from_secs(2));
        assert!(received > 0, "the OpenTelemetry exporter delivered no span");
    }

    let sync_daemon = Daemon::counting();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(sync_daemon.addr()).unwrap();
    ladder_step(
        &mut g,
        "4_sync_serialize_and_send",
        Dispatch::new(tracing_subscriber::registry().with(SyncSend { socket })),
        || {},
    );
    g.finish();
}

/// What a Lambda invocation's end costs: closing the invocation span waits
/// until its documents are in the socket. Ten spans, then the close, timed
/// from the close alone.
fn invocation_end(c: &mut Criterion) {
    let daemon = Daemon::counting();
    // The wait is measured, not its bound: on a shared machine a scheduling
    // pause now and then outlasts the default 20 ms, and a flush cut short
    // would measure less than the whole wait (the check below).
    let layer = XRaySubscriber::builder()
        .daemon(daemon.addr())
        .lambda(true)
        .flush_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let handle = layer.handle();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let mut g = c.benchmark_group("invocation_end");
    tracing::dispatcher::with_default(&dispatch, || {
        g.bench_function("close_and_flush_10_spans", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let invocation = invocation();
                    {
                        let _in = invocation.enter();
                        for i in 0..10 {
                            one_span(i);
                        }
                    }
                    let start = Instant::now();
                    drop(invocation);
                    total += start.elapsed();
                }
                total
            })
        });
    });
    g.finish();
    let stats = handle.stats();
    assert_eq!(stats.flush_timeouts, 0, "{stats:?}");
}

/// The span's cost when things go wrong, beside the same span when they do
/// not: no daemon listening, a daemon host that does not resolve, and a
/// stalled sender (producers flat out, every ring full, everything dropped).
fn faults(c: &mut Criterion) {
    let mut g = c.benchmark_group("span_under_faults");
    g.throughput(Throughput::Elements(1));
    let build = |b: tracing_xray::Builder| b.lambda(true).report_errors(false);

    let daemon = Daemon::counting();
    let layer = build(XRaySubscriber::builder().daemon(daemon.addr()));
    xray_step(&mut g, "healthy", layer.build().unwrap(), true);

    let layer = build(XRaySubscriber::builder().daemon(closed_port()));
    let handle = xray_step(&mut g, "no_daemon_listening", layer.build().unwrap(), true);
    let stats = handle.stats();
    // Only when this step ran: a filter may have left it out (its set-up
    // still records the invocation span, which is never sent then).
    assert!(
        stats.spans_sent + stats.spans_lost == 0 || stats.send_errors > 0,
        "{stats:?}"
    );

    let unresolvable = xray_emitter::DaemonAddress::parse("no-such-daemon.invalid:2000").unwrap();
    let layer = build(XRaySubscriber::builder().daemon_address(unresolvable));
    xray_step(
        &mut g,
        "daemon_host_unresolvable",
        layer.build().unwrap(),
        true,
    );

    let (stall, release) = Gate::new(Discard::default());
    let layer = build(XRaySubscriber::builder()).build_with(move || stall);
    let handle = xray_step(&mut g, "sender_stalled_overload", layer.unwrap(), false);
    let stats = handle.stats();
    assert!(
        stats.spans_dropped + stats.spans_sent == 0 || stats.records_dropped > 0,
        "overloaded: records were dropped: {stats:?}"
    );
    {
        release.release();
    }
    g.finish();
}

criterion_group!(benches, ladder, invocation_end, faults);
criterion_main!(benches);
