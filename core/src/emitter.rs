//! The handle producers hold, its builder, and the guard that flushes on drop.
//!
//! Each thread that pushes gets its own ring (made on its first push, the
//! one allocation), so a push is a copy and a store into memory no other
//! producer touches. Pushing never blocks: a full ring (or a sender that is
//! gone) drops the record and counts it. Only [`Emitter::flush`] waits, for a
//! bounded time, which is what a Lambda handler needs before the sandbox freezes.

use std::cell::RefCell;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrayvec::ArrayVec;

mod batch;

pub use batch::Batch;

use crate::address::{AddressError, DaemonAddress};
use crate::id::SegmentId;
use crate::otlp::Format;
use crate::outbox::Transport;
use crate::record::{Key, Record};
use crate::ring::{Producer, Pushed, ring};
use crate::sender::{self, Shared};
use crate::socket::{DaemonSocket, Target};
use crate::stats::Stats;
use crate::table::TableConfig;

/// Why the emitter did not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// `AWS_XRAY_DAEMON_ADDRESS` is not a valid address.
    Address(AddressError),
    /// The sender thread could not be spawned.
    Spawn(std::io::Error),
    /// An export endpoint that cannot be used (OTLP/HTTP: not `http://`).
    Endpoint(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Address(e) => e.fmt(f),
            StartError::Spawn(e) => write!(f, "cannot start the X-Ray sender thread: {e}"),
            StartError::Endpoint(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Address(e) => Some(e),
            StartError::Spawn(e) => Some(e),
            StartError::Endpoint(_) => None,
        }
    }
}

/// The result of [`Emitter::flush`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "`complete` says whether everything was handed to the socket"]
pub struct Flushed {
    /// Everything enqueued before the call has been handed to the socket.
    pub complete: bool,
    /// Records still queued when the call returned.
    pub pending: usize,
}

/// Configures and starts an [`Emitter`].
#[derive(Debug, Clone)]
pub struct EmitterBuilder {
    target: Option<Target>,
    queue_capacity: usize,
    table: TableConfig,
    format: Format,
    max_idle: Duration,
    report_errors: bool,
    thread_name: String,
    guard_timeout: Duration,
}

impl Default for EmitterBuilder {
    fn default() -> Self {
        EmitterBuilder {
            target: None,
            queue_capacity: 4096,
            table: TableConfig::default(),
            format: Format::XRay,
            max_idle: Duration::from_millis(10),
            report_errors: true,
            thread_name: "xray-emitter".to_string(),
            guard_timeout: Duration::from_millis(500),
        }
    }
}

impl EmitterBuilder {
    /// Sends to this address instead of the one in `AWS_XRAY_DAEMON_ADDRESS`.
    #[must_use]
    pub fn daemon(mut self, address: SocketAddr) -> Self {
        self.target = Some(Target::Addr(address));
        self
    }

    /// Sends to this daemon address (a host name is resolved off the sender
    /// thread, again when every address it gave refuses).
    #[must_use]
    pub fn daemon_address(mut self, address: &DaemonAddress) -> Self {
        self.target = Some(Target::Host(address.udp.clone()));
        self
    }

    /// Sends to `target`.
    #[must_use]
    pub fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    /// Records each producing thread's ring holds (default 4,096, 256 KiB,
    /// rounded up to a power of two, at most 2^24); a full ring drops and counts.
    #[must_use]
    pub fn queue_capacity(mut self, records: usize) -> Self {
        self.queue_capacity = records;
        self
    }

    /// Spans open at once (default 1,024, at most 2^20; all preallocated).
    #[must_use]
    pub fn open_spans(mut self, spans: usize) -> Self {
        self.table.open_spans = spans;
        self
    }

    /// Bytes of string values kept per span (default 2,048, at most 1 MiB).
    #[must_use]
    pub fn span_text_bytes(mut self, bytes: usize) -> Self {
        self.table.text_bytes = bytes;
        self
    }

    /// Spans whose closed children wait at once to be nested (default 16,
    /// at most 4,096; each costs 32 KB).
    #[must_use]
    pub fn child_buffers(mut self, buffers: usize) -> Self {
        self.table.child_buffers = buffers;
        self
    }

