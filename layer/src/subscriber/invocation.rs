//! Lambda invocations: the trace header of `lambda_runtime`'s invocation
//! span gives each one its trace; its end reports what is still open and
//! flushes before the sandbox freezes.

use tracing_core::span::{Attributes, Id};
use xray_emitter::{Body, TraceHeader};

use super::XRaySubscriber;
use crate::classify::Class;
use crate::fields::Find;
use crate::states::{State, flag};

impl XRaySubscriber {
    pub(super) fn open_invocation(&self, attrs: &Attributes<'_>, id: &Id) {
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

    /// Has the open spans of the invocation behind span `id` reported in
    /// progress at `at` (microseconds since the Unix epoch) unless it ends
    /// first: the sender thread does it, whatever the handler is doing.
    /// Whether a deadline was set (the invocation is traced and sampled).
    #[cfg(feature = "lambda-runtime")]
    pub(crate) fn report_at(&self, id: &Id, dispatch: &tracing_core::Dispatch, at: u64) -> bool {
        let Some(state) = self.state_in(id, dispatch) else {
            return false;
        };
        match (state.trace, state.anchor) {
            (Some(trace), Some(facade)) if state.sampled() => {
                self.push(facade, Body::Deadline { trace, at });
                true
            }
            _ => false,
        }
    }

    pub(super) fn close_invocation(&self, state: &State) {
        if !state.sampled() && !self.record_unsampled {
            return;
        }
        if let (Some(trace), Some(facade)) = (state.trace, state.anchor) {
            self.push(facade, Body::EndTrace { trace });
        }
        let _ = self.emitter.flush(self.flush_timeout);
    }
}
