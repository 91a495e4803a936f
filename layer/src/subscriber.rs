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

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tracing_core::span::{Attributes, Id, Record as Values};
use tracing_core::subscriber::Interest;
use tracing_core::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;
use xray_emitter::header::{EXTRAS_CAPACITY, Sampled};
use xray_emitter::record::FLAG_FAULT;
use xray_emitter::{
    Body, Emitter, EmitterGuard, Flushed, Key, Kind, Record, SegmentId, StaticName, Stats,
    TraceHeader, TraceId, Value, clock,
};

use crate::builder::{Builder, ContextMissing};
use crate::classify::{Callsites, Class};
use crate::contexts::{self, Contexts};
use crate::fields::{self, Find, Message, SdkFields, UserFields, attr};
use crate::metadata::AwsMetadataFields;
use crate::sampler::Sampler;
use crate::states::{State, StateCell, States, flag};

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
    states: States,
    contexts: Contexts,
    callsites: Callsites,
    sampler: Sampler,
    service_name: Option<String>,
    region: Option<String>,
    lambda: bool,
    concurrent: bool,
    flush_timeout: Duration,
    context_missing: ContextMissing,
    warned: AtomicBool,
    last_invocation: StateCell,
    metadata_open: AtomicUsize,
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
                XRaySubscriber::new(Builder::from_env(), Emitter::disabled(), None)
            }
        }
    }
}

/// A cloneable handle to a running [`XRaySubscriber`]'s sender.
#[derive(Clone, Debug)]
pub struct XRayHandle {
    emitter: Emitter,
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

/// Where a new span goes.
struct Placement {
    trace: TraceId,
    anchor: Option<SegmentId>,
    flags: u8,
    op: Option<SegmentId>,
    context: u16,
    /// A root outside Lambda: the span is a segment.
    segment: bool,
}

impl XRaySubscriber {
    /// A builder starting from the environment.
    pub fn builder() -> Builder {
        Builder::from_env()
    }

    pub(crate) fn new(b: Builder, emitter: Emitter, guard: Option<EmitterGuard>) -> Self {
        XRaySubscriber {
            instance: crate::current::new_instance(),
            emitter,
            _guard: guard,
            states: States::new(b.open_spans.saturating_mul(4)),
            contexts: Contexts::new(256),
            callsites: Callsites::default(),
            sampler: Sampler::new(b.sampling_rate),
            service_name: b.service_name,
            region: b.region,
            lambda: b.lambda,
            concurrent: b.concurrent,
            flush_timeout: b.flush_timeout,
            context_missing: b.context_missing,
            warned: AtomicBool::new(false),
            last_invocation: StateCell::default(),
            metadata_open: AtomicUsize::new(0),
        }
    }

