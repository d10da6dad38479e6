//! Routing cost: ns per send from one thread into a registered, idle component, for
//! switchyard (`try_send`), the async baseline (`broker.publish`) and the floor (a raw
//! `crossbeam_channel::bounded` send), and switchyard through a `ComponentRef` resolved once
//! (`switchyard_ref`), with envelopes built outside the timed loop. Each
//! batch waits until every message was handled and checks the checksum.
//!
//! Run: `cargo bench --bench routing_cost` (add `-- --quick` for a short run).

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard_bench_support::workloads::{Engine, Fixture, FixtureConfig};

fn routing_cost(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing_cost");
    for engine in Engine::ALL {
        let mut fixture = Fixture::new(engine, FixtureConfig::bench(1, Some(8192)));
        group.bench_function(engine.name(), |b| b.iter_custom(|iters| fixture.routing(iters)));
        if engine == Engine::Switchyard {
            // The same sends through a `ComponentRef` resolved once: no registry lookup.
            group.bench_function("switchyard_ref", |b| b.iter_custom(|iters| fixture.routing_ref(iters)));
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = routing_cost
}
criterion_main!(benches);
