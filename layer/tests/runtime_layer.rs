//! `RuntimeLayer` with the real `lambda_runtime::Runtime` against a local
//! Runtime API whose deadline is 400 ms away, and a handler that sleeps
//! past it: before the deadline the daemon's socket already holds the open
//! spans `in_progress` and their closed child; when the handler finishes
//! after all, the complete documents follow.
//!
//! One test in this binary: it sets process-wide environment variables.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lambda_runtime::{LambdaEvent, Runtime, service_fn};
use serde_json::Value;
use tracing::Instrument;
use tracing_xray::XRaySubscriber;
use tracing_xray::lambda::RuntimeLayer;
use xray_testkit::Daemon;
use xray_testkit::runtime_api::{Invocation, RuntimeApi, set_lambda_env};

const ROOT: &str = "1-6720f3a0-aaaaaaaaaaaaaaaaaaaaaaaa";
const DEADLINE: Duration = Duration::from_millis(400);

async fn handler(
    started: Arc<Mutex<Option<Instant>>>,
    _: LambdaEvent<Value>,
) -> Result<(), lambda_runtime::Error> {
    *started.lock().unwrap() = Some(Instant::now());
    async {
        async { tokio::time::sleep(Duration::from_millis(20)).await }
            .instrument(tracing::info_span!("load_order"))
            .await;
        // Past the deadline: a real sandbox would be stopped in here.
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    .instrument(tracing::info_span!(
        "process_order",
        annotation.order = "o-7"
    ))
    .await;
    Ok(())
}

fn entity<'a>(docs: &'a [Value], name: &str, in_progress: bool) -> Option<&'a Value> {
    docs.iter().find(|d| {
        d["name"] == name && d["trace_id"] == ROOT && (d["in_progress"] == true) == in_progress
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_spans_reach_the_daemon_in_progress_before_the_deadline() {
    let api = RuntimeApi::start(vec![Invocation {
        request_id: "req-timeout".into(),
        trace_header: format!("Root={ROOT};Parent=1111111111111111;Sampled=1"),
        event: "{}".into(),
    }])
    .await;
    api.deadline_after(DEADLINE);
    set_lambda_env(api.addr, &[("RUST_LOG", "info")]);
    let inbox = Arc::new(Daemon::polled());
    let layer = XRaySubscriber::builder()
        .daemon(inbox.addr())
        .build()
        .unwrap();
    tracing_xray::lambda::init_with(layer).expect("first subscriber of this process");

    let started = Arc::new(Mutex::new(None));
    let s = started.clone();
    let runtime = tokio::spawn(
        Runtime::new(service_fn(move |e| handler(s.clone(), e)))
            .layer(RuntimeLayer::default())
            .run(),
    );

    // What is in the socket just before the deadline (the handler started a
    // moment after `/next` answered, so this is a little early if anything).
    let t0 = loop {
        if let Some(t) = *started.lock().unwrap() {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    tokio::time::sleep_until((t0 + DEADLINE - Duration::from_millis(15)).into()).await;
    let before: Vec<Value> = inbox
        .received()
        .iter()
        .map(|d| xray_testkit::check(d))
        .collect();
    let process = entity(&before, "process_order", true)
        .unwrap_or_else(|| panic!("process_order in progress before the deadline: {before:#?}"));
    assert_eq!(process["parent_id"], "1111111111111111");
    assert_eq!(process["type"], "subsegment");
    assert_eq!(process["annotations"]["order"], "o-7");
    assert!(process.get("end_time").is_none());
    let load = entity(&before, "load_order", false).expect("its closed child, complete");
    assert_eq!(load["parent_id"], process["id"]);
    assert!(load["end_time"].as_f64().is_some());

    // The handler finishes after all: the complete document replaces the report.
    api.wait_answered(1).await;
    runtime.abort();
    inbox.wait_until(Duration::from_secs(2), |d| {
        d.iter().any(|d| {
            let d = xray_testkit::check(d);
            d["name"] == "process_order" && d.get("end_time").is_some()
        })
    });
    let after: Vec<Value> = inbox
        .received()
        .iter()
        .map(|d| xray_testkit::check(d))
        .collect();
    let complete = entity(&after, "process_order", false).expect("the complete document");
    assert_eq!(complete["id"], process["id"]);
    assert!(
        complete["end_time"].as_f64().unwrap() > complete["start_time"].as_f64().unwrap() + 0.7
    );
    // The child went out once, with the report.
    assert_eq!(
        after.iter().filter(|d| d["name"] == "load_order").count(),
        1
    );
}
