//! The Lambda scenario in OTLP mode (`TRACING_XRAY_FORMAT=otlp`): the real
//! `lambda_runtime` against a local Runtime API, a real DynamoDB client
//! answered by the SDK's replay client; every datagram decoded with the
//! official `opentelemetry-proto` types. The handler's span hangs under
//! Lambda's `Parent`, the SDK call is a client span with the AWS
//! attributes, the resource names the function, and everything is in the
//! daemon's socket before the runtime asks for the next event.
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
use tracing_xray::{XRayInterceptor, XRaySubscriber};
use xray_testkit::Daemon;
use xray_testkit::otlp::{attr, attr_list, attr_str, decode_datagram, hex, spans};
use xray_testkit::runtime_api::{Invocation, RuntimeApi, set_lambda_env};
use xray_testkit::sdk::{dynamodb, get_item_ok};

const ROOT: &str = "1-6720f3a0-aaaaaaaaaaaaaaaaaaaaaaaa";
const PARENT: &str = "1111111111111111";

async fn handler(
    client: aws_sdk_dynamodb::Client,
    _: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    async {
        client
            .get_item()
            .table_name("customers")
            .key("id", AttributeValue::S("c-1".into()))
            .send()
            .await?;
        Ok(json!({ "ok": true }))
    }
    .instrument(tracing::info_span!(
        "load_customer",
        annotation.customer = "c-1"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_invocation_as_otlp() {
    let api = RuntimeApi::start(vec![Invocation {
        request_id: "req-0".into(),
        trace_header: format!("Root={ROOT};Parent={PARENT};Sampled=1"),
        event: "{}".into(),
    }])
    .await;
    set_lambda_env(
        api.addr,
        &[
            ("RUST_LOG", "info"),
            ("TRACING_XRAY_FORMAT", "otlp"),
            ("AWS_REGION", "eu-west-1"),
        ],
    );
    let inbox = Arc::new(Daemon::polled());
    let at_next = Arc::new(Mutex::new(Vec::new()));
    let (i, a) = (inbox.clone(), at_next.clone());
    api.on_next(move |_| a.lock().unwrap().push(i.count()));

    let layer = XRaySubscriber::builder()
        .daemon(inbox.addr())
        .build()
        .unwrap();
    let handle = tracing_xray::lambda::init_with(layer).expect("first subscriber of this process");
    let client = dynamodb(
        StaticReplayClient::new(vec![get_item_ok("REQ-OTLP-1")]),
        Some(SharedInterceptor::new(XRayInterceptor::default())),
    );
    let runtime = tokio::spawn(lambda_runtime::run(service_fn(move |e| {
        handler(client.clone(), e)
    })));
    api.wait_answered(1).await;
    for _ in 0..200 {
        if api.log(|l| l.next_calls) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    runtime.abort();

    let datagrams = inbox.received();
    let arrived = at_next.lock().unwrap().clone();
    assert_eq!(
        arrived.get(1).copied(),
        Some(datagrams.len()),
        "all of it before the next /next"
    );
    let requests: Vec<_> = datagrams.iter().map(|d| decode_datagram(d)).collect();
    let resource = requests[0].resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(
        attr_str(&resource.attributes, "service.name"),
        Some("test-fn")
    );
    assert_eq!(attr_str(&resource.attributes, "faas.name"), Some("test-fn"));
    assert_eq!(
        attr_str(&resource.attributes, "cloud.platform"),
        Some("aws_lambda")
    );
    assert_eq!(
        attr_str(&resource.attributes, "cloud.region"),
        Some("eu-west-1")
    );
    assert_eq!(
        attr_str(&resource.attributes, "telemetry.sdk.language"),
        Some("rust")
    );

    let all = spans(&requests);
    let load = all
        .iter()
        .find(|s| s.name == "load_customer")
        .expect("the handler's span");
    assert_eq!(hex(&load.trace_id), "6720f3a0aaaaaaaaaaaaaaaaaaaaaaaa");
    assert_eq!(hex(&load.parent_span_id), PARENT);
    assert_eq!(
        attr_list(&load.attributes, "aws.xray.annotations"),
        ["customer"]
    );
    let call = all
        .iter()
        .find(|s| s.name == "DynamoDB.GetItem")
        .expect("the SDK call");
    assert_eq!(call.kind, 3);
    assert_eq!(call.parent_span_id, load.span_id);
    assert_eq!(attr_str(&call.attributes, "rpc.system"), Some("aws-api"));
    assert_eq!(attr_str(&call.attributes, "rpc.method"), Some("GetItem"));
    assert_eq!(
        attr_str(&call.attributes, "aws.request_id"),
        Some("REQ-OTLP-1")
    );
    assert_eq!(
        attr_list(&call.attributes, "aws.dynamodb.table_names"),
        ["customers"]
    );
    assert!(matches!(
        attr(&call.attributes, "http.response.status_code"),
        Some(xray_testkit::otlp::tonic::common::v1::any_value::Value::IntValue(200))
    ));
    assert_eq!(handle.stats().spans_sent, all.len() as u64);
}
