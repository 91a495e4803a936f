//! `XRayInterceptor`: what the SDK's spans do not carry, read from inside the call.
//!
//! Status, error code, throttling and the allow-listed parameters of a call
//! appear on no span or event; an interceptor sees them. Its hooks run inside
//! the SDK's spans, so the current span leads to the call's subsegment, and
//! what the hooks find is pushed straight to it (never as `tracing` events,
//! which would come back into this layer). Timing stays with the spans: a
//! timeout drops the call's future and skips the final hooks.

mod allowlist;
mod error;
mod extract;
mod scan;

use std::error::Error as _;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::endpoint::EndpointResolverParams;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextMut, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use xray_emitter::record::{FLAG_ERROR, FLAG_FAULT, FLAG_THROTTLE};
use xray_emitter::{HttpField, Key, SegmentId, Value};

use crate::fields::{attr, status_flags};
use crate::subscriber::XRaySubscriber;
use allowlist::{AllowList, Operation, Rule, ServiceKey, service_key};
use error::{error_details, is_throttling};
use extract::Found;

/// Reports what only the SDK knows into the current call's X-Ray subsegment:
/// HTTP status, request id, attempts, error code and message (throttling
/// recognised by code, since DynamoDB throttles with HTTP 400), the region,
/// and the parameters the official X-Ray SDKs record (table, queue, bucket,
/// key, topic, function, …), each with its JSON type: objects and lists such
/// as DynamoDB's `ConsumedCapacity` as the service returned them, a map's
/// keys as a list. It also sends `X-Amzn-Trace-Id` with this call's
/// subsegment as `Parent`, so the service called attaches under it.
///
/// ```no_run
/// # fn f(sdk_config: &aws_types::SdkConfig) {
/// // sdk_config: from aws_config::load_from_env().await
/// let dynamodb = aws_sdk_dynamodb::Client::from_conf(
///     aws_sdk_dynamodb::config::Builder::from(sdk_config)
///         .interceptor(tracing_xray::XRayInterceptor::default())
///         .build(),
/// );
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct XRayInterceptor {
    _private: (),
}

/// The layer and the current call, if the current span is inside a recorded SDK call.
fn with_call(f: impl FnOnce(&XRaySubscriber, SegmentId)) {
    tracing::Span::current().with_subscriber(|(id, dispatch)| {
        let Some(layer) = dispatch.downcast_ref::<XRaySubscriber>() else {
            return;
        };
        let Some(state) = layer.state_in(id, dispatch) else {
            return;
        };
        // Only a recorded call has an `op`.
        if let Some(op) = state.op {
            f(layer, op);
        }
    });
}

fn push_found(layer: &XRaySubscriber, op: SegmentId, key: &'static str, found: Found<'_>) {
    let emitter = layer.emitter();
    let value = match found {
        Found::Str(s) => {
            emitter.push_str(op, Key::Aws(key), &s);
            return;
        }
        Found::Json(s) => {
            emitter.push_json(op, Key::Aws(key), &s);
            return;
        }
        Found::I64(v) => Value::I64(v),
        Found::U64(v) => Value::U64(v),
        Found::F64(v) => Value::F64(v),
        Found::Bool(v) => Value::Bool(v),
    };
    emitter.push(attr(op, Key::Aws(key), value));
}

