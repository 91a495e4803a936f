//! Support for the load tests: a receiver that counts spans, invocations, work.
#![allow(dead_code)]

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tracing::info_span;

/// Reads and counts what arrives, nested spans included, without storing it.
pub struct Receiver {
    pub addr: std::net::SocketAddr,
    spans: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Entities in a document: each has exactly one `"start_time":` key, and in
/// valid JSON that text cannot occur inside a string (its quotes would be
/// escaped). Counting bytes keeps the receiver ahead of the sender even in a
/// debug build on a busy machine, where parsing every document did not.
fn count(document: &[u8]) -> u64 {
    const KEY: &[u8] = b"\"start_time\":";
    document.windows(KEY.len()).filter(|w| *w == KEY).count() as u64
}

impl Receiver {
    pub fn start() -> Receiver {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(16 << 20);
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let (spans, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (s, st) = (spans.clone(), stop.clone());
        let addr = socket.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 70_000];
            while !st.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    let header = b"{\"format\":\"json\",\"version\":1}\n";
                    assert!(buf[..n].starts_with(header), "daemon header");
                    s.fetch_add(count(&buf[header.len()..n]), Ordering::Relaxed);
                }
            }
        });
        Receiver {
            addr,
            spans,
            stop,
            thread: Some(thread),
        }
    }

    pub fn spans(&self) -> u64 {
        self.spans.load(Ordering::Relaxed)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn invocation(i: u64, sampled: bool) -> tracing::Span {
    let header = format!(
        "Root=1-6720f3a0-{i:024x};Parent={:016x};Sampled={}",
        i + 1,
        u8::from(sampled)
    );
    info_span!(target: "lambda_runtime::layers::trace", "Lambda runtime invoke", requestId = "r", xrayTraceId = header.as_str())
}

/// One invocation: `n` spans, every fifth with two children.
pub fn work(n: u64) -> u64 {
    let mut made = 0;
    for i in 0..n {
        let s = info_span!("item", annotation.i = i, status = "ok");
        let _e = s.enter();
        made += 1;
        if i % 5 == 0 {
            drop(info_span!("child", depth = 1u64).entered());
            drop(info_span!("child", depth = 2u64).entered());
            made += 2;
        }
    }
    made
}
