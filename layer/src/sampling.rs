//! Which new traces are recorded, outside Lambda: the sampling rules of the
//! account (fetched through the daemon, see `poller`), local rules from a
//! file, or the X-Ray default (one request a second, then 5 %).
//!
//! A decision reads an immutable snapshot of the rules and updates atomic
//! counters: no lock, no allocation, no syscall on the request's thread.
//! Each thread keeps the snapshot it last used; a new one (rules change a
//! few times a day at most) is picked up with one `try_lock` by each thread
//! on its next decision.

mod api;
mod poller;
mod request;
mod reservoir;
mod rules;

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use xray_emitter::SegmentId;
use xray_emitter::clock::{self, Converter, Ticks};

pub(crate) use request::RequestFields;
pub(crate) use rules::Request;
use rules::{Pattern, Quick, QuickRequest, Rule};

use reservoir::RuleState;

/// Seconds since the process's first sampler: the clock of every
/// reservoir. The CPU's tick counter where the emitter uses it (no system
/// call, and no wall-clock jump moves it), converted at the rate the
/// emitter measured once.
fn now() -> u64 {
    base().seconds_since_anchor(clock::now())
}

fn base() -> &'static Converter {
    static BASE: OnceLock<Converter> = OnceLock::new();
    BASE.get_or_init(Converter::new)
}

/// The rules in force.
#[derive(Debug)]
pub(crate) struct Snapshot {
    rules: Vec<Rule>,
    /// Each rule's first test, side by side (a few cache lines for all).
    quick: Vec<Quick>,
    default: Rule,
    /// Some rule looks at span attributes: only then are they collected.
    pub(crate) attributes: bool,
    /// Fetched from X-Ray (counted and reported), not local.
    centralized: bool,
}

impl Snapshot {
    fn new(mut rules: Vec<Rule>, default: Rule, centralized: bool) -> Snapshot {
        let attributes = rules.iter().any(|r| !r.attributes.is_empty());
        // X-Ray's own `Default` rule is the default, not a rule to try.
        if let Some(i) = rules
            .iter()
            .position(|r| centralized && &*r.name == "Default")
        {
            let fetched = rules.remove(i);
            return Snapshot {
                quick: rules.iter().map(Quick::new).collect(),
                rules,
                default: fetched,
                attributes,
                centralized,
            };
        }
        Snapshot {
            quick: rules.iter().map(Quick::new).collect(),
            rules,
            default,
            attributes,
            centralized,
        }
    }

    /// The rule deciding `request`: the first that matches, else the default.
    #[inline]
    fn rule(&self, request: &Request<'_>) -> &Rule {
        let quick = QuickRequest::new(request);
        for (i, q) in self.quick.iter().enumerate() {
            if q.admits(&quick)
                && let Some(rule) = self.rules.get(i)
                && q.matches(rule, request)
            {
                return rule;
            }
        }
        &self.default
    }
}

/// X-Ray's default when no rule is known: one request a second, then `rate`.
fn builtin_default(rate: f64) -> Rule {
    Rule {
        name: "Default".into(),
        priority: i64::MAX,
        service_name: Pattern::Any,
        service_type: Pattern::Any,
        host: Pattern::Any,
        http_method: Pattern::Any,
        url_path: Pattern::Any,
        any_resource: true,
        attributes: Box::new([]),
        state: Arc::new(RuleState::local(1, rate)),
    }
}

/// Where the poller and the deciding threads meet.
#[derive(Debug)]
struct Shared {
    id: u64,
    current: Mutex<Arc<Snapshot>>,
    /// Bumped after `current` changes.
    version: AtomicU64,
    /// Rules fetched from X-Ray in the snapshot (0: local or default).
    centralized_rules: AtomicUsize,
}

