//! What the sender knows about one open span.
//!
//! Every slot is allocated once, with a fixed text capacity, and reused: a
//! span that records more fields or longer strings than its slot holds keeps
//! what fits and is marked truncated, so a hostile field count or length costs
//! a bounded amount of memory and never an allocation. String bytes arrive in
//! pieces that may split a character; each byte is validated once, as it
//! arrives, so the text is a `String` and reading it back costs nothing.

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
    /// Text of the slot; `json` for a [`Value::Json`] to write as it is (if valid).
    Text {
        start: u32,
        len: u32,
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Attr {
    pub(crate) key: Key,
    pub(crate) value: Stored,
}

/// A string value still arriving in `More` records.
#[derive(Clone, Debug)]
struct Pending {
    /// Index into `attrs`, or `None` for the name.
    attr: Option<usize>,
    /// Bytes of the value received so far.
    offset: usize,
    total: usize,
    /// The start of a character split by a chunk boundary.
    carry: ArrayVec<u8, 4>,
}

#[derive(Debug)]
pub(crate) struct Span {
    pub(crate) id: SegmentId,
    pub(crate) parent: Option<SegmentId>,
    pub(crate) trace: TraceId,
    pub(crate) kind: Kind,
    pub(crate) name: &'static str,
    name_text: Option<(u32, u32)>,
    pub(crate) start: u64,
    pub(crate) flags: u64,
    /// Attempts counted with `Key::Attempt`.
    pub(crate) attempts: u32,
    pub(crate) attrs: ArrayVec<Attr, MAX_ATTRS>,
    text: String,
    pending: Option<Pending>,
    /// Something was left out: a field over capacity, a cut value, a lost chunk.
    pub(crate) truncated: bool,
    /// Index of the buffer holding closed children, if any.
    pub(crate) children: Option<crate::children::BufferId>,
    /// Open order, for evicting the oldest span from a full table.
    pub(crate) seq: u64,
    /// False once [`Key::Unsampled`] was recorded.
    pub(crate) sampled: bool,
}

impl Span {
    pub(crate) fn with_capacity(text: usize) -> Self {
        Span {
            id: SegmentId::from_u64(1).unwrap_or_else(|| unreachable!()),
            parent: None,
            trace: TraceId::from_parts(1, 0, 0),
            kind: Kind::Local,
            name: "",
            name_text: None,
            start: 0,
            flags: 0,
            attempts: 0,
            attrs: ArrayVec::new(),
            text: String::with_capacity(text),
            pending: None,
            truncated: false,
            children: None,
            seq: 0,
            sampled: true,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn reset(
        &mut self,
        id: SegmentId,
        parent: Option<SegmentId>,
        trace: TraceId,
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
        self.attempts = 0;
        self.attrs.clear();
        self.text.clear();
        self.pending = None;
        self.truncated = false;
        self.sampled = true;
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

    /// A stored string.
    pub(crate) fn text(&self, start: u32, len: u32) -> &str {
        let (start, end) = (start as usize, start as usize + len as usize);
        self.text.get(start..end).unwrap_or_default()
    }

    /// Applies a field.
    pub(crate) fn set(&mut self, key: Key, value: &Value) {
        self.finish_pending();
        match (key, value) {
            // Counters, whatever their value says: nothing to store as text.
            (Key::Attempt, _) => {
                self.attempts = self.attempts.saturating_add(1);
                return;
            }
            (Key::Flags, Value::U64(bits)) => {
                self.flags |= bits;
                return;
            }
            (Key::Flags, _) => return,
            (Key::Remote, _) => {
                if self.kind == Kind::Local {
                    self.kind = Kind::Remote;
                }
                return;
            }
            (Key::Unsampled, _) => {
                self.sampled = false;
                return;
            }
            _ => {}
        }
        let stored = match *value {
            Value::I64(v) => Stored::I64(v),
            Value::U64(v) => Stored::U64(v),
            Value::F64(v) => Stored::F64(v),
            Value::Bool(v) => Stored::Bool(v),
            Value::Str(inline) | Value::Json(inline) => {
                if inline.cut() {
                    self.truncated = true;
                }
                let start = self.text.len() as u32;
                let mut carry = ArrayVec::new();
                let complete = self.append(&mut carry, inline.bytes());
                if !complete {
                    // No room left (or not UTF-8): the value is cut, say so.
                    self.truncated = true;
                }
                let received = inline.bytes().len();
                if received < inline.total() && complete {
                    self.pending = Some(Pending {
                        attr: None,
                        offset: received,
                        total: inline.total(),
                        carry,
                    });
                } else if !carry.is_empty() {
                    // The value ended inside a character.
                    self.truncated = true;
                }
                Stored::Text {
                    start,
                    len: self.text.len() as u32 - start,
                    json: matches!(value, Value::Json(_)),
                }
            }
        };
        match key {
            Key::Name => match stored {
                Stored::Text { start, len, .. } => self.name_text = Some((start, len)),
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
                            self.truncated = true;
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
        let Some(mut p) = self.pending.take() else {
            self.truncated = true;
            return;
        };
        if chunk.offset() != p.offset {
            // A chunk went missing: keep what arrived in order.
            self.truncated = true;
            return;
        }
        let before = self.text.len();
        let complete = self.append(&mut p.carry, chunk.bytes());
        let grown = (self.text.len() - before) as u32;
        match p.attr {
            Some(i) => {
                if let Some(Attr {
                    value: Stored::Text { len, .. },
                    ..
                }) = self.attrs.get_mut(i)
                {
                    *len += grown;
                }
            }
            None => {
                if let Some((_, len)) = &mut self.name_text {
                    *len += grown;
                }
            }
        }
        p.offset += chunk.bytes().len();
        if !complete {
            self.truncated = true;
        } else if p.offset < p.total {
            self.pending = Some(p);
        } else if !p.carry.is_empty() {
            self.truncated = true;
        }
    }

    /// A value still waiting for chunks is complete as far as it got.
    pub(crate) fn finish_pending(&mut self) {
        if self.pending.take().is_some() {
            self.truncated = true;
        }
    }

    /// Appends the valid UTF-8 in `carry` + `bytes` that fits; a character
    /// split at the end is left in `carry`. Returns `false` if anything had
    /// to be left out (no room, or bytes that are not UTF-8), after which the
    /// value takes no more bytes.
    fn append(&mut self, carry: &mut ArrayVec<u8, 4>, mut bytes: &[u8]) -> bool {
        while !carry.is_empty() && !bytes.is_empty() {
            let _ = carry.try_push(bytes[0]);
            bytes = &bytes[1..];
            match std::str::from_utf8(carry) {
                Ok(c) => {
                    let c = c.chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
                    carry.clear();
                    if !self.push(c) {
                        return false;
                    }
                }
                Err(e) if e.error_len().is_some() || carry.is_full() => {
                    carry.clear();
                    return false;
                }
                Err(_) => {}
            }
        }
        let (valid, rest) = match std::str::from_utf8(bytes) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (head, tail) = bytes.split_at(e.valid_up_to());
                if e.error_len().is_some() {
                    self.push_str(std::str::from_utf8(head).unwrap_or_default());
                    return false;
                }
                (std::str::from_utf8(head).unwrap_or_default(), tail)
            }
        };
        if !self.push_str(valid) {
            return false;
        }
        carry.clear();
        carry.try_extend_from_slice(rest).is_ok()
    }

    /// Pushes what fits, cut at a character boundary; `false` if it was cut.
    fn push_str(&mut self, s: &str) -> bool {
        let room = self.text.capacity() - self.text.len();
        if s.len() <= room {
            self.text.push_str(s);
            return true;
        }
        let cut = crate::record::floor_char_boundary(s, room);
        self.text.push_str(&s[..cut]);
        false
    }

    fn push(&mut self, c: char) -> bool {
        let mut buf = [0u8; 4];
        self.push_str(c.encode_utf8(&mut buf))
    }
}

fn same_key(a: Key, b: Key) -> bool {
    match (a, b) {
        (Key::Annotation(x), Key::Annotation(y))
        | (Key::Metadata(x), Key::Metadata(y))
        | (Key::Aws(x), Key::Aws(y)) => {
            // Keys are field names from the same callsites: mostly the same pointer.
            (x.as_ptr() == y.as_ptr() && x.len() == y.len()) || x == y
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Body, Record};

    fn apply(span: &mut Span, value: &str, keep: impl Fn(usize) -> bool) {
        let id = span.id;
        let mut i = 0;
        Record::split_str(id, Key::Metadata("k"), value, |r| {
            if keep(i) {
                match r.body {
                    Body::Attr { key, value } => span.set(key, &value),
                    Body::More(c) => span.more(&c),
                    _ => unreachable!(),
                }
            }
            i += 1;
        });
        span.finish_pending();
    }

    fn stored(span: &Span) -> &str {
        match span.attrs[0].value {
            Stored::Text { start, len, .. } => span.text(start, len),
            _ => unreachable!(),
        }
    }

    #[test]
    fn multibyte_characters_split_across_chunks_reassemble() {
        for value in [
            "é".repeat(300),
            "中😀a".repeat(100),
            "x".repeat(27) + "😀😀",
        ] {
            let mut span = Span::with_capacity(4096);
            apply(&mut span, &value, |_| true);
            assert_eq!(stored(&span), value);
            assert!(!span.truncated);
        }
    }

    #[test]
    fn a_lost_chunk_keeps_a_valid_prefix() {
        let value = "é".repeat(300);
        let mut span = Span::with_capacity(4096);
        apply(&mut span, &value, |i| i != 3);
        let kept = stored(&span);
        assert!(value.starts_with(kept) && kept.len() < value.len());
        assert!(span.truncated);
    }

    #[test]
    fn a_value_with_no_room_left_marks_the_span() {
        // Found by fuzzing: a value that found the text full was stored empty
        // without marking the span truncated.
        let mut span = Span::with_capacity(30);
        apply(&mut span, &"x".repeat(30), |_| true);
        assert!(!span.truncated);
        let id = span.id;
        Record::split_str(id, Key::Metadata("k1"), "-E", |r| match r.body {
            Body::Attr { key, value } => span.set(key, &value),
            _ => unreachable!(),
        });
        assert!(span.truncated);
    }

    #[test]
    fn text_capacity_cuts_at_a_character() {
        let value = "é".repeat(300);
        let mut span = Span::with_capacity(101);
        apply(&mut span, &value, |_| true);
        assert_eq!(stored(&span), "é".repeat(50));
        assert!(span.truncated);
    }
}
