//! The WASM executor: WAT guests (tests/wasm_guests) run through the same `Handler` seam,
//! on the same workers, under fuel, deadlines, memory caps and capabilities.
#![cfg(feature = "wasm")]

mod common;
mod wasm_guests;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use switchyard::{
    Capabilities, ComponentSpec, DeadLetterReason, GuestErrorCode, MessageEnvelope, RedbBackend, RegisterError,
    RequestError, RestartPolicy, Runtime, StorageQuota, StorageRights, TargetPattern, TrapKind, WasmConfig, WasmHost,
    WasmOptions, handler_fn,
};
use wasm_guests as guests;

fn host() -> WasmHost {
    WasmHost::new(WasmConfig::default()).expect("host starts")
}

/// Restarts at once, up to 100 times in 10 minutes.
fn options(caps: Capabilities) -> WasmOptions {
    WasmOptions::default()
        .capabilities(caps)
        .restart_policy(RestartPolicy::Permanent)
        .restart_limit(100, Duration::from_secs(600))
        .restart_backoff(Duration::ZERO, Duration::ZERO)
}

fn sends_to(targets: &[&str]) -> Capabilities {
    Capabilities { send: targets.iter().map(|t| TargetPattern::parse(t)).collect(), ..Capabilities::default() }
}

fn to_via_topic(to: &str, via: &str, payload: &[u8]) -> MessageEnvelope {
    req(&id(to), payload).with_topic(via)
}

fn ask(rt: &Runtime, env: MessageEnvelope) -> Vec<u8> {
    rt.request(env, WAIT).unwrap().wait().unwrap().payload
}

#[test]
fn wasm_echo_replies_to_a_host_request_and_records_fuel() {
    let (rt, _dl) = runtime(2);
    let host = host();
    let code = guests::load(&host, &guests::echo());
    assert!(!code.has_init());
    host.register(&rt.handle(), id("echo"), &code, WasmOptions::default()).unwrap();
    assert_eq!(ask(&rt, req(&id("echo"), b"hello wasm")), b"hello wasm");
    let s = host.stats(&id("echo")).unwrap();
    assert!(s.fuel_consumed > 0, "fuel per message is recorded");
    assert_eq!(s.total_traps(), 0);
    assert_eq!(s.instantiations, 1);
}

#[test]
fn detached_instance_calls_the_guest_on_the_callers_thread_under_the_same_limits() {
    let host = host();
    let echo = guests::load(&host, &guests::echo());
    let mut direct = host.instantiate_detached(&id("direct"), &echo, WasmOptions::default()).unwrap();
    assert_eq!(direct.call(&req(&id("direct"), b"abc")).unwrap(), Some(b"abc".to_vec()));
    assert_eq!(direct.call(&ff(&id("direct"), b"abc")).unwrap(), None, "no reply to fire-and-forget");
    let s = direct.stats();
    assert_eq!(s.calls, 2);
    assert!(s.fuel_consumed > 0);
    let spinner = guests::load(&host, &guests::spinner());
    let mut spin = host.instantiate_detached(&id("spin"), &spinner, WasmOptions::default()).unwrap();
    let e = spin.call(&ff(&id("spin"), b"")).unwrap_err();
    assert!(e.is_crash(), "running out of fuel is a trap: {e}");
    assert_eq!(e.trap_kind(), Some(TrapKind::OutOfFuel));
    assert!(e.to_string().starts_with("trap (out_of_fuel): "), "{e}");
    assert_eq!(spin.stats().traps_of(TrapKind::OutOfFuel), 1);
}

#[test]
fn counter_keeps_state_in_its_own_storage_namespace() {
    let (rt, _dl) = runtime(1);
    let store = Arc::new(RedbBackend::in_memory().unwrap());
    let host = WasmHost::with_storage(WasmConfig::default(), store.clone()).unwrap();
    let code = guests::load(&host, &guests::counter());
    let caps = Capabilities { storage: StorageRights::ReadWrite, ..Capabilities::default() };
    host.register(&rt.handle(), id("counter-a"), &code, options(caps.clone())).unwrap();
    host.register(&rt.handle(), id("counter-b"), &code, options(caps)).unwrap();
    for expected in 1u64..=3 {
        assert_eq!(ask(&rt, req(&id("counter-a"), b"")), expected.to_le_bytes());
    }
    assert_eq!(ask(&rt, req(&id("counter-b"), b"")), 1u64.to_le_bytes(), "b has its own namespace");
    assert_eq!(store.get("counter-a", b"count").unwrap(), Some(3u64.to_le_bytes().to_vec()));
    assert_eq!(store.get("counter-b", b"count").unwrap(), Some(1u64.to_le_bytes().to_vec()));
}

