//! The `X-Amzn-Trace-Id` header: `Root=…;Parent=…;Sampled=1|0|?;Lineage=…`.
//!
//! Parsed without allocating into a `Copy` value, because the Lambda invocation
//! span hands it over on the caller's thread. Keys other than Root, Parent and
//! Sampled are kept verbatim (up to [`EXTRAS_CAPACITY`] bytes) so they can be
//! propagated downstream: Lambda's recursion detection relies on `Lineage`.

use std::fmt;

use arrayvec::ArrayString;

use crate::id::{IdError, SegmentId, TraceId};

/// Bytes kept for the keys that are not Root, Parent or Sampled.
pub const EXTRAS_CAPACITY: usize = 256;

/// Longest text [`TraceHeader::encode`] can produce.
pub const ENCODED_CAPACITY: usize = 5 + TraceId::LEN + 8 + 16 + 10 + 1 + EXTRAS_CAPACITY;

/// The sampling decision carried by the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampled {
    /// `Sampled=1`: record and send.
    Yes,
    /// `Sampled=0`: send nothing.
    No,
    /// `Sampled=?`: the caller asks the callee to decide.
    Requested,
}

impl Sampled {
    fn as_str(self) -> &'static str {
        match self {
            Sampled::Yes => "1",
            Sampled::No => "0",
            Sampled::Requested => "?",
        }
    }
}

/// Why a trace header was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// Nothing but whitespace and separators.
    Empty,
    /// A part has no `=` or an empty key.
    Malformed,
    /// `Root=` is not a valid trace id.
    Root(IdError),
    /// `Parent=` is not a valid entity id.
    Parent(IdError),
    /// `Sampled=` is not `1`, `0` or `?`.
    Sampled,
    /// Root, Parent or Sampled appears twice.
    Duplicate,
    /// A key or value holds a character an HTTP header cannot carry.
    Character,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Empty => f.write_str("trace header is empty"),
            HeaderError::Malformed => f.write_str("trace header part is not key=value"),
            HeaderError::Root(e) => write!(f, "trace header Root is invalid: {e}"),
            HeaderError::Parent(e) => write!(f, "trace header Parent is invalid: {e}"),
            HeaderError::Sampled => f.write_str("trace header Sampled is not 1, 0 or ?"),
            HeaderError::Duplicate => f.write_str("trace header repeats Root, Parent or Sampled"),
            HeaderError::Character => {
                f.write_str("trace header holds a control or non-ASCII character")
            }
        }
    }
}

impl std::error::Error for HeaderError {}

/// A parsed trace header.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceHeader {
    /// The trace this request belongs to.
    pub root: Option<TraceId>,
    /// The upstream entity (in Lambda: the function segment).
    pub parent: Option<SegmentId>,
    /// The sampling decision, if the header carries one.
    pub sampled: Option<Sampled>,
    extras: ArrayString<EXTRAS_CAPACITY>,
    extras_dropped: bool,
}

impl TraceHeader {
    /// A header with the given parts and no extra keys.
    pub fn new(root: TraceId, parent: Option<SegmentId>, sampled: Option<Sampled>) -> Self {
        TraceHeader {
            root: Some(root),
            parent,
            sampled,
            extras: ArrayString::new(),
            extras_dropped: false,
        }
    }

    /// Parses a header leniently about whitespace and empty parts, strictly
    /// about ids. `Self=` is dropped, as every X-Ray SDK does.
    pub fn parse(text: &str) -> Result<Self, HeaderError> {
        let mut header = TraceHeader {
            root: None,
            parent: None,
            sampled: None,
            extras: ArrayString::new(),
            extras_dropped: false,
        };
        header.merge(text)?;
        // Nothing kept (only `Self=`, or extras too long to keep) is no header.
        if header.root.is_none()
            && header.parent.is_none()
            && header.sampled.is_none()
            && header.extras.is_empty()
        {
            return Err(HeaderError::Empty);
        }
        Ok(header)
    }

    /// Adds the extra `key=value` parts of `text` (such as the extras of
    /// another header: `Lineage=…`) to this one. Only extras: a `Root`,
    /// `Parent`, `Sampled` or `Self` part of `text` is left out, so this never
    /// changes where the header points.
    pub fn with_extras(mut self, text: &str) -> Result<Self, HeaderError> {
        let mut extras = TraceHeader {
            root: None,
            parent: None,
            sampled: None,
            extras: ArrayString::new(),
            extras_dropped: false,
        };
        extras.merge(text)?;
        for part in extras.extras().split(';').filter(|p| !p.is_empty()) {
            if let Some((key, value)) = part.split_once('=') {
                self.push_extra(key, value);
            }
        }
        self.extras_dropped |= extras.extras_dropped;
        Ok(self)
    }

