//! The spans the load tests make.

use tracing::info_span;

/// A sampled (or not) Lambda invocation span, as `lambda_runtime` opens it.
pub fn invocation(i: u64, sampled: bool) -> tracing::Span {
    let header = format!(
        "Root=1-6720f3a0-{i:024x};Parent={:016x};Sampled={}",
        i + 1,
        u8::from(sampled)
    );
    info_span!(target: "lambda_runtime::layers::trace", "Lambda runtime invoke", requestId = "r", xrayTraceId = header.as_str())
}

/// One invocation's work: `n` spans, every fifth with two children.
pub fn work(n: u64) -> u64 {
    let mut made = 0;
    for i in 0..n {
        let s = info_span!("item", annotation.i = i, status = "ok");
        let _e = s.enter();
        made += 1;
        if i % 5 == 0 {
            drop(info_span!("child", depth = 1u64).entered());
            drop(info_span!("child", depth = 2u64).entered());
            made += 2;
        }
    }
    made
}
