//! Name resolution off the sender thread.
//!
//! `getaddrinfo` can block for seconds (a slow or missing DNS server), and
//! the sender must go on sending to the last good address and answering
//! flushes meanwhile. So a helper thread resolves on request and leaves the
//! answer where the sender picks it up without waiting: the sender only ever
//! `try_lock`s, the helper holds the lock just long enough to store a list.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};

use arrayvec::ArrayVec;

use crate::address::HostPort;

/// Addresses kept from one resolution.
pub(crate) const MAX_ADDRS: usize = 8;

/// What one resolution gave.
pub(crate) type Addrs = ArrayVec<SocketAddr, MAX_ADDRS>;

/// Shortest time between two resolutions of the same name.
const MIN_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Slot {
    requested: AtomicBool,
    ready: AtomicBool,
    stop: AtomicBool,
    answer: Mutex<Option<std::io::Result<Addrs>>>,
}

/// The sender's end of the helper thread.
#[derive(Debug)]
pub(crate) struct Resolver {
    slot: Arc<Slot>,
    helper: Option<Thread>,
    last_request: Option<Instant>,
    /// Whether any answer has arrived yet.
    answered: bool,
}

impl Resolver {
    /// Starts the helper and asks for a first resolution of `host`.
    pub(crate) fn start(host: HostPort) -> Resolver {
        let slot = Arc::new(Slot::default());
        slot.requested.store(true, Ordering::Release);
        let theirs = slot.clone();
        let helper = std::thread::Builder::new()
            .name("xray-resolver".into())
            .spawn(move || serve(&host, &theirs))
            .ok()
            .map(|h| h.thread().clone());
        if helper.is_none() {
            // No thread: a resolution that never comes is an error, not a wait.
            let mut answer = slot.answer.lock().unwrap_or_else(|p| p.into_inner());
            *answer = Some(Err(std::io::Error::other(
                "cannot start the resolver thread",
            )));
            slot.ready.store(true, Ordering::Release);
        }
        Resolver {
            slot,
            helper,
            last_request: Some(Instant::now()),
            answered: false,
        }
    }

    /// Asks for a new resolution, at most once per [`MIN_INTERVAL`].
    pub(crate) fn request(&mut self) {
        if self
            .last_request
            .is_some_and(|t| t.elapsed() < MIN_INTERVAL)
        {
            return;
        }
        self.last_request = Some(Instant::now());
        self.slot.requested.store(true, Ordering::Release);
        if let Some(t) = &self.helper {
            t.unpark();
        }
    }

    /// Asks for a new resolution now, whenever the last one was.
    pub(crate) fn request_now(&mut self) {
        self.last_request = None;
        self.request();
    }

    /// A new answer, if one is there; never waits.
    pub(crate) fn poll(&mut self) -> Option<std::io::Result<Addrs>> {
        if !self.slot.ready.load(Ordering::Acquire) {
            return None;
        }
        let mut answer = self.slot.answer.try_lock().ok()?;
        let taken = answer.take()?;
        self.slot.ready.store(false, Ordering::Release);
        self.answered = true;
        Some(taken)
    }

    /// Waits up to `bound` for the first answer: once per socket, so that a
    /// name that resolves at once (`localhost`) loses nothing at start.
    pub(crate) fn first(&mut self, bound: Duration) -> Option<std::io::Result<Addrs>> {
        if self.answered {
            return None;
        }
        let deadline = Instant::now() + bound;
        loop {
            if let Some(a) = self.poll() {
                return Some(a);
            }
            if Instant::now() >= deadline {
                self.answered = true;
                return None;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.slot.stop.store(true, Ordering::Release);
        if let Some(t) = &self.helper {
            t.unpark();
        }
    }
}

fn serve(host: &HostPort, slot: &Slot) {
    loop {
        if slot.stop.load(Ordering::Acquire) {
            return;
        }
        if slot.requested.swap(false, Ordering::AcqRel) {
            let answer = resolve_all(host);
            let mut stored = slot.answer.lock().unwrap_or_else(|p| p.into_inner());
            *stored = Some(answer);
            drop(stored);
            slot.ready.store(true, Ordering::Release);
        }
        std::thread::park_timeout(Duration::from_secs(1));
    }
}

/// Every address `host` resolves to (at most [`MAX_ADDRS`]), in the
/// resolver's order.
pub(crate) fn resolve_all(host: &HostPort) -> std::io::Result<Addrs> {
    let name = host.host().trim_start_matches('[').trim_end_matches(']');
    let mut addrs = Addrs::new();
    for a in (name, host.port()).to_socket_addrs()? {
        if !addrs.contains(&a) && addrs.try_push(a).is_err() {
            break;
        }
    }
    if addrs.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} resolved to no address"),
        ));
    }
    Ok(addrs)
}
