//! The SnapStart resource: registered with the real `lambda_runtime` type,
//! it flushes before the snapshot and renews ids, clock and socket after a
//! restore, and spans sent after it arrive.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::SnapStartResource;
use tracing::info_span;
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::XRaySubscriber;
use tracing_xray::lambda::SnapStart;

#[tokio::test]
async fn spans_after_a_restore_arrive() {
    let daemon = xray_testkit::Daemon::start();
    let layer = XRaySubscriber::builder()
        .daemon(daemon.addr())
        .lambda(false)
        .build()
        .unwrap();
    let handle = layer.handle();
    let resource: Arc<dyn SnapStartResource> = Arc::new(SnapStart::new(handle.clone()));
    let subscriber = tracing_subscriber::registry().with(layer);
    let _default = tracing::subscriber::set_default(subscriber);
    drop(info_span!("init_work", xray.trace_header = "Sampled=1").entered());
    resource.before_snapshot().await.unwrap();
    assert_eq!(
        daemon.documents_with_spans(1, Duration::from_secs(2)).len(),
        1
    );
    resource.after_restore().await.unwrap();
    drop(info_span!("after_restore", xray.trace_header = "Sampled=1").entered());
    assert!(handle.flush(Duration::from_secs(1)).complete);
    let docs = daemon.documents_with_spans(1, Duration::from_secs(2));
    assert_eq!(docs[0]["name"], "after_restore");
}