    /// A handle to flush and read the stats after the layer is installed.
    pub fn handle(&self) -> XRayHandle {
        XRayHandle {
            emitter: self.emitter.clone(),
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

    pub(crate) fn state(&self, id: &Id) -> Option<State> {
        self.states.get(id.into_u64())
    }

    /// The state of span `id`, or of its nearest ancestor this layer follows
    /// (for callers outside a layer context: the SDK interceptor, `trace_header`).
    pub(crate) fn state_in(&self, id: &Id, dispatch: &tracing_core::Dispatch) -> Option<State> {
        if let Some(s) = self.state(id) {
            return Some(s);
        }
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let span = registry.span(id)?;
        self.nearest(span.scope().skip(1).map(|s| s.id()))
    }

    /// The state of the first of `ids` this layer follows: the parent it sees
    /// for a span whose own parent it does not follow (filtered out for it,
    /// or too many open).
    fn nearest(&self, ids: impl Iterator<Item = Id>) -> Option<State> {
        ids.into_iter().find_map(|id| self.state(&id))
    }

    /// The header a call made inside span `id` sends downstream: its trace,
    /// the span (or, for `sdk_call`, its SDK call) as parent, the sampling
    /// decision, and the incoming header's extra keys.
    pub(crate) fn header_in(
        &self,
        id: &Id,
        dispatch: &tracing_core::Dispatch,
        sdk_call: bool,
    ) -> Option<TraceHeader> {
        let s = self.state_in(id, dispatch)?;
        let trace = s.trace?;
        let parent = s.op.filter(|_| sdk_call).or(s.own).or(s.anchor);
        let sampled = if s.sampled() {
            Sampled::Yes
        } else {
            Sampled::No
        };
        let header = TraceHeader::new(trace, parent, Some(sampled));
        let mut buf = [0u8; EXTRAS_CAPACITY];
        let n = self.contexts.read(s.context, &mut buf);
        let extras = std::str::from_utf8(&buf[..n]).unwrap_or_default();
        Some(header.with_extras(extras).unwrap_or(header))
    }

    #[inline]
    fn push(&self, span: SegmentId, body: Body) {
        self.emitter.push(Record::new(span, body));
    }

    fn parent_state<S>(
        &self,
        attrs: &Attributes<'_>,
        ctx: &Context<'_, S>,
    ) -> (Option<Id>, Option<State>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let parent = if attrs.is_root() {
            None
        } else if attrs.is_contextual() {
            self.current(ctx)
        } else {
            attrs.parent().cloned()
        };
        let Some(pid) = parent else {
            return (None, None);
        };
        if let Some(s) = self.states.get(pid.into_u64()) {
            return (Some(pid), Some(s));
        }
        // Off the common path: the parent is not followed (filtered out for
        // this layer, or the table was full when it opened).
        for span in ctx.span_scope(&pid).into_iter().flatten() {
            if let Some(s) = self.states.get(span.id().into_u64()) {
                return (Some(pid), Some(s));
            }
            let ext = span.extensions();
            for (marked, sampled) in [
                (ext.get::<Unfollowed<true>>().is_some(), true),
                (ext.get::<Unfollowed<false>>().is_some(), false),
            ] {
                if marked {
                    let mut state = State::untraced(Class::Transparent);
                    state.flags = flag::UNFOLLOWED | flag::sampled_if(sampled);
                    return (Some(pid), Some(state));
                }
            }
        }
        (Some(pid), None)
    }

    /// The span this thread is in, from the layer's own stack if it can tell.
    #[inline]
    fn current<S>(&self, ctx: &Context<'_, S>) -> Option<Id>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        match crate::current::current(self.instance) {
            Some(id) => id
                .and_then(std::num::NonZeroU64::new)
                .map(Id::from_non_zero_u64),
            None => ctx.current_span().id().cloned(),
        }
    }

    /// Where a span with no followed parent goes, or `None` (counted) if nowhere.
    fn root_placement(&self, attrs: &Attributes<'_>, name: &str) -> Option<Placement> {
        if self.lambda {
            if let Some(p) = self.fallback_invocation() {
                return Some(p);
            }
            self.untraced(name);
            return None;
        }
        let mut incoming = Find::new("xray.trace_header");
        attrs.record(&mut incoming);
        let header = incoming.found.and_then(|t| TraceHeader::parse(&t).ok());
        let (trace, parent, decided, extras) = match &header {
            Some(h) => (h.root.unwrap_or_default(), h.parent, h.sampled, h.extras()),
            None => (TraceId::new(), None, None, ""),
        };
        let sampled = match decided {
            Some(Sampled::Yes) => true,
            Some(Sampled::No) => false,
            _ => self.sampler.sample(),
        };
        let (flags, context) = self.enter_trace(sampled, extras);
        Some(Placement {
            trace,
            anchor: parent,
            flags,
            op: None,
            context,
            segment: true,
        })
    }

    /// The flags and context slot of a trace entered from an incoming header:
    /// its extra keys (`Lineage`) are kept for downstream calls whether or not
    /// it is sampled, by the span that entered it.
    fn enter_trace(&self, sampled: bool, extras: &str) -> (u8, u16) {
        let context = self.contexts.claim(extras);
        let owns = if context == contexts::NONE {
            0
        } else {
            flag::OWNS_CONTEXT
        };
        (owns | flag::sampled_if(sampled), context)
    }

    /// Outside any invocation span in Lambda: the last invocation started,
    /// when the runtime runs one at a time (so it is the one in progress, or
    /// the one just ended), else `_X_AMZN_TRACE_ID` if no invocation span was
    /// ever seen (a filter hides them: then every such span pays for reading
    /// the environment, a lock and an allocation).
    fn fallback_invocation(&self) -> Option<Placement> {
        if self.concurrent {
            return None;
        }
        if let Some(last) = self.last_invocation.get() {
            return Some(Placement {
                trace: last.trace?,
                anchor: last.anchor,
                flags: last.flags & flag::SAMPLED,
                op: None,
                context: contexts::NONE,
                segment: false,
            });
        }
        let header = std::env::var("_X_AMZN_TRACE_ID").ok()?;
        let h = TraceHeader::parse(&header).ok()?;
        Some(Placement {
            trace: h.root?,
            anchor: Some(h.parent?),
            flags: flag::sampled_if(h.is_sampled()),
            op: None,
            context: contexts::NONE,
            segment: false,
        })
    }

    #[cold]
    fn untraced(&self, name: &str) {
        self.emitter.count_untraced();
        if self.context_missing == ContextMissing::LogError
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            eprintln!(
                "tracing-xray: span `{name}` is outside any Lambda invocation (e.g. during init); \
                 such spans are counted, not sent (this warning is printed once; \
                 AWS_XRAY_CONTEXT_MISSING=IGNORE_ERROR silences it)"
            );
        }
    }

