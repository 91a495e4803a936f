//! OTLP/HTTP: requests posted as protobuf to a collector's `/v1/traces`
//! (an OpenTelemetry Collector, ADOT, Jaeger, Tempo) from a worker thread,
//! so a slow collector never holds the sender: a bounded queue between the
//! two (a full queue is a counted drop), retries with backoff, and a
//! failure after the retries counted lost.
//!
//! Plain `http://` only: the collector is a local agent or sidecar. TLS
//! (and SigV4 for X-Ray's own endpoint) would bring a TLS stack into every
//! program; they are not here.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrayvec::ArrayVec;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use xray_emitter::testing::{MAX_BATCH, Sent, Transport};

use crate::builder::env;
use crate::local_http;

/// Requests waiting for the worker at most.
const QUEUE: usize = 64;
/// Attempts per request.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Where requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `host:port`.
    pub(crate) address: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    /// Each attempt's bound.
    pub(crate) timeout: Duration,
}

impl Endpoint {
    /// `http://host[:port][/path]`; the path defaults to `default_path`.
    pub(crate) fn parse(url: &str, default_path: &str) -> Result<Endpoint, String> {
        let Some(rest) = url.trim().strip_prefix("http://") else {
            return Err(format!("OTLP endpoint {url:?}: only http:// is supported"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("OTLP endpoint {url:?} has no host"));
        }
        let has_port = match authority.rfind(']') {
            Some(end) => authority[end..].contains(':'),
            None => authority.contains(':'),
        };
        let address = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let path = if path.is_empty() || path == "/" {
            default_path
        } else {
            path
        };
        Ok(Endpoint {
            address,
            path: path.to_string(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
        })
    }

    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as it is), else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`; headers and timeout
    /// from the matching variables. `None` when neither is set.
    pub(crate) fn from_env() -> Option<Result<Endpoint, String>> {
        let endpoint = match (
            env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            env("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(url), _) => Endpoint::parse(&url, "/v1/traces"),
            (None, Some(base)) => {
                let base = base.trim().trim_end_matches('/');
                Endpoint::parse(&format!("{base}/v1/traces"), "/v1/traces")
            }
            (None, None) => return None,
        };
        Some(endpoint.map(Endpoint::with_env_settings))
    }

    /// Headers and timeout from `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS` and
    /// `OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT` (milliseconds).
    pub(crate) fn with_env_settings(mut self) -> Endpoint {
        let headers =
            env("OTEL_EXPORTER_OTLP_TRACES_HEADERS").or_else(|| env("OTEL_EXPORTER_OTLP_HEADERS"));
        self.headers = parse_headers(&headers.unwrap_or_default());
        let timeout =
            env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT").or_else(|| env("OTEL_EXPORTER_OTLP_TIMEOUT"));
        if let Some(ms) = timeout.and_then(|t| t.trim().parse::<u64>().ok()) {
            self.timeout = Duration::from_millis(ms.max(1));
        }
        self
    }
}

/// `k=v,k2=v2`, values percent-decoded, as the OTel variables give them.
pub(crate) fn parse_headers(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            let ok = !k.is_empty() && k.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            let v = crate::identity::percent_decode(v.trim());
            (ok && !v.contains(['\r', '\n'])).then(|| (k.to_string(), v))
        })
        .collect()
}

/// The sender's side: hands each request to the worker, and keeps the
/// ledger of what the worker still has. Only the sender thread touches the
/// ledger, so a request is counted failed once, and never before the
/// sender counted it sent.
pub(crate) struct HttpTransport {
    queue: Sender<(u64, Vec<u8>)>,
    /// The worker's answers: (request, posted).
    done: Receiver<(u64, bool)>,
    spare: Receiver<Vec<u8>>,
    counts: ArrayVec<u64, MAX_BATCH>,
    /// Requests handed to the worker and not answered: (number, spans).
    outstanding: VecDeque<(u64, u64)>,
    next: u64,
    /// Answered failed since the sender last asked: (requests, spans).
    failed: (u64, u64),
    /// The sender stopped: no attempt starts any more.
    closed: Arc<AtomicBool>,
    /// In Lambda: how long a send waits for the worker to finish (flush
    /// before freeze); `None`: never waits.
    wait: Option<Duration>,
}

/// Starts the worker.
pub(crate) fn start(endpoint: Endpoint, wait: Option<Duration>) -> std::io::Result<HttpTransport> {
    let (queue, requests) = bounded::<(u64, Vec<u8>)>(QUEUE);
    // Never full: at most the queue, the request being posted, and the
    // answers to what was queued by the last send are waiting.
    let (answer, done) = bounded::<(u64, bool)>(2 * QUEUE + 2);
    let (give_back, spare) = bounded::<Vec<u8>>(QUEUE);
    let closed = Arc::new(AtomicBool::new(false));
    let stop = closed.clone();
    std::thread::Builder::new()
        .name("tracing-xray-otlp".into())
        .spawn(move || {
            let mut warned = false;
            for (n, body) in requests {
                let posted = post(&endpoint, &body, &stop);
                if let Err(why) = &posted
                    && !warned
                    && !stop.load(Ordering::Acquire)
                {
                    eprintln!("tracing-xray: OTLP export to http://{}{} failed ({why}); failures are counted in spans_lost (reported once)", endpoint.address, endpoint.path);
                    warned = true;
                }
                let _ = answer.try_send((n, posted.is_ok()));
                let _ = give_back.try_send(body);
            }
        })?;
    Ok(HttpTransport {
        queue,
        done,
        spare,
        counts: ArrayVec::new(),
        outstanding: VecDeque::with_capacity(2 * QUEUE + 2),
        next: 0,
        failed: (0, 0),
        closed,
        wait,
    })
}

impl HttpTransport {
    /// Takes the worker's answers into the ledger.
    fn take_answers(&mut self) {
        while let Ok((n, posted)) = self.done.try_recv() {
            let Some(i) = self.outstanding.iter().position(|&(m, _)| m == n) else {
                continue;
            };
            if let Some((_, spans)) = self.outstanding.remove(i)
                && !posted
            {
                self.fail(spans);
            }
        }
    }

    /// One request carrying `spans` failed.
    fn fail(&mut self, spans: u64) {
        self.failed.0 += 1;
        self.failed.1 += spans;
    }

    /// Waits while the worker has requests, until `deadline`.
    fn wait_for_worker(&mut self, deadline: Instant) {
        self.take_answers();
        while !self.outstanding.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
            self.take_answers();
        }
    }
}

/// One request, retried on connection errors and 429/502/503/504.
fn post(endpoint: &Endpoint, body: &[u8], closed: &AtomicBool) -> Result<(), String> {
    let mut headers: Vec<(&str, &str)> = vec![("Content-Type", "application/x-protobuf")];
    headers.extend(
        endpoint
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let mut backoff = FIRST_BACKOFF;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        if closed.load(Ordering::Acquire) {
            return Err("shut down".into());
        }
        match local_http::request(
            "POST",
            &endpoint.address,
            &endpoint.path,
            &headers,
            body,
            endpoint.timeout,
        ) {
            Ok((200..=299, _)) => return Ok(()),
            Ok((status @ (429 | 502 | 503 | 504), _)) => last = format!("HTTP {status}"),
            Ok((status, _)) => return Err(format!("HTTP {status}")),
            Err(e) => last = e.to_string(),
        }
        if attempt < ATTEMPTS {
            std::thread::sleep(backoff);
            backoff *= 2;
        }
    }
    Err(format!("{last}, after {ATTEMPTS} attempts"))
}

impl Transport for HttpTransport {
    fn spans(&mut self, per_datagram: &[u64]) {
        self.counts.clear();
        self.counts.extend(per_datagram.iter().copied());
    }

    fn send(&mut self, requests: &[&[u8]]) -> Sent {
        self.take_answers();
        let mut sent = Sent::default();
        for (i, request) in requests.iter().enumerate() {
            let mut buf = self.spare.try_recv().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(request);
            let spans = self.counts.get(i).copied().unwrap_or(0);
            let n = self.next;
            self.next += 1;
            match self.queue.try_send((n, buf)) {
                Ok(()) => {
                    self.outstanding.push_back((n, spans));
                    sent.datagrams += 1;
                    sent.bytes += request.len();
                }
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    sent.errors += 1;
                    if i < 64 {
                        sent.failed |= 1 << i;
                    }
                }
            }
        }
        if let Some(wait) = self.wait {
            self.wait_for_worker(Instant::now() + wait);
        }
        sent
    }

    fn late_failures(&mut self) -> (u64, u64) {
        self.take_answers();
        std::mem::take(&mut self.failed)
    }

    /// Waits for the worker until `deadline`; what it has not answered by
    /// then is counted lost: queued requests (never posted) and the one
    /// being posted (the process may exit before it is answered; it is not
    /// tried again, though an attempt under way may still land). Answers
    /// that come later are not read.
    fn close(&mut self, deadline: Instant) {
        self.wait_for_worker(deadline);
        self.closed.store(true, Ordering::Release);
        while let Some((_, spans)) = self.outstanding.pop_front() {
            self.fail(spans);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_headers_as_the_otel_variables_give_them() {
        let e = Endpoint::parse("http://collector:4318", "/v1/traces").unwrap();
        assert_eq!(
            (e.address.as_str(), e.path.as_str()),
            ("collector:4318", "/v1/traces")
        );
        let e = Endpoint::parse("http://[::1]/custom/traces", "/v1/traces").unwrap();
        assert_eq!(
            (e.address.as_str(), e.path.as_str()),
            ("[::1]:80", "/custom/traces")
        );
        assert!(Endpoint::parse("https://api.honeycomb.io", "/v1/traces").is_err());
        assert_eq!(
            parse_headers("x-honeycomb-team=abc%3D, bad header=1,ok=a%0Ab,dataset=d"),
            [
                ("x-honeycomb-team".to_string(), "abc=".to_string()),
                ("dataset".into(), "d".into())
            ]
        );
    }
}