impl Shared {
    fn install(&self, snapshot: Arc<Snapshot>) {
        let centralized = if snapshot.centralized {
            snapshot.rules.len() + 1
        } else {
            0
        };
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = snapshot;
        self.centralized_rules.store(centralized, Ordering::Relaxed);
        self.version.fetch_add(1, Ordering::Release);
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

thread_local! {
    /// The snapshot this thread decided with last: (sampler id, version, rules).
    static CACHED: RefCell<Option<(u64, u64, Arc<Snapshot>)>> = const { RefCell::new(None) };
}

/// How a [`Sampler`] is set up.
#[derive(Clone, Debug, Default)]
pub(crate) struct Config {
    /// The rate after the first request of each second, without rules.
    pub(crate) rate: f64,
    /// The daemon's TCP address (`host:port`), to fetch rules through.
    pub(crate) centralized: Option<String>,
    /// A local rules file.
    pub(crate) local_rules: Option<PathBuf>,
}

/// Decides whether a new trace is recorded.
#[derive(Debug)]
pub(crate) struct Sampler {
    shared: Arc<Shared>,
    _poller: Option<poller::Poller>,
}

impl Sampler {
    pub(crate) fn new(config: Config) -> Sampler {
        static IDS: AtomicU64 = AtomicU64::new(1);
        let _ = base();
        let mut default = builtin_default(config.rate);
        let mut local = Vec::new();
        if let Some(path) = &config.local_rules {
            match std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|b| api::local(&b).map_err(|m| m.0))
            {
                Ok((rules, d)) => (local, default) = (rules, d),
                Err(e) => eprintln!(
                    "tracing-xray: local sampling rules {} not used ({e}); the default rule applies",
                    path.display()
                ),
            }
        }
        let local = Arc::new(Snapshot::new(local, default, false));
        let shared = Arc::new(Shared {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            current: Mutex::new(local.clone()),
            version: AtomicU64::new(0),
            centralized_rules: AtomicUsize::new(0),
        });
        let poller = config
            .centralized
            .and_then(|address| poller::Poller::start(shared.clone(), local, address));
        Sampler {
            shared,
            _poller: poller,
        }
    }

    /// Whether some rule reads span attributes (so they are worth collecting).
    pub(crate) fn wants_attributes(&self) -> bool {
        self.with_snapshot(|s| s.attributes)
    }

    /// Whether to record a new trace for `request`.
    /// Decides `request`, arriving `at` (the clock as the root span read
    /// it for its start: read once for both).
    pub(crate) fn sample(&self, request: &Request<'_>, at: Ticks) -> bool {
        let second = base().seconds_since_anchor(at);
        self.with_snapshot(|s| {
            s.rule(request)
                .state
                .decide(second, || SegmentId::random().get())
        })
    }

    /// Rules fetched from X-Ray in force (their `Default` included); 0 while
    /// local rules or the built-in default decide.
    pub(crate) fn centralized_rules(&self) -> usize {
        self.shared.centralized_rules.load(Ordering::Relaxed)
    }

    /// Runs `f` on the snapshot in force. A thread's first decision, and
    /// its first after the rules change, take the lock for the time of an
    /// `Arc` clone (`try_lock`, falling back to the snapshot it had);
    /// every other decision reads its own cached snapshot.
    fn with_snapshot<R>(&self, f: impl Fn(&Snapshot) -> R) -> R {
        let shared = &*self.shared;
        let version = shared.version.load(Ordering::Acquire);
        let cached = CACHED.try_with(|cached| {
            let mut cached = cached.try_borrow_mut().ok()?;
            let fresh = matches!(&*cached, Some((id, v, _)) if *id == shared.id && *v == version);
            if !fresh && let Ok(current) = shared.current.try_lock() {
                *cached = Some((shared.id, version, current.clone()));
            }
            match &*cached {
                Some((id, _, snapshot)) if *id == shared.id => Some(f(snapshot)),
                _ => None,
            }
        });
        match cached {
            Ok(Some(r)) => r,
            // No cache for this sampler (the thread is exiting, or the
            // poller held the lock at this thread's very first decision).
            _ => f(&shared.snapshot()),
        }
    }
}

/// Sampling decisions outside a layer, for this workspace's benchmark.
#[doc(hidden)]
pub mod testing {
    use super::*;

    /// Rules as a `GetSamplingRules` answer gives them.
    #[derive(Debug)]
    pub struct Rules(Snapshot);

    impl Rules {
        /// `body`: a `GetSamplingRules` answer; `None` if it is not one.
        pub fn from_api(body: &[u8]) -> Option<Rules> {
            let (rules, _) = api::rules(body, &[]).ok()?;
            Some(Rules(Snapshot::new(rules, builtin_default(0.05), true)))
        }

        /// Decides one request, as a root span with these fields would be.
        pub fn sample(&self, service: &str, method: &str, host: &str, path: &str) -> bool {
            self.sample_at(service, method, host, path, clock::now())
        }

        /// As [`Rules::sample`], with the clock already read (as the layer
        /// reads it once for a root span's start and its decision).
        pub fn sample_at(
            &self,
            service: &str,
            method: &str,
            host: &str,
            path: &str,
            at: clock::Ticks,
        ) -> bool {
            let request = Request {
                service,
                service_type: "",
                host,
                method,
                path,
                attributes: &[],
            };
            self.0
                .rule(&request)
                .state
                .decide(base().seconds_since_anchor(at), || {
                    SegmentId::random().get()
                })
        }

        /// The name of the rule that decides such a request.
        pub fn rule(&self, service: &str, method: &str, host: &str, path: &str) -> &str {
            let request = Request {
                service,
                service_type: "",
                host,
                method,
                path,
                attributes: &[],
            };
            &self.0.rule(&request).name
        }
    }
}
