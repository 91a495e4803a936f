//! Producing records the way a binding would.

use xray_emitter::{
    Body, Emitter, EmitterGuard, Key, Kind, Record, SegmentId, TraceId, Value, clock,
};

use crate::Daemon;

/// An emitter sending to `daemon`, quiet about send errors.
pub fn emitter(daemon: &Daemon) -> (Emitter, EmitterGuard) {
    Emitter::builder()
        .daemon(daemon.addr())
        .report_errors(false)
        .start()
        .expect("emitter starts")
}

/// Opens span `id` of `trace` under `parent`.
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

/// A field of span `id`.
pub fn attr(e: &Emitter, id: SegmentId, key: Key, value: Value) -> bool {
    e.push(Record::new(id, Body::Attr { key, value }))
}

/// Closes span `id` now.
pub fn close(e: &Emitter, id: SegmentId) -> bool {
    e.push(Record::new(id, Body::Close { time: clock::now() }))
}
