//! The sender's guarantee, checked over orderings rather than the one a test
//! happens to make: the same records, pushed by threads in any order a
//! program allows and read by the sender ring by ring in any order and at any
//! moment, give the same spans with the same parents and traces, and every
//! span is counted exactly once.

use std::collections::BTreeSet;

use super::*;
use crate::clock::Ticks;
use crate::id::{SegmentId, TraceId};
use crate::record::{Key, Kind, Value};
use crate::ring::{Pushed, ring};
use crate::socket::Sent;

/// xorshift64*: a fixed seed gives the same schedule every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

#[derive(Default)]
struct Capture(Vec<Vec<u8>>);

impl Transport for Capture {
    fn send(&mut self, datagrams: &[&[u8]]) -> Sent {
        self.0.extend(datagrams.iter().map(|d| d.to_vec()));
        Sent::all(datagrams)
    }
}

/// One span of a script: where it belongs.
struct Planned {
    id: SegmentId,
    parent: SegmentId,
    trace: TraceId,
    fields: usize,
}

/// (id, parent, trace) as text, the way documents carry them.
type Placement = (String, String, String);

/// A random forest of spans under a few upstream parents, and the records a
/// program would push for them, in an order it could push them, each on the
/// ring of the thread that pushed it (spans move between threads).
fn script(rng: &mut Rng, threads: usize) -> (Vec<(usize, Record)>, BTreeSet<Placement>, bool) {
    let traces: Vec<(TraceId, SegmentId)> = (0..1 + rng.below(3))
        .map(|i| {
            let trace = TraceId::from_parts(0x6000_0000 + i as u32, rng.next() as u32, rng.next());
            (trace, SegmentId::random())
        })
        .collect();
    let mut spans: Vec<Planned> = Vec::new();
    for _ in 0..2 + rng.below(60) {
        let (trace, facade) = traces[rng.below(traces.len())];
        let same: Vec<SegmentId> = (spans.iter().filter(|s| s.trace == trace))
            .map(|s| s.id)
            .collect();
        let parent = if same.is_empty() || rng.chance(25) {
            facade
        } else {
            same[rng.below(same.len())]
        };
        let fields = rng.below(4);
        spans.push(Planned {
            id: SegmentId::random(),
            parent,
            trace,
            fields,
        });
    }
    let expected = (spans.iter())
        .map(|s| (s.id.to_string(), s.parent.to_string(), s.trace.to_string()))
        .collect();
    // Per span: the next of its steps (0 open, 1..=fields, then close) and its thread.
    let mut step = vec![0usize; spans.len()];
    let mut thread: Vec<usize> = (0..spans.len()).map(|_| rng.below(threads)).collect();
    let index = |id: SegmentId| spans.iter().position(|s| s.id == id);
    let mut events = Vec::new();
    let mut time = 1u64;
    let ends = rng.chance(50);
    loop {
        let enabled: Vec<usize> = (0..spans.len())
            .filter(|&i| {
                let s = &spans[i];
                match step[i] {
                    0 => index(s.parent).is_none_or(|p| step[p] > 0),
                    n if n <= s.fields => true,
                    n if n == s.fields + 1 => (0..spans.len())
                        .filter(|&c| spans[c].parent == s.id)
                        .all(|c| step[c] > spans[c].fields + 1),
                    _ => false,
                }
            })
            .collect();
        let Some(&i) = enabled.get(rng.below(enabled.len().max(1))) else {
            break;
        };
        if rng.chance(30) {
            thread[i] = rng.below(threads);
        }
        let s = &spans[i];
        let body = match step[i] {
            0 => Body::Open {
                parent: Some(s.parent),
                trace: s.trace,
                time: Ticks::from_raw(time),
                name: "span".into(),
                kind: Kind::Local,
            },
            n if n <= s.fields => {
                if n % 2 == 1 {
                    // Long enough to continue in `More` records.
                    let text = "a value that is long enough to need two more records";
                    Record::split_str(s.id, Key::Metadata("text"), text, |r| {
                        events.push((thread[i], r))
                    });
                    step[i] += 1;
                    continue;
                }
                Body::Attr {
                    key: Key::Annotation("n"),
                    value: Value::U64(n as u64),
                }
            }
            _ => Body::Close {
                time: Ticks::from_raw(time),
            },
        };
        events.push((thread[i], Record::new(s.id, body)));
        step[i] += 1;
        time += 1;
    }
    if ends {
        for &(trace, facade) in &traces {
            let t = rng.below(threads);
            events.push((t, Record::new(facade, Body::EndTrace { trace })));
        }
    }
    (events, expected, ends)
}

