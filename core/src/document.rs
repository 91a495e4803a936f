//! Segment documents: the JSON of one span, and the datagram around it.
//!
//! An entity is always written in its embedded form (`{"name":…,"id":…}`).
//! Sent on its own, a subsegment gets the `type`, `trace_id` and `parent_id`
//! it then needs spliced in after the `{`, so a closed child kept for nesting
//! can still be sent independently without being written again.

use arrayvec::ArrayVec;

use crate::id::{SegmentId, TraceId};
use crate::json::{JsonWriter, Seq};
use crate::record::{FLAG_ERROR, FLAG_FAULT, FLAG_THROTTLE, HttpField, Key, Kind, SqlField};
use crate::span::{Span, Stored};

/// The daemon's header line, compact form.
pub const HEADER: &[u8] = b"{\"format\":\"json\",\"version\":1}\n";
/// Largest datagram sent, header included: what the daemon reads reliably.
pub const DATAGRAM_MAX: usize = 64_512;
/// Largest document.
pub const DOCUMENT_MAX: usize = DATAGRAM_MAX - HEADER.len();

const PREFIX_HEAD: &[u8] = b"{\"type\":\"subsegment\",\"trace_id\":\"";
const PREFIX_MID: &[u8] = b"\",\"parent_id\":\"";
const PREFIX_TAIL: &[u8] = b"\",";
/// Bytes the independent-subsegment fields add to an embedded entity.
pub const PREFIX_MAX: usize =
    PREFIX_HEAD.len() + TraceId::LEN + PREFIX_MID.len() + 16 + PREFIX_TAIL.len() - 1;
/// Largest entity kept or written, so that any of them can still be sent on its own.
pub const ENTITY_MAX: usize = DOCUMENT_MAX - PREFIX_MAX;

/// How much of a span's own content to keep.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Trim {
    metadata: bool,
    max_chars: usize,
}

/// Tried in order until the document fits: everything; no metadata; short
/// strings; shorter strings. The last always fits (fields and text per span
/// are bounded).
pub(crate) const TRIM_LEVELS: [Trim; 4] = [
    Trim {
        metadata: true,
        max_chars: usize::MAX,
    },
    Trim {
        metadata: false,
        max_chars: usize::MAX,
    },
    Trim {
        metadata: false,
        max_chars: 256,
    },
    Trim {
        metadata: false,
        max_chars: 16,
    },
];

const MAX_ANNOTATION_CHARS: usize = 1000;
const MAX_HTTP_CHARS: usize = 250;
const MAX_EXCEPTIONS: usize = 8;

/// Writes the datagram start for a subsegment sent on its own, then the entity
/// (an embedded form starting with `{`).
pub(crate) fn write_independent(
    w: &mut JsonWriter<'_>,
    trace: TraceId,
    parent: SegmentId,
    entity: &[u8],
) {
    w.raw(HEADER);
    w.raw(PREFIX_HEAD);
    w.raw(&trace.to_text());
    w.raw(PREFIX_MID);
    w.raw(&parent.to_hex());
    w.raw(PREFIX_TAIL);
    w.raw(entity.get(1..).unwrap_or_default());
}

/// Writes `{` and the span's own fields, leaving the object open for
/// `subsegments` and the closing brace. `end` is `None` for an in-progress report.
pub(crate) fn write_own(
    w: &mut JsonWriter<'_>,
    span: &Span,
    end: Option<u64>,
    trim: Trim,
    truncated: bool,
) {
    // `name` always comes first, so every later field starts with a comma.
    w.raw(b"{\"name\":");
    w.name(span.name());
    w.raw(b",\"id\":");
    w.segment_id(span.id);
    w.raw(b",\"start_time\":");
    w.time(span.start);
    match end {
        Some(end) => {
            w.raw(b",\"end_time\":");
            w.time(end.max(span.start));
        }
        None => w.raw(b",\"in_progress\":true"),
    }
    write_kind(w, span, trim);
    for (bit, text) in [
        (FLAG_ERROR, b",\"error\":true".as_slice()),
        (FLAG_FAULT, b",\"fault\":true".as_slice()),
        (FLAG_THROTTLE, b",\"throttle\":true".as_slice()),
    ] {
        if span.flags & bit != 0 {
            w.raw(text);
        }
    }
    write_http(w, span, trim);
    write_sql(w, span, trim);
    write_aws(w, span, trim);
    write_cause(w, span, trim);
    write_annotations(w, span, trim);
    write_metadata(w, span, trim, truncated || span.truncated);
}

