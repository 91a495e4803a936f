//! Shared pieces of the benchmarks.

pub mod aws_call;
pub mod spans;

use xray_emitter::testing::Sent;
use xray_emitter::testing::Transport;

/// A transport that counts datagrams and bytes and sends nothing: the
/// benchmarks that measure building documents leave the socket out.
#[derive(Debug, Default)]
pub struct Discard {
    /// Datagrams received.
    pub datagrams: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl Transport for Discard {
    fn send(&mut self, datagrams: &[&[u8]]) -> Sent {
        let bytes: usize = datagrams.iter().map(|d| d.len()).sum();
        self.datagrams += datagrams.len() as u64;
        self.bytes += bytes as u64;
        Sent::all(datagrams)
    }
}
