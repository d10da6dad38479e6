//! Throughput: 2 producer threads -> M components (M = 1, 100, 10 000), messages per second
//! until every message was handled, for switchyard (`send_timeout` into bounded mailboxes),
//! the async baseline (`publish` through the broker) and the floor (one shared crossbeam
//! channel drained by one consumer thread per core). Each batch checks the count and
//! checksum of everything handled, so a broken path cannot look fast.
//!
//! Run: `cargo bench --bench throughput` (add `-- --quick` for a short run).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchyard_bench_support::workloads::{Engine, Fixture, FixtureConfig};

const BATCH: u64 = 20_000;
const PRODUCERS: usize = 2;

fn throughput(c: &mut Criterion) {
    for components in [1usize, 100, 10_000] {
        let mut group = c.benchmark_group(format!("throughput/{PRODUCERS}_producers_to_{components}_components"));
        group.throughput(Throughput::Elements(BATCH));
        for engine in Engine::ALL {
            let registered = if engine == Engine::Floor { 0 } else { components };
            let mut fixture = Fixture::new(engine, FixtureConfig::bench(registered, None));
            group.bench_function(engine.name(), |b| {
                b.iter_custom(|iters| fixture.throughput(iters * BATCH, PRODUCERS, components))
            });
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
    targets = throughput
}
criterion_main!(benches);
