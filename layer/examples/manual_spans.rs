//! Your own spans: annotations (indexed, searchable), metadata, a name set at
//! run time, an error, nesting — printed by a local console.
//!
//! ```text
//! cargo run --example manual_spans
//! ```

#[path = "support/viewer.rs"]
mod viewer;

use std::time::Duration;

use tracing::{error, info_span};
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::XRaySubscriber;

#[tracing::instrument(fields(annotation.batch = batch, annotation.valid = tracing::field::Empty))]
fn validate(batch: u64, rows: &[&str]) -> Result<usize, String> {
    let bad = rows.iter().filter(|r| r.is_empty()).count();
    tracing::Span::current().record("annotation.valid", bad == 0);
    if bad > 0 {
        return Err(format!("{bad} empty row(s) in batch {batch}"));
    }
    Ok(rows.len())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let console = viewer::Console::start()?;
    let daemon = console.addr;

    let layer = XRaySubscriber::builder()
        .daemon(daemon)
        .lambda(false)
        .service_name("importer")
        .sampling_rate(1.0)
        .build()?;
    let handle = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let job = info_span!(
            "import",
            annotation.source = "s3://bucket/input.csv",
            rows_total = 5u64
        );
        let _job = job.enter();
        for (batch, rows) in [(1u64, vec!["a", "b"]), (2, vec!["c", ""])].into_iter() {
            let step = info_span!(
                "batch",
                xray.name = format!("batch {batch}").as_str(),
                size = rows.len()
            );
            let _step = step.enter();
            if let Err(e) = validate(batch, &rows) {
                error!(error = %e, "batch rejected");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let _ = handle.flush(Duration::from_secs(1));
    console.finish();
    Ok(())
}
