//! A local X-Ray "console": reads daemon datagrams from a UDP socket and
//! prints each document as an indented tree as it arrives.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

const BAR: usize = 24;

/// What the viewer prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Indented trees.
    Tree,
    /// The raw documents, one per line.
    Json,
}

/// Splits a datagram into its header and document, checking both.
pub fn parse(datagram: &[u8]) -> Result<Value, String> {
    let newline = datagram
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let (header, body) = (&datagram[..newline], &datagram[newline + 1..]);
    let h: Value =
        serde_json::from_slice(header).map_err(|e| format!("header is not JSON: {e}"))?;
    if !h["format"]
        .as_str()
        .is_some_and(|f| f.eq_ignore_ascii_case("json"))
        || h["version"] != 1
    {
        return Err(format!(
            "unexpected header {}",
            String::from_utf8_lossy(header)
        ));
    }
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("document is not JSON: {e}"))?;
    if !doc.is_object() {
        return Err("document is not an object".into());
    }
    Ok(doc)
}

fn duration(e: &Value) -> Option<f64> {
    Some(e["end_time"].as_f64()? - e["start_time"].as_f64()?)
}

fn human(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.2} s")
    } else if seconds >= 0.001 {
        format!("{:.2} ms", seconds * 1e3)
    } else {
        format!("{:.0} µs", seconds * 1e6)
    }
}

fn bar(e: &Value, origin: f64, total: f64) -> String {
    let (Some(start), Some(d)) = (e["start_time"].as_f64(), duration(e)) else {
        return format!("{:BAR$}", "(in progress)");
    };
    if total <= 0.0 {
        return "█".repeat(BAR);
    }
    let from = (((start - origin) / total) * BAR as f64)
        .floor()
        .clamp(0.0, BAR as f64) as usize;
    let len = ((d / total) * BAR as f64)
        .ceil()
        .clamp(1.0, (BAR - from.min(BAR - 1)) as f64) as usize;
    let mut s = String::new();
    s.push_str(&"·".repeat(from));
    s.push_str(&"█".repeat(len));
    s.push_str(&"·".repeat(BAR.saturating_sub(from + len)));
    s
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn line(e: &Value, origin: f64, total: f64) -> String {
    let mut out = String::new();
    let _ = write!(out, "{}", e["name"].as_str().unwrap_or("?"));
    if let Some(ns) = e["namespace"].as_str() {
        let _ = write!(out, " [{ns}]");
    }
    if let Some(op) = e["aws"]["operation"].as_str() {
        let _ = write!(out, " {op}");
    }
    let took = duration(e).map_or_else(|| "…".to_string(), human);
    let _ = write!(out, "  {took:>9}  {}", bar(e, origin, total));
    if let Some(status) = e["http"]["response"]["status"].as_u64() {
        let _ = write!(out, "  {status}");
    }
    for flag in ["error", "throttle", "fault"] {
        if e[flag] == true {
            let _ = write!(out, " {flag}");
        }
    }
    if let Some(aws) = e["aws"].as_object() {
        for (k, v) in aws {
            // `xray` names the SDK that sent the segment: the same everywhere.
            if k != "operation" && k != "xray" {
                let _ = write!(out, "  {k}={}", scalar(v));
            }
        }
    }
    if let Some(ann) = e["annotations"].as_object() {
        for (k, v) in ann {
            let _ = write!(out, "  #{k}={}", scalar(v));
        }
    }
    if let Some(ex) = e["cause"]["exceptions"].as_array().and_then(|a| a.first()) {
        let kind = ex["type"].as_str().unwrap_or("error");
        let message = ex["message"].as_str().unwrap_or("");
        let _ = write!(out, "\n        cause: {kind}: {message}");
    }
    out
}

fn tree(e: &Value, origin: f64, total: f64, prefix: &str, last: bool, out: &mut String) {
    let branch = if last { "└─ " } else { "├─ " };
    let text = line(e, origin, total).replace("\n        ", &format!("\n{prefix}        "));
    let _ = writeln!(out, "{prefix}{branch}{text}");
    let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
    if let Some(kids) = e["subsegments"].as_array() {
        for (i, k) in kids.iter().enumerate() {
            tree(k, origin, total, &child_prefix, i + 1 == kids.len(), out);
        }
    }
}

/// The tree of one document.
pub fn render(doc: &Value) -> String {
    let mut out = String::new();
    let trace = doc["trace_id"].as_str().unwrap_or("(no trace id)");
    let kind = if doc["type"] == "subsegment" {
        "subsegment"
    } else {
        "segment"
    };
    let _ = write!(out, "trace {trace}  {kind}");
    if let Some(parent) = doc["parent_id"].as_str() {
        let _ = write!(out, " under {parent}");
    }
    out.push('\n');
    let origin = doc["start_time"].as_f64().unwrap_or(0.0);
    let total = duration(doc).unwrap_or(0.0);
    tree(doc, origin, total, "", true, &mut out);
    out
}

/// Prints what arrives on `socket` until `keep_going` says stop (checked
/// after every datagram and every read timeout).
pub fn serve(socket: &UdpSocket, mode: Mode, mut keep_going: impl FnMut() -> bool) {
    let mut buf = vec![0u8; 70_000];
    while keep_going() {
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => {
                eprintln!("viewer: receive error: {e}");
                continue;
            }
        };
        let datagram = &buf[..n];
        match (mode, parse(datagram)) {
            (Mode::Json, Ok(_)) => {
                let newline = datagram.iter().position(|&b| b == b'\n').unwrap_or(0);
                println!("{}", String::from_utf8_lossy(&datagram[newline + 1..]));
            }
            (Mode::Tree, Ok(doc)) => println!("{}", render(&doc)),
            (_, Err(e)) => {
                let shown: String = String::from_utf8_lossy(&datagram[..n.min(120)])
                    .escape_debug()
                    .collect();
                println!("malformed datagram ({n} bytes): {e}: \"{shown}\"\n");
            }
        }
    }
}

/// Binds the viewer's socket.
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(addr)?;
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    Ok(socket)
}

/// The examples' daemon: a console printing trees, on a free local port,
/// on its own thread.
pub struct Console {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Console {
    pub fn start() -> std::io::Result<Console> {
        let socket = bind("127.0.0.1:0".parse().expect("a valid address"))?;
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread =
            std::thread::spawn(move || serve(&socket, Mode::Tree, || !s.load(Ordering::Relaxed)));
        Ok(Console { addr, stop, thread })
    }

    /// Gives the console a moment to print what is already in its socket,
    /// then stops it.
    pub fn finish(self) {
        std::thread::sleep(Duration::from_millis(300));
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}
