//! The epoch ticker that enforces WASM deadlines lives as long as anything that needs it:
//! dropping the `WasmHost` before the runtime leaves deadlines enforced, and the ticker
//! stops once the runtime (its factories and instances) is gone too. This binary holds a
//! single test, so the process's threads are not disturbed by other tests.
#![cfg(feature = "wasm")]

mod common;
mod wasm_guests;

use std::time::Duration;

use common::*;
use switchyard::{DeadLetterReason, TrapKind, WasmConfig, WasmHost, WasmOptions};
use wasm_guests as guests;

/// Threads named `switchyard-epoch` (Linux shows the first 15 bytes of a thread's name).
fn tickers() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("Linux /proc is available")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "switchyard-epoc")
        .count()
}

#[test]
fn deadlines_hold_after_the_host_is_dropped_and_the_ticker_stops_with_the_last_instance() {
    assert_eq!(tickers(), 0);
    let (rt, dead) = runtime(1);
    let host = WasmHost::new(WasmConfig { fuel_metering: false, ..WasmConfig::default() }).unwrap();
    let options = WasmOptions::default().deadline(Duration::from_millis(30));
    host.register(&rt.handle(), id("spin"), &guests::load(&host, &guests::spinner()), options).unwrap();
    drop(host);
    assert_eq!(tickers(), 1, "the registered component keeps the ticker");
    rt.try_send(ff(&id("spin"), b"")).unwrap();
    let d = recv(&dead);
    assert!(matches!(d.reason, DeadLetterReason::Trapped { kind: TrapKind::Deadline, .. }), "{:?}", d.reason);
    rt.shutdown(WAIT);
    drop(rt);
    assert_eq!(tickers(), 0, "the ticker stops with the last component");
}
