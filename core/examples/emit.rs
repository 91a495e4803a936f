//! Sends a small trace to a UDP socket standing in for the X-Ray daemon and
//! prints each datagram as it arrives: the emitter core on its own.
//!
//! ```text
//! cargo run --release -p xray-emitter --example emit
//! ```

use std::net::UdpSocket;
use std::time::Duration;

use xray_emitter::record::{FLAG_ERROR, FLAG_THROTTLE};
use xray_emitter::{Body, Emitter, HttpField, Key, Kind, Record, SegmentId, TraceId, Value, clock};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let daemon = UdpSocket::bind("127.0.0.1:0")?;
    daemon.set_read_timeout(Some(Duration::from_millis(200)))?;
    let (emitter, guard) = Emitter::builder().daemon(daemon.local_addr()?).start()?;

    // What Lambda's trace header gives an invocation: a trace and the function segment.
    let trace = TraceId::new();
    let function_segment = SegmentId::random();

    let handler = SegmentId::random();
    emitter.push(Record::new(
        handler,
        Body::Open {
            parent: Some(function_segment),
            trace,
            time: clock::now(),
            name: "handler".into(),
            kind: Kind::Local,
        },
    ));
    emitter.push(Record::new(
        handler,
        Body::Attr {
            key: Key::Annotation("customer_id"),
            value: Value::U64(42),
        },
    ));

    let call = SegmentId::random();
    emitter.push(Record::new(
        call,
        Body::Open {
            parent: Some(handler),
            trace,
            time: clock::now(),
            name: "DynamoDB".into(),
            kind: Kind::Aws,
        },
    ));
    emitter.push_str(call, Key::Aws("operation"), "GetItem");
    emitter.push_str(call, Key::Aws("table_name"), "orders");
    emitter.push(Record::new(
        call,
        Body::Attr {
            key: Key::Http(HttpField::Status),
            value: Value::U64(400),
        },
    ));
    emitter.push(Record::new(
        call,
        Body::Attr {
            key: Key::Flags,
            value: Value::U64(FLAG_ERROR | FLAG_THROTTLE),
        },
    ));
    emitter.push_str(
        call,
        Key::Exception { remote: true },
        "Rate of requests exceeds the allowed throughput.",
    );
    emitter.push_str(
        call,
        Key::ExceptionType,
        "ProvisionedThroughputExceededException",
    );
    std::thread::sleep(Duration::from_millis(3));
    emitter.push(Record::new(call, Body::Close { time: clock::now() }));
    emitter.push(Record::new(handler, Body::Close { time: clock::now() }));

    let flushed = emitter.flush(Duration::from_secs(1));
    println!("flushed: {flushed:?}");
    let mut buf = vec![0u8; 65_536];
    while let Ok(n) = daemon.recv(&mut buf) {
        println!(
            "datagram of {n} bytes:\n{}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    drop(guard);
    println!("{:#?}", emitter.stats());
    Ok(())
}
