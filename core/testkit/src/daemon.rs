//! A UDP socket on loopback standing in for the X-Ray daemon.
//!
//! Three ways to read it, for three kinds of test: [`Daemon::start`] keeps
//! every datagram, read by a thread as it arrives; [`Daemon::polled`] keeps
//! them too but reads only when asked, so a test can tell what was in the
//! socket at a given instant (before Lambda would freeze the sandbox);
//! [`Daemon::counting`] keeps nothing and counts the spans that arrive, into
//! a fixed buffer, so load tests keep up and allocation tests see no
//! allocation from it.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::check::{HEADER, check, count_spans};

/// Receives datagrams on loopback until dropped.
#[derive(Debug)]
pub struct Daemon {
    addr: SocketAddr,
    socket: Arc<UdpSocket>,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    spans: Arc<AtomicU64>,
    polled: bool,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Keep,
    Count,
}

/// A loopback address nothing listens on: a daemon that is down.
pub fn closed_port() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl Daemon {
    /// Keeps every datagram, read as it arrives.
    pub fn start() -> Daemon {
        Daemon::bind("127.0.0.1:0".parse().unwrap()).expect("bind loopback")
    }

    /// A daemon on `addr` (a port a test freed, to bring the daemon back).
    pub fn bind(addr: SocketAddr) -> std::io::Result<Daemon> {
        Daemon::open(addr, Some(Mode::Keep))
    }

    /// Keeps every datagram, read only when a method asks.
    pub fn polled() -> Daemon {
        Daemon::open("127.0.0.1:0".parse().unwrap(), None).expect("bind loopback")
    }

    /// Counts the spans that arrive (nested ones included) and keeps nothing.
    pub fn counting() -> Daemon {
        Daemon::open("127.0.0.1:0".parse().unwrap(), Some(Mode::Count)).expect("bind loopback")
    }

    fn open(addr: SocketAddr, mode: Option<Mode>) -> std::io::Result<Daemon> {
        let socket = UdpSocket::bind(addr)?;
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(16 << 20);
        let socket = Arc::new(socket);
        let mut daemon = Daemon {
            addr: socket.local_addr()?,
            socket: socket.clone(),
            received: Arc::default(),
            spans: Arc::default(),
            polled: mode.is_none(),
            stop: Arc::default(),
            handle: None,
        };
        match mode {
            None => socket.set_nonblocking(true)?,
            Some(mode) => {
                socket.set_read_timeout(Some(Duration::from_millis(20)))?;
                let (r, n, s) = (
                    daemon.received.clone(),
                    daemon.spans.clone(),
                    daemon.stop.clone(),
                );
                daemon.handle = Some(std::thread::spawn(move || {
                    let mut buf = vec![0u8; 70_000];
                    while !s.load(Ordering::Relaxed) {
                        if let Ok(len) = socket.recv(&mut buf) {
                            match mode {
                                Mode::Keep => r.lock().unwrap().push(buf[..len].to_vec()),
                                Mode::Count => {
                                    n.fetch_add(count_fast(&buf[..len]), Ordering::Relaxed);
                                }
                            }
                        }
                    }
                }));
            }
        }
        Ok(daemon)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Reads what is queued on the socket now, if this daemon is polled.
    fn pull(&self) {
        if !self.polled {
            return;
        }
        let mut buf = vec![0u8; 70_000];
        let mut all = self.received.lock().unwrap();
        while let Ok(n) = self.socket.recv(&mut buf) {
            all.push(buf[..n].to_vec());
        }
    }

    /// Every datagram received so far (and forgets them).
    pub fn take(&self) -> Vec<Vec<u8>> {
        self.pull();
        std::mem::take(&mut *self.received.lock().unwrap())
    }

    /// Datagrams received so far.
    pub fn count(&self) -> usize {
        self.pull();
        self.received.lock().unwrap().len()
    }

    /// A copy of every datagram received so far (kept).
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.pull();
        self.received.lock().unwrap().clone()
    }

    /// Spans counted by a [`Daemon::counting`] daemon.
    pub fn spans(&self) -> u64 {
        self.spans.load(Ordering::Relaxed)
    }

    /// Waits until a [`Daemon::counting`] daemon has counted `at_least`
    /// spans, or `timeout`; returns what it counted (the caller decides
    /// whether fewer is a failure).
    pub fn spans_within(&self, at_least: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        while self.spans() < at_least && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.spans()
    }

    /// Every document received so far, each checked (and forgets them),
    /// after a moment for datagrams still on their way over loopback.
    pub fn documents(&self) -> Vec<Value> {
        std::thread::sleep(Duration::from_millis(50));
        self.take().iter().map(|d| check(d)).collect()
    }

    /// Waits until `pred` holds for the datagrams received so far, or panics after `timeout`.
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&[Vec<u8>]) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            self.pull();
            if pred(&self.received.lock().unwrap()) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for datagrams");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until `spans` entities have arrived (nested ones included), then
    /// returns every document, each checked.
    pub fn documents_with_spans(&self, spans: usize, timeout: Duration) -> Vec<Value> {
        self.wait_until(timeout, |d| {
            d.iter().map(|d| count_spans(&check(d))).sum::<usize>() >= spans
        });
        // Give stragglers a moment, then take everything.
        std::thread::sleep(Duration::from_millis(20));
        self.take().iter().map(|d| check(d)).collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Entities in a datagram without parsing it: each has exactly one
/// `"start_time":` key, and in valid JSON that text cannot occur inside a
/// string (its quotes would be escaped). Keeps a debug build's receiver
/// ahead of the sender on a busy machine, where parsing every document did not.
///
/// The header line is compared with ours ignoring whitespace, not byte for
/// byte: other clients (the OpenTelemetry X-Ray exporter the benchmarks
/// compare with) write it with spaces, which the daemon's JSON reading
/// allows. Without allocating: allocation tests count this thread too.
fn count_fast(datagram: &[u8]) -> u64 {
    const KEY: &[u8] = b"\"start_time\":";
    let end = datagram
        .iter()
        .position(|&b| b == b'\n')
        .map_or(datagram.len(), |i| i + 1);
    let (header, body) = datagram.split_at(end);
    let compact = header
        .iter()
        .filter(|&&b| b == b'\n' || !b.is_ascii_whitespace());
    assert!(
        compact.eq(HEADER.iter()),
        "daemon header: {:?}",
        String::from_utf8_lossy(header)
    );
    body.windows(KEY.len()).filter(|w| *w == KEY).count() as u64
}

#[cfg(test)]
mod tests {
    use super::count_fast;

    #[test]
    fn headers_with_or_without_spaces_count_alike() {
        let doc = br#"{"name":"a","start_time":1.0,"subsegments":[{"start_time":2.0}]}"#;
        for header in [
            &b"{\"format\":\"json\",\"version\":1}\n"[..],
            &b"{\"format\": \"json\", \"version\": 1}\n"[..],
        ] {
            let datagram = [header, &doc[..]].concat();
            assert_eq!(count_fast(&datagram), 2);
        }
    }

    #[test]
    #[should_panic(expected = "daemon header")]
    fn a_datagram_without_the_header_is_refused() {
        count_fast(br#"{"name":"a","start_time":1.0}"#);
    }
}
