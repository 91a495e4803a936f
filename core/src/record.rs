//! The fixed-size record the caller's thread hands to the sender.
//!
//! One record is one cache line: every byte a producer writes is later pulled
//! across cores by the sender, and 64-byte records measured about 10 % cheaper
//! per span than 200-byte ones. So a string value travels inline up to
//! [`INLINE`] bytes and the rest follows in [`Body::More`] records; anything
//! past [`MAX_VALUE_BYTES`] is cut by the producer and counted.

use std::ptr::NonNull;

use crate::clock::Ticks;
use crate::id::{SegmentId, TraceId};

/// String bytes carried in an [`Body::Attr`] record itself.
pub const INLINE: usize = 27;
/// String bytes carried by each [`Body::More`] record.
pub const CHUNK: usize = 48;
/// Longest string value a producer sends; longer ones are cut (at a character
/// boundary) and counted as truncated.
pub const MAX_VALUE_BYTES: usize = 1024;

/// `error`: a client error (HTTP 4xx).
pub const FLAG_ERROR: u64 = 1;
/// `fault`: a server error (HTTP 5xx) or a recorded failure.
pub const FLAG_FAULT: u64 = 2;
/// `throttle`: the call was throttled (HTTP 429, or a throttling error code).
pub const FLAG_THROTTLE: u64 = 4;

/// A `&'static str` in 12 bytes instead of 16: with it an open record has
/// room for its trace and still fits in one cache line.
#[derive(Clone, Copy)]
#[repr(C, packed(4))]
pub struct StaticName {
    ptr: NonNull<u8>,
    len: u32,
}

// SAFETY: a `StaticName` is a `&'static str` in other clothes (see `new`),
// and shared references to immutable static data may cross threads.
unsafe impl Send for StaticName {}
// SAFETY: as above.
unsafe impl Sync for StaticName {}

impl StaticName {
    /// `name`, cut (at a character boundary) to 4 GiB.
    #[inline]
    pub fn new(name: &'static str) -> Self {
        let name = &name[..floor_char_boundary(name, u32::MAX as usize)];
        StaticName {
            ptr: NonNull::from(name.as_bytes()).cast(),
            len: name.len() as u32,
        }
    }

    /// The name.
    #[inline]
    pub fn as_str(self) -> &'static str {
        let (ptr, len) = (self.ptr, self.len);
        // SAFETY: `ptr` and `len` were taken from a `&'static str` in `new`:
        // valid UTF-8, never freed, never written.
        unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(ptr.as_ptr(), len as usize))
        }
    }
}

impl From<&'static str> for StaticName {
    fn from(name: &'static str) -> Self {
        StaticName::new(name)
    }
}

impl PartialEq for StaticName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl std::fmt::Debug for StaticName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// What an entity is, which decides its `namespace` and document shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A segment: a service's own root entity (never sent in Lambda).
    Segment,
    /// A local subsegment (no namespace).
    Local,
    /// A call to an AWS service (`namespace: "aws"`).
    Aws,
    /// A call to another HTTP service (`namespace: "remote"`).
    Remote,
}

/// A field of the `http` object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpField {
    /// `http.request.method`
    Method,
    /// `http.request.url`
    Url,
    /// `http.response.status`
    Status,
    /// `http.response.content_length`
    ContentLength,
    /// `http.request.client_ip`: the caller's address (segments).
    ClientIp,
    /// `http.request.user_agent`
    UserAgent,
    /// `http.request.x_forwarded_for`: `client_ip` came from the
    /// `X-Forwarded-For` header, not the connection (a boolean).
    XForwardedFor,
}

/// A field of the `sql` object (a call to a database).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SqlField {
    /// `sql.url`: where the database is (`host:port/database`, never credentials).
    Url,
    /// `sql.database_type`: X-Ray's name for the engine (`PostgreSQL`, `MySQL`, …).
    DatabaseType,
    /// `sql.database_version`
    DatabaseVersion,
    /// `sql.driver_version`
    DriverVersion,
    /// `sql.user`
    User,
    /// `sql.sanitized_query`: the query, with its values left out by the caller.
    SanitizedQuery,
    /// `sql.preparation`: `statement` or `call`.
    Preparation,
}

