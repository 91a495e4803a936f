//! An HTTP service outside Lambda: every request is an X-Ray segment, and a
//! request that arrives with `X-Amzn-Trace-Id` continues the caller's trace
//! (the `xray.trace_header` field); calls it makes downstream carry
//! `tracing_xray::trace_header(&span)`. Run as is, it serves two requests to
//! itself and prints their traces in a local console.
//!
//! ```text
//! cargo run --example http_service
//! ```

#[path = "support/viewer.rs"]
mod viewer;

use std::convert::Infallible;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_xray::XRaySubscriber;

async fn serve(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let incoming = request
        .headers()
        .get("x-amzn-trace-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let span = tracing::info_span!(
        "request",
        xray.trace_header = incoming.as_str(),
        http.method = %request.method(),
        http.url = %request.uri(),
        http.status_code = tracing::field::Empty,
    );
    let status = async {
        let user = async {
            tokio::time::sleep(Duration::from_millis(3)).await;
            "u-7"
        }
        .instrument(tracing::info_span!("load_user", annotation.user = "u-7"))
        .await;
        // A call downstream would send this header.
        let downstream = tracing_xray::trace_header(&tracing::Span::current());
        tracing::info!(user, downstream = %downstream.map(|h| h.to_string()).unwrap_or_default(), "handled");
        200u16
    }
    .instrument(span.clone())
    .await;
    span.record("http.status_code", status);
    Ok(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
}

async fn get(addr: std::net::SocketAddr, trace_header: Option<&str>) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let extra = trace_header
        .map(|h| format!("X-Amzn-Trace-Id: {h}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET /users/u-7 HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response.lines().next().unwrap_or_default().to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let console = viewer::Console::start()?;
    let daemon = console.addr;

    let layer = XRaySubscriber::builder()
        .daemon(daemon)
        .lambda(false)
        .service_name("users-api")
        .sampling_rate(1.0)
        .build()?;
    let handle = layer.handle();
    tracing_subscriber::registry().with(layer).init();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(serve)),
            );
        }
    });
    println!("service on http://{addr}, X-Ray console on udp://{daemon}\n");
    println!("GET without a trace header: {}", get(addr, None).await?);
    let caller = "Root=1-6720f3a0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1";
    println!("GET with {caller}: {}\n", get(addr, Some(caller)).await?);

    let _ = handle.flush(Duration::from_secs(1));
    console.finish();
    Ok(())
}
