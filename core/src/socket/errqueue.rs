//! Refusals with the datagram they are about: `MSG_ERRQUEUE` on Linux.

use std::os::fd::RawFd;

/// Bytes of a refused datagram read back (the kernel quotes about 520
/// over IPv4 and 1,184 over IPv6).
const QUOTE: usize = 2048;

/// Reads `MSG_ERRQUEUE` into one buffer reused for every call.
pub(super) struct Reader {
    buf: Box<[u8; QUOTE]>,
    len: usize,
}

impl Reader {
    pub(super) fn new() -> Self {
        Reader {
            buf: Box::new([0; QUOTE]),
            len: 0,
        }
    }

    /// The first bytes of the next refused datagram, if one is queued.
    pub(super) fn next(&mut self, fd: RawFd) -> Option<&[u8]> {
        let mut iov = libc::iovec {
            iov_base: self.buf.as_mut_ptr().cast(),
            iov_len: QUOTE,
        };
        // SAFETY: all-zero bytes are a valid `msghdr` (null pointers, zero lengths).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        // SAFETY: `msg` points at one iovec describing `self.buf`, which
        // lives through the call; no control buffer is given.
        let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
        if n < 0 {
            return None;
        }
        self.len = (n as usize).min(QUOTE);
        Some(&self.buf[..self.len])
    }
}
