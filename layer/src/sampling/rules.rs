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
    /// Wildcards (lowercased).
    Glob(Box<str>),
}

impl Pattern {
    pub(crate) fn new(pattern: &str) -> Pattern {
        if pattern == "*" {
            Pattern::Any
        } else if pattern.contains(['*', '?']) {
            Pattern::Glob(pattern.to_ascii_lowercase().into())
        } else {
            Pattern::Exact(pattern.to_ascii_lowercase().into())
        }
    }

    #[inline]
    pub(crate) fn matches(&self, text: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(p) => p.eq_ignore_ascii_case(text),
            Pattern::Glob(p) => glob(p.as_bytes(), text.as_bytes()),
        }
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
            Some(&c) if c == b'?' || c == text[t].to_ascii_lowercase() => {
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
    #[inline]
    pub(crate) fn matches(&self, r: &Request<'_>) -> bool {
        self.any_resource
            && self.url_path.matches(r.path)
            && self.http_method.matches(r.method)
            && self.host.matches(r.host)
            && self.service_name.matches(r.service)
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
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                Pattern::new(pattern).matches(text),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }

    #[test]
    fn a_long_hostile_glob_stays_linear_in_space_and_terminates() {
        let p = Pattern::new(&"*a".repeat(50));
        let text = "a".repeat(2000) + "b";
        assert!(!p.matches(&text));
    }
}
