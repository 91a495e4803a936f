//! The real AWS SDK for Rust, answered in-process by its own replay client.

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{Credentials, Region, SharedInterceptor};
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;

/// A DynamoDB GetItem answer.
pub fn get_item_ok(request_id: &str) -> ReplayEvent {
    let request = http::Request::builder()
        .uri("https://example.com/")
        .body(SdkBody::empty())
        .unwrap();
    let response = http::Response::builder()
        .status(200)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-requestid", request_id)
        .body(SdkBody::from(r#"{"Item":{"id":{"S":"1"}}}"#))
        .unwrap();
    ReplayEvent::new(request, response)
}

/// A real DynamoDB client with `interceptor` (the layer's), answered by `http`.
pub fn dynamodb(
    http: StaticReplayClient,
    interceptor: SharedInterceptor,
) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
            .retry_config(RetryConfig::standard().with_initial_backoff(Duration::from_millis(1)))
            .http_client(http)
            .interceptor(interceptor)
            .build(),
    )
}
