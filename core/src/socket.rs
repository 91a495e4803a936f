//! The UDP socket to the daemon, owned by the sender thread.
//!
//! Several datagrams go out per syscall with `sendmmsg` where the OS has it,
//! one `send` each otherwise. The socket is connected, so an ICMP
//! port-unreachable from a missing daemon comes back instead of vanishing.
//! On Linux the socket asks for each such error with the refused datagram's
//! first bytes (`IP_RECVERR`, read with `MSG_ERRQUEUE` after every send), so
//! the refused datagram itself, not the one being sent when the error
//! surfaced, is counted lost; elsewhere a refusal is charged to the last
//! datagram sent. Errors are printed to stderr at most once a minute, never
//! through `tracing`: this layer must not feed itself.
//!
//! A host name may resolve to several addresses (`localhost` is often `::1`
//! first while the daemon listens on 127.0.0.1): a refusal moves on to the
//! next one, and once every one has refused the name is resolved again, on a
//! helper thread so the sender never waits on DNS.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::address::HostPort;
use crate::resolver::{Addrs, Resolver};

/// Most datagrams handed to the OS in one call.
pub const MAX_BATCH: usize = 64;
// `Sent::failed` has one bit per datagram of a batch.
const _: () = assert!(MAX_BATCH <= u64::BITS as usize);

const REPORT_EVERY: Duration = Duration::from_secs(60);
const SEND_TIMEOUT: Duration = Duration::from_millis(20);
/// How long the sender waits, once, for the first resolution of a host name.
const FIRST_RESOLUTION: Duration = Duration::from_millis(100);
/// Bytes of a refused datagram compared with those sent late.
const FINGERPRINT_BYTES: usize = 256;

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
#[non_exhaustive]
pub struct Sent {
    /// Datagrams the OS accepted and no refusal was seen for.
    pub datagrams: usize,
    /// Their bytes.
    pub bytes: usize,
    /// Datagrams refused or not sent for want of an address.
    pub errors: usize,
    /// Bit `i` is set when datagram `i` of the first [`MAX_BATCH`] failed.
    pub failed: u64,
    /// Bit `i` is set when datagram `i` of the previous batch, counted as
    /// sent then, was refused since.
    pub late: u64,
}

impl Sent {
    /// Every one of `datagrams` accepted: what a transport that cannot fail reports.
    pub fn all(datagrams: &[&[u8]]) -> Sent {
        Sent {
            datagrams: datagrams.len(),
            bytes: datagrams.iter().map(|d| d.len()).sum(),
            ..Sent::default()
        }
    }

    /// Every one of `n` datagrams failed: what a transport that could send
    /// none of them reports.
    pub fn failed_all(n: usize) -> Sent {
        let mut sent = Sent::default();
        (0..n).for_each(|i| sent.fail(i));
        sent
    }

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

/// The datagrams of the batch being sent: which the OS took, which came back refused.
#[derive(Clone, Copy)]
struct Batch {
    accepted: u64,
    refused: u64,
    /// Fingerprints of the previous batch's datagrams counted as sent (0: none).
    previous: [u64; MAX_BATCH],
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            accepted: 0,
            refused: 0,
            previous: [0; MAX_BATCH],
        }
    }
}

/// A connected UDP socket with preallocated `sendmmsg` state.
pub struct DaemonSocket {
    target: Target,
    addrs: Addrs,
    /// The address in use, an index into `addrs`.
    current: usize,
    /// Addresses that refused since one last took a datagram without refusal.
    refusing: usize,
    resolver: Option<Resolver>,
    socket: Option<Socket>,
    /// The socket reports refusals with the datagram (`IP_RECVERR`).
    error_queue: bool,
    batch: Batch,
    log: ErrorLog,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    errors: errqueue::Reader,
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    mmsg: mmsg::Batch,
}

impl std::fmt::Debug for DaemonSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonSocket")
            .field("target", &self.target)
            .field("addrs", &self.addrs)
            .field("connected", &self.socket.is_some())
            .finish()
    }
}

