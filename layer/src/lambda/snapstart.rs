//! Lambda SnapStart: one snapshot, restored into many sandboxes.
//!
//! Every sandbox restored from a snapshot starts with the same memory: the
//! same id generators (so the same span and trace ids in every sandbox), a
//! clock anchor taken on the host that made the snapshot, and a socket
//! connected there. `lambda_runtime` 1.5 calls registered resources around
//! the snapshot; this one flushes before it and renews all three after.

use std::time::Duration;

use lambda_runtime::{BoxFuture, Error, SnapStartResource};

use crate::subscriber::XRayHandle;

/// A [`SnapStartResource`] for the X-Ray layer. Register it with
/// `Runtime::register_snapstart_resource(Arc::new(SnapStart::new(handle)))`.
#[derive(Clone, Debug)]
pub struct SnapStart {
    handle: XRayHandle,
    flush_timeout: Duration,
}

impl SnapStart {
    /// For the layer behind `handle` (see [`crate::XRaySubscriber::handle`]).
    pub fn new(handle: XRayHandle) -> Self {
        SnapStart {
            handle,
            flush_timeout: Duration::from_millis(100),
        }
    }
}

impl SnapStartResource for SnapStart {
    /// Sends what init recorded, so no snapshot carries it to every sandbox.
    fn before_snapshot(&self) -> BoxFuture<'_, Result<(), Error>> {
        let handle = self.handle.clone();
        let timeout = self.flush_timeout;
        Box::pin(async move {
            let _ = handle.flush(timeout);
            Ok(())
        })
    }

    /// New id seeds, clock anchor and socket for this sandbox.
    fn after_restore(&self) -> BoxFuture<'_, Result<(), Error>> {
        self.handle.after_restore();
        Box::pin(async { Ok(()) })
    }
}
