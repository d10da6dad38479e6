//! The messaging workloads (1 routing cost, 2 fire-and-forget latency, 3 throughput,
//! 4 request-response, 7 scale and memory), each measured on switchyard against the async
//! baseline and the raw crossbeam floor, driven through `bench-support`'s fixtures.
//!
//! Memory per component is measured in a child process of this binary
//! (`switchyard bench --memory-probe ENGINE N WORKERS`): both sides of that exchange live
//! here, [`probe_in_child`] in the parent and [`memory_probe_child`] in the child.

use std::process::Command;

use hdrhistogram::Histogram;
use switchyard_bench_support::workloads::{Engine, Fixture, FixtureConfig, memory_probe};

use super::Plan;
use super::report::{Check, Row, median};
use crate::component::CommandError;

/// A fixture of `engine` with the plan's workers and pinning.
fn fixture(plan: &Plan, engine: Engine, components: usize, mailbox_capacity: Option<usize>) -> Fixture {
    let config = FixtureConfig {
        workers: plan.workers,
        pin_workers: plan.pin,
        components,
        mailbox_capacity,
        busy_spin: false,
        eager_mailboxes: false,
        timing_metrics: false,
    };
    Fixture::new(engine, config)
}

/// A latency histogram from 1 ns to 60 s, three significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

/// Workload 1: ns per send from one thread into an idle registered component.
pub(super) fn routing(plan: &Plan) -> Vec<Row> {
    let row = Row::new("routing", "1 routing cost", "send into idle component, 1 thread", "ns/op")
        .target("<= 1.5x floor (ours); seed <= 220 ns", Check::RatioToFloorAtMost(1.5));
    let iters = plan.routing_iters / 5;
    let mut rows = vec![alternating(plan, row, &Engine::ALL, iters, Fixture::routing)];
    // Sends through a resolved reference, and batched sends, against the same raw-channel
    // floor (one send per message there).
    let sides = [Engine::Switchyard, Engine::Floor];
    let row = Row::new("routing_ref", "1 routing cost", "send through a ComponentRef (resolved once)", "ns/op")
        .target("<= 1.5x floor (issue)", Check::RatioToFloorAtMost(1.5));
    rows.push(alternating(plan, row, &sides, iters, Fixture::routing_ref));
    for (id, batch) in [("routing_batch16", 16), ("routing_batch256", 256)] {
        let row =
            Row::new(id, "1 routing cost", format!("send_batch of {batch} into idle component, per message"), "ns/op")
                .target("<= 1.2x floor (issue)", Check::RatioToFloorAtMost(1.2));
        rows.push(alternating(plan, row, &sides, iters, |f, n| f.routing_batched(n, batch)));
    }
    rows.push(routing_metrics_ratio(plan, iters));
    rows
}

/// The routing row with metrics on against metrics off, alternating run by run in this
/// process: "on" is a Prometheus recorder installed, the timing histograms recording, and a
/// scrape (`record_metrics` and a render) every 10 ms while the sends run.
fn routing_metrics_ratio(plan: &Plan, iters: u64) -> Row {
    use std::sync::atomic::{AtomicBool, Ordering};
    static PROMETHEUS: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    let prometheus =
        PROMETHEUS.get_or_init(|| metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().ok());
    let config = |timing_metrics| FixtureConfig {
        workers: plan.workers,
        pin_workers: plan.pin,
        components: 1,
        mailbox_capacity: Some(8192),
        busy_spin: false,
        eager_mailboxes: false,
        timing_metrics,
    };
    let mut off = Fixture::new(Engine::Switchyard, config(false));
    let mut on = Fixture::new(Engine::Switchyard, config(true));
    let (stop, scraping) = (AtomicBool::new(false), AtomicBool::new(false));
    let rt = on.handle().expect("a switchyard fixture");
    let ratio = std::thread::scope(|s| {
        // Scrapes only while the "on" runtime's sends run, so their cost falls on it alone.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if scraping.load(Ordering::Relaxed) {
                    rt.record_metrics();
                    if let Some(p) = prometheus {
                        let _ = p.render();
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        });
        for f in [&mut off, &mut on] {
            f.routing(4096);
        }
        let ratios: Vec<f64> = (0..5)
            .map(|_| {
                let a = off.routing(iters).as_secs_f64();
                scraping.store(true, Ordering::Relaxed);
                let b = on.routing(iters).as_secs_f64();
                scraping.store(false, Ordering::Relaxed);
                b / a
            })
            .collect();
        stop.store(true, Ordering::Relaxed);
        median(ratios)
    });
    Row::new("routing_metrics_ratio", "1 routing cost", "send into idle component: metrics on / off", "x")
        .target("<= 1.1x (issue)", Check::AtMost(1.1))
        .set(Engine::Switchyard, ratio)
}

