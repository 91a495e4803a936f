//! Shared by the Lambda tests: the Runtime API, and a DynamoDB client answered locally.
#![allow(dead_code)]

pub mod runtime_api;

use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{Credentials, Region};
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

/// A real DynamoDB client with the X-Ray interceptor, answered by `http`.
pub fn dynamodb(http: StaticReplayClient) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
            .retry_config(RetryConfig::standard().with_initial_backoff(Duration::from_millis(1)))
            .http_client(http)
            .interceptor(tracing_xray::XRayInterceptor::default())
            .build(),
    )
}

/// A daemon socket read only when asked: what has arrived at a given instant.
#[derive(Clone)]
pub struct Inbox {
    socket: Arc<UdpSocket>,
    pub received: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Inbox {
    pub fn bind() -> Inbox {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(8 << 20);
        socket.set_nonblocking(true).unwrap();
        Inbox {
            socket: Arc::new(socket),
            received: Arc::default(),
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// Takes what is already queued on the socket, without waiting; returns the total so far.
    pub fn drain(&self) -> usize {
        let mut buf = vec![0u8; 70_000];
        let mut all = self.received.lock().unwrap();
        while let Ok(n) = self.socket.recv(&mut buf) {
            all.push(buf[..n].to_vec());
        }
        all.len()
    }
}
