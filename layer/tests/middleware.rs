//! The HTTP middleware against real servers and clients on 127.0.0.1: the
//! trace header a server receives names the client subsegment as parent;
//! statuses give the right flags; the server layer continues an incoming
//! trace and answers with its id. Every document is schema-checked.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tower::{Service, ServiceBuilder, ServiceExt};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::middleware::{ClientLayer, ReqwestMiddleware, ServerLayer};
use tracing_xray::{XRayHandle, XRaySubscriber};
use xray_testkit::{Daemon, entities};

/// Answers `/ok` 200, `/missing` 404, `/busy` 503, `/slow-down` 429,
/// remembering the `X-Amzn-Trace-Id` of each request.
async fn downstream() -> (SocketAddr, Arc<Mutex<Vec<(String, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let s = s.clone();
            let service = hyper::service::service_fn(move |r: Request<Incoming>| {
                let header = (r.headers().get("x-amzn-trace-id"))
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                s.lock().unwrap().push((r.uri().path().to_string(), header));
                let status = match r.uri().path() {
                    "/ok" => 200,
                    "/missing" => 404,
                    "/slow-down" => 429,
                    _ => 503,
                };
                async move {
                    let mut response = Response::new(Full::new(Bytes::from_static(b"x")));
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

fn subscriber(daemon: &Daemon) -> (impl tracing::Subscriber + Send + Sync, XRayHandle) {
    let layer = XRaySubscriber::builder()
        .daemon(daemon.addr())
        .lambda(false)
        .service_name("orders")
        .sampling_rate(1.0)
        .centralized_sampling(false)
        .build()
        .unwrap();
    let handle = layer.handle();
    (tracing_subscriber::registry().with(layer), handle)
}

fn header_part<'a>(header: &'a str, key: &str) -> &'a str {
    header
        .split(';')
        .find_map(|p| p.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_default()
}

/// The client subsegments under the one segment, by path.
fn calls(docs: &[Value]) -> Vec<Value> {
    entities(docs)
        .into_iter()
        .filter(|e| e["namespace"] == "remote")
        .collect()
}

fn check_calls(docs: &[Value], seen: &[(String, String)], addr: SocketAddr) {
    let segment = entities(docs)
        .into_iter()
        .find(|e| e["name"] == "orders")
        .unwrap();
    let trace = segment["trace_id"].as_str().unwrap();
    let calls = calls(docs);
    assert_eq!(calls.len(), 4, "{docs:#?}");
    for (path, header) in seen {
        assert_eq!(header_part(header, "Root"), trace);
        assert_eq!(header_part(header, "Sampled"), "1");
        let call = calls
            .iter()
            .find(|c| c["id"] == header_part(header, "Parent"))
            .unwrap_or_else(|| panic!("the Parent of {header} is a client subsegment: {calls:#?}"));
        assert_eq!(call["name"], "127.0.0.1");
        assert_eq!(call["traced"], true);
        assert_eq!(call["http"]["request"]["method"], "GET");
        assert_eq!(
            call["http"]["request"]["url"],
            format!("http://{addr}{path}")
        );
        let (status, error, throttle, fault) = match path.as_str() {
            "/ok" => (200, false, false, false),
            "/missing" => (404, true, false, false),
            "/slow-down" => (429, true, true, false),
            _ => (503, false, false, true),
        };
        assert_eq!(call["http"]["response"]["status"], status, "{call}");
        assert_eq!(call["error"] == true, error, "{call}");
        assert_eq!(call["throttle"] == true, throttle, "{call}");
        assert_eq!(call["fault"] == true, fault, "{call}");
    }
}

const PATHS: [&str; 4] = ["/ok", "/missing", "/slow-down", "/busy"];

#[tokio::test]
async fn tower_client_sends_its_subsegment_as_parent() {
    let daemon = Daemon::start();
    let (subscriber, handle) = subscriber(&daemon);
    let _default = tracing::subscriber::set_default(subscriber);
    let (addr, seen) = downstream().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut client = ServiceBuilder::new()
        .layer(ClientLayer::new())
        .service(client);
    async {
        for path in PATHS {
            let request = Request::get(format!("http://{addr}{path}"))
                .body(Empty::new())
                .unwrap();
            let response = client.ready().await.unwrap().call(request).await.unwrap();
            let _ = response.into_body().collect().await;
        }
    }
    .instrument(tracing::info_span!("request", xray.trace_header = ""))
    .await;
    assert!(handle.flush(Duration::from_secs(2)).complete);
    let docs = daemon.documents_with_spans(5, Duration::from_secs(2));
    check_calls(&docs, &seen.lock().unwrap(), addr);
}

#[tokio::test]
async fn reqwest_middleware_sends_its_subsegment_as_parent() {
    let daemon = Daemon::start();
    let (subscriber, handle) = subscriber(&daemon);
    let _default = tracing::subscriber::set_default(subscriber);
    let (addr, seen) = downstream().await;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(ReqwestMiddleware::new())
        .build();
    // A trace entered with a `Lineage`: it goes on downstream.
    let incoming = "Root=1-6720f3a0-0123456789abcdef01234567;Sampled=1;Lineage=a87bd80c:1";
    async {
        for path in PATHS {
            client
                .get(format!("http://{addr}{path}"))
                .send()
                .await
                .unwrap();
        }
    }
    .instrument(tracing::info_span!("request", xray.trace_header = incoming))
    .await;
    assert!(handle.flush(Duration::from_secs(2)).complete);
    let docs = daemon.documents_with_spans(5, Duration::from_secs(2));
    let seen = seen.lock().unwrap();
    check_calls(&docs, &seen, addr);
    for (_, header) in seen.iter() {
        assert_eq!(header_part(header, "Lineage"), "a87bd80c:1", "{header}");
    }
}

#[tokio::test]
async fn a_call_without_an_answer_is_a_fault() {
    let daemon = Daemon::start();
    let (subscriber, handle) = subscriber(&daemon);
    let _default = tracing::subscriber::set_default(subscriber);
    let closed = xray_testkit::closed_port();
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut client = ServiceBuilder::new()
        .layer(ClientLayer::new())
        .service(client);
    async {
        let request = Request::get(format!("http://{closed}/ok"))
            .body(Empty::new())
            .unwrap();
        assert!(client.ready().await.unwrap().call(request).await.is_err());
    }
    .instrument(tracing::info_span!("request", xray.trace_header = ""))
    .await;
    assert!(handle.flush(Duration::from_secs(2)).complete);
    let docs = daemon.documents_with_spans(2, Duration::from_secs(2));
    let call = &calls(&docs)[0];
    assert_eq!(call["fault"], true, "{call}");
    assert!(call["http"].get("response").is_none());
    let exception = &call["cause"]["exceptions"][0];
    assert_eq!(exception["remote"], true);
    assert!(!exception["message"].as_str().unwrap().is_empty());
}

/// A server behind `ServerLayer`, answering 200 (or 500 on `/fail`).
async fn traced_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        async move {
            while let Ok((stream, _)) = listener.accept().await {
                let app = tower::service_fn(|r: Request<Incoming>| async move {
                    async { tokio::time::sleep(Duration::from_millis(2)).await }
                        .instrument(tracing::info_span!("load_order"))
                        .await;
                    let status = if r.uri().path() == "/fail" { 500 } else { 200 };
                    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                    Ok::<_, Infallible>(response)
                });
                let service = ServiceBuilder::new().layer(ServerLayer::new()).service(app);
                let service = hyper_util::service::TowerToHyperService::new(service);
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        }
        .in_current_span(),
    );
    addr
}

async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response<Incoming> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut request = Request::get(format!("http://{addr}{path}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    client
        .request(request.body(Empty::new()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn server_layer_continues_the_callers_trace_and_answers_with_it() {
    let daemon = Daemon::start();
    let (subscriber, handle) = subscriber(&daemon);
    let _default = tracing::subscriber::set_default(subscriber);
    let addr = traced_server().await;

    let root = "1-6720f3a0-0123456789abcdef01234567";
    let incoming = format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1");
    let response = get(
        addr,
        "/orders/7?full=1",
        &[
            ("x-amzn-trace-id", &incoming),
            ("user-agent", "curl/8.5.0"),
            ("x-forwarded-for", "203.0.113.7, 10.0.0.1"),
        ],
    )
    .await;
    assert_eq!(
        response.headers()["x-amzn-trace-id"],
        format!("Root={root}")
    );

    // The caller lets us decide: the answer says what we decided.
    let asked = "Root=1-6720f3a0-aaaaaaaaaaaaaaaaaaaaaaaa;Sampled=?";
    let response = get(addr, "/fail", &[("x-amzn-trace-id", asked)]).await;
    assert_eq!(
        response.headers()["x-amzn-trace-id"],
        "Root=1-6720f3a0-aaaaaaaaaaaaaaaaaaaaaaaa;Sampled=1"
    );
    // No header: a new trace, whose id comes back.
    let response = get(addr, "/health", &[]).await;
    let answer = response.headers()["x-amzn-trace-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        answer.starts_with("Root=1-") && !answer.contains("Sampled"),
        "{answer}"
    );

    assert!(handle.flush(Duration::from_secs(2)).complete);
    let docs = daemon.documents_with_spans(6, Duration::from_secs(2));
    let segments: Vec<&Value> = docs.iter().filter(|d| d.get("type").is_none()).collect();
    assert_eq!(segments.len(), 3, "{docs:#?}");
    let first = segments.iter().find(|d| d["trace_id"] == root).unwrap();
    assert_eq!(first["name"], "orders");
    assert_eq!(first["parent_id"], "53995c3f42cd8ad8");
    assert_eq!(first["http"]["request"]["method"], "GET");
    assert_eq!(
        first["http"]["request"]["url"],
        format!("http://{addr}/orders/7?full=1")
    );
    assert_eq!(first["http"]["request"]["user_agent"], "curl/8.5.0");
    assert_eq!(first["http"]["request"]["client_ip"], "203.0.113.7");
    assert_eq!(first["http"]["request"]["x_forwarded_for"], true);
    assert_eq!(first["http"]["response"]["status"], 200);
    assert_eq!(first["subsegments"][0]["name"], "load_order");
    let failed = segments
        .iter()
        .find(|d| d["trace_id"] == "1-6720f3a0-aaaaaaaaaaaaaaaaaaaaaaaa")
        .unwrap();
    assert_eq!(failed["fault"], true);
    assert_eq!(failed["http"]["response"]["status"], 500);
    assert!(failed.get("parent_id").is_none());
    let fresh = segments
        .iter()
        .find(|d| answer.contains(d["trace_id"].as_str().unwrap()))
        .unwrap();
    assert_eq!(
        fresh["http"]["request"]["url"],
        format!("http://{addr}/health")
    );
}
