//! The wire contract, checked: one datagram at a time, and the spans a set
//! of documents places where.

use serde_json::Value;
use xray_emitter::testing;

/// The daemon's header line.
pub const HEADER: &[u8] = testing::HEADER;
/// The largest datagram the daemon reads whole.
pub const DATAGRAM_MAX: usize = testing::DATAGRAM_MAX;

/// The rules of one datagram that need no schema: the exact header, exactly
/// one JSON object, at most 64,512 bytes, ids and trace ids in X-Ray's
/// formats, times with six fraction digits and an end no earlier than the
/// start, names in X-Ray's character set, annotation keys `[A-Za-z0-9_]`, no
/// `AWS.` metadata, and a top-level entity that says where it belongs.
/// Returns the document. (Cheap enough to run per fuzz input.)
pub fn check_rules(datagram: &[u8]) -> Value {
    assert!(
        datagram.len() <= DATAGRAM_MAX,
        "datagram of {} bytes",
        datagram.len()
    );
    assert!(
        datagram.starts_with(HEADER),
        "header missing: {:?}",
        String::from_utf8_lossy(&datagram[..datagram.len().min(60)])
    );
    let body = &datagram[HEADER.len()..];
    let doc: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "not exactly one JSON document ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    assert!(doc.is_object(), "document is not an object");
    assert!(
        doc["trace_id"].is_string(),
        "top level without trace_id: {doc}"
    );
    if doc.get("type").and_then(Value::as_str) == Some("subsegment") {
        assert!(
            doc["parent_id"].is_string(),
            "independent subsegment without parent_id: {doc}"
        );
    }
    walk(&doc, &mut check_entity);
    check_time_text(body);
    doc
}

/// [`check_rules`], and the document valid against X-Ray's segment schema
/// (or, sent on its own, the subsegment schema), with a real validator.
#[cfg(feature = "schema")]
pub fn check(datagram: &[u8]) -> Value {
    let doc = check_rules(datagram);
    let v = schema::validators();
    let independent = doc.get("type").and_then(Value::as_str) == Some("subsegment");
    let errs = schema::errors(
        if independent {
            &v.subsegment
        } else {
            &v.segment
        },
        &doc,
    );
    assert!(errs.is_empty(), "schema errors {errs:?} in {doc}");
    walk(&doc, &mut |e| {
        let errs = schema::errors(&v.name, &e["name"]);
        assert!(errs.is_empty(), "name {}: {errs:?}", e["name"]);
    });
    doc
}

/// Without the schema: the rules alone.
#[cfg(not(feature = "schema"))]
pub fn check(datagram: &[u8]) -> Value {
    check_rules(datagram)
}

#[cfg(feature = "schema")]
mod schema {
    use std::sync::OnceLock;

    use serde_json::Value;

    pub(super) struct Validators {
        pub(super) segment: jsonschema::Validator,
        pub(super) subsegment: jsonschema::Validator,
        pub(super) name: jsonschema::Validator,
    }

    /// The schema of `core/data`, a byte-identical copy of the one in shared/xray.
    const SCHEMA: &str = include_str!("../../data/segment-schema.json");

