//! Overload: producers flat out while the sender is stalled. They never
//! block, the surplus is dropped and counted, and memory stays flat (RSS
//! read from /proc before and after). The per-span cost under overload is a
//! criterion benchmark (`cargo bench -p xray-bench --bench layer -- overload`).
//!
//! One test per binary: RSS is the whole process's.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tracing::info_span;
use tracing_core::Dispatch;
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::XRaySubscriber;
use xray_emitter::testing::Sent;
use xray_emitter::testing::Transport;

/// Holds the sender in its first send until released.
struct Stall(Arc<(Mutex<bool>, Condvar)>);

impl Transport for Stall {
    fn send(&mut self, datagrams: &[&[u8]]) -> Sent {
        let (lock, cv) = &*self.0;
        let mut released = lock.lock().unwrap();
        while !*released {
            released = cv.wait(released).unwrap();
        }
        Sent::all(datagrams)
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Two threads creating spans flat out until `stop`; returns how many.
fn flat_out(
    dispatch: &Dispatch,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<std::thread::JoinHandle<u64>> {
    (0..2)
        .map(|_| {
            let (dispatch, stop) = (dispatch.clone(), stop.clone());
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
                    let inv = info_span!(target: "lambda_runtime::layers::trace", "Lambda runtime invoke", requestId = "r", xrayTraceId = header);
                    let _in = inv.enter();
                    let mut n = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        for i in 0..1000u64 {
                            let s = info_span!("item", annotation.i = i, status = "overloaded");
                            drop(s.enter());
                        }
                        n += 1000;
                    }
                    n
                })
            })
        })
        .collect()
}

#[test]
fn memory_stays_flat_and_drops_are_counted_when_the_sender_is_stalled() {
    if !std::path::Path::new("/proc/self/statm").exists() {
        return;
    }
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let g = gate.clone();
    let layer = XRaySubscriber::builder()
        .lambda(true)
        .report_errors(false)
        .build_with(move || Stall(g))
        .unwrap();
    let handle = layer.handle();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producers = flat_out(&dispatch, stop.clone());
    // Warm up: the producers' rings, the span table and buffers reach their full size.
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib();
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let spans: u64 = producers.into_iter().map(|t| t.join().unwrap()).sum();
    let stats = handle.stats();
    eprintln!("RSS {before} KiB -> {after} KiB over {spans} spans; {stats:?}");
    assert!(
        spans > 10_000,
        "producers ran ({spans} spans): they never blocked"
    );
    assert!(
        stats.records_dropped > 0,
        "the surplus is dropped and counted: {stats:?}"
    );
    assert!(stats.spans_dropped > 0, "{stats:?}");
    assert!(
        after.saturating_sub(before) < 2048,
        "RSS grew from {before} KiB to {after} KiB under overload"
    );
    {
        let (lock, cv) = &*gate;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }
    drop(dispatch);
    assert!(handle.flush(Duration::from_secs(10)).complete);
}
