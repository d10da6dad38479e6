//! Workload 11, guests from real toolchains: the example guests of `examples/guests` (C with
//! wasi-libc, JavaScript by componentize-js, Python by componentize-py), built by
//! `examples/guests/build.sh` into a directory (`--guests DIR`, default
//! `examples/guests/build` when it exists). For each kind:
//!
//! - its cold start (host, load, register, one request) without a compile cache and with a
//!   warm one, as workload 10 measures it, each start's reply checked;
//! - messages per second through it: one-way messages from the host, each doing the guest's
//!   own pipeline step (storage, a send to the next stage if it has one, log lines), until
//!   all are handled.
//!
//! Storage is in memory and log lines are discarded: what is measured is the guest and the
//! host, not the disk or the terminal. A kind whose file is missing is left out, with a note.

use std::path::Path;
use std::time::{Duration, Instant};

use switchyard::{
    Capabilities, ComponentId, MessageEnvelope, MessageType, Runtime, StorageRights, TargetPattern, WasmOptions, codec,
    new_message_id,
};
use switchyard_bench_support::storage::TempDir;
use switchyard_bench_support::workloads::Engine;

use super::Plan;
use super::cold_start::{ColdStartGuest, RowIds, bench_host, cold_start_rows_in, register_guest};
use super::report::{Check, Row};

/// One kind of guest: where its file is under the guests directory, and how to drive it.
struct Kind {
    /// What the rows call it.
    name: &'static str,
    /// Its file, under the guests directory.
    file: &'static str,
    /// Its cold-start row ids.
    ids: RowIds,
    /// The throughput row's id.
    rate_id: &'static str,
    /// The component it sends to (registered as a native sink), if any.
    sink: Option<&'static str>,
    /// What it does with each message.
    step: &'static str,
    /// The cold start's request, and the reply it must give.
    request: &'static str,
    reply: &'static str,
}

/// The rows' workload label.
const WORKLOAD: &str = "11 guests from real toolchains";

const KINDS: [Kind; 3] = [
    Kind {
        name: "C with wasi-libc (c-ingest)",
        file: "c/ingest.wasm",
        ids: RowIds {
            compiled: "cold_c_compiled",
            cached: "cold_c_cached",
            load_compiled: "cold_c_load_compiled",
            load_cached: "cold_c_load_cached",
            ratio: "cold_c_ratio",
            ratio_target: None,
        },
        rate_id: "guest_c_rate",
        sink: Some("js-transform"),
        step: "a storage read and write, a send, a log line",
        request: "a record",
        reply: "accepted #1",
    },
    Kind {
        name: "JavaScript, componentize-js (js-transform)",
        file: "js/transform.wasm",
        ids: RowIds {
            compiled: "cold_js_compiled",
            cached: "cold_js_cached",
            load_compiled: "cold_js_load_compiled",
            load_cached: "cold_js_load_cached",
            ratio: "cold_js_ratio",
            ratio_target: None,
        },
        rate_id: "guest_js_rate",
        sink: Some("py-store"),
        step: "a send, a storage write, a log line, a stdout line",
        request: "a record",
        reply: "A RECORD",
    },
    Kind {
        name: "Python, componentize-py (py-store)",
        file: "python/store.wasm",
        ids: RowIds {
            compiled: "cold_py_compiled",
            cached: "cold_py_cached",
            load_compiled: "cold_py_load_compiled",
            load_cached: "cold_py_load_cached",
            ratio: "cold_py_ratio",
            ratio_target: Some((">= 10x (issue)", Check::AtLeast(10.0))),
        },
        rate_id: "guest_py_rate",
        sink: None,
        step: "a storage read, a batch of two writes, a log line",
        request: "count?",
        reply: "0",
    },
];

