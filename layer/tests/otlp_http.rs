//! OTLP/HTTP to a real local receiver (hyper): the request bodies decode
//! with the official `opentelemetry-proto` types and carry the headers of
//! `OTEL_EXPORTER_OTLP_HEADERS`; a 503 is retried; a receiver that never
//! answers delays nothing and its spans are counted lost, also when the
//! layer shuts down first; `AWS_XRAY_DAEMON_ADDRESS` starts the sampling
//! poller.
//!
//! One test in this binary: it sets process-wide environment variables.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tracing_core::Dispatch;
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::{Format, XRaySubscriber};
use xray_testkit::otlp::{decode_request, hex, spans};

type Seen = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// Answers 503 to the first `fail_first` requests, then 200; records
/// (path, header, body) of each.
async fn receiver(fail_first: usize) -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (s, calls) = (s.clone(), calls.clone());
            let service = hyper::service::service_fn(move |r: Request<Incoming>| {
                let (s, calls) = (s.clone(), calls.clone());
                async move {
                    let path = r.uri().path().to_string();
                    let team = (r.headers().get("x-team"))
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default();
                    let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    let status = if n < fail_first { 503 } else { 200 };
                    if status == 200 {
                        s.lock().unwrap().push((path, team, body));
                    }
                    let mut response = Response::new(Full::new(Bytes::new()));
                    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (addr, seen)
}

fn otlp_layer(endpoint: String) -> XRaySubscriber {
    XRaySubscriber::builder()
        .lambda(false)
        .format(Format::Otlp)
        .otlp_endpoint(endpoint)
        .service_name("orders")
        .sampling_rate(1.0)
        .centralized_sampling(false)
        .build()
        .unwrap()
}

fn some_spans() {
    let _root = tracing::info_span!(
        "request",
        xray.trace_header = "Root=1-6720f3a0-0123456789abcdef01234567;Sampled=1"
    )
    .entered();
    for i in 0..5 {
        let _child = tracing::info_span!("step", index = i).entered();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_retried_and_counted() {
    // SAFETY: the only test of this binary, before anything reads the environment.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_HEADERS", "x-team=abc%3D");
        std::env::set_var("OTEL_EXPORTER_OTLP_TIMEOUT", "200");
        std::env::remove_var("AWS_LAMBDA_FUNCTION_NAME");
        std::env::remove_var("AWS_XRAY_DAEMON_ADDRESS");
    }

    // A receiver that answers 503 once, then 200: the request is retried.
    let (addr, seen) = receiver(1).await;
    let layer = otlp_layer(format!("http://{addr}"));
    let handle = layer.handle();
    // Kept: dropping the layer would shut it down before the retry.
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, some_spans);
    assert!(handle.flush(Duration::from_secs(2)).complete);
    for _ in 0..300 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let received = seen.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "one request, after one 503");
    let (path, team, body) = &received[0];
    assert_eq!(path, "/v1/traces");
    assert_eq!(team, "abc=");
    let all = spans(&[decode_request(body)]);
    assert_eq!(all.len(), 6);
    let root = all
        .iter()
        .find(|s| s.name == "orders")
        .expect("the segment, a server span");
    assert_eq!(root.kind, 2);
    assert_eq!(hex(&root.trace_id), "6720f3a00123456789abcdef01234567");
    assert_eq!(
        all.iter()
            .filter(|s| s.parent_span_id == root.span_id)
            .count(),
        5
    );
    let stats = handle.stats();
    assert_eq!((stats.spans_sent, stats.spans_lost), (6, 0));
    drop(dispatch);

    // A receiver that accepts and never answers: nothing waits for it, and
    // after the retries its spans are counted lost.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming() {
            held.push(s);
        }
    });
    let layer = otlp_layer(format!("http://{silent_addr}/v1/traces"));
    let handle = layer.handle();
    let started = Instant::now();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, some_spans);
    assert!(handle.flush(Duration::from_secs(2)).complete);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "the export never holds the caller"
    );
    let deadline = Instant::now() + Duration::from_secs(6);
    while handle.stats().spans_lost < 6 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = handle.stats();
    assert_eq!((stats.spans_sent, stats.spans_lost), (0, 6), "{stats:?}");
    assert!(stats.send_errors >= 1);
    drop(dispatch);

    // Shut down while the worker still waits for the silent receiver: the
    // shutdown keeps to its bound, and the request it could not finish is
    // counted lost rather than left counted as sent.
    let layer = otlp_layer(format!("http://{silent_addr}/v1/traces"));
    let handle = layer.handle();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, some_spans);
    let started = Instant::now();
    let flushed = handle.shutdown(Duration::from_millis(300));
    assert!(flushed.complete, "the sender handed the request over");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "shutdown keeps to its bound: {:?}",
        started.elapsed()
    );
    let stats = handle.stats();
    assert_eq!(
        (stats.spans_sent, stats.spans_lost),
        (0, 6),
        "a request still with the worker at shutdown is lost: {stats:?}"
    );
    drop(dispatch);

    // With OTLP/HTTP, `AWS_XRAY_DAEMON_ADDRESS` names the daemon whose
    // sampling rules decide (no daemon is assumed without it).
    let rules = rules_proxy().await;
    // SAFETY: as above; the sender threads started so far read no variable.
    unsafe {
        std::env::set_var(
            "AWS_XRAY_DAEMON_ADDRESS",
            format!("127.0.0.1:{}", rules.port()),
        )
    };
    let (addr, _seen) = receiver(0).await;
    let layer = XRaySubscriber::builder()
        .lambda(false)
        .format(Format::Otlp)
        .otlp_endpoint(format!("http://{addr}"))
        .build()
        .unwrap();
    let handle = layer.handle();
    let deadline = Instant::now() + Duration::from_secs(10);
    while handle.sampling_rules() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        handle.sampling_rules(),
        1,
        "the daemon's rules are in force"
    );
    drop(layer);
}

/// Answers `GetSamplingRules` with one rule, like the daemon's proxy.
async fn rules_proxy() -> SocketAddr {
    const RULES: &str = r#"{"SamplingRuleRecords":[{"SamplingRule":{"RuleName":"Default","ResourceARN":"*","Priority":10000,"FixedRate":0.5,"ReservoirSize":1,"ServiceName":"*","ServiceType":"*","Host":"*","HTTPMethod":"*","URLPath":"*","Version":1,"Attributes":{}}}],"NextToken":null}"#;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper::service::service_fn(|r: Request<Incoming>| async move {
                let text = match r.uri().path() {
                    "/GetSamplingRules" => RULES,
                    _ => r#"{"SamplingTargetDocuments":[],"UnprocessedStatistics":[]}"#,
                };
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    addr
}
