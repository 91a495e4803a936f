//! The error code, message and throttling of a failed call, from its response.

use aws_smithy_runtime_api::http::Headers;

use super::allowlist::{How, Rule};

/// Where JSON protocols put an error's code and message.
const ERROR_MEMBERS: [Rule; 6] = [
    Rule {
        member: "__type",
        key: "code",
        how: How::Value,
    },
    Rule {
        member: "code",
        key: "code",
        how: How::Value,
    },
    Rule {
        member: "Code",
        key: "code",
        how: How::Value,
    },
    Rule {
        member: "message",
        key: "message",
        how: How::Value,
    },
    Rule {
        member: "Message",
        key: "message",
        how: How::Value,
    },
    Rule {
        member: "errorMessage",
        key: "message",
        how: How::Value,
    },
];

/// The error code and message of a failed response: the code from the
/// `x-amzn-errortype` header, else the body's `__type`/`code` (JSON) or
/// `<Code>` (XML), without namespace; the message from the body.
pub(crate) fn error_details(
    headers: &Headers,
    body: Option<&[u8]>,
) -> (Option<String>, Option<String>) {
    // Smithy's rule: what precedes a `:`, then what follows a `#`.
    let clean = |s: &str| {
        let s = s.split_once(':').map_or(s, |(c, _)| c);
        let s = s.rsplit_once('#').map_or(s, |(_, c)| c);
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_string())
    };
    let (code, message) =
        match body.and_then(|b| b.iter().find(|c| !c.is_ascii_whitespace()).map(|c| (b, *c))) {
            Some((body, b'{')) => {
                // Streamed, bounded, stopping at the first code and message:
                // never the whole body built as a value.
                let (mut code, mut message) = (None, None);
                super::extract::from_json(body, &ERROR_MEMBERS, &mut |rule, found| {
                    let super::extract::Found::Str(text) = found else {
                        return;
                    };
                    let text = text.into_owned();
                    match rule.key {
                        "code" => code = code.take().or(Some(text)),
                        _ => message = message.take().or(Some(text)),
                    }
                });
                (code.and_then(|c| clean(&c)), message)
            }
            Some((body, b'<')) => (
                xml_tag(body, "Code").and_then(|c| clean(&c)),
                xml_tag(body, "Message"),
            ),
            _ => (None, None),
        };
    (
        headers.get("x-amzn-errortype").and_then(clean).or(code),
        message,
    )
}

/// The text of the first `<tag>…</tag>` (S3 and query-protocol errors).
fn xml_tag(body: &[u8], tag: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find("</")? + start;
    let value = text[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    Some(value)
}

/// Whether an error code means "throttled", by the SDK's own list.
pub(crate) fn is_throttling(code: &str) -> bool {
    aws_runtime::retries::classifiers::THROTTLING_ERRORS.contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes() {
        let mut h = Headers::new();
        h.insert(
            "x-amzn-errortype",
            "ResourceNotFoundException:http://internal.amazon.com/coral/",
        );
        assert_eq!(
            error_details(&h, None),
            (Some("ResourceNotFoundException".into()), None)
        );
        let empty = Headers::new();
        let json = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"Rate exceeded"}"#;
        assert_eq!(
            error_details(&empty, Some(json)),
            (
                Some("ProvisionedThroughputExceededException".into()),
                Some("Rate exceeded".into())
            )
        );
        let xml = b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The key &amp; more</Message></Error>";
        assert_eq!(
            error_details(&empty, Some(xml)),
            (Some("NoSuchKey".into()), Some("The key & more".into()))
        );
        assert!(is_throttling("ProvisionedThroughputExceededException"));
        assert!(is_throttling("SlowDown"));
        assert!(!is_throttling("ResourceNotFoundException"));
    }
}
