//! One span as an OTLP `Span` message, mapped as the OpenTelemetry X-Ray
//! exporter reads it back: SDK calls are client spans with `rpc.system =
//! aws-api`, annotations are attributes listed in `aws.xray.annotations`,
//! exceptions are `exception` events, error and fault an error status.

use arrayvec::ArrayVec;

use super::wire::{Proto, len_field_size, tag_size, varint_size};
use crate::id::{SegmentId, TraceId};
use crate::record::{FLAG_ERROR, FLAG_FAULT, HttpField, Key, Kind, SqlField};
use crate::span::{Span, Stored};

/// `Span` fields.
const TRACE_ID: u32 = 1;
const SPAN_ID: u32 = 2;
const PARENT_SPAN_ID: u32 = 4;
const NAME: u32 = 5;
const KIND: u32 = 6;
const START: u32 = 7;
const END: u32 = 8;
const ATTRIBUTES: u32 = 9;
const EVENTS: u32 = 11;
const STATUS: u32 = 15;

/// `SpanKind`.
const INTERNAL: u64 = 1;
const SERVER: u64 = 2;
const CLIENT: u64 = 3;

/// How much of a span is written: everything, or (when that does not fit a
/// datagram) no metadata and strings cut short.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Level {
    pub(crate) metadata: bool,
    pub(crate) max_bytes: usize,
}

pub(crate) const LEVELS: [Level; 2] = [
    Level {
        metadata: true,
        max_bytes: usize::MAX,
    },
    Level {
        metadata: false,
        max_bytes: 256,
    },
];

/// An attribute value.
#[derive(Clone, Copy)]
pub(crate) enum Val<'a> {
    Str(&'a str),
    I64(i64),
    F64(f64),
    Bool(bool),
    /// A list of strings.
    List(&'a [&'a str]),
}

fn any_value_size(v: Val<'_>) -> usize {
    match v {
        Val::Str(s) => len_field_size(1, s.len()),
        Val::Bool(_) => tag_size(2) + 1,
        Val::I64(i) => tag_size(3) + varint_size(i as u64),
        Val::F64(_) => tag_size(4) + 8,
        Val::List(items) => {
            let array: usize = (items.iter())
                .map(|s| len_field_size(1, len_field_size(1, s.len())))
                .sum();
            len_field_size(5, array)
        }
    }
}

fn any_value(w: &mut Proto<'_>, v: Val<'_>) {
    match v {
        Val::Str(s) => w.bytes(1, s.as_bytes()),
        Val::Bool(b) => w.uint(2, u64::from(b)),
        Val::I64(i) => w.uint(3, i as u64),
        Val::F64(f) => w.double(4, f),
        Val::List(items) => {
            let array = (items.iter())
                .map(|s| len_field_size(1, len_field_size(1, s.len())))
                .sum();
            w.len_prefix(5, array);
            for s in items {
                w.len_prefix(1, len_field_size(1, s.len()));
                w.bytes(1, s.as_bytes());
            }
        }
    }
}

/// Bytes [`key_value`] writes.
pub(crate) fn key_value_size(field: u32, key: &str, v: Val<'_>) -> usize {
    len_field_size(
        field,
        len_field_size(1, key.len()) + len_field_size(2, any_value_size(v)),
    )
}

/// A `KeyValue` as field `field` of the enclosing message.
pub(crate) fn key_value(w: &mut Proto<'_>, field: u32, key: &str, v: Val<'_>) {
    let value = any_value_size(v);
    w.len_prefix(
        field,
        len_field_size(1, key.len()) + len_field_size(2, value),
    );
    w.bytes(1, key.as_bytes());
    w.len_prefix(2, value);
    any_value(w, v);
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn value<'s>(span: &'s Span, stored: Stored, level: Level) -> Val<'s> {
    match stored {
        Stored::I64(v) => Val::I64(v),
        Stored::U64(v) => i64::try_from(v).map_or(Val::F64(v as f64), Val::I64),
        Stored::F64(v) => Val::F64(v),
        Stored::Bool(v) => Val::Bool(v),
        Stored::Text { start, len, .. } => Val::Str(cut(span.text(start, len), level.max_bytes)),
    }
}

