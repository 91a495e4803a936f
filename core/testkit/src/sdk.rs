//! The real AWS SDK for Rust, answered in-process by its own replay client.

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{
    Credentials, HttpClient, Region, SharedHttpClient, SharedInterceptor,
};
use aws_smithy_http_client::test_util::{ReplayEvent, infallible_client_fn};
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

/// An HTTP client that answers every request with a 200 and the JSON `body`,
/// as DynamoDB would: for benchmarks and tests that call again and again.
pub fn answering(body: String) -> SharedHttpClient {
    infallible_client_fn(move |_request| {
        http::Response::builder()
            .status(200)
            .header("content-type", "application/x-amz-json-1.0")
            .header(
                "x-amzn-requestid",
                "7QBR4M1P0TQO6N0J5P2UBHBUFVVV4KQNSO5AEMVJF66Q9ASUAAJG",
            )
            .body(SdkBody::from(body.clone()))
            .unwrap()
    })
}

/// A real DynamoDB client, with `interceptor` (the layer's) if given,
/// answered by `http`.
pub fn dynamodb(
    http: impl HttpClient + 'static,
    interceptor: Option<SharedInterceptor>,
) -> aws_sdk_dynamodb::Client {
    let mut config = aws_sdk_dynamodb::Config::builder()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
        .retry_config(RetryConfig::standard().with_initial_backoff(Duration::from_millis(1)))
        .http_client(http);
    if let Some(interceptor) = interceptor {
        config = config.interceptor(interceptor);
    }
    aws_sdk_dynamodb::Client::from_conf(config.build())
}