    /// Applies every part of `text`.
    fn merge(&mut self, text: &str) -> Result<(), HeaderError> {
        for part in text.split(';') {
            let part = part.trim_matches(|c: char| c.is_ascii_whitespace());
            if part.is_empty() {
                continue;
            }
            let (key, value) = part.split_once('=').ok_or(HeaderError::Malformed)?;
            let key = key.trim_matches(|c: char| c.is_ascii_whitespace());
            let value = value.trim_matches(|c: char| c.is_ascii_whitespace());
            if key.is_empty() {
                return Err(HeaderError::Malformed);
            }
            if key.eq_ignore_ascii_case("Root") {
                if self.root.is_some() {
                    return Err(HeaderError::Duplicate);
                }
                self.root = Some(TraceId::parse(value).map_err(HeaderError::Root)?);
            } else if key.eq_ignore_ascii_case("Parent") {
                if self.parent.is_some() {
                    return Err(HeaderError::Duplicate);
                }
                self.parent = Some(SegmentId::parse(value).map_err(HeaderError::Parent)?);
            } else if key.eq_ignore_ascii_case("Sampled") {
                if self.sampled.is_some() {
                    return Err(HeaderError::Duplicate);
                }
                self.sampled = Some(match value {
                    "1" => Sampled::Yes,
                    "0" => Sampled::No,
                    "?" => Sampled::Requested,
                    _ => return Err(HeaderError::Sampled),
                });
            } else if !key.eq_ignore_ascii_case("Self") {
                if !is_header_text(key) || !is_header_text(value) {
                    return Err(HeaderError::Character);
                }
                self.push_extra(key, value);
            }
        }
        Ok(())
    }

    fn push_extra(&mut self, key: &str, value: &str) {
        let sep = usize::from(!self.extras.is_empty());
        if self.extras.len() + sep + key.len() + 1 + value.len() > EXTRAS_CAPACITY {
            self.extras_dropped = true;
            return;
        }
        if sep == 1 {
            self.extras.push(';');
        }
        self.extras.push_str(key);
        self.extras.push('=');
        self.extras.push_str(value);
    }

    /// `true` only for `Sampled=1`: `0`, `?` and a missing flag all mean "send nothing"
    /// where no sampler runs (Lambda).
    pub fn is_sampled(&self) -> bool {
        self.sampled == Some(Sampled::Yes)
    }

    /// The same header with another parent: what a downstream call carries.
    pub fn with_parent(mut self, parent: SegmentId) -> Self {
        self.parent = Some(parent);
        self
    }

    /// The same header with another sampling decision.
    pub fn with_sampled(mut self, sampled: Sampled) -> Self {
        self.sampled = Some(sampled);
        self
    }

    /// The kept extra keys, `;`-separated, in their original order.
    pub fn extras(&self) -> &str {
        &self.extras
    }

    /// Whether some extra keys did not fit in [`EXTRAS_CAPACITY`] and were dropped.
    pub fn extras_dropped(&self) -> bool {
        self.extras_dropped
    }

    /// The value of an extra key such as `Lineage`.
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extras
            .split(';')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// The header text, without allocating.
    pub fn encode(&self) -> ArrayString<ENCODED_CAPACITY> {
        let mut out = ArrayString::new();
        let mut sep = "";
        if let Some(root) = self.root {
            out.push_str("Root=");
            // The text of a trace id is ASCII hex and dashes.
            out.push_str(std::str::from_utf8(&root.to_text()).unwrap_or_default());
            sep = ";";
        }
        if let Some(parent) = self.parent {
            out.push_str(sep);
            out.push_str("Parent=");
            out.push_str(std::str::from_utf8(&parent.to_hex()).unwrap_or_default());
            sep = ";";
        }
        if let Some(sampled) = self.sampled {
            out.push_str(sep);
            out.push_str("Sampled=");
            out.push_str(sampled.as_str());
            sep = ";";
        }
        if !self.extras.is_empty() {
            out.push_str(sep);
            out.push_str(&self.extras);
        }
        out
    }
}

/// Visible ASCII other than the separators, as an HTTP header value allows.
fn is_header_text(s: &str) -> bool {
    s.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b';')
}

