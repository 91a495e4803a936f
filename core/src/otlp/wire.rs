//! Protocol Buffers' wire format, written into a fixed buffer.
//!
//! Only what OTLP's messages need: varints, fixed 64-bit numbers, doubles
//! and length-delimited fields. A nested message's length comes first on
//! the wire, so every writer here either knows the length up front (the
//! `*_size` functions compute it) or writes the body first and the
//! caller copies it behind its tag and length.

/// Wire types.
pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;

/// Bytes of `v` as a varint.
pub(crate) const fn varint_size(v: u64) -> usize {
    // 7 bits per byte; zero takes one.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Bytes of a length-delimited field `field` holding `len` bytes.
pub(crate) const fn len_field_size(field: u32, len: usize) -> usize {
    tag_size(field) + varint_size(len as u64) + len
}

pub(crate) const fn tag_size(field: u32) -> usize {
    varint_size((field as u64) << 3)
}

/// A writer that stops at the end of its buffer: once something does not
/// fit, [`Proto::overflowed`] says so and nothing more is written.
pub(crate) struct Proto<'a> {
    buf: &'a mut [u8],
    len: usize,
    overflow: bool,
}

impl<'a> Proto<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Proto {
            buf,
            len: 0,
            overflow: false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn overflowed(&self) -> bool {
        self.overflow
    }

    #[inline]
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(dst) if !self.overflow => {
                dst.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            _ => self.overflow = true,
        }
    }

    /// Most varints here are tags and short lengths: one or two bytes.
    #[inline]
    pub(crate) fn varint(&mut self, v: u64) {
        if v < 0x80 {
            self.byte(v as u8);
        } else if v < 0x4000 {
            self.raw(&[v as u8 | 0x80, (v >> 7) as u8]);
        } else {
            self.long_varint(v);
        }
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        match self.buf.get_mut(self.len) {
            Some(dst) if !self.overflow => {
                *dst = b;
                self.len += 1;
            }
            _ => self.overflow = true,
        }
    }

    fn long_varint(&mut self, mut v: u64) {
        let mut bytes = [0u8; 10];
        let mut n = 0;
        while v >= 0x80 {
            bytes[n] = v as u8 | 0x80;
            v >>= 7;
            n += 1;
        }
        bytes[n] = v as u8;
        self.raw(&bytes[..=n]);
    }

    #[inline]
    pub(crate) fn tag(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    /// A length-delimited field's tag and length; its `len` bytes follow.
    pub(crate) fn len_prefix(&mut self, field: u32, len: usize) {
        self.tag(field, LEN);
        self.varint(len as u64);
    }

    pub(crate) fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.len_prefix(field, bytes.len());
        self.raw(bytes);
    }

    pub(crate) fn fixed64(&mut self, field: u32, v: u64) {
        self.tag(field, FIXED64);
        self.raw(&v.to_le_bytes());
    }

    pub(crate) fn double(&mut self, field: u32, v: f64) {
        self.fixed64(field, v.to_bits());
    }

    pub(crate) fn uint(&mut self, field: u32, v: u64) {
        self.tag(field, VARINT);
        self.varint(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_as_the_spec_gives_them() {
        let mut buf = [0u8; 16];
        let mut w = Proto::new(&mut buf);
        w.varint(300);
        assert_eq!(&buf[..2], &[0xac, 0x02]);
        for v in [0, 1, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut buf = [0u8; 16];
            let mut w = Proto::new(&mut buf);
            w.varint(v);
            assert_eq!(w.len(), varint_size(v), "{v}");
        }
    }

    #[test]
    fn a_full_buffer_overflows_and_stops() {
        let mut buf = [0u8; 3];
        let mut w = Proto::new(&mut buf);
        w.bytes(1, b"abcd");
        assert!(w.overflowed());
        assert_eq!(w.len(), 2);
    }
}
