//! The one-CPU SDK-call group's pieces: a thread held to one CPU, and the
//! X-Ray protocol's own cost there, without any tracing.
//!
//! On one CPU, a traced call pays for more than its tracing code: one UDP
//! datagram per subsegment goes through the kernel, and the daemon, on the
//! same CPU, is woken to read it. Any X-Ray emitter pays that much, so the
//! group measures it on its own ([`DatagramsAlone`]) beside the traced call.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::sdk::{Call, client, one_call, traced};
use crate::spans::invocation;

/// How long `XRaySubscriber`'s sender pauses between passes while spans
/// keep coming: its `BUSY_PAUSE` (private to `xray-emitter`'s sender; keep
/// the two in step).
pub const SENDER_PAUSE: Duration = Duration::from_millis(2);

/// One datagram exactly as the traced GetItem of the benchmarks sends it
/// (header line and document), caught by a recording daemon.
pub fn get_item_datagram(runtime: &tokio::runtime::Runtime) -> Vec<u8> {
    let daemon = xray_testkit::Daemon::start();
    let c = client(Call::GetItem, true);
    tracing::dispatcher::with_default(&traced(daemon.addr()), || {
        let invocation = invocation();
        let _in = invocation.enter();
        one_call(runtime, &c, Call::GetItem);
    });
    daemon.wait_until(Duration::from_secs(5), |d| !d.is_empty());
    let mut sent = daemon.take();
    assert_eq!(sent.len(), 1, "a traced GetItem sends one datagram");
    sent.pop().expect("the traced call's datagram")
}

/// A thread that sends one copy of a datagram for each [`DatagramsAlone::one`]
/// call, in batches after each [`SENDER_PAUSE`], as `XRaySubscriber`'s sender
/// does, and nothing else: the protocol's cost without the tracing.
#[derive(Debug)]
pub struct DatagramsAlone {
    pending: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DatagramsAlone {
    /// Starts the thread (it inherits this thread's CPU affinity).
    pub fn start(daemon: SocketAddr, datagram: Vec<u8>) -> DatagramsAlone {
        let pending = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let socket = UdpSocket::bind("127.0.0.1:0").expect("a socket");
        socket.connect(daemon).expect("the daemon's address");
        let (p, s) = (pending.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(SENDER_PAUSE);
                let mut n = p.swap(0, Ordering::Relaxed);
                while n > 0 {
                    n -= send_copies(&socket, &datagram, n);
                }
            }
        });
        DatagramsAlone {
            pending,
            stop,
            thread: Some(thread),
        }
    }

    /// One more datagram to send.
    pub fn one(&self) {
        self.pending.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for DatagramsAlone {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends up to `n` copies in one `sendmmsg`, as the sender batches; returns
/// how many went (at least 1, so that a failing socket cannot spin).
#[cfg(target_os = "linux")]
fn send_copies(socket: &UdpSocket, datagram: &[u8], n: u64) -> u64 {
    use std::os::fd::AsRawFd;
    const BATCH: usize = 64;
    let k = (n as usize).min(BATCH);
    let mut iov = libc::iovec {
        iov_base: datagram.as_ptr() as *mut libc::c_void,
        iov_len: datagram.len(),
    };
    // One pointer shared by every header.
    let iov = &raw mut iov;
    // SAFETY: an all-zero `mmsghdr` is valid (no name, no control data).
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for m in &mut msgs[..k] {
        m.msg_hdr.msg_iov = iov;
        m.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `k` initialized headers, each pointing at `iov`, which points at
    // `datagram`; all outlive the call, and the kernel only reads the data.
    let sent = unsafe { libc::sendmmsg(socket.as_raw_fd(), msgs.as_mut_ptr(), k as _, 0) };
    sent.max(1) as u64
}

#[cfg(not(target_os = "linux"))]
fn send_copies(socket: &UdpSocket, datagram: &[u8], _n: u64) -> u64 {
    let _ = socket.send(datagram);
    1
}

/// This thread held to the first CPU it may run on, and what it had before
/// restored on drop.
#[cfg(target_os = "linux")]
pub struct Pinned(libc::cpu_set_t);

#[cfg(target_os = "linux")]
impl std::fmt::Debug for Pinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pinned")
    }
}

#[cfg(target_os = "linux")]
impl Pinned {
    /// `None` where the affinity cannot be set.
    pub fn to_one_cpu() -> Option<Pinned> {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: an all-zero `cpu_set_t` is the empty set.
        let mut before: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `before` is a `cpu_set_t` of `size` bytes; 0 is this thread.
        if unsafe { libc::sched_getaffinity(0, size, &mut before) } != 0 {
            return None;
        }
        // SAFETY: `before` was filled in above; the index is below its capacity.
        let first =
            (0..libc::CPU_SETSIZE as usize).find(|&i| unsafe { libc::CPU_ISSET(i, &before) })?;
        // SAFETY: as for `before`.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `first` is below the set's capacity; `one` is a valid set of `size` bytes.
        let set = unsafe {
            libc::CPU_SET(first, &mut one);
            libc::sched_setaffinity(0, size, &one)
        };
        (set == 0).then_some(Pinned(before))
    }
}

#[cfg(target_os = "linux")]
impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: the set read when pinning, of its own size; 0 is this thread.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0) };
    }
}
