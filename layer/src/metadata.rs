//! `aws_metadata(region, table_name)`: a span that gives every AWS SDK call
//! inside it a region and table name, for calls whose interceptor is not
//! installed (with it, the call's own values are recorded and win).

use arrayvec::ArrayString;
use tracing_core::field::{Field, Visit};

use crate::classify::{AWS_METADATA_SPAN, OWN_TARGET};

/// The values of an `aws_metadata` span, kept in its extensions: one
/// allocation per such span (the extension's box), which wraps an SDK call
/// that allocates far more. Reading them takes the span's extensions lock,
/// only while such a span is open.
#[derive(Clone, Debug, Default)]
pub(crate) struct AwsMetadataFields {
    pub(crate) region: Option<ArrayString<32>>,
    /// DynamoDB table names are at most 255 bytes.
    pub(crate) table_name: Option<ArrayString<255>>,
}

impl Visit for AwsMetadataFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "region" => self.region = ArrayString::from(value).ok(),
            "table_name" => self.table_name = ArrayString::from(value).ok(),
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
    tracing::span!(
        target: OWN_TARGET,
        tracing::Level::INFO,
        AWS_METADATA_SPAN,
        region,
        table_name,
    )
}
