//! What tracing adds to an AWS SDK call in allocations on the caller's
//! thread, counted exactly: the same warm GetItem, through the real client,
//! with the X-Ray layer and interceptor and without them.
//!
//! One test per binary, so no other test thread allocates meanwhile.

use aws_sdk_dynamodb::config::SharedInterceptor;
use aws_sdk_dynamodb::types::AttributeValue;
use tracing_core::Dispatch;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_xray::{XRayInterceptor, XRaySubscriber};
use xray_testkit::sdk::{answering, dynamodb};

#[global_allocator]
static GLOBAL: xray_testkit::Counting = xray_testkit::Counting;

struct NoOp;
impl<S: tracing_core::Subscriber> Layer<S> for NoOp {}

fn client(interceptor: bool) -> aws_sdk_dynamodb::Client {
    let answer = answering(r#"{"Item":{"id":{"S":"1"}}}"#.to_string());
    dynamodb(
        answer,
        interceptor.then(|| SharedInterceptor::new(XRayInterceptor::default())),
    )
}

const HEADER: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

/// Allocations per call on this thread, after a warm-up, inside a sampled
/// trace: a Lambda invocation's, or an incoming request's.
fn per_call(dispatch: &Dispatch, client: &aws_sdk_dynamodb::Client, lambda: bool) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::dispatcher::with_default(dispatch, || {
        let root = if lambda {
            tracing::info_span!(target: "lambda_runtime::layers::trace",
                "Lambda runtime invoke", requestId = "r", xrayTraceId = HEADER)
        } else {
            tracing::info_span!("request", xray.trace_header = HEADER)
        };
        let _in = root.enter();
        let call = || {
            rt.block_on(async {
                let out = client
                    .get_item()
                    .table_name("orders")
                    .key("id", AttributeValue::S("1".into()))
                    .send()
                    .await;
                assert!(out.is_ok());
            })
        };
        (0..30).for_each(|_| call());
        let before = xray_testkit::allocations_here();
        let n = 100;
        (0..n).for_each(|_| call());
        (xray_testkit::allocations_here() - before) as f64 / n as f64
    })
}

/// The layer adds none. The interceptor reads the request and response in
/// place (no allocation) and sets one header: the SDK's header map takes a
/// value only as an owned `String` (one allocation, of exactly its length),
/// and the SDK makes two more when it turns its request into an `http` 1.x
/// request for the HTTP client: `Headers::http1_headermap` copies the name
/// and the value of every header that is not a standard one (seen in a
/// backtrace per allocation of one warm call, with and without the
/// interceptor). So three, and no more, outside Lambda.
///
/// In Lambda (`AWS_LAMBDA_FUNCTION_NAME` and `_X_AMZN_TRACE_ID` set, as
/// `lambda_runtime` sets them for each invocation) the untraced call makes
/// a trace header too: the SDK's recursion-detection interceptor reads both
/// variables (two `String`s) and copies the header into a `HeaderValue`.
/// The traced call's header is set first (before the retry loop), so the
/// SDK's is never made: tracing adds no allocation there (it saves two).
#[test]
fn tracing_adds_few_allocations_to_an_sdk_call() {
    let daemon = xray_testkit::Daemon::counting();
    let noop = || Dispatch::new(tracing_subscriber::registry().with(NoOp));
    let xray = |lambda: bool| {
        let layer = XRaySubscriber::builder()
            .daemon(daemon.addr())
            .lambda(lambda)
            .centralized_sampling(false)
            .report_errors(false)
            .build()
            .unwrap();
        Dispatch::new(tracing_subscriber::registry().with(layer))
    };
    let plain = per_call(&noop(), &client(false), false);
    let layer_only = per_call(&xray(false), &client(false), false);
    let interceptor_only = per_call(&noop(), &client(true), false);
    let traced = per_call(&xray(false), &client(true), false);
    let added = traced - plain;
    println!(
        "allocations per GetItem on the caller's thread: {plain} plain, {layer_only} with the \
         layer, {interceptor_only} with the interceptor alone, {traced} with both ({added:+})"
    );
    assert_eq!(
        layer_only, plain,
        "the layer allocates nothing per SDK call"
    );
    assert_eq!(
        interceptor_only, plain,
        "an interceptor outside a trace allocates nothing"
    );
    assert!(added <= 3.0, "{added} allocations added per call");

    // SAFETY: the only test of this binary; the threads running (the
    // daemon stand-in, senders) read no environment variable.
    unsafe {
        std::env::set_var("AWS_LAMBDA_FUNCTION_NAME", "orders");
        std::env::set_var("_X_AMZN_TRACE_ID", HEADER);
    }
    let plain = per_call(&noop(), &client(false), true);
    let layer_only = per_call(&xray(true), &client(false), true);
    assert_eq!(layer_only, plain, "in Lambda too");
    let traced = per_call(&xray(true), &client(true), true);
    println!(
        "in Lambda: {plain} plain, {traced} with the layer and the interceptor ({:+})",
        traced - plain
    );
    assert!(
        traced < plain,
        "in Lambda tracing adds no allocation to an SDK call, and the SDK's \
         own header is never made: {traced} vs {plain}"
    );
}
