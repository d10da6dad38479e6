//! The WASM executor: guests run through the same `Handler` seam on the same workers.

mod common;
mod wasm_guests;

use common::*;
use switchyard::{WasmConfig, WasmHost, WasmOptions};

fn host() -> WasmHost {
    WasmHost::new(WasmConfig::default()).expect("host starts")
}

#[test]
fn wasm_echo_replies_to_a_host_request() {
    let (rt, _dl) = runtime(2);
    let host = host();
    let code = wasm_guests::load(&host, &wasm_guests::echo());
    host.register(&rt.handle(), id("echo"), &code, WasmOptions::default()).unwrap();
    let reply = rt.request(req(&id("echo"), b"hello wasm"), WAIT).unwrap().wait().unwrap();
    assert_eq!(reply.payload, b"hello wasm");
    let s = host.stats(&id("echo")).unwrap();
    assert!(s.fuel_consumed > 0);
    assert_eq!(s.total_traps(), 0);
}