/// The strings of a JSON list of plain strings (`["a","b"]`, as the SDK
/// interceptor records table names); `None` for anything else.
fn string_list(text: &str) -> Option<ArrayVec<&str, 16>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?.trim();
    let mut out = ArrayVec::new();
    if inner.is_empty() {
        return Some(out);
    }
    for item in inner.split(',') {
        let s = item.trim().strip_prefix('"')?.strip_suffix('"')?;
        if s.contains(['"', '\\']) {
            return None;
        }
        out.try_push(s).ok()?;
    }
    Some(out)
}

/// The OTel attribute name of an `aws` member.
fn aws_attribute(member: &'static str) -> Option<&'static str> {
    Some(match member {
        "operation" => "rpc.method",
        "request_id" => "aws.request_id",
        "region" => "cloud.region",
        "table_name" | "table_names" => "aws.dynamodb.table_names",
        "queue_url" => "aws.sqs.queue_url",
        "bucket_name" => "aws.s3.bucket",
        "key" => "aws.s3.key",
        _ => return None,
    })
}

fn http_attribute(field: HttpField) -> Option<&'static str> {
    Some(match field {
        HttpField::Method => "http.request.method",
        HttpField::Url => "url.full",
        HttpField::Status => "http.response.status_code",
        HttpField::ContentLength => "http.response.body.size",
        HttpField::ClientIp => "client.address",
        HttpField::UserAgent => "user_agent.original",
        _ => return None,
    })
}

fn sql_attribute(field: SqlField) -> &'static str {
    match field {
        SqlField::Url => "db.connection_string",
        SqlField::DatabaseType => "db.system",
        SqlField::DatabaseVersion => "db.version",
        SqlField::DriverVersion => "db.driver.version",
        SqlField::User => "db.user",
        SqlField::SanitizedQuery => "db.query.text",
        _ => "db.preparation",
    }
}

/// Writes the attributes of `span`, and `aws.xray.annotations`.
fn attributes(w: &mut Proto<'_>, span: &Span, level: Level) {
    let mut annotations: ArrayVec<&str, { crate::span::MAX_ATTRS }> = ArrayVec::new();
    let mut aws_prefixed = arrayvec::ArrayString::<64>::new();
    for attr in &span.attrs {
        let v = value(span, attr.value, level);
        let name: &str = match attr.key {
            Key::Annotation(k) => {
                let _ = annotations.try_push(k);
                k
            }
            Key::Metadata(k) if level.metadata => k,
            Key::Aws(member) => {
                let list = match (member, v) {
                    ("table_name", Val::Str(s)) => Some(ArrayVec::from_iter([s])),
                    ("table_names", Val::Str(s)) => string_list(s),
                    _ => None,
                };
                if let (Some(list), Some(name)) = (list, aws_attribute(member)) {
                    key_value(w, ATTRIBUTES, name, Val::List(&list));
                    continue;
                }
                match aws_attribute(member) {
                    Some(name) => name,
                    None => {
                        aws_prefixed.clear();
                        if aws_prefixed.try_push_str("aws.").is_err()
                            || aws_prefixed.try_push_str(member).is_err()
                        {
                            continue;
                        }
                        &aws_prefixed
                    }
                }
            }
            Key::Http(f) => match http_attribute(f) {
                Some(name) => name,
                None => continue,
            },
            Key::Sql(f) => sql_attribute(f),
            Key::User => "enduser.id",
            Key::ServiceVersion => "service.version",
            _ => continue,
        };
        key_value(w, ATTRIBUTES, name, v);
    }
    if span.kind == Kind::Aws {
        key_value(w, ATTRIBUTES, "rpc.system", Val::Str("aws-api"));
        key_value(w, ATTRIBUTES, "rpc.service", Val::Str(span.name()));
        let recorded = span.attrs.iter().any(|a| a.key == Key::Aws("retries"));
        if span.attempts > 1 && !recorded {
            key_value(
                w,
                ATTRIBUTES,
                "aws.retries",
                Val::I64(i64::from(span.attempts - 1)),
            );
        }
    }
    if !annotations.is_empty() {
        key_value(
            w,
            ATTRIBUTES,
            "aws.xray.annotations",
            Val::List(&annotations),
        );
    }
}

