//! The layer: spans in, records out.
//!
//! Per span, on the caller's thread: a cached callsite class, one table read
//! for the parent, one write for the span, a random id, and a record pushed
//! at open, per field and at close. No allocation, lock or syscall (the span
//! table and the rings are lock-free and preallocated); the one wait is
//! deliberate, at the end of a sampled Lambda invocation, bounded by the
//! flush timeout, so nothing is left to the next thaw.
//!
//! The exceptions, each off the common path: a thread's first span makes its
//! ring (one allocation, one lock); an `aws_metadata` span boxes its values
//! and SDK calls inside it read them under the span's extensions lock; in
//! Lambda with no invocation span ever seen, a span without a parent reads
//! `_X_AMZN_TRACE_ID`; the first span outside any trace prints one warning.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tracing_core::span::{Attributes, Id, Record as Values};
use tracing_core::subscriber::Interest;
use tracing_core::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;
use xray_emitter::record::FLAG_FAULT;
use xray_emitter::{
    Body, Emitter, EmitterGuard, Flushed, Key, Record, SegmentId, Stats, Value, clock,
};

use crate::builder::{Builder, ContextMissing};
use crate::classify::{Callsites, Class};
use crate::contexts::Contexts;
use crate::fields::{self, Find, Message, SdkFields, UserFields, attr};
use crate::identity::{Identity, Plugins};
use crate::metadata::AwsMetadataFields;
use crate::sampling::{self, Sampler};
use crate::states::{State, StateCell, States, flag};

mod documents;
mod invocation;
mod placement;
mod sdk_call;

use placement::inherited;

/// A `tracing_subscriber::Layer` that sends AWS X-Ray documents: Lambda
/// invocations give the trace, AWS SDK calls become `aws` subsegments, and
/// every other span in a sampled trace a subsegment where it is nested.
///
/// [`XRaySubscriber::default()`] configures itself from the environment; use
/// [`XRaySubscriber::builder()`] to set things explicitly. Dropping the layer
/// flushes and stops its sender thread.
pub struct XRaySubscriber {
    instance: u32,
    emitter: Emitter,
    _guard: Option<EmitterGuard>,
    pub(crate) states: States,
    pub(crate) contexts: Contexts,
    callsites: Callsites,
    sampler: Arc<Sampler>,
    service_name: Option<String>,
    /// What segments say of the program (outside Lambda only).
    identity: Option<Identity>,
    region: Option<String>,
    lambda: bool,
    /// Spans of unsampled traces are recorded too (OTLP over UDP, `T1U`).
    record_unsampled: bool,
    concurrent: bool,
    flush_timeout: Duration,
    context_missing: ContextMissing,
    warned: AtomicBool,
    last_invocation: StateCell,
    metadata_open: AtomicUsize,
    /// Spans open that the state table could not follow (marked in their
    /// extensions): while there are none, lookups never take that lock.
    unfollowed_open: AtomicUsize,
}

impl std::fmt::Debug for XRaySubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XRaySubscriber")
            .field("lambda", &self.lambda)
            .field("stats", &self.emitter.stats())
            .finish()
    }
}

impl Default for XRaySubscriber {
    /// Configured from the environment (see [`Builder::from_env`]). If the
    /// sender cannot start (an invalid `AWS_XRAY_DAEMON_ADDRESS`), the error
    /// is printed once to stderr and every span is counted as dropped.
    fn default() -> Self {
        match Builder::from_env().build() {
            Ok(layer) => layer,
            Err(e) => {
                eprintln!("tracing-xray: {e}; no traces will be sent");
                let b = Builder::from_env();
                let sampling = b.sampling(None);
                XRaySubscriber::new(b, Emitter::disabled(), None, sampling)
            }
        }
    }
}

/// A cloneable handle to a running [`XRaySubscriber`]'s sender.
#[derive(Clone, Debug)]
pub struct XRayHandle {
    emitter: Emitter,
    sampler: Arc<Sampler>,
}

impl XRayHandle {
    /// Waits until everything recorded before the call is in the socket, or `timeout`.
    pub fn flush(&self, timeout: Duration) -> Flushed {
        self.emitter.flush(timeout)
    }

    /// What was sent, dropped, truncated, unsampled.
    pub fn stats(&self) -> Stats {
        self.emitter.stats()
    }