/// Where a value goes in the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Key {
    /// `annotations.<key>` (the key is rewritten to `[A-Za-z0-9_]`).
    Annotation(&'static str),
    /// `metadata.default.<key>`.
    Metadata(&'static str),
    /// `aws.<key>`, e.g. `operation`, `table_name`, `request_id`, `retries`.
    Aws(&'static str),
    /// A field of `http`.
    Http(HttpField),
    /// A field of `sql`.
    Sql(SqlField),
    /// Marks a local subsegment as a call to another service, written with
    /// `namespace: "remote"` (the value is ignored): what a span's fields
    /// reveal only after it was opened.
    Remote,
    /// Replaces the name given at open (e.g. a service name known only at run time).
    Name,
    /// Starts a new entry of `cause.exceptions` whose message is the value.
    Exception {
        /// The failure came from a downstream service.
        remote: bool,
    },
    /// Sets the `type` of the latest exception (one is started if there is none).
    ExceptionType,
    /// ORs [`FLAG_ERROR`], [`FLAG_FAULT`], [`FLAG_THROTTLE`] (a `U64` value) into the flags.
    Flags,
    /// One attempt of an AWS call (the value is ignored): `aws.retries` is
    /// the number of attempts minus one, unless `aws.retries` is recorded.
    Attempt,
    /// `user` (segments).
    User,
    /// `origin` (segments), e.g. `AWS::EC2::Instance`.
    Origin,
    /// `service.version` (segments): the version of the program.
    ServiceVersion,
    /// `traced` (calls): the trace header went downstream with the call, so
    /// the service called continues this trace (a boolean).
    Traced,
    /// The span belongs to an unsampled trace and is recorded only for
    /// OTLP's unsampled datagrams (`T1U`, for Application Signals); the
    /// value is ignored. X-Ray documents never include it.
    Unsampled,
}

/// Set in `Inline::total` when the producer cut the value.
const CUT: u16 = 0x8000;
const _: () = assert!(MAX_VALUE_BYTES < CUT as usize);

/// The first [`INLINE`] bytes of a string, with the length of the whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inline {
    total: u16,
    len: u8,
    bytes: [u8; INLINE],
}

impl Inline {
    /// `first`, the first bytes (at most [`INLINE`]) of a value of `total`
    /// bytes, which the producer `cut` or not.
    #[inline]
    fn new(first: &[u8], total: usize, cut: bool) -> Inline {
        let mut inline = Inline {
            total: total as u16 | if cut { CUT } else { 0 },
            len: first.len() as u8,
            bytes: [0; INLINE],
        };
        inline.bytes[..first.len()].copy_from_slice(first);
        inline
    }

    /// Bytes of the value carried here.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Length of the whole value; more than `bytes().len()` when [`Body::More`] records follow.
    pub fn total(&self) -> usize {
        usize::from(self.total & !CUT)
    }

    /// Whether the producer cut the value at [`MAX_VALUE_BYTES`].
    pub fn cut(&self) -> bool {
        self.total & CUT != 0
    }
}

/// String bytes a [`Small`] field carries.
pub const SMALL: usize = 8;

const SMALL_I64: u8 = 0;
const SMALL_U64: u8 = 1;
const SMALL_F64: u8 = 2;
const SMALL_BOOL: u8 = 3;
const SMALL_STR: u8 = 4;

/// A `metadata.default` field whose value is a number, a boolean or a
/// string of at most [`SMALL`] bytes: two fit in one [`Body::Pair`] record,
/// and a record saved is a slot of the ring the caller does not write.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Small {
    name: StaticName,
    kind: u8,
    len: u8,
    bytes: [u8; SMALL],
}

impl Small {
    /// `name` = `value`, unless the value is text (see [`Small::text`]).
    #[inline]
    pub fn new(name: &'static str, value: Value) -> Option<Small> {
        let (kind, bits) = match value {
            Value::I64(v) => (SMALL_I64, v as u64),
            Value::U64(v) => (SMALL_U64, v),
            Value::F64(v) => (SMALL_F64, v.to_bits()),
            Value::Bool(v) => (SMALL_BOOL, u64::from(v)),
            Value::Str(_) | Value::Json(_) => return None,
        };
        Some(Small {
            name: StaticName::new(name),
            kind,
            len: 0,
            bytes: bits.to_ne_bytes(),
        })
    }

    /// `name` = `value`, if the string is at most [`SMALL`] bytes.
    #[inline]
    pub fn text(name: &'static str, value: &str) -> Option<Small> {
        let src = value.as_bytes();
        if src.len() > SMALL {
            return None;
        }
        let mut bytes = [0; SMALL];
        // Fixed-size moves, overlapping when the string is short: a copy of
        // a variable length is a call to `memcpy` that costs more than the
        // field.
        let n = src.len();
        if n >= 4 {
            bytes[..4].copy_from_slice(&src[..4]);
            let tail: [u8; 4] = src[n - 4..].try_into().unwrap_or_default();
            bytes[n - 4..n].copy_from_slice(&tail);
        } else if n > 0 {
            bytes[0] = src[0];
            bytes[n / 2] = src[n / 2];
            bytes[n - 1] = src[n - 1];
        }
        Some(Small {
            name: StaticName::new(name),
            kind: SMALL_STR,
            len: src.len() as u8,
            bytes,
        })
    }

