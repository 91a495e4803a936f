//! Sampling rules: what a request must look like for a rule to decide it.
//!
//! The patterns are the X-Ray console's: `*` for any run of characters, `?`
//! for one, compared without regard to ASCII case (as the official SDKs
//! do). They are prepared once, when rules arrive, so that matching a
//! request on the caller's thread is comparisons only.

use std::sync::Arc;

use super::reservoir::RuleState;

/// A prepared pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// `*`: anything, including nothing.
    Any,
    /// No wildcard: the text itself (lowercased).
    Exact(Box<str>),
    /// Wildcards (lowercased), with the lengths of the literal text before
    /// the first wildcard and after the last `*`: most requests a rule does
    /// not take differ there, and are turned away without the full match.
    Glob {
        pattern: Box<str>,
        prefix: usize,
        suffix: usize,
        /// The only wildcard is one `*` (`/orders/*`, `*.internal`,
        /// `api.*.com`): prefix and suffix decide alone.
        one_star: bool,
    },
}

impl Pattern {
    pub(crate) fn new(pattern: &str) -> Pattern {
        if pattern == "*" {
            Pattern::Any
        } else if pattern.contains(['*', '?']) {
            let lower = pattern.to_ascii_lowercase();
            let prefix = lower.find(['*', '?']).unwrap_or(lower.len());
            let suffix = match lower.rfind(['*', '?']) {
                Some(i) if lower.as_bytes()[i] == b'*' => lower.len() - i - 1,
                _ => 0,
            };
            let one_star = lower.matches(['*', '?']).count() == 1 && lower.contains('*');
            Pattern::Glob {
                pattern: lower.into(),
                prefix,
                suffix,
                one_star,
            }
        } else {
            Pattern::Exact(pattern.to_ascii_lowercase().into())
        }
    }

    /// Whether `text`, in any ASCII case, matches.
    #[inline(always)]
    pub(crate) fn matches(&self, text: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(p) => eq_lower(text.as_bytes(), p.as_bytes()),
            Pattern::Glob {
                pattern,
                prefix,
                suffix,
                one_star,
            } => {
                let (p, t) = (pattern.as_bytes(), text.as_bytes());
                t.len() >= prefix + suffix
                    && eq_lower(&t[..*prefix], &p[..*prefix])
                    && eq_lower(&t[t.len() - suffix..], &p[p.len() - suffix..])
                    && (*one_star || glob(p, t))
            }
        }
    }

    /// As [`Pattern::matches`], when the text is known to begin with the
    /// pattern's literal prefix (in any case) and that prefix is at most
    /// eight bytes: what [`Quick`] proved is not compared again.
    #[inline(always)]
    fn matches_past_prefix(&self, text: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(p) if p.len() <= 8 => text.len() == p.len(),
            Pattern::Glob {
                pattern,
                prefix,
                suffix,
                one_star,
            } if *prefix <= 8 => {
                let (p, t) = (pattern.as_bytes(), text.as_bytes());
                t.len() >= prefix + suffix
                    && eq_lower(&t[t.len() - suffix..], &p[p.len() - suffix..])
                    && (*one_star || glob(p, t))
            }
            _ => self.matches(text),
        }
    }

    #[cfg(test)]
    pub(crate) fn matches_any_case(&self, text: &str) -> bool {
        self.matches(text)
    }
}

