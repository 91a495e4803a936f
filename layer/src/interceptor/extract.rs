//! Reading allow-listed members out of a serialized request or response.
//!
//! The operation's input is type-erased by the time an interceptor sees it,
//! so members are read where the protocol put them: the top level of an
//! `application/x-amz-json` body (DynamoDB, SQS), a form body (query
//! protocol: SNS), or for REST protocols the URI (S3's bucket and key,
//! Lambda's function name), the query string or an `x-amz-*` header. A REST
//! body is the user's payload, never read. A JSON body is streamed: members
//! not listed are skipped without being built.

use std::borrow::Cow;

use arrayvec::ArrayVec;
use xray_emitter::record::MAX_VALUE_BYTES;

use super::allowlist::{How, Rule, snake_case};
use super::scan::{self, Raw};

/// A recorded value; a string borrowed from the body where it can be (one
/// with no escapes), so recording it allocates nothing.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Found<'a> {
    Str(Cow<'a, str>),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    /// JSON text recorded as it is: an object or list as the service
    /// returned it, a list of a map's keys, or a string with escapes.
    Json(Cow<'a, str>),
}

impl Found<'_> {
    /// The same value, owning its text.
    #[cfg(test)]
    pub(crate) fn into_owned(self) -> Found<'static> {
        match self {
            Found::Str(s) => Found::Str(Cow::Owned(s.into_owned())),
            Found::Json(s) => Found::Json(Cow::Owned(s.into_owned())),
            Found::I64(v) => Found::I64(v),
            Found::U64(v) => Found::U64(v),
            Found::F64(v) => Found::F64(v),
            Found::Bool(v) => Found::Bool(v),
        }
    }
}

/// Bytes of a body examined at most, on the caller's thread: a DynamoDB
/// Query page is 1 MB and an SQS ReceiveMessage answer up to 10 MB, and the
/// members X-Ray records nearly always come first. Members that start past
/// this are not recorded.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// Calls `out` for every rule whose member is at the top level of the JSON
/// object `body`, reading no further than every rule's member (or
/// [`MAX_BODY_BYTES`]). Returns whether it stopped early, with every rule's
/// member seen.
pub(crate) fn from_json(
    body: &[u8],
    rules: &[Rule],
    out: &mut dyn FnMut(&Rule, Found<'_>),
) -> bool {
    let body = &body[..body.len().min(MAX_BODY_BYTES)];
    // Rules past the 128th are read, but not waited for.
    let wanted = rules.len().min(128);
    let mut seen = 0u128;
    for (key, raw) in scan::members(body) {
        let Some(i) = rules.iter().position(|r| r.member.as_bytes() == key) else {
            continue;
        };
        if i < 128 {
            seen |= 1 << i;
        }
        let rule = &rules[i];
        match rule.how {
            How::Value => {
                if let Some(found) = value(raw) {
                    out(rule, found);
                }
            }
            How::Count => {
                if let Raw::List(list) = raw
                    && let Some(n) = scan::count(list)
                {
                    out(rule, Found::U64(n));
                }
            }
            How::Keys => {
                if let Raw::Object(object) = raw {
                    let mut buf = ArrayVec::new();
                    out(rule, Found::Json(Cow::Borrowed(keys(object, &mut buf))));
                }
            }
        }
        if wanted > 0 && seen.count_ones() as usize == wanted && rules.len() <= 128 {
            // Nothing more to find: the rest is never read.
            return true;
        }
    }
    false
}

/// A member's value with its JSON type: strings, numbers and booleans as
/// such, objects and lists as their text; `null` is not recorded.
fn value(raw: Raw<'_>) -> Option<Found<'_>> {
    Some(match raw {
        Raw::Null => return None,
        Raw::Bool(b) => Found::Bool(b),
        Raw::Str { .. } => match raw.plain_str() {
            Some(s) => Found::Str(Cow::Borrowed(s)),
            None => Found::Json(Cow::Borrowed(raw.text()?)),
        },
        Raw::Number(token) => {
            let text = raw.text()?;
            let integer = !token.iter().any(|b| matches!(b, b'.' | b'e' | b'E'));
            let parsed = if !integer {
                text.parse().ok().map(Found::F64)
            } else if text.starts_with('-') {
                text.parse().ok().map(Found::I64)
            } else {
                text.parse().ok().map(Found::U64)
            };
            // An integer too big for 64 bits stays as the service wrote it.
            parsed.unwrap_or(Found::Json(Cow::Borrowed(text)))
        }
        Raw::Object(_) | Raw::List(_) => Found::Json(Cow::Borrowed(raw.text()?)),
    })
}

/// Room for a list of keys: one byte past what a value may hold, so a list
/// that does not fit is cut (and counted) by the emitter.
const KEYS_BYTES: usize = MAX_VALUE_BYTES + 1;

/// The keys of `object` as a JSON list, written into `buf`.
fn keys<'b>(object: &[u8], buf: &'b mut ArrayVec<u8, KEYS_BYTES>) -> &'b str {
    let put = |bytes: &[u8], buf: &mut ArrayVec<u8, KEYS_BYTES>| {
        let room = buf.remaining_capacity().min(bytes.len());
        let _ = buf.try_extend_from_slice(&bytes[..room]);
        room == bytes.len()
    };
    let mut fits = put(b"[", buf);
    for (i, (key, _)) in scan::members(object).enumerate() {
        fits = fits
            && (i == 0 || put(b",", buf))
            && put(b"\"", buf)
            && put(key, buf)
            && put(b"\"", buf);
        if !fits {
            break;
        }
    }
    let _ = fits && put(b"]", buf);
    match std::str::from_utf8(buf) {
        Ok(text) => text,
        // Cut inside a character: keep the characters before it.
        Err(e) => std::str::from_utf8(&buf[..e.valid_up_to()]).unwrap_or_default(),
    }
}