    /// The field's name.
    pub fn name(&self) -> &'static str {
        self.name.as_str()
    }

    /// The field's value, as an [`Body::Attr`] record would carry it.
    pub fn value(&self) -> Value {
        let bits = u64::from_ne_bytes(self.bytes);
        match self.kind {
            SMALL_I64 => Value::I64(bits as i64),
            SMALL_U64 => Value::U64(bits),
            SMALL_F64 => Value::F64(f64::from_bits(bits)),
            SMALL_BOOL => Value::Bool(bits != 0),
            _ => {
                let len = usize::from(self.len).min(SMALL);
                Value::Str(Inline::new(&self.bytes[..len], len, false))
            }
        }
    }
}

impl PartialEq for Small {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name() && self.value() == other.value()
    }
}

impl std::fmt::Debug for Small {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Small")
            .field("name", &self.name())
            .field("value", &self.value())
            .finish()
    }
}

/// A continuation of the latest string value of a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    offset: u16,
    len: u8,
    bytes: [u8; CHUNK],
}

impl Chunk {
    /// Where in the whole value these bytes start.
    pub fn offset(&self) -> usize {
        usize::from(self.offset)
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A field value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A float; non-finite values are written as strings.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// A string (possibly continued by [`Body::More`]).
    Str(Inline),
    /// A JSON text (an object, array, string, number, `true`, `false` or
    /// `null`) written into the document as it is, possibly continued by
    /// [`Body::More`]. The sender checks it first: one that is not valid
    /// JSON, was cut, or does not fit is written as a string instead.
    Json(Inline),
}

/// What happened to a span.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Body {
    /// The span began. `parent` is the enclosing entity: a span this emitter
    /// was told about, or an upstream id (such as Lambda's function segment).
    /// Every open carries its trace, so a span's trace never depends on
    /// which producer's records the sender happens to read first.
    Open {
        /// The enclosing entity, if any.
        parent: Option<SegmentId>,
        /// The trace the span belongs to.
        trace: TraceId,
        /// When it began.
        time: Ticks,
        /// Its name until a [`Key::Name`] value replaces it.
        name: StaticName,
        /// What it is.
        kind: Kind,
    },
    /// A field.
    Attr {
        /// Where it goes.
        key: Key,
        /// What it holds.
        value: Value,
    },
    /// More bytes of the span's latest string value.
    More(Chunk),
    /// One or two `metadata.default` fields (see [`Small`]), as one or two
    /// [`Body::Attr`] records would set them, in order.
    Pair(Small, Option<Small>),
    /// The span ended.
    Close {
        /// When it ended.
        time: Ticks,
    },
    /// The work under `record.span` (Lambda's function segment) in `trace` is
    /// over: spans of it still open are reported as in progress now.
    EndTrace {
        /// The trace id.
        trace: TraceId,
    },
    /// If `trace` has not ended by `at` (microseconds since the Unix epoch),
    /// its open spans are reported as in progress then, with their closed
    /// children: what a Lambda invocation about to time out has done so far.
    /// Spans that close afterwards are sent complete, replacing the report.
    Deadline {
        /// The trace id.
        trace: TraceId,
        /// When to report, in microseconds since the Unix epoch.
        at: u64,
    },
}

/// One message from a producer: a span and what happened to it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Record {
    /// The span's X-Ray id.
    pub span: SegmentId,
    /// What happened.
    pub body: Body,
}

const _: () = assert!(
    std::mem::size_of::<Record>() == 64,
    "a record is one cache line"
);

impl Record {
    /// A record for `span`.
    #[inline]
    pub const fn new(span: SegmentId, body: Body) -> Self {
        Record { span, body }
    }

    /// Splits a string value into an `Attr` record and the `More` records
    /// that follow it, calling `push` for each in order. Returns whether the
    /// value was cut at [`MAX_VALUE_BYTES`].
    #[inline]
    pub fn split_str(span: SegmentId, key: Key, value: &str, push: impl FnMut(Record)) -> bool {
        Self::split(span, key, value, false, push)
    }

