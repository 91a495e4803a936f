//! Every allow-listed parameter, with the JSON type the service gave it: real
//! SDK clients of each protocol (DynamoDB and SQS: awsJson; SNS: query; S3 and
//! Lambda: REST), answered as the services answer by the SDK's replay
//! client. Each call's `aws` block holds exactly the members the official
//! X-Ray SDKs record for it, value for value (the Node SDK's form where the
//! two differ: a map's keys as a list).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    KeysAndAttributes, Projection, ProjectionType, ProvisionedThroughput, ReturnConsumedCapacity,
    ScalarAttributeType, Select,
};
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use serde_json::{Value as Json, json};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_xray::{XRayInterceptor, XRaySubscriber};
use xray_testkit::{Daemon, entities};

fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> StaticReplayClient {
    let request = http::Request::builder()
        .uri("https://example.com/")
        .body(SdkBody::empty())
        .unwrap();
    let mut response = http::Response::builder().status(status);
    for (k, v) in headers {
        response = response.header(*k, *v);
    }
    let response = response.body(SdkBody::from(body.to_string())).unwrap();
    StaticReplayClient::new(vec![ReplayEvent::new(request, response)])
}

fn json_answer(body: &str) -> StaticReplayClient {
    answer(
        200,
        &[
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amzn-requestid", "REQ"),
        ],
        body,
    )
}

macro_rules! client {
    ($sdk:ident, $http:expr) => {
        $sdk::Client::from_conf(
            $sdk::Config::builder()
                .region($sdk::config::Region::new("us-east-1"))
                .credentials_provider($sdk::config::Credentials::new(
                    "AKID", "secret", None, None, "test",
                ))
                .http_client($http)
                .interceptor(XRayInterceptor::default())
                .build(),
        )
    };
}

/// The allow-listed members of the one AWS call `f` makes, inside a sampled
/// invocation: its `aws` block without what every call carries.
async fn recorded<F: Future<Output = ()>>(f: F) -> Json {
    let daemon = Daemon::start();
    let layer = XRaySubscriber::builder()
        .daemon(daemon.addr())
        .lambda(true)
        .build()
        .unwrap();
    let handle = layer.handle();
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let invocation = tracing::info_span!(
        target: "lambda_runtime::layers::trace",
        "Lambda runtime invoke",
        requestId = "req-1",
        xrayTraceId = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    );
    f.instrument(invocation).await;
    drop(guard);
    assert!(handle.flush(Duration::from_secs(2)).complete);
    let docs = daemon.documents_with_spans(1, Duration::from_secs(3));
    let calls: Vec<Json> = entities(&docs)
        .into_iter()
        .filter(|e| e["namespace"] == "aws")
        .collect();
    assert_eq!(calls.len(), 1, "{docs:?}");
    let mut aws = calls[0]["aws"].clone();
    let members = aws.as_object_mut().unwrap();
    for common in ["operation", "region", "request_id", "id_2", "retries"] {
        members.remove(common);
    }
    aws
}

/// A list whose order the SDK does not keep (it serializes a hash map), sorted.
fn sorted(v: &Json) -> Json {
    let mut items = v.as_array().cloned().unwrap_or_default();
    items.sort_by_key(|i| i.to_string());
    Json::Array(items)
}

