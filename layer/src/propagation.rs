//! The `X-Amzn-Trace-Id` to send with a call made inside a span.

use tracing_core::span::Id;
use tracing_subscriber::registry::LookupSpan;
use xray_emitter::TraceHeader;
use xray_emitter::header::{EXTRAS_CAPACITY, Sampled};

use crate::states::State;
use crate::subscriber::XRaySubscriber;

/// The trace header a downstream call made inside `span` should carry:
/// `Root` of its trace, `Parent` = the span's own subsegment (or the segment
/// it belongs to), its sampling decision, and the incoming header's extra
/// keys such as `Lineage`. `None` if the span is not traced by an
/// [`XRaySubscriber`] (or no such layer is installed).
///
/// ```
/// # use tracing_subscriber::layer::SubscriberExt;
/// # let subscriber = tracing_subscriber::registry().with(tracing_xray::XRaySubscriber::builder()
/// #     .daemon("127.0.0.1:9".parse().unwrap()).lambda(false).build().unwrap());
/// # tracing::subscriber::with_default(subscriber, || {
/// let span = tracing::info_span!("call-inventory");
/// if let Some(header) = tracing_xray::trace_header(&span) {
///     // request.headers_mut().insert("X-Amzn-Trace-Id", header.encode().parse()?);
///     assert!(header.encode().starts_with("Root=1-"));
/// }
/// # });
/// ```
pub fn trace_header(span: &tracing::Span) -> Option<TraceHeader> {
    span.with_subscriber(|(id, dispatch)| {
        dispatch
            .downcast_ref::<XRaySubscriber>()
            .and_then(|layer| layer.header_in(id, dispatch, false))
    })
    .flatten()
}

impl XRaySubscriber {
    /// The state of span `id`, or of its nearest ancestor this layer follows
    /// (for callers outside a layer context: the SDK interceptor, `trace_header`).
    pub(crate) fn state_in(&self, id: &Id, dispatch: &tracing_core::Dispatch) -> Option<State> {
        if let Some(s) = self.state(id) {
            return Some(s);
        }
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let span = registry.span(id)?;
        self.nearest(span.scope().skip(1).map(|s| s.id()))
    }

    /// The state of the first of `ids` this layer follows: the parent it sees
    /// for a span whose own parent it does not follow (filtered out for it,
    /// or too many open).
    pub(crate) fn nearest(&self, ids: impl Iterator<Item = Id>) -> Option<State> {
        ids.into_iter().find_map(|id| self.state(&id))
    }

    /// The header a call made inside span `id` sends downstream: its trace,
    /// the span (or, for `sdk_call`, its SDK call) as parent, the sampling
    /// decision, and the incoming header's extra keys.
    pub(crate) fn header_in(
        &self,
        id: &Id,
        dispatch: &tracing_core::Dispatch,
        sdk_call: bool,
    ) -> Option<TraceHeader> {
        let s = self.state_in(id, dispatch)?;
        let trace = s.trace?;
        let parent = s.op.filter(|_| sdk_call).or(s.own).or(s.anchor);
        let sampled = if s.sampled() {
            Sampled::Yes
        } else {
            Sampled::No
        };
        let header = TraceHeader::new(trace, parent, Some(sampled));
        let mut buf = [0u8; EXTRAS_CAPACITY];
        let n = self.contexts.read(s.context, &mut buf);
        let extras = std::str::from_utf8(&buf[..n]).unwrap_or_default();
        Some(header.with_extras(extras).unwrap_or(header))
    }
}
