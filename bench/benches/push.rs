//! The cost of handing one record to the sender, beside a bare
//! crossbeam-channel `try_send` of the same 64 bytes to a consumer that
//! drains and sleeps the same way. Both are timed in batches of 1,024 pushes
//! between which the consumer empties the queue (untimed), so neither
//! measures a full queue.

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crossbeam_channel::TryRecvError;
use xray_bench::Discard;
use xray_emitter::clock::Ticks;
use xray_emitter::{Body, Emitter, Kind, Record, SegmentId, TraceId};

const BATCH: u64 = 1024;

fn records() -> [Record; 2] {
    let id = SegmentId::random();
    let parent = SegmentId::random();
    [
        Record::new(
            id,
            Body::Open {
                parent: Some(parent),
                trace: TraceId::from_parts(1, 2, 3),
                time: Ticks::from_raw(1),
                name: "work".into(),
                kind: Kind::Local,
            },
        ),
        Record::new(
            id,
            Body::Close {
                time: Ticks::from_raw(2),
            },
        ),
    ]
}

fn timed_batches(iters: u64, mut batch: impl FnMut(u64), mut settle: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = (iters - done).min(BATCH);
        let start = Instant::now();
        batch(n);
        total += start.elapsed();
        settle();
        done += n;
    }
    total
}

fn push(c: &mut Criterion) {
    let mut g = c.benchmark_group("push");
    g.throughput(Throughput::Elements(1));

    let (tx, rx) = crossbeam_channel::bounded::<[u8; 64]>(16 * 1024);
    let consumer = thread::spawn(move || {
        loop {
            match rx.try_recv() {
                Ok(r) => {
                    black_box(r);
                }
                Err(TryRecvError::Empty) => thread::park_timeout(Duration::from_micros(500)),
                Err(TryRecvError::Disconnected) => return,
            }
        }
    });
    let waker = consumer.thread().clone();
    g.bench_function("crossbeam_try_send_64B", |b| {
        b.iter_custom(|iters| {
            timed_batches(
                iters,
                |n| {
                    for i in 0..n {
                        let _ = tx.try_send(black_box([i as u8; 64]));
                    }
                },
                || {
                    waker.unpark();
                    while !tx.is_empty() {
                        thread::yield_now();
                    }
                },
            )
        })
    });
    drop(tx);
    consumer.join().unwrap();

    let (e, guard) = Emitter::builder()
        .queue_capacity(16 * 1024)
        .start_with(Discard::default)
        .unwrap();
    let pair = records();
    g.bench_function("emitter_push", |b| {
        b.iter_custom(|iters| {
            timed_batches(
                iters,
                |n| {
                    for i in 0..n {
                        e.push(black_box(pair[(i & 1) as usize]));
                    }
                },
                || {
                    let _ = e.flush(Duration::from_secs(5));
                },
            )
        })
    });
    g.finish();
    let s = e.stats();
    assert_eq!(
        s.records_dropped, 0,
        "the benchmark must not measure a full queue"
    );
    drop(guard);
}

criterion_group!(benches, push);
criterion_main!(benches);
