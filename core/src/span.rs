//! What the sender knows about one open span.
//!
//! Every slot is allocated once, with a fixed text capacity, and reused: a
//! span that records more fields or longer strings than its slot holds keeps
//! what fits and is marked truncated, so a hostile field count or length costs
//! a bounded amount of memory and never an allocation.

use arrayvec::ArrayVec;

use crate::id::{SegmentId, TraceId};
use crate::record::{Chunk, Key, Kind, Value};

/// Fields kept per span.
pub const MAX_ATTRS: usize = 32;

/// A field value as the sender keeps it: numbers inline, strings in the slot's text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Stored {
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Text { start: u32, len: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Attr {
    pub(crate) key: Key,
    pub(crate) value: Stored,
}

/// Where the bytes of a string still arriving in `More` records go.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// Index into `attrs`, or `None` for the name.
    attr: Option<usize>,
    offset: usize,
    total: usize,
}

#[derive(Debug)]
pub(crate) struct Span {
    pub(crate) id: SegmentId,
    pub(crate) parent: Option<SegmentId>,
    pub(crate) trace: Option<TraceId>,
    pub(crate) kind: Kind,
    pub(crate) name: &'static str,
    name_text: Option<(u32, u32)>,
    pub(crate) start: u64,
    pub(crate) flags: u64,
    pub(crate) attrs: ArrayVec<Attr, MAX_ATTRS>,
    text: Vec<u8>,
    pending: Option<Pending>,
    /// Something was left out: a field over capacity, a cut value, a lost chunk.
    pub(crate) lost: bool,
    /// Index of the buffer holding closed children, if any.
    pub(crate) children: Option<usize>,
    /// Open order, for evicting the oldest span from a full table.
    pub(crate) seq: u64,
}

impl Span {
    pub(crate) fn with_capacity(text: usize) -> Self {
        Span {
            id: SegmentId::from_u64(1).unwrap_or_else(|| unreachable!()),
            parent: None,
            trace: None,
            kind: Kind::Local,
            name: "",
            name_text: None,
            start: 0,
            flags: 0,
            attrs: ArrayVec::new(),
            text: Vec::with_capacity(text),
            pending: None,
            lost: false,
            children: None,
            seq: 0,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn reset(
        &mut self,
        id: SegmentId,
        parent: Option<SegmentId>,
        trace: Option<TraceId>,
        kind: Kind,
        name: &'static str,
        start: u64,
        seq: u64,
    ) {
        self.id = id;
        self.parent = parent;
        self.trace = trace;
        self.kind = kind;
        self.name = name;
        self.name_text = None;
        self.start = start;
        self.flags = 0;
        self.attrs.clear();
        self.text.clear();
        self.pending = None;
        self.lost = false;
        self.children = None;
        self.seq = seq;
    }

    /// The name: a run-time override if one was recorded, else the static one.
    pub(crate) fn name(&self) -> &str {
        match self.name_text {
            Some((start, len)) => self.text(start, len),
            None => self.name,
        }
    }

    /// A stored string: the valid UTF-8 prefix of its bytes (a value whose
    /// last chunk was lost may end inside a character).
    pub(crate) fn text(&self, start: u32, len: u32) -> &str {
        let bytes = self
            .text
            .get(start as usize..(start as usize).saturating_add(len as usize))
            .unwrap_or_default();
        match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
        }
    }

    /// Applies a field.
    pub(crate) fn set(&mut self, key: Key, value: &Value) {
        self.finish_pending();
        let stored = match *value {
            Value::I64(v) => Stored::I64(v),
            Value::U64(v) => Stored::U64(v),
            Value::F64(v) => Stored::F64(v),
            Value::Bool(v) => Stored::Bool(v),
            Value::Str(inline) => {
                if inline.cut() {
                    self.lost = true;
                }
                let Some(start) = self.append(inline.bytes()) else {
                    self.lost = true;
                    return;
                };
                let len = inline.bytes().len();
                if inline.total() > len {
                    self.pending = Some(Pending {
                        attr: None,
                        offset: len,
                        total: inline.total(),
                    });
                }
                Stored::Text {
                    start,
                    len: len as u32,
                }
            }
        };
        match key {
            Key::Flags => {
                if let Stored::U64(bits) = stored {
                    self.flags |= bits;
                }
                self.pending = None;
            }
            Key::Name => match stored {
                Stored::Text { start, len } => self.name_text = Some((start, len)),
                _ => self.pending = None,
            },
            _ => {
                let repeatable = matches!(key, Key::Exception { .. } | Key::ExceptionType);
                let existing = if repeatable {
                    None
                } else {
                    self.attrs.iter().position(|a| same_key(a.key, key))
                };
                let index = match existing {
                    Some(i) => {
                        self.attrs[i].value = stored;
                        i
                    }
                    None => {
                        if self.attrs.try_push(Attr { key, value: stored }).is_err() {
                            self.lost = true;
                            self.pending = None;
                            return;
                        }
                        self.attrs.len() - 1
                    }
                };
                if let Some(p) = &mut self.pending {
                    p.attr = Some(index);
                }
            }
        }
    }

    /// Appends the continuation of the latest string value.
    pub(crate) fn more(&mut self, chunk: &Chunk) {
        let Some(mut p) = self.pending else {
            self.lost = true;
            return;
        };
        if chunk.offset() != p.offset {
            // A chunk went missing: keep what arrived in order.
            self.lost = true;
            self.pending = None;
            return;
        }
        let room = self.text.capacity() - self.text.len();
        let bytes = chunk.bytes();
        let take = bytes.len().min(room);
        self.text.extend_from_slice(&bytes[..take]);
        let grow = |len: &mut u32| *len += take as u32;
        match p.attr {
            Some(i) => {
                if let Some(Attr {
                    value: Stored::Text { len, .. },
                    ..
                }) = self.attrs.get_mut(i)
                {
                    grow(len);
                }
            }
            None => {
                if let Some((_, len)) = &mut self.name_text {
                    grow(len);
                }
            }
        }
        p.offset += bytes.len();
        if take < bytes.len() {
            self.lost = true;
            self.pending = None;
        } else if p.offset >= p.total {
            self.pending = None;
        } else {
            self.pending = Some(p);
        }
    }

    /// A value still waiting for chunks is complete as far as it got.
    pub(crate) fn finish_pending(&mut self) {
        if self.pending.take().is_some() {
            self.lost = true;
        }
    }

    fn append(&mut self, bytes: &[u8]) -> Option<u32> {
        if self.text.capacity() - self.text.len() < bytes.len() {
            return None;
        }
        let start = self.text.len() as u32;
        self.text.extend_from_slice(bytes);
        Some(start)
    }
}

fn same_key(a: Key, b: Key) -> bool {
    match (a, b) {
        (Key::Annotation(x), Key::Annotation(y))
        | (Key::Metadata(x), Key::Metadata(y))
        | (Key::Aws(x), Key::Aws(y)) => x == y,
        _ => a == b,
    }
}
