//! One AWS SDK call through the real `aws-sdk-dynamodb` client, answered
//! in-process by the SDK's own test HTTP client (no network), so criterion
//! and callgrind measure the same call: a small GetItem, or a Query whose
//! answer is a 1 MB page with `ConsumedCapacity`.

use std::hint::black_box;

use aws_sdk_dynamodb::config::SharedInterceptor;
use aws_sdk_dynamodb::types::AttributeValue;
use tracing_core::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

/// Which call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// GetItem of a small item.
    GetItem,
    /// Query answered with a 1 MB page.
    Query,
}

fn get_item_body() -> String {
    r#"{"Item":{"id":{"S":"order-1042"},"total":{"N":"129.5"},"status":{"S":"shipped"}}}"#
        .to_string()
}

/// A 1 MB Query page: items first, as DynamoDB writes them, then the counts
/// and the consumed capacity.
fn query_body() -> String {
    let item = r#"{"pk":{"S":"customer-17"},"sk":{"S":"order-00000"},"payload":{"S":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}"#;
    let n = (1 << 20) / item.len();
    let items: Vec<&str> = std::iter::repeat_n(item, n).collect();
    format!(
        r#"{{"Items":[{}],"Count":{n},"ScannedCount":{n},"ConsumedCapacity":{{"TableName":"orders","CapacityUnits":128.5}}}}"#,
        items.join(",")
    )
}

/// A client answering every request with `call`'s response, with or
/// without the X-Ray interceptor.
pub fn client(call: Call, interceptor: bool) -> aws_sdk_dynamodb::Client {
    let body = match call {
        Call::GetItem => get_item_body(),
        Call::Query => query_body(),
    };
    let interceptor =
        interceptor.then(|| SharedInterceptor::new(tracing_xray::XRayInterceptor::default()));
    xray_testkit::sdk::dynamodb(xray_testkit::sdk::answering(body), interceptor)
}

/// One call, awaited on the current thread: what the benchmarks measure.
#[inline(never)]
pub fn one_call(runtime: &tokio::runtime::Runtime, client: &aws_sdk_dynamodb::Client, call: Call) {
    call_once(runtime, client, call)
}

/// The same call outside [`one_call`]: warm-up that callgrind leaves out
/// (the first call builds the allow-list, connection pools, caches).
#[inline(never)]
pub fn warm_up(runtime: &tokio::runtime::Runtime, client: &aws_sdk_dynamodb::Client, call: Call) {
    for _ in 0..20 {
        call_once(runtime, client, call)
    }
}

fn call_once(runtime: &tokio::runtime::Runtime, client: &aws_sdk_dynamodb::Client, call: Call) {
    runtime.block_on(async {
        match call {
            Call::GetItem => {
                let out = client
                    .get_item()
                    .table_name("orders")
                    .key("id", AttributeValue::S("order-1042".into()))
                    .send()
                    .await;
                black_box(out.is_ok());
            }
            Call::Query => {
                let out = client
                    .query()
                    .table_name("orders")
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", AttributeValue::S("customer-17".into()))
                    .send()
                    .await;
                black_box(out.map(|o| o.count()).unwrap_or(-1));
            }
        }
    });
}

/// `Registry` + `XRaySubscriber` as in Lambda, sending to `daemon`. Closing
/// the invocation span inside it waits until its documents are sent.
pub fn traced(daemon: std::net::SocketAddr) -> Dispatch {
    let layer = tracing_xray::XRaySubscriber::builder()
        .daemon(daemon)
        .lambda(true)
        .report_errors(false)
        .build()
        .expect("a layer");
    Dispatch::new(tracing_subscriber::registry().with(layer))
}

/// The runtime the calls run on: the caller's thread, as in a Lambda handler
/// that awaits its calls.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The environment `lambda_runtime` gives a handler that runs one invocation
/// at a time: the function's name and the invocation's trace header, which
/// the SDK's recursion-detection interceptor reads to set a header of its
/// own on every call (the untraced call pays for it too).
///
/// # Safety
///
/// Sets process-wide variables: call it before any other thread runs that
/// may read the environment.
pub unsafe fn lambda_environment() {
    // SAFETY: the caller's promise: no other thread reads the environment.
    unsafe {
        std::env::set_var("AWS_LAMBDA_FUNCTION_NAME", "orders");
        std::env::set_var("_X_AMZN_TRACE_ID", crate::spans::HEADER);
    }
}
