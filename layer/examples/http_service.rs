//! An HTTP service outside Lambda behind `ServerLayer`: every request is an
//! X-Ray segment, continuing the caller's trace when it sends
//! `X-Amzn-Trace-Id`, and the service's own call to an inventory service
//! goes through `ClientLayer` (a remote subsegment whose id the inventory
//! receives as `Parent`). Run as is, it serves two requests and prints their
//! traces in a local console.
//!
//! ```text
//! cargo run -p tracing-xray --all-features --example http_service
//! ```

#[path = "support/viewer.rs"]
mod viewer;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tower::{Service, ServiceBuilder, ServiceExt};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_xray::XRaySubscriber;
use tracing_xray::middleware::{ClientLayer, ServerLayer};

/// Serves `service` on 127.0.0.1, each connection through `ServerLayer`.
async fn serve<S>(service: S) -> std::io::Result<SocketAddr>
where
    S: Service<Request<Incoming>, Response = Response<Full<Bytes>>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let traced = ServiceBuilder::new()
                .layer(ServerLayer::new())
                .service(service.clone());
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(traced)),
            );
        }
    });
    Ok(addr)
}

/// The inventory service: it only says what trace header it received.
async fn inventory(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = (request.headers().get("x-amzn-trace-id"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    println!("  inventory received X-Amzn-Trace-Id: {header}");
    Ok(Response::new(Full::new(Bytes::from("12 in stock\n"))))
}

async fn orders(
    inventory: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    async { tokio::time::sleep(Duration::from_millis(3)).await }
        .instrument(tracing::info_span!(
            "load_order",
            annotation.order = request.uri().path()
        ))
        .await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut client = ServiceBuilder::new()
        .layer(ClientLayer::new())
        .service(client);
    let call = Request::get(format!("http://{inventory}/stock/7")).body(Empty::new());
    let stock = match call {
        Ok(call) => match client.ready().await {
            Ok(client) => client.call(call).await.ok(),
            Err(_) => None,
        },
        Err(_) => None,
    };
    let body = match stock {
        Some(response) => response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default(),
        None => Bytes::from_static(b"inventory unavailable\n"),
    };
    Ok(Response::new(Full::new(body)))
}

async fn get(
    addr: SocketAddr,
    trace_header: Option<&str>,
) -> Result<String, Box<dyn std::error::Error>> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut request = Request::get(format!("http://{addr}/orders/7"));
    if let Some(h) = trace_header {
        request = request.header("x-amzn-trace-id", h);
    }
    let response = client.request(request.body(Empty::new())?).await?;
    let answer = (response.headers().get("x-amzn-trace-id"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok(format!(
        "{} (answered with X-Amzn-Trace-Id: {answer})",
        response.status()
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let console = viewer::Console::start()?;
    let daemon = console.addr;

    let layer = XRaySubscriber::builder()
        .daemon(daemon)
        .lambda(false)
        .service_name("orders-api")
        .service_version("1.4.2")
        .sampling_rate(1.0)
        .centralized_sampling(false)
        .build()?;
    let handle = layer.handle();
    tracing_subscriber::registry().with(layer).init();

    let inventory_addr = serve(tower::service_fn(inventory)).await?;
    let orders_addr = serve(tower::service_fn(move |r| orders(inventory_addr, r))).await?;
    println!(
        "orders on http://{orders_addr}, inventory on http://{inventory_addr}, X-Ray console on udp://{daemon}\n"
    );
    println!("GET without a trace header:");
    println!("  {}", get(orders_addr, None).await?);
    let caller = "Root=1-6720f3a0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1";
    println!("GET with {caller}:");
    println!("  {}\n", get(orders_addr, Some(caller)).await?);

    let _ = handle.flush(Duration::from_secs(1));
    console.finish();
    Ok(())
}
