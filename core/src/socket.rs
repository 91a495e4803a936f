//! The UDP socket to the daemon, owned by the sender thread.
//!
//! Several datagrams go out per syscall with `sendmmsg` where the OS has it,
//! one `send` each otherwise. The socket is connected, so an ICMP
//! port-unreachable from a missing daemon comes back as an error on a later
//! send and is counted instead of vanishing. A host that does not resolve is
//! retried every few seconds. Errors are printed to stderr at most once a
//! minute, never through `tracing`: this layer must not feed itself.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::address::HostPort;

/// Most datagrams handed to the OS in one call.
pub const MAX_BATCH: usize = 64;
// `Sent::failed` has one bit per datagram of a batch.
const _: () = assert!(MAX_BATCH <= u64::BITS as usize);

const RESOLVE_RETRY: Duration = Duration::from_secs(5);
const REPORT_EVERY: Duration = Duration::from_secs(60);
const SEND_TIMEOUT: Duration = Duration::from_millis(20);

/// Where datagrams go: a fixed address, or a host name resolved (again) on demand.
#[derive(Clone, Debug)]
pub enum Target {
    /// A resolved address.
    Addr(SocketAddr),
    /// A host and port from `AWS_XRAY_DAEMON_ADDRESS`.
    Host(HostPort),
}

/// What one batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Datagrams the OS accepted.
    pub datagrams: usize,
    /// Their bytes.
    pub bytes: usize,
    /// Datagrams refused or not sent for want of an address.
    pub errors: usize,
    /// Bit `i` is set when datagram `i` of the first [`MAX_BATCH`] failed.
    pub failed: u64,
}

impl Sent {
    fn fail(&mut self, index: usize) {
        self.errors += 1;
        if index < u64::BITS as usize {
            self.failed |= 1 << index;
        }
    }
}

/// Prints errors at a bounded rate.
#[derive(Debug)]
struct ErrorLog {
    enabled: bool,
    last_report: Option<Instant>,
    unreported: u64,
}

impl ErrorLog {
    /// Counts an error; prints a line if none was printed in the last minute.
    /// Returns whether it printed.
    fn note(&mut self, what: &str, err: &io::Error) -> bool {
        self.unreported += 1;
        let due = self.last_report.is_none_or(|t| t.elapsed() >= REPORT_EVERY);
        if !(self.enabled && due) {
            return false;
        }
        eprintln!(
            "xray-emitter: {} send error(s) since the last report; latest: {what}: {err}",
            self.unreported
        );
        self.last_report = Some(Instant::now());
        self.unreported = 0;
        true
    }
}

/// A connected UDP socket with preallocated `sendmmsg` state.
pub struct DaemonSocket {
    target: Target,
    socket: Option<Socket>,
    next_resolve: Option<Instant>,
    log: ErrorLog,
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    mmsg: mmsg::Batch,
}

impl std::fmt::Debug for DaemonSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonSocket")
            .field("target", &self.target)
            .field("connected", &self.socket.is_some())
            .finish()
    }
}

impl DaemonSocket {
    /// A socket for `target`; nothing is resolved or opened until the first send.
    pub fn new(target: Target, report_errors: bool) -> Self {
        DaemonSocket {
            target,
            socket: None,
            next_resolve: None,
            log: ErrorLog {
                enabled: report_errors,
                last_report: None,
                unreported: 0,
            },
            #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
            mmsg: mmsg::Batch::new(),
        }
    }