    /// As [`Record::split_str`], for a JSON text ([`Value::Json`]).
    #[inline]
    pub fn split_json(span: SegmentId, key: Key, json: &str, push: impl FnMut(Record)) -> bool {
        Self::split(span, key, json, true, push)
    }

    #[inline]
    fn split(
        span: SegmentId,
        key: Key,
        value: &str,
        json: bool,
        mut push: impl FnMut(Record),
    ) -> bool {
        let cut = value.len() > MAX_VALUE_BYTES;
        let value = if cut {
            &value[..floor_char_boundary(value, MAX_VALUE_BYTES)]
        } else {
            value
        };
        let bytes = value.as_bytes();
        let first = bytes.len().min(INLINE);
        let inline = Inline::new(&bytes[..first], bytes.len(), cut);
        let value = if json {
            Value::Json(inline)
        } else {
            Value::Str(inline)
        };
        push(Record::new(span, Body::Attr { key, value }));
        let mut offset = first;
        while offset < bytes.len() {
            let n = (bytes.len() - offset).min(CHUNK);
            let mut chunk = Chunk {
                offset: offset as u16,
                len: n as u8,
                bytes: [0; CHUNK],
            };
            chunk.bytes[..n].copy_from_slice(&bytes[offset..offset + n]);
            push(Record::new(span, Body::More(chunk)));
            offset += n;
        }
        cut
    }
}

/// The largest index `<= max` that starts a character of `s`.
pub(crate) fn floor_char_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_names_read_back() {
        for name in ["", "a", "DynamoDB.GetItem", "名前"] {
            let n = StaticName::new(name);
            assert_eq!(n.as_str(), name);
            assert_eq!(n, StaticName::from(name));
        }
    }

    #[test]
    fn small_fields_read_back_as_the_values_they_were_made_from() {
        for value in [
            Value::I64(i64::MIN),
            Value::I64(-1),
            Value::U64(u64::MAX),
            Value::F64(-0.25),
            Value::F64(f64::NAN),
            Value::Bool(true),
            Value::Bool(false),
        ] {
            let small = Small::new("k", value).expect("a number or a boolean");
            assert_eq!(small.name(), "k");
            match (small.value(), value) {
                (Value::F64(a), Value::F64(b)) => assert_eq!(a.to_bits(), b.to_bits()),
                (a, b) => assert_eq!(a, b),
            }
        }
        for text in [
            "", "a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "12345678", "é中", "😀😀",
        ] {
            let small = Small::text("k", text).expect("at most eight bytes");
            let Value::Str(inline) = small.value() else {
                unreachable!()
            };
            assert_eq!(inline.bytes(), text.as_bytes(), "{text:?}");
            assert_eq!((inline.total(), inline.cut()), (text.len(), false));
        }
        assert!(Small::text("k", "123456789").is_none());
        let mut long = Vec::new();
        Record::split_str(
            SegmentId::from_u64(1).unwrap(),
            Key::Metadata("k"),
            "x",
            |r| long.push(r),
        );
        let Body::Attr { value, .. } = long[0].body else {
            unreachable!()
        };
        assert!(Small::new("k", value).is_none(), "text goes through `text`");
    }

    #[test]
    fn split_reassembles() {
        let span = SegmentId::from_u64(7).unwrap();
        for len in [0, 1, 27, 28, 29, 72, 73, 500, 1024] {
            let value: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            let mut out = Vec::new();
            let cut = Record::split_str(span, Key::Metadata("k"), &value, |r| out.push(r));
            assert!(!cut);
            let mut text = Vec::new();
            let mut total = 0;
            for r in &out {
                match r.body {
                    Body::Attr {
                        value: Value::Str(i),
                        ..
                    } => {
                        total = i.total();
                        text.extend_from_slice(i.bytes());
                    }
                    Body::More(c) => {
                        assert_eq!(c.offset(), text.len());
                        text.extend_from_slice(c.bytes());
                    }
                    _ => unreachable!(),
                }
            }
            assert_eq!(total, len);
            assert_eq!(text, value.as_bytes());
        }
    }

    #[test]
    fn split_cuts_long_values_at_char_boundary() {
        let span = SegmentId::from_u64(7).unwrap();
        let value = "é".repeat(MAX_VALUE_BYTES);
        let mut total = 0;
        let cut = Record::split_str(span, Key::Metadata("k"), &value, |r| {
            if let Body::Attr {
                value: Value::Str(i),
                ..
            } = r.body
            {
                total = i.total();
            }
        });
        assert!(cut);
        assert_eq!(total, MAX_VALUE_BYTES);
        assert!(value.is_char_boundary(total));
    }
}
