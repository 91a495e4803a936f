//! Transports that stand where the daemon's socket would: to capture what
//! would be sent, to throw it away, or to make the sender wait, fail or
//! panic on purpose.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use xray_emitter::Target;
use xray_emitter::testing::{DaemonSocket, Sent, Transport};

/// The real socket to `addr`, quiet about send errors.
pub fn socket(addr: SocketAddr) -> DaemonSocket {
    DaemonSocket::new(Target::Addr(addr), false)
}

/// Keeps every datagram handed over.
#[derive(Debug, Default)]
pub struct Capture {
    /// Every datagram, in order.
    pub datagrams: Vec<Vec<u8>>,
}

impl Transport for Capture {
    fn send(&mut self, datagrams: &[&[u8]]) -> Sent {
        self.datagrams.extend(datagrams.iter().map(|d| d.to_vec()));
        Sent::all(datagrams)
    }
}

/// Counts datagrams and bytes and sends nothing: for measuring the building
/// of documents without the socket.
#[derive(Debug, Default)]
pub struct Discard {
    /// Datagrams received.
    pub datagrams: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl Transport for Discard {
    fn send(&mut self, datagrams: &[&[u8]]) -> Sent {
        self.datagrams += datagrams.len() as u64;
        self.bytes += datagrams.iter().map(|d| d.len() as u64).sum::<u64>();
        Sent::all(datagrams)
    }
}

/// Opens a [`Gate`].
#[derive(Clone, Debug, Default)]
pub struct Release(Arc<(Mutex<bool>, Condvar)>);

impl Release {
    /// Lets every held and later send through.
    pub fn release(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }
}

/// Holds the sender thread inside its first send until released: records
/// pile up in the rings meanwhile, to be read in one go.
#[derive(Debug)]
pub struct Gate<T> {
    open: Release,
    inner: T,
}

impl<T> Gate<T> {
    /// A shut gate in front of `inner`, and what opens it.
    pub fn new(inner: T) -> (Gate<T>, Release) {
        let open = Release::default();
        (
            Gate {
                open: open.clone(),
                inner,
            },
            open,
        )
    }
}

impl<T: Transport> Transport for Gate<T> {
    fn send(&mut self, datagrams: &[&[u8]]) -> Sent {
        let (lock, cv) = &*self.open.0;
        let mut open = lock.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
        drop(open);
        self.inner.send(datagrams)
    }
}

/// What a socket whose send buffer stays full does: each send waits for the
/// send timeout, then fails, for the first `failing` sends; then `inner`.
/// (On loopback the kernel frees a datagram's buffer at once, so a real full
/// buffer cannot be made here.)
#[derive(Debug)]
pub struct Failing<T> {
    /// Sends still to fail.
    pub failing: Arc<AtomicUsize>,
    /// How long each failing send waits first.
    pub delay: Duration,
    /// Where sends go once they stop failing.
    pub inner: T,
}

impl<T: Transport> Transport for Failing<T> {
    fn send(&mut self, datagrams: &[&[u8]]) -> Sent {
        let left = self.failing.load(Ordering::Relaxed);
        if left > 0 {
            self.failing.store(left - 1, Ordering::Relaxed);
            std::thread::sleep(self.delay);
            return Sent::failed_all(datagrams.len());
        }
        self.inner.send(datagrams)
    }
}

/// Panics on its first send (a bug in a transport), then hands to `inner`.
#[derive(Debug)]
pub struct PanicsOnce<T> {
    /// Set once it has panicked.
    pub panicked: Arc<AtomicBool>,
    /// Where sends go after the panic.
    pub inner: T,
}

impl<T: Transport> Transport for PanicsOnce<T> {
    fn send(&mut self, datagrams: &[&[u8]]) -> Sent {
        if !self.panicked.swap(true, Ordering::Relaxed) {
            panic!("a bug in the transport");
        }
        self.inner.send(datagrams)
    }
}