    fn placement(
        &self,
        parent: Option<State>,
        attrs: &Attributes<'_>,
        name: &str,
    ) -> Option<Placement> {
        match parent {
            Some(p) => match p.trace {
                Some(trace) => Some(Placement {
                    trace,
                    anchor: p.anchor,
                    flags: p.flags & flag::SAMPLED,
                    op: p.op,
                    context: p.context,
                    segment: false,
                }),
                None if p.flags & flag::UNFOLLOWED != 0 => {
                    if p.sampled() {
                        self.emitter.count_dropped_span();
                    } else {
                        self.emitter.count_unsampled();
                    }
                    None
                }
                None => {
                    self.emitter.count_untraced();
                    None
                }
            },
            None => self.root_placement(attrs, name),
        }
    }

    /// Opens a span that becomes a document; returns its X-Ray id if it is
    /// sampled, or `Err(sampled)` if the table was too full to follow it.
    fn open_document(
        &self,
        id: &Id,
        class: Class,
        p: Placement,
        name: &'static str,
        kind: Kind,
    ) -> Result<Option<SegmentId>, bool> {
        let sampled = p.flags & flag::SAMPLED != 0;
        if !sampled {
            self.emitter.count_unsampled();
        }
        let own = sampled.then(SegmentId::random);
        let mut state = State {
            class,
            flags: p.flags,
            own,
            anchor: own.or(p.anchor),
            op: if class.is_sdk_call() { own } else { p.op },
            trace: Some(p.trace),
            context: p.context,
        };
        // Remembered before anything is sent: a span the table cannot follow
        // would never be closed.
        if !self.states.insert(id.into_u64(), &state) {
            if p.flags & flag::OWNS_CONTEXT != 0 {
                self.contexts.release(p.context);
            }
            if sampled {
                self.emitter.count_dropped_span();
            }
            return Err(sampled);
        }
        if let Some(own) = own {
            let kind = if p.segment { Kind::Segment } else { kind };
            let opened = self.emitter.push(Record::new(
                own,
                Body::Open {
                    parent: p.anchor,
                    trace: p.trace,
                    time: clock::now(),
                    name: StaticName::new(name),
                    kind,
                },
            ));
            if !opened {
                self.emitter.count_dropped_span();
                state.flags |= flag::OPEN_LOST;
                // Its own entry, just written: no other thread knows the id yet.
                self.states.insert(id.into_u64(), &state);
            }
        }
        Ok(own)
    }

