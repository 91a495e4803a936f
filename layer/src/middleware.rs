//! HTTP middleware: calls to other services as remote subsegments that carry
//! the trace downstream, and requests served outside Lambda as segments.
//!
//! Each piece only creates a span with OpenTelemetry's HTTP field names and
//! records the answer; the layer turns those fields into X-Ray's `http`
//! block, the remote namespace and the error flags, as it does for spans a
//! user writes by hand.
//!
//! - [`ClientLayer`] (feature `tower`): a `tower::Layer` for HTTP clients
//!   built on `tower` services of `http::Request` (hyper-util's client, …).
//! - [`ServerLayer`] (feature `tower`): a `tower::Layer` for servers (axum,
//!   hyper through `tower`): one segment per request, continuing the
//!   caller's `X-Amzn-Trace-Id`, answered with the trace id.
//! - [`ReqwestMiddleware`] (feature `reqwest`): the same as [`ClientLayer`]
//!   for `reqwest-middleware` clients.

use http::header::{HeaderMap, HeaderName, HeaderValue};

#[cfg(feature = "tower")]
mod client;
#[cfg(feature = "reqwest")]
mod reqwest;
#[cfg(feature = "tower")]
mod server;

#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use client::{ClientFuture, ClientLayer, ClientService};
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use reqwest::ReqwestMiddleware;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use server::{ServerFuture, ServerLayer, ServerService};

/// The header X-Ray's services and SDKs read and write.
pub(crate) const TRACE_HEADER: HeaderName = HeaderName::from_static("x-amzn-trace-id");

/// The span of a call to another HTTP service: `otel.kind = "client"` and
/// the request's method, URL, host and port, with the status to come.
pub(crate) fn client_span(method: &http::Method, uri: &http::Uri) -> tracing::Span {
    let host = uri.host().unwrap_or_default();
    let span = tracing::info_span!(
        "http_client",
        otel.kind = "client",
        http.request.method = method.as_str(),
        url.full = %uri,
        server.address = host,
        server.port = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        xray.traced = tracing::field::Empty,
        exception.message = tracing::field::Empty,
    );
    if let Some(port) = uri.port_u16() {
        span.record("server.port", port);
    }
    span
}

/// Sends the trace on with the request: `Root`, this call's subsegment as
/// `Parent`, the decision, and the incoming header's extra keys (`Lineage`).
/// Marks the call `traced` when it is sampled (X-Ray then links the
/// service called).
pub(crate) fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    let Some(header) = crate::trace_header(span) else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(&header.encode()) {
        headers.insert(TRACE_HEADER, value);
        if header.is_sampled() {
            span.record("xray.traced", true);
        }
    }
}

/// What the answer says: its status (the layer derives the flags from it).
pub(crate) fn record_status(span: &tracing::Span, status: http::StatusCode) {
    span.record("http.response.status_code", status.as_u16());
}

/// No answer at all: a fault, with the error as its exception.
pub(crate) fn record_failure(span: &tracing::Span, error: &dyn std::fmt::Display) {
    span.record("exception.message", tracing::field::display(error));
}
