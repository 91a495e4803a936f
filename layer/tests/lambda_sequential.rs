//! The real `lambda_runtime`, run against a local Runtime API, with
//! `tracing_xray::lambda::init` under `RUST_LOG=info`: each invocation's
//! subsegments carry its own trace id and parent, an unsampled invocation
//! sends nothing, the SDK's DEBUG spans still become subsegments, and
//! everything of an invocation is in the daemon's socket before the runtime
//! asks for the next event (when Lambda would freeze the sandbox).
//!
//! One test in this binary: it sets process-wide environment variables.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::SharedInterceptor;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_http_client::test_util::StaticReplayClient;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use tracing::Instrument;
use tracing_xray::XRayInterceptor;
use tracing_xray::XRaySubscriber;
use xray_testkit::Daemon;
use xray_testkit::runtime_api::{Invocation, RuntimeApi, set_lambda_env};
use xray_testkit::sdk::{dynamodb, get_item_ok};

const TRACES: [(&str, &str, &str); 3] = [
    (
        "1-6720f3a0-aaaaaaaaaaaaaaaaaaaaaaaa",
        "1111111111111111",
        "Sampled=1;Lineage=a87bd80c:1",
    ),
    (
        "1-6720f3a1-bbbbbbbbbbbbbbbbbbbbbbbb",
        "2222222222222222",
        "Sampled=0",
    ),
    (
        "1-6720f3a2-cccccccccccccccccccccccc",
        "3333333333333333",
        "Sampled=1",
    ),
];

async fn handler(
    client: aws_sdk_dynamodb::Client,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let customer = event.payload["customer"]
        .as_str()
        .unwrap_or("none")
        .to_string();
    async {
        tracing::info!("loading the customer");
        client
            .get_item()
            .table_name("customers")
            .key("id", AttributeValue::S(customer.clone()))
            .send()
            .await?;
        Ok(json!({ "customer": customer }))
    }
    .instrument(tracing::info_span!(
        "load_customer",
        annotation.customer = customer.as_str()
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_invocation_traced_with_its_own_header_and_flushed_before_the_next() {
    let invocations = TRACES
        .iter()
        .enumerate()
        .map(|(i, (root, parent, rest))| Invocation {
            request_id: format!("req-{i}"),
            trace_header: format!("Root={root};Parent={parent};{rest}"),
            event: json!({ "customer": format!("c{i}") }).to_string(),
        })
        .collect();
    let api = RuntimeApi::start(invocations).await;
    set_lambda_env(api.addr, &[("RUST_LOG", "info")]);

    // At every /next, note what has reached the daemon's socket by then.
    // Read when asked: what is in the socket at a given instant.
    let inbox = Arc::new(Daemon::polled());
    let arrived_at_next = Arc::new(Mutex::new(Vec::new()));
    let (i, a) = (inbox.clone(), arrived_at_next.clone());
    api.on_next(move |_| {
        let n = i.count();
        a.lock().unwrap().push(n);
    });

    let layer = XRaySubscriber::builder()
        .daemon(inbox.addr())
        .build()
        .unwrap();
    let handle = tracing_xray::lambda::init_with(layer).expect("first subscriber of this process");
    let http = StaticReplayClient::new(vec![
        get_item_ok("R0"),
        get_item_ok("R1"),
        get_item_ok("R2"),
    ]);
    let client = dynamodb(
        http.clone(),
        Some(SharedInterceptor::new(XRayInterceptor::default())),
    );
    let runtime = tokio::spawn(lambda_runtime::run(service_fn(move |e| {
        handler(client.clone(), e)
    })));

    api.wait_answered(3).await;
    for _ in 0..200 {
        if api.log(|l| l.next_calls) >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    runtime.abort();
    assert_eq!(
        api.log(|l| l.responses.len()),
        3,
        "{:?}",
        api.log(|l| l.errors.clone())
    );

    let docs: Vec<Value> = inbox
        .received()
        .iter()
        .map(|d| xray_testkit::check(d))
        .collect();
    let arrived = arrived_at_next.lock().unwrap().clone();
    // The k-th document count is taken at /next number k+1.
    let spans_of = |root: &str, upto: usize| -> usize {
        docs[..upto]
            .iter()
            .filter(|d| d["trace_id"] == root)
            .map(xray_testkit::count_spans)
            .sum()
    };
    assert_eq!(arrived.len(), 4, "four long polls: {arrived:?}");
    assert_eq!(
        spans_of(TRACES[0].0, arrived[1]),
        2,
        "invocation 1 complete before /next #2"
    );
    assert_eq!(
        arrived[2], arrived[1],
        "the unsampled invocation sent nothing"
    );
    assert_eq!(
        spans_of(TRACES[2].0, arrived[3]),
        2,
        "invocation 3 complete before /next #4"
    );

    for (root, parent, _) in [TRACES[0], TRACES[2]] {
        let mine: Vec<&Value> = docs.iter().filter(|d| d["trace_id"] == root).collect();
        assert_eq!(mine.len(), 1, "one document per invocation: {docs:?}");
        let d = mine[0];
        assert_eq!(d["parent_id"], parent);
        assert_eq!(d["name"], "load_customer");
        let call = &d["subsegments"][0];
        assert_eq!(
            call["name"], "DynamoDB",
            "the SDK's DEBUG spans reach X-Ray under RUST_LOG=info"
        );
        assert_eq!(call["aws"]["table_name"], "customers");
        assert_eq!(call["http"]["response"]["status"], 200);
    }
    assert!(docs.iter().all(|d| d["trace_id"] != TRACES[1].0));

    // Downstream headers: this call as parent when sampled; the decision when not.
    let sent: Vec<String> = http
        .actual_requests()
        .map(|r| {
            r.headers()
                .get("x-amzn-trace-id")
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let call_id = |root: &str| {
        let d = docs.iter().find(|d| d["trace_id"] == root).unwrap();
        d["subsegments"][0]["id"].as_str().unwrap().to_string()
    };
    assert_eq!(
        sent[0],
        format!(
            "Root={};Parent={};Sampled=1;Lineage=a87bd80c:1",
            TRACES[0].0,
            call_id(TRACES[0].0)
        )
    );
    assert_eq!(
        sent[1],
        format!("Root={};Parent={};Sampled=0", TRACES[1].0, TRACES[1].1)
    );
    assert_eq!(
        sent[2],
        format!(
            "Root={};Parent={};Sampled=1",
            TRACES[2].0,
            call_id(TRACES[2].0)
        )
    );

    let stats = handle.stats();
    assert_eq!(stats.spans_unsampled, 2);
    assert_eq!(stats.records_dropped, 0);
    assert_eq!(stats.spans_sent, 4);
}