/// Wildcard match, iterative: on a mismatch after a `*`, the `*` takes one
/// more character and the rest is tried again (linear space, no recursion).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            // `?` takes one character, however many bytes it is.
            Some(b'?') => {
                p += 1;
                t += utf8_width(text[t]);
            }
            Some(&c) if c == text[t].to_ascii_lowercase() => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The bytes of the UTF-8 character `lead` begins (1 for a byte that
/// begins none, so that matching always moves on).
fn utf8_width(lead: u8) -> usize {
    match lead {
        0xf0..=0xf7 => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// `text` equals the lowercase `lower` but for ASCII case: eight bytes at
/// a time, the last eight overlapping the previous word (a byte-at-a-time
/// loop was most of a decision's instructions).
#[inline(always)]
fn eq_lower(text: &[u8], lower: &[u8]) -> bool {
    let n = text.len();
    if n != lower.len() {
        return false;
    }
    if n < 8 {
        let mut i = 0;
        while i < n {
            if text[i].to_ascii_lowercase() != lower[i] {
                return false;
            }
            i += 1;
        }
        return true;
    }
    let mut i = 0;
    while i + 8 < n {
        if lowercase(word(&text[i..])) != word(&lower[i..]) {
            return false;
        }
        i += 8;
    }
    lowercase(word(&text[n - 8..])) == word(&lower[n - 8..])
}

/// Eight bytes as a little-endian word.
#[inline(always)]
fn word(eight: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&eight[..8]);
    u64::from_le_bytes(w)
}

/// What a rule looks at in a request, read from the root span's fields.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Request<'a> {
    /// The segment's name (the service name).
    pub(crate) service: &'a str,
    /// The segment's origin (`AWS::EC2::Instance`, …), if known.
    pub(crate) service_type: &'a str,
    pub(crate) host: &'a str,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    /// String fields of the root span, for rules with `Attributes`.
    pub(crate) attributes: &'a [(&'static str, &'a str)],
}

/// Up to eight bytes, lowercased, as one word (zero-padded), and the mask
/// of the bytes taken.
#[inline]
fn pack(bytes: &[u8]) -> (u64, u64) {
    let n = bytes.len();
    if n >= 8 {
        return (lowercase(word(bytes)), u64::MAX);
    }
    // Two overlapping loads instead of a loop: the bytes both cover are
    // the same, so or-ing them is exact.
    let x = if n >= 4 {
        let lo = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let b = &bytes[n - 4..];
        let hi = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        u64::from(lo) | u64::from(hi) << (8 * (n - 4))
    } else if n > 0 {
        u64::from(bytes[0])
            | u64::from(bytes[n / 2]) << (8 * (n / 2))
            | u64::from(bytes[n - 1]) << (8 * (n - 1))
    } else {
        0
    };
    (lowercase(x), (1u64 << (8 * n)) - 1)
}

/// ASCII lowercase of eight bytes at once: `A`..=`Z` gain 0x20, every
/// other byte (UTF-8 continuation bytes included) is left alone.
#[inline]
fn lowercase(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low = x & LOW7;
    // High bit of each byte: its low seven bits are >= 'A', resp. > 'Z'
    // (no sum carries into the next byte: 0x7f + 0x3f < 0x100).
    let at_least_a = low + 0x3f3f_3f3f_3f3f_3f3f;
    let above_z = low + 0x2525_2525_2525_2525;
    let upper = at_least_a & !above_z & !x & HIGH;
    x | (upper >> 2)
}

/// A rule's first test, in two word comparisons: its method (when exact
/// and short) and the first bytes of its path. Most rules a request does
/// not match fail here. (Testing the service name's first and the host's
/// last bytes too cost more in packing them than it saved.)
#[derive(Clone, Copy, Debug)]
pub(crate) struct Quick {
    /// The method packed, or 0 for any.
    method: u64,
    prefix: u64,
    mask: u64,
}

/// The request's side of [`Quick`], packed once per decision.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QuickRequest {
    method: u64,
    path: u64,
}

impl QuickRequest {
    pub(crate) fn new(r: &Request<'_>) -> QuickRequest {
        let method = if r.method.len() <= 8 {
            pack(r.method.as_bytes()).0
        } else {
            u64::MAX
        };
        QuickRequest {
            method,
            path: pack(r.path.as_bytes()).0,
        }
    }
}

