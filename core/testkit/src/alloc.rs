//! A counting global allocator, for tests that count allocations exactly.
//! A test binary installs it with
//! `#[global_allocator] static A: xray_testkit::Counting = xray_testkit::Counting;`
//! and keeps to one test, so no other test thread allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts every allocation and reallocation, per thread and in all.
#[derive(Debug)]
pub struct Counting;

static ALL: AtomicU64 = AtomicU64::new(0);
thread_local! {
    static MINE: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    ALL.fetch_add(1, Ordering::Relaxed);
    // Not counted while this thread's locals are torn down.
    let _ = MINE.try_with(|c| c.set(c.get() + 1));
}

/// Allocations made on this thread so far.
pub fn allocations_here() -> u64 {
    MINE.with(Cell::get)
}

/// Allocations made in the whole process so far.
pub fn allocations_anywhere() -> u64 {
    ALL.load(Ordering::SeqCst)
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counting touches only an atomic and a thread-local `Cell`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}