    /// What the sender writes: X-Ray documents (the default) or OTLP.
    #[must_use]
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Longest pause of the sender between drains when idle (default 10 ms).
    #[must_use]
    pub fn max_idle(mut self, pause: Duration) -> Self {
        self.max_idle = pause.max(Duration::from_micros(100));
        self
    }

    /// Whether send errors are printed to stderr (at most once a minute; default on).
    #[must_use]
    pub fn report_errors(mut self, on: bool) -> Self {
        self.report_errors = on;
        self
    }

    /// Name of the sender thread (default `xray-emitter`).
    #[must_use]
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// How long the guard's drop waits for a final flush (default 500 ms).
    #[must_use]
    pub fn guard_timeout(mut self, timeout: Duration) -> Self {
        self.guard_timeout = timeout;
        self
    }

    /// Starts the sender thread on a UDP socket to the daemon.
    pub fn start(self) -> Result<(Emitter, EmitterGuard), StartError> {
        let target = match self.target.clone() {
            Some(t) => t,
            None => Target::Host(DaemonAddress::from_env().map_err(StartError::Address)?.udp),
        };
        let report = self.report_errors;
        self.start_with(move || DaemonSocket::new(target, report))
    }

    /// Starts the sender thread on a transport of the caller's (tests, benchmarks).
    pub fn start_with<T, F>(self, make_transport: F) -> Result<(Emitter, EmitterGuard), StartError>
    where
        T: Transport,
        F: FnOnce() -> T + Send + 'static,
    {
        // Chosen now, so that a producer's first span does not pay for it
        // (it reads the environment and runs CPUID).
        let _ = crate::clock::uses_tsc();
        crate::id::watch_fork();
        let shared = Arc::new(Shared::new());
        let thread_shared = shared.clone();
        let table = self.table;
        let max_idle = self.max_idle;
        let format = self.format.clone();
        let handle = std::thread::Builder::new()
            .name(self.thread_name.clone())
            .spawn(move || sender::run(thread_shared, table, &format, max_idle, make_transport()))
            .map_err(StartError::Spawn)?;
        let _ = shared.thread.set(handle.thread().clone());
        let emitter = Emitter {
            inner: Arc::new(Inner {
                id: next_id(),
                forks: crate::id::forks(),
                ring_capacity: self.queue_capacity,
                enabled: true,
                shared,
                join: Mutex::new(Some(handle)),
            }),
        };
        let guard = EmitterGuard {
            emitter: emitter.clone(),
            timeout: self.guard_timeout,
        };
        Ok((emitter, guard))
    }
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// This thread's ring for one emitter.
struct Local {
    emitter: u64,
    ring: Producer,
}

/// Emitters a thread pushes to at once; past this the least recent one's
/// ring is abandoned (and a new one made if it comes back).
const PRODUCERS: usize = 4;

thread_local! {
    static LOCAL: RefCell<ArrayVec<Local, PRODUCERS>> = const { RefCell::new(ArrayVec::new_const()) };
}

struct Inner {
    id: u64,
    /// [`crate::id::forks`] when the sender started: in a forked child the
    /// sender thread does not exist (only the forking thread is copied).
    forks: u64,
    ring_capacity: usize,
    enabled: bool,
    shared: Arc<Shared>,
    join: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    /// The last handle is gone: nothing more can be pushed, so the sender
    /// sends what it has and stops.
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.wake();
    }
}

/// A cheap, cloneable handle to the queue and the sender thread.
#[derive(Clone)]
pub struct Emitter {
    inner: Arc<Inner>,
}

