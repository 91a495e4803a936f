//! The span every layer benchmark measures, so that criterion and callgrind
//! time the same thing.

use std::hint::black_box;

use tracing::info_span;
use tracing_core::Subscriber;
use tracing_subscriber::layer::Layer;

/// A sampled invocation's trace header.
pub const HEADER: &str =
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

/// One span: create, enter, exit, close, two fields.
#[inline(never)]
pub fn one_span(i: u64) {
    let span = info_span!("handle_item", item_id = i, status = "ok");
    let _entered = span.enter();
    black_box(&span);
}

/// The span `lambda_runtime` opens around each invocation.
pub fn invocation() -> tracing::Span {
    info_span!(
        target: "lambda_runtime::layers::trace",
        "Lambda runtime invoke",
        requestId = "req",
        xrayTraceId = HEADER
    )
}

/// A layer that does nothing: the floor any layer stands on.
#[derive(Debug)]
pub struct NoOp;

impl<S: Subscriber> Layer<S> for NoOp {}

/// The least a layer can do that hands each span to another thread: four
/// 64-byte records per span (open with the time and the callsite, one per
/// field, close with the time) copied into a ring of this thread's, and
/// nothing else: no parent, no id, no sampling, no state kept, no record
/// ever shown to a reader. What `XRaySubscriber` costs above this is the
/// work of following a trace on the caller's thread.
#[derive(Debug)]
pub struct Floor;

#[derive(Clone, Copy)]
#[repr(align(64))]
struct Slot([u64; 8]);

const FLOOR_SLOTS: usize = 16_384;

thread_local! {
    static FLOOR_RING: std::cell::RefCell<(Vec<Slot>, usize)> =
        std::cell::RefCell::new((vec![Slot([0; 8]); FLOOR_SLOTS], 0));
}

fn floor_put(words: [u64; 3]) {
    FLOOR_RING.with(|ring| {
        let mut ring = ring.borrow_mut();
        let i = ring.1;
        ring.1 = (i + 1) % FLOOR_SLOTS;
        ring.0[i] = Slot([words[0], words[1], words[2], 0, 0, 0, 0, 0]);
    });
}

impl Floor {
    /// A sum over this thread's ring, so that its writes are read somewhere
    /// and cannot be optimized away.
    pub fn checksum() -> u64 {
        FLOOR_RING.with(|ring| {
            ring.borrow().0.iter().fold(0u64, |sum, slot| {
                slot.0.iter().fold(sum, |s, w| s.wrapping_add(*w))
            })
        })
    }
}

struct FloorFields(u64);

impl tracing::field::Visit for FloorFields {
    fn record_u64(&mut self, _: &tracing::field::Field, value: u64) {
        floor_put([self.0, value, 0]);
    }
    fn record_str(&mut self, _: &tracing::field::Field, value: &str) {
        floor_put([self.0, value.len() as u64, value.as_ptr() as u64]);
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {
        floor_put([self.0, 0, 0]);
    }
}

impl<S: Subscriber> Layer<S> for Floor {
    fn on_new_span(
        &self,
        attrs: &tracing_core::span::Attributes<'_>,
        id: &tracing_core::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let meta = attrs.metadata() as *const tracing_core::Metadata<'static> as u64;
        floor_put([id.into_u64(), xray_emitter::clock::now().raw(), meta]);
        attrs.record(&mut FloorFields(id.into_u64()));
    }

    fn on_close(&self, id: tracing_core::span::Id, _: tracing_subscriber::layer::Context<'_, S>) {
        floor_put([id.into_u64(), xray_emitter::clock::now().raw(), 1]);
    }
}