/// A routing row: one fixture per engine, all alive at once, their runs alternating (so a
/// slow phase of a shared machine falls on every engine alike rather than on one of them);
/// after a warm-up, the median of 5 runs of `iters` sends each, in ns per send.
fn alternating(
    plan: &Plan,
    mut row: Row,
    engines: &[Engine],
    iters: u64,
    run: impl Fn(&mut Fixture, u64) -> std::time::Duration,
) -> Row {
    let mut fixtures: Vec<Fixture> = engines.iter().map(|&engine| fixture(plan, engine, 1, Some(8192))).collect();
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); fixtures.len()];
    for f in &mut fixtures {
        run(f, 4096);
    }
    for _ in 0..5 {
        for (f, runs) in fixtures.iter_mut().zip(&mut runs) {
            runs.push(run(f, iters).as_nanos() as f64 / iters as f64);
        }
    }
    for (engine, runs) in engines.iter().zip(runs) {
        row = row.set(*engine, median(runs));
    }
    row
}

/// Workload 2: fire-and-forget latency percentiles, one producer, one component, idle system.
pub(super) fn fire_and_forget(plan: &Plan) -> Vec<Row> {
    let mut rows = vec![
        Row::new("ff_p50", "2 fire-and-forget latency", "p50, send -> handler", "ns")
            .target("< 300 ns (seed)", Check::AtMost(300.0)),
        Row::new("ff_p99", "2 fire-and-forget latency", "p99", "ns"),
        Row::new("ff_p999", "2 fire-and-forget latency", "p99.9", "ns"),
    ];
    for engine in Engine::ALL {
        let mut f = fixture(plan, engine, 1, None);
        let mut h = histogram();
        f.fire_and_forget(200, &mut h);
        h.reset();
        f.fire_and_forget(plan.latency_samples, &mut h);
        for (row, q) in rows.iter_mut().zip([0.5, 0.99, 0.999]) {
            row.values[engine as usize] = Some(h.value_at_quantile(q) as f64);
        }
        rows[0].latencies[engine as usize] = Some(h);
    }
    // One busy-spinning worker against a raw channel whose one consumer spins on
    // `try_recv`: what a host that dedicates cores gets.
    let mut row = Row::new("ff_spin_p50", "2 fire-and-forget latency", "p50, one busy-spinning worker", "ns")
        .target("<= 1.5x floor (issue; floor: a spinning consumer)", Check::RatioToFloorAtMost(1.5));
    for engine in [Engine::Switchyard, Engine::Floor] {
        let config = FixtureConfig {
            workers: 1,
            pin_workers: plan.pin,
            components: 1,
            mailbox_capacity: None,
            busy_spin: true,
            eager_mailboxes: false,
            timing_metrics: false,
        };
        let mut f = Fixture::new(engine, config);
        let mut h = histogram();
        f.fire_and_forget(200, &mut h);
        h.reset();
        f.fire_and_forget(plan.latency_samples, &mut h);
        row = row.set(engine, h.value_at_quantile(0.5) as f64);
    }
    rows.push(row);
    rows
}

