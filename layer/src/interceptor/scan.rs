//! The members of a JSON object, read in place.
//!
//! A request or response body is already in memory; the allow-list wants a
//! few of its top-level members. This walks the text once, hands out each
//! member's key and value as slices of the body, and steps over values
//! nobody asked for without looking inside strings or building anything:
//! no allocation, no error values (a malformed or cut body just ends the
//! walk). It checks structure only as far as it needs to find where a value
//! ends; a nested value recorded as it is gets checked strictly by the
//! sender before it is written.

/// A member's value, as text of the body.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Raw<'a> {
    /// A string: its token, quotes included, and whether it holds escapes.
    Str {
        token: &'a [u8],
        escaped: bool,
    },
    /// A number's token.
    Number(&'a [u8]),
    Bool(bool),
    Null,
    /// An object, braces included.
    Object(&'a [u8]),
    /// A list, brackets included.
    List(&'a [u8]),
}

impl<'a> Raw<'a> {
    /// A string without escapes, as it is (borrowed from the body).
    pub(crate) fn plain_str(self) -> Option<&'a str> {
        match self {
            Raw::Str {
                token,
                escaped: false,
            } => std::str::from_utf8(&token[1..token.len() - 1]).ok(),
            _ => None,
        }
    }

    /// The value's whole text, if it is UTF-8 (only values used are checked).
    pub(crate) fn text(self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()).ok()
    }

    fn bytes(self) -> &'a [u8] {
        match self {
            Raw::Str { token, .. } | Raw::Number(token) | Raw::Object(token) | Raw::List(token) => {
                token
            }
            Raw::Bool(true) => b"true",
            Raw::Bool(false) => b"false",
            Raw::Null => b"null",
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of every byte of `word` equal to `b`. A byte just above a
/// match may be flagged too (a borrow), so only the lowest flag is exact.
#[inline]
fn byte_in(word: u64, b: u8) -> u64 {
    let x = word ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGH
}

/// Flags for the bytes that can change depth or start a string: a quote,
/// or a bracket or brace (`[` and `]` differ from `{` and `}` in one bit).
#[inline]
fn structural(word: u64) -> u64 {
    let folded = word | (ONES * 0x20);
    byte_in(word, b'"') | byte_in(folded, b'{') | byte_in(folded, b'}')
}

/// The index of the first byte `is` accepts, eight bytes at a time (most
/// of a skipped value is plain text: this is where the time goes).
/// `flags` must flag exactly those bytes, lowest flag exact.
#[inline]
fn find(bytes: &[u8], flags: impl Fn(u64) -> u64, is: impl Fn(u8) -> bool) -> Option<usize> {
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let hits = flags(u64::from_le_bytes(w));
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| is(b))
        .map(|i| at + i)
}

/// A position in a JSON text.
struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        let here = self.peek() == Some(b);
        self.at += usize::from(here);
        here
    }

    /// The end of the string starting at `self.at` (its opening quote),
    /// and whether it holds escapes.
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        let start = self.at;
        self.at += 1;
        let mut escaped = false;
        loop {
            // Only a quote or a backslash can end or change a string.
            let rest = self.bytes().get(self.at..)?;
            let i = find(
                rest,
                |w| byte_in(w, b'"') | byte_in(w, b'\\'),
                |b| b == b'"' || b == b'\\',
            )?;
            self.at += i;
            if self.peek()? == b'"' {
                self.at += 1;
                return Some((self.text.get(start..self.at)?, escaped));
            }
            escaped = true;
            self.at += 2;
        }
    }

    /// Steps over an object or list, returning its text.
    fn container(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        let mut depth = 0usize;
        loop {
            let rest = self.bytes().get(self.at..)?;
            let i = find(rest, structural, |b| {
                matches!(b, b'"' | b'{' | b'[' | b'}' | b']')
            })?;
            self.at += i;
            match self.peek()? {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                _ => depth -= 1,
            }
            self.at += 1;
            if depth == 0 {
                return self.text.get(start..self.at);
            }
        }
    }

    fn value(&mut self) -> Option<Raw<'a>> {
        self.skip_ws();
        let start = self.at;
        let word = |c: &mut Cursor<'a>, w: &[u8]| {
            let end = start + w.len();
            (c.text.get(start..end)? == w).then(|| c.at = end)
        };
        Some(match self.peek()? {
            b'"' => {
                let (token, escaped) = self.string()?;
                Raw::Str { token, escaped }
            }
            b'{' => Raw::Object(self.container()?),
            b'[' => Raw::List(self.container()?),
            b't' => word(self, b"true").map(|()| Raw::Bool(true))?,
            b'f' => word(self, b"false").map(|()| Raw::Bool(false))?,
            b'n' => word(self, b"null").map(|()| Raw::Null)?,
            b'-' | b'0'..=b'9' => {
                while matches!(
                    self.peek(),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.at += 1;
                }
                Raw::Number(self.text.get(start..self.at)?)
            }
            _ => return None,
        })
    }
}

/// The members of the object `text` (keys without their quotes), in order,
/// until it ends or something is malformed.
pub(crate) struct Members<'a> {
    cursor: Cursor<'a>,
    first: bool,
    done: bool,
}

pub(crate) fn members(text: &[u8]) -> Members<'_> {
    let mut cursor = Cursor { text, at: 0 };
    cursor.skip_ws();
    let done = !cursor.eat(b'{');
    Members {
        cursor,
        first: true,
        done,
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a [u8], Raw<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.member();
        self.done = item.is_none();
        item
    }
}

