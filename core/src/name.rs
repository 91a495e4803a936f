//! X-Ray's rules for names and annotation keys.
//!
//! The service drops documents whose name breaks its pattern, and silently
//! drops annotations whose key is not `[A-Za-z0-9_]`, so both are rewritten
//! here rather than trusted. The allowed name characters are exactly the
//! schema's: a name that passes here passes the schema, whatever Unicode
//! version the service runs.

mod ranges;

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest annotation key, in characters.
pub const MAX_ANNOTATION_KEY_CHARS: usize = 500;
/// What stands in for a character X-Ray does not accept.
pub const REPLACEMENT: char = '_';
/// The name of an entity whose name is empty.
pub const EMPTY_NAME: &str = "unnamed";

/// Whether X-Ray accepts `c` in a segment or subsegment name.
#[inline]
pub fn is_name_char(c: char) -> bool {
    let c = c as u32;
    if c < 0x80 {
        return ASCII_NAME & (1u128 << c) != 0;
    }
    ranges::ALLOWED
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Whether the ASCII byte `b` may appear in a name (always `false` past ASCII).
#[inline]
pub fn is_ascii_name_byte(b: u8) -> bool {
    b < 0x80 && ASCII_NAME & (1u128 << b) != 0
}

const ASCII_NAME: u128 = {
    let mut bits = 0u128;
    let mut i = 0;
    while i < ranges::ALLOWED.len() {
        let (lo, hi) = ranges::ALLOWED[i];
        let mut c = lo;
        while c <= hi && c < 0x80 {
            bits |= 1u128 << c;
            c += 1;
        }
        i += 1;
    }
    bits
};

/// The characters of `name` as X-Ray will accept them: others replaced by
/// [`REPLACEMENT`], at most [`MAX_NAME_CHARS`], never empty.
pub fn sanitized_name(name: &str) -> impl Iterator<Item = char> + '_ {
    let source = if name.is_empty() { EMPTY_NAME } else { name };
    source
        .chars()
        .take(MAX_NAME_CHARS)
        .map(|c| if is_name_char(c) { c } else { REPLACEMENT })
}

/// The bytes of an annotation key as X-Ray indexes it: `[A-Za-z0-9_]`, every
/// other character (each, not each byte) becoming `_`, at most 500, never empty.
pub fn sanitized_annotation_key(key: &str) -> impl Iterator<Item = u8> + '_ {
    let source = if key.is_empty() { "_" } else { key };
    source.chars().take(MAX_ANNOTATION_KEY_CHARS).map(|c| {
        if c.is_ascii_alphanumeric() {
            c as u8
        } else {
            b'_'
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_rules() {
        for c in "azAZ09 _.:/%&#=+-@".chars() {
            assert!(is_name_char(c), "{c:?}");
        }
        for c in "\"\\'!?;*()<>[]{}|^~`$,\t\n\u{0}\u{7f}".chars() {
            assert!(!is_name_char(c), "{c:?}");
        }
    }

    #[test]
    fn unicode_letters_digits_spaces() {
        for c in "éßЖ中文ひらがな한국어٣\u{a0}\u{3000}".chars() {
            assert!(is_name_char(c), "{c:?}");
        }
        for c in "\u{301}\u{200b}😀€\u{2028}x"
            .chars()
            .filter(|&c| c != 'x' && c != '\u{2028}')
        {
            assert!(!is_name_char(c), "{c:?}");
        }
    }

    #[test]
    fn names_are_bounded_and_never_empty() {
        assert_eq!(sanitized_name("").collect::<String>(), "unnamed");
        assert_eq!(sanitized_name("a;b\nc").collect::<String>(), "a_b_c");
        assert_eq!(sanitized_name(&"é".repeat(300)).count(), 200);
    }

    #[test]
    fn annotation_keys() {
        let key = |k| String::from_utf8(sanitized_annotation_key(k).collect()).unwrap();
        assert_eq!(key("user.id"), "user_id");
        assert_eq!(key("naïve-key"), "na_ve_key");
        assert_eq!(key(""), "_");
        assert_eq!(key(&"k".repeat(600)).len(), 500);
    }
}
