//! Where a new span goes: under a followed parent, as a root of a new or
//! incoming trace, or nowhere (counted).

use std::sync::atomic::Ordering;

use tracing_core::Subscriber;
use tracing_core::span::{Attributes, Id};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use xray_emitter::clock::{self, Ticks};
use xray_emitter::header::Sampled;
use xray_emitter::{SegmentId, TraceHeader, TraceId};

use super::XRaySubscriber;
use crate::builder::ContextMissing;
use crate::classify::Class;
use crate::contexts;
use crate::fields::Find;
use crate::sampling::RequestFields;
use crate::states::{State, flag};

/// Where a new span goes.
pub(super) struct Placement {
    pub(super) trace: TraceId,
    pub(super) anchor: Option<SegmentId>,
    pub(super) flags: u8,
    pub(super) op: Option<SegmentId>,
    pub(super) context: u16,
    /// A root outside Lambda: the span is a segment.
    pub(super) segment: bool,
    /// The clock, if it was read already (to decide sampling): the span
    /// starts then, and the clock is read once.
    pub(super) at: Option<Ticks>,
}

/// Marks a span the state table was too full to follow, in the registry's
/// extensions (a zero-sized value: no allocation), so that what opens under
/// it is counted rather than started as a new trace.
pub(super) struct Unfollowed<const SAMPLED: bool>;

/// Whether span `span` carries a mark, and whether it was sampled.
fn marked<S>(span: &tracing_subscriber::registry::SpanRef<'_, S>) -> Option<bool>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let ext = span.extensions();
    if ext.get::<Unfollowed<true>>().is_some() {
        Some(true)
    } else if ext.get::<Unfollowed<false>>().is_some() {
        Some(false)
    } else {
        None
    }
}

/// The state of a span that is not a document, under `parent`: same trace,
/// same anchor and SDK call, none of the parent's own duties.
pub(super) fn inherited(parent: State, class: Class) -> State {
    State {
        class,
        flags: parent.flags & (flag::SAMPLED | flag::UNFOLLOWED),
        own: None,
        ..parent
    }
}

impl XRaySubscriber {
    #[inline(always)]
    pub(super) fn parent_state<S>(
        &self,
        attrs: &Attributes<'_>,
        ctx: &Context<'_, S>,
    ) -> (Option<Id>, Option<State>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let parent = self.parent_of(ctx, attrs.is_root(), attrs.is_contextual(), attrs.parent());
        let Some(pid) = parent else {
            return (None, None);
        };
        if let Some(s) = self.states.get(pid.into_u64()) {
            return (Some(pid), Some(s));
        }
        let state = self.unfollowed_parent(&pid, ctx);
        (Some(pid), state)
    }

    /// Off the common path: the parent is not followed (filtered out for
    /// this layer, or the table was full when it opened). Marks are looked
    /// for, under the extensions' lock, only while one exists.
    #[cold]
    #[inline(never)]
    fn unfollowed_parent<S>(&self, pid: &Id, ctx: &Context<'_, S>) -> Option<State>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let marks = self.unfollowed_open.load(Ordering::Relaxed) > 0;
        for span in ctx.span_scope(pid).into_iter().flatten() {
            if let Some(s) = self.states.get(span.id().into_u64()) {
                return Some(s);
            }
            if let Some(sampled) = marks.then(|| marked(&span)).flatten() {
                let mut state = State::untraced(Class::Transparent);
                state.flags = flag::UNFOLLOWED | flag::sampled_if(sampled);
                return Some(state);
            }
        }
        None
    }

    /// Marks span `id`, which the state table was too full to follow.
    pub(super) fn mark_unfollowed<S>(&self, ctx: &Context<'_, S>, id: &Id, sampled: bool)
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
            self.unfollowed_open.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A span the layer does not follow closed: if it was marked, one mark fewer.
    pub(super) fn closed_unfollowed<S>(&self, ctx: &Context<'_, S>, id: &Id)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if self.unfollowed_open.load(Ordering::Relaxed) > 0
            && ctx.span(id).is_some_and(|s| marked(&s).is_some())
        {
            self.unfollowed_open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The span a new span or an event belongs to: none for a root, the
    /// current one for a contextual one, else the parent it names.
    #[inline(always)]
    pub(super) fn parent_of<S>(
        &self,
        ctx: &Context<'_, S>,
        root: bool,
        contextual: bool,
        named: Option<&Id>,
    ) -> Option<Id>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if root {
            None
        } else if contextual {
            self.current(ctx)
        } else {
            named.cloned()
        }
    }

    /// The span this thread is in, from the layer's own stack if it can tell.
    #[inline]
    pub(super) fn current<S>(&self, ctx: &Context<'_, S>) -> Option<Id>
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
    #[inline(never)]
    pub(super) fn root_placement(&self, attrs: &Attributes<'_>, name: &str) -> Option<Placement> {
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
        let mut at = None;
        let (trace, parent, decided, extras) = match &header {
            Some(h) => (h.root.unwrap_or_default(), h.parent, h.sampled, h.extras()),
            None => (TraceId::new(), None, None, ""),
        };
        let sampled = match decided {
            Some(Sampled::Yes) => true,
            Some(Sampled::No) => false,
            _ => {
                let mut fields = RequestFields::new(self.sampler.wants_attributes());
                attrs.record(&mut fields);
                let service = self.service_name.as_deref().unwrap_or(name);
                let mut attributes = arrayvec::ArrayVec::new();
                let mut request = fields.request(service, &mut attributes);
                request.service_type = self
                    .identity
                    .as_ref()
                    .and_then(|i| i.origin())
                    .unwrap_or("");
                let now = clock::now();
                at = Some(now);
                self.sampler.sample(&request, now)
            }
        };
        let (flags, context) = self.enter_trace(sampled, extras);
        Some(Placement {
            trace,
            anchor: parent,
            flags,
            op: None,
            context,
            segment: true,
            at,
        })
    }

    /// The flags and context slot of a trace entered from an incoming header:
    /// its extra keys (`Lineage`) are kept for downstream calls whether or not
    /// it is sampled, by the span that entered it.
    pub(super) fn enter_trace(&self, sampled: bool, extras: &str) -> (u8, u16) {
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
    pub(super) fn fallback_invocation(&self) -> Option<Placement> {
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
                at: None,
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
            at: None,
        })
    }

    #[cold]
    pub(super) fn untraced(&self, name: &str) {
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

    #[inline(always)]
    pub(super) fn placement(
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
                    at: None,
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

    /// Remembers a span that is not a document: its children attach above it.
    pub(super) fn inherit(&self, id: &Id, parent: Option<State>, class: Class) {
        if let Some(p) = parent {
            self.states.insert(id.into_u64(), &inherited(p, class));
        }
    }
}
