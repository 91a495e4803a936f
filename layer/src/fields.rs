//! Span and event fields, turned into records by a documented convention.
//!
//! | field | becomes |
//! |---|---|
//! | `annotation.<key>` | an annotation (string, number or bool; indexed, searchable) |
//! | `http.method`, `http.request.method` | `http.request.method` |
//! | `http.url`, `url.full` | `http.request.url` |
//! | `http.status_code`, `http.response.status_code` | `http.response.status` (and the error/fault/throttle flags) |
//! | `xray.name`, `otel.name` | the subsegment's name |
//! | `xray.trace_header` | (root span) the incoming `X-Amzn-Trace-Id` |
//! | `otel.kind = "client"` with HTTP fields, or `db.system` | a `remote` subsegment (see `crate::remote`) |
//! | anything else | `metadata.default.<name>` |
//!
//! Strings, integers, floats and booleans are copied as they are. A field
//! recorded with `?` or `%` has to be formatted to be kept at all: that is
//! done into a fixed stack buffer that stops at 1 KiB, never on the heap.

use std::fmt::{self, Write};

use arrayvec::ArrayString;
use tracing_core::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use xray_emitter::record::{FLAG_ERROR, FLAG_FAULT, FLAG_THROTTLE, MAX_VALUE_BYTES};
use xray_emitter::{Batch, Body, HttpField, Key, Record, SegmentId, Small, Value};

use crate::remote::Remote;

/// Formatted text, cut a little past the longest value kept (so the cut is seen and counted).
pub(crate) type Text = ArrayString<{ MAX_VALUE_BYTES + 4 }>;

/// Formats `value` into a bounded buffer; formatting stops when it is full.
pub(crate) fn format(value: &dyn fmt::Debug) -> Text {
    let mut out = Bounded(Text::new());
    let _ = write!(out, "{value:?}");
    out.0
}

/// `s`, cut like [`format`] cuts.
pub(crate) fn text(s: &str) -> Text {
    let mut out = Bounded(Text::new());
    let _ = out.write_str(s);
    out.0
}

struct Bounded(Text);

impl Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.0.capacity() - self.0.len();
        if s.len() <= room {
            self.0.push_str(s);
            Ok(())
        } else {
            let mut cut = room;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            self.0.push_str(&s[..cut]);
            Err(fmt::Error)
        }
    }
}

/// Where a field of a user span goes.
#[inline]
fn key_for(name: &'static str) -> Option<Key> {
    // Most fields are metadata; only these initials can be anything else.
    if !matches!(
        name.as_bytes().first(),
        Some(b'a' | b'c' | b'e' | b'h' | b'o' | b's' | b'u' | b'x')
    ) {
        return Some(Key::Metadata(name));
    }
    if let Some(k) = name.strip_prefix("annotation.") {
        return Some(Key::Annotation(k));
    }
    Some(match name {
        "http.method" | "http.request.method" => Key::Http(HttpField::Method),
        "http.url" | "url.full" => Key::Http(HttpField::Url),
        "http.status_code" | "http.response.status_code" => Key::Http(HttpField::Status),
        "http.client_ip" | "client.address" => Key::Http(HttpField::ClientIp),
        "http.user_agent" | "user_agent.original" => Key::Http(HttpField::UserAgent),
        "xray.x_forwarded_for" => Key::Http(HttpField::XForwardedFor),
        "xray.traced" => Key::Traced,
        // A span that failed with no answer (an HTTP call's connection error).
        "exception.message" => Key::Exception { remote: true },
        "exception.type" => Key::ExceptionType,
        "enduser.id" | "user.id" => Key::User,
        "service.version" => Key::ServiceVersion,
        "xray.name" | "otel.name" => Key::Name,
        "xray.trace_header" => return None,
        _ => Key::Metadata(name),
    })
}

