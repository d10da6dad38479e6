//! Workload 10, WASM cold start: what a process pays before a guest's first answer (build the
//! WASM host, load the guest, register it, one request, which instantiates it), without a
//! compile cache (Cranelift compiles the guest) and with a warm one (the compiled code is
//! read back from [`switchyard::WasmConfig::cache_dir`]), in the same run.
//!
//! The guests in the repository are small, so the built-in guest is synthetic: the echo
//! guest of `tests/wasm_guests` with [`SYNTHETIC_FUNCTIONS`] generated functions added
//! (loops, arithmetic, loads, a call chain), so that compiling it dominates its load, as it
//! does for guests built by real toolchains. Any component file can be measured the same way
//! (`switchyard bench --only "wasm cold start" --guest FILE`, or a [`ColdStartGuest`] with
//! its own [`RowIds`] for a guest the report always includes).
//!
//! Every run checks its outcome: the synthetic echo must answer with the request's payload,
//! a guest file must give the same outcome (reply or error) with and without the cache, and
//! every cached run must have been a cache hit (and every run without one, a compilation),
//! or the workload panics instead of reporting a figure.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use std::sync::Arc;

use switchyard::{
    CompileCacheStats, ComponentId, ComponentSpec, LogSink, MessageEnvelope, MessageType, RedbBackend, Runtime,
    WasmComponent, WasmConfig, WasmHost, WasmOptions, codec, handler_fn, new_message_id,
};
use switchyard_bench_support::storage::TempDir;
use switchyard_bench_support::wasm::echo_core_module;
use switchyard_bench_support::workloads::Engine;

use super::Plan;
use super::report::{Check, Row, median};

/// Functions added to the echo guest in the synthetic guest.
pub(super) const SYNTHETIC_FUNCTIONS: usize = 6000;

/// The ids of a guest's rows.
pub(super) struct RowIds {
    /// Start to first answer, without a cache.
    pub(super) compiled: &'static str,
    /// Start to first answer, with a warm cache.
    pub(super) cached: &'static str,
    /// Of which the load, without a cache.
    pub(super) load_compiled: &'static str,
    /// Of which the load, with a warm cache.
    pub(super) load_cached: &'static str,
    /// The ratio of the two totals.
    pub(super) ratio: &'static str,
    /// The ratio's target, if the guest has one.
    pub(super) ratio_target: Option<(&'static str, Check)>,
}

/// The synthetic guest's rows.
const SYNTHETIC_IDS: RowIds = RowIds {
    compiled: "cold_synth_compiled",
    cached: "cold_synth_cached",
    load_compiled: "cold_synth_load_compiled",
    load_cached: "cold_synth_load_cached",
    ratio: "cold_synth_ratio",
    ratio_target: Some((">= 10x (ours)", Check::AtLeast(10.0))),
};

/// The rows of a file passed with `--guest`.
const GUEST_FILE_IDS: RowIds = RowIds {
    compiled: "cold_file_compiled",
    cached: "cold_file_cached",
    load_compiled: "cold_file_load_compiled",
    load_cached: "cold_file_load_cached",
    ratio: "cold_file_ratio",
    ratio_target: None,
};

/// A guest whose cold start is measured.
pub(super) struct ColdStartGuest {
    /// Its row ids.
    pub(super) ids: &'static RowIds,
    /// What the rows call it.
    pub(super) name: String,
    /// The component (binary or text).
    pub(super) bytes: Vec<u8>,
    /// The one request's payload (raw codec).
    pub(super) request: Vec<u8>,
    /// The reply it must give, when known (otherwise: the same outcome in every run).
    pub(super) expect: Option<Vec<u8>>,
    /// Its limits and rights.
    pub(super) options: WasmOptions,
    /// Components it sends to: each is registered as a native sink beside it.
    pub(super) sinks: Vec<&'static str>,
}

impl ColdStartGuest {
    /// The echo guest with `functions` generated functions.
    fn synthetic(functions: usize) -> Self {
        let bytes = synthetic_component(functions);
        let request = b"cold start".to_vec();
        ColdStartGuest {
            ids: &SYNTHETIC_IDS,
            name: format!(
                "synthetic echo + {functions} generated functions ({:.1} MB, compile-bound)",
                bytes.len() as f64 / 1e6
            ),
            bytes,
            expect: Some(request.clone()),
            request,
            options: WasmOptions::default(),
            sinks: Vec::new(),
        }
    }

