//! Workload 8, WASM start and stop: what `switchyard run` does before its first message
//! and after its last, for a manifest of 1000 components that share one component file.
//! Start: parse the manifest, build the WASM host, compile, register (`run::load_code` and
//! `run::start_components`, the code `run` itself uses). Then one request to every
//! component, which instantiates it. Stop: shutdown, then drop the runtime and the host.
//!
//! The same runs are timed with every component compiling the file on its own (the rows
//! marked "before"), so what compiling each distinct file once saves shows in one report;
//! the two alternate run by run. Every run checks that each component answered its own
//! request with its own payload and that the shutdown accounting balances, or it panics
//! instead of reporting a figure.

use std::path::Path;
use std::time::{Duration, Instant};

use switchyard::{ComponentId, MessageEnvelope, MessageType, WasmComponent, WasmHost, codec, new_message_id};
use switchyard_bench_support::storage::TempDir;
use switchyard_bench_support::wasm::echo_component;
use switchyard_bench_support::workloads::Engine;

use super::Plan;
use super::report::{Check, Row, median};
use crate::manifest::Manifest;
use crate::run;

/// Components in the manifest.
pub(super) const COMPONENTS: usize = 1000;

/// How the component files are compiled.
#[derive(Clone, Copy)]
enum Compile {
    /// Each distinct file once (`run::load_code`).
    OncePerFile,
    /// Every component on its own (the rows marked "before").
    OncePerComponent,
}

/// The phases of one run.
struct Phases {
    start: Duration,
    requests: Duration,
    stop: Duration,
}

/// Milliseconds, the unit of the rows.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Phases {
    fn total(&self) -> f64 {
        ms(self.start + self.requests + self.stop)
    }
}

/// Writes the echo component and a manifest of `COMPONENTS` components that all name it.
fn write_manifest(dir: &TempDir, workers: usize, pin: bool) -> std::path::PathBuf {
    std::fs::write(dir.path().join("echo.wasm"), echo_component()).expect("write echo.wasm");
    let mut text = format!("[runtime]\nworkers = {workers}\npin_workers = {pin}\n\n");
    for i in 0..COMPONENTS {
        text.push_str(&format!("[[component]]\nid = \"c{i}\"\nfile = \"echo.wasm\"\n\n"));
    }
    let path = dir.path().join("manifest.toml");
    std::fs::write(&path, text).expect("write manifest");
    path
}

fn once(path: &Path, compile: Compile) -> Phases {
    let t = Instant::now();
    let manifest = Manifest::load(path).expect("the bench manifest loads");
    let host = WasmHost::build(run::wasm_config(&manifest), None, None).expect("the WASM host starts");
    let code: Vec<WasmComponent> = match compile {
        Compile::OncePerFile => run::load_code(&host, &manifest).expect("echo.wasm loads"),
        Compile::OncePerComponent => {
            manifest.components.iter().map(|c| host.load_file(&c.file).expect("echo.wasm loads")).collect()
        }
    };
    let rt = run::start_components(&host, &manifest, &code, false).expect("the components start");
    let start = t.elapsed();

    let t = Instant::now();
    let from = ComponentId::new("bench").expect("valid id");
    let replies: Vec<_> = manifest
        .components
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let payload = (i as u64).to_le_bytes().to_vec();
            let env = MessageEnvelope::new(
                MessageType::Request,
                from.clone(),
                c.id.clone(),
                payload,
                codec::RAW,
                new_message_id(),
            );
            rt.request(env, Duration::from_secs(60)).expect("request sent")
        })
        .collect();
    for (i, reply) in replies.into_iter().enumerate() {
        let reply = reply.wait().expect("each component replies");
        assert_eq!(reply.payload, (i as u64).to_le_bytes(), "c{i} answered with another payload");
    }
    let requests = t.elapsed();

    let t = Instant::now();
    let report = rt.shutdown(manifest.drain_timeout);
    assert!(report.stats.is_balanced(), "shutdown accounting does not balance: {:?}", report.stats);
    let lost = (report.stats.messages_dead_lettered, report.stats.routing_failures);
    assert_eq!(lost, (0, 0), "dead-lettered or refused messages: {:?}", report.stats);
    drop(rt);
    drop(host);
    let stop = t.elapsed();
    Phases { start, requests, stop }
}

/// Runs the workload: the phases with each file compiled once, and the total with every
/// component compiled on its own.
pub(super) fn start_and_stop(plan: &Plan) -> Vec<Row> {
    let dir = TempDir::new("start-stop");
    let path = write_manifest(&dir, plan.workers, plan.pin);
    once(&path, Compile::OncePerFile);
    let (mut now, mut before) = (Vec::new(), Vec::new());
    for _ in 0..plan.reps {
        now.push(once(&path, Compile::OncePerFile));
        before.push(once(&path, Compile::OncePerComponent));
    }
    let workload = "8 WASM start and stop";
    let n = COMPONENTS;
    let phase = |f: fn(&Phases) -> Duration| median(now.iter().map(|p| ms(f(p))).collect());
    let total_now = median(now.iter().map(Phases::total).collect());
    let total_before = median(before.iter().map(Phases::total).collect());
    vec![
        Row::new("start_stop", workload, format!("{n} components, one file: start, 1 request each, stop"), "ms")
            .target("< 2000 ms (ours)", Check::AtMost(2000.0))
            .set(Engine::Switchyard, total_now),
        Row::new("start_stop_start", workload, "of which start: parse, compile the file once, register", "ms")
            .set(Engine::Switchyard, phase(|p| p.start)),
        Row::new("start_stop_requests", workload, "of which 1 request each (instantiates it)", "ms")
            .set(Engine::Switchyard, phase(|p| p.requests)),
        Row::new("start_stop_stop", workload, "of which stop: shutdown, drop", "ms")
            .set(Engine::Switchyard, phase(|p| p.stop)),
        Row::new("start_stop_each", workload, "the same, compiling the file once per component (before)", "ms")
            .set(Engine::Switchyard, total_before),
        Row::new("start_stop_ratio", workload, "ratio before / now", "x")
            .set(Engine::Switchyard, total_before / total_now),
    ]
}
