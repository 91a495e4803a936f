//! The span each thread is in, as this layer sees it.
//!
//! Asking the `Registry` for the current span looks it up in its slab, which
//! cost about a third of this layer's time per span. Instead each thread keeps
//! a small stack of the span ids this layer saw entered (`on_enter` /
//! `on_exit`); it is tagged with the layer's instance so that two layers in
//! one process never read each other's. Deeper than the stack holds, the
//! caller asks the registry.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};

use arrayvec::ArrayVec;

const DEPTH: usize = 32;

struct Stack {
    entries: ArrayVec<(u32, u64), DEPTH>,
    /// Entries that did not fit.
    overflow: u32,
}

thread_local! {
    static STACK: RefCell<Stack> = const {
        RefCell::new(Stack {
            entries: ArrayVec::new_const(),
            overflow: 0,
        })
    };
}

/// A number per layer instance.
pub(crate) fn new_instance() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `span` was entered on this thread.
#[inline]
pub(crate) fn enter(layer: u32, span: u64) {
    let _ = STACK.try_with(|s| {
        let Ok(mut s) = s.try_borrow_mut() else {
            return;
        };
        if s.entries.try_push((layer, span)).is_err() {
            s.overflow += 1;
        }
    });
}

/// `span` was exited on this thread.
#[inline]
pub(crate) fn exit(layer: u32, span: u64) {
    let _ = STACK.try_with(|s| {
        let Ok(mut s) = s.try_borrow_mut() else {
            return;
        };
        // Looked for first: a span on the stack exited out of order while
        // the stack is overflowing must not stay on it as a stale parent.
        if let Some(i) = s.entries.iter().rposition(|&e| e == (layer, span)) {
            s.entries.remove(i);
        } else {
            s.overflow = s.overflow.saturating_sub(1);
        }
    });
}

/// The innermost span `layer` saw entered on this thread: `Some(None)` for
/// none, `None` if the stack cannot tell (too deep, or thread teardown).
#[inline]
pub(crate) fn current(layer: u32) -> Option<Option<u64>> {
    STACK
        .try_with(|s| {
            let s = s.try_borrow().ok()?;
            if s.overflow > 0 {
                return None;
            }
            Some(s.entries.iter().rev().find(|e| e.0 == layer).map(|e| e.1))
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_out_of_order() {
        let (a, b) = (new_instance(), new_instance());
        assert_eq!(current(a), Some(None));
        enter(a, 1);
        enter(b, 100);
        enter(a, 2);
        assert_eq!(current(a), Some(Some(2)));
        assert_eq!(current(b), Some(Some(100)));
        exit(a, 1);
        assert_eq!(current(a), Some(Some(2)));
        exit(a, 2);
        assert_eq!(current(a), Some(None));
        for i in 0..40 {
            enter(a, i);
        }
        assert_eq!(current(a), None, "too deep: ask the registry");
        for i in (0..40).rev() {
            exit(a, i);
        }
        assert_eq!(current(a), Some(None));
        exit(b, 100);
    }

    #[test]
    fn an_out_of_order_exit_while_too_deep_leaves_no_stale_span() {
        let a = new_instance();
        for i in 1..=40 {
            enter(a, i);
        }
        exit(a, 3);
        for i in (1..=40).rev().filter(|&i| i != 3) {
            exit(a, i);
        }
        assert_eq!(current(a), Some(None));
    }
}
