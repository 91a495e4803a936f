//! The real `lambda_runtime` in concurrent mode (`AWS_LAMBDA_MAX_CONCURRENCY=2`,
//! `run_concurrent`), where the runtime never sets `_X_AMZN_TRACE_ID`:
//! invocations run interleaved, and every subsegment still carries its own
//! invocation's trace id and parent, and every SDK request its own header.
//!
//! One test in this binary: it sets process-wide environment variables.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::SharedInterceptor;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_http_client::test_util::StaticReplayClient;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use tokio::sync::Barrier;
use tracing::Instrument;
use tracing_xray::XRayInterceptor;
use tracing_xray::XRaySubscriber;
use xray_testkit::Daemon;
use xray_testkit::runtime_api::{Invocation, RuntimeApi, set_lambda_env};
use xray_testkit::sdk::{dynamodb, get_item_ok};

/// Request id, root, parent, sampled.
const INVOCATIONS: [(&str, &str, &str, bool); 4] = [
    (
        "req-a",
        "1-6720f3b0-aaaaaaaaaaaaaaaaaaaaaaaa",
        "aaaaaaaaaaaaaaa1",
        true,
    ),
    (
        "req-b",
        "1-6720f3b1-bbbbbbbbbbbbbbbbbbbbbbbb",
        "bbbbbbbbbbbbbbb2",
        true,
    ),
    (
        "req-c",
        "1-6720f3b2-cccccccccccccccccccccccc",
        "ccccccccccccccc3",
        false,
    ),
    (
        "req-d",
        "1-6720f3b3-dddddddddddddddddddddddd",
        "ddddddddddddddd4",
        true,
    ),
];

async fn handler(
    client: aws_sdk_dynamodb::Client,
    both_running: Arc<Barrier>,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let request = event.context.request_id.clone();
    async {
        // Two invocations are in flight at once before either goes on.
        both_running.wait().await;
        for round in 0..2 {
            async {
                client
                    .get_item()
                    .table_name("orders")
                    .key("id", AttributeValue::S(request.clone()))
                    .send()
                    .await?;
                tokio::task::yield_now().await;
                Ok::<_, aws_sdk_dynamodb::Error>(())
            }
            .instrument(tracing::info_span!("step", annotation.round = round))
            .await?;
        }
        Ok(json!({ "request": request }))
    }
    .instrument(tracing::info_span!(
        "handle",
        annotation.request = request.as_str()
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invocations_keep_their_own_context() {
    let invocations = INVOCATIONS
        .iter()
        .map(|(id, root, parent, sampled)| Invocation {
            request_id: id.to_string(),
            trace_header: format!("Root={root};Parent={parent};Sampled={}", u8::from(*sampled)),
            event: "{}".to_string(),
        })
        .collect();
    let api = RuntimeApi::start(invocations).await;
    set_lambda_env(
        api.addr,
        &[("AWS_LAMBDA_MAX_CONCURRENCY", "2"), ("RUST_LOG", "warn")],
    );

    // Read when asked: what is in the socket at a given instant.
    let inbox = Arc::new(Daemon::polled());
    let layer = XRaySubscriber::builder()
        .daemon(inbox.addr())
        .build()
        .unwrap();
    let handle = tracing_xray::lambda::init_with(layer).expect("first subscriber of this process");
    let http = StaticReplayClient::new((0..8).map(|i| get_item_ok(&format!("R{i}"))).collect());
    let client = dynamodb(
        http.clone(),
        Some(SharedInterceptor::new(XRayInterceptor::default())),
    );
    let barrier = Arc::new(Barrier::new(2));
    let runtime = tokio::spawn(lambda_runtime::run_concurrent(service_fn(move |e| {
        handler(client.clone(), barrier.clone(), e)
    })));
    tokio::time::timeout(Duration::from_secs(30), api.wait_answered(4))
        .await
        .expect("four invocations answered");
    runtime.abort();
    assert_eq!(
        api.log(|l| l.responses.len()),
        4,
        "{:?}",
        api.log(|l| l.errors.clone())
    );
    assert!(
        std::env::var("_X_AMZN_TRACE_ID").is_err(),
        "concurrent mode never sets it"
    );

    assert!(handle.flush(Duration::from_secs(2)).complete);
    std::thread::sleep(Duration::from_millis(50));
    let docs: Vec<Value> = inbox
        .received()
        .iter()
        .map(|d| xray_testkit::check(d))
        .collect();
    for (request, root, parent, sampled) in INVOCATIONS {
        let mine: Vec<&Value> = docs
            .iter()
            .filter(|d| d["annotations"]["request"] == request)
            .collect();
        if !sampled {
            assert!(mine.is_empty());
            assert!(docs.iter().all(|d| d["trace_id"] != root));
            continue;
        }
        assert_eq!(mine.len(), 1, "{request}: {docs:?}");
        let d = mine[0];
        assert_eq!(d["trace_id"], root, "{request}");
        assert_eq!(d["parent_id"], parent, "{request}");
        let steps = d["subsegments"].as_array().unwrap();
        assert_eq!(steps.len(), 2);
        for step in steps {
            let call = &step["subsegments"][0];
            assert_eq!(call["name"], "DynamoDB");
        }
    }
    assert_eq!(xray_testkit::entities(&docs).len(), 3 * 5);

    // Each SDK request carried its own invocation's trace (none from the environment).
    let mut roots: Vec<String> = http
        .actual_requests()
        .map(|r| {
            let h = r
                .headers()
                .get("x-amzn-trace-id")
                .expect("trace header on every request");
            h.split(';')
                .next()
                .unwrap()
                .trim_start_matches("Root=")
                .to_string()
        })
        .collect();
    roots.sort();
    let mut expected: Vec<String> = INVOCATIONS
        .iter()
        .flat_map(|i| [i.1.to_string(), i.1.to_string()])
        .collect();
    expected.sort();
    assert_eq!(roots, expected);
    assert_eq!(handle.stats().spans_unsampled, 5);
}
