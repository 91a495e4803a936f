//! Standard base64 (RFC 4648, padded), from one buffer into another.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Bytes `n` input bytes take.
pub(crate) const fn encoded_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Every 12-bit value as its two base64 characters: two lookups per three
/// input bytes instead of four.
static PAIRS: [[u8; 2]; 4096] = {
    let mut table = [[0u8; 2]; 4096];
    let mut i = 0;
    while i < 4096 {
        table[i] = [ALPHABET[i >> 6], ALPHABET[i & 63]];
        i += 1;
    }
    table
};

/// Writes the encoding of `input` at the start of `out` (at least
/// [`encoded_len`] bytes); returns its length.
pub(crate) fn encode(input: &[u8], out: &mut [u8]) -> usize {
    let out = &mut out[..encoded_len(input.len())];
    let (groups, rest) = input.as_chunks::<3>();
    let (quads, tail) = out.as_chunks_mut::<4>();
    for (&[x, y, z], q) in groups.iter().zip(quads.iter_mut()) {
        let n = usize::from(x) << 16 | usize::from(y) << 8 | usize::from(z);
        let ([a, b], [c, d]) = (PAIRS[n >> 12], PAIRS[n & 0xfff]);
        *q = [a, b, c, d];
    }
    if let (Some(&first), Some(q)) = (rest.first(), quads.get_mut(groups.len())) {
        let second = rest.get(1).copied();
        let n = u32::from(first) << 16 | u32::from(second.unwrap_or(0)) << 8;
        *q = [
            ALPHABET[(n >> 18) as usize & 63],
            ALPHABET[(n >> 12) as usize & 63],
            second.map_or(b'=', |_| ALPHABET[(n >> 6) as usize & 63]),
            b'=',
        ];
    }
    debug_assert!(tail.is_empty());
    out.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_and_byte_agrees_with_the_plain_encoding() {
        let plain = |input: &[u8]| -> Vec<u8> {
            let mut bits = 0u32;
            let mut n = 0;
            let mut out = Vec::new();
            for &b in input {
                bits = bits << 8 | u32::from(b);
                n += 8;
                while n >= 6 {
                    n -= 6;
                    out.push(ALPHABET[(bits >> n) as usize & 63]);
                }
            }
            if n > 0 {
                out.push(ALPHABET[(bits << (6 - n)) as usize & 63]);
            }
            while out.len() % 4 != 0 {
                out.push(b'=');
            }
            out
        };
        let input: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for len in 0..input.len() {
            let mut out = vec![0u8; encoded_len(len)];
            let n = encode(&input[..len], &mut out);
            assert_eq!(&out[..n], plain(&input[..len]).as_slice(), "{len} bytes");
        }
    }

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