#[tokio::test]
async fn dynamodb_get_item() {
    let http = json_answer(
        r#"{"ConsumedCapacity":{"CapacityUnits":0.5,"TableName":"orders"},"Item":{"id":{"S":"7"}}}"#,
    );
    let client = client!(aws_sdk_dynamodb, http);
    let aws = recorded(async {
        client
            .get_item()
            .table_name("orders")
            .key("id", AttributeValue::S("7".into()))
            .consistent_read(true)
            .projection_expression("id, total")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        aws,
        json!({
            "table_name": "orders",
            "consistent_read": true,
            "projection_expression": "id, total",
            "consumed_capacity": {"CapacityUnits": 0.5, "TableName": "orders"},
        })
    );
}

#[tokio::test]
async fn dynamodb_batch_get_item_over_two_tables() {
    let http = json_answer(
        r#"{"ConsumedCapacity":[{"CapacityUnits":1.0,"TableName":"invoices"},{"CapacityUnits":0.5,"TableName":"customers"}],"Responses":{"invoices":[],"customers":[]},"UnprocessedKeys":{}}"#,
    );
    let client = client!(aws_sdk_dynamodb, http);
    let keys = |id: &str| {
        KeysAndAttributes::builder()
            .keys([("id".to_string(), AttributeValue::S(id.into()))].into())
            .build()
            .unwrap()
    };
    let mut aws = recorded(async {
        client
            .batch_get_item()
            .request_items("invoices", keys("1"))
            .request_items("customers", keys("2"))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .unwrap();
    })
    .await;
    aws["table_names"] = sorted(&aws["table_names"]);
    assert_eq!(
        aws,
        json!({
            "table_names": ["customers", "invoices"],
            "consumed_capacity": [
                {"CapacityUnits": 1.0, "TableName": "invoices"},
                {"CapacityUnits": 0.5, "TableName": "customers"}
            ],
        })
    );
}

#[tokio::test]
async fn dynamodb_query() {
    let http = json_answer(
        r#"{"ConsumedCapacity":{"CapacityUnits":2.5,"GlobalSecondaryIndexes":{"by-customer":{"CapacityUnits":2.5}},"TableName":"orders"},"Count":1,"Items":[{"id":{"S":"7"}}],"ScannedCount":1}"#,
    );
    let client = client!(aws_sdk_dynamodb, http);
    let aws = recorded(async {
        client
            .query()
            .table_name("orders")
            .index_name("by-customer")
            .key_condition_expression("customer = :c")
            .expression_attribute_values(":c", AttributeValue::S("c-1".into()))
            .limit(25)
            .scan_index_forward(false)
            .select(Select::AllProjectedAttributes)
            .consistent_read(false)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        aws,
        json!({
            "table_name": "orders",
            "index_name": "by-customer",
            "limit": 25,
            "scan_index_forward": false,
            "select": "ALL_PROJECTED_ATTRIBUTES",
            "consistent_read": false,
            "consumed_capacity": {
                "CapacityUnits": 2.5,
                "GlobalSecondaryIndexes": {"by-customer": {"CapacityUnits": 2.5}},
                "TableName": "orders"
            },
        })
    );
}

#[tokio::test]
async fn dynamodb_create_table() {
    let http =
        json_answer(r#"{"TableDescription":{"TableName":"orders","TableStatus":"CREATING"}}"#);
    let client = client!(aws_sdk_dynamodb, http);
    let throughput = |r, w| {
        ProvisionedThroughput::builder()
            .read_capacity_units(r)
            .write_capacity_units(w)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let aws = recorded(async {
        client
            .create_table()
            .table_name("orders")
            .attribute_definitions(attribute("id"))
            .attribute_definitions(attribute("customer"))
            .key_schema(key("id", KeyType::Hash))
            .provisioned_throughput(throughput(5, 5))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name("by-customer")
                    .key_schema(key("customer", KeyType::Hash))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::KeysOnly)
                            .build(),
                    )
                    .provisioned_throughput(throughput(1, 1))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        aws,
        json!({
            "table_name": "orders",
            "provisioned_throughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
            "global_secondary_indexes": [{
                "IndexName": "by-customer",
                "KeySchema": [{"AttributeName": "customer", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
                "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}
            }],
        })
    );
}

#[tokio::test]
async fn s3_put_object_and_a_get_object_that_is_not_found() {
    let http = answer(200, &[("etag", "\"abc\""), ("x-amz-request-id", "R")], "");
    let client = client!(aws_sdk_s3, http);
    let aws = recorded(async {
        client
            .put_object()
            .bucket("my-bucket")
            .key("reports/nov.csv")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"a,b\n"))
            .send()
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        aws,
        json!({"bucket_name": "my-bucket", "key": "reports/nov.csv"})
    );

    let http = answer(
        404,
        &[
            ("content-type", "application/xml"),
            ("x-amz-request-id", "R"),
        ],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>missing.csv</Key><RequestId>R</RequestId></Error>",
    );
    let client = client!(aws_sdk_s3, http);
    let aws = recorded(async {
        let err = client
            .get_object()
            .bucket("my-bucket")
            .key("missing.csv")
            .send()
            .await;
        assert!(err.is_err());
    })
    .await;
    assert_eq!(
        aws,
        json!({"bucket_name": "my-bucket", "key": "missing.csv"})
    );
}

#[tokio::test]
async fn sqs_send_message_with_attributes_and_receive_message() {
    let queue = "https://sqs.us-east-1.amazonaws.com/123456789012/orders";
    let http = json_answer(
        r#"{"MD5OfMessageBody":"0cc175b9c0f1b6a831c399e269772661","MessageId":"5fea7756-0ea4-451a-a703-a558b933e274"}"#,
    );
    let client = client!(aws_sdk_sqs, http);
    let attribute = |v: &str| {
        aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .unwrap()
    };
    let mut aws = recorded(async {
        client
            .send_message()
            .queue_url(queue)
            .message_body("a")
            .delay_seconds(5)
            .message_attributes("attr1", attribute("x"))
            .message_attributes("attr2", attribute("y"))
            .send()
            .await
            .unwrap();
    })
    .await;
    aws["message_attribute_names"] = sorted(&aws["message_attribute_names"]);
    assert_eq!(
        aws,
        json!({
            "queue_url": queue,
            "delay_seconds": 5,
            "message_attribute_names": ["attr1", "attr2"],
            "message_id": "5fea7756-0ea4-451a-a703-a558b933e274",
        })
    );

    let http = json_answer(
        r#"{"Messages":[{"Body":"a","MessageId":"m1","ReceiptHandle":"h1","MD5OfBody":"0cc175b9c0f1b6a831c399e269772661"},{"Body":"b","MessageId":"m2","ReceiptHandle":"h2","MD5OfBody":"92eb5ffee6ae2fec3ad71c777531578f"}]}"#,
    );
    let client = client!(aws_sdk_sqs, http);
    let aws = recorded(async {
        let out = client
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(30)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        assert_eq!(out.messages().len(), 2);
    })
    .await;
    assert_eq!(
        aws,
        json!({
            "queue_url": queue,
            "max_number_of_messages": 10,
            "wait_time_seconds": 1,
            "visibility_timeout": 30,
            "message_attribute_names": ["All"],
            "message_count": 2,
        })
    );
}

#[tokio::test]
async fn sns_publish() {
    let http = answer(
        200,
        &[("content-type", "text/xml"), ("x-amzn-requestid", "R")],
        "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult><MessageId>94f20ce6-13c5-43a0-9a9e-ca52d816e90b</MessageId></PublishResult><ResponseMetadata><RequestId>R</RequestId></ResponseMetadata></PublishResponse>",
    );
    let client = client!(aws_sdk_sns, http);
    let topic = "arn:aws:sns:us-east-1:123456789012:orders";
    let aws = recorded(async {
        client
            .publish()
            .topic_arn(topic)
            .message("hello & goodbye")
            .send()
            .await
            .unwrap();
    })
    .await;
    assert_eq!(aws, json!({"topic_arn": topic}));
}

#[tokio::test]
async fn lambda_invoke_ok_and_with_a_function_error() {
    for function_error in [None, Some("Unhandled")] {
        let mut headers = vec![
            ("content-type", "application/json"),
            ("x-amzn-requestid", "R"),
            ("x-amz-executed-version", "7"),
        ];
        headers.extend(function_error.map(|e| ("x-amz-function-error", e)));
        let body = match function_error {
            None => r#"{"ok":true}"#,
            Some(_) => r#"{"errorMessage":"boom","errorType":"Error"}"#,
        };
        let client = client!(aws_sdk_lambda, answer(200, &headers, body));
        let aws = recorded(async {
            let out = client
                .invoke()
                .function_name("my-function")
                .invocation_type(aws_sdk_lambda::types::InvocationType::RequestResponse)
                .log_type(aws_sdk_lambda::types::LogType::Tail)
                .qualifier("live")
                .payload(aws_sdk_lambda::primitives::Blob::new(r#"{"order":7}"#))
                .send()
                .await
                .unwrap();
            assert_eq!(out.function_error(), function_error);
        })
        .await;
        let mut expected = json!({
            "function_name": "my-function",
            "invocation_type": "RequestResponse",
            "log_type": "Tail",
            "qualifier": "live",
            "status_code": 200,
        });
        if let Some(e) = function_error {
            expected["function_error"] = json!(e);
        }
        assert_eq!(aws, expected);
    }
}

#[tokio::test]
async fn s3_copy_source_prefix_and_version_id() {
    let http = answer(
        200,
        &[
            ("content-type", "application/xml"),
            ("x-amz-request-id", "R"),
        ],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult><ETag>\"abc\"</ETag><LastModified>2026-12-03T00:00:00.000Z</LastModified></CopyObjectResult>",
    );
    let client = client!(aws_sdk_s3, http);
    let aws = recorded(async {
        client
            .copy_object()
            .copy_source("source-bucket/in/a b.csv")
            .bucket("my-bucket")
            .key("out/a.csv")
            .send()
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        aws,
        json!({"copy_source": "source-bucket/in/a b.csv", "bucket": "my-bucket", "key": "out/a.csv"})
    );

    let http = answer(
        200,
        &[
            ("content-type", "application/xml"),
            ("x-amz-request-id", "R"),
        ],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult><Name>my-bucket</Name><Prefix>reports/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>",
    );
    let client = client!(aws_sdk_s3, http);
    let aws = recorded(async {
        client
            .list_objects_v2()
            .bucket("my-bucket")
            .prefix("reports/")
            .send()
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        aws,
        json!({"bucket_name": "my-bucket", "prefix": "reports/"})
    );

    let http = answer(
        200,
        &[("x-amz-request-id", "R"), ("x-amz-version-id", "v7")],
        "a,b\n",
    );
    let client = client!(aws_sdk_s3, http);
    let aws = recorded(async {
        client
            .get_object()
            .bucket("my-bucket")
            .key("reports/nov.csv")
            .version_id("v7")
            .send()
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        aws,
        json!({"bucket_name": "my-bucket", "key": "reports/nov.csv", "version_id": "v7"})
    );
}
