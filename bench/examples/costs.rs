//! Rough per-operation costs on this machine (a loop, not a benchmark; for orientation only).
use std::hint::black_box;
use std::time::Instant;

fn time(name: &str, n: u64, mut f: impl FnMut(u64)) {
    for i in 0..n / 10 {
        f(i);
    }
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    println!(
        "{name:40} {:6.1} ns",
        t.elapsed().as_nanos() as f64 / n as f64
    );
}

fn main() {
    let n = 5_000_000;
    time("clock::now (tsc)", n, |_| {
        black_box(xray_emitter::clock::now());
    });
    time("Instant::now", n, |_| {
        black_box(Instant::now());
    });
    time("SystemTime::now", n, |_| {
        black_box(std::time::SystemTime::now());
    });
    time("SegmentId::random", n, |_| {
        black_box(xray_emitter::SegmentId::random());
    });
    let (tx, rx) = crossbeam_channel::bounded::<[u8; 64]>(1 << 16);
    time("crossbeam try_send+try_recv same thread", n, |i| {
        let _ = tx.try_send([i as u8; 64]);
        black_box(rx.try_recv().ok());
    });
}