impl Quick {
    pub(crate) fn new(rule: &Rule) -> Quick {
        let method = match &rule.http_method {
            Pattern::Exact(m) if m.len() <= 8 && !m.is_empty() => pack(m.as_bytes()).0,
            _ => 0,
        };
        let literal = match &rule.url_path {
            Pattern::Exact(p) => p.as_bytes(),
            Pattern::Glob {
                pattern, prefix, ..
            } => &pattern.as_bytes()[..*prefix],
            Pattern::Any => &[],
        };
        let (prefix, mask) = pack(literal);
        Quick {
            method,
            prefix,
            mask,
        }
    }

    /// `false` only if the rule cannot match (`true` says nothing).
    #[inline(always)]
    pub(crate) fn admits(&self, r: &QuickRequest) -> bool {
        (self.method == 0 || self.method == r.method) && r.path & self.mask == self.prefix
    }

    /// Whether `rule`, whose quick test this is and admitted `r`, matches
    /// it: the method and the path's first bytes the quick test compared
    /// are not compared again.
    #[inline(always)]
    pub(crate) fn matches(&self, rule: &Rule, r: &Request<'_>) -> bool {
        let method = if self.method != 0 {
            // Equal packed words of at most eight bytes: equal if as long.
            matches!(&rule.http_method, Pattern::Exact(m) if m.len() == r.method.len())
        } else {
            rule.http_method.matches(r.method)
        };
        rule.any_resource
            && method
            && rule.url_path.matches_past_prefix(r.path)
            && rule.matches_rest(r)
    }
}

/// One rule, prepared.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub(crate) name: Box<str>,
    pub(crate) priority: i64,
    pub(crate) service_name: Pattern,
    pub(crate) service_type: Pattern,
    pub(crate) host: Pattern,
    pub(crate) http_method: Pattern,
    pub(crate) url_path: Pattern,
    /// An SDK does not know its own resource's ARN: a rule naming one
    /// (anything but `*`) never matches, as in the official SDKs.
    pub(crate) any_resource: bool,
    pub(crate) attributes: Box<[(Box<str>, Pattern)]>,
    /// Reservoir, rate and counters; shared with the same rule's next
    /// version, so statistics and quotas survive a refresh of the rules.
    pub(crate) state: Arc<RuleState>,
}

impl Rule {
    /// The whole test, as [`Quick::matches`] after [`Quick::admits`].
    #[cfg(test)]
    pub(crate) fn matches(&self, r: &Request<'_>) -> bool {
        // The cheap and telling tests first.
        self.any_resource
            && self.http_method.matches(r.method)
            && self.url_path.matches(r.path)
            && self.matches_rest(r)
    }