#[test]
fn storage_without_rights_is_a_typed_failure_not_a_trap() {
    let (rt, dead) = runtime(1);
    let store = Arc::new(RedbBackend::in_memory().unwrap());
    let host = WasmHost::with_storage(WasmConfig::default(), store).unwrap();
    let code = guests::load(&host, &guests::counter());
    host.register(&rt.handle(), id("nostore"), &code, options(Capabilities::default())).unwrap();
    rt.try_send(ff(&id("nostore"), b"")).unwrap();
    let d = recv(&dead);
    // The counter guest fails the message with its own handler-failed error.
    assert!(
        matches!(d.reason, DeadLetterReason::HandlerFailed { code: Some(GuestErrorCode::HandlerFailed), .. }),
        "{:?}",
        d.reason
    );
    let s = host.stats(&id("nostore")).unwrap();
    assert_eq!(s.total_traps(), 0);
    assert_eq!(s.capability_denials, 1);
}

#[test]
fn storage_quota_in_capabilities_is_enforced_with_a_typed_error() {
    // 1 + error-code index: see `STATUS_REPLY` and the WIT `error-code` enum.
    const QUOTA_EXCEEDED: u8 = 1 + 6;
    let (rt, _dl) = runtime(1);
    let store = Arc::new(RedbBackend::in_memory().unwrap());
    let host = WasmHost::with_storage(WasmConfig::default(), store.clone()).unwrap();
    let code = guests::load(&host, &guests::setter());
    let caps = Capabilities {
        storage: StorageRights::ReadWrite,
        storage_quota: Some(StorageQuota::new(16, 10)),
        ..Capabilities::default()
    };
    host.register(&rt.handle(), id("setter"), &code, options(caps)).unwrap();
    assert_eq!(ask(&rt, req(&id("setter"), b"0123456789")), [0], "key + value = 11 bytes fit in 16");
    assert_eq!(ask(&rt, req(&id("setter"), b"0123456789abcdef")), [QUOTA_EXCEEDED], "17 bytes do not");
    assert_eq!(store.get("setter", b"k").unwrap(), Some(b"0123456789".to_vec()), "the refused write left no trace");
    let s = host.stats(&id("setter")).unwrap();
    assert_eq!(s.total_traps(), 0, "a quota is a typed error to the guest, not a trap");
}

#[test]
fn storage_survives_a_trap_restart() {
    let (rt, _dl) = runtime(1);
    let store = Arc::new(RedbBackend::in_memory().unwrap());
    let host = WasmHost::with_storage(WasmConfig::default(), store).unwrap();
    let counter = guests::load(&host, &guests::counter());
    let caps = Capabilities { storage: StorageRights::ReadWrite, ..Capabilities::default() };
    host.register(&rt.handle(), id("c"), &counter, options(caps)).unwrap();
    assert_eq!(ask(&rt, req(&id("c"), b"")), 1u64.to_le_bytes());
    // Upgrade to a trapper, make it trap, upgrade back: the count is still there.
    host.upgrade(&id("c"), &guests::load(&host, &guests::trapper())).unwrap();
    assert!(rt.request(req(&id("c"), b"boom"), WAIT).unwrap().wait().is_err());
    host.upgrade(&id("c"), &counter).unwrap();
    assert_eq!(ask(&rt, req(&id("c"), b"")), 2u64.to_le_bytes());
}

