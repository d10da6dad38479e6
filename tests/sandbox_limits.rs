//! What a guest can make the host hold, tried by real guests (the hostile Rust guest of
//! tests/guests/hostile, built by cargo for wasm32-wasip2; WAT where the attack is the
//! component's own shape): error text, memories, core instances and pool slots,
//! subscriptions, requests in flight, log lines to a sink that stalls, and grants that
//! overlap another component's. Each is bounded, refused with a typed error, and counted.
#![cfg(feature = "wasm")]

mod common;
mod wasm_guests;

use std::time::Duration;

use common::*;
use switchyard::{
    Capabilities, ComponentSpec, DirGrant, GuestErrorCode, LoadError, LogSink, MessageEnvelope, MessageType,
    RegisterError, RestartPolicy, TargetPattern, TrapKind, WasiGrants, WasmComponent, WasmConfig, WasmHost,
    WasmOptions, codec, handler_fn, new_message_id,
};

fn hostile(host: &WasmHost) -> Option<WasmComponent> {
    let file = common::guests::hostile()?;
    Some(host.load_file(file).expect("the hostile guest loads"))
}

fn no_pool() -> WasmConfig {
    WasmConfig { pooling: false, ..WasmConfig::default() }
}

fn op(to: &str, op: serde_json::Value) -> MessageEnvelope {
    let payload = serde_json::to_vec(&op).expect("json");
    MessageEnvelope::new(MessageType::Request, id("host"), id(to), payload, codec::JSON, new_message_id())
}

fn generous() -> WasmOptions {
    WasmOptions::default().fuel_per_message(u64::MAX / 2).deadline(Duration::from_secs(20)).memory_limit(64 << 20)
}

#[test]
fn a_guests_error_text_is_kept_at_its_bound_with_its_code() {
    let host = WasmHost::new(no_pool()).expect("host");
    let Some(code) = hostile(&host) else { return };
    let mut instance = host.instantiate_detached(&id("hostile"), &code, generous()).expect("instantiates");
    let fail = serde_json::json!({"Fail": {"text": "x", "len": 8 << 20}});
    let err = instance.call(&op("hostile", fail)).expect_err("the guest fails");
    assert_eq!(err.guest_code(), Some(GuestErrorCode::HandlerFailed), "the code is kept");
    let bound = switchyard::text::MAX_FOREIGN_TEXT_BYTES;
    assert!(err.message().len() <= bound + 32, "{} bytes kept", err.message().len());
    assert!(err.message().ends_with(&format!("... ({} bytes cut)", (8 << 20) - bound)), "{}", &err.message()[bound..]);
}

/// A guest's component with `extra` more instances of a core module with a memory of
/// `pages` pages (or none), made by its own code: the module and its instantiations appended to the
/// component's top level (after the guest's own, which the handler export still names).
fn with_extra_instances(guest: &[u8], extra: u32, pages: Option<u64>) -> Vec<u8> {
    use wasm_encoder::{InstanceSection, MemorySection, MemoryType, Module, ModuleArg, ModuleSection};
    // The appended module's index: after the top level's own core modules. Each module and
    // component, nested ones included, opens with `Version` and closes with `End`.
    let mut modules = 0u32;
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(guest) {
        match payload.expect("a component") {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::ModuleSection { .. } if depth == 1 => modules += 1,
            wasmparser::Payload::End(_) => depth -= 1,
            _ => {}
        }
    }
    let mut module = Module::new();
    if let Some(pages) = pages {
        let mut memories = MemorySection::new();
        let memory = MemoryType { minimum: pages, maximum: None, memory64: false, shared: false, page_size_log2: None };
        memories.memory(memory);
        module.section(&memories);
    }
    let mut tail = wasm_encoder::Component::new();
    tail.section(&ModuleSection(&module));
    let mut core = InstanceSection::new();
    for _ in 0..extra {
        core.instantiate(modules, Vec::<(&str, ModuleArg)>::new());
    }
    tail.section(&core);
    let tail = tail.finish();
    // A component's sections follow its 8-byte preamble.
    [guest, &tail[8..]].concat()
}

