//! `switchyard bench`: the compare report. Every workload on switchyard, the async baseline
//! (the tokio broker design of the earlier system) and a raw floor, in one process, printed
//! as a table and as JSON with the ratios switchyard/baseline and switchyard/floor.
//!
//! This file holds the command's entry point and the plan (how long each workload runs); the
//! workloads, the report model, the machine probe and the PERF.md writer are submodules.
//!
//! ```text
//! switchyard bench --quick                         # under a minute on 2 cores
//! switchyard bench                                 # longer runs, steadier figures
//! switchyard bench --quick --write-perf PERF.md    # regenerate PERF.md
//! ```
//!
//! Other flags: `--workers N` (default: available cores), `--pin` (pin switchyard workers),
//! `--only WORKLOAD` (one workload, e.g. `--only routing`, for profiling), `--json FILE`
//! (also write the JSON there), `--charts DIR` (also write the charts there; `--write-perf`
//! writes them to `docs/perf/` beside PERF.md, which links them), `--guest FILE` (workload
//! 10 also measures the cold start of this component file, with and without the compile
//! cache). Every run verifies a checksum of what was handled, so a broken path panics
//! instead of looking fast. Memory per component is measured in a child process of this
//! binary (`switchyard bench --memory-probe ENGINE N WORKERS`), so memory freed by earlier
//! workloads cannot hide the growth.

use std::path::{Path, PathBuf};

use crate::component::CommandError;

mod charts;
mod cluster;
mod cold_start;
mod guests;
mod io_isolation;
mod machine;
mod messaging;
mod perf_md;
mod report;
mod start_stop;
mod storage;
mod wasm_dispatch;

pub use messaging::memory_probe_child;
use report::{Row, json_report, text_table};

/// How long each workload runs.
#[derive(Clone)]
struct Plan {
    quick: bool,
    workers: usize,
    pin: bool,
    routing_iters: u64,
    latency_samples: u64,
    throughput_messages: u64,
    producers: usize,
    reps: usize,
    storage_writes: u64,
    storage_reads: u64,
    listings: u64,
    wasm_messages: u64,
    scale_components: usize,
    /// A component file whose cold start workload 10 also measures (`--guest`).
    guest_file: Option<PathBuf>,
    /// Where workload 11 finds the example guests built by `examples/guests/build.sh`.
    guests_dir: Option<PathBuf>,
}

impl Plan {
    fn new(quick: bool, workers: usize, pin: bool) -> Self {
        Plan {
            quick,
            workers,
            pin,
            routing_iters: if quick { 40_960 } else { 409_600 },
            latency_samples: if quick { 4_000 } else { 40_000 },
            throughput_messages: if quick { 200_000 } else { 1_000_000 },
            producers: 2,
            reps: if quick { 1 } else { 3 },
            storage_writes: if quick { 40 } else { 400 },
            storage_reads: if quick { 20_000 } else { 200_000 },
            listings: if quick { 50 } else { 500 },
            wasm_messages: if quick { 50_000 } else { 500_000 },
            scale_components: 100_000,
            guest_file: None,
            guests_dir: None,
        }
    }
}

/// A workload: runs on all engines and returns its report rows.
type Workload = fn(&Plan) -> Vec<Row>;

/// What `switchyard bench` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct BenchArgs {
    /// Short runs (under a minute on 2 cores).
    pub quick: bool,
    /// Pin switchyard's workers to cores.
    pub pin: bool,
    /// Worker threads (default: available cores).
    pub workers: Option<usize>,
    /// Run one workload only (by name, e.g. `routing`).
    pub only: Option<String>,
    /// Also write the JSON report to this file.
    pub json: Option<PathBuf>,
    /// Write PERF.md (machine, method, table, charts, notes, JSON) to this file, and its
    /// charts to `docs/perf/` beside it.
    pub write_perf: Option<PathBuf>,
    /// Also write the charts (SVG) to this folder.
    pub charts: Option<PathBuf>,
    /// A component file whose cold start workload 10 also measures.
    pub guest: Option<PathBuf>,
    /// The example guests built by `examples/guests/build.sh` (workload 11); default
    /// `examples/guests/build` if it exists.
    pub guests: Option<PathBuf>,
}

