//! The whole path on one machine, no AWS account: a real `lambda_runtime`
//! handler making real AWS SDK for Rust calls (answered by the SDK's own
//! replay HTTP client), traced by `tracing-xray` into a local X-Ray "console"
//! that prints the invocation's trace as it arrives.
//!
//! ```text
//! cargo run --release -p tracing-xray --features aws-sdk --example lambda_local
//! ```

#[path = "support/viewer.rs"]
mod viewer;

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};
use tracing::Instrument;
use tracing_xray::{XRayInterceptor, XRaySubscriber};
use xray_testkit::runtime_api::{Invocation, RuntimeApi, set_lambda_env};

/// What DynamoDB answers, in order: the customer, a write that fails once
/// with a 500 and succeeds on retry, and a table that does not exist.
fn dynamodb_answers() -> Vec<ReplayEvent> {
    let answer = |status: u16, request_id: &str, body: &str| {
        ReplayEvent::new(
            http::Request::builder()
                .uri("https://dynamodb.eu-west-1.amazonaws.com/")
                .body(SdkBody::empty())
                .unwrap(),
            http::Response::builder()
                .status(status)
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amzn-requestid", request_id)
                .body(SdkBody::from(body.to_string()))
                .unwrap(),
        )
    };
    vec![
        answer(
            200,
            "7QBR4M1P0TQO6N0J5P2UBHBUFVVV4KQNSO5AEMVJF66Q9ASUAAJG",
            r#"{"Item":{"id":{"S":"c-17"},"tier":{"S":"gold"}}}"#,
        ),
        answer(
            500,
            "I5P0M2CQ1B2NVVC4GSBLD6TPSVVV4KQNSO5AEMVJF66Q9ASUAAJG",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#,
        ),
        answer(
            200,
            "S1M4F9A3QPVJ2B5D0O2OO1RU6JVV4KQNSO5AEMVJF66Q9ASUAAJG",
            "{}",
        ),
        answer(
            400,
            "BMQF2EG2R9GN0T0RDIBCNMM4RJVV4KQNSO5AEMVJF66Q9ASUAAJG",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}"#,
        ),
    ]
}

async fn handler(db: aws_sdk_dynamodb::Client, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let order = event.payload["order_id"]
        .as_str()
        .unwrap_or("o-1")
        .to_string();
    let customer = event.payload["customer"]
        .as_str()
        .unwrap_or("c-17")
        .to_string();
    async {
        let found = db
            .get_item()
            .table_name("customers")
            .key("id", AttributeValue::S(customer.clone()))
            .send()
            .await?;
        let tier = found
            .item()
            .and_then(|i| i.get("tier"))
            .and_then(|t| t.as_s().ok())
            .cloned();
        db.put_item()
            .table_name("orders")
            .item("id", AttributeValue::S(order.clone()))
            .item("customer", AttributeValue::S(customer.clone()))
            .send()
            .await?;
        let promotion = db
            .get_item()
            .table_name("promotions")
            .key("tier", AttributeValue::S(tier.clone().unwrap_or_default()))
            .send()
            .await;
        if let Err(e) = promotion {
            tracing::warn!(error = %e, "no promotion");
        }
        Ok(json!({ "order": order, "tier": tier }))
    }
    .instrument(tracing::info_span!(
        "process_order",
        annotation.order_id = order.as_str(),
        annotation.customer = customer.as_str()
    ))
    .await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    // The "daemon": a local console on a free port.
    let console = viewer::Console::start()?;
    let daemon = console.addr;

    // Lambda's side: a Runtime API with one sampled invocation.
    let api = RuntimeApi::start(vec![Invocation {
        request_id: "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into(),
        trace_header: "Root=1-6720f3a0-5fbd0e4b9d0a8c2f41d3e2a1;Parent=8a3c60f7d188f8fa;Sampled=1;Lineage=a87bd80c:1".into(),
        event: json!({ "order_id": "o-1042", "customer": "c-17" }).to_string(),
    }])
    .await;
    // The replay client has no real connection, which the SDK logs as an error.
    let log_level =
        std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,aws_smithy_runtime=off".into());
    set_lambda_env(
        api.addr,
        &[
            ("AWS_XRAY_DAEMON_ADDRESS", &daemon.to_string()),
            ("RUST_LOG", &log_level),
        ],
    );
    println!(
        "Lambda runtime API on {}, X-Ray daemon (local console) on udp://{daemon}\n",
        api.addr
    );

    let handle = tracing_xray::lambda::init_with(XRaySubscriber::builder().build()?)?;
    let db = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "local",
            ))
            .retry_config(RetryConfig::standard().with_initial_backoff(Duration::from_millis(5)))
            .http_client(StaticReplayClient::new(dynamodb_answers()))
            .interceptor(XRayInterceptor::default())
            .build(),
    );
    let runtime = tokio::spawn(lambda_runtime::run(service_fn(move |e| {
        handler(db.clone(), e)
    })));
    tokio::time::timeout(Duration::from_secs(30), api.wait_answered(1)).await?;
    runtime.abort();
    let response = api.log(|l| l.responses.first().map(|(_, body)| body.clone()));
    println!("handler answered: {}", response.unwrap_or_default());

    // Everything of the invocation was in the socket before the runtime
    // asked for the next event; the console prints it and stops.
    console.finish();
    let s = handle.stats();
    println!(
        "sent {} documents ({} spans, {} bytes); dropped {} records",
        s.documents_sent, s.spans_sent, s.bytes_sent, s.records_dropped
    );
    Ok(())
}
