//! `ClientLayer`: each request a tower HTTP client sends becomes a remote
//! subsegment, and the service called continues the trace.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;
use tracing::instrument::Instrumented;

/// A `tower::Layer` for HTTP clients: every request gets a client span (a
/// subsegment named after the host it goes to, `namespace: "remote"`), the
/// `X-Amzn-Trace-Id` header with that subsegment as parent, and the status
/// of the answer (4xx error, 429 throttle, 5xx or no answer fault).
///
/// ```
/// use tower::ServiceBuilder;
/// use tracing_xray::middleware::ClientLayer;
///
/// # fn wrap<S: Clone>(client: S) {
/// let traced = ServiceBuilder::new().layer(ClientLayer::new()).service(client);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct ClientLayer {}

impl ClientLayer {
    /// The layer.
    pub fn new() -> Self {
        ClientLayer {}
    }
}

impl<S> Layer<S> for ClientLayer {
    type Service = ClientService<S>;

    fn layer(&self, inner: S) -> ClientService<S> {
        ClientService { inner }
    }
}

/// The service [`ClientLayer`] wraps around a client.
#[derive(Clone, Debug)]
pub struct ClientService<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for ClientService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ClientFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let span = super::client_span(request.method(), request.uri());
        super::inject(&span, request.headers_mut());
        let future = span.in_scope(|| self.inner.call(request));
        ClientFuture {
            inner: future.instrument(span),
        }
    }
}

/// The answer of a [`ClientService`], recorded in its span when it comes.
#[derive(Debug)]
pub struct ClientFuture<F> {
    inner: Instrumented<F>,
}

impl<F, R, E> Future for ClientFuture<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
    E: std::fmt::Display,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is never moved out of the pinned `self`; this is
        // the only place it is reached, always through a pin.
        let mut inner = unsafe { self.map_unchecked_mut(|f| &mut f.inner) };
        let output = std::task::ready!(inner.as_mut().poll(cx));
        match &output {
            Ok(response) => super::record_status(inner.span(), response.status()),
            Err(error) => super::record_failure(inner.span(), error),
        }
        Poll::Ready(output)
    }
}
