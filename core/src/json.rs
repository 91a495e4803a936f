//! A JSON writer into a caller-provided buffer.
//!
//! It never allocates and never panics: when the buffer is full it stops
//! writing and remembers it, and [`JsonWriter::finish`] reports
//! [`DoesNotFit`]; a document that does not fit is written again with less
//! in it (see the trim levels of `document`), never sent cut. Objects and
//! arrays are written through a [`Seq`], which opens them on their first
//! member and puts the commas, so an empty one is never written.

use crate::id::{SegmentId, TraceId};
use crate::name;

mod valid;
pub(crate) use valid::is_valid;

/// The document did not fit in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoesNotFit;

impl std::fmt::Display for DoesNotFit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON document does not fit in its buffer")
    }
}

impl std::error::Error for DoesNotFit {}

/// An object or array being written: it opens itself on its first member
/// (so an empty one is never written, when it is lazy) and puts the commas.
#[derive(Debug)]
#[must_use = "close it with `JsonWriter::end`"]
pub struct Seq {
    open: &'static [u8],
    close: u8,
    members: usize,
}

impl Seq {
    /// An object whose opening text (such as `,"aws":{`) is written only
    /// when its first member is.
    pub fn lazy_object(open: &'static [u8]) -> Seq {
        Seq {
            open,
            close: b'}',
            members: 0,
        }
    }

    /// An array opened the same way (`,"exceptions":[`).
    pub fn lazy_array(open: &'static [u8]) -> Seq {
        Seq {
            open,
            close: b']',
            members: 0,
        }
    }

    /// Whether no member has been written (so nothing was opened).
    pub fn is_empty(&self) -> bool {
        self.members == 0
    }
}

/// Writes JSON text into a fixed buffer.
#[derive(Debug)]
pub struct JsonWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    overflow: bool,
}

impl<'a> JsonWriter<'a> {
    /// A writer that starts at the beginning of `buf` and never writes past its end.
    pub fn new(buf: &'a mut [u8]) -> Self {
        JsonWriter {
            buf,
            len: 0,
            overflow: false,
        }
    }

    /// A writer that starts after the first `len` bytes of `buf`.
    pub fn resume(buf: &'a mut [u8], len: usize) -> Self {
        let overflow = len > buf.len();
        JsonWriter {
            len: len.min(buf.len()),
            buf,
            overflow,
        }
    }

    /// Whether a write has not fitted since the start.
    #[cfg(test)]
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// The length written, or [`DoesNotFit`] if anything was cut.
    pub fn finish(self) -> Result<usize, DoesNotFit> {
        if self.overflow {
            Err(DoesNotFit)
        } else {
            Ok(self.len)
        }
    }