impl DaemonSocket {
    /// A socket for `target`. A host name starts resolving on a helper
    /// thread now; nothing is opened until the first send.
    pub fn new(target: Target, report_errors: bool) -> Self {
        let (addrs, resolver) = match &target {
            Target::Addr(a) => (std::iter::once(*a).collect(), None),
            Target::Host(h) => match literal(h) {
                Some(a) => (std::iter::once(a).collect(), None),
                None => (Addrs::new(), Some(Resolver::start(h.clone()))),
            },
        };
        DaemonSocket {
            target,
            addrs,
            current: 0,
            refusing: 0,
            resolver,
            socket: None,
            error_queue: false,
            batch: Batch::default(),
            log: ErrorLog {
                enabled: report_errors,
                last_report: None,
                unreported: 0,
            },
            #[cfg(any(target_os = "linux", target_os = "android"))]
            errors: errqueue::Reader::new(),
            #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
            mmsg: mmsg::Batch::new(),
        }
    }

    /// A socket trying each of `addrs` in turn (tests of the rotation).
    #[cfg(test)]
    fn with_addrs(addrs: &[SocketAddr]) -> Self {
        let mut s = DaemonSocket::new(Target::Addr(addrs[0]), false);
        s.addrs = addrs.iter().copied().collect();
        s
    }

    /// The address datagrams go to now.
    pub fn current_address(&self) -> Option<SocketAddr> {
        self.addrs.get(self.current).copied()
    }

    /// Closes the socket and asks for a new resolution: after a restore from
    /// a snapshot, the old socket and addresses may belong to another host.
    pub fn reopen(&mut self) {
        self.drop_socket();
        if let Some(r) = &mut self.resolver {
            r.request_now();
        }
    }

    /// Takes a new resolution if the helper has one; never waits but once,
    /// bounded, for the very first.
    fn refresh_addrs(&mut self) {
        let Some(resolver) = &mut self.resolver else {
            return;
        };
        let answer = match resolver.first(FIRST_RESOLUTION) {
            Some(a) => Some(a),
            None => resolver.poll(),
        };
        match answer {
            Some(Ok(addrs)) => {
                let now = self.current_address();
                // Keep the working address if it is still among the answers.
                self.current = now
                    .and_then(|a| addrs.iter().position(|b| *b == a))
                    .unwrap_or(0);
                if addrs.get(self.current) != now.as_ref() {
                    self.drop_socket();
                }
                self.addrs = addrs;
                self.refusing = 0;
            }
            // The last good addresses stay; a later request tries again.
            Some(Err(e)) => {
                let _ = self.log.note("resolve", &e);
            }
            None => {}
        }
    }

