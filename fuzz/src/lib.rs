//! The properties the fuzz targets check, as plain functions: libFuzzer drives
//! them from `fuzz_targets/`, and `tests/replay.rs` replays the committed
//! corpus through them on stable.

use arbitrary::Unstructured;
use xray_emitter::testing::{Assembler, TableConfig};
use xray_emitter::{
    Body, DaemonAddress, HttpField, Key, Kind, Record, SegmentId, Small, SqlField, TraceHeader,
    TraceId, Value, clock::Ticks, record::MAX_VALUE_BYTES, record::SMALL,
};

/// Keys with everything a field name can be: ordinary, dotted, empty,
/// non-ASCII, control characters, over-long.
const KEYS: &[&str] = &[
    "order_id",
    "http.route",
    "",
    "naïve",
    "tab\there",
    "quote\"back\\slash",
    "AWS.reserved",
    "😀",
    "k0",
    "k1",
    "k2",
    "k3",
    concat!(
        "a_very_long_key_",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    ),
];

/// Static names of the same kinds.
const NAMES: &[&str] = &[
    "handler",
    "DynamoDB",
    "",
    "GET /users/{id}",
    "名前",
    "a\u{0}b",
    "😀😀",
    "x;y<z>",
];

use xray_testkit::Capture;
/// The wire contract for one datagram, without the schema (too slow to run
/// per input): the test kit's rules.
pub use xray_testkit::check_rules as check_datagram;

/// A header that parses formats back to an equivalent one, and keeps the keys
/// it does not know (unless they did not fit).
pub fn trace_header(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(h) = TraceHeader::parse(text) else {
        return;
    };
    let encoded = h.encode();
    let again = TraceHeader::parse(&encoded).expect("an encoded header parses");
    assert_eq!(
        (again.root, again.parent, again.sampled),
        (h.root, h.parent, h.sampled)
    );
    assert_eq!(again.extras(), h.extras());
    assert_eq!(again.encode(), encoded, "encoding is stable");
    if !h.extras_dropped() {
        for part in text.split(';') {
            let Some((k, v)) = part.trim().split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            let known = ["root", "parent", "sampled", "self"]
                .iter()
                .any(|n| k.eq_ignore_ascii_case(n));
            if !known && !k.is_empty() {
                assert!(
                    h.extras().split(';').any(|p| p == format!("{k}={v}")),
                    "{k}={v} kept"
                );
            }
        }
    }
}

/// Accepted addresses are of the two forms, and format back to themselves.
pub fn daemon_address(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match DaemonAddress::parse(text) {
        Ok(a) => {
            let tokens: Vec<&str> = text.split_ascii_whitespace().collect();
            for hp in [&a.udp, &a.tcp] {
                assert!(!hp.host().is_empty() && hp.port() != 0);
            }
            match tokens.len() {
                1 => {
                    assert_eq!(a.udp, a.tcp);
                    assert_eq!(DaemonAddress::parse(&a.udp.to_string()).unwrap(), a);
                }
                2 => {
                    let prefixes: Vec<_> = (tokens.iter())
                        .map(|t| t.get(..4).map(str::to_ascii_lowercase))
                        .collect();
                    for p in &prefixes {
                        assert!(matches!(p.as_deref(), Some("udp:") | Some("tcp:")), "{p:?}");
                    }
                    assert_ne!(prefixes[0], prefixes[1], "one of each form");
                    let again = format!("udp:{} tcp:{}", a.udp, a.tcp);
                    assert_eq!(DaemonAddress::parse(&again).unwrap(), a);
                }
                n => panic!("{n} tokens accepted"),
            }
        }
        Err(e) => assert!(e.to_string().contains("AWS_XRAY_DAEMON_ADDRESS")),
    }
}

/// A value: a number or boolean, or a text (`Some`) to push as a string
/// (`false`) or as a JSON value (`true`).
fn value(u: &mut Unstructured<'_>) -> arbitrary::Result<(Value, Option<(String, bool)>)> {
    Ok(match u.int_in_range(0..=6u8)? {
        0 => (Value::I64(u.arbitrary()?), None),
        1 => (Value::U64(u.arbitrary()?), None),
        2 => (Value::F64(u.arbitrary()?), None),
        3 => (Value::Bool(u.arbitrary()?), None),
        4 => (Value::U64(0), Some((u.arbitrary()?, true))),
        5 => (Value::U64(0), Some((json_like(u)?, true))),
        _ => (Value::U64(0), Some((u.arbitrary()?, false))),
    })
}