/// `%XX` and (in forms) `+` decoded; invalid escapes kept as they are.
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `name=value` pairs of a form or query string, still encoded: member
/// names are plain ASCII, so only a value that is wanted gets decoded.
fn pairs(text: &str) -> impl Iterator<Item = (&str, &str)> {
    (text.split('&'))
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// Calls `out` for every rule whose member is a field of the form body.
pub(crate) fn from_form(body: &[u8], rules: &[Rule], out: &mut dyn FnMut(&Rule, Found<'_>)) {
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    for (k, v) in pairs(text) {
        if let Some(rule) = rules.iter().find(|r| r.how == How::Value && r.member == k) {
            out(rule, Found::Str(Cow::Owned(percent_decode(v, true))));
        }
    }
}

/// The parts of an absolute URI: host (without port), path, query.
fn split_uri(uri: &str) -> (&str, &str, &str) {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let (authority, path_query) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.rfind(':') {
        Some(i) if !host.ends_with(']') => &host[..i],
        _ => host,
    };
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    (host, path, query)
}

/// `FunctionName` → `x-amz-function-name`, as the SDKs name their headers.
fn header_name(member: &str) -> String {
    format!("x-amz-{}", snake_case(member).replace('_', "-"))
}

/// Members REST protocols put in the URI, query string or headers.
pub(crate) fn from_rest(
    service: &str,
    uri: &str,
    header: &dyn Fn(&str) -> Option<String>,
    bucket: Option<&str>,
    rules: &[Rule],
    out: &mut dyn FnMut(&Rule, Found<'_>),
) {
    let (host, path, query) = split_uri(uri);
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect();
    let after = |marker: &str| {
        segments
            .iter()
            .position(|s| s == marker)
            .and_then(|i| segments.get(i + 1).cloned())
    };
    for rule in rules.iter().filter(|r| r.how == How::Value) {
        let value = match (service, rule.member) {
            ("s3", "Bucket") => bucket
                .map(str::to_string)
                .or_else(|| s3_bucket(host, &segments)),
            ("s3", "Key") => s3_key(host, path, bucket.or(s3_bucket(host, &segments).as_deref())),
            ("lambda", "FunctionName") => after("functions"),
            ("runtime.sagemaker", "EndpointName") => after("endpoints"),
            (_, member) => pairs(query)
                .find(|(k, _)| k.eq_ignore_ascii_case(member))
                .map(|(_, v)| percent_decode(v, true))
                .or_else(|| header(&header_name(member))),
        };
        if let Some(v) = value {
            out(rule, Found::Str(Cow::Owned(v)));
        }
    }
}

/// The bucket of an S3 URI: the first label of a virtual-hosted AWS
/// endpoint, else the first path segment.
fn s3_bucket(host: &str, segments: &[String]) -> Option<String> {
    if let Some(i) = host.find(".s3.").or_else(|| host.find(".s3-")) {
        return Some(host[..i].to_string());
    }
    segments.first().cloned()
}

/// The object key: the path, without the bucket if the URI is path-style
/// (on a virtual-hosted URI, where the host names the bucket, a key that
/// starts with the bucket's name is kept whole).
fn s3_key(host: &str, path: &str, bucket: Option<&str>) -> Option<String> {
    let mut rest = path.strip_prefix('/').unwrap_or(path);
    let path_style = bucket.filter(|b| {
        !host
            .strip_prefix(b)
            .is_some_and(|after| after.starts_with('.'))
    });
    if let Some(r) = path_style.and_then(|b| rest.strip_prefix(b))
        && (r.is_empty() || r.starts_with('/'))
    {
        rest = r.strip_prefix('/').unwrap_or(r);
    }
    (!rest.is_empty()).then(|| percent_decode(rest, false))
}

/// The value of `bucket: Some("…")` in the debug form of the endpoint
/// parameters, which is where the SDK keeps an S3 bucket.
pub(crate) fn bucket_from_params(debug: &str) -> Option<&str> {
    let start = debug.find("bucket: Some(\"")? + "bucket: Some(\"".len();
    let len = debug[start..].find('"')?;
    Some(&debug[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interceptor::allowlist::AllowList;

    fn collect(
        f: impl FnOnce(&mut dyn FnMut(&Rule, Found<'_>)),
    ) -> Vec<(&'static str, Found<'static>)> {
        let mut v = Vec::new();
        f(&mut |r: &Rule, found: Found<'_>| v.push((r.key, found.into_owned())));
        v
    }

    #[test]
    fn reading_stops_once_every_member_is_found() {
        let rules = [
            Rule {
                member: "Count",
                key: "count",
                how: How::Value,
            },
            Rule {
                member: "TableName",
                key: "table_name",
                how: How::Value,
            },
        ];
        let items = format!("[{}1]", "1,".repeat(1_000_000));
        let body = format!(r#"{{"Count":2,"TableName":"t","Items":{items}}}"#);
        let mut found = Vec::new();
        let stopped = from_json(body.as_bytes(), &rules, &mut |r, f| {
            found.push((r.key, f.into_owned()))
        });
        assert!(stopped, "the 2 MB of items after the members are not read");
        assert_eq!(
            found,
            [
                ("count", Found::U64(2)),
                ("table_name", Found::Str("t".into()))
            ]
        );
    }

    #[test]
    fn a_member_past_the_cap_is_not_recorded() {
        let rules = [Rule {
            member: "LastKey",
            key: "last_key",
            how: How::Value,
        }];
        let filler = "x".repeat(MAX_BODY_BYTES);
        let body = format!(r#"{{"Filler":"{filler}","LastKey":"k"}}"#);
        let mut found = Vec::new();
        assert!(!from_json(body.as_bytes(), &rules, &mut |r, f| found
            .push((r.key, f.into_owned()))));
        assert!(
            found.is_empty(),
            "nothing past {MAX_BODY_BYTES} bytes is examined"
        );
    }

    #[test]
    fn json_top_level_members() {
        let rules = &AllowList::get()
            .operation("dynamodb", "GetItem")
            .unwrap()
            .request;
        let body = br#"{"Key":{"id":{"S":"1"}},"TableName":"orders","ConsistentRead":true,"ProjectionExpression":"a, b"}"#;
        let v = collect(|out| {
            from_json(body, rules, out);
        });
        assert!(v.contains(&("table_name", Found::Str("orders".into()))));
        assert!(v.contains(&("consistent_read", Found::Bool(true))));
        assert!(v.contains(&("projection_expression", Found::Str("a, b".into()))));
        let batch = &AllowList::get()
            .operation("dynamodb", "BatchGetItem")
            .unwrap()
            .request;
        let body = br#"{"RequestItems":{"a":{"Keys":[]},"b":{"Keys":[]}}}"#;
        assert_eq!(
            collect(|out| {
                from_json(body, batch, out);
            }),
            vec![("table_names", Found::Json(r#"["a","b"]"#.into()))]
        );
        let get = &AllowList::get()
            .operation("dynamodb", "GetItem")
            .unwrap()
            .response;
        let body = br#"{"ConsumedCapacity":{"CapacityUnits":0.5,"TableName":"orders"},"Item":{}}"#;
        assert_eq!(
            collect(|out| {
                from_json(body, get, out);
            }),
            vec![(
                "consumed_capacity",
                Found::Json(r#"{"CapacityUnits":0.5,"TableName":"orders"}"#.into())
            )]
        );
        let rx = &AllowList::get()
            .operation("sqs", "ReceiveMessage")
            .unwrap()
            .response;
        let body = br#"{"Messages":[{"Body":"x"},{"Body":"y"}]}"#;
        assert_eq!(
            collect(|out| {
                from_json(body, rx, out);
            }),
            vec![("message_count", Found::U64(2))]
        );
        assert!(
            collect(|out| {
                from_json(b"not json", rules, out);
            })
            .is_empty()
        );
    }

    #[test]
    fn values_keep_their_json_type() {
        let rules = &AllowList::get()
            .operation("dynamodb", "Query")
            .unwrap()
            .request;
        let body = br#"{"Limit":10,"ScanIndexForward":false,"TableName":"a\"b","IndexName":null,"Select":-1,"ConsistentRead":1.5e2,"ProjectionExpression":123456789012345678901234}"#;
        let v = collect(|out| {
            from_json(body, rules, out);
        });
        assert!(v.contains(&("limit", Found::U64(10))));
        assert!(v.contains(&("scan_index_forward", Found::Bool(false))));
        assert!(v.contains(&("table_name", Found::Json(r#""a\"b""#.into()))));
        assert!(v.contains(&("select", Found::I64(-1))));
        assert!(v.contains(&("consistent_read", Found::F64(150.0))));
        assert!(v.contains(&(
            "projection_expression",
            Found::Json("123456789012345678901234".into())
        )));
        assert!(
            !v.iter().any(|(k, _)| *k == "index_name"),
            "null is not recorded"
        );
    }

    #[test]
    fn a_list_of_keys_too_long_for_a_value_is_cut_by_the_emitter() {
        let object = format!(
            "{{{}}}",
            (0..200)
                .map(|i| format!("\"table{i:03}\":{{}}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut buf = ArrayVec::new();
        let text = keys(object.as_bytes(), &mut buf);
        assert_eq!(text.len(), KEYS_BYTES, "longer than a value may be");
        assert!(text.starts_with(r#"["table000","table001""#));
        let mut small = ArrayVec::new();
        assert_eq!(
            keys(br#"{"a":1,"b\u00e9":{"x":[]}}"#, &mut small),
            r#"["a","b\u00e9"]"#
        );
    }

    #[test]
    fn form_members() {
        let rules = &AllowList::get()
            .operation("sns", "Publish")
            .unwrap()
            .request;
        let body = b"Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A1%3Atopic&Message=hi+there";
        assert_eq!(
            collect(|out| from_form(body, rules, out)),
            vec![(
                "topic_arn",
                Found::Str("arn:aws:sns:us-east-1:1:topic".into())
            )]
        );
    }

    #[test]
    fn s3_bucket_and_key() {
        let rules = &AllowList::get()
            .operation("s3", "PutObject")
            .unwrap()
            .request;
        let none = |_: &str| None;
        for (uri, bucket) in [
            (
                "https://my-bucket.s3.us-east-1.amazonaws.com/dir/a%20b.txt?x-id=PutObject",
                None,
            ),
            ("http://localhost:4566/my-bucket/dir/a%20b.txt", None),
            (
                "https://my-bucket.localhost/dir/a%20b.txt",
                Some("my-bucket"),
            ),
        ] {
            let mut v = collect(|out| from_rest("s3", uri, &none, bucket, rules, out));
            v.sort_by_key(|(k, _)| *k);
            assert_eq!(
                v,
                vec![
                    ("bucket_name", Found::Str("my-bucket".into())),
                    ("key", Found::Str("dir/a b.txt".into()))
                ],
                "{uri}"
            );
        }
        // A key that starts with the bucket's name, virtual-hosted and path-style.
        for (uri, bucket) in [
            ("https://logs.s3.eu-west-1.amazonaws.com/logs/2024/x", None),
            (
                "https://logs.s3.eu-west-1.amazonaws.com/logs/2024/x",
                Some("logs"),
            ),
            ("http://localhost:4566/logs/logs/2024/x", None),
        ] {
            let v = collect(|out| from_rest("s3", uri, &none, bucket, rules, out));
            assert!(
                v.contains(&("key", Found::Str("logs/2024/x".into()))),
                "{uri}: {v:?}"
            );
        }
    }

    #[test]
    fn header_names() {
        assert_eq!(header_name("InvocationType"), "x-amz-invocation-type");
        assert_eq!(header_name("FunctionError"), "x-amz-function-error");
        assert_eq!(
            header_name("QueueOwnerAWSAccountId"),
            "x-amz-queue-owner-aws-account-id"
        );
    }

    #[test]
    fn lambda_invoke() {
        let rules = &AllowList::get()
            .operation("lambda", "Invoke")
            .unwrap()
            .request;
        let headers = |h: &str| (h == "x-amz-invocation-type").then(|| "Event".to_string());
        let uri = "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/my-fn/invocations?Qualifier=live";
        let mut v = collect(|out| from_rest("lambda", uri, &headers, None, rules, out));
        v.sort_by_key(|(k, _)| *k);
        assert_eq!(
            v,
            vec![
                ("function_name", Found::Str("my-fn".into())),
                ("invocation_type", Found::Str("Event".into())),
                ("qualifier", Found::Str("live".into())),
            ]
        );
    }

    #[test]
    fn endpoint_params() {
        let debug = r#"TypeErasedBox[!Clone]:Params { bucket: Some("my.bucket"), region: Some("us-east-1") }"#;
        assert_eq!(bucket_from_params(debug), Some("my.bucket"));
        assert_eq!(bucket_from_params("Params { bucket: None }"), None);
    }

    #[test]
    fn uris() {
        assert_eq!(
            split_uri("https://h.example:443/a/b?c=d"),
            ("h.example", "/a/b", "c=d")
        );
        assert_eq!(split_uri("http://[::1]/x"), ("[::1]", "/x", ""));
        assert_eq!(percent_decode("a%2Fb%zz%", false), "a/b%zz%");
    }
}