#[test]
fn forwarder_sends_within_its_capabilities_and_gets_typed_errors_otherwise() {
    let (rt, _dl) = runtime(2);
    let probe_rx = payload_probe(&rt, "probe");
    let host = host();
    let code = guests::load(&host, &guests::forwarder());
    host.register(&rt.handle(), id("fwd"), &code, options(sends_to(&["probe", "ghost"]))).unwrap();
    assert_eq!(ask(&rt, to_via_topic("fwd", "probe", b"passed on")), [0]);
    assert_eq!(recv(&probe_rx), b"passed on");
    // error-code + 1: no-such-component = 1, permission-denied = 6, invalid-argument = 5
    assert_eq!(ask(&rt, to_via_topic("fwd", "ghost", b"x")), [1]);
    assert_eq!(ask(&rt, to_via_topic("fwd", "elsewhere", b"x")), [6]);
    assert_eq!(ask(&rt, to_via_topic("fwd", "not an id", b"x")), [5]);
    let s = host.stats(&id("fwd")).unwrap();
    assert_eq!(s.capability_denials, 1);
    assert_eq!(s.total_traps(), 0);
}

#[test]
fn wasm_to_wasm_request_round_trips_through_handle_callback() {
    let (rt, _dl) = runtime(2);
    let probe_rx = payload_probe(&rt, "probe");
    let host = host();
    host.register(&rt.handle(), id("echo"), &guests::load(&host, &guests::echo()), WasmOptions::default()).unwrap();
    let caps = Capabilities {
        request: vec![TargetPattern::Exact("echo".into()), TargetPattern::Exact("silent".into())],
        send: vec![TargetPattern::Exact("probe".into())],
        ..Capabilities::default()
    };
    host.register(&rt.handle(), id("asker"), &guests::load(&host, &guests::requester()), options(caps)).unwrap();
    assert_eq!(ask(&rt, to_via_topic("asker", "echo", b"via callback")), [0]);
    assert_eq!(recv(&probe_rx), b"via callback");
    // A target that never answers: the callback gets the timeout (error code 8).
    rt.register(id("silent"), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))).unwrap();
    assert_eq!(ask(&rt, to_via_topic("asker", "silent", b"?")), [0]);
    assert_eq!(recv(&probe_rx), [0xEE, 8]);
}

#[test]
fn subscriber_subscribes_in_init_and_receives_publications() {
    let (rt, _dl) = runtime(2);
    let probe_rx = payload_probe(&rt, "probe");
    let host = host();
    let sub = guests::load(&host, &guests::subscriber());
    assert!(sub.has_init());
    let caps = Capabilities {
        subscribe: vec![TargetPattern::Exact("news".into())],
        send: vec![TargetPattern::Exact("probe".into())],
        ..Capabilities::default()
    };
    host.register(&rt.handle(), id("sub"), &sub, options(caps)).unwrap();
    let pub_caps = Capabilities { publish: vec![TargetPattern::Prefix("new".into())], ..Capabilities::default() };
    host.register(&rt.handle(), id("pub"), &guests::load(&host, &guests::publisher()), options(pub_caps)).unwrap();
    // The guest's init subscribes on its worker before any message: once a message went
    // through the guest to the probe, the subscription is in place.
    rt.try_send(ff(&id("sub"), b"ready?")).unwrap();
    assert_eq!(recv(&probe_rx), b"ready?");
    assert_eq!(rt.subscribers("news"), vec![id("sub")]);
    assert_eq!(ask(&rt, req(&id("pub"), b"headline")), [0]);
    assert_eq!(recv(&probe_rx), b"headline");
}

#[test]
fn spinner_runs_out_of_fuel_and_only_that_call_traps() {
    let (rt, dead) = runtime(1);
    let host = host();
    host.register(&rt.handle(), id("spin"), &guests::load(&host, &guests::spinner()), options(Capabilities::default()))
        .unwrap();
    host.register(&rt.handle(), id("echo"), &guests::load(&host, &guests::echo()), WasmOptions::default()).unwrap();
    rt.try_send(ff(&id("spin"), b"")).unwrap();
    let d = recv(&dead);
    assert!(matches!(d.reason, DeadLetterReason::Trapped { kind: TrapKind::OutOfFuel, .. }), "{:?}", d.reason);
    let s = host.stats(&id("spin")).unwrap();
    assert_eq!(s.traps_of(TrapKind::OutOfFuel), 1);
    assert!(s.fuel_consumed >= WasmOptions::default().fuel_per_message);
    // The worker is free for others.
    assert_eq!(ask(&rt, req(&id("echo"), b"still here")), b"still here");
}