/// The workloads, in the order they run, by the name `--only` takes.
const WORKLOADS: [(&str, Workload); 12] = [
    ("scale and memory", messaging::scale_and_memory),
    ("routing", messaging::routing),
    ("fire-and-forget", messaging::fire_and_forget),
    ("throughput", messaging::throughput),
    ("request-response", messaging::request_response),
    ("wasm dispatch", wasm_dispatch::wasm_dispatch),
    ("storage", storage::storage),
    ("wasm start and stop", start_stop::start_and_stop),
    ("host io", io_isolation::io_isolation),
    ("wasm cold start", cold_start::cold_start),
    ("toolchain guests", guests::toolchain_guests),
    ("cluster", cluster::cluster),
];

/// The workload number a row's `workload` label starts with (`"7 scale and memory"`).
fn workload_number(row: &Row) -> u32 {
    row.workload.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(u32::MAX)
}

/// Runs the compare report and prints it (table, then JSON) to stdout.
///
/// # Errors
/// An unknown `--only` workload, a failed memory probe, or a report file that cannot be
/// written.
pub fn run(args: &BenchArgs) -> Result<(), CommandError> {
    if let Some(only) = &args.only
        && !WORKLOADS.iter().any(|(name, _)| name == only)
    {
        let names: Vec<&str> = WORKLOADS.iter().map(|(name, _)| *name).collect();
        return Err(CommandError(format!("unknown workload {only:?}; the workloads are: {}", names.join(", "))));
    }
    let workers = args.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if let Some(path) = &args.guest {
        switchyard::read_component_file(path).map_err(|e| CommandError(format!("--guest: {e}")))?;
    }
    let guests_dir = match &args.guests {
        Some(dir) if !dir.is_dir() => {
            return Err(CommandError(format!("--guests: {} is not a directory", dir.display())));
        }
        Some(dir) => Some(dir.clone()),
        None => Some(PathBuf::from("examples/guests/build")).filter(|d| d.is_dir()),
    };
    let plan = Plan { guest_file: args.guest.clone(), guests_dir, ..Plan::new(args.quick, workers, args.pin) };
    let machine = machine::machine();
    let started = std::time::Instant::now();

    let mut rows: Vec<Row> = Vec::new();
    for (name, run) in WORKLOADS {
        if args.only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let t = std::time::Instant::now();
        rows.extend(run(&plan));
        eprintln!("[compare] {name}: {:.1} s", t.elapsed().as_secs_f64());
    }
    // Report in workload-number order (scale and memory runs first so its RSS probe and
    // registrations see a process that has not yet been churned by the other workloads);
    // the sort is stable, so each workload's rows keep their order.
    rows.sort_by_key(workload_number);
    let elapsed = started.elapsed();

    println!(
        "switchyard compare report ({} mode, {} workers, pin_workers={}) on {} ({} cores), {}",
        if plan.quick { "quick" } else { "full" },
        workers,
        plan.pin,
        machine.cpu,
        machine.cores,
        machine.rustc
    );
    println!();
    print!("{}", text_table(&rows));
    println!();
    let report = json_report(&rows, &machine, &plan);
    let pretty = serde_json::to_string_pretty(&report).map_err(|e| CommandError(format!("JSON report: {e}")))?;
    println!("{pretty}");
    eprintln!("[compare] total: {:.1} s", elapsed.as_secs_f64());

    let write = |path: &Path, text: &str| {
        std::fs::write(path, text).map_err(|e| CommandError(format!("cannot write {}: {e}", path.display())))
    };
    if let Some(path) = &args.json {
        write(path, &pretty)?;
    }
    let charts = if args.write_perf.is_some() || args.charts.is_some() {
        charts::charts(&rows, &plan).map_err(|e| CommandError(format!("charts: {e}")))?
    } else {
        Vec::new()
    };
    if let Some(dir) = &args.charts {
        write_charts(dir, &charts)?;
    }
    if let Some(path) = &args.write_perf {
        let dir = path.parent().unwrap_or(Path::new("")).join(charts::CHARTS_DIR);
        write_charts(&dir, &charts)?;
        write(path, &perf_md::perf_md(&rows, &charts, &machine, &plan, &report, elapsed))?;
        eprintln!("[compare] wrote {}", path.display());
    }
    Ok(())
}

/// Writes each chart to `dir` (created if missing) as `NAME.svg`.
fn write_charts(dir: &Path, charts: &[charts::Chart]) -> Result<(), CommandError> {
    if charts.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| CommandError(format!("cannot create {}: {e}", dir.display())))?;
    for chart in charts {
        let path = dir.join(format!("{}.svg", chart.name));
        std::fs::write(&path, &chart.svg).map_err(|e| CommandError(format!("cannot write {}: {e}", path.display())))?;
        eprintln!("[compare] wrote {}", path.display());
    }
    Ok(())
}
