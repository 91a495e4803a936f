//! Centralized sampling against a stand-in for the daemon's sampling proxy
//! (a real HTTP server on 127.0.0.1 answering with the X-Ray API's shapes)
//! and a real UDP receiver: which requests become segments, what the
//! statistics report, how a new target changes the decisions, and that a
//! broken proxy never delays a request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::{DaemonAddress, XRayHandle, XRaySubscriber};
use xray_testkit::Daemon;

const RULES: &str = r#"{"SamplingRuleRecords":[
  {"SamplingRule":{"RuleName":"Default","ResourceARN":"*","Priority":10000,"FixedRate":0.0,"ReservoirSize":0,"ServiceName":"*","ServiceType":"*","Host":"*","HTTPMethod":"*","URLPath":"*","Version":1,"Attributes":{}}},
  {"SamplingRule":{"RuleName":"health","ResourceARN":"*","Priority":1,"FixedRate":0.0,"ReservoirSize":0,"ServiceName":"*","ServiceType":"*","Host":"*","HTTPMethod":"*","URLPath":"/health","Version":1,"Attributes":{}}},
  {"SamplingRule":{"RuleName":"orders","ResourceARN":"*","Priority":10,"FixedRate":1.0,"ReservoirSize":0,"ServiceName":"shop","ServiceType":"*","Host":"*","HTTPMethod":"GET","URLPath":"/orders/*","Version":1,"Attributes":{}}}
],"NextToken":null}"#;

/// What the stand-in answers, and what it was sent.
#[derive(Default)]
struct Proxy {
    /// The `orders` rule's target: (rate, quota).
    orders: Mutex<(f64, Option<u64>)>,
    /// Every `SamplingTargets` body received.
    reports: Mutex<Vec<Value>>,
    /// `Some`: answer every request with this, whatever it is.
    broken: Option<&'static str>,
}

async fn answer(
    req: Request<Incoming>,
    proxy: Arc<Proxy>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let text = match (proxy.broken, path.as_str()) {
        (Some(broken), _) => broken.to_string(),
        (None, "/GetSamplingRules") => RULES.to_string(),
        (None, "/SamplingTargets") => {
            let sent: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            proxy.reports.lock().unwrap().push(sent);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            let (rate, quota) = *proxy.orders.lock().unwrap();
            let mut orders = json!({"RuleName": "orders", "FixedRate": rate, "Interval": 1});
            if let Some(q) = quota {
                orders["ReservoirQuota"] = json!(q);
                orders["ReservoirQuotaTTL"] = json!(now + 3600.0);
            }
            json!({
                "SamplingTargetDocuments": [
                    orders,
                    {"RuleName": "health", "FixedRate": 0.0, "Interval": 1},
                    {"RuleName": "Default", "FixedRate": 0.0, "Interval": 1},
                ],
                "LastRuleModification": 0.0,
                "UnprocessedStatistics": [],
            })
            .to_string()
        }
        _ => "{}".to_string(),
    };
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(text)))
        .unwrap())
}

