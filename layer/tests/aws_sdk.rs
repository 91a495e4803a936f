//! Real AWS SDK for Rust clients, answered by the SDK's own replay HTTP
//! client (no network): every call becomes one `aws` subsegment with the
//! right operation, table/bucket/queue, status, request id, retries and
//! error/throttle/fault flags — with the interceptor, and (less) without it.

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use serde_json::Value as Json;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::{XRayInterceptor, XRaySubscriber};
use xray_testkit::{Daemon, entities};

const ROOT: &str = "1-5759e988-bd862e3fe1be46a994272793";
const FACADE: &str = "53995c3f42cd8ad8";

fn header() -> String {
    format!("Root={ROOT};Parent={FACADE};Sampled=1;Lineage=a87bd80c:1")
}

fn event(status: u16, headers: &[(&str, &str)], body: &str) -> ReplayEvent {
    let request = http::Request::builder()
        .uri("https://example.com/")
        .body(SdkBody::empty())
        .unwrap();
    let mut response = http::Response::builder().status(status);
    for (k, v) in headers {
        response = response.header(*k, *v);
    }
    ReplayEvent::new(
        request,
        response.body(SdkBody::from(body.to_string())).unwrap(),
    )
}

fn dynamodb_ok(request_id: &str) -> ReplayEvent {
    event(
        200,
        &[
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amzn-requestid", request_id),
        ],
        r#"{"Item":{"id":{"S":"1"}}}"#,
    )
}

fn dynamodb_error(status: u16, code: &str, message: &str) -> ReplayEvent {
    let body =
        format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{message}"}}"#);
    event(
        status,
        &[
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amzn-requestid", "ERR-REQ"),
        ],
        &body,
    )
}

fn credentials() -> Credentials {
    Credentials::new("AKIDEXAMPLE", "secret", None, None, "test")
}

fn dynamodb(http: StaticReplayClient, interceptor: bool) -> aws_sdk_dynamodb::Client {
    let mut config = aws_sdk_dynamodb::Config::builder()
        .region(Region::new("eu-west-1"))
        .credentials_provider(credentials())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1)),
        )
        .http_client(http);
    if interceptor {
        config = config.interceptor(XRayInterceptor::default());
    }
    aws_sdk_dynamodb::Client::from_conf(config.build())
}

/// Runs `f` inside a sampled invocation span with the X-Ray layer installed,
/// and returns the documents that arrived.
async fn traced<F: std::future::Future<Output = ()>>(spans: usize, f: F) -> Vec<Json> {
    traced_in(true, spans, f).await
}

/// As [`traced`]; outside Lambda (`lambda: false`) the trace is an incoming
/// request's, continued by a root span.
async fn traced_in<F: std::future::Future<Output = ()>>(
    lambda: bool,
    spans: usize,
    f: F,
) -> Vec<Json> {
    let daemon = Daemon::start();
    let layer = XRaySubscriber::builder()
        .daemon(daemon.addr())
        .lambda(lambda)
        .centralized_sampling(false)
        .region("us-west-2")
        .build()
        .unwrap();
    let handle = layer.handle();
    let subscriber = tracing_subscriber::registry().with(layer);
    let guard = tracing::subscriber::set_default(subscriber);
    let root = if lambda {
        tracing::info_span!(
            target: "lambda_runtime::layers::trace",
            "Lambda runtime invoke",
            requestId = "req-1",
            xrayTraceId = header().as_str()
        )
    } else {
        tracing::info_span!("request", xray.trace_header = header().as_str())
    };
    f.instrument(root).await;
    drop(guard);
    assert!(handle.flush(Duration::from_secs(2)).complete);
    let docs = daemon.documents_with_spans(spans, Duration::from_secs(3));
    assert_eq!(handle.stats().records_dropped, 0);
    docs
}

