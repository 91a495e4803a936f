//! Setting up tracing in a Lambda function so X-Ray sees the AWS SDK's spans.
//!
//! `lambda_runtime::tracing::init_default_subscriber()` installs one global
//! filter at the log level (INFO by default), which disables every span of
//! the AWS SDK (they are all DEBUG) for every layer. [`init`] instead gives
//! each layer its own filter: logs keep the level of `AWS_LAMBDA_LOG_LEVEL`
//! (or `RUST_LOG`, or INFO) and the format of `AWS_LAMBDA_LOG_FORMAT`, as the
//! runtime's default does, while the X-Ray layer sees INFO and above plus the
//! SDK's DEBUG spans ([`xray_filter`]).

use std::str::FromStr;

use tracing_core::{Level, LevelFilter};
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};
use tracing_subscriber::{Layer, fmt};

use crate::subscriber::{XRayHandle, XRaySubscriber};

#[cfg(feature = "lambda-runtime")]
mod runtime;
#[cfg(feature = "lambda-runtime")]
mod snapstart;
#[cfg(feature = "lambda-runtime")]
#[cfg_attr(docsrs, doc(cfg(feature = "lambda-runtime")))]
pub use runtime::{DEFAULT_MARGIN, RuntimeLayer, RuntimeService};
#[cfg(feature = "lambda-runtime")]
#[cfg_attr(docsrs, doc(cfg(feature = "lambda-runtime")))]
pub use snapstart::SnapStart;

/// What the X-Ray layer sees: spans at INFO and above, and the DEBUG spans of
/// the AWS SDK (`aws_sdk_*`, `aws_smithy_runtime*`), where its calls,
/// attempts and request ids are.
pub fn xray_filter() -> Targets {
    Targets::new()
        .with_default(Level::INFO)
        .with_target("aws_sdk_", Level::DEBUG)
        .with_target("aws_smithy_runtime", Level::DEBUG)
}

/// The log level Lambda's advanced logging controls ask for:
/// `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO.
fn log_level() -> LevelFilter {
    let text = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG"));
    LevelFilter::from_str(text.as_deref().unwrap_or("INFO")).unwrap_or(LevelFilter::INFO)
}

/// Installs the global subscriber: logs to stdout at the configured level,
/// and an [`XRaySubscriber`] configured from the environment.
///
/// ```no_run
/// # async fn handler(_: lambda_runtime::LambdaEvent<serde_json::Value>) -> Result<(), lambda_runtime::Error> { Ok(()) }
/// #[tokio::main]
/// async fn main() -> Result<(), lambda_runtime::Error> {
///     tracing_xray::lambda::init()?;
///     lambda_runtime::run(lambda_runtime::service_fn(handler)).await
/// }
/// ```
pub fn init() -> Result<XRayHandle, TryInitError> {
    init_with(XRaySubscriber::default())
}

/// [`init`] with an X-Ray layer configured by the caller.
pub fn init_with(xray: XRaySubscriber) -> Result<XRayHandle, TryInitError> {
    let handle = xray.handle();
    let logs = EnvFilter::builder()
        .with_default_directive(log_level().into())
        .from_env_lossy();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt_layer = if json {
        fmt::layer()
            .json()
            .with_target(false)
            .without_time()
            .with_filter(logs)
            .boxed()
    } else {
        fmt::layer()
            .with_target(false)
            .without_time()
            .with_filter(logs)
            .boxed()
    };
    tracing_subscriber::registry()
        .with(fmt_layer)
        .with(xray.with_filter(xray_filter()))
        .try_init()?;
    Ok(handle)
}
