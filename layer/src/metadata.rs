//! `aws_metadata(region, table_name)`: a span that gives every AWS SDK call
//! inside it a region and table name, for calls whose interceptor is not
//! installed (with it, the call's own values are recorded and win).

use tracing_core::field::{Field, Visit};

use crate::classify::{AWS_METADATA_SPAN, OWN_TARGET};

/// The values of an `aws_metadata` span, kept in its extensions: one
/// allocation per such span, which wraps an SDK call that allocates far more.
#[derive(Clone, Debug, Default)]
pub(crate) struct AwsMetadataFields {
    pub(crate) region: Option<String>,
    pub(crate) table_name: Option<String>,
}

impl Visit for AwsMetadataFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "region" => self.region = Some(value.to_string()),
            "table_name" => self.table_name = Some(value.to_string()),
            _ => {}
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// A span that gives every AWS SDK call made inside it this region and table
/// name (`aws.region`, `aws.table_name`):
///
/// ```no_run
/// # async fn f(client: aws_sdk_dynamodb::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use tracing::Instrument;
/// let table = "orders";
/// client
///     .get_item()
///     .table_name(table)
///     .send()
///     .instrument(tracing_xray::aws_metadata(None, Some(table)))
///     .await?;
/// # Ok(()) }
/// ```
pub fn aws_metadata(region: Option<&str>, table_name: Option<&str>) -> tracing::Span {
    let span = tracing::span!(
        target: OWN_TARGET,
        tracing::Level::INFO,
        AWS_METADATA_SPAN,
        region = tracing::field::Empty,
        table_name = tracing::field::Empty,
    );
    if let Some(r) = region {
        span.record("region", r);
    }
    if let Some(t) = table_name {
        span.record("table_name", t);
    }
    span
}