thread_local! {
    /// The rules found for the last call on this thread, by its subsegment
    /// id: the response hook finds what the request hook looked up (a config
    /// bag lookup and a hash lookup) without doing it again. A call whose
    /// hooks run on two threads just looks twice.
    static LAST_RULES: std::cell::Cell<Option<(SegmentId, ServiceKey, &'static Operation)>> =
        const { std::cell::Cell::new(None) };
}

/// The allow-list rules of call `op`, which `cfg` describes, with the
/// list's name for its service.
fn rules(op: SegmentId, cfg: &ConfigBag) -> Option<(ServiceKey, &'static Operation)> {
    if let Ok(Some((id, service, rules))) = LAST_RULES.try_with(|c| c.get())
        && id == op
    {
        return Some((service, rules));
    }
    let meta = cfg.load::<Metadata>()?;
    let service = service_key(meta.service());
    let rules = AllowList::get().operation(&service, meta.name())?;
    let _ = LAST_RULES.try_with(|c| c.set(Some((op, service, rules))));
    Some((service, rules))
}

/// The body is in one of the protocols whose members live in it
/// (`awsJson`: DynamoDB, SQS); REST bodies are the user's payload.
fn is_aws_json(content_type: &str) -> bool {
    content_type.starts_with("application/x-amz-json")
}

impl XRayInterceptor {
    fn record_request(&self, request: &aws_smithy_runtime_api::http::Request, cfg: &ConfigBag) {
        with_call(|layer, op| {
            if let Some(region) = cfg.load::<aws_types::region::Region>() {
                layer
                    .emitter()
                    .push_str(op, Key::Aws("region"), region.as_ref());
            }
            let Some((service, rules)) = rules(op, cfg) else {
                return;
            };
            let rules: &[Rule] = &rules.request;
            // Keys already recorded (a member can be listed twice); past 32,
            // later ones are recorded again rather than allocate.
            let mut seen: arrayvec::ArrayVec<&'static str, 32> = arrayvec::ArrayVec::new();
            let mut out = |rule: &Rule, found: Found<'_>| {
                if !seen.contains(&rule.key) {
                    let _ = seen.try_push(rule.key);
                    push_found(layer, op, rule.key, found);
                }
            };
            let headers = request.headers();
            let content_type = headers.get("content-type").unwrap_or_default();
            let body = request.body().bytes().unwrap_or_default();
            if is_aws_json(content_type) {
                extract::from_json(body, rules, &mut out);
                return;
            }
            if content_type.starts_with("application/x-www-form-urlencoded") {
                return extract::from_form(body, rules, &mut out);
            }
            // S3 keeps the bucket only in the endpoint parameters, which are
            // type-erased: read from their debug form, in a bounded buffer.
            let params = (service.as_str() == "s3")
                .then(|| cfg.load::<EndpointResolverParams>())
                .flatten()
                .map(|p| crate::fields::format(p));
            let bucket = params.as_deref().and_then(extract::bucket_from_params);
            let header = |name: &str| headers.get(name).map(str::to_string);
            extract::from_rest(&service, request.uri(), &header, bucket, rules, &mut out);
        });
    }

    fn record_outcome(&self, context: &FinalizerInterceptorContextRef<'_>, cfg: &ConfigBag) {
        with_call(|layer, op| {
            let emitter = layer.emitter();
            if let Some(n) = cfg
                .load::<RequestAttempts>()
                .map(|a| a.attempts())
                .filter(|&n| n >= 1)
            {
                emitter.push(attr(op, Key::Aws("retries"), Value::U64(u64::from(n - 1))));
            }
            let response = context.response();
            let mut flags = 0;
            if let Some(r) = response {
                let status = r.status().as_u16();
                emitter.push(attr(
                    op,
                    Key::Http(HttpField::Status),
                    Value::U64(u64::from(status)),
                ));
                flags |= status_flags(u64::from(status));
                let headers = r.headers();
                if let Some(id) = headers
                    .get("x-amzn-requestid")
                    .or_else(|| headers.get("x-amz-request-id"))
                {
                    emitter.push_str(op, Key::Aws("request_id"), id);
                }
                if let Some(id2) = headers.get("x-amz-id-2") {
                    emitter.push_str(op, Key::Aws("id_2"), id2);
                }
            }
            match context.output_or_error() {
                Some(Ok(_)) => {
                    if let Some(r) = response {
                        self.record_response(layer, op, r, cfg);
                    }
                }
                Some(Err(err)) => {
                    let (code, message) = match response {
                        Some(r) => error_details(r.headers(), r.body().bytes()),
                        None => {
                            let kind = if err.is_timeout_error() {
                                "TimeoutError"
                            } else if err.is_connector_error() {
                                "DispatchFailure"
                            } else {
                                "SdkError"
                            };
                            let message = match err.source() {
                                Some(source) => format!("{err}: {source}"),
                                None => err.to_string(),
                            };
                            (Some(kind.to_string()), Some(message))
                        }
                    };
                    if code.as_deref().is_some_and(is_throttling) {
                        flags |= FLAG_ERROR | FLAG_THROTTLE;
                    }
                    if flags == 0 {
                        flags = FLAG_FAULT;
                    }
                    let text = message.as_deref().or(code.as_deref()).unwrap_or("error");
                    emitter.push_str(
                        op,
                        Key::Exception {
                            remote: response.is_some(),
                        },
                        text,
                    );
                    if let Some(code) = &code {
                        emitter.push_str(op, Key::ExceptionType, code);
                    }
                }
                None => {}
            }
            if flags != 0 {
                emitter.push(attr(op, Key::Flags, Value::U64(flags)));
            }
        });
    }

    fn record_response(
        &self,
        layer: &XRaySubscriber,
        op: SegmentId,
        response: &aws_smithy_runtime_api::http::Response,
        cfg: &ConfigBag,
    ) {
        let Some((service, rules)) = rules(op, cfg) else {
            return;
        };
        let rules: &[Rule] = &rules.response;
        let mut out = |rule: &Rule, found: Found<'_>| push_found(layer, op, rule.key, found);
        let headers = response.headers();
        if is_aws_json(headers.get("content-type").unwrap_or_default()) {
            if let Some(body) = response.body().bytes() {
                extract::from_json(body, rules, &mut out);
            }
            return;
        }
        // Lambda's `StatusCode` (Invoke) and `Status` (InvokeAsync) are the HTTP status.
        // (No header carries them, so `from_rest` finds nothing more for them.)
        let status = u64::from(response.status().as_u16());
        for rule in rules.iter() {
            if service.as_str() == "lambda" && matches!(rule.member, "StatusCode" | "Status") {
                out(rule, Found::U64(status));
            }
        }
        let header = |name: &str| headers.get(name).map(str::to_string);
        extract::from_rest("", "", &header, None, rules, &mut out);
    }
}