#[test]
fn spinner_without_fuel_metering_hits_its_wall_clock_deadline() {
    let (rt, dead) = runtime(1);
    let host = WasmHost::new(WasmConfig { fuel_metering: false, ..WasmConfig::default() }).unwrap();
    let o = options(Capabilities::default()).deadline(Duration::from_millis(30));
    host.register(&rt.handle(), id("spin"), &guests::load(&host, &guests::spinner()), o).unwrap();
    rt.try_send(ff(&id("spin"), b"")).unwrap();
    let d = recv(&dead);
    assert!(matches!(d.reason, DeadLetterReason::Trapped { kind: TrapKind::Deadline, .. }), "{:?}", d.reason);
    assert_eq!(host.stats(&id("spin")).unwrap().traps_of(TrapKind::Deadline), 1);
}

#[test]
fn memory_hog_is_stopped_at_its_memory_cap() {
    memory_hog_is_stopped(host());
}

#[test]
fn without_the_pooling_allocator_guests_run_and_memory_caps_still_hold() {
    let host = WasmHost::new(WasmConfig { pooling: false, ..WasmConfig::default() }).expect("host starts");
    let (rt, _dl) = runtime(1);
    host.register(&rt.handle(), id("echo"), &guests::load(&host, &guests::echo()), WasmOptions::default()).unwrap();
    assert_eq!(ask(&rt, req(&id("echo"), b"on demand")), b"on demand");
    memory_hog_is_stopped(host);
}

fn memory_hog_is_stopped(host: WasmHost) {
    let (rt, dead) = runtime(1);
    let o = options(Capabilities::default()).memory_limit(1 << 20);
    host.register(&rt.handle(), id("hog"), &guests::load(&host, &guests::memory_hog()), o).unwrap();
    rt.try_send(ff(&id("hog"), b"")).unwrap();
    let d = recv(&dead);
    assert!(matches!(d.reason, DeadLetterReason::Trapped { kind: TrapKind::ResourceLimit, .. }), "{:?}", d.reason);
    assert_eq!(host.stats(&id("hog")).unwrap().traps_of(TrapKind::ResourceLimit), 1);
}

#[test]
fn trap_dead_letters_the_message_restarts_the_instance_and_keeps_the_mailbox() {
    let (rt, dead) = runtime(1);
    let host = host();
    host.register(&rt.handle(), id("t"), &guests::load(&host, &guests::trapper()), options(Capabilities::default()))
        .unwrap();
    // Queue a trap and a normal request behind it, then check both outcomes.
    let boom = rt.request(req(&id("t"), b"boom"), WAIT).unwrap();
    let after = rt.request(req(&id("t"), b"after"), WAIT).unwrap();
    let failure = boom.wait().unwrap_err();
    assert!(
        matches!(
            &failure,
            RequestError::Failed(DeadLetterReason::Trapped { kind: TrapKind::Unreachable, attempts: 1, .. })
        ),
        "{failure:?}"
    );
    assert!(failure.to_string().contains("handled like a panic"), "the reason says what became of the instance");
    assert_eq!(after.wait().unwrap().payload, b"after");
    assert!(matches!(recv(&dead).reason, DeadLetterReason::Trapped { kind: TrapKind::Unreachable, .. }));
    let s = host.stats(&id("t")).unwrap();
    assert_eq!(s.traps_of(TrapKind::Unreachable), 1);
    assert_eq!(s.instantiations, 2, "a fresh instance after the trap");
    assert_eq!(rt.component_stats(&id("t")).unwrap().restarts, 1);
}

#[test]
fn hostile_guest_never_crashes_the_host_and_every_message_is_accounted_for() {
    let rt = Runtime::builder().workers(1).pin_workers(false).build().unwrap();
    let _probe_rx = payload_probe(&rt, "probe");
    let host = host();
    let caps = Capabilities { max_payload_bytes: Some(1024), ..sends_to(&["probe"]) };
    host.register(&rt.handle(), id("hostile"), &guests::load(&host, &guests::hostile()), options(caps)).unwrap();
    // Bad pointers, invalid UTF-8, impossible lengths and discriminants trap the guest (its
    // instance is replaced); well-formed but unacceptable arguments come back as typed errors.
    for mode in [1u8, 2, 3, 7] {
        let outcome = rt.request(req(&id("hostile"), &[mode]), WAIT).unwrap().wait();
        assert!(
            matches!(outcome, Err(RequestError::Failed(DeadLetterReason::Trapped { kind: TrapKind::InvalidData, .. }))),
            "mode {mode} traps the guest, not the host: {outcome:?}"
        );
    }
    assert_eq!(ask(&rt, req(&id("hostile"), &[4])), [4], "too-large");
    assert_eq!(ask(&rt, req(&id("hostile"), &[5])), [5], "invalid-argument");
    assert_eq!(ask(&rt, req(&id("hostile"), &[6])), [6], "permission-denied");
    let s = host.stats(&id("hostile")).unwrap();
    assert_eq!(s.total_traps(), 4, "{s:?}");
    assert_eq!(s.traps_of(TrapKind::InvalidData), 4, "{s:?}");
    let report = rt.shutdown(WAIT);
    assert!(report.stats.is_balanced(), "{report:?}");
}

