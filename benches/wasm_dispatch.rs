//! WASM dispatch: messages per second into a WASM echo component through the runtime, with
//! fuel metering on and off, against the floor of calling the same component directly
//! through wasmtime on one thread (same envelope conversion and limits, no routing). Each
//! run checks that the guest handled every message.
//!
//! Run: `cargo bench --bench wasm_dispatch` (add `-- --quick` for a short run).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchyard_bench_support::wasm::{direct_calls, through_runtime};

const BATCH: u64 = 2_000;

fn wasm_dispatch(c: &mut Criterion) {
    let mut group = c.benchmark_group("wasm_dispatch/echo");
    group.throughput(Throughput::Elements(BATCH));
    for fuel in [true, false] {
        let fuel_name = if fuel { "fuel_on" } else { "fuel_off" };
        group.bench_function(format!("switchyard_{fuel_name}"), |b| {
            b.iter_custom(|iters| through_runtime(iters * BATCH, fuel, 2, false))
        });
        group.bench_function(format!("direct_call_{fuel_name}"), |b| {
            b.iter_custom(|iters| direct_calls(iters * BATCH, fuel))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = wasm_dispatch
}
criterion_main!(benches);