/// Serves `proxy` on 127.0.0.1; returns its port.
async fn serve(proxy: Arc<Proxy>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let proxy = proxy.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| answer(req, proxy.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    port
}

fn layer(daemon: &Daemon, tcp_port: u16) -> (XRaySubscriber, XRayHandle) {
    let address = DaemonAddress::parse(&format!(
        "udp:127.0.0.1:{} tcp:127.0.0.1:{tcp_port}",
        daemon.addr().port()
    ))
    .unwrap();
    let layer = XRaySubscriber::builder()
        .daemon_address(address)
        .lambda(false)
        .service_name("shop")
        .build()
        .unwrap();
    let handle = layer.handle();
    (layer, handle)
}

/// `n` requests, each a root span; the longest any one took to open.
fn requests(method: &str, path: &str, n: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    for _ in 0..n {
        let started = Instant::now();
        let span = tracing::info_span!("request", http.request.method = method, url.path = path);
        slowest = slowest.max(started.elapsed());
        drop(span);
    }
    slowest
}

/// Segments received per `url.path`.
fn segments_by_path(daemon: &Daemon) -> HashMap<String, usize> {
    let mut by_path = HashMap::new();
    for doc in daemon.documents() {
        let path = doc["metadata"]["default"]["url.path"]
            .as_str()
            .unwrap_or("?")
            .to_string();
        *by_path.entry(path).or_default() += 1;
    }
    by_path
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The counts reported for `rule` in a `SamplingTargets` body.
fn counts(report: &Value, rule: &str) -> Option<(u64, u64, u64)> {
    let d = report["SamplingStatisticsDocuments"]
        .as_array()?
        .iter()
        .find(|d| d["RuleName"] == rule)?;
    assert_eq!(d["ClientID"].as_str().map(str::len), Some(24));
    assert!(d["Timestamp"].as_f64().is_some());
    Some((
        d["RequestCount"].as_u64()?,
        d["SampledCount"].as_u64()?,
        d["BorrowCount"].as_u64()?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accounts_rules_decide_what_is_sampled_and_are_told_what_happened() {
    let proxy = Arc::new(Proxy {
        orders: Mutex::new((1.0, None)),
        ..Proxy::default()
    });
    let port = serve(proxy.clone()).await;
    let daemon = Daemon::start();
    let (layer, handle) = layer(&daemon, port);
    let subscriber = tracing_subscriber::registry().with(layer);
    let proxy2 = proxy.clone();
    tokio::task::spawn_blocking(move || {
        tracing::subscriber::with_default(subscriber, || {
            wait_for("the rules", Duration::from_secs(5), || {
                handle.sampling_rules() == 3
            });
            // Wait for the first report: the targets (interval 1 s) are in force.
            wait_for("a first report", Duration::from_secs(5), || {
                !proxy2.reports.lock().unwrap().is_empty()
            });
            let reports_before = proxy2.reports.lock().unwrap().len();
            let started = Instant::now();
            requests("GET", "/health", 50);
            requests("GET", "/orders/7", 40);
            requests("POST", "/orders/9", 30); // not GET: the Default rule
            let seconds = started.elapsed().as_secs() + 1;
            assert!(handle.flush(Duration::from_secs(2)).complete);
            std::thread::sleep(Duration::from_millis(200));
            let by_path = segments_by_path(&daemon);
            assert_eq!(
                by_path.get("/orders/7"),
                Some(&40),
                "rate 1: every one: {by_path:?}"
            );
            let health = by_path.get("/health").copied().unwrap_or(0) as u64;
            assert!(
                health <= seconds,
                "rate 0: at most one a second borrowed, got {health}"
            );

            // The reports from here on carry exactly these counts (one may
            // have gone out during the requests: the next one has the rest).
            let done = proxy2.reports.lock().unwrap().len();
            wait_for("the next report", Duration::from_secs(5), || {
                proxy2.reports.lock().unwrap().len() > done
            });
            let reports = proxy2.reports.lock().unwrap().clone();
            let sum = |rule| {
                reports[reports_before..]
                    .iter()
                    .filter_map(|r| counts(r, rule))
                    .fold((0, 0, 0), |a, c| (a.0 + c.0, a.1 + c.1, a.2 + c.2))
            };
            let (requests_h, sampled_h, borrowed_h) = sum("health");
            assert_eq!(requests_h, 50);
            assert_eq!(sampled_h, health, "sampled as received");
            assert_eq!(borrowed_h, sampled_h, "a rate-0 rule only borrows");
            let (requests_o, sampled_o, _) = sum("orders");
            assert_eq!((requests_o, sampled_o), (40, 40));
            let (requests_d, sampled_d, _) = sum("Default");
            assert_eq!(requests_d, 30);
            assert!(sampled_d <= seconds);
            assert_eq!(
                by_path.get("/orders/9").copied().unwrap_or(0) as u64,
                sampled_d
            );

            // A new target: rate 0 and no quota for `orders`, from the next interval.
            *proxy2.orders.lock().unwrap() = (0.0, Some(0));
            let n = proxy2.reports.lock().unwrap().len();
            wait_for("the new target", Duration::from_secs(5), || {
                proxy2.reports.lock().unwrap().len() > n
            });
            std::thread::sleep(Duration::from_millis(100));
            daemon.take();
            requests("GET", "/orders/8", 40);
            assert!(handle.flush(Duration::from_secs(2)).complete);
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(
                segments_by_path(&daemon).get("/orders/8"),
                None,
                "none sampled now"
            );
        });
    })
    .await
    .unwrap();
}

/// Refused, silent or nonsensical: the default rule decides at once, and
/// no request waits for the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_proxy_falls_back_to_the_default_without_delaying_requests() {
    let malformed = serve(Arc::new(Proxy {
        broken: Some("{\"SamplingRuleRecords\": [oops"),
        ..Proxy::default()
    }))
    .await;
    let html = serve(Arc::new(Proxy {
        broken: Some("<html>502 Bad Gateway</html>"),
        ..Proxy::default()
    }))
    .await;
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let refused = xray_testkit::closed_port().port();
    for port in [refused, silent_port, malformed, html] {
        let daemon = Daemon::start();
        let (layer, handle) = layer(&daemon, port);
        let subscriber = tracing_subscriber::registry().with(layer);
        let slowest = tokio::task::spawn_blocking(move || {
            tracing::subscriber::with_default(subscriber, || {
                let slowest = requests("GET", "/orders/1", 200);
                std::thread::sleep(Duration::from_millis(300));
                let slowest = slowest.max(requests("GET", "/orders/1", 200));
                assert_eq!(handle.sampling_rules(), 0, "port {port}");
                assert!(handle.flush(Duration::from_secs(2)).complete);
                let stats = handle.stats();
                // The default: one a second, then 5 %.
                assert!(stats.spans_sent >= 1, "port {port}: {stats:?}");
                assert!(stats.spans_unsampled >= 300, "port {port}: {stats:?}");
                slowest
            })
        })
        .await
        .unwrap();
        assert!(
            slowest < Duration::from_millis(50),
            "port {port}: a request waited {slowest:?}"
        );
    }
    drop(silent);
}

/// Local rules from a file decide when there is no daemon to ask.
#[test]
fn local_rules_from_a_file_decide_without_a_daemon() {
    let dir = std::env::temp_dir().join(format!("tracing-xray-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rules.json");
    std::fs::write(
        &file,
        r#"{"version":2,"rules":[
            {"description":"health","host":"*","http_method":"*","url_path":"/health","fixed_target":0,"rate":0.0},
            {"description":"orders","host":"*","http_method":"GET","url_path":"/orders/*","fixed_target":0,"rate":1.0}
        ],"default":{"fixed_target":0,"rate":0.0}}"#,
    )
    .unwrap();
    let daemon = Daemon::start();
    let layer = XRaySubscriber::builder()
        .daemon(daemon.addr())
        .lambda(false)
        .centralized_sampling(false)
        .sampling_rules_file(&file)
        .build()
        .unwrap();
    let handle = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        requests("GET", "/health", 20);
        requests("GET", "/orders/3", 20);
        requests("DELETE", "/orders/3", 20);
    });
    assert!(handle.flush(Duration::from_secs(2)).complete);
    std::thread::sleep(Duration::from_millis(200));
    let by_path = segments_by_path(&daemon);
    assert_eq!(by_path.get("/orders/3"), Some(&20), "{by_path:?}");
    assert_eq!(by_path.get("/health"), None);
    assert_eq!(handle.stats().spans_unsampled, 40);
    std::fs::remove_dir_all(&dir).unwrap();
}