#[test]
fn storage_quota_on_a_host_without_storage_fails_the_registration() {
    let (rt, _dl) = runtime(1);
    let host = host();
    let code = guests::load(&host, &guests::setter());
    let caps = Capabilities {
        storage: StorageRights::ReadWrite,
        storage_quota: Some(StorageQuota::new(16, 10)),
        ..Capabilities::default()
    };
    let refused = host.register(&rt.handle(), id("setter"), &code, options(caps));
    assert!(matches!(refused, Err(RegisterError::InvalidConfig(_))), "{refused:?}");
    assert!(!rt.contains(&id("setter")));
}

#[test]
fn refused_registration_leaves_the_running_components_quota_alone() {
    let (rt, _dl) = runtime(1);
    let store = Arc::new(RedbBackend::in_memory().unwrap());
    let host = WasmHost::with_storage(WasmConfig::default(), store.clone()).unwrap();
    let code = guests::load(&host, &guests::setter());
    let with_quota = |max_bytes| Capabilities {
        storage: StorageRights::ReadWrite,
        storage_quota: Some(StorageQuota::new(max_bytes, 10)),
        ..Capabilities::default()
    };
    host.register(&rt.handle(), id("setter"), &code, options(with_quota(16))).unwrap();
    let refused = host.register(&rt.handle(), id("setter"), &code, options(with_quota(2)));
    assert!(matches!(refused, Err(RegisterError::AlreadyRegistered(_))), "{refused:?}");
    assert_eq!(store.usage("setter").unwrap().quota, StorageQuota::new(16, 10));
    assert_eq!(ask(&rt, req(&id("setter"), b"0123456789")), [0], "11 bytes fit the running quota of 16");
}

#[test]
fn wasm_requester_gets_the_responders_error_code_in_its_callback() {
    // Indexes of the WIT `error-code` enum.
    const TOO_LARGE: u8 = 3;
    const HANDLER_FAILED: u8 = 9;
    let (rt, dead) = runtime(2);
    let probe_rx = payload_probe(&rt, "probe");
    let host = host();
    host.register(
        &rt.handle(),
        id("refuser"),
        &guests::load(&host, &guests::refuser()),
        options(Capabilities::default()),
    )
    .unwrap();
    host.register(
        &rt.handle(),
        id("trapper"),
        &guests::load(&host, &guests::trapper()),
        options(Capabilities::default()),
    )
    .unwrap();
    let caps = Capabilities { request: vec![TargetPattern::Any], ..sends_to(&["probe"]) };
    host.register(&rt.handle(), id("asker"), &guests::load(&host, &guests::requester()), options(caps)).unwrap();
    assert_eq!(ask(&rt, to_via_topic("asker", "refuser", &[TOO_LARGE])), [0]);
    assert_eq!(recv(&probe_rx), [0xEE, TOO_LARGE], "the responder's own code");
    let refused = recv(&dead).reason;
    assert_eq!(
        refused,
        DeadLetterReason::HandlerFailed { error: "refused".into(), code: Some(GuestErrorCode::TooLarge), attempts: 1 }
    );
    assert_eq!(ask(&rt, to_via_topic("asker", "trapper", b"boom")), [0]);
    assert_eq!(recv(&probe_rx), [0xEE, HANDLER_FAILED], "a trap is a failed handler");
    assert!(matches!(recv(&dead).reason, DeadLetterReason::Trapped { kind: TrapKind::Unreachable, .. }));
}