/// A field of `name` small enough to share a [`Body::Pair`]: a number or
/// boolean, or a string of at most [`SMALL`] bytes (`Some`: it reads back as it).
fn small(
    u: &mut Unstructured<'_>,
    name: &'static str,
) -> arbitrary::Result<(Small, Option<String>)> {
    let (v, text) = value(u)?;
    Ok(match text {
        None => (Small::new(name, v).unwrap_or_else(|| unreachable!()), None),
        Some((mut t, _)) => {
            let mut end = t.len().min(SMALL);
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            t.truncate(end);
            (
                Small::text(name, &t).unwrap_or_else(|| unreachable!()),
                Some(t),
            )
        }
    })
}

/// Applies a [`Body::Pair`] of `first` and `second` to span `id`, and
/// expects what they set.
fn pair(
    c: &mut Assembler<Capture>,
    id: SegmentId,
    mine: &mut Vec<(&'static str, serde_json::Value)>,
    first: (Small, Option<String>),
    second: Option<(Small, Option<String>)>,
) {
    c.apply(&Record::new(
        id,
        Body::Pair(first.0, second.as_ref().map(|s| s.0)),
    ));
    for (f, text) in std::iter::once(first).chain(second) {
        mine.retain(|(kk, _)| *kk != f.name());
        if let Some(t) = text {
            mine.push((f.name(), serde_json::Value::String(t)));
        }
    }
}

/// A text made of JSON's tokens, so that valid and nearly valid JSON (an
/// extra comma, an unclosed list) both come up often.
fn json_like(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        " ",
        "\"a\"",
        "\"\\u00e9\\n\"",
        "0",
        "-1.5e3",
        "true",
        "null",
        "\"k\":",
        "01",
        "\"\\x\"",
    ];
    let mut text = String::new();
    for _ in 0..u.int_in_range(1..=24usize)? {
        text.push_str(TOKENS[u.choose_index(TOKENS.len())?]);
    }
    Ok(text)
}

thread_local! {
    /// One assembler per thread, cleared between inputs (allocating its
    /// buffers for every input would be most of the work).
    static DOCUMENTS: std::cell::RefCell<Assembler<Capture>> =
        std::cell::RefCell::new(Assembler::new(TableConfig::default(), Capture::default()));
    static TABLES: std::cell::RefCell<Assembler<Capture>> = std::cell::RefCell::new(Assembler::new(
        TableConfig {
            open_spans: 8,
            text_bytes: 256,
            child_buffers: 2,
        },
        Capture::default(),
    ));
}

fn with_cleared<R>(
    which: &'static std::thread::LocalKey<std::cell::RefCell<Assembler<Capture>>>,
    f: impl FnOnce(&mut Assembler<Capture>) -> R,
) -> R {
    which.with(|c| {
        let mut c = c.borrow_mut();
        c.clear();
        c.transport_mut().datagrams.clear();
        f(&mut c)
    })
}

/// Documents built from arbitrary names, keys and values are valid and
/// bounded, every span arrives exactly once, and the metadata string values
/// of a span not marked truncated read back equal.
pub fn document(data: &[u8]) {
    with_cleared(&DOCUMENTS, |c| {
        let _ = build_document(c, &mut Unstructured::new(data));
    });
}