/// Workload 3: throughput with P producers over M components.
pub(super) fn throughput(plan: &Plan) -> Vec<Row> {
    let mut rows = Vec::new();
    for (id, m) in [("tput_1", 1usize), ("tput_100", 100), ("tput_10k", 10_000)] {
        let metric = format!("{} producers -> {m} component{}", plan.producers, if m == 1 { "" } else { "s" });
        let mut row =
            Row::new(id, "3 throughput", metric, "M msg/s").target(">= 4.7 M msg/s (seed)", Check::AtLeast(4.7));
        for engine in Engine::ALL {
            let mut f = fixture(plan, engine, if engine == Engine::Floor { 0 } else { m }, None);
            f.throughput(plan.throughput_messages / 10, plan.producers, m);
            let runs = (0..plan.reps).map(|_| {
                let t = f.throughput(plan.throughput_messages, plan.producers, m);
                plan.throughput_messages as f64 / t.as_secs_f64() / 1e6
            });
            row = row.set(engine, median(runs.collect()));
        }
        rows.push(row);
    }
    // Batched producers: batches of 64 through resolved references, against the same
    // raw-channel floor (one send per message there).
    let metric = format!("{} producers -> 100 components, send_batch of 64 through ComponentRefs", plan.producers);
    let mut row = Row::new("tput_100_batch64", "3 throughput", metric, "M msg/s")
        .target(">= 4.7 M msg/s (issue)", Check::AtLeast(4.7));
    for engine in [Engine::Switchyard, Engine::Floor] {
        let m = 100;
        let mut f = fixture(plan, engine, if engine == Engine::Floor { 0 } else { m }, None);
        f.throughput_batched(plan.throughput_messages / 10, plan.producers, m, 64);
        let runs = (0..plan.reps).map(|_| {
            let t = f.throughput_batched(plan.throughput_messages, plan.producers, m, 64);
            plan.throughput_messages as f64 / t.as_secs_f64() / 1e6
        });
        row = row.set(engine, median(runs.collect()));
    }
    rows.push(row);
    rows
}

/// Workload 4: request-response round trip from the host.
pub(super) fn request_response(plan: &Plan) -> Vec<Row> {
    let mut rows = vec![
        Row::new("rr_p50", "4 request-response", "p50 round trip from host", "ns")
            .target("<= 1.5x floor (issue); seed ~560 ns", Check::RatioToFloorAtMost(1.5)),
        Row::new("rr_p99", "4 request-response", "p99 round trip", "ns"),
    ];
    for engine in Engine::ALL {
        let mut f = fixture(plan, engine, 1, None);
        let mut h = histogram();
        f.request_response(200, &mut h);
        h.reset();
        f.request_response(plan.latency_samples, &mut h);
        for (row, q) in rows.iter_mut().zip([0.5, 0.99]) {
            row.values[engine as usize] = Some(h.value_at_quantile(q) as f64);
        }
        rows[0].latencies[engine as usize] = Some(h);
    }
    rows.extend(typed_ask(plan));
    rows
}

