//! Segment documents: the JSON of one span, and the datagram around it.
//!
//! An entity is always written in its embedded form (`{"name":…,"id":…}`).
//! Sent on its own, a subsegment gets the `type`, `trace_id` and `parent_id`
//! it then needs spliced in after the `{`, so a closed child kept for nesting
//! can still be sent independently without being written again.

use arrayvec::ArrayVec;

use crate::id::{SegmentId, TraceId};
use crate::json::JsonWriter;
use crate::record::{FLAG_ERROR, FLAG_FAULT, FLAG_THROTTLE, HttpField, Key, Kind};
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
        }
        Kind::Aws => w.raw(b",\"namespace\":\"aws\""),
        Kind::Remote => w.raw(b",\"namespace\":\"remote\""),
        Kind::Local => {}
    }
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
    let aws = |k| match k {
        Key::Aws(name) => Some(name),
        _ => None,
    };
    let counted = span.attempts > 0 && !span.attrs.iter().any(|a| a.key == Key::Aws("retries"));
    if counted || span.attrs.iter().any(|a| aws(a.key).is_some()) {
        w.raw(b",\"aws\":{");
        write_pairs(w, span, trim.max_chars, aws);
        if counted {
            if w.written().last() != Some(&b'{') {
                w.byte(b',');
            }
            w.raw(b"\"retries\":");
            w.u64(u64::from(span.attempts - 1));
        }
        w.byte(b'}');
    }
    write_cause(w, span, trim);
    write_annotations(w, span, trim);
    let user_metadata = trim.metadata && has_metadata(span);
    let lost = truncated || span.truncated;
    if user_metadata || lost {
        w.raw(b",\"metadata\":{");
        if user_metadata {
            w.raw(b"\"default\":{");
            write_pairs(w, span, trim.max_chars, |k| match k {
                Key::Metadata(name) => Some(name),
                _ => None,
            });
            w.byte(b'}');
        }
        if lost {
            if user_metadata {
                w.byte(b',');
            }
            w.raw(b"\"xray_emitter\":{\"truncated\":true}");
        }
        w.byte(b'}');
    }
}

fn has_metadata(span: &Span) -> bool {
    span.attrs.iter().any(|a| matches!(a.key, Key::Metadata(_)))
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
        Stored::Text { start, len } => {
            w.string_limited(span.text(start, len), max_chars);
        }
    }
}

fn write_number(w: &mut JsonWriter<'_>, span: &Span, value: Stored) -> bool {
    match value {
        Stored::I64(v) => w.i64(v),
        Stored::U64(v) => w.u64(v),
        Stored::F64(v) if v.is_finite() => w.f64(v),
        Stored::Text { start, len } => match span.text(start, len).trim().parse::<u64>() {
            Ok(v) => w.u64(v),
            Err(_) => return false,
        },
        _ => return false,
    }
    true
}

/// `"k":v,…` for every field `select` names.
fn write_pairs(
    w: &mut JsonWriter<'_>,
    span: &Span,
    max_chars: usize,
    select: impl Fn(Key) -> Option<&'static str>,
) {
    let mut sep = b"".as_slice();
    for attr in &span.attrs {
        let Some(name) = select(attr.key) else {
            continue;
        };
        w.raw(sep);
        sep = b",";
        w.key(name);
        write_value(w, span, attr.value, max_chars);
    }
}

/// A value where X-Ray wants a string: numbers and booleans are quoted.
fn write_string_value(w: &mut JsonWriter<'_>, span: &Span, value: Stored, max_chars: usize) {
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
    let mut first = true;
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
        w.raw(if first { b",\"annotations\":{" } else { b"," });
        first = false;
        w.annotation_key(name);
        write_value(
            w,
            span,
            attr.value,
            trim.max_chars.min(MAX_ANNOTATION_CHARS),
        );
    }
    if !first {
        w.byte(b'}');
    }
}

fn write_http(w: &mut JsonWriter<'_>, span: &Span, trim: Trim) {
    let max = trim.max_chars.min(MAX_HTTP_CHARS);
    let get = |f| find(span, Key::Http(f));
    let (method, url) = (get(HttpField::Method), get(HttpField::Url));
    let (status, length) = (get(HttpField::Status), get(HttpField::ContentLength));
    if method.is_none() && url.is_none() && status.is_none() && length.is_none() {
        return;
    }
    w.raw(b",\"http\":{");
    let mut sep = b"".as_slice();
    if method.is_some() || url.is_some() {
        w.raw(b"\"request\":{");
        let mut inner = b"".as_slice();
        for (name, v) in [("method", method), ("url", url)] {
            if let Some(v) = v {
                w.raw(inner);
                w.key(name);
                write_string_value(w, span, v, max);
                inner = b",";
            }
        }
        w.byte(b'}');
        sep = b",";
    }
    if status.is_some() || length.is_some() {
        w.raw(sep);
        w.raw(b"\"response\":{");
        let mut inner = b"".as_slice();
        for (name, v) in [("status", status), ("content_length", length)] {
            if let Some(v) = v {
                let mark = w.mark();
                w.raw(inner);
                w.key(name);
                if write_number(w, span, v) {
                    inner = b",";
                } else {
                    w.rewind(mark);
                }
            }
        }
        w.byte(b'}');
    }
    w.byte(b'}');
}

#[derive(Clone, Copy, Default)]
struct Exception {
    message: Option<Stored>,
    kind: Option<Stored>,
    remote: bool,
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
    if list.is_empty() {
        return;
    }
    w.raw(b",\"cause\":{\"exceptions\":[");
    for (i, e) in list.iter().enumerate() {
        if i > 0 {
            w.byte(b',');
        }
        w.raw(b"{\"id\":");
        w.segment_id(SegmentId::random());
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
    w.raw(b"]}");
}