fn build_document(c: &mut Assembler<Capture>, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let trace = TraceId::from_parts(u.arbitrary()?, u.arbitrary()?, u.arbitrary()?);
    // Fixed ids: an input runs the same way every time it is replayed.
    let facade = SegmentId::from_u64(0xfacade).unwrap_or_else(|| unreachable!());
    let spans = u.int_in_range(1..=6usize)?;
    let mut ids: Vec<SegmentId> = Vec::new();
    // Per span: the metadata values that should read back unchanged.
    let mut expect: Vec<Vec<(&'static str, serde_json::Value)>> = Vec::new();
    for i in 0..spans {
        let id = SegmentId::from_u64(i as u64 + 1).unwrap_or_else(|| unreachable!());
        let parent = if i == 0 || u.ratio(1, 3)? {
            facade
        } else {
            ids[u.choose_index(ids.len())?]
        };
        let name = NAMES[u.choose_index(NAMES.len())?];
        let kind = [Kind::Local, Kind::Aws, Kind::Remote][u.choose_index(3)?];
        c.apply(&Record::new(
            id,
            Body::Open {
                parent: Some(parent),
                trace,
                time: Ticks::from_raw(u.arbitrary()?),
                name: name.into(),
                kind,
            },
        ));
        let mut mine: Vec<(&'static str, serde_json::Value)> = Vec::new();
        let mut pending = None;
        for _ in 0..u.int_in_range(0..=40usize)? {
            let k = KEYS[u.choose_index(KEYS.len())?];
            let draw = u.int_in_range(0..=12u8)?;
            let key = match draw {
                0 => Key::Annotation(k),
                1 => Key::Aws(k),
                2 => Key::Http(HttpField::Status),
                3 => Key::Name,
                4 => Key::Exception {
                    remote: u.arbitrary()?,
                },
                5 => Key::ExceptionType,
                6 => Key::Flags,
                7 => Key::Sql(
                    [SqlField::Url, SqlField::User, SqlField::SanitizedQuery][u.choose_index(3)?],
                ),
                8 => Key::Remote,
                9 => Key::Http(
                    [
                        HttpField::ClientIp,
                        HttpField::UserAgent,
                        HttpField::XForwardedFor,
                    ][u.choose_index(3)?],
                ),
                10 => {
                    [Key::Traced, Key::ServiceVersion, Key::User, Key::Origin][u.choose_index(4)?]
                }
                _ => Key::Metadata(k),
            };
            if draw == 12 {
                // Drawn 12: a small field, two to a record as the layer sends
                // a plain span's (the same bytes as any field, read as one).
                let field = small(u, k)?;
                match pending.take() {
                    Some(first) => pair(c, id, &mut mine, first, Some(field)),
                    None => pending = Some(field),
                }
                continue;
            }
            // Any other record: a small field waiting goes first, alone.
            if let Some(first) = pending.take() {
                pair(c, id, &mut mine, first, None);
            }
            let (v, text) = value(u)?;
            match text {
                Some((s, json)) => {
                    if json {
                        Record::split_json(id, key, &s, |r| c.apply(&r));
                    } else {
                        Record::split_str(id, key, &s, |r| c.apply(&r));
                    }
                    if let Key::Metadata(k) = key {
                        mine.retain(|(kk, _)| *kk != k);
                        // A JSON text goes in as it is exactly when serde_json
                        // reads it (and it was not cut); as a string otherwise.
                        let expected = match serde_json::from_str(&s) {
                            Ok(parsed) if json && s.len() <= MAX_VALUE_BYTES => parsed,
                            _ => serde_json::Value::String(s),
                        };
                        mine.push((k, expected));
                    }
                }
                None => {
                    c.apply(&Record::new(id, Body::Attr { key, value: v }));
                    if let Key::Metadata(k) = key {
                        mine.retain(|(kk, _)| *kk != k);
                    }
                }
            }
        }
        if let Some(last) = pending {
            pair(c, id, &mut mine, last, None);
        }
        ids.push(id);
        expect.push(mine);
    }
    for id in ids.iter().rev() {
        c.apply(&Record::new(
            *id,
            Body::Close {
                time: Ticks::from_raw(u.arbitrary()?),
            },
        ));
    }
    c.finish();
    let datagrams = std::mem::take(&mut c.transport_mut().datagrams);
    let mut seen = vec![0u32; spans];
    for d in &datagrams {
        let doc = check_datagram(d);
        for e in xray_testkit::entities(std::slice::from_ref(&doc)) {
            let Some(i) = ids.iter().position(|id| e["id"] == id.to_string()) else {
                panic!("unknown id in {e}");
            };
            seen[i] += 1;
            if e["metadata"].get("xray_emitter").is_some() {
                continue; // something was cut: values may be shortened
            }
            for (k, v) in &expect[i] {
                assert_eq!(&e["metadata"]["default"][*k], v, "metadata {k:?}");
            }
        }
    }
    assert!(
        seen.iter().all(|&n| n == 1),
        "every span arrives once: {seen:?}"
    );
    Ok(())
}

/// Arbitrary record sequences (closes without opens, duplicate ids, records
/// after close, missing closes, id reuse, lost or repeated chunks) never
/// panic, never hold more spans than the table has room for, and every
/// document sent is valid.
pub fn span_table(data: &[u8]) {
    with_cleared(&TABLES, |c| {
        let _ = drive_table(c, &mut Unstructured::new(data));
        for d in &c.transport_mut().datagrams {
            check_datagram(d);
        }
    });
}

thread_local! {
    /// An assembler writing OTLP, with room for spans big enough to fill
    /// datagrams.
    static OTLP_TABLES: std::cell::RefCell<Assembler<Capture>> = std::cell::RefCell::new(
        Assembler::with_format(
            TableConfig {
                open_spans: 8,
                text_bytes: 16 * 1024,
                child_buffers: 2,
            },
            &xray_emitter::Format::OtlpUdp(xray_emitter::Resource::new(
                &[("service.name", "fuzz"), ("naïve\"key", "😀")],
                "xray-fuzz",
                "0",
            )),
            Capture::default(),
        )
    );
}

/// The same record sequences as [`span_table`], written as OTLP: every
/// datagram is within the limit and decodes, with the official protobuf
/// types, into spans with well-formed ids.
pub fn otlp(data: &[u8]) {
    with_cleared(&OTLP_TABLES, |c| {
        let _ = drive_table(c, &mut Unstructured::new(data));
        for d in &c.transport_mut().datagrams {
            assert!(
                d.len() <= xray_emitter::testing::DATAGRAM_MAX,
                "{} bytes",
                d.len()
            );
            let (_, request) = xray_testkit::otlp::decode_any(d);
            for span in xray_testkit::otlp::spans(&[request]) {
                assert_eq!(span.trace_id.len(), 16);
                assert_eq!(span.span_id.len(), 8);
                assert!(span.parent_span_id.is_empty() || span.parent_span_id.len() == 8);
                assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
            }
        }
    });
}

/// The table size `TABLES` is made with.
const TABLE_SPANS: usize = 8;

fn drive_table(c: &mut Assembler<Capture>, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let id = |n: u8| SegmentId::from_u64(u64::from(n % 16) + 1).unwrap_or_else(|| unreachable!());
    while !u.is_empty() {
        let span = id(u.arbitrary()?);
        match u.int_in_range(0..=9u8)? {
            0 | 1 => {
                let parent = if u.arbitrary()? {
                    Some(id(u.arbitrary()?))
                } else {
                    None
                };
                let name = NAMES[u.choose_index(NAMES.len())?];
                let kind =
                    [Kind::Segment, Kind::Local, Kind::Aws, Kind::Remote][u.choose_index(4)?];
                c.apply(&Record::new(
                    span,
                    Body::Open {
                        parent,
                        trace: TraceId::from_parts(1, 2, u.arbitrary()?),
                        time: Ticks::from_raw(u.arbitrary()?),
                        name: name.into(),
                        kind,
                    },
                ));
            }
            2 => c.apply(&Record::new(
                span,
                Body::EndTrace {
                    trace: TraceId::from_parts(1, 2, u.arbitrary()?),
                },
            )),
            3 => {
                let k = KEYS[u.choose_index(KEYS.len())?];
                let (v, text) = value(u)?;
                let key = if u.arbitrary()? {
                    Key::Annotation(k)
                } else {
                    Key::Metadata(k)
                };
                match text {
                    Some((s, json)) => {
                        let mut records = Vec::new();
                        if json {
                            Record::split_json(span, key, &s, |r| records.push(r));
                        } else {
                            Record::split_str(span, key, &s, |r| records.push(r));
                        }
                        // Lose, repeat or keep each continuation.
                        for (i, r) in records.iter().enumerate() {
                            match if i == 0 { 0 } else { u.int_in_range(0..=3u8)? } {
                                1 => {}
                                2 => {
                                    c.apply(r);
                                    c.apply(r);
                                }
                                _ => c.apply(r),
                            }
                        }
                    }
                    // A plain span's number travels in a pair (alone here).
                    None => match key {
                        Key::Metadata(k) => {
                            let small = Small::new(k, v).unwrap_or_else(|| unreachable!());
                            c.apply(&Record::new(span, Body::Pair(small, None)))
                        }
                        _ => c.apply(&Record::new(span, Body::Attr { key, value: v })),
                    },
                }
            }
            4 | 5 => c.apply(&Record::new(
                span,
                Body::Close {
                    time: Ticks::from_raw(u.arbitrary()?),
                },
            )),
            6 => c.apply(&Record::new(
                span,
                Body::EndTrace {
                    trace: TraceId::from_parts(1, 2, u.arbitrary()?),
                },
            )),
            7 => {
                // A deadline now or far off, then the check the sender makes
                // after every step.
                let at = if u.arbitrary()? { 0 } else { u64::MAX };
                c.apply(&Record::new(
                    span,
                    Body::Deadline {
                        trace: TraceId::from_parts(1, 2, u.arbitrary()?),
                        at,
                    },
                ));
                c.report_deadlines();
            }
            // Unsampled: never in an X-Ray document, a `T1U` datagram in OTLP.
            8 => c.apply(&Record::new(
                span,
                Body::Attr {
                    key: Key::Unsampled,
                    value: Value::Bool(true),
                },
            )),
            _ => c.send(),
        }
        assert!(c.open_spans() <= TABLE_SPANS, "the table never grows");
    }
    c.finish();
    Ok(())
}
