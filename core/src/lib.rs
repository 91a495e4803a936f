//! The emitter core of `tracing-xray`: AWS X-Ray segment documents, built off
//! the caller's thread and sent as UDP datagrams to the X-Ray daemon.
//!
//! Producers turn what happens to a span into fixed-size [`Record`]s and
//! [`Emitter::push`] them into a bounded queue: no allocation, lock, syscall
//! or formatting, and a full queue is a counted drop, never a wait. One
//! sender thread keeps the open spans, writes each finished one as JSON into
//! preallocated buffers, nests children in their parent's document while the
//! datagram stays under 64,512 bytes, and sends batches with `sendmmsg`.
//!
//! This crate knows nothing of `tracing`; the `tracing-xray` crate maps spans
//! to records.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod address;
mod assembler;
mod children;
pub mod clock;
mod document;
mod emitter;
pub mod header;
pub mod id;
mod json;
mod name;
mod otlp;
mod outbox;
pub mod record;
mod resolver;
#[doc(hidden)]
pub mod ring;
mod sender;
mod socket;
mod span;
mod stats;
mod table;

pub use address::{AddressError, DaemonAddress, HostPort};
pub use emitter::{Batch, Emitter, EmitterBuilder, EmitterGuard, Flushed, StartError};
pub use header::{HeaderError, Sampled, TraceHeader};
pub use id::{SegmentId, TraceId};
pub use otlp::{Format, Resource};
pub use record::{Body, HttpField, Key, Kind, Record, Small, SqlField, StaticName, Value};
pub use socket::Target;
pub use span::MAX_ATTRS;
pub use stats::Stats;

/// The sender's parts, for this workspace's tests, fuzzing and benchmarks:
/// not a stable API.
#[doc(hidden)]
pub mod testing {
    pub use crate::assembler::Assembler;
    pub use crate::document::{DATAGRAM_MAX, HEADER};
    pub use crate::name::{MAX_NAME_CHARS, is_name_char};
    pub use crate::outbox::{ARENA_BYTES, Transport};
    pub use crate::socket::{DaemonSocket, MAX_BATCH, Sent, Target};
    pub use crate::table::TableConfig;
}