/// Workload 4, typed: a typed `ask` round trip (a `u64` encoded as JSON both ways, decoded
/// into a `u64`, to a `Component` echo) beside a raw request (8 bytes, codec raw, to a raw
/// echo), both through a `ComponentRef` of one runtime, in alternating batches; every answer
/// is checked against what was asked. The ratio is what the typed layer adds to a round trip.
fn typed_ask(plan: &Plan) -> Vec<Row> {
    use std::time::{Duration, Instant};

    use switchyard::{Component, Context, HandlerError, MessageEnvelope, codec};

    #[derive(Default)]
    struct Echo;
    impl Component for Echo {
        type Message = u64;
        type Reply = u64;
        fn handle(&mut self, _ctx: &mut Context<'_>, n: u64) -> Result<u64, HandlerError> {
            Ok(n)
        }
    }

    const TIMEOUT: Duration = Duration::from_secs(10);
    let rt = switchyard::Runtime::builder().workers(plan.workers).pin_workers(plan.pin).build().expect("runtime");
    let typed = rt.spawn("typed-echo", Echo::default).expect("typed echo");
    let raw = rt.spawn("raw-echo", || switchyard::handler_fn(|_c, m| Ok(Some(m.payload.clone())))).expect("raw echo");
    let host = switchyard::ComponentId::new("host").expect("id");
    let (mut typed_h, mut raw_h) = (histogram(), histogram());
    let batch = (plan.latency_samples / 10).max(100);
    let mut n = 0u64;
    // Round 0 warms up; rounds 1..=10 are measured.
    for round in 0..=10 {
        if round == 1 {
            typed_h.reset();
            raw_h.reset();
        }
        for _ in 0..batch {
            n += 1;
            let start = Instant::now();
            let answer: u64 = typed.ask_within(&n, TIMEOUT).wait().expect("typed answer");
            typed_h.saturating_record(start.elapsed().as_nanos() as u64);
            assert_eq!(answer, n, "wrong typed answer");
        }
        for _ in 0..batch {
            n += 1;
            let env = MessageEnvelope::request(host.clone(), raw.id().clone(), n.to_le_bytes().to_vec(), codec::RAW);
            let start = Instant::now();
            let answer = raw.request(env, TIMEOUT).expect("sent").wait().expect("raw answer");
            raw_h.saturating_record(start.elapsed().as_nanos() as u64);
            assert_eq!(answer.payload, n.to_le_bytes(), "wrong raw answer");
        }
    }
    assert!(rt.shutdown(TIMEOUT).is_balanced(), "every ask accounted for");
    let (typed_p50, raw_p50) = (typed_h.value_at_quantile(0.5) as f64, raw_h.value_at_quantile(0.5) as f64);
    vec![
        Row::new("ask_typed_p50", "4 request-response", "p50 typed ask round trip (JSON u64 both ways)", "ns")
            .set(Engine::Switchyard, typed_p50),
        Row::new("ask_typed_ratio", "4 request-response", "typed ask p50 / raw request p50, same runtime", "x")
            .set(Engine::Switchyard, typed_p50 / raw_p50),
    ]
}