    /// A component file, with the rows `ids`. The file was checked by `bench::run`.
    pub(super) fn file(ids: &'static RowIds, path: &Path) -> Self {
        let bytes = switchyard::read_component_file(path).expect("the guest file reads (checked before the workloads)");
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        ColdStartGuest {
            ids,
            name: format!("{name} ({:.1} MB)", bytes.len() as f64 / 1e6),
            bytes,
            request: b"ping".to_vec(),
            expect: None,
            options: WasmOptions::default(),
            sinks: Vec::new(),
        }
    }
}

/// The echo guest's core module with `functions` generated functions, componentized.
fn synthetic_component(functions: usize) -> Vec<u8> {
    let echo = echo_core_module();
    let body = echo.trim_end().strip_suffix(')').expect("the echo module text ends with its closing parenthesis");
    let mut wat = String::from(body);
    for i in 0..functions {
        // A loop of integer arithmetic, a branch, a load and a call to the previous
        // function: real work for the register allocator and the instruction selector.
        let call_previous = if i == 0 {
            String::new()
        } else {
            format!("(local.set $acc (i32.add (local.get $acc) (call $gen{} (local.get $acc) (i32.const 0))))", i - 1)
        };
        let _ = write!(
            wat,
            r#"
  (func $gen{i} (param $a i32) (param $n i32) (result i32)
    (local $i i32) (local $acc i32) (local $wide i64)
    (local.set $acc (i32.const {i}))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 31)) (i32.xor (local.get $a) (local.get $i))))
        (local.set $wide (i64.mul (i64.extend_i32_u (local.get $acc)) (i64.const {k})))
        (if (i32.and (local.get $acc) (i32.const 1))
          (then (local.set $acc (i32.wrap_i64 (i64.shr_u (local.get $wide) (i64.const 7)))))
          (else (local.set $acc (i32.add (local.get $acc) (i32.load (i32.and (local.get $i) (i32.const 1020)))))))
        (local.set $acc (select (local.get $acc) (i32.rotl (local.get $acc) (i32.const 5)) (i32.lt_s (local.get $acc) (local.get $a))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    {call_previous}
    (local.get $acc))"#,
            k = 2 * i + 1_000_003,
        );
    }
    wat.push_str("\n)");
    let core = wat::parse_str(&wat).expect("the synthetic guest's text parses");
    switchyard::componentize(&core).expect("the synthetic guest componentizes")
}

/// One start of a guest: the whole, and the load within it.
struct Start {
    total: Duration,
    load: Duration,
}

/// Milliseconds, the unit of the rows.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What one start measured and saw.
struct Run {
    start: Start,
    /// The request's outcome.
    outcome: Result<Vec<u8>, String>,
    /// What the compile cache did, with one.
    cache: Option<CompileCacheStats>,
}

/// A WASM host for the benches: storage in memory (what is measured is the guest and the
/// host, not the disk), guests' log lines discarded, the compile cache in `cache` if any.
pub(super) fn bench_host(cache: Option<&Path>) -> WasmHost {
    let config = WasmConfig { cache_dir: cache.map(Path::to_path_buf), ..WasmConfig::default() };
    let storage = Arc::new(RedbBackend::in_memory().expect("in-memory storage"));
    let discard: LogSink = Arc::new(|_: &ComponentId, _: &str, _: &str| {});
    WasmHost::build(config, Some(storage), Some(discard)).expect("the WASM host starts")
}

/// Registers `guest` as "guest" on `rt`, with a native sink for each component it sends to.
pub(super) fn register_guest(
    host: &WasmHost,
    rt: &Runtime,
    guest: &ColdStartGuest,
    code: &WasmComponent,
) -> ComponentId {
    for sink in &guest.sinks {
        let id = ComponentId::new(*sink).expect("valid id");
        // Room for everything a throughput run sends on: a full sink would fail the guest's
        // send, and the guest's message with it.
        let spec = ComponentSpec::new(|| handler_fn(|_, _| Ok(None))).mailbox_capacity(1 << 16);
        rt.register(id, spec).expect("the sink registers");
    }
    let id = ComponentId::new("guest").expect("valid id");
    host.register(&rt.handle(), id.clone(), code, guest.options.clone()).expect("the guest registers");
    id
}

/// Starts `guest` once: a new host (with the compile cache in `cache`, if any), load,
/// register, one request (the clock stops at its outcome), then shutdown.
fn start_once(guest: &ColdStartGuest, cache: Option<&Path>, plan: &Plan) -> Run {
    let started = Instant::now();
    let host = bench_host(cache);
    let load_started = Instant::now();
    let code = host.load(&guest.bytes).expect("the guest loads");
    let load = load_started.elapsed();
    let rt = Runtime::builder().workers(plan.workers).pin_workers(plan.pin).build().expect("the runtime starts");
    let id = register_guest(&host, &rt, guest, &code);
    let from = ComponentId::new("bench").expect("valid id");
    let env = MessageEnvelope::new(MessageType::Request, from, id, guest.request.clone(), codec::RAW, new_message_id());
    let outcome = rt
        .request(env, Duration::from_secs(60))
        .expect("the request is sent")
        .wait()
        .map(|reply| reply.payload)
        .map_err(|e| e.to_string());
    let total = started.elapsed();
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.stats.is_balanced(), "shutdown accounting does not balance: {:?}", report.stats);
    Run { start: Start { total, load }, outcome, cache: host.cache_stats() }
}

