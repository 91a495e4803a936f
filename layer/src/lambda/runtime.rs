//! `RuntimeLayer`: the invocation span, made from what only the Runtime
//! API's answer carries, and a trace that survives a timeout.
//!
//! When a function times out, Lambda stops the sandbox at the deadline:
//! every span still open is lost, and with it the parent of everything that
//! did close. That is exactly the invocation one wants to see. This layer
//! gives the sender thread the deadline; shortly before it, the sender
//! reports each open span of the invocation `in_progress`, with the children
//! that closed, while the handler keeps running. If the handler finishes in
//! time after all, the complete documents follow and X-Ray keeps those.

use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use lambda_runtime::LambdaInvocation;
use lambda_runtime::tower::{Layer, Service};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use crate::subscriber::XRaySubscriber;

/// How long before the deadline open spans are reported, by default: the
/// sender looks at deadlines every 10 ms at most, and the datagrams must
/// reach the daemon before the sandbox stops.
pub const DEFAULT_MARGIN: Duration = Duration::from_millis(50);

/// A `tower::Layer` for `lambda_runtime::Runtime::layer`: each invocation
/// runs in `lambda_runtime`'s own invocation span (so use it instead of the
/// runtime's `TracingLayer`, not beside it), and its open spans are reported
/// in progress [`DEFAULT_MARGIN`] before its deadline.
///
/// ```no_run
/// use lambda_runtime::{Error, LambdaEvent, Runtime, service_fn};
/// use tracing_xray::lambda::RuntimeLayer;
///
/// async fn handler(event: LambdaEvent<serde_json::Value>) -> Result<(), Error> {
///     Ok(())
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Error> {
///     tracing_xray::lambda::init()?;
///     Runtime::new(service_fn(handler))
///         .layer(RuntimeLayer::default())
///         .run()
///         .await
/// }
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RuntimeLayer {
    margin: Duration,
}

impl Default for RuntimeLayer {
    fn default() -> Self {
        RuntimeLayer {
            margin: DEFAULT_MARGIN,
        }
    }
}

impl RuntimeLayer {
    /// Reports open spans this long before the deadline instead. Longer
    /// leaves more room for the datagrams to leave; shorter reports more of
    /// what the handler did.
    pub fn margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }
}

impl<S> Layer<S> for RuntimeLayer {
    type Service = RuntimeService<S>;

    fn layer(&self, inner: S) -> RuntimeService<S> {
        RuntimeService {
            inner,
            margin: self.margin,
        }
    }
}

/// The service [`RuntimeLayer`] wraps around the runtime's.
#[derive(Clone, Debug)]
pub struct RuntimeService<S> {
    inner: S,
    margin: Duration,
}

impl<S> Service<LambdaInvocation> for RuntimeService<S>
where
    S: Service<LambdaInvocation>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        let span = lambda_runtime::layers::trace::request_span(&invocation.context);
        let deadline = Duration::from_millis(invocation.context.deadline);
        let at = deadline.saturating_sub(self.margin).as_micros();
        let at = u64::try_from(at).unwrap_or(u64::MAX);
        span.with_subscriber(|(id, dispatch)| {
            if let Some(layer) = dispatch.downcast_ref::<XRaySubscriber>() {
                layer.report_at(id, dispatch, at);
            }
        });
        let future = span.in_scope(|| self.inner.call(invocation));
        future.instrument(span)
    }
}