    /// Sampling rules fetched from X-Ray in force, its `Default` rule
    /// included; 0 while local rules or the built-in default decide (before
    /// the first answer, in Lambda, or without a reachable daemon).
    pub fn sampling_rules(&self) -> usize {
        self.sampler.centralized_rules()
    }

    /// Flushes and stops the sender thread (idempotent).
    pub fn shutdown(&self, timeout: Duration) -> Flushed {
        self.emitter.shutdown(timeout)
    }

    /// After the process was restored from a snapshot that other processes
    /// resume too (Lambda SnapStart): new id seeds from fresh OS entropy, a
    /// new clock anchor and a new socket. `lambda::SnapStart` (feature
    /// `lambda-runtime`) calls it.
    pub fn after_restore(&self) {
        self.emitter.after_restore();
    }
}

impl XRaySubscriber {
    /// A builder starting from the environment.
    pub fn builder() -> Builder {
        Builder::from_env()
    }

    pub(crate) fn new(
        b: Builder,
        emitter: Emitter,
        guard: Option<EmitterGuard>,
        sampling: sampling::Config,
    ) -> Self {
        let record_unsampled = b.records_unsampled();
        XRaySubscriber {
            instance: crate::current::new_instance(),
            emitter,
            _guard: guard,
            states: States::new(b.open_spans.saturating_mul(4)),
            contexts: Contexts::new(256),
            callsites: Callsites::default(),
            sampler: Arc::new(Sampler::new(sampling)),
            identity: (!b.lambda).then(|| {
                let plugins = Plugins::from_env(b.ec2_metadata);
                Identity::detect(b.service_version.clone(), &plugins, b.metadata_timeout)
            }),
            service_name: b.service_name,
            region: b.region,
            lambda: b.lambda,
            record_unsampled,
            concurrent: b.concurrent,
            flush_timeout: b.flush_timeout,
            context_missing: b.context_missing,
            warned: AtomicBool::new(false),
            last_invocation: StateCell::default(),
            metadata_open: AtomicUsize::new(0),
            unfollowed_open: AtomicUsize::new(0),
        }
    }

    /// A handle to flush and read the stats after the layer is installed.
    pub fn handle(&self) -> XRayHandle {
        XRayHandle {
            emitter: self.emitter.clone(),
            sampler: self.sampler.clone(),
        }
    }

    /// The emitter's counters.
    pub fn stats(&self) -> Stats {
        self.emitter.stats()
    }

    #[cfg_attr(not(feature = "aws-sdk"), allow(dead_code))]
    pub(crate) fn emitter(&self) -> &Emitter {
        &self.emitter
    }

    /// Whether an SDK call's trace header is set before signing rather than
    /// as each attempt is sent. In Lambda, one invocation at a time,
    /// `lambda_runtime` sets `_X_AMZN_TRACE_ID`, and the SDK's
    /// recursion-detection interceptor would otherwise read it and the
    /// function's name (two `String`s) and build a header of its own before
    /// signing, which ours would replace: set first, the SDK's is never
    /// made. Elsewhere the SDK makes none, and setting the header late
    /// spares the copies the attempt's request clone and signing make.
    #[cfg_attr(not(feature = "aws-sdk"), allow(dead_code))]
    pub(crate) fn sets_header_early(&self) -> bool {
        self.lambda && !self.concurrent
    }

    pub(crate) fn state(&self, id: &Id) -> Option<State> {
        self.states.get(id.into_u64())
    }

    #[inline]
    fn push(&self, span: SegmentId, body: Body) {
        self.emitter.push(Record::new(span, body));
    }

    /// An event the layer wants (a request id, an error), off the path of
    /// the many it does not: their calls skip this frame's set-up.
    #[inline(never)]
    fn event_in_span<S>(
        &self,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
        request_id: bool,
        error: bool,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let span = self.parent_of(ctx, event.is_root(), event.is_contextual(), event.parent());
        let Some(state) = span.and_then(|id| self.states.get(id.into_u64())) else {
            return;
        };
        // Recorded: sampled, or unsampled for OTLP's `T1U` datagrams.
        if state.own.is_none() && state.op.is_none() {
            return;
        }
        if request_id && let Some(op) = state.op {
            let mut f = Find::new("request_id");
            event.record(&mut f);
            if let Some(id) = f.found.as_deref().and_then(fields::unwrap_debug_option) {
                self.emitter.push_str(op, Key::Aws("request_id"), id);
            }
        }
        if error && let Some(target) = state.own.or(state.op) {
            let mut m = Message::new();
            event.record(&mut m);
            self.emitter
                .push(attr(target, Key::Flags, Value::U64(FLAG_FAULT)));
            let text = m.text.as_deref().unwrap_or("error");
            self.emitter
                .push_str(target, Key::Exception { remote: false }, text);
        }
    }
}

