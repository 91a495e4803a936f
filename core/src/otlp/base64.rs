//! Standard base64 (RFC 4648, padded), from one buffer into another.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Bytes `n` input bytes take.
pub(crate) const fn encoded_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Writes the encoding of `input` at the start of `out` (at least
/// [`encoded_len`] bytes); returns its length.
pub(crate) fn encode(input: &[u8], out: &mut [u8]) -> usize {
    let mut o = 0;
    let mut chunks = input.chunks_exact(3);
    for c in &mut chunks {
        let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        out[o] = ALPHABET[(n >> 18) as usize & 63];
        out[o + 1] = ALPHABET[(n >> 12) as usize & 63];
        out[o + 2] = ALPHABET[(n >> 6) as usize & 63];
        out[o + 3] = ALPHABET[n as usize & 63];
        o += 4;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let b1 = rest.get(1).copied().unwrap_or(0);
        let n = u32::from(rest[0]) << 16 | u32::from(b1) << 8;
        out[o] = ALPHABET[(n >> 18) as usize & 63];
        out[o + 1] = ALPHABET[(n >> 12) as usize & 63];
        out[o + 2] = if rest.len() == 2 {
            ALPHABET[(n >> 6) as usize & 63]
        } else {
            b'='
        };
        out[o + 3] = b'=';
        o += 4;
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4648_test_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = [0u8; 16];
            let n = encode(input.as_bytes(), &mut out);
            assert_eq!(n, encoded_len(input.len()));
            assert_eq!(&out[..n], expected.as_bytes());
        }
    }
}
