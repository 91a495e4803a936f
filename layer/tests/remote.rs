//! HTTP and database calls told by OpenTelemetry's semantic-convention
//! fields (current names and the older ones) become `remote` subsegments:
//! an HTTP client span named after the host it calls, a database span named
//! `database@host` with an `sql` block. Every document is checked against
//! the segment schema.

use std::time::Duration;

use serde_json::Value;
use tracing::info_span;
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::XRaySubscriber;
use xray_testkit::{Daemon, entities};

/// Runs `f` inside a sampled invocation; the entities sent, by name.
fn traced(spans: usize, f: impl FnOnce()) -> Vec<Value> {
    let daemon = Daemon::start();
    let layer = XRaySubscriber::builder()
        .daemon(daemon.addr())
        .lambda(true)
        .build()
        .unwrap();
    let handle = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let inv = info_span!(target: "lambda_runtime::layers::trace", "Lambda runtime invoke",
            requestId = "req-1",
            xrayTraceId = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1");
        let _g = inv.enter();
        f();
    });
    assert!(handle.flush(Duration::from_secs(2)).complete);
    let docs = daemon.documents_with_spans(spans, Duration::from_secs(2));
    entities(&docs)
}

fn named<'a>(entities: &'a [Value], name: &str) -> &'a Value {
    entities
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {entities:#?}"))
}

#[test]
fn an_http_client_span_is_a_remote_subsegment_named_after_its_host() {
    let e = traced(4, || {
        let call = info_span!(
            "call_partner",
            otel.kind = "client",
            http.request.method = "GET",
            url.full = "https://api.partner.example/v1/orders/7",
            server.address = "api.partner.example",
            http.response.status_code = tracing::field::Empty
        );
        call.record("http.response.status_code", 404u64);
        drop(call);
        // `peer.service` names the node when given.
        let _ = info_span!(
            "call_billing",
            otel.kind = "client",
            http.request.method = "POST",
            url.full = "https://10.0.0.7:8443/charge",
            peer.service = "billing"
        );
        // The older names.
        let _ = info_span!(
            "legacy_call",
            otel.kind = "client",
            http.method = "GET",
            http.url = "http://inventory.internal:8080/items?id=3",
            http.status_code = 200u64
        );
        // A server span is this service's own work: no namespace.
        let _ = info_span!(
            "handle",
            otel.kind = "server",
            http.request.method = "GET",
            url.full = "https://me.example/x"
        );
    });
    let partner = named(&e, "api.partner.example");
    assert_eq!(partner["namespace"], "remote");
    assert_eq!(partner["http"]["request"]["method"], "GET");
    assert_eq!(
        partner["http"]["request"]["url"],
        "https://api.partner.example/v1/orders/7"
    );
    assert_eq!(partner["http"]["response"]["status"], 404);
    assert_eq!(partner["error"], true);
    assert_eq!(partner["metadata"]["default"]["span_name"], "call_partner");
    let billing = named(&e, "billing");
    assert_eq!(billing["namespace"], "remote");
    let legacy = named(&e, "inventory.internal");
    assert_eq!(legacy["namespace"], "remote");
    assert_eq!(legacy["http"]["response"]["status"], 200);
    let server = named(&e, "handle");
    assert!(server.get("namespace").is_none(), "{server}");
}

#[test]
fn a_database_span_is_a_remote_subsegment_with_an_sql_block() {
    let e = traced(3, || {
        let _ = info_span!(
            "query_orders",
            db.system = "postgresql",
            db.namespace = "orders",
            db.query.text = "SELECT * FROM orders WHERE id = $1",
            db.user = "app",
            server.address = "db.internal",
            server.port = 5432
        );
        let _ = info_span!(
            "old_query",
            db.system = "mysql",
            db.name = "shop",
            db.statement = "UPDATE carts SET n = ?",
            net.peer.name = "mysql.internal"
        );
        // `xray.name` keeps the name given.
        let _ = info_span!(
            "cache_get",
            db.system = "redis",
            server.address = "cache",
            xray.name = "session-cache"
        );
    });
    let pg = named(&e, "orders@db.internal");
    assert_eq!(pg["namespace"], "remote");
    assert_eq!(pg["sql"]["database_type"], "PostgreSQL");
    assert_eq!(pg["sql"]["url"], "db.internal:5432/orders");
    assert_eq!(
        pg["sql"]["sanitized_query"],
        "SELECT * FROM orders WHERE id = $1"
    );
    assert_eq!(pg["sql"]["user"], "app");
    assert_eq!(pg["metadata"]["default"]["span_name"], "query_orders");
    let my = named(&e, "shop@mysql.internal");
    assert_eq!(my["sql"]["database_type"], "MySQL");
    assert_eq!(my["sql"]["url"], "mysql.internal/shop");
    assert_eq!(my["sql"]["sanitized_query"], "UPDATE carts SET n = ?");
    let cache = named(&e, "session-cache");
    assert_eq!(cache["namespace"], "remote");
    assert_eq!(cache["sql"]["database_type"], "Redis");
}