    fn connect(&mut self) -> io::Result<&Socket> {
        self.refresh_addrs();
        if self.socket.is_none() {
            let Some(addr) = self.current_address() else {
                if let Some(r) = &mut self.resolver {
                    r.request();
                }
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "daemon address not resolved",
                ));
            };
            let socket = open(addr)?;
            self.error_queue = enable_error_queue(&socket, addr);
            self.socket = Some(socket);
        }
        self.socket
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no socket"))
    }

    fn drop_socket(&mut self) {
        self.socket = None;
        self.batch.previous = [0; MAX_BATCH];
    }

    /// A refusal came back: the next address (if there is another), and a
    /// new resolution once every address has refused.
    fn refused(&mut self, err: &io::Error) {
        let _ = self.log.note("daemon", err);
        self.refusing += 1;
        if self.addrs.len() > 1 {
            self.current = (self.current + 1) % self.addrs.len();
            self.drop_socket();
        }
        if self.refusing >= self.addrs.len()
            && let Some(r) = &mut self.resolver
        {
            r.request();
        }
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
                sent.late = r.late;
            }
        }
        sent
    }

    /// One `send` per datagram: the path where `sendmmsg` does not exist, and
    /// the baseline the benchmarks compare it with.
    pub fn send_each(&mut self, datagrams: &[&[u8]]) -> Sent {
        self.transmit(datagrams, false)
    }

    /// Sends up to [`MAX_BATCH`] datagrams, `sendmmsg` where it exists and
    /// `many`, else one `send` each. A failed datagram does not stop the
    /// others; a refusal (of an earlier datagram) lets the current one be
    /// tried once more.
    fn transmit(&mut self, datagrams: &[&[u8]], many: bool) -> Sent {
        let batch = &datagrams[..datagrams.len().min(MAX_BATCH)];
        self.begin_batch();
        let mut sent = Sent::default();
        let mut next = 0;
        let mut retried = usize::MAX;
        while next < batch.len() {
            if let Err(e) = self.connect() {
                self.failed("resolve", &e);
                (next..batch.len()).for_each(|i| sent.fail(i));
                break;
            }
            match self.send_from(&batch[next..], many) {
                Ok(n) => {
                    self.batch.accepted |= mask_below(next + n) & !mask_below(next);
                    next += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && retried != next => {
                    // The refusal of an earlier datagram surfaced here; this
                    // one was not sent yet, so it is tried once more. With an
                    // error queue, the queue names the refused datagram.
                    retried = next;
                    if !self.error_queue {
                        self.charge_refusal(next, &mut sent, &e);
                    }
                }
                Err(e) => {
                    // The first datagram not yet sent failed: count it and go on.
                    sent.fail(next);
                    next += 1;
                    if self.failed("send", &e) {
                        (next..batch.len()).for_each(|i| sent.fail(i));
                        break;
                    }
                }
            }
            self.read_refusals(batch, &mut sent);
        }
        self.end_batch(batch, sent)
    }

    /// Hands the OS the first of `rest` (or, `many`, as many as it takes);
    /// returns how many it took. The socket is connected.
    fn send_from(&mut self, rest: &[&[u8]], many: bool) -> io::Result<usize> {
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        if many {
            use std::os::fd::AsRawFd;
            let fd = self.socket.as_ref().map(|s| s.as_raw_fd());
            let fd = fd.ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
            return self.mmsg.send(fd, rest);
        }
        let _ = many;
        let socket = self.socket.as_ref();
        let socket = socket.ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        socket.send(rest[0]).map(|_| 1)
    }

    fn begin_batch(&mut self) {
        self.batch.accepted = 0;
        self.batch.refused = 0;
    }

    /// Counts what the OS took and no refusal came back for, and remembers
    /// their fingerprints for refusals that come back later.
    fn end_batch(&mut self, batch: &[&[u8]], mut sent: Sent) -> Sent {
        if let Some(socket) = &self.socket
            && !self.error_queue
            && let Ok(Some(e)) = socket.take_error()
        {
            // The last datagram's refusal, where no error queue names it.
            self.charge_refusal(batch.len(), &mut sent, &e);
        }
        self.read_refusals(batch, &mut sent);
        let ok = self.batch.accepted & !self.batch.refused;
        self.batch.previous = [0; MAX_BATCH];
        for (i, d) in batch.iter().enumerate() {
            if ok & (1 << i) != 0 {
                sent.datagrams += 1;
                sent.bytes += d.len();
                self.batch.previous[i] = fingerprint(d);
            }
        }
        if ok != 0 {
            self.refusing = 0;
        }
        sent
    }

    /// A refusal without the datagram it is about: charged to the last one
    /// accepted before `next` (or to the previous batch's last).
    fn charge_refusal(&mut self, next: usize, sent: &mut Sent, e: &io::Error) {
        let before = self.batch.accepted & !self.batch.refused & mask_below(next);
        if before != 0 {
            let i = 63 - before.leading_zeros() as usize;
            self.batch.refused |= 1 << i;
            sent.fail(i);
        } else if let Some(i) = self.batch.previous.iter().rposition(|&f| f != 0) {
            self.batch.previous[i] = 0;
            sent.late |= 1 << i;
            sent.errors += 1;
        } else {
            sent.errors += 1;
        }
        self.refused(e);
    }

    /// Reads the refusals the error queue holds and marks their datagrams.
    fn read_refusals(&mut self, batch: &[&[u8]], sent: &mut Sent) {
        if !self.error_queue {
            return;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::os::fd::AsRawFd;
            let Some(fd) = self.socket.as_ref().map(|s| s.as_raw_fd()) else {
                return;
            };
            let mut any = false;
            while let Some(payload) = self.errors.next(fd) {
                any = true;
                let candidates = self.batch.accepted & !self.batch.refused;
                let here = (0..batch.len()).find(|&i| {
                    candidates & (1 << i) != 0
                        && batch[i].len() >= payload.len()
                        && batch[i][..payload.len()] == *payload
                });
                if let Some(i) = here {
                    self.batch.refused |= 1 << i;
                    sent.fail(i);
                    continue;
                }
                let print = fingerprint(payload);
                let earlier = self.batch.previous.iter().position(|&f| f == print);
                if let Some(i) = earlier {
                    self.batch.previous[i] = 0;
                    sent.late |= 1 << i;
                }
                sent.errors += 1;
            }
            if any {
                self.refused(&io::Error::from(io::ErrorKind::ConnectionRefused));
            }
        }
    }

    /// Notes a send error; returns whether the socket was dropped (then the
    /// rest of the batch must not use its file descriptor, which another
    /// thread may already have reused).
    fn failed(&mut self, what: &str, err: &io::Error) -> bool {
        let _ = self.log.note(what, err);
        // Resolution and connection problems are retried on a later batch.
        if matches!(
            err.kind(),
            io::ErrorKind::NotConnected | io::ErrorKind::NotFound | io::ErrorKind::AddrNotAvailable
        ) {
            self.drop_socket();
            if let Some(r) = &mut self.resolver {
                r.request();
            }
            return true;
        }
        false
    }

    fn send_batch(&mut self, batch: &[&[u8]]) -> Sent {
        self.transmit(batch, true)
    }
}