impl<S> Layer<S> for XRaySubscriber
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        let _ = self.callsites.class(metadata);
        Interest::always()
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let seen = self.callsites.seen(attrs.metadata());
        let class = seen.class;
        match class {
            Class::Invocation => self.open_invocation(attrs, id),
            Class::User => {
                let (_, parent) = self.parent_state(attrs, &ctx);
                if let Err(sampled) = self.open_user(attrs, id, parent, seen.plain) {
                    self.mark_unfollowed(&ctx, id, sampled);
                }
            }
            Class::Operation | Class::Invoke => {
                let parent = self.parent_state(attrs, &ctx);
                self.open_sdk_call(attrs, id, class, parent, &ctx);
            }
            Class::Attempt => {
                let (_, parent) = self.parent_state(attrs, &ctx);
                self.inherit(id, parent, Class::Transparent);
                // Counted rather than read: SDK releases before 2025-03 have no
                // `attempt` field on this span.
                if let Some(op) = parent.filter(State::sampled).and_then(|p| p.op) {
                    self.emitter.push(attr(op, Key::Attempt, Value::U64(0)));
                }
            }
            Class::Transparent => {
                let (_, parent) = self.parent_state(attrs, &ctx);
                self.inherit(id, parent, Class::Transparent);
            }
            Class::AwsMetadata => {
                let (_, parent) = self.parent_state(attrs, &ctx);
                let mut fields = AwsMetadataFields::default();
                attrs.record(&mut fields);
                if let Some(span) = ctx.span(id) {
                    span.extensions_mut().insert(fields);
                }
                self.metadata_open.fetch_add(1, Ordering::Relaxed);
                let state = parent.map_or(State::untraced(Class::AwsMetadata), |p| {
                    inherited(p, Class::AwsMetadata)
                });
                if !self.states.insert(id.into_u64(), &state) {
                    self.metadata_open.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn on_record(&self, id: &Id, values: &Values<'_>, ctx: Context<'_, S>) {
        let Some(state) = self.states.get(id.into_u64()) else {
            return;
        };
        match (state.class, state.own) {
            (Class::User, Some(own)) => self.emitter.batch(|b| {
                values.record(&mut UserFields {
                    out: b,
                    span: own,
                    remote: None,
                });
            }),
            (Class::Operation | Class::Invoke, Some(own)) => self.emitter.batch(|b| {
                values.record(&mut SdkFields {
                    out: b,
                    span: own,
                    name_from_service: state.flags & flag::NAMED_BY_SERVICE != 0,
                });
            }),
            (Class::AwsMetadata, _) => {
                if let Some(span) = ctx.span(id) {
                    let mut ext = span.extensions_mut();
                    if let Some(fields) = ext.get_mut::<AwsMetadataFields>() {
                        values.record(fields);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let target = meta.target();
        // The SDK logs its request ids as DEBUG events; a user's ERROR event
        // marks its span. The SDK's own ERROR logs are about its internals,
        // not the call's outcome (which the interceptor reports).
        let request_id = target.starts_with("aws_sdk_");
        let error = *meta.level() == Level::ERROR && !crate::classify::is_sdk_target(target);
        if !error && !request_id {
            return;
        }
        self.event_in_span(event, &ctx, request_id, error);
    }

    fn on_enter(&self, id: &Id, _ctx: Context<'_, S>) {
        crate::current::enter(self.instance, id.into_u64());
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        crate::current::exit(self.instance, id.into_u64());
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(state) = self.states.remove(id.into_u64()) else {
            self.closed_unfollowed(&ctx, &id);
            return;
        };
        if let Some(own) = state.own {
            // A refused close is not counted here: the span was counted
            // already if its open was refused too, and otherwise the sender
            // holds it open and counts it lost when it evicts it or stops
            // (or, for an open pushed after the sender's last pass, the
            // reaper counts it dropped).
            self.emitter
                .push(Record::new(own, Body::Close { time: clock::now() }));
        }
        match state.class {
            Class::Invocation => self.close_invocation(&state),
            Class::AwsMetadata => {
                self.metadata_open.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
        if state.flags & flag::OWNS_CONTEXT != 0 {
            self.contexts.release(state.context);
        }
    }
}