/// The guest's limits and rights: what `examples/guests/polyglot.toml` gives it, with room.
fn options(kind: &Kind) -> WasmOptions {
    let send = kind.sink.map(|s| vec![TargetPattern::parse(s)]).unwrap_or_default();
    WasmOptions::default()
        .memory_limit(64 << 20)
        .fuel_per_message(1_000_000_000)
        .deadline(Duration::from_secs(10))
        .capabilities(Capabilities { send, storage: StorageRights::ReadWrite, ..Capabilities::default() })
}

/// Messages per second through `guest`: `n` one-way messages from the host (each waits for
/// mailbox space), clocked until the guest has handled them all. The compile cache in
/// `cache` is warm, so the start is not part of it.
fn rate(plan: &Plan, guest: &ColdStartGuest, cache: &Path, n: u64) -> f64 {
    let host = bench_host(Some(cache));
    let code = host.load(&guest.bytes).expect("the guest loads");
    let rt = Runtime::builder().workers(plan.workers).pin_workers(plan.pin).build().expect("the runtime starts");
    let id = register_guest(&host, &rt, guest, &code);
    let from = ComponentId::new("bench").expect("valid id");
    let send = |i: u64| {
        let payload = format!("record {i}").into_bytes();
        let env = MessageEnvelope::new(
            MessageType::FireAndForget,
            from.clone(),
            id.clone(),
            payload,
            codec::RAW,
            new_message_id(),
        );
        rt.handle().send_timeout(env, Duration::from_secs(60)).expect("the guest takes the message");
    };
    // The first message instantiates the guest: outside the clock.
    send(0);
    wait_handled(&rt, &id, 1);
    let started = Instant::now();
    for i in 1..=n {
        send(i);
    }
    wait_handled(&rt, &id, n + 1);
    let elapsed = started.elapsed();
    let report = rt.shutdown(Duration::from_secs(10));
    assert!(report.stats.is_balanced(), "shutdown accounting does not balance: {:?}", report.stats);
    n as f64 / elapsed.as_secs_f64()
}

/// Waits until `id` has handled `n` messages; panics if it failed one.
fn wait_handled(rt: &Runtime, id: &ComponentId, n: u64) {
    loop {
        let s = rt.component_stats(id).expect("the guest is registered");
        assert_eq!(s.failed, 0, "the guest failed a message: {s:?}");
        if s.handled >= n {
            assert_eq!(s.handled, n, "handled more than was sent");
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Workload 11: each kind found under the guests directory.
pub(super) fn toolchain_guests(plan: &Plan) -> Vec<Row> {
    let Some(dir) = &plan.guests_dir else {
        eprintln!(
            "[compare] workload 11 (guests from real toolchains) skipped: no guests directory \
             (examples/guests/build.sh builds them into examples/guests/build; or --guests DIR)"
        );
        return Vec::new();
    };
    let mut rows = Vec::new();
    for kind in &KINDS {
        let path = dir.join(kind.file);
        if !path.exists() {
            eprintln!("[compare] workload 11: {} not found, {} skipped", path.display(), kind.name);
            continue;
        }
        let mut guest = ColdStartGuest::file(&kind.ids, &path);
        guest.name = format!("{}, {:.1} MB", kind.name, guest.bytes.len() as f64 / 1e6);
        guest.request = kind.request.as_bytes().to_vec();
        guest.expect = Some(kind.reply.as_bytes().to_vec());
        guest.options = options(kind);
        guest.sinks = kind.sink.into_iter().collect();
        let cache = TempDir::new("guest-kinds");
        rows.extend(cold_start_rows_in(plan, &guest, cache.path(), WORKLOAD));
        let n = if plan.quick { 500 } else { 5_000 };
        rows.push(
            Row::new(
                kind.rate_id,
                WORKLOAD,
                format!("{}: one-way messages through it (each: {})", kind.name, kind.step),
                "msg/s",
            )
            .set(Engine::Switchyard, rate(plan, &guest, cache.path(), n)),
        );
    }
    rows
}
