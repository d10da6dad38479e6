//! Workload 9, host I/O off the workers: the round trip of a request to a native component
//! while a WASM guest beside it writes durably in a loop (an fsync per message), with the
//! runtime's I/O workers (the guest homed on one of them) and without (the guest shares the
//! native component's worker), against the same round trip with no writer at all.

use switchyard_bench_support::wasm::round_trips_beside_a_durable_writer;
use switchyard_bench_support::workloads::Engine;

use super::Plan;
use super::report::{Check, Row};

/// The `q`-quantile of `samples` (ns), in microseconds.
fn quantile_us(samples: &mut [u64], q: f64) -> f64 {
    samples.sort_unstable();
    let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[i] as f64 / 1e3
}

/// Workload 9: native p50 and p99 beside a durable writer, I/O workers on and off.
pub(super) fn io_isolation(plan: &Plan) -> Vec<Row> {
    let n = if plan.quick { 2_000 } else { 100_000 };
    // One run of each is enough to show the effect (an fsync is hundreds of microseconds, a
    // round trip a few). Sharing a worker, a round trip waits out a whole turn of the
    // writer (up to a batch of fsyncs): fewer samples there keep the workload short.
    let mut idle = round_trips_beside_a_durable_writer(n, 1, false);
    let mut with_io = round_trips_beside_a_durable_writer(n, 1, true);
    let mut without_io = round_trips_beside_a_durable_writer(n / 250, 0, true);
    let mut rows = Vec::new();
    for (id, shared_id, q, name) in [
        ("io_isolation_p50", "io_isolation_p50_shared", 0.5, "p50"),
        ("io_isolation_p99", "io_isolation_p99_shared", 0.99, "p99"),
    ] {
        let (idle_q, with_q, without_q) =
            (quantile_us(&mut idle, q), quantile_us(&mut with_io, q), quantile_us(&mut without_io, q));
        let row = Row::new(
            id,
            "9 host I/O off the workers",
            format!("native round trip {name} beside a durable writer, I/O workers on (floor: no writer)"),
            "us",
        )
        .set(Engine::Switchyard, with_q)
        .set(Engine::Floor, idle_q);
        rows.push(if q > 0.9 { row.target("<= 2x the idle p99 (issue)", Check::RatioToFloorAtMost(2.0)) } else { row });
        rows.push(
            Row::new(
                shared_id,
                "9 host I/O off the workers",
                format!("native round trip {name} beside a durable writer, no I/O workers (floor: no writer)"),
                "us",
            )
            .set(Engine::Switchyard, without_q)
            .set(Engine::Floor, idle_q),
        );
    }
    rows
}
