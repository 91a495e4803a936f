#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod classify;
mod contexts;
mod current;
mod fields;
mod format;
mod identity;
#[cfg(feature = "aws-sdk")]
mod interceptor;
#[cfg(feature = "lambda")]
#[cfg_attr(docsrs, doc(cfg(feature = "lambda")))]
pub mod lambda;
mod local_http;
mod metadata;
#[cfg(any(feature = "tower", feature = "reqwest"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "tower", feature = "reqwest"))))]
pub mod middleware;
mod otlp_http;
mod propagation;
mod remote;
mod sampling;
mod states;
mod subscriber;

pub use builder::{Builder, ContextMissing};
pub use format::Format;
#[cfg(feature = "aws-sdk")]
#[cfg_attr(docsrs, doc(cfg(feature = "aws-sdk")))]
pub use interceptor::XRayInterceptor;
pub use metadata::aws_metadata;
pub use propagation::trace_header;
#[doc(hidden)]
pub use sampling::testing as sampling_testing;
pub use subscriber::{XRayHandle, XRaySubscriber};
pub use xray_emitter::{DaemonAddress, Flushed, StartError, Stats, Target, TraceHeader};
