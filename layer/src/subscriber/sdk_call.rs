//! AWS SDK operation spans: one `aws` subsegment per call, named by the service.

use std::sync::atomic::Ordering;

use tracing_core::Subscriber;
use tracing_core::span::{Attributes, Id};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use xray_emitter::{Key, Kind};

use super::XRaySubscriber;
use crate::classify::Class;
use crate::fields::SdkFields;
use crate::metadata::AwsMetadataFields;
use crate::states::{State, flag};

impl XRaySubscriber {
    pub(super) fn open_sdk_call<S>(
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
        let region_default = self.region.as_deref();
        let mut unfollowed = None;
        self.emitter.batch(|b| {
            let own = match self.open_document(b, id, class, p, service, Kind::Aws) {
                Ok(Some(own)) => own,
                Ok(None) => return,
                Err(sampled) => {
                    unfollowed = Some(sampled);
                    return;
                }
            };
            attrs.record(&mut SdkFields {
                out: b,
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
            if let Some(r) = region.as_deref().or(region_default) {
                b.push_str(own, Key::Aws("region"), r);
            }
            if let Some(t) = table {
                b.push_str(own, Key::Aws("table_name"), &t);
            }
        });
        if let Some(sampled) = unfollowed {
            self.mark_unfollowed(ctx, id, sampled);
        }
    }
}
