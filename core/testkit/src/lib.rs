//! The one test kit of this workspace, as tracing has tracing-mock: every
//! test, benchmark and the fuzz crate take their daemon stand-in,
//! transports, document checks, schema validator and Lambda Runtime API
//! stand-in from here. Not published.

mod alloc;
mod check;
mod daemon;
pub mod spans;
mod transports;

#[cfg(feature = "tracing")]
pub mod load;
#[cfg(feature = "otlp")]
pub mod otlp;
#[cfg(feature = "lambda")]
pub mod runtime_api;
#[cfg(feature = "aws-sdk")]
pub mod sdk;

pub use alloc::{Counting, allocations_anywhere, allocations_here};
pub use check::{
    DATAGRAM_MAX, HEADER, Placed, check, check_rules, count_spans, entities, placed, walk,
};
pub use daemon::{Daemon, closed_port};
pub use transports::{Capture, Discard, Failing, Gate, PanicsOnce, Release, socket};