/// The rows of one guest: start to first answer with and without a warm cache, the loads
/// within them, and the ratio; the two alternate run by run.
pub(super) fn cold_start_rows(plan: &Plan, guest: &ColdStartGuest) -> Vec<Row> {
    let dir = TempDir::new("cold-start");
    cold_start_rows_in(plan, guest, dir.path(), "10 WASM cold start")
}

/// As [`cold_start_rows`], with the compile cache in `dir` (left warm).
pub(super) fn cold_start_rows_in(plan: &Plan, guest: &ColdStartGuest, dir: &Path, workload: &'static str) -> Vec<Row> {
    // Warm-up: compiles the guest into the cache, and gives the outcome every run must give.
    let first = start_once(guest, Some(dir), plan);
    let written = first.cache.as_ref().map(|s| (s.misses, s.written));
    assert_eq!(written, Some((1, 1)), "the warm-up compiled the guest and wrote its entry: {:?}", first.cache);
    if let Some(expected) = &guest.expect {
        assert_eq!(first.outcome.as_ref(), Ok(expected), "{} answered wrongly", guest.name);
    }
    let entry_bytes: u64 = std::fs::read_dir(dir)
        .expect("the cache directory lists")
        .map(|e| e.and_then(|e| e.metadata()).map_or(0, |m| m.len()))
        .sum();
    let (mut compiled, mut cached) = (Vec::new(), Vec::new());
    for _ in 0..plan.reps {
        let run = start_once(guest, None, plan);
        assert_eq!(run.outcome, first.outcome, "{}: another outcome than the warm-up's", guest.name);
        assert_eq!(run.cache, None);
        compiled.push(run.start);
        let run = start_once(guest, Some(dir), plan);
        assert_eq!(run.outcome, first.outcome, "{}: another outcome than the warm-up's", guest.name);
        let hit = run.cache.as_ref().map(|s| (s.hits, s.misses));
        assert_eq!(hit, Some((1, 0)), "the warm cache was not hit: {:?}", run.cache);
        cached.push(run.start);
    }
    let total = |runs: &[Start]| median(runs.iter().map(|s| ms(s.total)).collect());
    let load = |runs: &[Start]| median(runs.iter().map(|s| ms(s.load)).collect());
    let (name, ids) = (&guest.name, guest.ids);
    let mut rows = vec![
        Row::new(ids.compiled, workload, format!("{name}: host, load, 1 request; no cache (compiled)"), "ms")
            .set(Engine::Switchyard, total(&compiled)),
        Row::new(ids.cached, workload, format!("{name}: the same with a warm compile cache"), "ms")
            .set(Engine::Switchyard, total(&cached)),
        Row::new(ids.load_compiled, workload, "of which load, compiled", "ms").set(Engine::Switchyard, load(&compiled)),
        Row::new(
            ids.load_cached,
            workload,
            format!("of which load, from the cache (entry {:.1} MB)", entry_bytes as f64 / 1e6),
            "ms",
        )
        .set(Engine::Switchyard, load(&cached)),
    ];
    let ratio = Row::new(ids.ratio, workload, "ratio no cache / warm cache", "x")
        .set(Engine::Switchyard, total(&compiled) / total(&cached));
    rows.push(match ids.ratio_target {
        Some((text, check)) => ratio.target(text, check),
        None => ratio,
    });
    rows
}

/// Workload 10: the synthetic guest, and the `--guest` file if one was given.
pub(super) fn cold_start(plan: &Plan) -> Vec<Row> {
    let mut rows = cold_start_rows(plan, &ColdStartGuest::synthetic(SYNTHETIC_FUNCTIONS));
    if let Some(path) = &plan.guest_file {
        rows.extend(cold_start_rows(plan, &ColdStartGuest::file(&GUEST_FILE_IDS, path)));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_is_timed_without_and_with_a_warm_cache_and_checked() {
        let plan = Plan::new(true, 1, false);
        let rows = cold_start_rows(&plan, &ColdStartGuest::synthetic(4));
        let ids: Vec<&str> = rows.iter().map(|r| r.id).collect();
        assert_eq!(
            ids,
            [
                "cold_synth_compiled",
                "cold_synth_cached",
                "cold_synth_load_compiled",
                "cold_synth_load_cached",
                "cold_synth_ratio"
            ]
        );
        assert!(rows.iter().all(|r| r.values[0].is_some_and(|v| v > 0.0)), "every row has a figure");
        assert!(rows[0].metric.contains("4 generated functions"), "{}", rows[0].metric);
        assert!(rows[3].metric.contains("(entry "), "{}", rows[3].metric);
    }

    #[test]
    fn a_guest_file_gets_rows_of_its_own() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/pipeline/ingest.wasm"));
        let guest = ColdStartGuest::file(&GUEST_FILE_IDS, path);
        assert!(guest.name.starts_with("ingest.wasm ("), "{}", guest.name);
        let rows = cold_start_rows(&Plan::new(true, 1, false), &guest);
        assert_eq!(rows.len(), 5);
        assert!(rows.iter().all(|r| r.id.starts_with("cold_file_")));
        assert!(rows[4].target.is_none(), "no target for a file of unknown size");
    }
}
