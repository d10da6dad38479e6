//! Fire-and-forget latency: one producer, one component, idle system; time from just before
//! the send call to the handler running on another thread, one message at a time, for
//! switchyard, the async baseline and a raw crossbeam channel to a consumer thread. Criterion
//! reports the mean; the percentiles (hdrhistogram) are printed after each engine. Every run
//! checks the count and checksum of what was handled.
//!
//! Run: `cargo bench --bench fire_and_forget_latency` (add `-- --quick` for a short run).

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard_bench_support::workloads::{Engine, Fixture, FixtureConfig, latency_histogram};

fn fire_and_forget_latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("fire_and_forget_latency");
    for engine in Engine::ALL {
        let mut fixture = Fixture::new(engine, FixtureConfig::bench(1, None));
        let mut hist = latency_histogram();
        group.bench_function(engine.name(), |b| b.iter_custom(|iters| fixture.fire_and_forget(iters, &mut hist)));
        eprintln!(
            "fire_and_forget_latency/{}: p50 {} ns, p99 {} ns, p99.9 {} ns ({} samples)",
            engine.name(),
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99),
            hist.value_at_quantile(0.999),
            hist.len()
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = fire_and_forget_latency
}
criterion_main!(benches);
