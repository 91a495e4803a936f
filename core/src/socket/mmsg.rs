//! `sendmmsg`: many datagrams in one syscall, with message headers reused.

use std::io;
use std::os::fd::RawFd;

use super::MAX_BATCH;

/// Message headers reused for every call, so sending allocates nothing.
pub(super) struct Batch {
    headers: Box<[libc::mmsghdr; MAX_BATCH]>,
    iovecs: Box<[libc::iovec; MAX_BATCH]>,
    /// Calls made, and an error the next one returns (tests).
    #[cfg(test)]
    pub(super) calls: usize,
    #[cfg(test)]
    pub(super) fail_next: Option<io::ErrorKind>,
}

// SAFETY: the raw pointers in the headers point into `iovecs` (a box this
// struct owns, whose heap address does not change when the struct moves) or
// into datagrams borrowed for one `send` call; they are dereferenced only by
// the kernel, inside `send`, which `&mut self` keeps to one thread at a time.
unsafe impl Send for Batch {}

impl Batch {
    pub(super) fn new() -> Self {
        // SAFETY: `mmsghdr` and `iovec` are plain C structs for which all-zero
        // bytes (null pointers, zero lengths) are a valid value.
        let (headers, iovecs) =
            unsafe { (Box::new(std::mem::zeroed()), Box::new(std::mem::zeroed())) };
        Batch {
            headers,
            iovecs,
            #[cfg(test)]
            calls: 0,
            #[cfg(test)]
            fail_next: None,
        }
    }

    /// Sends up to `MAX_BATCH` datagrams on the connected socket `fd`;
    /// returns how many the kernel took.
    pub(super) fn send(&mut self, fd: RawFd, datagrams: &[&[u8]]) -> io::Result<usize> {
        #[cfg(test)]
        {
            self.calls += 1;
            if let Some(kind) = self.fail_next.take() {
                return Err(io::Error::from(kind));
            }
        }
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