impl fmt::Display for TraceHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl fmt::Debug for TraceHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceHeader({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_extras_adds_extras_only() {
        let base = TraceHeader::parse(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .unwrap();
        let other = "Root=1-6759e988-bd862e3fe1be46a994272793;Parent=1111111111111111;Sampled=0;Lineage=a87bd80c:1";
        let merged = base.with_extras(other).unwrap();
        assert_eq!(merged.root, base.root);
        assert_eq!(merged.parent, base.parent);
        assert_eq!(merged.sampled, base.sampled);
        assert_eq!(merged.extras(), "Lineage=a87bd80c:1");
    }

    const LAMBDA: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1|68fd508a:5";

    #[test]
    fn parses_lambda_header() {
        let h = TraceHeader::parse(LAMBDA).unwrap();
        assert_eq!(
            h.root.unwrap().to_string(),
            "1-5759e988-bd862e3fe1be46a994272793"
        );
        assert_eq!(h.parent.unwrap().to_string(), "53995c3f42cd8ad8");
        assert!(h.is_sampled());
        assert_eq!(h.extra("Lineage"), Some("a87bd80c:1|68fd508a:5"));
        assert_eq!(h.encode().as_str(), LAMBDA);
    }

    #[test]
    fn lenient_about_spacing_and_order() {
        let h = TraceHeader::parse(
            " Sampled=0 ; Parent=53995c3f42cd8ad8;;Root=1-5759e988-bd862e3fe1be46a994272793; Self=1-abc-def ;Foo=bar",
        )
        .unwrap();
        assert!(!h.is_sampled());
        assert_eq!(h.sampled, Some(Sampled::No));
        assert_eq!(
            h.encode().as_str(),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0;Foo=bar"
        );
    }

    #[test]
    fn sampled_flags() {
        assert_eq!(
            TraceHeader::parse("Sampled=?").unwrap().sampled,
            Some(Sampled::Requested)
        );
        let h = TraceHeader::parse("Root=1-5759e988-bd862e3fe1be46a994272793").unwrap();
        assert_eq!(h.sampled, None);
        assert!(!h.is_sampled());
        assert_eq!(TraceHeader::parse("Sampled=yes"), Err(HeaderError::Sampled));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(TraceHeader::parse(""), Err(HeaderError::Empty));
        assert_eq!(TraceHeader::parse(" ;; "), Err(HeaderError::Empty));
        // Found by fuzzing: only `Self=` parts (dropped) used to parse to an
        // empty header that did not parse back.
        assert_eq!(
            TraceHeader::parse(" Self=\u{1}3; Self=x"),
            Err(HeaderError::Empty)
        );
        let too_long = format!("Key={}", "v".repeat(EXTRAS_CAPACITY));
        assert_eq!(TraceHeader::parse(&too_long), Err(HeaderError::Empty));
        assert_eq!(TraceHeader::parse("Root"), Err(HeaderError::Malformed));
        assert_eq!(TraceHeader::parse("=x"), Err(HeaderError::Malformed));
        assert!(matches!(
            TraceHeader::parse("Root=1-xyz"),
            Err(HeaderError::Root(_))
        ));
        assert!(matches!(
            TraceHeader::parse("Parent=0000000000000000"),
            Err(HeaderError::Parent(_))
        ));
        assert_eq!(
            TraceHeader::parse("Sampled=1;Sampled=0"),
            Err(HeaderError::Duplicate)
        );
        assert_eq!(TraceHeader::parse("Foo=b\nar"), Err(HeaderError::Character));
        assert_eq!(TraceHeader::parse("Foo=bär"), Err(HeaderError::Character));
    }

    #[test]
    fn extras_are_bounded() {
        let mut text = String::from("Sampled=1");
        for i in 0..100 {
            text.push_str(&format!(";Key{i}=value{i}"));
        }
        let h = TraceHeader::parse(&text).unwrap();
        assert!(h.extras_dropped());
        assert!(h.extras().len() <= EXTRAS_CAPACITY);
        assert!(h.extras().starts_with("Key0=value0;Key1=value1"));
        assert!(h.encode().len() <= ENCODED_CAPACITY);
    }

    #[test]
    fn extras_merge_into_a_new_header() {
        let h = TraceHeader::parse(LAMBDA).unwrap();
        let root = h.root.unwrap();
        let rebuilt = TraceHeader::new(root, h.parent, h.sampled)
            .with_extras(h.extras())
            .unwrap();
        assert_eq!(rebuilt, h);
        // Extras only: a Root in the text does not replace the header's.
        let other = "Root=1-6759e988-bd862e3fe1be46a994272793";
        assert_eq!(
            TraceHeader::new(root, None, None).with_extras(other),
            Ok(TraceHeader::new(root, None, None))
        );
    }

    #[test]
    fn with_parent_keeps_lineage() {
        let h = TraceHeader::parse(LAMBDA).unwrap();
        let down = h.with_parent(SegmentId::from_u64(0xabc).unwrap());
        assert_eq!(
            down.encode().as_str(),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000abc;Sampled=1;Lineage=a87bd80c:1|68fd508a:5"
        );
    }
}
