//! Workload 5, WASM dispatch: fire-and-forget messages into a WASM echo component through
//! the runtime (fuel metering on or off), against the floor of calling the same component
//! directly on one thread ([`switchyard::WasmHost::instantiate_detached`]: the same
//! envelope conversion, fuel budget and deadline, no routing and no thread crossing).
//!
//! Every run verifies that the guest handled each message: the runtime's per-component
//! `handled` count and the guest's call count must both reach the number sent, with no
//! failure, or the run panics instead of reporting a figure.

use std::time::{Duration, Instant};

use switchyard::{
    ComponentId, MessageEnvelope, MessageType, Runtime, WasmComponent, WasmConfig, WasmHost, WasmOptions, codec,
    new_message_id,
};

#[path = "../../tests/wasm_guests/mod.rs"]
mod guests;

/// The echo guest as a component binary (it replies to every request with its payload),
/// for workloads that write it to a file.
pub fn echo_component() -> Vec<u8> {
    guests::component_bytes(&guests::echo())
}

/// The echo guest's core module as WebAssembly text (before componentizing), for
/// workloads that build larger guests around it.
pub fn echo_core_module() -> String {
    guests::echo()
}

/// Mailbox capacity of the echo component (the producer waits when it is full).
const MAILBOX: usize = 4096;

fn host(fuel: bool) -> (WasmHost, WasmComponent) {
    let host = WasmHost::new(WasmConfig { fuel_metering: fuel, ..WasmConfig::default() }).expect("WASM host starts");
    let echo = guests::load(&host, &guests::echo());
    (host, echo)
}

fn envelope(from: &ComponentId, to: &ComponentId, i: u64) -> MessageEnvelope {
    MessageEnvelope::new(
        MessageType::FireAndForget,
        from.clone(),
        to.clone(),
        i.to_le_bytes().to_vec(),
        codec::RAW,
        new_message_id(),
    )
}

/// Sends `n` messages (built before the clock starts) from one producer thread into a WASM
/// echo component on a runtime with `workers` workers; returns the time until the guest
/// handled the last one.
pub fn through_runtime(n: u64, fuel: bool, workers: usize, pin: bool) -> Duration {
    let (host, echo) = host(fuel);
    let rt = Runtime::builder().workers(workers).pin_workers(pin).build().expect("runtime starts");
    let (from, to) = (ComponentId::new("bench-host").expect("id"), ComponentId::new("wasm-echo").expect("id"));
    let mut options = WasmOptions::default();
    options.component.mailbox_capacity = MAILBOX;
    host.register(&rt.handle(), to.clone(), &echo, options).expect("echo registers");
    // Warm-up: instantiation and the first call happen before the clock starts.
    rt.send_timeout(envelope(&from, &to, 0), Duration::from_secs(10)).expect("warm-up send");
    wait_handled(&rt, &to, 1);
    let envelopes: Vec<_> = (1..=n).map(|i| envelope(&from, &to, i)).collect();
    let start = Instant::now();
    for env in envelopes {
        rt.send_timeout(env, Duration::from_secs(10)).expect("mailbox drains");
    }
    wait_handled(&rt, &to, n + 1);
    let elapsed = start.elapsed();
    let wasm = host.stats(&to).expect("echo stats");
    assert_eq!(wasm.calls, n + 1, "the guest ran once per message");
    assert_eq!(wasm.total_traps(), 0);
    assert_eq!(fuel, wasm.fuel_consumed > 0, "fuel is metered exactly when enabled");
    rt.shutdown(Duration::from_secs(5));
    drop(rt);
    drop(host);
    elapsed
}

fn wait_handled(rt: &Runtime, id: &ComponentId, n: u64) {
    loop {
        let s = rt.component_stats(id).expect("echo is registered");
        assert_eq!(s.failed, 0, "echo failed a message");
        if s.handled >= n {
            assert_eq!(s.handled, n, "handled more than was sent");
            return;
        }
        std::thread::yield_now();
    }
}