impl<'a> Members<'a> {
    fn member(&mut self) -> Option<(&'a [u8], Raw<'a>)> {
        let c = &mut self.cursor;
        c.skip_ws();
        if c.eat(b'}') {
            return None;
        }
        if !std::mem::take(&mut self.first) {
            if !c.eat(b',') {
                return None;
            }
            c.skip_ws();
        }
        if c.peek()? != b'"' {
            return None;
        }
        let (key, _) = c.string()?;
        c.skip_ws();
        if !c.eat(b':') {
            return None;
        }
        let value = c.value()?;
        Some((&key[1..key.len() - 1], value))
    }
}

/// The number of elements of the list `text`, if it is one that ends.
pub(crate) fn count(text: &[u8]) -> Option<u64> {
    let mut c = Cursor { text, at: 0 };
    c.skip_ws();
    if !c.eat(b'[') {
        return None;
    }
    c.skip_ws();
    if c.eat(b']') {
        return Some(0);
    }
    let mut n = 0;
    loop {
        c.value()?;
        n += 1;
        c.skip_ws();
        if c.eat(b']') {
            return Some(n);
        }
        if !c.eat(b',') {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_come_out_as_slices_of_the_text() {
        let text = r#" { "A" : "x" , "B":{"c":[1,"]}",{}]},"C":[ ],"D":-1.5e3,"E":true,
            "F":null,"G":"a\"b\\","H":false } trailing"#;
        let got: Vec<_> = members(text.as_bytes())
            .map(|(k, v)| (std::str::from_utf8(k).unwrap(), v))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "A",
                    Raw::Str {
                        token: b"\"x\"",
                        escaped: false
                    }
                ),
                ("B", Raw::Object(br#"{"c":[1,"]}",{}]}"#)),
                ("C", Raw::List(b"[ ]")),
                ("D", Raw::Number(b"-1.5e3")),
                ("E", Raw::Bool(true)),
                ("F", Raw::Null),
                (
                    "G",
                    Raw::Str {
                        token: br#""a\"b\\""#,
                        escaped: true
                    }
                ),
                ("H", Raw::Bool(false)),
            ]
        );
        assert_eq!(got[0].1.plain_str(), Some("x"));
        assert_eq!(got[6].1.plain_str(), None);
    }

    #[test]
    fn a_cut_or_malformed_body_ends_the_walk_without_panicking() {
        let text = r#"{"A":"x","B":{"c":[1,2],"d":"é中"},"C":3}"#;
        for end in 0..=text.len() {
            let Some(prefix) = text.get(..end) else {
                continue;
            };
            let got: Vec<_> = members(prefix.as_bytes()).collect();
            assert!(got.len() <= 3);
            // What comes out is always a whole member of the full text.
            for (k, v) in got {
                let k = std::str::from_utf8(k).unwrap();
                assert!(text.contains(&format!("\"{k}\":{}", v.text().unwrap())));
            }
        }
        for bad in [
            "",
            "[1]",
            "{\"A\" 1}",
            "{\"A\":1 \"B\":2}",
            "{A:1}",
            "{\"A\":x}",
            "{\"A\":\"\\",
        ] {
            assert!(members(bad.as_bytes()).count() <= 1, "{bad}");
        }
    }

    #[test]
    fn lists_are_counted() {
        assert_eq!(count(b"[]"), Some(0));
        assert_eq!(count(b" [ 1 ] "), Some(1));
        assert_eq!(count(br#"[{"a":[1,2]},"x,y",[3]]"#), Some(3));
        assert_eq!(count(b"[1,2"), None);
        assert_eq!(count(b"{}"), None);
    }

    /// Over many texts made of JSON's tokens: the walk never panics, and on
    /// every text serde_json reads as an object it yields exactly that
    /// object's members, in order, each value reading back the same.
    #[test]
    fn agrees_with_serde_json_on_every_object_it_reads() {
        const TOKENS: &[&str] = &[
            "{",
            "}",
            "[",
            "]",
            ":",
            ",",
            " ",
            "\"a\"",
            "\"b\\\"\"",
            "\"\\u00e9\"",
            "0",
            "-1.5e3",
            "true",
            "null",
            "\"k\":",
            "\"}\"",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut objects = 0;
        for _ in 0..300_000 {
            let len = 1 + next() % 16;
            let mut text = String::from("{");
            for _ in 0..len {
                text.push_str(TOKENS[(next() % TOKENS.len() as u64) as usize]);
            }
            let walked: Vec<_> = members(text.as_bytes()).collect();
            let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&text) else {
                continue;
            };
            if map.len() != walked.len() {
                continue; // a key given twice: serde keeps one
            }
            objects += 1;
            for ((key, raw), (k, v)) in walked.iter().zip(&map) {
                assert_eq!(
                    serde_json::from_str::<String>(&format!(
                        "\"{}\"",
                        std::str::from_utf8(key).unwrap()
                    ))
                    .unwrap(),
                    *k,
                    "{text}"
                );
                let value: serde_json::Value = serde_json::from_str(raw.text().unwrap()).unwrap();
                assert_eq!(&value, v, "{text}");
            }
        }
        assert!(objects > 500, "{objects} objects");
    }

    #[test]
    fn the_word_search_finds_what_the_byte_search_finds() {
        let is = |b: u8| matches!(b, b'"' | b'{' | b'[' | b'}' | b']');
        let alphabet = b"\"{[}]\\az;{|}~ZY\x00\xff\x7f";
        let mut seed = 7u64;
        for _ in 0..50_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (seed >> 59) as usize;
            let text: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i % 50)) as usize + i * 7) % alphabet.len()])
                .collect();
            assert_eq!(
                find(&text, structural, is),
                text.iter().position(|&b| is(b)),
                "{text:?}"
            );
            let quote = |b: u8| b == b'"' || b == b'\\';
            assert_eq!(
                find(&text, |w| byte_in(w, b'"') | byte_in(w, b'\\'), quote),
                text.iter().position(|&b| quote(b))
            );
        }
    }
}
