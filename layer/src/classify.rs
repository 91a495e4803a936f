//! What a span is, decided once per callsite from its static metadata.
//!
//! The names, targets and fields matched here were read from the AWS SDK for
//! Rust (`aws-smithy-runtime`'s orchestrator and the generated operation
//! spans, three eras of names) and from `lambda_runtime`'s trace layer;
//! `tests/sdk_span_eras.rs` reproduces each era span for span.

use std::sync::atomic::{AtomicUsize, Ordering};

use tracing_core::Metadata;

/// How the layer treats a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Class {
    /// Anything else: a subsegment, or a segment at the root outside Lambda.
    User = 1,
    /// `lambda_runtime`'s `Lambda runtime invoke`: one invocation, its trace header.
    Invocation = 2,
    /// The SDK's `{Service}.{Op}` span with `rpc.service` and `rpc.method` (2025-04 on).
    Operation = 3,
    /// The SDK's `invoke{service, operation}` span (2023-08 to 2025-03), or
    /// `invoke{rpc.service, rpc.method}` of hand-built operations.
    Invoke = 4,
    /// The SDK's `try_attempt{attempt}`: retries are counted from these.
    Attempt = 5,
    /// SDK and runtime internals: not documents; their children attach above them.
    Transparent = 6,
    /// This crate's `aws_metadata` span: region and table for SDK calls inside it.
    AwsMetadata = 7,
}

impl Class {
    pub(crate) fn from_u8(v: u8) -> Class {
        match v {
            2 => Class::Invocation,
            3 => Class::Operation,
            4 => Class::Invoke,
            5 => Class::Attempt,
            6 => Class::Transparent,
            7 => Class::AwsMetadata,
            _ => Class::User,
        }
    }

    /// An AWS SDK call: becomes an `aws` subsegment.
    pub(crate) fn is_sdk_call(self) -> bool {
        matches!(self, Class::Operation | Class::Invoke)
    }
}

/// The name of lambda_runtime's per-invocation span.
pub(crate) const INVOCATION_SPAN: &str = "Lambda runtime invoke";
/// The target and name of [`crate::aws_metadata`]'s span.
pub(crate) const OWN_TARGET: &str = "tracing_xray";
pub(crate) const AWS_METADATA_SPAN: &str = "aws_metadata";

/// Spans and events of the AWS SDK for Rust and its runtime crates.
pub(crate) fn is_sdk_target(target: &str) -> bool {
    [
        "aws_sdk_",
        "aws_smithy_",
        "aws_config",
        "aws_runtime",
        "aws_credential_types",
        "aws_types",
    ]
    .iter()
    .any(|p| target.starts_with(p))
}

fn has_field(meta: &Metadata<'_>, name: &str) -> bool {
    meta.fields().field(name).is_some()
}

/// Classifies from scratch.
pub(crate) fn classify(meta: &Metadata<'_>) -> Class {
    let target = meta.target();
    let name = meta.name();
    if target == "lambda_runtime" || target.starts_with("lambda_runtime::") {
        return if name == INVOCATION_SPAN {
            Class::Invocation
        } else {
            Class::Transparent
        };
    }
    if target == OWN_TARGET && name == AWS_METADATA_SPAN {
        return Class::AwsMetadata;
    }
    if !is_sdk_target(target) {
        return Class::User;
    }
    if has_field(meta, "rpc.service") && has_field(meta, "rpc.method") {
        return if name == "invoke" {
            Class::Invoke
        } else {
            Class::Operation
        };
    }
    if name == "invoke" && has_field(meta, "service") && has_field(meta, "operation") {
        return Class::Invoke;
    }
    if name == "try_attempt" {
        return Class::Attempt;
    }
    Class::Transparent
}

const CACHE: usize = 1024;
/// Metadata is pointer-aligned, so on 64-bit targets the low three bits of
/// its address are free to hold the class, and one atomic word holds both.
const CLASS_BITS: usize = 0b111;
const PACKABLE: bool = std::mem::align_of::<Metadata<'static>>() > CLASS_BITS;
/// The top bit of the word says the callsite's fields are all plain
/// metadata (see [`crate::fields::is_plain`]); addresses with it set (none
/// on today's 64-bit targets) are classified every time instead of cached.
const PLAIN_BIT: usize = 1 << (usize::BITS - 1);

/// What the layer knows of a callsite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) class: Class,
    /// Every field goes to `metadata.default` as it is: the span's fields
    /// can be recorded without looking at their names.
    pub(crate) plain: bool,
}

fn see(meta: &Metadata<'_>) -> Seen {
    let class = classify(meta);
    Seen {
        class,
        plain: class == Class::User
            && meta
                .fields()
                .iter()
                .all(|f| crate::fields::is_plain(f.name())),
    }
}

/// Classes of callsites seen, keyed by the address of their `'static` metadata.
pub(crate) struct Callsites {
    entries: Box<[AtomicUsize]>,
}

impl std::fmt::Debug for Callsites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Callsites")
    }
}

impl Default for Callsites {
    fn default() -> Self {
        Callsites {
            entries: (0..CACHE).map(|_| AtomicUsize::new(0)).collect(),
        }
    }
}

impl Callsites {
    /// The class of `meta`, classified on first sight and cached.
    #[inline]
    pub(crate) fn class(&self, meta: &'static Metadata<'static>) -> Class {
        self.seen(meta).class
    }

    /// What `meta` is, found on first sight and cached.
    #[inline]
    pub(crate) fn seen(&self, meta: &'static Metadata<'static>) -> Seen {
        let key = meta as *const Metadata<'static> as usize;
        if !PACKABLE || key & PLAIN_BIT != 0 {
            return see(meta);
        }
        let mut i = (key >> 3).wrapping_mul(0x9e37_79b9) % CACHE;
        for _ in 0..8 {
            let entry = self.entries[i].load(Ordering::Relaxed);
            if entry & !(CLASS_BITS | PLAIN_BIT) == key {
                return Seen {
                    class: Class::from_u8((entry & CLASS_BITS) as u8),
                    plain: entry & PLAIN_BIT != 0,
                };
            }
            if entry == 0 {
                let seen = see(meta);
                let plain = if seen.plain { PLAIN_BIT } else { 0 };
                // Losing this race to another callsite only costs a later reclassification.
                let _ = self.entries[i].compare_exchange(
                    0,
                    key | seen.class as usize | plain,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                return seen;
            }
            i = (i + 1) % CACHE;
        }
        see(meta)
    }
}
