//! `XRaySubscriber::default()` configures itself from the environment the
//! X-Ray SDKs read: `AWS_XRAY_DAEMON_ADDRESS` (both forms),
//! `AWS_XRAY_TRACING_NAME`, `AWS_REGION`; a bad daemon address is reported
//! and every span counted as dropped, never a panic.
//!
//! One test per binary: it changes the process environment.

use std::time::Duration;

use tracing::{debug_span, info_span};
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::XRaySubscriber;
use xray_testkit::Daemon;

fn set(vars: &[(&str, Option<&str>)]) {
    for (k, v) in vars {
        // SAFETY: one test in this binary; nothing else reads the environment meanwhile.
        unsafe {
            match v {
                Some(v) => std::env::set_var(k, v),
                None => std::env::remove_var(k),
            }
        }
    }
}

/// One segment with an SQS call inside, under the current environment.
fn one_request() -> tracing_xray::XRayHandle {
    let layer = XRaySubscriber::default();
    let handle = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let root = info_span!(
            "request",
            xray.trace_header = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
        );
        let _r = root.enter();
        let call = debug_span!(
            target: "aws_sdk_sqs::operation::send_message",
            "SQS.SendMessage",
            "rpc.service" = "SQS",
            "rpc.method" = "SendMessage",
            "rpc.system" = "aws-api"
        );
        drop(call.entered());
    });
    let _ = handle.flush(Duration::from_secs(2));
    handle
}

#[test]
fn configured_from_the_environment() {
    let daemon = Daemon::start();
    let port = daemon.addr().port();
    // The TCP address is one nobody listens on: documents must go to the UDP one.
    let dead_port = xray_testkit::closed_port().port();
    let both = format!("tcp:127.0.0.1:{dead_port} udp:127.0.0.1:{port}");
    set(&[
        ("AWS_XRAY_DAEMON_ADDRESS", Some(&both)),
        ("AWS_XRAY_TRACING_NAME", Some("env-service")),
        ("AWS_REGION", Some("ap-southeast-2")),
        ("AWS_LAMBDA_FUNCTION_NAME", None),
        ("LAMBDA_TASK_ROOT", None),
    ]);
    one_request();
    let docs = daemon.documents_with_spans(2, Duration::from_secs(2));
    let seg = &docs[0];
    assert_eq!(seg["name"], "env-service");
    assert_eq!(seg["subsegments"][0]["aws"]["region"], "ap-southeast-2");

    // The plain `host:port` form: UDP and TCP both there.
    let plain = Daemon::start();
    set(&[("AWS_XRAY_DAEMON_ADDRESS", Some(&plain.addr().to_string()))]);
    one_request();
    assert_eq!(
        plain.documents_with_spans(2, Duration::from_secs(2)).len(),
        1
    );

    set(&[("AWS_XRAY_DAEMON_ADDRESS", Some("not-an-address"))]);
    let layer = XRaySubscriber::default();
    let handle = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        drop(
            info_span!(
                "request",
                xray.trace_header = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
            )
            .entered(),
        );
    });
    let s = handle.stats();
    assert_eq!(
        s.records_dropped, 5,
        "open, name, `aws.xray` (a JSON text two records long) and close of the segment are counted: {s:?}"
    );
    assert_eq!(s.spans_dropped, 1, "and the span itself: {s:?}");
    assert!(
        handle.flush(Duration::from_millis(100)).complete,
        "nothing to wait for"
    );
}