/// GetItem of key `1` in `table`.
async fn get_from(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<
    aws_sdk_dynamodb::operation::get_item::GetItemOutput,
    aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::get_item::GetItemError>,
> {
    client
        .get_item()
        .table_name(table)
        .key("id", AttributeValue::S("1".into()))
        .send()
        .await
}

/// A successful GetItem on `orders`.
async fn get_order(client: &aws_sdk_dynamodb::Client) {
    get_from(client, "orders").await.unwrap();
}

/// The trace header the service called is sent: this call is its parent.
fn header_to(call: &Json) -> String {
    format!(
        "Root={ROOT};Parent={};Sampled=1;Lineage=a87bd80c:1",
        call["id"].as_str().unwrap()
    )
}

fn only_call(docs: &[Json]) -> Json {
    let calls: Vec<Json> = entities(docs)
        .into_iter()
        .filter(|e| e["namespace"] == "aws")
        .collect();
    assert_eq!(calls.len(), 1, "{docs:?}");
    calls[0].clone()
}

#[tokio::test]
async fn get_item_ok_with_interceptor() {
    let http = StaticReplayClient::new(vec![dynamodb_ok("REQ-OK-1")]);
    let client = dynamodb(http.clone(), true);
    let docs = traced(1, async {
        let out = client
            .get_item()
            .table_name("orders")
            .key("id", AttributeValue::S("1".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        assert!(out.item().is_some());
    })
    .await;
    let call = only_call(&docs);
    assert_eq!(call["name"], "DynamoDB");
    assert_eq!(call["type"], "subsegment");
    assert_eq!(call["trace_id"], ROOT);
    assert_eq!(call["parent_id"], FACADE);
    assert_eq!(call["aws"]["operation"], "GetItem");
    assert_eq!(call["aws"]["table_name"], "orders");
    assert_eq!(call["aws"]["consistent_read"], true);
    assert_eq!(
        call["aws"]["region"], "eu-west-1",
        "the client's region wins over the layer's"
    );
    assert_eq!(call["aws"]["request_id"], "REQ-OK-1");
    assert_eq!(call["aws"]["retries"], 0);
    assert_eq!(call["http"]["response"]["status"], 200);
    for flag in ["error", "fault", "throttle"] {
        assert!(call.get(flag).is_none(), "{flag} in {call}");
    }
    // The service called is told this call is its parent, Lineage kept.
    let sent = http.actual_requests().next().unwrap();
    let trace = sent.headers().get("x-amzn-trace-id").expect("trace header");
    assert_eq!(trace, header_to(&call));
}

/// Outside Lambda the header is set as each attempt is sent (in Lambda,
/// before the retry loop): the same header either way.
#[tokio::test]
async fn outside_lambda_the_call_is_the_parent_the_service_is_told() {
    let http = StaticReplayClient::new(vec![dynamodb_ok("REQ-OK-2")]);
    let client = dynamodb(http.clone(), true);
    let docs = traced_in(false, 2, get_order(&client)).await;
    let call = only_call(&docs);
    let sent = http.actual_requests().next().unwrap();
    assert_eq!(
        sent.headers().get("x-amzn-trace-id").expect("trace header"),
        header_to(&call)
    );
}

/// A header a request customization sets (before signing) wins in Lambda,
/// where ours is set before the retry loop; elsewhere ours, set as each
/// attempt is sent, wins.
#[tokio::test]
async fn which_header_wins_over_a_request_customization() {
    for lambda in [true, false] {
        let http = StaticReplayClient::new(vec![dynamodb_ok("REQ-MUT")]);
        let client = dynamodb(http.clone(), true);
        let docs = traced_in(lambda, 1 + usize::from(!lambda), async {
            client
                .get_item()
                .table_name("orders")
                .key("id", AttributeValue::S("1".into()))
                .customize()
                .mutate_request(|r| {
                    r.headers_mut().insert("x-amzn-trace-id", "Root=mine");
                })
                .send()
                .await
                .unwrap();
        })
        .await;
        let call = only_call(&docs);
        let sent = http.actual_requests().next().unwrap();
        let header = sent.headers().get("x-amzn-trace-id").expect("trace header");
        if lambda {
            assert_eq!(header, "Root=mine");
        } else {
            assert_eq!(header, header_to(&call));
        }
    }
}

#[tokio::test]
async fn get_item_not_found_is_an_error_with_its_cause() {
    let http = StaticReplayClient::new(vec![dynamodb_error(
        400,
        "ResourceNotFoundException",
        "Requested resource not found",
    )]);
    let client = dynamodb(http, true);
    let docs = traced(1, async {
        let err = get_from(&client, "missing").await;
        assert!(err.is_err());
    })
    .await;
    let call = only_call(&docs);
    assert_eq!(call["aws"]["table_name"], "missing");
    assert_eq!(call["http"]["response"]["status"], 400);
    assert_eq!(call["error"], true);
    assert!(call.get("throttle").is_none() && call.get("fault").is_none());
    let ex = &call["cause"]["exceptions"][0];
    assert_eq!(ex["type"], "ResourceNotFoundException");
    assert_eq!(ex["message"], "Requested resource not found");
    assert_eq!(ex["remote"], true);
    assert_eq!(call["aws"]["request_id"], "ERR-REQ");
}

#[tokio::test]
async fn throttling_by_code_on_http_400() {
    let throttled = || {
        dynamodb_error(
            400,
            "ProvisionedThroughputExceededException",
            "Rate of requests exceeds the allowed throughput.",
        )
    };
    let http = StaticReplayClient::new(vec![throttled(), throttled(), throttled()]);
    let client = dynamodb(http, true);
    let docs = traced(1, async {
        let r = get_from(&client, "hot").await;
        assert!(r.is_err());
    })
    .await;
    let call = only_call(&docs);
    assert_eq!(call["throttle"], true);
    assert_eq!(call["error"], true);
    assert!(call.get("fault").is_none());
    assert_eq!(
        call["aws"]["retries"], 2,
        "the SDK retried the throttled call twice"
    );
    assert_eq!(
        call["cause"]["exceptions"][0]["type"],
        "ProvisionedThroughputExceededException"
    );
}

#[tokio::test]
async fn a_retried_500_then_200_is_not_a_fault() {
    let http = StaticReplayClient::new(vec![
        dynamodb_error(500, "InternalServerError", "Internal server error"),
        dynamodb_ok("REQ-AFTER-RETRY"),
    ]);
    let client = dynamodb(http.clone(), true);
    let docs = traced(1, get_order(&client)).await;
    let call = only_call(&docs);
    assert_eq!(call["aws"]["retries"], 1);
    assert_eq!(call["http"]["response"]["status"], 200);
    assert_eq!(call["aws"]["request_id"], "REQ-AFTER-RETRY");
    for flag in ["error", "fault", "throttle"] {
        assert!(call.get(flag).is_none(), "{flag} in {call}");
    }
    // Both attempts tell the service the same parent: this call.
    let expected = header_to(&call);
    let headers: Vec<String> = http
        .actual_requests()
        .map(|r| {
            r.headers()
                .get("x-amzn-trace-id")
                .expect("trace header")
                .to_string()
        })
        .collect();
    assert_eq!(headers, [expected.clone(), expected]);
}

/// A retry whose attempt gets no response at all (the connection fails)
/// keeps the request id of the attempt that had one: the service's log
/// entry for the call is findable from the trace.
#[tokio::test]
async fn a_500_then_no_response_keeps_the_request_id_it_had() {
    let http = StaticReplayClient::new(vec![dynamodb_error(
        500,
        "InternalServerError",
        "Internal server error",
    )]);
    let client = dynamodb(http, true);
    let docs = traced(1, async {
        let result = get_from(&client, "orders").await;
        assert!(
            result.is_err(),
            "the second attempt has nothing to answer it"
        );
    })
    .await;
    let call = only_call(&docs);
    assert_eq!(call["aws"]["retries"], 1);
    assert_eq!(call["aws"]["request_id"], "ERR-REQ", "{call}");
    assert_eq!(call["fault"], true);
}

#[tokio::test]
async fn s3_put_object_records_bucket_and_key() {
    let http = StaticReplayClient::new(vec![event(
        200,
        &[
            ("etag", "\"abc\""),
            ("x-amz-request-id", "S3REQ"),
            ("x-amz-id-2", "S3ID2"),
        ],
        "",
    )]);
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "AKID", "secret", None, None, "test",
            ))
            .http_client(http)
            .interceptor(XRayInterceptor::default())
            .build(),
    );
    let docs = traced(1, async {
        client
            .put_object()
            .bucket("my-bucket")
            .key("reports/2026/nov report.csv")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(
                b"a,b\n1,2\n",
            ))
            .send()
            .await
            .unwrap();
    })
    .await;
    let call = only_call(&docs);
    assert_eq!(call["name"], "S3");
    assert_eq!(call["aws"]["operation"], "PutObject");
    assert_eq!(call["aws"]["bucket_name"], "my-bucket");
    assert_eq!(call["aws"]["key"], "reports/2026/nov report.csv");
    assert_eq!(call["aws"]["request_id"], "S3REQ");
    assert_eq!(call["aws"]["id_2"], "S3ID2");
    assert_eq!(call["http"]["response"]["status"], 200);
}

