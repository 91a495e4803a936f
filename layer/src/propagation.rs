//! The `X-Amzn-Trace-Id` to send with a call made inside a span.

use xray_emitter::TraceHeader;

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