/// A field that goes to `metadata.default` under its own name and that no
/// other part of the layer looks at (remote calls, `sql`): a span whose
/// fields are all plain is recorded by [`PlainFields`], without looking at
/// names. Decided once per callsite.
pub(crate) fn is_plain(name: &'static str) -> bool {
    key_for(name) == Some(Key::Metadata(name)) && !Remote::notes(name)
}

/// The X-Ray flags an HTTP status implies: 4xx error, 429 also throttle, 5xx fault.
pub(crate) fn status_flags(status: u64) -> u64 {
    match status {
        429 => FLAG_ERROR | FLAG_THROTTLE,
        400..=499 => FLAG_ERROR,
        500..=599 => FLAG_FAULT,
        _ => 0,
    }
}

/// Pushes the fields of a user span (or of a `record` call on one).
pub(crate) struct UserFields<'a, 'b> {
    pub(crate) out: &'a mut Batch<'b>,
    pub(crate) span: SegmentId,
    /// At a span's creation: what its fields say of a remote call.
    pub(crate) remote: Option<&'a mut Remote>,
}

impl UserFields<'_, '_> {
    fn value(&mut self, field: &Field, value: Value) {
        if let Some(key) = key_for(field.name()) {
            let status = match value {
                Value::U64(s) => Some(s),
                Value::I64(s) => u64::try_from(s).ok(),
                _ => None,
            };
            if let (Key::Http(HttpField::Status), Some(s)) = (key, status) {
                let bits = status_flags(s);
                if bits != 0 {
                    self.out.push(attr(self.span, Key::Flags, Value::U64(bits)));
                }
            }
            self.out.push(attr(self.span, key, value));
        }
    }
}

pub(crate) fn attr(span: SegmentId, key: Key, value: Value) -> Record {
    Record::new(span, Body::Attr { key, value })
}