#[tokio::test]
async fn s3_payloads_are_not_parameters_and_keys_may_start_with_the_bucket() {
    let http = StaticReplayClient::new(vec![event(200, &[("x-amz-request-id", "S3REQ")], "")]);
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "AKID", "secret", None, None, "test",
            ))
            .http_client(http)
            .interceptor(XRayInterceptor::default())
            .build(),
    );
    let docs = traced(1, async {
        client
            .put_object()
            .bucket("logs")
            .key("logs/2026/app.json")
            .content_type("application/json")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(
                br#"{"Key":"from-the-payload","Bucket":"from-the-payload"}"#,
            ))
            .send()
            .await
            .unwrap();
    })
    .await;
    let call = only_call(&docs);
    assert_eq!(call["aws"]["bucket_name"], "logs");
    assert_eq!(call["aws"]["key"], "logs/2026/app.json");
}

#[tokio::test]
async fn sqs_send_message_records_the_queue_url() {
    let queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders-queue";
    let http = StaticReplayClient::new(vec![event(
        200,
        &[
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amzn-requestid", "SQSREQ"),
        ],
        r#"{"MD5OfMessageBody":"5d41402abc4b2a76b9719d911017c592","MessageId":"5fea7756-0ea4-451a-a703-a558b933e274"}"#,
    )]);
    let client = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .region(aws_sdk_sqs::config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "AKID", "secret", None, None, "test",
            ))
            .http_client(http)
            .interceptor(XRayInterceptor::default())
            .build(),
    );
    let docs = traced(1, async {
        client
            .send_message()
            .queue_url(queue)
            .message_body("hello")
            .delay_seconds(0)
            .send()
            .await
            .unwrap();
    })
    .await;
    let call = only_call(&docs);
    assert_eq!(call["name"], "SQS");
    assert_eq!(call["aws"]["operation"], "SendMessage");
    assert_eq!(call["aws"]["queue_url"], queue);
    assert_eq!(
        call["aws"]["message_id"],
        "5fea7756-0ea4-451a-a703-a558b933e274"
    );
    assert_eq!(call["aws"]["request_id"], "SQSREQ");
}