/// The floor: `n` calls of the same echo component straight through wasmtime on this
/// thread. Envelopes are built before the clock starts, as for [`through_runtime`].
pub fn direct_calls(n: u64, fuel: bool) -> Duration {
    let (host, echo) = host(fuel);
    let (from, to) = (ComponentId::new("bench-host").expect("id"), ComponentId::new("wasm-echo").expect("id"));
    let mut instance = host.instantiate_detached(&to, &echo, WasmOptions::default()).expect("instantiates");
    instance.call(&envelope(&from, &to, 0)).expect("warm-up call");
    let envelopes: Vec<_> = (1..=n).map(|i| envelope(&from, &to, i)).collect();
    let start = Instant::now();
    for env in &envelopes {
        let reply = instance.call(env).expect("echo call");
        assert!(reply.is_none(), "no reply to fire-and-forget");
    }
    let elapsed = start.elapsed();
    assert_eq!(instance.stats().calls, n + 1);
    elapsed
}

/// Request round trips (ns, in send order) to a native echo on the general worker of a
/// runtime with one general worker and `io_workers` I/O workers, while (if `writer`) a
/// WASM guest with write storage rights handles a stream of messages, each a durable write
/// (an fsync) to a redb file. With I/O workers the guest is homed on one of them; without,
/// it shares the echo's worker.
pub fn round_trips_beside_a_durable_writer(samples: usize, io_workers: usize, writer: bool) -> Vec<u64> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = crate::storage::TempDir::new("io-isolation");
    let store = Arc::new(switchyard::RedbBackend::open(dir.path().join("w.redb")).expect("redb opens"));
    let host = WasmHost::with_storage(WasmConfig::default(), store).expect("WASM host starts");
    let counter = guests::load(&host, &guests::counter());
    let rt = Runtime::builder().workers(1).io_workers(io_workers).build().expect("runtime starts");
    let (me, echo, writer_id) = (
        ComponentId::new("bench-host").expect("id"),
        ComponentId::new("echo").expect("id"),
        ComponentId::new("writer").expect("id"),
    );
    rt.register(
        echo.clone(),
        switchyard::ComponentSpec::new(|| switchyard::handler_fn(|_c, m| Ok(Some(m.payload.clone())))),
    )
    .expect("echo registers");
    let options = WasmOptions::default().capabilities(switchyard::Capabilities {
        storage: switchyard::StorageRights::ReadWrite,
        ..switchyard::Capabilities::default()
    });
    host.register(&rt.handle(), writer_id.clone(), &counter, options).expect("writer registers");
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = writer.then(|| {
        let (h, stop, me, to) = (rt.handle(), stop.clone(), me.clone(), writer_id.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                // Keeps the writer's mailbox from running dry; a full one just waits.
                let _ = h.send_timeout(envelope(&me, &to, i), Duration::from_millis(50));
            }
        })
    });
    if writer {
        // The writer is busy before the first sample (the feeder keeps it fed, so it may
        // have handled more than one by the time we look).
        while rt.component_stats(&writer_id).expect("writer registered").handled == 0 {
            std::thread::yield_now();
        }
    }
    let mut samples_ns = Vec::with_capacity(samples);
    for i in 0..samples as u64 {
        let req = MessageEnvelope::new(
            MessageType::Request,
            me.clone(),
            echo.clone(),
            i.to_le_bytes().to_vec(),
            codec::RAW,
            new_message_id(),
        );
        let start = Instant::now();
        let reply = rt.request(req, Duration::from_secs(10)).expect("request sent").wait().expect("echo replies");
        samples_ns.push(start.elapsed().as_nanos() as u64);
        assert_eq!(reply.payload, i.to_le_bytes(), "the echo's reply");
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(f) = feeder {
        f.join().expect("feeder ends");
        let stats = rt.component_stats(&writer_id).expect("writer registered");
        assert!(stats.handled > 0 && stats.failed == 0, "the writer wrote: {stats:?}");
    }
    samples_ns
}