impl Visit for UserFields<'_, '_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        if let (Some(remote), Ok(v)) = (self.remote.as_deref_mut(), u64::try_from(value)) {
            remote.note_u64(field.name(), v);
        }
        self.value(field, Value::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if let Some(remote) = self.remote.as_deref_mut() {
            remote.note_u64(field.name(), value);
        }
        self.value(field, Value::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.value(field, Value::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.value(field, Value::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(remote) = self.remote.as_deref_mut()
            && let Some(key) = remote.note_str(field.name(), value)
        {
            self.out.push_str(self.span, key, value);
        }
        if let Some(key) = key_for(field.name()) {
            if key == Key::Http(HttpField::Status)
                && let Ok(status) = value.trim().parse::<u64>()
            {
                return self.value(field, Value::U64(status));
            }
            if let Key::Exception { .. } = key {
                self.out
                    .push(attr(self.span, Key::Flags, Value::U64(FLAG_FAULT)));
            }
            self.out.push_str(self.span, key, value);
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if key_for(field.name()).is_some() {
            self.record_str(field, &format(&format_args!("{value}")));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if key_for(field.name()).is_some() {
            self.record_str(field, &format(value));
        }
    }
}

/// Pushes the fields of a span whose callsite's fields are all plain
/// ([`is_plain`]): each to `metadata.default`, as it is; numbers, booleans
/// and short strings two to a record ([`Body::Pair`]). A small field can
/// wait for its partner behind longer ones, so fields may reach the sender
/// in another order than the span gave them; the one order that shows in
/// the document, which of two fields of the same name wins, is kept.
pub(crate) struct PlainFields<'a, 'b> {
    out: &'a mut Batch<'b>,
    span: SegmentId,
    /// A small field waiting for a second to share its record.
    pending: Option<Small>,
}

impl<'a, 'b> PlainFields<'a, 'b> {
    /// Records `values` of span `span` into `out`; a small field left
    /// without a partner goes last, alone.
    #[inline]
    pub(crate) fn record(out: &'a mut Batch<'b>, span: SegmentId, values: &impl RecordFields) {
        let mut fields = PlainFields {
            out,
            span,
            pending: None,
        };
        values.record(&mut fields);
        if let Some(last) = fields.pending {
            fields.out.push(Record::new(span, Body::Pair(last, None)));
        }
    }

    #[inline]
    fn small(&mut self, field: Small) {
        match self.pending.take() {
            Some(first) => {
                self.out
                    .push(Record::new(self.span, Body::Pair(first, Some(field))));
            }
            None => self.pending = Some(field),
        }
    }

    /// Before a field that is not small: a waiting one of the same name
    /// goes first, so that the later value still wins (`tracing` lets a span
    /// name a field twice).
    #[inline]
    fn before_large(&mut self, name: &str) {
        if let Some(waiting) = self.pending
            && waiting.name() == name
        {
            self.pending = None;
            self.out
                .push(Record::new(self.span, Body::Pair(waiting, None)));
        }
    }

    #[inline]
    fn value(&mut self, field: &Field, value: Value) {
        match Small::new(field.name(), value) {
            Some(small) => self.small(small),
            None => {
                self.before_large(field.name());
                self.out
                    .push(attr(self.span, Key::Metadata(field.name()), value));
            }
        }
    }
}

impl Visit for PlainFields<'_, '_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.value(field, Value::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.value(field, Value::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.value(field, Value::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.value(field, Value::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match Small::text(field.name(), value) {
            Some(small) => self.small(small),
            None => {
                self.before_large(field.name());
                self.out
                    .push_str(self.span, Key::Metadata(field.name()), value);
            }
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_str(field, &format(&format_args!("{value}")));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format(value));
    }
}

/// Collects one string-valued field by name.
pub(crate) struct Find<'n> {
    pub(crate) name: &'n str,
    pub(crate) found: Option<Text>,
}

impl<'n> Find<'n> {
    pub(crate) fn new(name: &'n str) -> Self {
        Find { name, found: None }
    }
}

impl Visit for Find<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == self.name {
            self.found = Some(text(value));
        }
    }
    /// `field = ?value` of a string formats it quoted: the quotes go.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == self.name {
            let formatted = format(value);
            let inner = formatted
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .unwrap_or(&formatted);
            self.found = Some(text(inner));
        }
    }
}

/// The SDK's operation spans: `rpc.method` (or `operation`) is the operation,
/// `rpc.service` (or `service`) the service when the span name does not carry it.
pub(crate) struct SdkFields<'a, 'b> {
    pub(crate) out: &'a mut Batch<'b>,
    pub(crate) span: SegmentId,
    /// The span is `invoke`: the name comes from the service field.
    pub(crate) name_from_service: bool,
}

impl Visit for SdkFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "rpc.method" | "operation" => {
                self.out.push_str(self.span, Key::Aws("operation"), value);
            }
            "rpc.service" | "service" if self.name_from_service => {
                self.out.push_str(self.span, Key::Name, service_name(value));
            }
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if matches!(
            field.name(),
            "rpc.method" | "operation" | "rpc.service" | "service"
        ) {
            let text = format(value);
            self.record_str(field, text.trim_matches('"'));
        }
    }
}

/// The console's name for a service whose SDK id was lowercased (SDK releases before 2025-04).
pub(crate) fn service_name(id: &str) -> &str {
    const KNOWN: &[(&str, &str)] = &[
        ("dynamodb", "DynamoDB"),
        ("s3", "S3"),
        ("sqs", "SQS"),
        ("sns", "SNS"),
        ("lambda", "Lambda"),
        ("sts", "STS"),
        ("kms", "KMS"),
        ("kinesis", "Kinesis"),
        ("firehose", "Firehose"),
        ("secretsmanager", "Secrets Manager"),
        ("ssm", "SSM"),
        ("eventbridge", "EventBridge"),
        ("sfn", "SFN"),
        ("cloudwatch", "CloudWatch"),
        ("cloudwatchlogs", "CloudWatch Logs"),
        ("sagemakerruntime", "SageMaker Runtime"),
        ("bedrockruntime", "Bedrock Runtime"),
        ("ses", "SES"),
        ("sesv2", "SESv2"),
        ("ecr", "ECR"),
        ("ecs", "ECS"),
        ("ec2", "EC2"),
        ("iam", "IAM"),
        ("apigateway", "API Gateway"),
        ("cognitoidentityprovider", "Cognito Identity Provider"),
    ];
    KNOWN.iter().find(|(k, _)| *k == id).map_or(id, |(_, v)| *v)
}

