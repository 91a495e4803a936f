//! A bad `AWS_XRAY_DAEMON_ADDRESS` is an error naming the variable, the value
//! and the accepted forms; no daemon listening lets the program run on while
//! the error count rises.
//!
//! One test per binary: it changes the process environment.

use std::time::Duration;

use xray_emitter::{Emitter, Kind, SegmentId, StartError, TraceId};
use xray_testkit::spans::{close, open_top};

fn set_env(value: Option<&str>) {
    // SAFETY: this binary runs a single test on a single thread at this
    // point; no other thread reads the environment concurrently.
    unsafe {
        match value {
            Some(v) => std::env::set_var("AWS_XRAY_DAEMON_ADDRESS", v),
            None => std::env::remove_var("AWS_XRAY_DAEMON_ADDRESS"),
        }
    }
}

#[test]
fn daemon_address_from_the_environment() {
    for bad in [
        "localhost",
        "udp:127.0.0.1:2000",
        "127.0.0.1:99999",
        "tcp:a:1 tcp:b:2",
    ] {
        set_env(Some(bad));
        match Emitter::builder().start() {
            Err(StartError::Address(e)) => {
                let text = e.to_string();
                assert!(text.contains("AWS_XRAY_DAEMON_ADDRESS"), "{text}");
                assert!(text.contains(bad), "{text}");
                assert!(
                    text.contains("\"host:port\"")
                        && text.contains("\"tcp:host:port udp:host:port\""),
                    "{text}"
                );
            }
            other => panic!("{bad:?} was accepted: {other:?}"),
        }
    }

    // A free port: bound, then released, so nothing listens there.
    let port = xray_testkit::closed_port().port();
    set_env(Some(&format!("tcp:127.0.0.1:{port} udp:127.0.0.1:{port}")));
    let (e, _guard) = Emitter::builder()
        .report_errors(false)
        .start()
        .expect("a valid address starts");
    set_env(None);
    let trace = TraceId::new();
    let facade = SegmentId::random();
    let mut errors = 0;
    for round in 0..50 {
        for _ in 0..4 {
            let id = SegmentId::random();
            assert!(open_top(&e, id, trace, facade, "unheard", Kind::Local));
            assert!(close(&e, id));
        }
        assert!(e.flush(Duration::from_secs(2)).complete, "round {round}");
        errors = e.stats().send_errors;
        if errors > 5 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        errors > 5,
        "ICMP port unreachable surfaces as counted send errors ({errors})"
    );

    // The daemon comes back on that port: documents flow again.
    let daemon = xray_testkit::Daemon::bind(([127, 0, 0, 1], port).into()).unwrap();
    let id = SegmentId::random();
    open_top(&e, id, trace, facade, "heard", Kind::Local);
    close(&e, id);
    let _ = e.flush(Duration::from_secs(2));
    let docs = daemon.documents_with_spans(1, Duration::from_secs(2));
    let doc = &docs[0];
    assert_eq!(doc["name"], "heard");
}
