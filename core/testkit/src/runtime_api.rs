//! A small Lambda Runtime API on 127.0.0.1 for the real `lambda_runtime`:
//! `GET /next` hands out queued invocations (each with its own
//! `Lambda-Runtime-Trace-Id`) and holds the long poll open when there are
//! none; `/response` and `/error` are recorded. A hook runs at every
//! `/next`, when the real sandbox would freeze.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// One invocation to serve.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// `Lambda-Runtime-Trace-Id`.
    pub trace_header: String,
    /// The event's JSON.
    pub event: String,
}

/// What the runtime did.
#[derive(Debug, Default)]
pub struct Log {
    /// `(request id, response body)` in the order the runtime posted them.
    pub responses: Vec<(String, String)>,
    /// `(request id, error body)` likewise.
    pub errors: Vec<(String, String)>,
    /// How many `/next` requests arrived.
    pub next_calls: usize,
}

type Hook = Box<dyn FnMut(usize) + Send>;

struct State {
    queue: VecDeque<Invocation>,
    log: Log,
    on_next: Option<Hook>,
    /// Each invocation's deadline, from when `/next` answers (none: far off).
    deadline: Option<std::time::Duration>,
}

/// The server; it runs until the process ends.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // holds a hook closure
pub struct RuntimeApi {
    /// Where it listens (`AWS_LAMBDA_RUNTIME_API`).
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    queued: Arc<Notify>,
    done: Arc<Notify>,
}

impl RuntimeApi {
    /// Starts serving on the current tokio runtime.
    pub async fn start(invocations: Vec<Invocation>) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = RuntimeApi {
            addr: listener.local_addr().unwrap(),
            state: Arc::new(Mutex::new(State {
                queue: invocations.into(),
                log: Log::default(),
                on_next: None,
                deadline: None,
            })),
            queued: Arc::new(Notify::new()),
            done: Arc::new(Notify::new()),
        };
        let server = api.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = server.clone();
                tokio::spawn(async move { s.connection(stream).await });
            }
        });
        api
    }

    /// Gives every invocation handed out from now on a deadline `after` the
    /// moment `/next` answers, as Lambda does with the function's timeout.
    pub fn deadline_after(&self, after: std::time::Duration) {
        self.state.lock().unwrap().deadline = Some(after);
    }

    /// Runs `hook(n)` at the `n`-th `/next` (from 1), before it is answered.
    pub fn on_next(&self, hook: impl FnMut(usize) + Send + 'static) {
        self.state.lock().unwrap().on_next = Some(Box::new(hook));
    }

    /// What happened so far.
    pub fn log<R>(&self, f: impl FnOnce(&Log) -> R) -> R {
        f(&self.state.lock().unwrap().log)
    }

    /// Waits until `n` invocations have been answered (response or error).
    pub async fn wait_answered(&self, n: usize) {
        loop {
            let notified = self.done.notified();
            if self.log(|l| l.responses.len() + l.errors.len()) >= n {
                return;
            }
            notified.await;
        }
    }

    async fn connection(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let mut parts = line.split_whitespace();
            let (method, path) = (
                parts.next().unwrap_or("").to_string(),
                parts.next().unwrap_or("").to_string(),
            );
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                    return;
                }
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((k, v)) = header.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).await.is_err() {
                return;
            }
            let body = String::from_utf8_lossy(&body).into_owned();
            let reply = self.route(&method, &path, body).await;
            if reader.get_mut().write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    async fn route(&self, method: &str, path: &str, body: String) -> String {
        const PREFIX: &str = "/2018-06-01/runtime/";
        let rest = path.strip_prefix(PREFIX).unwrap_or(path);
        if method == "GET" && rest == "invocation/next" {
            let invocation = self.next().await;
            let deadline = match self.state.lock().unwrap().deadline {
                Some(after) => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default();
                    (now + after).as_millis() as u64
                }
                None => u64::MAX / 2,
            };
            let headers = format!(
                "Lambda-Runtime-Aws-Request-Id: {}\r\nLambda-Runtime-Deadline-Ms: {}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:test-fn\r\n\
                 Lambda-Runtime-Trace-Id: {}\r\nContent-Type: application/json\r\n",
                invocation.request_id, deadline, invocation.trace_header
            );
            return response(200, &headers, &invocation.event);
        }
        if let Some(id) = rest.strip_prefix("invocation/") {
            if let Some(id) = id.strip_suffix("/response") {
                self.state
                    .lock()
                    .unwrap()
                    .log
                    .responses
                    .push((id.to_string(), body));
                self.done.notify_waiters();
                return response(202, "", "");
            }
            if let Some(id) = id.strip_suffix("/error") {
                self.state
                    .lock()
                    .unwrap()
                    .log
                    .errors
                    .push((id.to_string(), body));
                self.done.notify_waiters();
                return response(202, "", "");
            }
        }
        response(202, "", "")
    }

    async fn next(&self) -> Invocation {
        {
            let mut s = self.state.lock().unwrap();
            s.log.next_calls += 1;
            let n = s.log.next_calls;
            if let Some(hook) = s.on_next.as_mut() {
                hook(n);
            }
        }
        loop {
            let notified = self.queued.notified();
            if let Some(i) = self.state.lock().unwrap().queue.pop_front() {
                return i;
            }
            // No work: hold the long poll, as Lambda does.
            notified.await;
        }
    }
}

fn response(status: u16, headers: &str, body: &str) -> String {
    let reason = if status == 200 { "OK" } else { "Accepted" };
    format!(
        "HTTP/1.1 {status} {reason}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Sets the variables `lambda_runtime` reads. Call before any other thread
/// reads the environment (the first statement of a test binary's only test).
pub fn set_lambda_env(api: SocketAddr, extra: &[(&str, &str)]) {
    let vars = [
        ("AWS_LAMBDA_RUNTIME_API", api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", "test-fn".to_string()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "1".to_string()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "stream".to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "group".to_string()),
    ];
    for (k, v) in vars
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(extra.iter().copied())
    {
        // SAFETY: the test binary has one test, which calls this before it
        // starts anything that reads the environment.
        unsafe { std::env::set_var(k, v) };
    }
}