/// Every complete entity the datagrams carry, placed, and the in-progress reports.
fn placed(datagrams: &[Vec<u8>]) -> (Vec<Placement>, usize) {
    fn go(
        e: &serde_json::Value,
        parent: &str,
        trace: &str,
        out: &mut Vec<Placement>,
        open: &mut usize,
    ) {
        let text = |k: &str| e.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let parent = text("parent_id").unwrap_or_else(|| parent.to_owned());
        let trace = text("trace_id").unwrap_or_else(|| trace.to_owned());
        let id = text("id").unwrap_or_default();
        if e.get("in_progress").is_some() {
            *open += 1;
        } else {
            out.push((id.clone(), parent, trace.clone()));
        }
        for k in e
            .get("subsegments")
            .and_then(|s| s.as_array())
            .into_iter()
            .flatten()
        {
            go(k, &id, &trace, out, open);
        }
    }
    let (mut out, mut open) = (Vec::new(), 0);
    for d in datagrams {
        let body = &d[d.iter().position(|&b| b == b'\n').unwrap() + 1..];
        let doc: serde_json::Value = serde_json::from_slice(body).unwrap();
        go(&doc, "", "", &mut out, &mut open);
    }
    (out, open)
}

/// Pushes the script's records while the sender reads: between any two
/// pushes it may read one more ring of its pass, in an order drawn anew for
/// every pass; a ring is read only from the pass after its first push (its
/// registration). Returns the assembler once everything is settled.
fn run(
    rng: &mut Rng,
    threads: usize,
    events: &[(usize, Record)],
    table: TableConfig,
) -> Assembler<Capture> {
    let (mut producers, mut rings): (Vec<_>, Vec<_>) = (0..threads).map(|_| ring(1 << 12)).unzip();
    let mut registered = vec![false; threads];
    let mut assembler = Assembler::new(table, Capture::default());
    let mut passes = Passes::new();
    let mut order: Vec<usize> = Vec::new();
    let mut next_event = 0;
    let mut quiet_passes = 0;
    while next_event < events.len() || quiet_passes < SETTLE_PASSES + 1 {
        let push = next_event < events.len() && rng.chance(60);
        if push {
            let (t, record) = events[next_event];
            assert_ne!(producers[t].push(record), Pushed::Full);
            registered[t] = true;
            next_event += 1;
            continue;
        }
        if order.is_empty() {
            // A new pass: the rings registered now, in a random order.
            order = (0..threads).filter(|&t| registered[t]).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            order.reverse();
            if order.is_empty() {
                continue;
            }
            // Marks the pass's end once its last ring is read.
            order.insert(0, usize::MAX);
        }
        match order.pop() {
            Some(usize::MAX) | None => {
                passes.after_pass(&mut assembler, false);
                let left: usize = rings.iter().map(|r| r.len()).sum();
                if next_event == events.len() && left == 0 {
                    quiet_passes += 1;
                }
            }
            Some(t) => {
                passes.read(&mut rings[t], &mut assembler);
            }
        }
    }
    passes.after_pass(&mut assembler, true);
    assembler.finish();
    assembler
}

#[test]
fn every_read_order_gives_the_same_spans_parents_and_traces() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let rounds = if cfg!(miri) { 3 } else { 400 };
    for round in 0..rounds {
        let threads = 1 + rng.below(4);
        let (events, expected, ends) = script(&mut rng, threads);
        let mut assembler = run(&mut rng, threads, &events, TableConfig::default());
        let stats = assembler.stats();
        let (got, in_progress) = placed(&assembler.transport_mut().0);
        let unique: BTreeSet<Placement> = got.iter().cloned().collect();
        assert_eq!(unique.len(), got.len(), "round {round}: a span sent twice");
        assert_eq!(unique, expected, "round {round}: {stats:?}");
        assert_eq!(
            stats.spans_sent,
            expected.len() as u64,
            "round {round}: {stats:?}"
        );
        assert_eq!(stats.spans_lost, 0, "round {round}: {stats:?}");
        assert_eq!(stats.records_orphaned, 0, "round {round}: {stats:?}");
        assert_eq!(stats.closes_settled_early, 0, "round {round}: {stats:?}");
        // Every close happened before its trace's end: none may be reported open.
        assert_eq!(in_progress, 0, "round {round} (ends: {ends}): {stats:?}");
    }
}

#[test]
fn with_a_small_table_every_span_is_sent_once_or_counted_lost() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let rounds = if cfg!(miri) { 3 } else { 300 };
    let small = TableConfig {
        open_spans: 6,
        child_buffers: 2,
        ..TableConfig::default()
    };
    for round in 0..rounds {
        let threads = 1 + rng.below(4);
        let (events, expected, _) = script(&mut rng, threads);
        let mut assembler = run(&mut rng, threads, &events, small);
        let stats = assembler.stats();
        let (got, _) = placed(&assembler.transport_mut().0);
        let unique: BTreeSet<Placement> = got.iter().cloned().collect();
        assert_eq!(unique.len(), got.len(), "round {round}: a span sent twice");
        assert!(
            unique.is_subset(&expected),
            "round {round}: a span misplaced"
        );
        assert_eq!(
            stats.spans_sent + stats.spans_lost,
            expected.len() as u64,
            "round {round}: every span sent or counted lost: {stats:?}"
        );
        assert_eq!(
            stats.spans_sent,
            got.len() as u64,
            "round {round}: {stats:?}"
        );
        if stats.records_orphaned > 0 {
            assert!(
                stats.closes_settled_early + stats.spans_evicted > 0,
                "round {round}: an orphan with no counted cause: {stats:?}"
            );
        }
    }
}
