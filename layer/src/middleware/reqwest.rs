//! `ReqwestMiddleware`: [`ClientLayer`](super::ClientLayer) for
//! `reqwest-middleware` clients.

use http::Extensions;
use reqwest_middleware::{Middleware, Next, Result};
use tracing::Instrument;

/// A `reqwest_middleware::Middleware`: every request becomes a remote
/// subsegment named after its host, sends `X-Amzn-Trace-Id` with that
/// subsegment as parent, and records the status (4xx error, 429 throttle,
/// 5xx or no answer fault).
///
/// ```
/// use tracing_xray::middleware::ReqwestMiddleware;
///
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(ReqwestMiddleware::new())
///     .build();
/// ```
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct ReqwestMiddleware {}

impl ReqwestMiddleware {
    /// The middleware.
    pub fn new() -> Self {
        ReqwestMiddleware {}
    }
}

#[async_trait::async_trait]
impl Middleware for ReqwestMiddleware {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<reqwest::Response> {
        let uri = http::Uri::try_from(request.url().as_str()).unwrap_or_default();
        let span = super::client_span(request.method(), &uri);
        super::inject(&span, request.headers_mut());
        let answer = next.run(request, extensions).instrument(span.clone()).await;
        match &answer {
            Ok(response) => super::record_status(&span, response.status()),
            Err(error) => super::record_failure(&span, error),
        }
        answer
    }
}