/// One `exception` event per exception recorded, at the span's end; a
/// type recorded right after a message belongs to it, as in `cause`.
fn events(w: &mut Proto<'_>, span: &Span, end_nanos: u64, level: Level) {
    let mut list: ArrayVec<(Option<Stored>, Option<Stored>), 8> = ArrayVec::new();
    for attr in &span.attrs {
        match attr.key {
            Key::Exception { .. } => {
                let _ = list.try_push((Some(attr.value), None));
            }
            Key::ExceptionType => match list.last_mut() {
                Some((_, kind @ None)) => *kind = Some(attr.value),
                _ => {
                    let _ = list.try_push((None, Some(attr.value)));
                }
            },
            _ => {}
        }
    }
    for (message, kind) in list {
        let pairs = [("exception.message", message), ("exception.type", kind)];
        let mut size = tag_size(1) + 8 + len_field_size(2, "exception".len());
        for (key, v) in pairs {
            if let Some(v) = v {
                let value = any_value_size(value(span, v, level));
                size += len_field_size(3, len_field_size(1, key.len()) + len_field_size(2, value));
            }
        }
        w.len_prefix(EVENTS, size);
        w.fixed64(1, end_nanos);
        w.bytes(2, b"exception");
        for (key, v) in pairs {
            if let Some(v) = v {
                key_value(w, 3, key, value(span, v, level));
            }
        }
    }
}

pub(crate) fn trace_bytes(trace: TraceId) -> [u8; 16] {
    let (hi, lo) = trace.random();
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&trace.epoch().to_be_bytes());
    out[4..8].copy_from_slice(&hi.to_be_bytes());
    out[8..].copy_from_slice(&lo.to_be_bytes());
    out
}

fn id_bytes(id: SegmentId) -> [u8; 8] {
    id.get().to_be_bytes()
}

/// Writes `span`, ended at `end` (epoch microseconds), as the body of a
/// `Span` message; its length, or `None` if it does not fit `buf`.
pub(crate) fn encode(span: &Span, end: u64, level: Level, buf: &mut [u8]) -> Option<usize> {
    let mut w = Proto::new(buf);
    w.bytes(TRACE_ID, &trace_bytes(span.trace));
    w.bytes(SPAN_ID, &id_bytes(span.id));
    if let Some(parent) = span.parent {
        w.bytes(PARENT_SPAN_ID, &id_bytes(parent));
    }
    let name = cut(span.name(), level.max_bytes);
    let operation = span.attrs.iter().find(|a| a.key == Key::Aws("operation"));
    match (span.kind, operation.map(|a| value(span, a.value, level))) {
        // `DynamoDB.GetItem`, as the SDK's own spans are named.
        (Kind::Aws, Some(Val::Str(op))) => {
            w.len_prefix(NAME, name.len() + 1 + op.len());
            w.raw(name.as_bytes());
            w.raw(b".");
            w.raw(op.as_bytes());
        }
        _ => w.bytes(NAME, name.as_bytes()),
    }
    let kind = match span.kind {
        Kind::Segment => SERVER,
        Kind::Aws | Kind::Remote => CLIENT,
        _ => INTERNAL,
    };
    w.uint(KIND, kind);
    let start_nanos = span.start.saturating_mul(1000);
    let end_nanos = end.max(span.start).saturating_mul(1000);
    w.fixed64(START, start_nanos);
    w.fixed64(END, end_nanos);
    attributes(&mut w, span, level);
    events(&mut w, span, end_nanos, level);
    if span.flags & (FLAG_ERROR | FLAG_FAULT) != 0 {
        // `Status { code: STATUS_CODE_ERROR }`.
        w.len_prefix(STATUS, tag_size(3) + 1);
        w.uint(3, 2);
    }
    (!w.overflowed()).then(|| w.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_string_lists_are_read() {
        assert_eq!(string_list(r#"["a", "b"]"#).unwrap().as_slice(), ["a", "b"]);
        assert_eq!(string_list("[]").unwrap().len(), 0);
        assert!(string_list(r#"["a\"b"]"#).is_none());
        assert!(string_list("{}").is_none());
    }

    #[test]
    fn cuts_end_on_characters() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("abc", 10), "abc");
    }
}