/// Core instances a flat component makes (each `instantiate` at its top level).
fn top_level_instances(component: &[u8]) -> u32 {
    let mut depth = 0usize;
    let mut count = 0;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload.expect("a component") {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth -= 1,
            wasmparser::Payload::InstanceSection(r) if depth == 1 => {
                count += r.into_iter().filter(|i| matches!(i, Ok(wasmparser::Instance::Instantiate { .. }))).count();
            }
            _ => {}
        }
    }
    u32::try_from(count).expect("a small count")
}

#[test]
fn a_component_of_more_core_instances_than_the_host_allows_does_not_load() {
    let host = WasmHost::new(no_pool()).expect("host");
    let echo = wasm_guests::component_bytes(&wasm_guests::echo());
    // 500 instances of a 256-page (16 MiB) memory: 8 GiB under a 16 MiB cap before.
    let hog = with_extra_instances(&echo, 500, Some(256));
    match host.load(&hog) {
        Err(LoadError::OverLimits { what: "core instances", count, limit: 100, .. }) => assert!(count >= 500),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a component of 500 core instances loaded"),
    }
    // Within the bound it loads and runs, its handler the nested guest's.
    let fine = host.load(&with_extra_instances(&echo, 3, Some(1))).expect("loads");
    let mut instance = host.instantiate_detached(&id("fine"), &fine, WasmOptions::default()).expect("instantiates");
    assert_eq!(instance.call(&req(&id("fine"), b"hi")).expect("answers"), Some(b"hi".to_vec()));
}

#[test]
fn the_memory_cap_holds_for_all_of_an_instances_memories_together() {
    let host = WasmHost::new(no_pool()).expect("host");
    let echo = wasm_guests::component_bytes(&wasm_guests::echo());
    // Four memories of 80 pages (5 MiB) each: each under the 16 MiB cap, together over it.
    let code = host.load(&with_extra_instances(&echo, 4, Some(80))).expect("loads");
    let err = host
        .instantiate_detached(&id("many"), &code, WasmOptions::default().memory_limit(16 << 20))
        .err()
        .expect("refused at instantiation");
    assert_eq!(err.trap_kind(), Some(TrapKind::ResourceLimit), "{err}");
    assert!(err.message().contains("the cap is 16777216 bytes"), "{err}");
    host.instantiate_detached(&id("many"), &code, WasmOptions::default().memory_limit(32 << 20))
        .expect("under a cap that holds them all");
}