    /// Returns `Err(sampled)` if the table was too full to follow the span.
    fn open_user(
        &self,
        attrs: &Attributes<'_>,
        id: &Id,
        parent: Option<State>,
    ) -> Result<(), bool> {
        let meta = attrs.metadata();
        let Some(p) = self.placement(parent, attrs, meta.name()) else {
            // Under an untraced parent: remembered, so that its children find
            // the answer in one lookup rather than by walking up the scope.
            self.inherit(id, parent, Class::User);
            return Ok(());
        };
        let segment = p.segment;
        let Some(own) = self.open_document(id, Class::User, p, meta.name(), Kind::Local)? else {
            return Ok(());
        };
        if segment && let Some(name) = &self.service_name {
            self.emitter.push_str(own, Key::Name, name);
        }
        attrs.record(&mut UserFields {
            emitter: &self.emitter,
            span: own,
        });
        Ok(())
    }

    fn open_sdk_call<S>(
        &self,
        attrs: &Attributes<'_>,
        id: &Id,
        class: Class,
        parent: (Option<Id>, Option<State>),
        ctx: &Context<'_, S>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let meta = attrs.metadata();
        let (parent_id, parent) = parent;
        if class == Class::Invoke && parent.is_some_and(|p| p.op.is_some()) {
            // `invoke` inside an operation span (SDK releases of 2025-03): the
            // operation span is the call.
            self.inherit(id, parent, Class::Transparent);
            return;
        }
        if parent.is_none() && !self.lambda {
            // An SDK call outside any span: no segment to hang it under.
            self.untraced(meta.name());
            return;
        }
        let Some(mut p) = self.placement(parent, attrs, meta.name()) else {
            self.inherit(id, parent, Class::Transparent);
            return;
        };
        let full = meta.name();
        let service = match full.rfind('.') {
            Some(i) if class == Class::Operation => &full[..i],
            _ => full,
        };
        // `invoke`, and the 2025-03 lowercase names, carry the service as a field.
        let lowercase = !service.bytes().any(|b| b.is_ascii_uppercase());
        let named_by_service = class == Class::Invoke || lowercase;
        if named_by_service {
            p.flags |= flag::NAMED_BY_SERVICE;
        }
        let own = match self.open_document(id, class, p, service, Kind::Aws) {
            Ok(Some(own)) => own,
            Ok(None) => return,
            Err(sampled) => return mark_unfollowed(ctx, id, sampled),
        };
        attrs.record(&mut SdkFields {
            emitter: &self.emitter,
            span: own,
            name_from_service: named_by_service,
        });
        // The innermost `aws_metadata` span's values win, then the layer's region.
        let (mut region, mut table) = (None, None);
        if self.metadata_open.load(Ordering::Relaxed) > 0
            && let Some(pid) = parent_id
        {
            for span in ctx.span_scope(&pid).into_iter().flatten() {
                if self.callsites.class(span.metadata()) != Class::AwsMetadata {
                    continue;
                }
                if let Some(m) = span.extensions().get::<AwsMetadataFields>() {
                    region = region.or(m.region);
                    table = table.or(m.table_name);
                }
            }
        }
        if let Some(r) = region.as_deref().or(self.region.as_deref()) {
            self.emitter.push_str(own, Key::Aws("region"), r);
        }
        if let Some(t) = table {
            self.emitter.push_str(own, Key::Aws("table_name"), &t);
        }
    }

