//! What a segment outside Lambda says about the program that sent it: the
//! SDK (`aws.xray`), the program's version (`service.version`), and where
//! it runs (`origin` and `aws.ecs` / `aws.ec2` / `aws.elastic_beanstalk` /
//! `aws.eks`), as the X-Ray SDKs' plugins record it.
//!
//! Everything is found once, when the layer is built (the ECS and EC2
//! endpoints within a bound), and written as prepared JSON texts: a segment
//! pays for a few copies into its ring, nothing else.

use std::time::Duration;

use xray_emitter::{Batch, Key, SegmentId};

mod plugins;

pub(crate) use plugins::Plugins;

/// Prepared once; pushed into every segment this process starts.
#[derive(Debug, Default)]
pub(crate) struct Identity {
    version: Option<String>,
    origin: Option<&'static str>,
    /// `aws.<key>`: JSON objects.
    aws: Vec<(&'static str, String)>,
}

/// `aws.xray` of every segment: who wrote it.
const SDK: &str = concat!(
    r#"{"sdk":"tracing-xray","sdk_version":""#,
    env!("CARGO_PKG_VERSION"),
    r#""}"#
);

/// `service.version` from `OTEL_RESOURCE_ATTRIBUTES` (`k=v,k=v`, values
/// percent-encoded), as OpenTelemetry SDKs read it.
pub(crate) fn version_from_env() -> Option<String> {
    let attributes = std::env::var("OTEL_RESOURCE_ATTRIBUTES").ok()?;
    let value = attributes.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == "service.version").then(|| v.trim())
    })?;
    let decoded = percent_decode(value);
    (!decoded.is_empty()).then_some(decoded)
}

pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Identity {
    /// Finds where the program runs (each endpoint asked within `timeout`).
    pub(crate) fn detect(version: Option<String>, plugins: &Plugins, timeout: Duration) -> Self {
        let found = plugins.detect(timeout);
        let mut aws = vec![("xray", SDK.to_string())];
        aws.extend(found.aws);
        Identity {
            version,
            origin: found.origin,
            aws,
        }
    }

    /// `origin` ("AWS::ECS::Container", …), for sampling rules' `ServiceType`.
    pub(crate) fn origin(&self) -> Option<&'static str> {
        self.origin
    }

    /// Writes it into segment `own`.
    pub(crate) fn push(&self, b: &mut Batch<'_>, own: SegmentId) {
        for (key, json) in &self.aws {
            b.push_json(own, Key::Aws(key), json);
        }
        if let Some(origin) = self.origin {
            b.push_str(own, Key::Origin, origin);
        }
        if let Some(version) = &self.version {
            b.push_str(own, Key::ServiceVersion, version);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_is_valid_json_naming_this_crate() {
        let sdk: serde_json::Value = serde_json::from_str(SDK).unwrap();
        assert_eq!(sdk["sdk"], "tracing-xray");
        assert_eq!(sdk["sdk_version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn percent_encoded_values_are_decoded() {
        assert_eq!(percent_decode("1.4.2%2Bbuild%2C7"), "1.4.2+build,7");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
