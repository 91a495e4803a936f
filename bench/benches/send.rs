//! Datagrams per second on loopback: one `sendmmsg` per batch of 64 beside one
//! `send` per datagram, each datagram the size of a typical subsegment
//! document. Nothing reads the receiving socket (the kernel drops what
//! overflows it), so only the sending side is measured.

use std::net::UdpSocket;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xray_emitter::testing::{DaemonSocket, MAX_BATCH, Target};

fn send(c: &mut Criterion) {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = Target::Addr(rx.local_addr().unwrap());
    let payloads: Vec<Vec<u8>> = (0..MAX_BATCH)
        .map(|i| vec![b'x' + (i % 3) as u8; 600])
        .collect();
    let batch: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();

    let mut g = c.benchmark_group("send_64_datagrams_600B");
    g.throughput(Throughput::Elements(MAX_BATCH as u64));
    let mut socket = DaemonSocket::new(target.clone(), false);
    g.bench_function("sendmmsg", |b| b.iter(|| socket.send(&batch)));
    let mut socket = DaemonSocket::new(target, false);
    g.bench_function("send_each", |b| b.iter(|| socket.send_each(&batch)));
    g.finish();
}

criterion_group!(benches, send);
criterion_main!(benches);
