//! The three shapes the AWS SDK for Rust's spans have had since it moved to
//! the orchestrator map to the same subsegment. Released SDK crates of one
//! era at a time can be built here (`aws_sdk.rs` runs the current one), so
//! the older shapes are reproduced span for span from the SDK's sources at
//! those releases (`shared/notes/aws-sdk-rust-spans.md`): names, targets,
//! levels, fields and nesting.

use std::time::Duration;

use serde_json::Value;
use tracing::{debug, debug_span, info_span};
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::XRaySubscriber;
use xray_testkit::{Daemon, entities};

const HEADER: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

/// Two attempts (the first failed), a request id logged during deserialization.
fn attempts(with_field: bool) {
    let try_op = debug_span!(target: "aws_smithy_runtime::client::orchestrator", "try_op");
    let _op = try_op.enter();
    drop(
        debug_span!(target: "aws_smithy_runtime::client::orchestrator", "serialization").entered(),
    );
    for attempt in 1u32..=2 {
        let span = if with_field {
            debug_span!(target: "aws_smithy_runtime::client::orchestrator", "try_attempt", attempt)
        } else {
            debug_span!(target: "aws_smithy_runtime::client::orchestrator", "try_attempt")
        };
        let _a = span.enter();
        let de = debug_span!(target: "aws_smithy_runtime::client::orchestrator", "deserialization");
        let _d = de.enter();
        if attempt == 2 {
            debug!(target: "aws_sdk_dynamodb::operation::get_item", request_id = ?Some("REQ-ERA"));
        }
    }
}

fn one_call(era: fn()) -> Value {
    let daemon = Daemon::start();
    let layer = XRaySubscriber::builder()
        .daemon(daemon.addr())
        .lambda(true)
        .build()
        .unwrap();
    let handle = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let inv = info_span!(target: "lambda_runtime::layers::trace", "Lambda runtime invoke", requestId = "r", xrayTraceId = HEADER);
        let _i = inv.enter();
        era();
    });
    let _ = handle.flush(Duration::from_secs(2));
    let docs = daemon.documents_with_spans(1, Duration::from_secs(2));
    let all = entities(&docs);
    assert_eq!(all.len(), 1, "exactly one subsegment per call: {docs:?}");
    all[0].clone()
}

fn assert_get_item(call: &Value) {
    assert_eq!(call["name"], "DynamoDB");
    assert_eq!(call["namespace"], "aws");
    assert_eq!(call["aws"]["operation"], "GetItem");
    assert_eq!(call["aws"]["retries"], 1);
    assert_eq!(call["aws"]["request_id"], "REQ-ERA");
    assert_eq!(call["parent_id"], "53995c3f42cd8ad8");
}

#[test]
fn orchestrator_invoke_span_2023_08_to_2025_03() {
    // `invoke{service, operation}` (Display-formatted), sdk_invocation_id from
    // aws-smithy-runtime 1.5.5; `try_attempt` without an `attempt` field.
    let call = one_call(|| {
        let invoke = debug_span!(
            target: "aws_smithy_runtime::client::orchestrator",
            "invoke",
            service = %"dynamodb",
            operation = %"GetItem",
            sdk_invocation_id = 4652364u32
        );
        let _g = invoke.enter();
        attempts(false);
    });
    assert_get_item(&call);
}

#[test]
fn lowercase_operation_span_2025_03() {
    // release-2025-03-25/27: `dynamodb.GetItem{rpc.*}` around an inner
    // `invoke{rpc.service, rpc.method}`, which must not become a second call.
    let call = one_call(|| {
        let op = debug_span!(
            target: "aws_sdk_dynamodb::operation::get_item",
            "dynamodb.GetItem",
            "rpc.service" = "dynamodb",
            "rpc.method" = "GetItem",
            "sdk_invocation_id" = 1234567u32,
            "rpc.system" = "aws-api"
        );
        let _o = op.enter();
        let invoke = debug_span!(
            target: "aws_smithy_runtime::client::orchestrator",
            "invoke",
            "rpc.service" = "dynamodb",
            "rpc.method" = "GetItem"
        );
        let _i = invoke.enter();
        attempts(true);
    });
    assert_get_item(&call);
}

#[test]
fn operation_span_since_2025_04() {
    let call = one_call(|| {
        let op = debug_span!(
            target: "aws_sdk_dynamodb::operation::get_item",
            "DynamoDB.GetItem",
            "rpc.service" = "DynamoDB",
            "rpc.method" = "GetItem",
            "sdk_invocation_id" = 7654321u32,
            "rpc.system" = "aws-api"
        );
        let _o = op.enter();
        attempts(true);
    });
    assert_get_item(&call);
}

#[test]
fn service_ids_with_spaces_keep_them() {
    let call = one_call(|| {
        let op = debug_span!(
            target: "aws_sdk_cloudwatchlogs::operation::put_log_events",
            "CloudWatch Logs.PutLogEvents",
            "rpc.service" = "CloudWatch Logs",
            "rpc.method" = "PutLogEvents",
            "rpc.system" = "aws-api"
        );
        let _o = op.enter();
        drop(debug_span!(target: "aws_smithy_runtime::client::orchestrator", "try_attempt", attempt = 1u32).entered());
    });
    assert_eq!(call["name"], "CloudWatch Logs");
    assert_eq!(call["aws"]["operation"], "PutLogEvents");
    assert_eq!(call["aws"]["retries"], 0);
}