    pub(super) fn validators() -> &'static Validators {
        static V: OnceLock<Validators> = OnceLock::new();
        V.get_or_init(|| {
            let schema: Value = serde_json::from_str(SCHEMA).expect("segment schema");
            let subsegment = serde_json::json!({
                "$schema": "http://json-schema.org/draft-04/schema#",
                "definitions": schema["definitions"].clone(),
                "allOf": [{"$ref": "#/definitions/subsegment"}],
            });
            let name = serde_json::json!({
                "$schema": "http://json-schema.org/draft-04/schema#",
                "type": "string",
                "pattern": schema["properties"]["name"]["pattern"].clone(),
            });
            Validators {
                segment: jsonschema::draft4::new(&schema).expect("segment schema compiles"),
                subsegment: jsonschema::draft4::new(&subsegment)
                    .expect("subsegment schema compiles"),
                name: jsonschema::draft4::new(&name).expect("name pattern compiles"),
            }
        })
    }

    pub(super) fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
        v.iter_errors(doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

fn check_entity(e: &Value) {
    let name = e["name"].as_str().expect("name");
    assert!(
        !name.is_empty() && name.chars().count() <= testing::MAX_NAME_CHARS,
        "name {name:?}"
    );
    assert!(name.chars().all(testing::is_name_char), "name {name:?}");
    let id = e["id"].as_str().expect("id");
    assert!(is_hex(id, 16) && id != "0000000000000000", "id {id}");
    if let Some(p) = e.get("parent_id") {
        assert!(p.as_str().is_some_and(|p| is_hex(p, 16)), "parent_id {p}");
    }
    if let Some(t) = e.get("trace_id") {
        let t = t.as_str().expect("trace_id is a string");
        assert!(
            t.len() == 35
                && t.starts_with("1-")
                && is_hex(&t[2..10], 8)
                && &t[10..11] == "-"
                && is_hex(&t[11..], 24),
            "trace_id {t}"
        );
    }
    let start = e["start_time"].as_f64().expect("start_time");
    match (e.get("end_time"), e.get("in_progress")) {
        (Some(end), None) => assert!(
            end.as_f64().expect("a number") >= start,
            "end before start: {e}"
        ),
        (None, Some(Value::Bool(true))) => {}
        other => panic!("needs end_time xor in_progress: {other:?} in {e}"),
    }
    if let Some(Value::Object(m)) = e.get("metadata") {
        assert!(
            m.keys().all(|k| !k.starts_with("AWS.")),
            "reserved metadata namespace"
        );
    }
    if let Some(Value::Object(a)) = e.get("annotations") {
        for (k, v) in a {
            assert!(
                !k.is_empty()
                    && k.len() <= 500
                    && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'),
                "annotation key {k:?}"
            );
            assert!(v.is_string() || v.is_number() || v.is_boolean());
        }
    }
    if let Some(Value::Object(c)) = e.get("cause") {
        for ex in c["exceptions"].as_array().expect("exceptions") {
            assert!(ex["id"].as_str().is_some_and(|id| is_hex(id, 16)));
        }
    }
}

/// Times in the text have exactly six fraction digits.
fn check_time_text(body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    for key in ["\"start_time\":", "\"end_time\":"] {
        for (i, _) in text.match_indices(key) {
            let num: String = (text[i + key.len()..].chars())
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let (secs, frac) = num
                .split_once('.')
                .unwrap_or_else(|| panic!("time without fraction: {num}"));
            assert!(!secs.is_empty() && frac.len() == 6, "time {num}");
        }
    }
}

/// Calls `f` on the document and every nested subsegment.
pub fn walk(doc: &Value, f: &mut impl FnMut(&Value)) {
    f(doc);
    if let Some(Value::Array(kids)) = doc.get("subsegments") {
        for k in kids {
            walk(k, f);
        }
    }
}

/// Entities in a document, nested ones included (in-progress reports excluded).
pub fn count_spans(doc: &Value) -> usize {
    let mut n = 0;
    walk(doc, &mut |e| {
        if e.get("in_progress").is_none() {
            n += 1
        }
    });
    n
}

/// Every entity of every document, flattened.
pub fn entities(docs: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for d in docs {
        walk(d, &mut |e| out.push(e.clone()));
    }
    out
}

/// One complete entity with where it sits: its name, id, parent id (its own
/// `parent_id`, or the entity it is nested in) and trace id (its own, or
/// that of the document it travels in).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Placed {
    /// `name`.
    pub name: String,
    /// `id`.
    pub id: String,
    /// `parent_id`, or the id of the entity it is nested in.
    pub parent: String,
    /// `trace_id`, or that of the document it travels in.
    pub trace: String,
}

/// Every complete entity of `docs`, placed, sorted; in-progress reports left
/// out. Nested or sent on its own, a span placed the same way is the same span.
pub fn placed(docs: &[Value]) -> Vec<Placed> {
    fn go(e: &Value, parent: &str, trace: &str, out: &mut Vec<Placed>) {
        let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_owned);
        let parent = text("parent_id").unwrap_or_else(|| parent.to_owned());
        let trace = text("trace_id").unwrap_or_else(|| trace.to_owned());
        let id = text("id").unwrap_or_default();
        if e.get("in_progress").is_none() {
            out.push(Placed {
                name: text("name").unwrap_or_default(),
                id: id.clone(),
                parent,
                trace: trace.clone(),
            });
        }
        if let Some(Value::Array(kids)) = e.get("subsegments") {
            for k in kids {
                go(k, &id, &trace, out);
            }
        }
    }
    let mut out = Vec::new();
    for d in docs {
        go(d, "", "", &mut out);
    }
    out.sort();
    out
}