    fn connect(&mut self) -> io::Result<&Socket> {
        if self.socket.is_none() {
            if self.next_resolve.is_some_and(|t| Instant::now() < t) {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "daemon address not resolved",
                ));
            }
            let opened = self.open();
            if opened.is_err() {
                self.next_resolve = Some(Instant::now() + RESOLVE_RETRY);
            }
            self.socket = Some(opened?);
        }
        self.socket
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no socket"))
    }

    fn open(&self) -> io::Result<Socket> {
        let addr = match &self.target {
            Target::Addr(a) => *a,
            Target::Host(h) => h.resolve()?,
        };
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_write_timeout(Some(SEND_TIMEOUT))?;
        socket.connect(&SockAddr::from(addr))?;
        Ok(socket)
    }

    /// Sends every datagram; a failure of one does not stop the others.
    pub fn send(&mut self, datagrams: &[&[u8]]) -> Sent {
        let mut sent = Sent::default();
        for (i, batch) in datagrams.chunks(MAX_BATCH).enumerate() {
            let r = self.send_batch(batch);
            sent.datagrams += r.datagrams;
            sent.bytes += r.bytes;
            sent.errors += r.errors;
            if i == 0 {
                sent.failed = r.failed;
            }
        }
        sent
    }

    /// One `send` per datagram: the path where `sendmmsg` does not exist, and
    /// the baseline the benchmarks compare it with.
    pub fn send_each(&mut self, datagrams: &[&[u8]]) -> Sent {
        let mut sent = Sent::default();
        for (i, d) in datagrams.iter().enumerate() {
            let result = match self.connect() {
                Ok(s) => send_one(s, d),
                Err(e) => Err(e),
            };
            match result {
                Ok(refused) => {
                    sent.datagrams += 1;
                    sent.bytes += d.len();
                    if let Some(e) = refused {
                        sent.errors += 1;
                        let _ = self.log.note("send", &e);
                    }
                }
                Err(e) => {
                    sent.fail(i);
                    self.failed("send", &e);
                }
            }
        }
        sent
    }

    fn failed(&mut self, what: &str, err: &io::Error) {
        // Resolution and connection problems are retried on a later batch.
        if matches!(
            err.kind(),
            io::ErrorKind::NotConnected | io::ErrorKind::NotFound | io::ErrorKind::AddrNotAvailable
        ) {
            self.socket = None;
        }
        let _ = self.log.note(what, err);
    }

    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    fn send_batch(&mut self, batch: &[&[u8]]) -> Sent {
        use std::os::fd::AsRawFd;
        let fd = match self.connect() {
            Ok(s) => s.as_raw_fd(),
            Err(e) => {
                self.failed("resolve", &e);
                let mut sent = Sent::default();
                (0..batch.len()).for_each(|i| sent.fail(i));
                return sent;
            }
        };
        let mut sent = Sent::default();
        let mut next = 0;
        let mut retried = usize::MAX;
        while next < batch.len() {
            match self.mmsg.send(fd, &batch[next..]) {
                Ok(n) => {
                    sent.datagrams += n;
                    sent.bytes += batch[next..next + n].iter().map(|d| d.len()).sum::<usize>();
                    next += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && retried != next => {
                    // The refusal reports an ICMP error for an earlier datagram and
                    // consumed it; this one was not sent yet, so try it once more.
                    retried = next;
                    let _ = self.log.note("sendmmsg", &e);
                    sent.errors += 1;
                }
                Err(e) => {
                    // The first datagram not yet sent failed: count it and go on.
                    sent.fail(next);
                    next += 1;
                    self.failed("sendmmsg", &e);
                }
            }
        }
        sent
    }

    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    fn send_batch(&mut self, batch: &[&[u8]]) -> Sent {
        self.send_each(batch)
    }
}

