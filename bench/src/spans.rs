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
