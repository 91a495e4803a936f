//! Shared pieces of the benchmarks.

pub mod aws_call;
pub mod one_cpu;
pub mod sampling;
pub mod sdk;
pub mod spans;

/// Counts datagrams and sends nothing: the benchmarks that measure
/// building documents leave the socket out.
pub use xray_testkit::Discard;