    /// Appends bytes that are already JSON.
    #[inline]
    pub fn raw(&mut self, bytes: &[u8]) {
        if self.overflow {
            return;
        }
        let end = self.len + bytes.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len = end;
            }
            None => self.overflow = true,
        }
    }

    /// Starts the next member of `seq`: its opening text if this is the
    /// first, else a comma.
    #[inline]
    pub fn member(&mut self, seq: &mut Seq) {
        self.raw(if seq.members == 0 { seq.open } else { b"," });
        seq.members += 1;
    }

    /// Starts the next member of the object `seq` with `"key":`.
    #[inline]
    pub fn field(&mut self, seq: &mut Seq, key: &str) {
        self.member(seq);
        self.key(key);
    }

    /// Closes `seq` if anything opened it.
    #[inline]
    pub fn end(&mut self, seq: Seq) {
        if seq.members > 0 {
            self.byte(seq.close);
        }
    }

    /// Appends one byte of JSON syntax.
    #[inline]
    pub fn byte(&mut self, b: u8) {
        self.raw(&[b]);
    }

    /// A quoted, escaped string.
    #[inline]
    pub fn string(&mut self, s: &str) {
        let bytes = s.as_bytes();
        if self.overflow || needs_escape_any(bytes) {
            self.byte(b'"');
            self.escaped(bytes);
            self.byte(b'"');
            return;
        }
        // The common case: nothing to escape, one copy.
        let end = self.len + bytes.len() + 2;
        match self.buf.get_mut(self.len..end) {
            Some(dst) => {
                let (first, rest) = dst.split_at_mut(1);
                let (middle, last) = rest.split_at_mut(bytes.len());
                first[0] = b'"';
                middle.copy_from_slice(bytes);
                last[0] = b'"';
                self.len = end;
            }
            None => self.overflow = true,
        }
    }

    /// A quoted, escaped string cut to at most `max_chars` characters; returns whether it was cut.
    pub fn string_limited(&mut self, s: &str, max_chars: usize) -> bool {
        if s.len() <= max_chars {
            self.string(s);
            return false;
        }
        let (head, cut) = match s.char_indices().nth(max_chars) {
            Some((i, _)) => (&s[..i], true),
            None => (s, false),
        };
        self.string(head);
        cut
    }

    /// `"key":` with the key escaped.
    pub fn key(&mut self, key: &str) {
        self.string(key);
        self.byte(b':');
    }

    /// The body of a string (no quotes): RFC 8259 escaping of `"`, `\` and
    /// every control character. Eight bytes at a time while none needs it.
    fn escaped(&mut self, bytes: &[u8]) {
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            if let Some(word) = bytes.get(i..i + 8) {
                let mut w = [0u8; 8];
                w.copy_from_slice(word);
                if !needs_escape(u64::from_le_bytes(w)) {
                    i += 8;
                    continue;
                }
            }
            let b = bytes[i];
            if b >= 0x20 && b != b'"' && b != b'\\' {
                i += 1;
                continue;
            }
            self.raw(&bytes[start..i]);
            let hex = b"0123456789abcdef";
            let esc: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                _ => &[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    hex[usize::from(b >> 4)],
                    hex[usize::from(b & 0xf)],
                ],
            };
            self.raw(esc);
            i += 1;
            start = i;
        }
        self.raw(&bytes[start..]);
    }

    /// A quoted name in X-Ray's allowed characters (see [`name`]).
    pub fn name(&mut self, s: &str) {
        if !s.is_empty()
            && s.len() <= name::MAX_NAME_CHARS
            && s.bytes().all(name::is_ascii_name_byte)
        {
            self.byte(b'"');
            self.raw(s.as_bytes());
            self.byte(b'"');
            return;
        }
        self.byte(b'"');
        for c in name::sanitized_name(s) {
            let mut tmp = [0u8; 4];
            self.raw(c.encode_utf8(&mut tmp).as_bytes());
        }
        self.byte(b'"');
    }

    /// `"key":` for an annotation, rewritten to `[A-Za-z0-9_]`.
    pub fn annotation_key(&mut self, key: &str) {
        self.byte(b'"');
        for b in name::sanitized_annotation_key(key) {
            self.byte(b);
        }
        self.raw(b"\":");
    }

    /// An unsigned integer.
    pub fn u64(&mut self, v: u64) {
        let mut b = itoa::Buffer::new();
        self.raw(b.format(v).as_bytes());
    }

    /// A signed integer.
    pub fn i64(&mut self, v: i64) {
        let mut b = itoa::Buffer::new();
        self.raw(b.format(v).as_bytes());
    }

    /// A float; NaN and infinities, which JSON cannot hold, become strings.
    pub fn f64(&mut self, v: f64) {
        use std::fmt::Write;
        if !v.is_finite() {
            self.string(if v.is_nan() {
                "NaN"
            } else if v > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            });
            return;
        }
        let mut tmp = StackText::default();
        let a = v.abs();
        let r = if a == 0.0 || (1e-5..1e16).contains(&a) {
            write!(tmp, "{v}")
        } else {
            write!(tmp, "{v:e}")
        };
        if r.is_ok() {
            self.raw(tmp.as_bytes());
        } else {
            self.raw(b"0");
        }
    }

    /// `true` or `false`.
    pub fn bool(&mut self, v: bool) {
        self.raw(if v { b"true" } else { b"false" });
    }

    /// Epoch seconds with exactly six fraction digits: `1795651000.772046`.
    pub fn time(&mut self, epoch_micros: u64) {
        self.u64(epoch_micros / 1_000_000);
        let mut frac = [b'.', b'0', b'0', b'0', b'0', b'0', b'0'];
        let mut rest = epoch_micros % 1_000_000;
        for slot in frac[1..].iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        self.raw(&frac);
    }

    /// A quoted 16-hex-digit id.
    pub fn segment_id(&mut self, id: SegmentId) {
        self.byte(b'"');
        self.raw(&id.to_hex());
        self.byte(b'"');
    }

    /// A quoted trace id.
    pub fn trace_id(&mut self, id: TraceId) {
        self.byte(b'"');
        self.raw(&id.to_text());
        self.byte(b'"');
    }
}

/// Whether any byte of `x` is a control character, `"` or `\\`. The usual
/// zero-byte tricks: a borrow can only start at a byte that really matches,
/// so the answer for the word as a whole is exact.
#[inline]
const fn needs_escape(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let control = x.wrapping_sub(ONES * 0x20) & !x;
    let q = x ^ (ONES * b'"' as u64);
    let quote = q.wrapping_sub(ONES) & !q;
    let b = x ^ (ONES * b'\\' as u64);
    let backslash = b.wrapping_sub(ONES) & !b;
    (control | quote | backslash) & HIGH != 0
}

