#![cfg_attr(feature = "aws-sdk", doc = include_str!("../../README.md"))]
#![cfg_attr(
    not(feature = "aws-sdk"),
    doc = "AWS X-Ray for `tracing`: see README.md (the examples there need the `aws-sdk` feature)."
)]

mod builder;
mod classify;
mod contexts;
mod current;
mod fields;
#[cfg(feature = "aws-sdk")]
mod interceptor;
#[cfg(feature = "lambda")]
pub mod lambda;
mod metadata;
mod propagation;
mod sampler;
mod states;
mod subscriber;

pub use builder::{Builder, ContextMissing};
#[cfg(feature = "aws-sdk")]
pub use interceptor::XRayInterceptor;
pub use metadata::aws_metadata;
pub use propagation::trace_header;
pub use subscriber::{XRayHandle, XRaySubscriber};
pub use xray_emitter::{Flushed, Stats, TraceHeader};
