//! What sampling rules look at, read from a root span's fields: the
//! OpenTelemetry HTTP server names (current and older), copied into fixed
//! buffers (no allocation; a longer value is cut, and then matches as cut).

use std::fmt::{self, Write};

use arrayvec::{ArrayString, ArrayVec};
use tracing_core::field::{Field, Visit};

use super::Request;

/// Attributes kept for rules that match on them.
const ATTRIBUTES: usize = 8;

#[derive(Debug, Default)]
pub(crate) struct RequestFields {
    method: ArrayString<16>,
    path: ArrayString<256>,
    host: ArrayString<256>,
    url: ArrayString<512>,
    want_attributes: bool,
    attributes: ArrayVec<(&'static str, ArrayString<128>), ATTRIBUTES>,
}

fn put<const N: usize>(to: &mut ArrayString<N>, value: &str) {
    to.clear();
    let mut end = value.len().min(N);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    to.push_str(&value[..end]);
}

/// A `Write` into a fixed buffer that drops what does not fit.
struct Cut<'a, const N: usize>(&'a mut ArrayString<N>);

impl<const N: usize> Write for Cut<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.0.try_push(c).is_err() {
                break;
            }
        }
        Ok(())
    }
}

impl RequestFields {
    pub(crate) fn new(want_attributes: bool) -> Self {
        RequestFields {
            want_attributes,
            ..RequestFields::default()
        }
    }

    /// The request, for a segment named `service`.
    pub(crate) fn request<'a: 'b, 'b>(
        &'a self,
        service: &'a str,
        attributes: &'b mut ArrayVec<(&'static str, &'a str), ATTRIBUTES>,
    ) -> Request<'b> {
        // `url.full` = scheme://host[:port]/path?query: what the others leave out.
        let url = self.url.as_str();
        let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
        let (authority, rest) = match after_scheme.find('/') {
            Some(i) => after_scheme.split_at(i),
            None => (after_scheme, ""),
        };
        let url_host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, h)| h)
            .split(':')
            .next()
            .unwrap_or("");
        let path = if self.path.is_empty() {
            rest
        } else {
            self.path.as_str()
        };
        let path = path.split(['?', '#']).next().unwrap_or("");
        let host = if self.host.is_empty() {
            url_host
        } else {
            self.host.as_str()
        };
        attributes.clear();
        attributes.extend(self.attributes.iter().map(|(k, v)| (*k, v.as_str())));
        Request {
            service,
            service_type: "",
            host,
            method: &self.method,
            path,
            attributes,
        }
    }

    fn text(&mut self, field: &Field, value: &str) {
        self.text_named(field.name(), value);
    }

    fn text_named(&mut self, name: &'static str, value: &str) {
        match name {
            "http.request.method" | "http.method" => put(&mut self.method, value),
            "url.path" | "http.target" => put(&mut self.path, value),
            "server.address" | "http.host" | "net.host.name" => put(&mut self.host, value),
            "url.full" | "http.url" => put(&mut self.url, value),
            name if self.want_attributes => {
                let mut v = ArrayString::new();
                put(&mut v, value);
                let _ = self.attributes.try_push((name, v));
            }
            _ => {}
        }
    }
}

impl Visit for RequestFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut text = ArrayString::<512>::new();
        let _ = write!(Cut(&mut text), "{value:?}");
        let text = text.trim_matches('"');
        self.text(field, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::rules::Pattern;

    /// A root span's fields, current or older names, as rules see them.
    #[test]
    fn fields_become_the_request_rules_match() {
        type Fields = &'static [(&'static str, &'static str)];
        let cases: &[(Fields, (&str, &str, &str))] = &[
            (
                &[
                    ("http.request.method", "GET"),
                    ("url.path", "/orders/7?x=1"),
                    ("server.address", "shop.example.com"),
                ],
                ("GET", "/orders/7", "shop.example.com"),
            ),
            (
                &[
                    ("http.method", "POST"),
                    ("http.target", "/cart#top"),
                    ("http.host", "h"),
                ],
                ("POST", "/cart", "h"),
            ),
            (
                &[
                    ("http.request.method", "PUT"),
                    ("url.full", "https://user@api.example.com:8443/v1/items?q=2"),
                ],
                ("PUT", "/v1/items", "api.example.com"),
            ),
            (
                &[("http.url", "http://example.com")],
                ("", "", "example.com"),
            ),
        ];
        for (fields, (method, path, host)) in cases {
            let mut f = RequestFields::new(false);
            for (name, value) in *fields {
                f.text_named(name, value);
            }
            let mut attributes = ArrayVec::new();
            let r = f.request("svc", &mut attributes);
            assert_eq!(
                (r.method, r.path, r.host),
                (*method, *path, *host),
                "{fields:?}"
            );
        }
        // Attributes, when some rule wants them, match case-blind.
        let mut f = RequestFields::new(true);
        f.text_named("tier", "Gold");
        let mut attributes = ArrayVec::new();
        let r = f.request("svc", &mut attributes);
        assert_eq!(r.attributes, &[("tier", "Gold")]);
        assert!(Pattern::new("gold").matches(r.attributes[0].1));
        assert!(!Pattern::new("silver").matches(r.attributes[0].1));
    }
}