/// What the kind of entity adds: a segment's trace, parent, user and
/// origin; a call's namespace.
fn write_kind(w: &mut JsonWriter<'_>, span: &Span, trim: Trim) {
    match span.kind {
        Kind::Segment => {
            w.raw(b",\"trace_id\":");
            w.trace_id(span.trace);
            if let Some(parent) = span.parent {
                w.raw(b",\"parent_id\":");
                w.segment_id(parent);
            }
            for (key, field) in [(Key::User, "user"), (Key::Origin, "origin")] {
                if let Some(value) = find(span, key) {
                    w.raw(b",");
                    w.key(field);
                    write_string_value(w, span, value, trim.max_chars.min(MAX_HTTP_CHARS));
                }
            }
            if let Some(value) = find(span, Key::ServiceVersion) {
                w.raw(b",\"service\":{\"version\":");
                write_string_value(w, span, value, trim.max_chars.min(MAX_HTTP_CHARS));
                w.raw(b"}");
            }
            return;
        }
        Kind::Aws => w.raw(b",\"namespace\":\"aws\""),
        Kind::Remote => w.raw(b",\"namespace\":\"remote\""),
        Kind::Local => {}
    }
    if let Some(true) = find(span, Key::Traced).and_then(as_bool) {
        w.raw(b",\"traced\":true");
    }
}

/// `aws`: the recorded members, and `retries` counted from attempts unless
/// one was recorded.
fn write_aws(w: &mut JsonWriter<'_>, span: &Span, trim: Trim) {
    let mut aws = Seq::lazy_object(b",\"aws\":{");
    write_pairs(w, &mut aws, span, trim.max_chars, |k| match k {
        Key::Aws(name) => Some(name),
        _ => None,
    });
    let recorded = span.attrs.iter().any(|a| a.key == Key::Aws("retries"));
    if span.attempts > 0 && !recorded {
        w.field(&mut aws, "retries");
        w.u64(u64::from(span.attempts - 1));
    }
    w.end(aws);
}

/// `metadata.default` (the user's fields, unless trimmed away) and
/// `metadata.xray_emitter.truncated` when something was left out.
fn write_metadata(w: &mut JsonWriter<'_>, span: &Span, trim: Trim, truncated: bool) {
    let mut metadata = Seq::lazy_object(b",\"metadata\":{");
    if trim.metadata {
        let mut default = Seq::lazy_object(b"\"default\":{");
        let mut first = true;
        for attr in &span.attrs {
            let Key::Metadata(name) = attr.key else {
                continue;
            };
            if first {
                w.member(&mut metadata);
                first = false;
            }
            w.field(&mut default, name);
            write_value(w, span, attr.value, trim.max_chars);
        }
        w.end(default);
    }
    if truncated {
        w.member(&mut metadata);
        w.raw(b"\"xray_emitter\":{\"truncated\":true}");
    }
    w.end(metadata);
}

fn find(span: &Span, key: Key) -> Option<Stored> {
    span.attrs.iter().find(|a| a.key == key).map(|a| a.value)
}

