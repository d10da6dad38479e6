//! Request-response round trip from the host to an echo component, one at a time, for
//! switchyard (`request(..)?.wait()`), the async baseline (correlation-id -> oneshot map,
//! `tokio::time::timeout`) and the floor (a ping-pong of the same envelopes between two
//! threads over `crossbeam_channel::bounded(1)`). Every reply is checked against its request.
//! Criterion reports the mean; p50/p99 are printed after each engine.
//!
//! Run: `cargo bench --bench request_response` (add `-- --quick` for a short run).

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard_bench_support::workloads::{Engine, Fixture, FixtureConfig, latency_histogram};

fn request_response(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_response");
    for engine in Engine::ALL {
        let mut fixture = Fixture::new(engine, FixtureConfig::bench(1, None));
        let mut hist = latency_histogram();
        group.bench_function(engine.name(), |b| b.iter_custom(|iters| fixture.request_response(iters, &mut hist)));
        eprintln!(
            "request_response/{}: p50 {} ns, p99 {} ns ({} samples)",
            engine.name(),
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99),
            hist.len()
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = request_response
}
criterion_main!(benches);