impl fmt::Debug for Emitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter")
            .field("queued", &self.queued())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Emitter {
    /// A builder with the defaults (daemon address from `AWS_XRAY_DAEMON_ADDRESS`).
    pub fn builder() -> EmitterBuilder {
        EmitterBuilder::default()
    }

    /// An emitter with no sender: every push is a counted drop. What a binding
    /// falls back to when it cannot start (a bad daemon address, no thread).
    pub fn disabled() -> Emitter {
        Emitter {
            inner: Arc::new(Inner {
                id: next_id(),
                forks: crate::id::forks(),
                ring_capacity: 0,
                enabled: false,
                shared: Arc::new(Shared::new()),
                join: Mutex::new(None),
            }),
        }
    }

    /// Enqueues a record into this thread's ring; never blocks. Returns
    /// `false` (and counts a drop) when the ring is full or the sender is gone.
    #[inline]
    pub fn push(&self, record: Record) -> bool {
        let inner = &*self.inner;
        if inner.shared.shutdown.load(Ordering::Relaxed) || crate::id::forks() != inner.forks {
            // The sender has stopped, or is about to, or lives in the parent
            // of this forked process: nobody would read the ring.
            self.dropped();
            return false;
        }
        let pushed = LOCAL.try_with(|local| {
            let mut local = local.try_borrow_mut().ok()?;
            let i = match local.iter().position(|p| p.emitter == inner.id) {
                Some(i) => i,
                None => self.register(&mut local)?,
            };
            Some(local[i].ring.push(record))
        });
        match pushed {
            Ok(Some(Pushed::Ok)) => true,
            Ok(Some(Pushed::HalfFull)) => {
                inner.shared.wake();
                true
            }
            _ => {
                self.dropped();
                false
            }
        }
    }

    /// Makes this thread's ring: once per thread, the one allocation.
    #[cold]
    #[inline(never)]
    fn register(&self, local: &mut ArrayVec<Local, PRODUCERS>) -> Option<usize> {
        let inner = &*self.inner;
        if !inner.enabled || inner.shared.shutdown.load(Ordering::Acquire) {
            return None;
        }
        let (producer, consumer) = ring(inner.ring_capacity);
        {
            let mut rings = inner.shared.rings.lock().unwrap_or_else(|p| p.into_inner());
            rings.watches.push(consumer.watch());
            rings.incoming.push(consumer);
        }
        inner.shared.rings_version.fetch_add(1, Ordering::AcqRel);
        if local.is_full() {
            local.remove(0);
        }
        local.push(Local {
            emitter: inner.id,
            ring: producer,
        });
        Some(local.len() - 1)
    }

    #[cold]
    #[inline(never)]
    fn dropped(&self) {
        self.inner.shared.counters.records_dropped.add(1);
        if self.forked() {
            static WARNED: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "xray-emitter: this process was forked after the emitter started; its \
                     sender thread stayed in the parent, so nothing is sent from here \
                     (start the emitter, or build the layer, in the child)"
                );
            }
            return;
        }
        self.inner.shared.wake();
    }

    /// Whether this is a forked child of the process that started the sender.
    fn forked(&self) -> bool {
        crate::id::forks() != self.inner.forks
    }

    /// After a Lambda SnapStart restore (or any resume of a snapshot that
    /// other processes resume too): every thread draws new id seeds from
    /// fresh OS entropy, and the sender re-anchors its clock and reopens its
    /// socket before it sends again.
    pub fn after_restore(&self) {
        crate::id::reseed();
        self.inner.shared.restored.store(true, Ordering::Release);
        self.inner.shared.wake();
    }

    /// Enqueues a string field, in as many records as it takes (see
    /// [`Record::split_str`]). Returns `false` if any of them was dropped.
    pub fn push_str(&self, span: SegmentId, key: Key, value: &str) -> bool {
        let mut all = true;
        let cut = Record::split_str(span, key, value, |r| all &= self.push(r));
        if cut {
            self.inner.shared.counters.values_truncated.add(1);
        }
        all
    }

    /// Pushes a JSON text (an object or list as a service returned it) for
    /// `key`, to be written into the document as it is. It is checked on the
    /// sender thread, not here: one that is not valid JSON, or is longer than
    /// [`MAX_VALUE_BYTES`](crate::record::MAX_VALUE_BYTES) (cut, and
    /// counted in `values_truncated`), is written as a string.
    pub fn push_json(&self, span: SegmentId, key: Key, json: &str) -> bool {
        let mut all = true;
        let cut = Record::split_json(span, key, json, |r| all &= self.push(r));
        if cut {
            self.inner.shared.counters.values_truncated.add(1);
        }
        all
    }

    /// Counts a span that was not sent because its trace is not sampled.
    #[doc(hidden)]
    #[inline]
    pub fn count_unsampled(&self) {
        self.inner.shared.counters.spans_unsampled.add(1);
    }

    /// Counts a span that was not sent because it belongs to no trace.
    #[doc(hidden)]
    #[inline]
    pub fn count_untraced(&self) {
        self.inner.shared.counters.spans_untraced.add(1);
    }

    /// Counts a span whose open record could not be enqueued.
    #[doc(hidden)]
    #[inline]
    pub fn count_dropped_span(&self) {
        self.inner.shared.counters.spans_dropped.add(1);
    }

    /// Records waiting in the rings.
    pub fn queued(&self) -> usize {
        self.inner.shared.reap();
        self.inner.shared.queued()
    }

    /// The counters. Once the sender has stopped, records pushed after its
    /// last pass are counted as dropped here.
    pub fn stats(&self) -> Stats {
        self.inner.shared.reap();
        self.inner.shared.counters.snapshot()
    }

    /// Waits until everything enqueued before this call has been handed to
    /// the socket, or `timeout` has passed.
    pub fn flush(&self, timeout: Duration) -> Flushed {
        let shared = &self.inner.shared;
        if self.forked() || (!shared.running.load(Ordering::Acquire) && self.inner.join_finished())
        {
            let pending = self.queued();
            return Flushed {
                complete: pending == 0,
                pending,
            };
        }
        let ticket = shared.flush_requested.fetch_add(1, Ordering::AcqRel) + 1;
        shared.wake();
        let deadline = Instant::now() + timeout;
        let mut done = shared.flush_done.lock().unwrap_or_else(|p| p.into_inner());
        while *done < ticket {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            done = match shared.flushed.wait_timeout(done, deadline - now) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
        let complete = *done >= ticket;
        drop(done);
        if !complete {
            shared.counters.flush_timeouts.add(1);
        }
        Flushed {
            complete,
            pending: self.queued(),
        }
    }

    /// Flushes, stops the sender thread and waits for it, all within
    /// `timeout`. Later pushes are dropped and counted. Idempotent.
    pub fn shutdown(&self, timeout: Duration) -> Flushed {
        let deadline = Instant::now() + timeout;
        let flushed = self.flush(timeout);
        let shared = &self.inner.shared;
        // The transport finishes a little before the deadline, so that the
        // sender has counted what it could not finish by the time this returns.
        let margin = (timeout / 10).min(Duration::from_millis(20));
        let _ = shared.shutdown_deadline.set(deadline - margin);
        shared.shutdown.store(true, Ordering::Release);
        shared.wake();
        let mut join = self.inner.join.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(handle) = join.take() {
            while !handle.is_finished() && Instant::now() < deadline {
                shared.wake();
                std::thread::sleep(Duration::from_micros(200));
            }
            if handle.is_finished() {
                let _ = handle.join();
            } else {
                *join = Some(handle);
            }
        }
        flushed
    }
}

impl Inner {
    fn join_finished(&self) -> bool {
        let join = self.join.lock().unwrap_or_else(|p| p.into_inner());
        join.as_ref().is_none_or(|h| h.is_finished())
    }
}

/// Flushes and stops the emitter when dropped, waiting at most its timeout.
/// Keep it alive for as long as spans should be sent (e.g. in `main`).
#[must_use = "dropping the guard stops the emitter"]
pub struct EmitterGuard {
    emitter: Emitter,
    timeout: Duration,
}

impl fmt::Debug for EmitterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmitterGuard")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl EmitterGuard {
    /// The emitter this guard stops.
    pub fn emitter(&self) -> &Emitter {
        &self.emitter
    }
}

impl Drop for EmitterGuard {
    fn drop(&mut self) {
        let _ = self.emitter.shutdown(self.timeout);
    }
}
