//! Spans that become documents: the open record, and a user span's fields.

use tracing_core::span::{Attributes, Id};
use xray_emitter::{Batch, Body, Key, Kind, Record, SegmentId, StaticName, Value, clock};

use super::XRaySubscriber;
use super::placement::Placement;
use crate::classify::Class;
use crate::fields::{PlainFields, UserFields};
use crate::remote::Remote;
use crate::states::{State, flag};

impl XRaySubscriber {
    /// Opens a span that becomes a document, its open record written into
    /// `b`; returns its X-Ray id if it is sampled, or `Err(sampled)` if the
    /// table was too full to follow it.
    #[inline(always)]
    pub(super) fn open_document(
        &self,
        b: &mut Batch<'_>,
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
        // Unsampled spans are recorded too when OTLP's unsampled datagrams
        // are on (for Application Signals), marked so no X-Ray document and
        // no `T1S` datagram ever carries them.
        let own = (sampled || self.record_unsampled).then(SegmentId::random);
        let state = State {
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
            let opened = b.push(Record::new(
                own,
                Body::Open {
                    parent: p.anchor,
                    trace: p.trace,
                    time: p.at.unwrap_or_else(clock::now),
                    name: StaticName::new(name),
                    kind,
                },
            ));
            if opened && !sampled {
                b.push(Record::new(
                    own,
                    Body::Attr {
                        key: Key::Unsampled,
                        value: Value::Bool(true),
                    },
                ));
            }
            if !opened {
                self.emitter.count_dropped_span();
            }
        }
        Ok(own)
    }

    /// Returns `Err(sampled)` if the table was too full to follow the span.
    /// `plain`: its callsite's fields all go to metadata as they are.
    #[inline(always)]
    pub(super) fn open_user(
        &self,
        attrs: &Attributes<'_>,
        id: &Id,
        parent: Option<State>,
        plain: bool,
    ) -> Result<(), bool> {
        let meta = attrs.metadata();
        let Some(p) = self.placement(parent, attrs, meta.name()) else {
            // Under an untraced parent: remembered, so that its children find
            // the answer in one lookup rather than by walking up the scope.
            self.inherit(id, parent, Class::User);
            return Ok(());
        };
        let segment = p.segment;
        let mut opened = Ok(());
        // The open record and the fields go to the sender together.
        self.emitter.batch(|b| {
            let own = match self.open_document(b, id, Class::User, p, meta.name(), Kind::Local) {
                Ok(Some(own)) => own,
                Ok(None) => return,
                Err(sampled) => {
                    opened = Err(sampled);
                    return;
                }
            };
            if segment {
                if let Some(name) = &self.service_name {
                    b.push_str(own, Key::Name, name);
                }
                if let Some(identity) = &self.identity {
                    identity.push(b, own);
                }
            }
            if plain {
                PlainFields::record(b, own, attrs);
                return;
            }
            let mut remote = Remote::default();
            attrs.record(&mut UserFields {
                out: b,
                span: own,
                remote: Some(&mut remote),
            });
            remote.finish(b, own, meta.name());
        });
        opened
    }
}