fn write_value(w: &mut JsonWriter<'_>, span: &Span, value: Stored, max_chars: usize) {
    match value {
        Stored::I64(v) => w.i64(v),
        Stored::U64(v) => w.u64(v),
        Stored::F64(v) => w.f64(v),
        Stored::Bool(v) => w.bool(v),
        Stored::Text { start, len, json } => {
            let text = span.text(start, len);
            // Checked here, on the sender thread, since a producer's text
            // is never trusted: invalid or long JSON goes out as a string.
            if json && text.chars().count() <= max_chars && crate::json::is_valid(text.as_bytes()) {
                w.raw(text.as_bytes());
            } else {
                w.string_limited(text, max_chars);
            }
        }
    }
}

/// A JSON text as a string: where X-Ray wants a scalar (annotations,
/// `http`), a JSON value is written as text, never as it is.
fn plain(value: Stored) -> Stored {
    match value {
        Stored::Text { start, len, .. } => Stored::Text {
            start,
            len,
            json: false,
        },
        other => other,
    }
}

/// A value where X-Ray wants a boolean, if it is one (`1` and `0` count).
fn as_bool(value: Stored) -> Option<bool> {
    match value {
        Stored::Bool(b) => Some(b),
        Stored::U64(n) if n <= 1 => Some(n == 1),
        Stored::I64(n) if (0..=1).contains(&n) => Some(n == 1),
        _ => None,
    }
}

/// A value where X-Ray wants a number, if it is one (a numeric string counts).
fn as_number(span: &Span, value: Stored) -> Option<Stored> {
    match value {
        Stored::I64(_) | Stored::U64(_) => Some(value),
        Stored::F64(v) if v.is_finite() => Some(value),
        Stored::Text { start, len, .. } => {
            span.text(start, len).trim().parse().ok().map(Stored::U64)
        }
        _ => None,
    }
}

/// `"k":v` in `seq` for every field `select` names.
fn write_pairs(
    w: &mut JsonWriter<'_>,
    seq: &mut Seq,
    span: &Span,
    max_chars: usize,
    select: impl Fn(Key) -> Option<&'static str>,
) {
    for attr in &span.attrs {
        if let Some(name) = select(attr.key) {
            w.field(seq, name);
            write_value(w, span, attr.value, max_chars);
        }
    }
}

/// A value where X-Ray wants a string: numbers and booleans are quoted.
fn write_string_value(w: &mut JsonWriter<'_>, span: &Span, value: Stored, max_chars: usize) {
    let value = plain(value);
    match value {
        Stored::Text { .. } => write_value(w, span, value, max_chars),
        Stored::F64(v) if !v.is_finite() => w.f64(v),
        _ => {
            w.byte(b'"');
            write_value(w, span, value, max_chars);
            w.byte(b'"');
        }
    }
}

/// Keys that differ only in characters X-Ray does not allow (`a-b`, `a.b`)
/// become one key: the value recorded last is the one written, so the
/// object never holds a key twice.
fn write_annotations(w: &mut JsonWriter<'_>, span: &Span, trim: Trim) {
    let mut annotations = Seq::lazy_object(b",\"annotations\":{");
    for (i, attr) in span.attrs.iter().enumerate() {
        let Key::Annotation(name) = attr.key else {
            continue;
        };
        let same = |a: &crate::span::Attr| match a.key {
            Key::Annotation(other) => crate::name::sanitized_annotation_key(other)
                .eq(crate::name::sanitized_annotation_key(name)),
            _ => false,
        };
        if span.attrs[i + 1..].iter().any(same) {
            continue;
        }
        w.member(&mut annotations);
        w.annotation_key(name);
        let max = trim.max_chars.min(MAX_ANNOTATION_CHARS);
        write_value(w, span, plain(attr.value), max);
    }
    w.end(annotations);
}

/// `sql`: what is known of a database call; every member a string.
fn write_sql(w: &mut JsonWriter<'_>, span: &Span, trim: Trim) {
    let mut sql = Seq::lazy_object(b",\"sql\":{");
    for (name, field) in [
        ("url", SqlField::Url),
        ("database_type", SqlField::DatabaseType),
        ("database_version", SqlField::DatabaseVersion),
        ("driver_version", SqlField::DriverVersion),
        ("user", SqlField::User),
        ("sanitized_query", SqlField::SanitizedQuery),
        ("preparation", SqlField::Preparation),
    ] {
        if let Some(v) = find(span, Key::Sql(field)) {
            w.field(&mut sql, name);
            // `user` is bounded by the schema; a query may be long.
            let max = match field {
                SqlField::SanitizedQuery => trim.max_chars,
                _ => trim.max_chars.min(MAX_HTTP_CHARS),
            };
            write_string_value(w, span, v, max);
        }
    }
    w.end(sql);
}

