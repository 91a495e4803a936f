//! What the layer sends: X-Ray segment documents, or the same spans as
//! OpenTelemetry (OTLP over UDP to the same daemon address, as AWS's
//! OpenTelemetry distribution sends them from Lambda).

use crate::builder::env;
use xray_emitter::Resource;

/// The output format, chosen with [`Builder::format`](crate::Builder::format)
/// or `TRACING_XRAY_FORMAT` (`xray`, the default, or `otlp`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// X-Ray segment documents.
    #[default]
    XRay,
    /// OTLP `ExportTraceServiceRequest`s over UDP (`{"format":"json",
    /// "version":1}`, a newline, `T1S`, the request in base64), each
    /// datagram within 64 KB.
    Otlp,
}

impl Format {
    /// `TRACING_XRAY_FORMAT`; anything but `otlp` (any case) is X-Ray.
    pub(crate) fn from_env() -> Format {
        match std::env::var("TRACING_XRAY_FORMAT") {
            Ok(v) if v.trim().eq_ignore_ascii_case("otlp") => Format::Otlp,
            _ => Format::XRay,
        }
    }
}

/// The OTLP resource: `service.name` (the builder's service name,
/// `OTEL_SERVICE_NAME`, or the function's name), `cloud.provider`, in Lambda
/// `cloud.platform`, `faas.name`, `faas.version`, `faas.instance` and
/// `cloud.region`, then `OTEL_RESOURCE_ATTRIBUTES`, and `telemetry.sdk.*`.
pub(crate) fn resource(
    service_name: Option<&str>,
    lambda: bool,
    version: Option<&str>,
) -> Resource {
    let function = env("AWS_LAMBDA_FUNCTION_NAME");
    let service = service_name
        .map(str::to_string)
        .or_else(|| env("OTEL_SERVICE_NAME"))
        .or_else(|| function.clone())
        .unwrap_or_else(|| "unknown_service".to_string());
    let mut attributes: Vec<(String, String)> = vec![
        ("service.name".into(), service),
        ("cloud.provider".into(), "aws".into()),
    ];
    if lambda {
        attributes.push(("cloud.platform".into(), "aws_lambda".into()));
        for (key, var) in [
            ("faas.name", "AWS_LAMBDA_FUNCTION_NAME"),
            ("faas.version", "AWS_LAMBDA_FUNCTION_VERSION"),
            ("faas.instance", "AWS_LAMBDA_LOG_STREAM_NAME"),
            ("cloud.region", "AWS_REGION"),
            ("aws.log.group.names", "AWS_LAMBDA_LOG_GROUP_NAME"),
        ] {
            if let Some(v) = env(var) {
                attributes.push((key.into(), v));
            }
        }
    }
    if let Some(v) = version {
        attributes.push(("service.version".into(), v.into()));
    }
    for pair in env("OTEL_RESOURCE_ATTRIBUTES")
        .unwrap_or_default()
        .split(',')
    {
        if let Some((k, v)) = pair.split_once('=') {
            let k = k.trim();
            if !k.is_empty() && !attributes.iter().any(|(have, _)| have == k) {
                attributes.push((k.to_string(), crate::identity::percent_decode(v.trim())));
            }
        }
    }
    for (k, v) in [
        ("telemetry.sdk.name", "tracing-xray"),
        ("telemetry.sdk.language", "rust"),
        ("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
    ] {
        attributes.push((k.into(), v.into()));
    }
    let pairs: Vec<(&str, &str)> = attributes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Resource::new(&pairs, "tracing-xray", env!("CARGO_PKG_VERSION"))
}
