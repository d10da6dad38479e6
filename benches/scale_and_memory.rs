//! Scale and memory: RSS per registered idle component at 100 000 components (printed, from
//! `/proc/self/status`), and throughput with 100 000 registered components against 100, for
//! switchyard and the async baseline. Each batch checks the count and checksum of what was
//! handled. The compare report measures the memory in a fresh child process; here it shares
//! the process with criterion, so treat it as indicative.
//!
//! Run: `cargo bench --bench scale_and_memory` (add `-- --quick` for a short run).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchyard_bench_support::workloads::{Engine, Fixture, FixtureConfig, memory_probe};

const COMPONENTS: usize = 100_000;
const BATCH: u64 = 20_000;

fn scale_and_memory(c: &mut Criterion) {
    for engine in [Engine::Switchyard, Engine::Baseline] {
        let probe = memory_probe(engine, FixtureConfig::bench(0, None).workers, COMPONENTS, false);
        eprintln!(
            "scale_and_memory/{}: {:.1} KB RSS per idle component ({} registered)",
            engine.name(),
            probe.bytes_per_component() / 1024.0,
            COMPONENTS
        );
    }
    for registered in [100usize, COMPONENTS] {
        let mut group = c.benchmark_group(format!("scale_and_memory/throughput_{registered}_registered"));
        group.throughput(Throughput::Elements(BATCH));
        for engine in [Engine::Switchyard, Engine::Baseline] {
            let mut fixture = Fixture::new(engine, FixtureConfig::bench(registered, None));
            group.bench_function(format!("{}_all_active", engine.name()), |b| {
                b.iter_custom(|iters| fixture.throughput(iters * BATCH, 2, registered))
            });
            if registered > 100 {
                group.bench_function(format!("{}_100_active", engine.name()), |b| {
                    b.iter_custom(|iters| fixture.throughput(iters * BATCH, 2, 100))
                });
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = scale_and_memory
}
criterion_main!(benches);