fn write_http(w: &mut JsonWriter<'_>, span: &Span, trim: Trim) {
    let max = trim.max_chars.min(MAX_HTTP_CHARS);
    let get = |f| find(span, Key::Http(f));
    let mut http = Seq::lazy_object(b",\"http\":{");
    let mut request = Seq::lazy_object(b"\"request\":{");
    let strings = [
        ("method", HttpField::Method),
        ("url", HttpField::Url),
        ("user_agent", HttpField::UserAgent),
        ("client_ip", HttpField::ClientIp),
    ];
    for (name, field) in strings {
        if let Some(v) = get(field) {
            if request.is_empty() {
                w.member(&mut http);
            }
            w.field(&mut request, name);
            write_string_value(w, span, v, max);
        }
    }
    if let Some(true) = get(HttpField::XForwardedFor).and_then(as_bool) {
        if request.is_empty() {
            w.member(&mut http);
        }
        w.field(&mut request, "x_forwarded_for");
        w.bool(true);
    }
    w.end(request);
    let mut response = Seq::lazy_object(b"\"response\":{");
    let numbers = [
        ("status", HttpField::Status),
        ("content_length", HttpField::ContentLength),
    ];
    for (name, field) in numbers {
        if let Some(v) = get(field).and_then(|v| as_number(span, v)) {
            if response.is_empty() {
                w.member(&mut http);
            }
            w.field(&mut response, name);
            write_value(w, span, v, max);
        }
    }
    w.end(response);
    w.end(http);
}

#[derive(Clone, Copy, Default)]
struct Exception {
    message: Option<Stored>,
    kind: Option<Stored>,
    remote: bool,
}

/// The id of exception `index` of `span`: derived from both, so writing the
/// same span twice (a trim retry, an in-progress report, then the close)
/// gives the same ids.
fn exception_id(span: SegmentId, index: usize) -> SegmentId {
    // splitmix64's finalizer: distinct inputs, well-spread outputs.
    let mut z = span.get() ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    SegmentId::from_u64(z).unwrap_or(span)
}

fn write_cause(w: &mut JsonWriter<'_>, span: &Span, trim: Trim) {
    let mut list: ArrayVec<Exception, MAX_EXCEPTIONS> = ArrayVec::new();
    for attr in &span.attrs {
        match attr.key {
            Key::Exception { remote } => {
                let _ = list.try_push(Exception {
                    message: Some(attr.value),
                    kind: None,
                    remote,
                });
            }
            Key::ExceptionType => match list.last_mut() {
                Some(e) if e.kind.is_none() => e.kind = Some(attr.value),
                _ => {
                    let _ = list.try_push(Exception {
                        kind: Some(attr.value),
                        ..Exception::default()
                    });
                }
            },
            _ => {}
        }
    }
    let mut exceptions = Seq::lazy_array(b",\"cause\":{\"exceptions\":[");
    for (i, e) in list.iter().enumerate() {
        w.member(&mut exceptions);
        w.raw(b"{\"id\":");
        w.segment_id(exception_id(span.id, i));
        for (name, v) in [("message", e.message), ("type", e.kind)] {
            if let Some(v) = v {
                w.byte(b',');
                w.key(name);
                write_string_value(w, span, v, trim.max_chars);
            }
        }
        if e.remote {
            w.raw(b",\"remote\":true");
        }
        w.byte(b'}');
    }
    if !exceptions.is_empty() {
        w.end(exceptions);
        w.byte(b'}');
    }
}