/// Workload 7: memory per idle component, and throughput with 100 000 registered components.
pub(super) fn scale_and_memory(plan: &Plan) -> Vec<Row> {
    let n = plan.scale_components;
    let mut mem = Row::new("mem", "7 scale and memory", format!("RSS per idle component ({n} registered)"), "KB")
        .target("<= 4 KB (issue); seed < 50 KB", Check::AtMost(4.0));
    for engine in [Engine::Switchyard, Engine::Baseline] {
        mem = mem.set(engine, probe_in_child(engine.name(), n, plan.workers) / 1024.0);
    }
    let mem_eager = Row::new(
        "mem_eager",
        "7 scale and memory",
        format!("RSS per idle component ({n} registered), mailboxes allocated at registration"),
        "KB",
    )
    .target("< 50 KB (seed)", Check::AtMost(50.0))
    .set(Engine::Switchyard, probe_in_child("switchyard-eager", n, plan.workers) / 1024.0);
    let mut small = Row::new("scale_100", "7 scale and memory", "throughput, 100 registered, all active", "M msg/s");
    let mut all =
        Row::new("scale_all", "7 scale and memory", format!("throughput, {n} registered, all active"), "M msg/s");
    let mut few =
        Row::new("scale_few", "7 scale and memory", format!("throughput, {n} registered, 100 active"), "M msg/s");
    let mut first = Row::new(
        "scale_first",
        "7 scale and memory",
        format!("throughput, {n} registered, first two messages to each (the first allocates its mailbox)"),
        "M msg/s",
    );
    let messages = plan.throughput_messages;
    for engine in [Engine::Switchyard, Engine::Baseline] {
        let rate = |messages: u64, f: &mut Fixture, active: usize| {
            messages as f64 / f.throughput(messages, plan.producers, active).as_secs_f64() / 1e6
        };
        let mut f_small = fixture(plan, engine, 100, None);
        let mut f_big = fixture(plan, engine, n, None);
        f_small.throughput(messages / 10, plan.producers, 100);
        // The first pass over fresh components: each producer walks every component once
        // (the producers start one component apart), and each switchyard mailbox is
        // allocated by its first message. Then a second pass, so that the timed runs below
        // measure the steady state.
        let pass = (plan.producers * n) as u64;
        first = first.set(engine, rate(pass, &mut f_big, n));
        f_big.throughput(pass.max(messages / 10), plan.producers, n);
        f_big.throughput(messages / 10, plan.producers, 100);
        // The three cases alternate run by run, so a slow phase of a shared machine falls on
        // both sides of each ratio alike.
        let (mut r_small, mut r_all, mut r_few) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..plan.reps {
            r_small.push(rate(messages, &mut f_small, 100));
            r_all.push(rate(messages, &mut f_big, n));
            r_few.push(rate(messages, &mut f_big, 100));
        }
        small = small.set(engine, median(r_small));
        all = all.set(engine, median(r_all));
        few = few.set(engine, median(r_few));
    }
    // Lazily allocated mailboxes (the default) against mailboxes allocated at registration,
    // 100 components all active, alternating run by run in this process.
    let lazy_ratio = {
        let config = |eager_mailboxes| FixtureConfig {
            workers: plan.workers,
            pin_workers: plan.pin,
            components: 100,
            mailbox_capacity: None,
            busy_spin: false,
            eager_mailboxes,
            timing_metrics: false,
        };
        let mut eager = Fixture::new(Engine::Switchyard, config(true));
        let mut lazy = Fixture::new(Engine::Switchyard, config(false));
        for f in [&mut eager, &mut lazy] {
            f.throughput(messages / 10, plan.producers, 100);
        }
        let ratios = (0..plan.reps.max(5)).map(|_| {
            let e = eager.throughput(messages, plan.producers, 100).as_secs_f64();
            let l = lazy.throughput(messages, plan.producers, 100).as_secs_f64();
            e / l
        });
        Row::new("scale_lazy_ratio", "7 scale and memory", "throughput, 100 components: lazy / eager mailboxes", "x")
            .target(">= 0.95x (issue: no regression beyond noise)", Check::AtLeast(0.95))
            .set(Engine::Switchyard, median(ratios.collect()))
    };
    let ratio = |a: &Row| {
        let mut r = Row::new("", "7 scale and memory", "", "x");
        for engine in [Engine::Switchyard, Engine::Baseline] {
            if let (Some(x), Some(y)) = (a.values[engine as usize], small.values[engine as usize]) {
                r = r.set(engine, x / y);
            }
        }
        r.target(">= 0.8x (ours)", Check::AtLeast(0.8))
    };
    let mut ratio_all = ratio(&all);
    ratio_all.id = "scale_ratio_all";
    ratio_all.metric = format!("ratio {n} registered (all active) / 100");
    let mut ratio_few = ratio(&few);
    ratio_few.id = "scale_ratio_few";
    ratio_few.metric = format!("ratio {n} registered (100 active) / 100");
    vec![mem, mem_eager, small, all, few, first, ratio_all, ratio_few, lazy_ratio]
}

/// The parent side of the memory probe: runs this binary as `bench --memory-probe` and
/// reads the bytes per component it prints.
fn probe_in_child(engine: &str, n: usize, workers: usize) -> f64 {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .args(["bench", "--memory-probe", engine, &n.to_string(), &workers.to_string()])
        .output()
        .expect("memory probe");
    assert!(out.status.success(), "memory probe failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find_map(|l| l.strip_prefix("memory-probe ")).expect("probe output");
    line.trim().parse().expect("bytes per component")
}

/// The child side of the memory probe: registers `n` idle components on `engine` and
/// prints the bytes per component for the parent to read.
///
/// # Errors
/// An engine name other than `switchyard`, `switchyard-eager` (mailboxes allocated at
/// registration) or `baseline`.
pub fn memory_probe_child(engine: &str, n: usize, workers: usize) -> Result<(), CommandError> {
    let (engine, eager) = match engine {
        "switchyard" => (Engine::Switchyard, false),
        "switchyard-eager" => (Engine::Switchyard, true),
        "baseline" => (Engine::Baseline, false),
        other => {
            return Err(CommandError(format!(
                "--memory-probe needs switchyard, switchyard-eager or baseline, not {other:?}"
            )));
        }
    };
    let probe = memory_probe(engine, workers, n, eager);
    println!("memory-probe {}", probe.bytes_per_component());
    Ok(())
}