impl Intercept for XRayInterceptor {
    fn name(&self) -> &'static str {
        "XRayInterceptor"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The request is the same on every attempt: read it once.
        if cfg
            .load::<RequestAttempts>()
            .is_none_or(|a| a.attempts() <= 1)
        {
            self.record_request(context.request(), cfg);
        }
        Ok(())
    }

    /// In Lambda, once per call before the retry loop, so that the SDK's
    /// recursion-detection interceptor finds the header set and builds none
    /// of its own; SigV4 never signs this header.
    fn modify_before_retry_loop(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        set_trace_header(context, true);
        Ok(())
    }

    /// Elsewhere, on each attempt as it is sent: the header is then not
    /// copied by the attempt's clone of the request nor by signing.
    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        set_trace_header(context, false);
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.record_outcome(context, cfg);
        Ok(())
    }
}

/// Sets `X-Amzn-Trace-Id` if the current span is in a trace and `early`
/// is the layer's moment for it. The current span is read from the
/// dispatcher by id (a `Span` handle would be cloned and closed).
fn set_trace_header(context: &mut BeforeTransmitInterceptorContextMut<'_>, early: bool) {
    let header = tracing::dispatcher::get_default(|dispatch| {
        let layer = dispatch.downcast_ref::<XRaySubscriber>()?;
        if layer.sets_header_early() != early {
            return None;
        }
        let current = dispatch.current_span();
        layer.header_in(current.id()?, dispatch, true)
    });
    if let Some(header) = header {
        // The SDK's header map owns its values, so this is the one
        // allocation tracing makes per call: a `String` of exactly the
        // header's length (which the map then takes without copying);
        // `to_string` would grow one through several allocations.
        let value = String::from(header.encode().as_str());
        let _ = context
            .request_mut()
            .headers_mut()
            // A name made from a static string is not copied; a `&str`
            // name would be, on every call.
            .try_insert(http02::HeaderName::from_static("x-amzn-trace-id"), value);
    }
}