    fn open_invocation(&self, attrs: &Attributes<'_>, id: &Id) {
        let mut f = Find::new("xrayTraceId");
        attrs.record(&mut f);
        let header = f.found.and_then(|t| TraceHeader::parse(&t).ok());
        let state = match header {
            Some(h) if h.root.is_some() && h.parent.is_some() => {
                let (flags, context) = self.enter_trace(h.is_sampled(), h.extras());
                State {
                    class: Class::Invocation,
                    flags,
                    own: None,
                    anchor: h.parent,
                    op: None,
                    trace: h.root,
                    context,
                }
            }
            // No header, or one X-Ray cannot use: nothing under it is sent.
            _ => State::untraced(Class::Invocation),
        };
        if !self.concurrent && state.trace.is_some() {
            self.last_invocation.set(&state);
        }
        // Not followed: spans under it find it by the fallback above (each
        // open carries the trace), or are counted as untraced.
        if !self.states.insert(id.into_u64(), &state) && state.flags & flag::OWNS_CONTEXT != 0 {
            self.contexts.release(state.context);
        }
    }

    /// Remembers a span that is not a document: its children attach above it.
    fn inherit(&self, id: &Id, parent: Option<State>, class: Class) {
        if let Some(p) = parent {
            self.states.insert(id.into_u64(), &inherited(p, class));
        }
    }

    fn close_invocation(&self, state: &State) {
        if !state.sampled() {
            return;
        }
        if let (Some(trace), Some(facade)) = (state.trace, state.anchor) {
            self.push(facade, Body::EndTrace { trace });
        }
        let _ = self.emitter.flush(self.flush_timeout);
    }
}

/// Marks a span the state table was too full to follow, in the registry's
/// extensions (a zero-sized value: no allocation), so that what opens under
/// it is counted rather than started as a new trace.
struct Unfollowed<const SAMPLED: bool>;

fn mark_unfollowed<S>(ctx: &Context<'_, S>, id: &Id, sampled: bool)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if let Some(span) = ctx.span(id) {
        let mut ext = span.extensions_mut();
        if sampled {
            ext.insert(Unfollowed::<true>);
        } else {
            ext.insert(Unfollowed::<false>);
        }
    }
}

/// The state of a span that is not a document, under `parent`: same trace,
/// same anchor and SDK call, none of the parent's own duties.
fn inherited(parent: State, class: Class) -> State {
    State {
        class,
        flags: parent.flags & (flag::SAMPLED | flag::UNFOLLOWED),
        own: None,
        ..parent
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
        let class = self.callsites.class(attrs.metadata());
        match class {
            Class::Invocation => self.open_invocation(attrs, id),
            Class::User => {
                let (_, parent) = self.parent_state(attrs, &ctx);
                if let Err(sampled) = self.open_user(attrs, id, parent) {
                    mark_unfollowed(&ctx, id, sampled);
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
            (Class::User, Some(own)) => values.record(&mut UserFields {
                emitter: &self.emitter,
                span: own,
            }),
            (Class::Operation | Class::Invoke, Some(own)) => values.record(&mut SdkFields {
                emitter: &self.emitter,
                span: own,
                name_from_service: state.flags & flag::NAMED_BY_SERVICE != 0,
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
        let span = if event.is_root() {
            None
        } else if event.is_contextual() {
            self.current(&ctx)
        } else {
            event.parent().cloned()
        };
        let Some(state) = span.and_then(|id| self.states.get(id.into_u64())) else {
            return;
        };
        if !state.sampled() {
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

    fn on_enter(&self, id: &Id, _ctx: Context<'_, S>) {
        crate::current::enter(self.instance, id.into_u64());
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        crate::current::exit(self.instance, id.into_u64());
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        let Some(state) = self.states.remove(id.into_u64()) else {
            return;
        };
        if let Some(own) = state.own {
            let closed = self
                .emitter
                .push(Record::new(own, Body::Close { time: clock::now() }));
            if !closed && state.flags & flag::OPEN_LOST == 0 {
                self.emitter.count_dropped_span();
            }
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
