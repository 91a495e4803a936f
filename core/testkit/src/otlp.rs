//! OTLP output read back with the official protobuf types
//! (`opentelemetry-proto`), never with the encoder under test.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

pub use opentelemetry_proto::tonic;

/// What starts every OTLP datagram of sampled spans.
pub const UDP_PREFIX: &[u8] = b"{\"format\":\"json\",\"version\":1}\nT1S";

/// Standard base64 with padding; panics on anything else.
pub fn base64_decode(text: &[u8]) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {:?}", c as char),
        }
    };
    assert_eq!(text.len() % 4, 0, "base64 comes in fours");
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for quad in text.chunks(4) {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = n << 6 | value(c);
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    out
}

/// Whether an OTLP/UDP datagram carries sampled spans (`T1S`) or
/// unsampled ones (`T1U`), and its request; panics if it is neither.
pub fn decode_any(datagram: &[u8]) -> (bool, ExportTraceServiceRequest) {
    let unsampled = b"{\"format\":\"json\",\"version\":1}\nT1U";
    match datagram.strip_prefix(unsampled.as_slice()) {
        Some(b64) => (false, decode_request(&base64_decode(b64))),
        None => (true, decode_datagram(datagram)),
    }
}

/// The request in an OTLP/UDP datagram of sampled spans; panics if it is not one.
pub fn decode_datagram(datagram: &[u8]) -> ExportTraceServiceRequest {
    let b64 = datagram.strip_prefix(UDP_PREFIX).unwrap_or_else(|| {
        panic!(
            "not an OTLP datagram: {:?}",
            String::from_utf8_lossy(&datagram[..datagram.len().min(40)])
        )
    });
    decode_request(&base64_decode(b64))
}

/// A protobuf `ExportTraceServiceRequest`; panics if it does not decode.
pub fn decode_request(bytes: &[u8]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(bytes).expect("a valid ExportTraceServiceRequest")
}

/// Every span of `requests`, in order.
pub fn spans(requests: &[ExportTraceServiceRequest]) -> Vec<Span> {
    requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| ss.spans.clone())
        .collect()
}

/// The value of attribute `key`.
pub fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

/// The string attribute `key`.
pub fn attr_str<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attributes, key) {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// The strings of the list attribute `key`.
pub fn attr_list(attributes: &[KeyValue], key: &str) -> Vec<String> {
    match attr(attributes, key) {
        Some(Value::ArrayValue(a)) => a
            .values
            .iter()
            .filter_map(|v| match &v.value {
                Some(Value::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The 32 hex digits of an X-Ray trace id (`1-xxxxxxxx-yyyy…`).
pub fn trace_hex(xray: &str) -> String {
    xray.trim_start_matches("1-").replace('-', "")
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