/// The message of an event: its `error` or `exception.message` field (what
/// `#[instrument(err)]` records, the most precise), else `message`.
pub(crate) struct Message {
    pub(crate) text: Option<Text>,
    rank: u8,
}

impl Message {
    pub(crate) fn new() -> Self {
        Message {
            text: None,
            rank: 0,
        }
    }

    fn offer(&mut self, field: &Field, text: impl FnOnce() -> Text) {
        let rank = match field.name() {
            "error" | "exception.message" => 3,
            "message" => 2,
            _ => return,
        };
        if rank > self.rank {
            self.rank = rank;
            self.text = Some(text());
        }
    }
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.offer(field, || text(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.offer(field, || format(&format_args!("{value}")));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.offer(field, || format(value));
    }
}

/// `Some("abc")` (how the SDK logs an `Option<&str>` request id) → `abc`.
pub(crate) fn unwrap_debug_option(text: &str) -> Option<&str> {
    let text = text.trim();
    if text == "None" || text.is_empty() {
        return None;
    }
    let inner = text
        .strip_prefix("Some(")
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(text);
    let inner = inner.trim_matches('"');
    (!inner.is_empty()).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_formatting_is_bounded() {
        let long = "x".repeat(10_000);
        let text = format(&long);
        assert_eq!(text.len(), text.capacity());
        assert!(text.starts_with("\"xxx"));
    }

    #[test]
    fn request_ids() {
        assert_eq!(unwrap_debug_option("Some(\"ABC123\")"), Some("ABC123"));
        assert_eq!(unwrap_debug_option("None"), None);
        assert_eq!(unwrap_debug_option("plain"), Some("plain"));
    }

    #[test]
    fn plain_fields_are_those_nothing_else_reads() {
        for name in [
            "item_id",
            "status",
            "count",
            "user_name",
            "a.b.c",
            "http.other",
        ] {
            assert!(is_plain(name), "{name}");
        }
        let special = [
            "annotation.k",
            "http.method",
            "http.request.method",
            "url.full",
            "http.url",
            "http.status_code",
            "http.response.status_code",
            "client.address",
            "user_agent.original",
            "xray.traced",
            "exception.message",
            "exception.type",
            "enduser.id",
            "user.id",
            "service.version",
            "xray.name",
            "otel.name",
            "xray.trace_header",
            "otel.kind",
            "span.kind",
            "peer.service",
            "server.address",
            "net.peer.name",
            "server.port",
            "net.peer.port",
            "db.system",
            "db.system.name",
            "db.namespace",
            "db.name",
            "db.query.text",
            "db.statement",
            "db.user",
        ];
        for name in special {
            assert!(!is_plain(name), "{name}");
        }
    }

    #[test]
    fn flags_from_status() {
        assert_eq!(status_flags(200), 0);
        assert_eq!(status_flags(404), FLAG_ERROR);
        assert_eq!(status_flags(429), FLAG_ERROR | FLAG_THROTTLE);
        assert_eq!(status_flags(503), FLAG_FAULT);
    }

    #[test]
    fn service_names() {
        assert_eq!(service_name("dynamodb"), "DynamoDB");
        assert_eq!(service_name("DynamoDB"), "DynamoDB");
        assert_eq!(service_name("newthing"), "newthing");
    }
}