    /// The tests after method and path.
    #[inline(always)]
    fn matches_rest(&self, r: &Request<'_>) -> bool {
        self.service_name.matches(r.service)
            && self.host.matches(r.host)
            && self.service_type.matches(r.service_type)
            && self.attributes.iter().all(|(key, pattern)| {
                r.attributes
                    .iter()
                    .any(|(k, v)| *k == &**key && pattern.matches(v))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_the_console_means() {
        let cases = [
            ("*", "", true),
            ("*", "/anything", true),
            ("/health", "/health", true),
            ("/health", "/HEALTH", true),
            ("/health", "/health/", false),
            ("/orders/*", "/orders/7", true),
            ("/orders/*", "/orders/", true),
            ("/orders/*", "/orders", false),
            ("/orders/*/items", "/orders/7/items", true),
            ("/orders/*/items", "/orders/7/8/items", true),
            ("/orders/*/items", "/orders/7/item", false),
            ("GET", "get", true),
            ("?ET", "GET", true),
            ("?ET", "ET", false),
            ("*.example.com", "api.example.com", true),
            ("*.example.com", "example.com", false),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("**", "x", true),
            ("a?", "ab", true),
            ("a?", "a", false),
            ("a*?", "a", false),
            ("*?b", "xb", true),
            ("?*b", "b", false),
            ("ab*ab", "ab", false),
            ("ab*ab", "abab", true),
            ("/a/*x", "/a/x", true),
            ("/?", "/é", true),
            ("/??", "/é", false),
            ("?*b", "éb", true),
            ("a?c", "a€c", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                Pattern::new(pattern).matches_any_case(text),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }

    #[test]
    fn a_long_hostile_glob_stays_linear_in_space_and_terminates() {
        let p = Pattern::new(&"*a".repeat(50));
        let text = "a".repeat(2000) + "b";
        assert!(!glob(b"*a*a*a*a*a*a*a*a*a*a*a", text.as_bytes()));
        assert!(!p.matches(&text));
    }

    #[test]
    fn packing_takes_the_bytes_a_loop_takes() {
        for n in 0..=12 {
            let text: Vec<u8> = (0..n).map(|i| b"aBcDeFgHiJkL"[i]).collect();
            let mut expected = 0u64;
            for (i, b) in text.iter().take(8).enumerate() {
                expected |= u64::from(b.to_ascii_lowercase()) << (8 * i);
            }
            assert_eq!(pack(&text).0, expected, "{n}");
        }
    }

    #[test]
    fn the_quick_test_never_turns_away_a_request_a_rule_matches() {
        let patterns = [
            "*",
            "shop",
            "Shop-V1",
            "/api/orders/*",
            "api.*.com",
            "*.internal",
            "?ET",
            "a*b?c",
            "/h",
            "exactly-eight",
            "exactly8",
            "/api/ord*",
            "/api/ord?rs/*",
            "GET\0",
            "",
        ];
        let texts = [
            "shop",
            "SHOP-v1",
            "/api/orders/7",
            "/API/ORDERS/",
            "api.example.com",
            "db.internal",
            "GET",
            "aXbYc",
            "/h",
            "",
            "exactly-eight",
            "EXACTLY8",
            "exactly8x",
            "/api/ord",
            "/api/orders/1",
            "GET\0",
            "get\0",
            "/é",
            "naïve-ü",
        ];
        for p in patterns {
            for t in texts {
                let pattern = Pattern::new(p);
                let rule = Rule {
                    name: "r".into(),
                    priority: 1,
                    service_name: pattern.clone(),
                    service_type: Pattern::Any,
                    host: pattern.clone(),
                    http_method: pattern.clone(),
                    url_path: pattern.clone(),
                    any_resource: true,
                    attributes: Box::new([]),
                    state: Arc::new(RuleState::local(1, 0.0)),
                };
                let request = Request {
                    service: t,
                    host: t,
                    method: t,
                    path: t,
                    ..Request::default()
                };
                let quick = Quick::new(&rule);
                let admitted = quick.admits(&QuickRequest::new(&request));
                if rule.matches(&request) {
                    assert!(admitted, "{p} ~ {t}");
                }
                if admitted {
                    assert_eq!(
                        quick.matches(&rule, &request),
                        rule.matches(&request),
                        "{p} ~ {t}"
                    );
                }
            }
        }
    }

    #[test]
    fn eq_lower_agrees_with_a_byte_at_a_time_comparison() {
        let texts = [
            "",
            "a",
            "GET",
            "/Health",
            "/api/orders/42",
            "Api.Example.COM",
            "ü/Ä",
            "x\0",
        ];
        for t in texts {
            for l in texts.iter().map(|l| l.to_ascii_lowercase()) {
                let expected = t.len() == l.len()
                    && t.bytes()
                        .zip(l.bytes())
                        .all(|(a, b)| a.to_ascii_lowercase() == b);
                assert_eq!(
                    eq_lower(t.as_bytes(), l.as_bytes()),
                    expected,
                    "{t:?} ~ {l:?}"
                );
            }
        }
    }

    #[test]
    fn eight_bytes_lowercase_as_one_byte_at_a_time_does() {
        for b in 0..=255u8 {
            let x = u64::from_le_bytes([b, b'Q', 0xc3, b'@', b'[', b'a', b'Z', b]);
            let expected = u64::from_le_bytes(x.to_le_bytes().map(|c| c.to_ascii_lowercase()));
            assert_eq!(lowercase(x), expected, "{b:#x}");
        }
    }
}