/// Bits `0..n`.
fn mask_below(n: usize) -> u64 {
    if n >= 64 { u64::MAX } else { (1u64 << n) - 1 }
}

/// An IP literal needs no resolver.
fn literal(h: &HostPort) -> Option<SocketAddr> {
    let host = h.host().trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, h.port()))
}

fn open(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_write_timeout(Some(SEND_TIMEOUT))?;
    socket.connect(&SockAddr::from(addr))?;
    Ok(socket)
}

/// A hash of the first bytes of a datagram, as an error queue returns them.
/// Eight bytes a step: a byte-wise hash cost the sender ~700 more
/// instructions a datagram, for a value only a late refusal ever reads.
fn fingerprint(d: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let d = &d[..d.len().min(FINGERPRINT_BYTES)];
    let mix = |h: u64, w: u64| (h ^ w).wrapping_mul(K).rotate_left(29);
    let mut words = d.chunks_exact(8);
    let mut h = mix(K, d.len() as u64);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = mix(h, u64::from_le_bytes(b));
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    mix(h, u64::from_le_bytes(tail)) | 1
}

/// Asks the kernel to queue ICMP errors with the datagram they are about.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn enable_error_queue(socket: &Socket, addr: SocketAddr) -> bool {
    use std::os::fd::AsRawFd;
    let (level, name) = match addr {
        SocketAddr::V4(_) => (libc::IPPROTO_IP, libc::IP_RECVERR),
        SocketAddr::V6(_) => (libc::IPPROTO_IPV6, libc::IPV6_RECVERR),
    };
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor, and a pointer to a live `c_int`
    // with its size, as `setsockopt` expects for this option.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn enable_error_queue(_: &Socket, _: SocketAddr) -> bool {
    false
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod errqueue;

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
mod mmsg;

#[cfg(test)]
mod tests;
