//! Workload 5, WASM dispatch: one producer into a WASM echo component through the runtime,
//! fuel metering on and off, against calling the same component directly on one thread.

use std::time::Duration;

use switchyard_bench_support::wasm;
use switchyard_bench_support::workloads::Engine;

use super::Plan;
use super::report::{Check, Row, median};

/// Workload 5: WASM dispatch (fuel on and off): one producer -> a WASM echo component
/// through the runtime, against calling the same component directly on one thread.
pub(super) fn wasm_dispatch(plan: &Plan) -> Vec<Row> {
    let n = plan.wasm_messages;
    let mut rows = Vec::new();
    for (id, fuel) in [("wasm_fuel", true), ("wasm_nofuel", false)] {
        let metric = format!("1 producer -> WASM echo, fuel {}", if fuel { "on" } else { "off" });
        let rate = |t: Duration| n as f64 / t.as_secs_f64() / 1e3;
        // Warm-up runs (code caches, allocator), then the median of `reps` runs.
        wasm::through_runtime(n / 10, fuel, plan.workers, plan.pin);
        wasm::direct_calls(n / 10, fuel);
        // Alternating runs: a slow phase of a shared machine falls on both sides alike.
        let (mut through, mut direct) = (Vec::new(), Vec::new());
        for _ in 0..plan.reps {
            through.push(rate(wasm::through_runtime(n, fuel, plan.workers, plan.pin)));
            direct.push(rate(wasm::direct_calls(n, fuel)));
        }
        rows.push(
            Row::new(id, "5 WASM dispatch", metric, "k msg/s")
                .target(">= 1/1.3 of the direct call (ours)", Check::RatioToFloorAtLeast(1.0 / 1.3))
                .set(Engine::Switchyard, median(through))
                .set(Engine::Floor, median(direct)),
        );
    }
    rows
}
