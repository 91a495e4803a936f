//! A forked child copies its parent's id generators: without re-seeding,
//! parent and child would give the same span and trace ids. And the child
//! has no sender thread: its pushes are counted dropped, never lost unseen.
#![cfg(any(target_os = "linux", target_os = "android"))]

use std::time::Duration;

use xray_emitter::{SegmentId, TraceId};

fn ids() -> [u64; 4] {
    let (a, b) = (SegmentId::random(), SegmentId::random());
    let t = TraceId::new().random();
    [a.get(), b.get(), u64::from(t.0), t.1]
}

#[test]
fn a_forked_child_makes_other_ids_and_counts_its_pushes_dropped() {
    let daemon = xray_testkit::Daemon::start();
    let (e, _guard) = xray_testkit::spans::emitter(&daemon);
    // Warm: this thread's generator is seeded before the fork.
    let _ = ids();
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors `pipe` writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only makes ids, pushes one record, writes to a pipe
    // and leaves with `_exit`, without unwinding into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let mut out = [0u64; 5];
        out[..4].copy_from_slice(&ids());
        out[4] = u64::from(!xray_testkit::spans::close(&e, SegmentId::random()));
        // SAFETY: writes the 40 bytes of `out` to the pipe's write end.
        unsafe {
            libc::write(fds[1], out.as_ptr().cast(), 40);
            libc::_exit(0);
        }
    }
    let mine = ids();
    let mut theirs = [0u64; 5];
    // SAFETY: reads at most 40 bytes into `theirs`; waits for the child.
    unsafe {
        assert_eq!(libc::read(fds[0], theirs.as_mut_ptr().cast(), 40), 40);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    assert_ne!(mine[..2], theirs[..2], "span ids diverge after fork");
    assert_ne!(mine[2..4], theirs[2..4], "trace ids diverge after fork");
    assert_eq!(
        theirs[4], 1,
        "the child's push is refused (and counted there)"
    );
    assert!(
        e.flush(Duration::from_secs(1)).complete,
        "the parent runs on"
    );
}

#[test]
fn after_a_restore_the_sender_reopens_and_runs_on() {
    let daemon = xray_testkit::Daemon::start();
    let (e, _guard) = xray_testkit::spans::emitter(&daemon);
    e.after_restore();
    assert!(
        xray_testkit::spans::close(&e, SegmentId::random()),
        "pushes go on"
    );
    assert!(
        e.flush(Duration::from_secs(1)).complete,
        "the sender reopened and runs on"
    );
}
