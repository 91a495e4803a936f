//! Replays every committed corpus input through its target's checks, on
//! stable and without libFuzzer: what CI runs whatever the toolchain.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(result.is_ok(), "{target}: {} fails", path.display());
        n += 1;
    }
    assert!(n > 0, "{target}: empty corpus");
}

#[test]
fn trace_header_corpus() {
    replay("trace_header", xray_fuzz::trace_header);
}

#[test]
fn daemon_address_corpus() {
    replay("daemon_address", xray_fuzz::daemon_address);
}

#[test]
fn document_corpus() {
    replay("document", xray_fuzz::document);
}

#[test]
fn span_table_corpus() {
    replay("span_table", xray_fuzz::span_table);
}

#[test]
fn otlp_corpus() {
    replay("otlp", xray_fuzz::otlp);
}