#[test]
fn a_component_that_does_not_fit_beside_the_others_in_the_pool_is_refused_and_theirs_stay() {
    // Four component instances, 16 core instances, 8 memories, 8 tables in all.
    let config = WasmConfig { pooling: true, pool_instances: 4, pool_memory_bytes: 4 << 20, ..WasmConfig::default() };
    let host = WasmHost::new(config).expect("host");
    let (rt, _dead) = runtime(1);
    let echo = wasm_guests::component_bytes(&wasm_guests::echo());
    let small = host.load(&echo).expect("loads");
    let options = || {
        WasmOptions::default()
            .memory_limit(1 << 20)
            .restart_policy(RestartPolicy::Permanent)
            .restart_backoff(Duration::ZERO, Duration::ZERO)
    };
    host.register(&rt.handle(), id("victim"), &small, options()).expect("registers");
    // Alone it would fit (16 core instances); beside the victim's it does not.
    let hog = with_extra_instances(&echo, 16 - top_level_instances(&echo), None);
    let hog = host.load(&hog).expect("loads: within the per-component bound");
    let err = host.register(&rt.handle(), id("hog"), &hog, options()).expect_err("does not fit beside the victim");
    assert!(matches!(err, RegisterError::PoolFull(_)), "{err}");
    assert!(err.to_string().contains("core instances"), "{err}");
    // The victim restarts (a crash, then a message) in slots that stayed its own.
    let trapper = host.load(&wasm_guests::component_bytes(&wasm_guests::trapper())).expect("loads");
    host.register(&rt.handle(), id("trapper"), &trapper, options()).expect("a second small one fits");
    host.upgrade(&id("victim"), &small).expect("a new instance of the victim");
    let answered = rt.request(req(&id("victim"), b"still here"), WAIT).expect("accepted").wait();
    assert_eq!(answered.expect("answered").payload, b"still here");
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn subscriptions_and_requests_in_flight_are_bounded_per_component() {
    let host = WasmHost::new(no_pool()).expect("host");
    let Some(code) = hostile(&host) else { return };
    let (rt, _dead) = runtime(2);
    // Takes requests and never answers them: each stays pending until its timeout.
    rt.register(id("silent"), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))).expect("silent");
    let caps = Capabilities {
        subscribe: vec![TargetPattern::Any],
        request: vec![TargetPattern::Any],
        ..Capabilities::default()
    };
    let options = generous()
        .capabilities(caps)
        .max_subscriptions(100)
        .max_pending_requests(8)
        .max_request_timeout(Duration::from_millis(300));
    host.register(&rt.handle(), id("hostile"), &code, options).expect("registers");
    let ask = |what: serde_json::Value| -> String {
        let reply = rt.request(op("hostile", what), WAIT).expect("accepted").wait().expect("answered");
        serde_json::from_slice(&reply.payload).expect("a string")
    };
    let subscribed = ask(serde_json::json!({"Subscribe": {"prefix": "t", "count": 5000}}));
    assert!(subscribed.starts_with("refused after 100: QuotaExceeded"), "{subscribed}");
    assert_eq!(ask(serde_json::json!({"Subscribe": {"prefix": "t", "count": 100}})), "ok 100", "the same topics again");
    let asked = ask(serde_json::json!({"Ask": {"to": "silent", "count": 5000, "timeout_ms": u32::MAX}}));
    assert!(asked.starts_with("refused after 8: QuotaExceeded"), "{asked}");
    assert!(rt.pending_requests() <= 8, "{} pending", rt.pending_requests());
    // Each timeout, cut to 300 ms, reaches the guest's callback and frees its place.
    until("the requests time out and their outcomes reach the guest", || rt.pending_requests() == 0);
    until("the callbacks ran", || {
        let s = host.stats(&id("hostile")).expect("stats");
        s.calls >= 3 + 8
    });
    assert_eq!(ask(serde_json::json!({"Ask": {"to": "silent", "count": 8, "timeout_ms": 300}})), "ok 8");
    let denials = host.stats(&id("hostile")).expect("stats").capability_denials;
    assert_eq!(denials, 2, "each refusal counted");
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn a_log_sink_that_stalls_stalls_no_worker_and_the_lines_it_misses_are_counted() {
    let gate = Gate::new();
    let released = gate.clone();
    let (lines_tx, lines) = crossbeam_channel::unbounded::<String>();
    // The operator's pipe that stopped being read: the first line blocks until the gate opens.
    let stalled: LogSink = std::sync::Arc::new(move |_id: &switchyard::ComponentId, _level: &str, line: &str| {
        static FIRST: std::sync::Once = std::sync::Once::new();
        FIRST.call_once(|| released.wait());
        let _ = lines_tx.send(line.to_string());
    });
    let host = WasmHost::build(no_pool(), None, Some(stalled)).expect("host");
    let Some(code) = hostile(&host) else { return };
    let (rt, _dead) = runtime(1);
    host.register(&rt.handle(), id("logger"), &code, generous().max_output_bytes(1 << 20)).expect("registers");
    rt.register(id("echo"), ComponentSpec::new(|| handler_fn(|_c, m| Ok(Some(m.payload.clone()))))).expect("echo");
    let logged = rt.request(op("logger", serde_json::json!({"Log": {"count": 6000, "len": 10}})), WAIT);
    let logged = logged.expect("accepted").wait().expect("the guest's call ends while its lines wait");
    assert_eq!(serde_json::from_slice::<String>(&logged.payload).expect("a string"), "ok logged 6000");
    let echoed = rt.request(req(&id("echo"), b"not stalled"), WAIT).expect("accepted").wait();
    assert_eq!(echoed.expect("the one worker is free").payload, b"not stalled");
    let dropped = host.stats(&id("logger")).expect("stats").log_lines_dropped;
    assert!(dropped >= 6000 - 4096 - 1, "{dropped} dropped");
    gate.open(1);
    assert!(host.flush_logs(WAIT), "the sink caught up");
    let got: Vec<String> = lines.try_iter().collect();
    let report = format!("[{dropped} log line(s) dropped: the host's log sink fell behind]");
    assert!(got.contains(&report), "the drop is reported once the sink catches up");
    assert_eq!(got.len() as u64, 6000 - dropped + 1, "every line not dropped, then the report");
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn two_components_of_a_host_cannot_hold_overlapping_grants_unless_both_read_only() {
    let host = WasmHost::new(no_pool()).expect("host");
    let code = host.load(&wasm_guests::component_bytes(&wasm_guests::echo())).expect("loads");
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("overlap-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("pub")).expect("dirs");
    let (rt, _dead) = runtime(1);
    let with_dir = |host_dir: std::path::PathBuf, writable: bool| {
        let wasi = WasiGrants {
            dirs: vec![DirGrant { host: host_dir, guest: "/d".into(), writable }],
            ..WasiGrants::default()
        };
        WasmOptions::default().capabilities(Capabilities { wasi, ..Capabilities::default() })
    };
    host.register(&rt.handle(), id("w"), &code, with_dir(dir.clone(), true)).expect("the writer");
    let err = host.register(&rt.handle(), id("r"), &code, with_dir(dir.join("pub"), false)).expect_err("inside w's");
    assert!(err.to_string().contains("overlaps w's"), "{err}");
    rt.unregister(&id("w")).expect("unregistered");
    until("w's claim is released", || {
        host.register(&rt.handle(), id("r"), &code, with_dir(dir.join("pub"), false)).is_ok()
    });
    host.register(&rt.handle(), id("r2"), &code, with_dir(dir.clone(), false)).expect("read-only over read-only");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn a_guest_that_drops_or_hoards_kept_requests_fails_the_dropped_at_once_and_frees_the_expired() {
    let host = WasmHost::new(no_pool()).expect("host");
    let Some(code) = hostile(&host) else { return };
    let (rt, _dead) = runtime(2);
    host.register(&rt.handle(), id("hostile"), &code, generous()).expect("registers");
    let failure = |outcome: Result<MessageEnvelope, switchyard::RequestError>| match outcome {
        Err(switchyard::RequestError::Failed(switchyard::DeadLetterReason::HandlerFailed { error, .. })) => error,
        other => panic!("expected a failure, got {other:?}"),
    };
    // Dropped: failed as the call returns, not timed out at the deadline.
    let abandoned = rt.request(op("hostile", serde_json::json!("Abandon")), WAIT).expect("accepted").wait();
    assert_eq!(failure(abandoned), "the deferred reply was dropped without an answer");
    // Hoarded to the host's bound, each given up by its requester at its deadline (in rounds
    // the mailbox holds) ...
    let short = Duration::from_millis(50);
    for _ in 0..1024 / 64 {
        let asks: Vec<_> =
            (0..64).map(|_| rt.request(op("hostile", serde_json::json!("Hoard")), short).expect("accepted")).collect();
        for ask in asks {
            assert_eq!(ask.wait().map(|_| ()), Err(switchyard::RequestError::Timeout));
        }
    }
    // ... then the next is kept too (ending at its deadline), not refused over quota.
    let next = rt.request(op("hostile", serde_json::json!("Hoard")), short).expect("accepted").wait();
    assert_eq!(
        next.map(|_| ()),
        Err(switchyard::RequestError::Timeout),
        "expired kept requests still filled the quota"
    );
    assert!(rt.shutdown(WAIT).is_balanced());
}
