//! `ServerLayer`: each request a service answers is a segment, continuing
//! the caller's trace when it sent one.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{HOST, HeaderValue, USER_AGENT};
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;
use tracing::instrument::Instrumented;

use xray_emitter::TraceHeader;
use xray_emitter::header::Sampled;

use super::TRACE_HEADER;

/// A `tower::Layer` for HTTP servers outside Lambda (axum, hyper through
/// `tower`): every request becomes a segment named after the service
/// ([`Builder::service_name`](crate::Builder::service_name)), continuing the
/// trace of an incoming `X-Amzn-Trace-Id` or starting one (sampled by the
/// rules in force), with the method, URL, `user_agent`, `client_ip` and
/// status; the answer carries `X-Amzn-Trace-Id: Root=…` (and the decision
/// when the caller sent `Sampled=?`), as the X-Ray SDKs answer.
///
/// The client's address is the first one in `X-Forwarded-For`, else a
/// `SocketAddr` the server put in the request's extensions.
///
/// ```
/// use tower::ServiceBuilder;
/// use tracing_xray::middleware::ServerLayer;
///
/// # fn wrap<S: Clone>(app: S) {
/// let traced = ServiceBuilder::new().layer(ServerLayer::new()).service(app);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct ServerLayer {}

impl ServerLayer {
    /// The layer.
    pub fn new() -> Self {
        ServerLayer {}
    }
}

impl<S> Layer<S> for ServerLayer {
    type Service = ServerService<S>;

    fn layer(&self, inner: S) -> ServerService<S> {
        ServerService { inner }
    }
}

/// The service [`ServerLayer`] wraps around an application.
#[derive(Clone, Debug)]
pub struct ServerService<S> {
    inner: S,
}

fn header<'r, B>(request: &'r http::Request<B>, name: &http::HeaderName) -> &'r str {
    (request.headers().get(name))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The segment of one request; every field the sampling rules read is
/// there at creation, when the decision is made.
fn server_span<B>(request: &http::Request<B>) -> tracing::Span {
    let uri = request.uri();
    let host = match uri.host() {
        Some(host) => host,
        None => header(request, &HOST),
    };
    // Written into stack buffers, cut where the layer would cut them: no
    // allocation for the span.
    let url = match (uri.scheme(), host) {
        (None, host) if !host.is_empty() => {
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            crate::fields::format(&format_args!("http://{host}{path}"))
        }
        _ => crate::fields::format(&format_args!("{uri}")),
    };
    let agent = Some(header(request, &USER_AGENT)).filter(|a| !a.is_empty());
    let forwarded = header(request, &http::HeaderName::from_static("x-forwarded-for"));
    let forwarded =
        Some(forwarded.split(',').next().unwrap_or_default().trim()).filter(|f| !f.is_empty());
    let peer = match forwarded {
        Some(_) => None,
        None => (request.extensions().get::<SocketAddr>())
            .map(|a| crate::fields::format(&format_args!("{}", a.ip()))),
    };
    let client = forwarded.or(peer.as_deref());
    tracing::info_span!(
        "http_server",
        xray.trace_header = header(request, &TRACE_HEADER),
        otel.kind = "server",
        http.request.method = request.method().as_str(),
        url.full = url.as_str(),
        server.address = Some(host).filter(|h| !h.is_empty()),
        user_agent.original = agent,
        client.address = client,
        xray.x_forwarded_for = forwarded.map(|_| true),
        http.response.status_code = tracing::field::Empty,
        exception.message = tracing::field::Empty,
    )
}

impl<S, B, R> Service<http::Request<B>> for ServerService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ServerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let span = server_span(&request);
        let asked = header(&request, &TRACE_HEADER).contains("Sampled=?");
        let answer = response_header(&span, asked);
        let future = span.in_scope(|| self.inner.call(request));
        ServerFuture {
            inner: future.instrument(span),
            answer,
        }
    }
}

/// The answer of a [`ServerService`]: its status recorded, the trace
/// header added.
#[derive(Debug)]
pub struct ServerFuture<F> {
    inner: Instrumented<F>,
    answer: Option<http::HeaderValue>,
}

impl<F, R, E> Future for ServerFuture<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
    E: std::fmt::Display,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is never moved out of the pinned `self` (structural
        // pinning); `answer` is not pinned and only taken, never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: `this` came from a pin and `inner` stays where it is.
        let mut inner = unsafe { Pin::new_unchecked(&mut this.inner) };
        let mut output = std::task::ready!(inner.as_mut().poll(cx));
        match &mut output {
            Ok(response) => {
                super::record_status(inner.span(), response.status());
                if let Some(value) = this.answer.take() {
                    response.headers_mut().insert(TRACE_HEADER, value);
                }
            }
            Err(error) => super::record_failure(inner.span(), error),
        }
        Poll::Ready(output)
    }
}

/// The response header a service answers with, as the X-Ray SDKs do: the
/// trace's `Root`, and the decision only when the caller asked for it
/// (`Sampled=?`).
fn response_header(span: &tracing::Span, asked: bool) -> Option<HeaderValue> {
    let header = crate::trace_header(span)?;
    let root = header.root?;
    let sampled = asked.then(|| {
        if header.is_sampled() {
            Sampled::Yes
        } else {
            Sampled::No
        }
    });
    HeaderValue::from_str(&TraceHeader::new(root, None, sampled).encode()).ok()
}
