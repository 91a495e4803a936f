//! A Lambda function reading DynamoDB, traced in X-Ray: what you deploy.
//! (`lambda_local` runs the same shape on your machine without AWS.)
//!
//! ```text
//! cargo lambda build --release --example lambda_dynamodb   # then deploy with tracing on
//! ```

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};
use tracing::Instrument;

async fn handler(
    dynamodb: &aws_sdk_dynamodb::Client,
    event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    let table_name = std::env::var("TABLE_NAME").unwrap_or_else(|_| "orders".into());
    let id = event.payload["id"].as_str().unwrap_or_default().to_string();
    let item = dynamodb
        .get_item()
        .table_name(&table_name)
        .key("id", AttributeValue::S(id.clone()))
        // The interceptor (installed in `main`) records the table name; a
        // client without it would need
        // `.instrument(tracing_xray::aws_metadata(None, Some(&table_name)))`.
        .send()
        .await?;
    tracing::info!(found = item.item().is_some(), "looked up");
    Ok(json!({ "id": id, "found": item.item().is_some() }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Logs at AWS_LAMBDA_LOG_LEVEL / RUST_LOG; X-Ray sees the SDK's DEBUG spans too.
    tracing_xray::lambda::init()?;
    let config = aws_config::load_from_env().await;
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .interceptor(tracing_xray::XRayInterceptor::default())
            .build(),
    );
    lambda_runtime::run(service_fn(|event| {
        let dynamodb = dynamodb.clone();
        async move {
            handler(&dynamodb, event)
                .instrument(tracing::info_span!("handler"))
                .await
        }
    }))
    .await
}
