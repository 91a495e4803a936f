//! OpenTelemetry output: the same spans as OTLP `ExportTraceServiceRequest`s,
//! sent over UDP to the daemon address the way AWS's OpenTelemetry
//! distribution sends them from Lambda: `{"format":"json","version":1}`,
//! a newline, `T1S`, and the request in base64.
//!
//! Each closed span is written as a protobuf `Span` into a preallocated
//! buffer on the sender thread; spans gather into one request until the
//! next would take its datagram past 64 KB, so every datagram stays within
//! the limit (AWS's exporters send a whole batch as one datagram, which
//! fails when it is too big). OTLP has no in-progress spans: a span still
//! open at the end of its invocation (or at a deadline) is sent when it
//! closes, or counted lost.

use std::sync::Arc;

use crate::document::DATAGRAM_MAX;

mod base64;
mod request;
mod span;
mod wire;

pub(crate) use request::Request;
pub(crate) use span::{LEVELS, encode as encode_span};

/// What the sender writes.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Format {
    /// X-Ray segment documents (the default).
    #[default]
    XRay,
    /// OTLP over UDP, for the resource given.
    OtlpUdp(Resource),
    /// OTLP requests as they are (protobuf, no header, no base64), one per
    /// "datagram", for a transport that posts them over HTTP.
    OtlpRaw(Resource),
}

/// The resource and instrumentation scope every request carries, encoded
/// once.
#[derive(Clone, Debug)]
pub struct Resource {
    /// `Resource` and `InstrumentationScope` messages, each with its field
    /// tag and length as `ResourceSpans` and `ScopeSpans` hold them.
    pub(crate) resource: Arc<[u8]>,
    pub(crate) scope: Arc<[u8]>,
}

impl Resource {
    /// A resource with these string attributes (`service.name`,
    /// `cloud.provider`, …) and the instrumentation scope `scope` at
    /// `version`. Attributes that would take the request past a datagram
    /// (over 16 KiB together) are left out.
    pub fn new(attributes: &[(&str, &str)], scope: &str, version: &str) -> Self {
        let mut buf = vec![0u8; 16 * 1024];
        let mut w = wire::Proto::new(&mut buf);
        for (k, v) in attributes {
            if w.len() + span::key_value_size(1, k, span::Val::Str(v)) <= 16 * 1024 {
                span::key_value(&mut w, 1, k, span::Val::Str(v));
            }
        }
        let body_len = w.len();
        let mut resource = Vec::with_capacity(body_len + 4);
        let mut prefix = [0u8; 8];
        let mut p = wire::Proto::new(&mut prefix);
        p.len_prefix(1, body_len);
        let n = p.len();
        resource.extend_from_slice(&prefix[..n]);
        resource.extend_from_slice(&buf[..body_len]);

        let mut scope_body = Vec::new();
        for (field, text) in [(1, scope), (2, version)] {
            let mut b = vec![0u8; wire::len_field_size(field, text.len())];
            let mut w = wire::Proto::new(&mut b);
            w.bytes(field, text.as_bytes());
            scope_body.extend_from_slice(&b);
        }
        let mut scope_field = vec![0u8; wire::len_field_size(1, scope_body.len())];
        let mut w = wire::Proto::new(&mut scope_field);
        w.bytes(1, &scope_body);
        Resource {
            resource: resource.into(),
            scope: scope_field.into(),
        }
    }
}

/// What precedes the base64 of a request of sampled spans in a datagram
/// (`T1U` for unsampled ones: the same length).
pub(crate) const UDP_HEADER: &[u8] = b"{\"format\":\"json\",\"version\":1}\nT1S";

/// The largest request whose datagram fits in [`DATAGRAM_MAX`].
pub(crate) const REQUEST_MAX: usize = (DATAGRAM_MAX - UDP_HEADER.len()) / 4 * 3;

/// Writes the datagram of `request` into `out`; its length. `udp`: the
/// daemon's header (`T1S`, or `T1U` for unsampled spans) and base64;
/// otherwise the request as it is.
pub(crate) fn write_datagram(request: &[u8], udp: bool, sampled: bool, out: &mut [u8]) -> usize {
    if !udp {
        out[..request.len()].copy_from_slice(request);
        return request.len();
    }
    out[..UDP_HEADER.len()].copy_from_slice(UDP_HEADER);
    if !sampled {
        out[UDP_HEADER.len() - 1] = b'U';
    }
    UDP_HEADER.len() + base64::encode(request, &mut out[UDP_HEADER.len()..])
}

const _: () = assert!(UDP_HEADER.len() + base64::encoded_len(REQUEST_MAX) <= DATAGRAM_MAX);
