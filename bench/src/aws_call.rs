//! The document both serializers write: a failed DynamoDB GetItem, the way
//! the sender holds it (records) and the way a serde user would (structs).
//! Both give the same JSON (checked by [`same_shape`]), so the comparison is
//! of writers, not of documents.

use serde::Serialize;
use xray_emitter::record::FLAG_ERROR;
use xray_emitter::{Body, HttpField, Key, Kind, Record, SegmentId, TraceId, Value, clock};

const OPERATION: &str = "GetItem";
const REGION: &str = "eu-west-1";
const TABLE: &str = "orders-production";
const REQUEST_ID: &str = "UBQNSO5AEM8T4FDA4RQDEB94OVTDRVV4K4HIRGVJF66Q9ASUAAJG";
const MESSAGE: &str = "Requested resource not found";
const ERROR_TYPE: &str = "ResourceNotFoundException";

/// The call's records, open to close, as the layer would push them.
pub fn records(trace: TraceId, facade: SegmentId) -> Vec<Record> {
    let id = SegmentId::random();
    let mut r = vec![Record::new(
        id,
        Body::Open {
            parent: Some(facade),
            trace,
            time: clock::now(),
            name: "DynamoDB".into(),
            kind: Kind::Aws,
        },
    )];
    for (key, value) in [
        (Key::Aws("operation"), OPERATION),
        (Key::Aws("region"), REGION),
        (Key::Aws("table_name"), TABLE),
        (Key::Aws("request_id"), REQUEST_ID),
        (Key::Exception { remote: true }, MESSAGE),
        (Key::ExceptionType, ERROR_TYPE),
    ] {
        Record::split_str(id, key, value, |rec| r.push(rec));
    }
    for (key, value) in [
        (Key::Aws("retries"), 0),
        (Key::Http(HttpField::Status), 400),
        (Key::Flags, FLAG_ERROR),
    ] {
        r.push(Record::new(
            id,
            Body::Attr {
                key,
                value: Value::U64(value),
            },
        ));
    }
    r.push(Record::new(id, Body::Close { time: clock::now() }));
    r
}

/// The same subsegment as derived structs (embedded form, as ours renders it).
#[derive(Debug, Serialize)]
pub struct Doc<'a> {
    name: &'a str,
    id: &'a str,
    start_time: f64,
    end_time: f64,
    namespace: &'a str,
    error: bool,
    http: Http,
    aws: Aws<'a>,
    cause: Cause<'a>,
}

#[derive(Debug, Serialize)]
struct Http {
    response: Response,
}

#[derive(Debug, Serialize)]
struct Response {
    status: u16,
}

#[derive(Debug, Serialize)]
struct Aws<'a> {
    operation: &'a str,
    region: &'a str,
    table_name: &'a str,
    request_id: &'a str,
    retries: u32,
}

#[derive(Debug, Serialize)]
struct Cause<'a> {
    exceptions: [Exception<'a>; 1],
}

#[derive(Debug, Serialize)]
struct Exception<'a> {
    id: &'a str,
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    remote: bool,
}

/// The struct form, borrowing its two ids (16 hex digits each).
pub fn doc<'a>(id: &'a str, exception_id: &'a str) -> Doc<'a> {
    Doc {
        name: "DynamoDB",
        id,
        start_time: 1_795_651_000.772_046,
        end_time: 1_795_651_000.781_311,
        namespace: "aws",
        error: true,
        http: Http {
            response: Response { status: 400 },
        },
        aws: Aws {
            operation: OPERATION,
            region: REGION,
            table_name: TABLE,
            request_id: REQUEST_ID,
            retries: 0,
        },
        cause: Cause {
            exceptions: [Exception {
                id: exception_id,
                message: MESSAGE,
                kind: ERROR_TYPE,
                remote: true,
            }],
        },
    }
}

/// Whether two documents have the same members with the same values, ids
/// and times aside.
pub fn same_shape(a: &[u8], b: &[u8]) -> bool {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for k in ["id", "start_time", "end_time"] {
                    m.remove(k);
                }
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let parse = |s: &[u8]| serde_json::from_slice::<serde_json::Value>(s).ok();
    match (parse(a), parse(b)) {
        (Some(mut a), Some(mut b)) => {
            strip(&mut a);
            strip(&mut b);
            a == b
        }
        _ => false,
    }
}
