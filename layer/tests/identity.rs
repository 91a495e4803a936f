//! Segments outside Lambda say who sent them and where they run: the ECS
//! task metadata endpoint (a local HTTP server answering its shape) gives
//! `origin` and `aws.ecs`; an EC2 metadata endpoint that never answers
//! delays the build by no more than its bound; `service.version` comes from
//! `OTEL_RESOURCE_ATTRIBUTES`, `user` from `enduser.id`.
//!
//! One test in this binary: it sets process-wide environment variables.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use tracing_subscriber::layer::SubscriberExt;
use xray_testkit::Daemon;

const CONTAINER: &str = r#"{
  "DockerId": "cd189a933e5849daa93386466019ab50-2495160603",
  "Name": "curl",
  "DockerName": "curl",
  "Image": "111122223333.dkr.ecr.us-west-2.amazonaws.com/curltest:latest",
  "Labels": {
    "com.amazonaws.ecs.cluster": "arn:aws:ecs:us-west-2:111122223333:cluster/default",
    "com.amazonaws.ecs.container-name": "curl",
    "com.amazonaws.ecs.task-arn": "arn:aws:ecs:us-west-2:111122223333:task/default/cd189a933e5849daa93386466019ab50",
    "com.amazonaws.ecs.task-definition-family": "curltest",
    "com.amazonaws.ecs.task-definition-version": "2"
  },
  "ContainerARN": "arn:aws:ecs:us-west-2:111122223333:container/default/cd189a933e5849daa93386466019ab50/4f7ec8e0"
}"#;

/// Answers every request with the container's metadata; returns the path asked.
fn ecs_endpoint() -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 2048];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let _ = tx.send(head.lines().next().unwrap_or_default().to_string());
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{CONTAINER}",
                CONTAINER.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (format!("http://{addr}/v4/cd189a933e58-2495160603"), rx)
}

/// Accepts connections and never answers.
fn silent_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    format!("http://{addr}")
}

#[test]
fn segments_carry_sdk_version_origin_and_ecs_metadata() {
    let (ecs, asked) = ecs_endpoint();
    let imds = silent_endpoint();
    // SAFETY: the only test of this binary, before anything reads the environment.
    unsafe {
        std::env::set_var("ECS_CONTAINER_METADATA_URI_V4", &ecs);
        std::env::set_var("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds);
        std::env::set_var("TRACING_XRAY_EC2_METADATA", "true");
        std::env::set_var(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod,service.version=1.4.2%2Bb7",
        );
        std::env::remove_var("AWS_LAMBDA_FUNCTION_NAME");
        std::env::remove_var("LAMBDA_TASK_ROOT");
    }
    let daemon = Daemon::start();
    let bound = Duration::from_millis(300);
    let started = Instant::now();
    let layer = tracing_xray::Builder::from_env()
        .daemon(daemon.addr())
        .service_name("shop")
        .sampling_rate(1.0)
        .centralized_sampling(false)
        .metadata_timeout(bound)
        .build()
        .unwrap();
    let took = started.elapsed();
    // ECS answers at once; EC2 is given up after its bound.
    assert!(
        took >= bound && took < bound + Duration::from_millis(500),
        "build took {took:?}"
    );
    assert_eq!(
        asked.recv_timeout(Duration::from_secs(1)).unwrap(),
        "GET /v4/cd189a933e58-2495160603 HTTP/1.1"
    );

    let handle = layer.handle();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let _request =
            tracing::info_span!("request", xray.trace_header = "", enduser.id = "u-42").entered();
    });
    assert!(handle.flush(Duration::from_secs(2)).complete);
    let docs = daemon.documents_with_spans(1, Duration::from_secs(2));
    let segment = &docs[0];
    assert_eq!(segment["name"], "shop");
    assert_eq!(segment["origin"], "AWS::ECS::Container");
    assert_eq!(segment["user"], "u-42");
    assert_eq!(segment["service"]["version"], "1.4.2+b7");
    assert_eq!(segment["aws"]["xray"]["sdk"], "tracing-xray");
    assert_eq!(
        segment["aws"]["xray"]["sdk_version"],
        env!("CARGO_PKG_VERSION")
    );
    let ecs = &segment["aws"]["ecs"];
    assert_eq!(
        ecs["container_id"],
        "cd189a933e5849daa93386466019ab50-2495160603"
    );
    assert_eq!(ecs["task_family"], "curltest");
    assert_eq!(
        ecs["cluster_arn"],
        "arn:aws:ecs:us-west-2:111122223333:cluster/default"
    );
    assert!(
        ecs["task_arn"]
            .as_str()
            .unwrap()
            .ends_with("task/default/cd189a933e5849daa93386466019ab50")
    );
    assert!(
        ecs["container_arn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:ecs:")
    );
    assert!(!ecs["container"].as_str().unwrap().is_empty());
    assert!(segment["aws"].get("ec2").is_none(), "EC2 never answered");
}
