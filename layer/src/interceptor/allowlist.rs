//! The official X-Ray SDKs' per-operation parameter allow-list
//! (`layer/data/aws-whitelist.json`, the Python SDK's file): which request
//! and response members of which operations are recorded, under which key.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

const DATA: &str = include_str!("../../data/aws-whitelist.json");

/// How a member is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum How {
    /// Its value, with its JSON type.
    Value,
    /// The keys of a map, as a JSON list (`table_names` of `BatchGetItem`).
    Keys,
    /// The length of a list (`message_count` of `ReceiveMessage`).
    Count,
}

/// One member to record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    /// The member's name in the API (`TableName`).
    pub(crate) member: &'static str,
    /// The key under `aws` (`table_name`).
    pub(crate) key: &'static str,
    pub(crate) how: How,
}

/// The rules of one operation.
#[derive(Clone, Debug, Default)]
pub(crate) struct Operation {
    pub(crate) request: Vec<Rule>,
    pub(crate) response: Vec<Rule>,
}

/// Every service and operation of the list.
#[derive(Debug, Default)]
pub(crate) struct AllowList {
    services: HashMap<String, HashMap<String, Operation>>,
}

/// `QueueOwnerAWSAccountId` → `queue_owner_aws_account_id`, the Python SDK's rule.
pub(crate) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Names live as long as the process (the list is parsed once into a static).
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn rules(op: &Value, params: &str, descriptors: &str) -> Vec<Rule> {
    let mut out = Vec::new();
    for member in op[params]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        out.push(Rule {
            member: leak(member.to_string()),
            key: leak(snake_case(member)),
            how: How::Value,
        });
    }
    if let Some(map) = op[descriptors].as_object() {
        for (member, d) in map {
            let key = d["rename_to"]
                .as_str()
                .map_or_else(|| snake_case(member), str::to_string);
            let how = if d["get_keys"] == true {
                How::Keys
            } else if d["get_count"] == true {
                How::Count
            } else {
                How::Value
            };
            out.push(Rule {
                member: leak(member.clone()),
                key: leak(key),
                how,
            });
        }
    }
    out
}

impl AllowList {
    fn parse(text: &str) -> AllowList {
        let Ok(root) = serde_json::from_str::<Value>(text) else {
            return AllowList::default();
        };
        let mut services = HashMap::new();
        for (service, body) in root["services"].as_object().into_iter().flatten() {
            let mut ops = HashMap::new();
            for (name, op) in body["operations"].as_object().into_iter().flatten() {
                ops.insert(
                    name.clone(),
                    Operation {
                        request: rules(op, "request_parameters", "request_descriptors"),
                        response: rules(op, "response_parameters", "response_descriptors"),
                    },
                );
            }
            services.insert(service.clone(), ops);
        }
        AllowList { services }
    }

    /// The list, parsed on first use.
    pub(crate) fn get() -> &'static AllowList {
        static LIST: OnceLock<AllowList> = OnceLock::new();
        LIST.get_or_init(|| AllowList::parse(DATA))
    }

    /// The rules for an operation of a service, by [`service_key`].
    pub(crate) fn operation(&self, service_key: &str, operation: &str) -> Option<&Operation> {
        self.services.get(service_key)?.get(operation)
    }
}

/// A service's key in the list: short, kept inline (looked up twice per call).
pub(crate) type ServiceKey = arrayvec::ArrayString<64>;

/// The list's name for a service, from the SDK's metadata name
/// (`DynamoDB` → `dynamodb`, `SageMaker Runtime` → `runtime.sagemaker`),
/// without allocating. A name too long to be in the list gives one that is
/// not in it.
pub(crate) fn service_key(service: &str) -> ServiceKey {
    let mut key = ServiceKey::new();
    for c in service.chars().filter(|c| !c.is_whitespace()) {
        if key.try_push(c.to_ascii_lowercase()).is_err() {
            break;
        }
    }
    if key.as_str() == "sagemakerruntime" {
        key.clear();
        key.push_str("runtime.sagemaker");
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_follows_the_python_sdk() {
        assert_eq!(snake_case("TableName"), "table_name");
        assert_eq!(snake_case("QueueUrl"), "queue_url");
        assert_eq!(
            snake_case("QueueOwnerAWSAccountId"),
            "queue_owner_aws_account_id"
        );
        assert_eq!(snake_case("Key"), "key");
        assert_eq!(snake_case("TopicArn"), "topic_arn");
    }

    #[test]
    fn the_list_parses() {
        let list = AllowList::get();
        let op = |service: &str, name: &str| list.operation(&service_key(service), name);
        let get_item = op("DynamoDB", "GetItem").unwrap();
        assert!(
            get_item
                .request
                .iter()
                .any(|r| r.member == "TableName" && r.key == "table_name")
        );
        let put = op("S3", "PutObject").unwrap();
        assert!(
            put.request
                .iter()
                .any(|r| r.member == "Bucket" && r.key == "bucket_name")
        );
        assert!(
            put.request
                .iter()
                .any(|r| r.member == "Key" && r.key == "key")
        );
        let send = op("SQS", "SendMessage").unwrap();
        assert!(send.request.iter().any(|r| r.key == "queue_url"));
        assert!(
            send.request
                .iter()
                .any(|r| r.key == "message_attribute_names" && r.how == How::Keys)
        );
        let batch = op("dynamodb", "BatchGetItem").unwrap();
        assert!(
            batch
                .request
                .iter()
                .any(|r| r.key == "table_names" && r.how == How::Keys)
        );
        assert!(op("SageMaker Runtime", "InvokeEndpoint").is_some());
        assert!(op("SNS", "Publish").is_some());
        assert!(op("Nope", "Nothing").is_none());
    }

    /// Every member of the list has a place the interceptor reads it from:
    /// any member of a JSON body (DynamoDB, SQS) or form (SNS); for the REST
    /// services, the URI, query string, headers or status that carry it. A
    /// member added to the list for a REST service fails here until it is.
    #[test]
    fn every_member_of_the_list_has_a_route() {
        let rest: &[(&str, &[&str])] = &[
            (
                "s3",
                &["Bucket", "Key", "CopySource", "Prefix", "VersionId"],
            ),
            (
                "lambda",
                &[
                    "FunctionName",
                    "InvocationType",
                    "LogType",
                    "Qualifier",
                    "FunctionError",
                    "StatusCode",
                    "Status",
                ],
            ),
            ("runtime.sagemaker", &["EndpointName"]),
        ];
        let list = AllowList::get();
        let mut members = 0;
        for (service, ops) in &list.services {
            for op in ops.values() {
                for rule in op.request.iter().chain(&op.response) {
                    members += 1;
                    match service.as_str() {
                        "dynamodb" | "sqs" | "sns" => {}
                        other => {
                            let known = rest.iter().find(|(s, _)| *s == other);
                            assert!(
                                known.is_some_and(|(_, m)| m.contains(&rule.member)),
                                "{other}: {}",
                                rule.member
                            );
                        }
                    }
                }
            }
        }
        assert_eq!(list.services.len(), 6);
        assert!(members > 200, "{members}");
    }
}