/// Sends one datagram; `Ok(Some(e))` when it went out after the socket
/// reported a refusal of an earlier one.
fn send_one(socket: &Socket, datagram: &[u8]) -> io::Result<Option<io::Error>> {
    let mut refused = None;
    loop {
        match socket.send(datagram) {
            Ok(_) => return Ok(refused),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // An ICMP error about an earlier datagram: this one was not sent yet.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && refused.is_none() => {
                refused = Some(e)
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
mod mmsg {
    use std::io;
    use std::os::fd::RawFd;

    use super::MAX_BATCH;

    /// Message headers reused for every call, so sending allocates nothing.
    pub(super) struct Batch {
        headers: Box<[libc::mmsghdr; MAX_BATCH]>,
        iovecs: Box<[libc::iovec; MAX_BATCH]>,
    }

    impl Batch {
        pub(super) fn new() -> Self {
            // SAFETY: `mmsghdr` and `iovec` are plain C structs for which all-zero
            // bytes (null pointers, zero lengths) are a valid value.
            let (headers, iovecs) =
                unsafe { (Box::new(std::mem::zeroed()), Box::new(std::mem::zeroed())) };
            Batch { headers, iovecs }
        }

        /// Sends up to `MAX_BATCH` datagrams on the connected socket `fd`;
        /// returns how many the kernel took.
        pub(super) fn send(&mut self, fd: RawFd, datagrams: &[&[u8]]) -> io::Result<usize> {
            let n = datagrams.len().min(MAX_BATCH);
            // One raw pointer for the whole array: taking `&mut self.iovecs[i]`
            // per entry would, under Rust's aliasing rules, invalidate the
            // pointers stored for the entries before it.
            let iovecs = self.iovecs.as_mut_ptr();
            for (i, d) in datagrams[..n].iter().enumerate() {
                let iovec = iovecs.wrapping_add(i);
                // SAFETY: `i < n <= MAX_BATCH`, so `iovec` is inside the array,
                // which nothing else borrows during this call.
                unsafe {
                    iovec.write(libc::iovec {
                        iov_base: d.as_ptr() as *mut libc::c_void,
                        iov_len: d.len(),
                    })
                };
                let h = &mut self.headers[i];
                h.msg_hdr.msg_name = std::ptr::null_mut();
                h.msg_hdr.msg_namelen = 0;
                h.msg_hdr.msg_iov = iovec;
                h.msg_hdr.msg_iovlen = 1;
                h.msg_hdr.msg_control = std::ptr::null_mut();
                h.msg_hdr.msg_controllen = 0;
                h.msg_hdr.msg_flags = 0;
                h.msg_len = 0;
            }
            // SAFETY: the first `n` headers point at `n` iovecs, each of which points
            // at a live datagram borrowed for the duration of this call; the kernel
            // only reads them (and writes `msg_len`), and `n <= MAX_BATCH` entries exist.
            let r = unsafe { libc::sendmmsg(fd, self.headers.as_mut_ptr(), n as _, 0) };
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(r as usize)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn batch_and_single_sends_arrive() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut s = DaemonSocket::new(Target::Addr(rx.local_addr().unwrap()), false);
        let payloads: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("datagram {i}").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
        let sent = s.send(&refs);
        assert_eq!(sent.datagrams, 100);
        assert_eq!(sent.errors, 0);
        let sent = s.send_each(&refs[..3]);
        assert_eq!(sent.datagrams, 3);
        let mut buf = [0u8; 64];
        for p in payloads.iter().chain(&payloads[..3]) {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], p.as_slice());
        }
    }

    #[test]
    fn errors_are_reported_at_most_once_a_minute() {
        let mut log = ErrorLog {
            enabled: true,
            last_report: None,
            unreported: 0,
        };
        let err = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(log.note("send", &err), "the first error is reported");
        let reported = (0..10_000).filter(|_| log.note("send", &err)).count();
        assert_eq!(reported, 0, "then nothing for a minute");
        assert_eq!(log.unreported, 10_000, "but every one is counted");
        log.last_report = Some(Instant::now() - REPORT_EVERY);
        assert!(
            log.note("send", &err),
            "a minute later, one line with the count"
        );
        assert_eq!(log.unreported, 0);
    }

    #[test]
    fn missing_daemon_is_counted() {
        let port = {
            let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        let mut s = DaemonSocket::new(Target::Addr(port), false);
        let mut errors = 0;
        for _ in 0..20 {
            errors += s.send(&[b"x".as_slice()]).errors;
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(errors > 0, "ICMP port unreachable should surface as errors");
    }
}