#[tokio::test]
async fn spans_alone_give_name_operation_retries_request_id_and_timing() {
    let http = StaticReplayClient::new(vec![
        dynamodb_error(500, "InternalServerError", "Internal server error"),
        dynamodb_ok("REQ-SPANS"),
    ]);
    let client = dynamodb(http, false);
    let docs = traced(1, async {
        client
            .get_item()
            .table_name("orders")
            .key("id", AttributeValue::S("1".into()))
            .send()
            .instrument(tracing_xray::aws_metadata(None, Some("orders")))
            .await
            .unwrap();
    })
    .await;
    let call = only_call(&docs);
    assert_eq!(call["name"], "DynamoDB");
    assert_eq!(call["aws"]["operation"], "GetItem");
    assert_eq!(call["aws"]["retries"], 1);
    assert_eq!(call["aws"]["request_id"], "REQ-SPANS");
    assert_eq!(call["aws"]["table_name"], "orders", "from aws_metadata");
    assert_eq!(
        call["aws"]["region"], "us-west-2",
        "from the layer's configured region"
    );
    assert!(call["end_time"].as_f64().unwrap() > call["start_time"].as_f64().unwrap());
    assert!(call.get("http").is_none(), "status needs the interceptor");
}

#[tokio::test]
async fn sdk_calls_nest_in_the_users_span() {
    let http = StaticReplayClient::new(vec![dynamodb_ok("A"), dynamodb_ok("B")]);
    let client = dynamodb(http, true);
    let docs = traced(3, async {
        async {
            for _ in 0..2 {
                get_from(&client, "t").await.unwrap();
            }
        }
        .instrument(tracing::info_span!("load_user", annotation.user = "u1"))
        .await;
    })
    .await;
    assert_eq!(docs.len(), 1);
    let user = &docs[0];
    assert_eq!(user["name"], "load_user");
    let calls = user["subsegments"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["aws"]["request_id"], "A");
    assert_eq!(calls[1]["aws"]["request_id"], "B");
    assert!(
        calls
            .iter()
            .all(|c| c["namespace"] == "aws" && c.get("subsegments").is_none())
    );
}
