//! In Lambda (detected here from `LAMBDA_TASK_ROOT` alone) spans outside any
//! invocation are counted, with one warning on stderr, or none under
//! `AWS_XRAY_CONTEXT_MISSING=IGNORE_ERROR`. The test runs itself as a child
//! process, with that environment, to read what it prints.

use std::process::Command;

use tracing::info_span;
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::XRaySubscriber;

const CHILD: &str = "TRACING_XRAY_CONTEXT_MISSING_CHILD";
const WARNING: &str = "outside any Lambda invocation";

/// The child: three spans during "init", then its count on stdout.
#[test]
fn child() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    let layer = XRaySubscriber::default();
    let handle = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..3u64 {
            drop(info_span!("init_work", i).entered());
        }
    });
    println!("untraced={}", handle.stats().spans_untraced);
}

fn run_child(policy: Option<&str>) -> (String, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("LAMBDA_TASK_ROOT", "/var/task")
        .env("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000")
        .env_remove("AWS_LAMBDA_FUNCTION_NAME")
        .env_remove("AWS_LAMBDA_MAX_CONCURRENCY")
        .env_remove("_X_AMZN_TRACE_ID");
    match policy {
        Some(p) => cmd.env("AWS_XRAY_CONTEXT_MISSING", p),
        None => cmd.env_remove("AWS_XRAY_CONTEXT_MISSING"),
    };
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn one_warning_by_default_and_none_when_ignored() {
    for (policy, warnings) in [(None, 1), (Some("LOG_ERROR"), 1), (Some("IGNORE_ERROR"), 0)] {
        let (stdout, stderr) = run_child(policy);
        assert!(stdout.contains("untraced=3"), "{policy:?}: {stdout}");
        assert_eq!(
            stderr.matches(WARNING).count(),
            warnings,
            "{policy:?}: {stderr}"
        );
    }
}
