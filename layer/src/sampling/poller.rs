//! The thread that keeps the rules and quotas current: `GetSamplingRules` at
//! start and every five minutes (sooner when X-Ray says they changed), and
//! `SamplingTargets` every ten seconds or as each target's `Interval` asks,
//! reporting what every rule decided. Requests never wait for it: until the
//! first answer, and whenever the proxy cannot be reached, the rules already
//! in force (local ones, or the default) decide.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::api::{self, Malformed};
use super::{Shared, Snapshot, now};

const RULES_EVERY: Duration = Duration::from_secs(300);
const TARGETS_EVERY: Duration = Duration::from_secs(10);
/// The first report after new rules arrive.
const FIRST_REPORT: Duration = Duration::from_secs(1);
/// A failed fetch is tried again this soon.
const RETRY: Duration = Duration::from_secs(10);
/// One exchange with the proxy, at most.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Rules not refreshed for this long are dropped for the local ones (or
/// the default), as the official SDKs do: an operator's change must not be
/// ignored for good because the daemon went away.
const RULES_EXPIRE: Duration = Duration::from_secs(3600);
/// Pages of rules read, at most (X-Ray returns 100 rules a page).
const MAX_PAGES: usize = 10;

/// Stops the thread when the sampler goes.
#[derive(Debug)]
pub(crate) struct Poller {
    stop: Arc<AtomicBool>,
    thread: Thread,
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

impl Poller {
    pub(crate) fn start(
        shared: Arc<Shared>,
        local: Arc<Snapshot>,
        address: String,
    ) -> Option<Poller> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("tracing-xray-sampling".into())
            .spawn(move || Polling::new(shared, local, address).run(&flag))
            .map_err(|e| {
                eprintln!("tracing-xray: no sampling rules poller ({e}); the default rule applies")
            })
            .ok()?;
        Some(Poller {
            stop,
            thread: handle.thread().clone(),
        })
    }
}

fn epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// 24 hex characters, the same for every sampler of this process.
fn client_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let a = xray_emitter::SegmentId::random().get();
        let b = xray_emitter::SegmentId::random().get();
        format!("{a:016x}{:08x}", b as u32)
    })
}

#[derive(Debug)]
enum Failure {
    Io(std::io::Error),
    Status(u16),
    Malformed(Malformed),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Io(e) => write!(f, "{e}"),
            Failure::Status(s) => write!(f, "HTTP status {s}"),
            Failure::Malformed(m) => write!(f, "unreadable answer: {}", m.0),
        }
    }
}

struct Polling {
    shared: Arc<Shared>,
    /// What decides without X-Ray's rules.
    local: Arc<Snapshot>,
    /// When X-Ray's rules were last fetched.
    fetched: Option<Instant>,
    address: String,
    /// When the rules in force were fetched (Unix seconds); 0: never.
    fetched_at: f64,
    reported: bool,
}

impl Polling {
    fn new(shared: Arc<Shared>, local: Arc<Snapshot>, address: String) -> Polling {
        Polling {
            shared,
            local,
            fetched: None,
            address,
            fetched_at: 0.0,
            reported: false,
        }
    }

    fn run(mut self, stop: &AtomicBool) {
        let mut rules_due = Instant::now();
        let mut targets_due = Instant::now() + TARGETS_EVERY;
        while !stop.load(Ordering::Acquire) {
            let now = Instant::now();
            if now >= rules_due {
                rules_due = match self.fetch_rules() {
                    Ok(()) => {
                        // New rules borrow one request a second until their
                        // first quota: ask for it soon.
                        targets_due = targets_due.min(now + FIRST_REPORT);
                        now + RULES_EVERY
                    }
                    Err(e) => {
                        self.failed("GetSamplingRules", &e);
                        now + RETRY
                    }
                };
            }
            if self
                .fetched
                .is_some_and(|at| now.duration_since(at) > RULES_EXPIRE)
            {
                self.fetched = None;
                self.shared.install(self.local.clone());
            }
            if now >= targets_due {
                targets_due = match self.report() {
                    Ok((interval, changed)) => {
                        if changed {
                            rules_due = now;
                        }
                        now + interval
                    }
                    Err(e) => {
                        self.failed("SamplingTargets", &e);
                        now + RETRY
                    }
                };
            }
            let next = rules_due.min(targets_due);
            std::thread::park_timeout(next.saturating_duration_since(Instant::now()));
        }
    }

    /// Said once per poller: a missing daemon is a setting, not news every ten seconds.
    fn failed(&mut self, what: &str, e: &Failure) {
        if !std::mem::replace(&mut self.reported, true) {
            eprintln!(
                "tracing-xray: {what} through the X-Ray daemon at {} failed ({e}); \
                 the rules in force (local, or the default) decide meanwhile, and \
                 it is tried again every {} s (reported once)",
                self.address,
                RETRY.as_secs()
            );
        }
    }

    fn post(&self, path: &str, body: &[u8]) -> Result<Vec<u8>, Failure> {
        let (status, answer) =
            crate::local_http::post(&self.address, path, body, TIMEOUT).map_err(Failure::Io)?;
        if status != 200 {
            return Err(Failure::Status(status));
        }
        Ok(answer)
    }

    fn fetch_rules(&mut self) -> Result<(), Failure> {
        let previous = self.shared.snapshot();
        let known: Vec<_> = previous.rules.iter().chain([&previous.default]).collect();
        let mut rules = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let body = match &token {
                Some(t) => serde_json::json!({ "NextToken": t }).to_string(),
                None => "{}".to_string(),
            };
            let answer = self.post("/GetSamplingRules", body.as_bytes())?;
            let (page, next) = api::rules(&answer, &known).map_err(Failure::Malformed)?;
            rules.extend(page);
            token = next;
            if token.is_none() {
                break;
            }
        }
        // Without an X-Ray `Default` among them, the default in force stays.
        let default = previous.default.clone();
        self.shared
            .install(Arc::new(Snapshot::new(rules, default, true)));
        self.fetched_at = epoch();
        self.fetched = Some(Instant::now());
        Ok(())
    }

    /// Reports every rule's counts; returns when to report next, and
    /// whether the rules changed since they were fetched.
    fn report(&mut self) -> Result<(Duration, bool), Failure> {
        let snapshot = self.shared.snapshot();
        if !snapshot.centralized {
            return Ok((TARGETS_EVERY, false));
        }
        let all: Vec<_> = snapshot.rules.iter().chain([&snapshot.default]).collect();
        let counts: Vec<_> = all
            .iter()
            .map(|r| (&*r.name, r.state.take_counts()))
            .collect();
        let now_epoch = epoch();
        let body = api::statistics(client_id(), now_epoch, &counts);
        let answer = self.post("/SamplingTargets", &body)?;
        let (targets, modified) = api::targets(&answer).map_err(Failure::Malformed)?;
        let mut interval = TARGETS_EVERY;
        for t in targets {
            let Some(rule) = all.iter().find(|r| *r.name == *t.rule) else {
                continue;
            };
            // X-Ray's TTL is wall-clock time; reservoirs count `Instant` seconds.
            let quota = t.quota.map(|(q, ttl)| {
                let left = (ttl - now_epoch).max(0.0);
                (q, now() + left.ceil() as u64)
            });
            let every = t.interval.unwrap_or(0);
            rule.state.set_target(t.fixed_rate, quota, every);
            if every > 0 {
                interval = interval.min(Duration::from_secs(every));
            }
        }
        let changed = modified.is_some_and(|m| m > self.fetched_at);
        Ok((interval, changed))
    }
}