/// Whether any byte of `bytes` needs escaping.
#[inline]
fn needs_escape_any(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        if needs_escape(u64::from_le_bytes(w)) {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// A small stack buffer for `core::fmt` output (floats only).
#[derive(Default)]
struct StackText {
    buf: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: impl FnOnce(&mut JsonWriter<'_>)) -> String {
        let mut buf = [0u8; 256];
        let mut w = JsonWriter::new(&mut buf);
        f(&mut w);
        let n = w.finish().unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn escapes_every_control_character() {
        let all: String = (0u8..0x20)
            .map(char::from)
            .chain("\"\\é\u{7f}".chars())
            .collect();
        let text = render(|w| w.string(&all));
        let back: String = serde_json::from_str(&text).unwrap();
        assert_eq!(back, all);
        assert!(text.contains("\\u0000") && text.contains("\\n") && text.contains("\\\""));
    }

    #[test]
    fn word_test_matches_byte_test() {
        let special = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..200_000u32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Mix random words with words built from interesting bytes.
            let word = if round % 2 == 0 {
                state
            } else {
                let pick = [0x00, 0x1f, 0x20, 0x21, b'"', b'\\', 0x7f, 0x80, 0xff, b'a'];
                let mut w = 0u64;
                for k in 0..8 {
                    w |= u64::from(pick[((state >> (k * 4)) % 10) as usize]) << (k * 8);
                }
                w
            };
            let expected = word.to_le_bytes().iter().any(|&b| special(b));
            assert_eq!(needs_escape(word), expected, "{word:#018x}");
        }
    }

    #[test]
    fn times_have_six_fraction_digits() {
        assert_eq!(
            render(|w| w.time(1_795_651_000_772_046)),
            "1795651000.772046"
        );
        assert_eq!(
            render(|w| w.time(1_795_651_000_000_001)),
            "1795651000.000001"
        );
        assert_eq!(render(|w| w.time(0)), "0.000000");
    }

    #[test]
    fn numbers() {
        assert_eq!(render(|w| w.i64(-42)), "-42");
        assert_eq!(render(|w| w.u64(u64::MAX)), "18446744073709551615");
        for v in [
            0.0,
            0.5,
            -1.25,
            1e300,
            1e-300,
            f64::MAX,
            f64::MIN_POSITIVE,
            123456.789,
        ] {
            let text = render(|w| w.f64(v));
            assert_eq!(text.parse::<f64>().unwrap(), v, "{text}");
        }
        assert_eq!(render(|w| w.f64(f64::NAN)), "\"NaN\"");
    }

    #[test]
    fn sequences_open_lazily_and_put_the_commas() {
        let mut buf = [0u8; 64];
        let mut w = JsonWriter::new(&mut buf);
        w.raw(b"{\"a\":1");
        let empty = Seq::lazy_object(b",\"none\":{");
        w.end(empty);
        let mut o = Seq::lazy_object(b",\"o\":{");
        w.field(&mut o, "x");
        w.u64(1);
        w.field(&mut o, "y");
        let mut list = Seq::lazy_array(b"[");
        for v in [2, 3] {
            w.member(&mut list);
            w.u64(v);
        }
        w.end(list);
        w.end(o);
        w.byte(b'}');
        let n = w.finish().unwrap();
        assert_eq!(&buf[..n], br#"{"a":1,"o":{"x":1,"y":[2,3]}}"#);
    }

    #[test]
    fn overflow_is_reported_and_sticky() {
        let mut buf = [0u8; 8];
        let mut w = JsonWriter::new(&mut buf);
        w.raw(b"{");
        w.string("too long for this");
        assert!(w.overflowed());
        w.raw(b"}");
        assert_eq!(
            w.finish(),
            Err(DoesNotFit),
            "a later short write does not hide it"
        );
        let mut buf = [0u8; 4];
        let mut w = JsonWriter::new(&mut buf);
        w.string("abcdef");
        assert_eq!(w.finish(), Err(DoesNotFit));
    }

    #[test]
    fn limited_strings() {
        assert_eq!(render(|w| assert!(w.string_limited("héllo", 2))), "\"hé\"");
        assert_eq!(render(|w| assert!(!w.string_limited("hé", 2))), "\"hé\"");
    }

    #[test]
    fn names_and_keys() {
        assert_eq!(render(|w| w.name("GET /users/{id}")), "\"GET /users/_id_\"");
        assert_eq!(
            render(|w| w.annotation_key("http.route")),
            "\"http_route\":"
        );
    }
}
