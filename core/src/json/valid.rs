//! Whether a producer's JSON text may go into a document as it is.
//!
//! Objects and lists that a service returned (DynamoDB's `ConsumedCapacity`)
//! reach the sender as text; one malformed value written verbatim would make
//! the whole document unreadable to X-Ray, so each is checked against
//! RFC 8259 before it is written. No recursion and no allocation: nesting is
//! a bit stack, and a text nested deeper than [`MAX_DEPTH`] is refused
//! (it is then written as a string).

/// Containers open at once, at most.
pub const MAX_DEPTH: usize = 64;

/// Whether `text` is exactly one JSON value (with optional surrounding whitespace).
pub fn is_valid(text: &[u8]) -> bool {
    let mut c = Cursor { text, at: 0 };
    c.document().is_some()
}

struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// A whole document: one value, then nothing but whitespace.
    fn document(&mut self) -> Option<()> {
        // Bit i of `objects`: whether container i (from the outside) is an object.
        let mut objects: u64 = 0;
        let mut depth = 0usize;
        self.skip_ws();
        'value: loop {
            // A value starts here.
            match self.peek()? {
                b'{' | b'[' => {
                    let object = self.peek() == Some(b'{');
                    self.at += 1;
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    objects = (objects & !(1 << depth)) | (u64::from(object) << depth);
                    depth += 1;
                    self.skip_ws();
                    let close = if object { b'}' } else { b']' };
                    if self.eat(close).is_none() {
                        if object {
                            self.key()?;
                        }
                        self.skip_ws();
                        continue 'value;
                    }
                    depth -= 1;
                }
                b'"' => self.string()?,
                b't' => self.word(b"true")?,
                b'f' => self.word(b"false")?,
                b'n' => self.word(b"null")?,
                _ => self.number()?,
            }
            // A value ended: close containers, or go on to the next member.
            loop {
                self.skip_ws();
                if depth == 0 {
                    return (self.at == self.text.len()).then_some(());
                }
                let object = objects & (1 << (depth - 1)) != 0;
                match self.peek()? {
                    b',' => {
                        self.at += 1;
                        self.skip_ws();
                        if object {
                            self.key()?;
                            self.skip_ws();
                        }
                        continue 'value;
                    }
                    b'}' if object => {}
                    b']' if !object => {}
                    _ => return None,
                }
                self.at += 1;
                depth -= 1;
            }
        }
    }

    /// `"key"` and its colon.
    fn key(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.string()?;
        self.skip_ws();
        self.eat(b':')?;
        self.skip_ws();
        Some(())
    }

    fn word(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.text.get(self.at..end)? == word).then(|| self.at = end)
    }

    fn string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                b'\\' => {
                    self.at += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                        b'u' => {
                            self.at += 1;
                            let unit = self.hex4()?;
                            // A surrogate must come as a high-low pair: a
                            // lone one is no character, and readers refuse it.
                            match unit {
                                0xd800..=0xdbff => {
                                    self.word(b"\\u")?;
                                    if !(0xdc00..=0xdfff).contains(&self.hex4()?) {
                                        return None;
                                    }
                                }
                                0xdc00..=0xdfff => return None,
                                _ => {}
                            }
                        }
                        _ => return None,
                    }
                }
                0..=0x1f => return None,
                _ => self.at += 1,
            }
        }
    }

    /// Four hex digits, as a UTF-16 code unit.
    fn hex4(&mut self) -> Option<u16> {
        let hex = self.text.get(self.at..self.at + 4)?;
        let hex = std::str::from_utf8(hex).ok()?;
        let unit = u16::from_str_radix(hex, 16).ok()?;
        // `from_str_radix` takes a sign; JSON does not.
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        Some(unit)
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        self.at - start
    }

    /// A number, which must also be one a reader can hold: `1e400` is
    /// JSON by the grammar, but readers refuse it or make it infinite.
    fn number(&mut self) -> Option<()> {
        let start = self.at;
        self.number_token()?;
        let token = std::str::from_utf8(&self.text[start..self.at]).ok()?;
        token.parse::<f64>().ok().filter(|v| v.is_finite())?;
        Some(())
    }

    fn number_token(&mut self) -> Option<()> {
        let _ = self.eat(b'-');
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.eat(b'.').is_some() && self.digits() == 0 {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_texts_pass() {
        for text in [
            "0",
            "-0.5e+3",
            "12",
            "true",
            "null",
            r#""a\"b\u00e9""#,
            r#""\ud83d\ude00""#,
            "[]",
            "{}",
            " [1, 2 ,{\"a\":[true,false,null]}] ",
            r#"{"TableName":"orders","CapacityUnits":0.5,"Table":{"CapacityUnits":0.5}}"#,
            r#"["invoices","customers"]"#,
            "\"é中😀\"",
        ] {
            assert!(is_valid(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn invalid_texts_fail() {
        for text in [
            "",
            " ",
            "01",
            "1.",
            "-",
            "1e",
            "+1",
            "tru",
            "nul",
            "[1,]",
            "[,1]",
            "[1 2]",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{1:2}",
            "{\"a\":1]",
            "[1}",
            "[[]",
            "[]]",
            "\"abc",
            "\"a\\x\"",
            "\"\\u12g4\"",
            "\"\\u+123\"",
            "\"\\ud83d\"",
            "\"\\ud83dx\"",
            "\"\\ud83d\\u0041\"",
            "\"\\ude00\"",
            "\"tab\there\"",
            "1 2",
            "{}x",
            "NaN",
            "-1.5e300000000000000000000",
            "[1e309]",
            "'a'",
        ] {
            assert!(!is_valid(text.as_bytes()), "{text:?}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(is_valid(ok.as_bytes()));
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(!is_valid(deep.as_bytes()));
        let mixed = format!("{}1{}", "{\"a\":[".repeat(32), "]}".repeat(32));
        assert!(is_valid(mixed.as_bytes()));
        assert!(!is_valid(
            format!("{}1{}", "{\"a\":[".repeat(32), "}]".repeat(32)).as_bytes()
        ));
    }
}
