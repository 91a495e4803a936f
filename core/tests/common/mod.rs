//! Test support shared by the core and layer tests: a UDP socket on
//! `127.0.0.1:0` standing in for the daemon, and a checker that validates
//! every datagram against the X-Ray segment schema with a real validator.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const HEADER: &[u8] = b"{\"format\":\"json\",\"version\":1}\n";
pub const DATAGRAM_MAX: usize = 64_512;

/// Receives datagrams on loopback until dropped.
pub struct Daemon {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::bind("127.0.0.1:0".parse().unwrap()).expect("bind loopback")
    }

    /// A daemon on `addr` (a port a test freed, to bring the daemon back).
    pub fn bind(addr: SocketAddr) -> std::io::Result<Daemon> {
        let socket = UdpSocket::bind(addr)?;
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(8 << 20);
        let addr = socket.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (received.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let mut buf = vec![0u8; 70_000];
            while !s.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    r.lock().unwrap().push(buf[..n].to_vec());
                }
            }
        });
        Ok(Daemon {
            addr,
            received,
            stop,
            handle: Some(handle),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every datagram received so far (and forgets them).
    pub fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.received.lock().unwrap())
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Waits until `pred` holds for the datagrams received so far, or panics after `timeout`.
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&[Vec<u8>]) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.received.lock().unwrap()) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for datagrams");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until `spans` entities have arrived (nested ones included), then
    /// returns every document, each checked.
    pub fn documents_with_spans(&self, spans: usize, timeout: Duration) -> Vec<Value> {
        self.wait_until(timeout, |d| {
            d.iter().map(|d| count_spans(&check(d))).sum::<usize>() >= spans
        });
        // Give stragglers a moment, then take everything.
        std::thread::sleep(Duration::from_millis(20));
        self.take().iter().map(|d| check(d)).collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct Validators {
    segment: jsonschema::Validator,
    subsegment: jsonschema::Validator,
    name: jsonschema::Validator,
}

fn validators() -> &'static Validators {
    static V: OnceLock<Validators> = OnceLock::new();
    V.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../core/data/segment-schema.json"
        );
        let text = std::fs::read_to_string(path).expect("segment schema");
        let schema: Value = serde_json::from_str(&text).unwrap();
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
            subsegment: jsonschema::draft4::new(&subsegment).expect("subsegment schema compiles"),
            name: jsonschema::draft4::new(&name).expect("name pattern compiles"),
        }
    })
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Checks one datagram against the wire contract and returns its document:
/// the exact header, exactly one JSON document, at most 64,512 bytes, valid
/// against the segment (or subsegment) schema, and the rules the schema
/// leaves out (ids, trace ids, times, names of nested entities, required
/// fields of independent subsegments).
pub fn check(datagram: &[u8]) -> Value {
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
    let v = validators();
    let independent = doc.get("type").and_then(Value::as_str) == Some("subsegment");
    let errs = if independent {
        assert!(
            doc.get("trace_id").is_some(),
            "independent subsegment without trace_id: {doc}"
        );
        assert!(
            doc.get("parent_id").is_some(),
            "independent subsegment without parent_id: {doc}"
        );
        errors(&v.subsegment, &doc)
    } else {
        errors(&v.segment, &doc)
    };
    assert!(errs.is_empty(), "schema errors {errs:?} in {doc}");
    walk(&doc, &mut |e| check_entity(e));
    check_time_text(body);
    doc
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

fn check_entity(e: &Value) {
    let name = e["name"].as_str().expect("name");
    let errs = errors(&validators().name, &e["name"]);
    assert!(errs.is_empty(), "name {name:?}: {errs:?}");
    assert!(name.chars().count() <= 200);
    let id = e["id"].as_str().expect("id");
    assert!(is_hex(id, 16) && id != "0000000000000000", "id {id}");
    for key in ["parent_id"] {
        if let Some(p) = e.get(key) {
            assert!(is_hex(p.as_str().unwrap(), 16), "{key} {p}");
        }
    }
    if let Some(t) = e.get("trace_id") {
        let t = t.as_str().unwrap();
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
        (Some(end), None) => assert!(end.as_f64().unwrap() >= start, "end before start: {e}"),
        (None, Some(Value::Bool(true))) => {}
        other => panic!("needs end_time xor in_progress: {other:?} in {e}"),
    }
    if let Some(Value::Object(m)) = e.get("metadata") {
        assert!(
            m.keys().all(|k| !k.starts_with("AWS.")),
            "reserved metadata namespace"
        );
    }
    if let Some(Value::Object(c)) = e.get("cause") {
        for ex in c["exceptions"].as_array().unwrap() {
            assert!(is_hex(ex["id"].as_str().unwrap(), 16));
        }
    }
}

/// Times in the text have exactly six fraction digits.
fn check_time_text(body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    for key in ["\"start_time\":", "\"end_time\":"] {
        for (i, _) in text.match_indices(key) {
            let rest = &text[i + key.len()..];
            let num: String = rest
                .chars()
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
    pub name: String,
    pub id: String,
    pub parent: String,
    pub trace: String,
}

/// Every complete entity of `docs`, placed; in-progress reports left out.
/// Nested or sent on its own, a span placed the same way is the same span.
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

/// A transport that holds the sender thread, inside its step, until the
/// gate opens: records pile up in the rings meanwhile, to be read in one go.
pub struct Gate {
    pub open: Arc<(Mutex<bool>, std::sync::Condvar)>,
    pub socket: xray_emitter::testing::DaemonSocket,
}

impl Gate {
    /// Opens the gate.
    pub fn release(open: &(Mutex<bool>, std::sync::Condvar)) {
        *open.0.lock().unwrap() = true;
        open.1.notify_all();
    }
}

impl xray_emitter::testing::Transport for Gate {
    fn send(&mut self, datagrams: &[&[u8]]) -> xray_emitter::testing::Sent {
        let (lock, cv) = &*self.open;
        let mut open = lock.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
        drop(open);
        self.socket.send(datagrams)
    }
}

pub mod spans {
    //! Producing records the way a binding would.
    use xray_emitter::{
        Body, Emitter, EmitterGuard, Key, Kind, Record, SegmentId, TraceId, Value, clock,
    };

    use super::Daemon;

    /// An emitter sending to `daemon`, quiet about send errors.
    pub fn emitter(daemon: &Daemon) -> (Emitter, EmitterGuard) {
        Emitter::builder()
            .daemon(daemon.addr())
            .report_errors(false)
            .start()
            .expect("emitter starts")
    }

    pub fn open(
        e: &Emitter,
        id: SegmentId,
        trace: TraceId,
        parent: Option<SegmentId>,
        name: &'static str,
        kind: Kind,
    ) -> bool {
        e.push(Record::new(
            id,
            Body::Open {
                parent,
                trace,
                time: clock::now(),
                name: name.into(),
                kind,
            },
        ))
    }

    /// Opens a top-level subsegment of `trace` under the upstream `parent`.
    pub fn open_top(
        e: &Emitter,
        id: SegmentId,
        trace: TraceId,
        parent: SegmentId,
        name: &'static str,
        kind: Kind,
    ) -> bool {
        open(e, id, trace, Some(parent), name, kind)
    }

    pub fn attr(e: &Emitter, id: SegmentId, key: Key, value: Value) -> bool {
        e.push(Record::new(id, Body::Attr { key, value }))
    }

    pub fn close(e: &Emitter, id: SegmentId) -> bool {
        e.push(Record::new(id, Body::Close { time: clock::now() }))
    }
}
