//! Health checks and readiness: `RuntimeHandle::health` asks a component ahead of its
//! mailbox and answers for it when it cannot (restarting, stopped, busy, unknown);
//! `RuntimeHandle::readiness` sums up the runtime from each component's state.

mod common;
#[cfg(feature = "wasm")]
mod wasm_guests;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use crossbeam_channel::{Sender, unbounded};
use switchyard::{
    ComponentSpec, Context, Handler, HandlerError, Health, HealthStatus, MessageEnvelope, RestartPolicy, SendError,
    Supervision, handler_fn,
};

/// A handler that reports every call (`"health"`, `"handle"`) and answers checks with
/// `health`.
struct Recorder {
    calls: Sender<&'static str>,
    health: Health,
}

impl Handler for Recorder {
    fn handle(&mut self, _ctx: &mut Context<'_>, _msg: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
        self.calls.send("handle").unwrap();
        Ok(None)
    }

    fn health(&mut self, _ctx: &mut Context<'_>) -> Health {
        self.calls.send("health").unwrap();
        self.health.clone()
    }
}

fn recorder(calls: &Sender<&'static str>, health: Health) -> ComponentSpec {
    let calls = calls.clone();
    ComponentSpec::new(move || Recorder { calls: calls.clone(), health: health.clone() })
}

/// Panics on every message; restarted after `backoff`, or never (`None`: `Temporary`).
fn crasher(backoff: Option<Duration>) -> ComponentSpec {
    let spec = ComponentSpec::new(|| handler_fn(|_ctx, _msg| panic!("crash on purpose")));
    match backoff {
        Some(backoff) => {
            spec.supervision(Supervision { backoff_initial: backoff, backoff_max: backoff, ..Supervision::default() })
        }
        None => spec.restart_policy(RestartPolicy::Temporary),
    }
}

#[test]
fn health_check_reaches_a_component_whose_mailbox_is_full_before_its_backlog() {
    let (rt, _dl) = runtime(1);
    let gate = Gate::new();
    // The only worker is held, so "c" gets nothing done while its mailbox fills.
    hold_worker(&rt, &gate);
    let (calls_tx, calls) = unbounded();
    rt.register(id("c"), recorder(&calls_tx, Health::Healthy).mailbox_capacity(4)).unwrap();
    for n in 0..4u8 {
        rt.try_send(ff(&id("c"), &[n])).unwrap();
    }
    assert!(matches!(rt.try_send(ff(&id("c"), b"more")), Err(SendError::Full(_))));
    assert_eq!(rt.readiness().full, vec![id("c")]);

    // A zero timeout leaves the probe in the lane without waiting for it.
    assert_eq!(rt.health(&id("c"), Duration::ZERO), HealthStatus::NoAnswer);
    gate.open(1);
    assert_eq!(rt.health(&id("c"), WAIT), HealthStatus::Healthy);
    assert_eq!(recv(&calls), "health", "the probe is answered before the backlog");
    until("the backlog is handled", || rt.component_stats(&id("c")).unwrap().handled == 4);
    let rest: Vec<_> = calls.try_iter().collect();
    assert_eq!(rest.iter().filter(|c| **c == "handle").count(), 4, "{rest:?}");
}

#[test]
fn a_handler_busy_past_the_timeout_gives_no_answer_and_answers_once_free() {
    let (rt, _dl) = runtime(1);
    let gate = Gate::new();
    let started = blocked_component(&rt, "busy", 4, &gate);
    rt.try_send(ff(&id("busy"), b"slow")).unwrap();
    recv(&started);
    assert_eq!(rt.health(&id("busy"), Duration::from_millis(20)), HealthStatus::NoAnswer);
    gate.open(1);
    assert_eq!(rt.health(&id("busy"), WAIT), HealthStatus::Healthy);
}

#[test]
fn health_all_asks_each_component_once_and_answers_in_the_order_asked() {
    let (rt, _dl) = runtime(2);
    let (calls_tx, calls) = unbounded();
    rt.register(id("a"), recorder(&calls_tx, Health::Healthy)).unwrap();
    rt.register(id("b"), recorder(&calls_tx, Health::unhealthy("disk full"))).unwrap();
    let answers = rt.health_all(&[id("b"), id("nobody"), id("a")], WAIT);
    assert_eq!(
        answers,
        [HealthStatus::Unhealthy { reason: "disk full".into() }, HealthStatus::NoSuchComponent, HealthStatus::Healthy]
    );
    assert_eq!(calls.try_iter().filter(|c| *c == "health").count(), 2, "one check each");
}

#[test]
fn an_unhealthy_handler_is_reported_with_its_reason_and_keeps_running() {
    let (rt, _dl) = runtime(1);
    let (calls_tx, calls) = unbounded();
    rt.register(id("c"), recorder(&calls_tx, Health::unhealthy("database unreachable"))).unwrap();
    assert_eq!(rt.health(&id("c"), WAIT), HealthStatus::Unhealthy { reason: "database unreachable".into() });
    assert_eq!(recv(&calls), "health");
    rt.try_send(ff(&id("c"), b"still works")).unwrap();
    assert_eq!(recv(&calls), "handle");
    assert_eq!(rt.component_stats(&id("c")).unwrap().restarts, 0, "an unhealthy answer is not a crash");
}

#[test]
fn a_health_check_that_panics_is_unhealthy_and_replaces_the_handler_without_a_restart() {
    let (rt, _dl) = runtime(1);
    let made = Arc::new(AtomicUsize::new(0));
    struct PanicsOnce(usize);
    impl Handler for PanicsOnce {
        fn handle(&mut self, _ctx: &mut Context<'_>, _m: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
            Ok(None)
        }
        fn health(&mut self, _ctx: &mut Context<'_>) -> Health {
            assert!(self.0 > 0, "first handler's check fails");
            Health::Healthy
        }
    }
    let m = made.clone();
    // Stopped at its first crash: a check that panics must not count as one.
    let spec = ComponentSpec::new(move || PanicsOnce(m.fetch_add(1, Ordering::SeqCst)))
        .supervision(Supervision { max_restarts: 0, ..Supervision::default() });
    rt.register(id("c"), spec).unwrap();
    match rt.health(&id("c"), WAIT) {
        HealthStatus::Unhealthy { reason } => assert!(reason.contains("first handler's check fails"), "{reason}"),
        other => panic!("expected unhealthy, got {other:?}"),
    }
    assert_eq!(rt.health(&id("c"), WAIT), HealthStatus::Healthy, "the fresh handler answers");
    assert_eq!(made.load(Ordering::SeqCst), 2, "replaced once");
    assert_eq!(rt.component_stats(&id("c")).unwrap().restarts, 0, "not counted as a restart");
}

#[test]
fn a_component_in_restart_backoff_is_reported_restarting_without_being_asked() {
    let (rt, _dl) = runtime(1);
    rt.register(id("c"), crasher(Some(Duration::from_secs(3600)))).unwrap();
    rt.try_send(ff(&id("c"), b"boom")).unwrap();
    until("the component waits out its backoff", || rt.readiness().restarting == vec![id("c")]);
    assert_eq!(rt.health(&id("c"), WAIT), HealthStatus::Restarting);
    let readiness = rt.readiness();
    assert!(!readiness.ready);
    assert_eq!((readiness.registered, readiness.running), (1, 0));
    // Else shutdown's drain would wait for the backoff (the timer owns the component).
    rt.unregister(&id("c")).unwrap();
}

#[test]
fn a_stopped_component_is_reported_stopped_and_an_unregistered_one_unknown() {
    let (rt, _dl) = runtime(1);
    rt.register(id("c"), crasher(None)).unwrap();
    assert_eq!(rt.health(&id("c"), WAIT), HealthStatus::Healthy, "healthy while it runs");
    rt.try_send(ff(&id("c"), b"boom")).unwrap();
    until("the component stopped", || rt.component_stats(&id("c")).unwrap().closed);
    assert_eq!(rt.health(&id("c"), WAIT), HealthStatus::Stopped);
    assert_eq!(rt.readiness().stopped, vec![id("c")]);
    rt.unregister(&id("c")).unwrap();
    assert_eq!(rt.health(&id("c"), WAIT), HealthStatus::NoSuchComponent);
    assert_eq!(rt.health(&id("nobody"), WAIT), HealthStatus::NoSuchComponent);
}

#[test]
fn probes_waiting_in_the_lane_of_a_component_that_stops_are_answered_stopped() {
    let (rt, _dl) = runtime(1);
    let gate = Gate::new();
    hold_worker(&rt, &gate);
    // Its start fails, and a Temporary component is not restarted: it stops at its first
    // turn, with the probe in its lane.
    let spec = ComponentSpec::try_new(|| Err(HandlerError::new("no start"))).restart_policy(RestartPolicy::Temporary);
    rt.register(id("c"), spec).unwrap();
    assert_eq!(rt.health(&id("c"), Duration::ZERO), HealthStatus::NoAnswer);
    let waiter = {
        let rt = rt.handle();
        std::thread::spawn(move || rt.health(&id("c"), WAIT))
    };
    gate.open(1);
    // Whether it waited for the probe or came after the stop, the answer is the same.
    assert_eq!(waiter.join().unwrap(), HealthStatus::Stopped);
}

#[test]
fn readiness_counts_running_restarting_stopped_and_full_components() {
    let (rt, _dl) = runtime(1);
    assert!(rt.readiness().ready, "an empty runtime is ready");
    rt.register(id("stops"), crasher(None)).unwrap();
    rt.try_send(ff(&id("stops"), b"boom")).unwrap();
    rt.register(id("restarts"), crasher(Some(Duration::from_secs(3600)))).unwrap();
    rt.try_send(ff(&id("restarts"), b"boom")).unwrap();
    until("one stopped, one restarting", || {
        let r = rt.readiness();
        r.stopped == vec![id("stops")] && r.restarting == vec![id("restarts")]
    });
    let gate = Gate::new();
    hold_worker(&rt, &gate);
    let (calls_tx, _calls) = unbounded();
    rt.register(id("full"), recorder(&calls_tx, Health::Healthy).mailbox_capacity(1)).unwrap();
    rt.try_send(ff(&id("full"), b"1")).unwrap();

    let r = rt.readiness();
    assert_eq!((r.registered, r.running), (4, 2), "{r:?}");
    assert_eq!(r.stopped, vec![id("stops")]);
    assert_eq!(r.restarting, vec![id("restarts")]);
    assert_eq!(r.full, vec![id("full")]);
    assert!(!r.ready && !r.shutting_down);

    gate.open(1);
    until("the full mailbox drained", || rt.readiness().full.is_empty());
    rt.unregister(&id("stops")).unwrap();
    rt.unregister(&id("restarts")).unwrap();
    assert!(rt.readiness().ready, "{:?}", rt.readiness());
    rt.shutdown(WAIT);
    let r = rt.readiness();
    assert!(r.shutting_down && !r.ready);
    assert_eq!(r.stopped.len(), 2, "shutdown closed every component: {r:?}");
}

#[cfg(feature = "wasm")]
mod wasm {
    use super::*;
    use switchyard::{WasmConfig, WasmHost, WasmOptions};
    use wasm_guests::{self as guests, HealthAnswer};

    fn host() -> WasmHost {
        WasmHost::new(WasmConfig::default()).expect("host starts")
    }

    /// Restarts at once.
    fn options() -> WasmOptions {
        WasmOptions::default()
            .restart_limit(100, Duration::from_secs(600))
            .restart_backoff(Duration::ZERO, Duration::ZERO)
    }

    #[test]
    fn a_guest_without_a_health_export_is_healthy_while_it_runs_and_stopped_once_it_stops() {
        let (rt, _dl) = runtime(1);
        let host = host();
        let code = guests::load(&host, &guests::trapper());
        assert!(!code.has_health());
        let options = options().restart_policy(RestartPolicy::Temporary);
        host.register(&rt.handle(), id("g"), &code, options).unwrap();
        assert_eq!(rt.health(&id("g"), WAIT), HealthStatus::Healthy);
        rt.try_send(ff(&id("g"), b"boom")).unwrap(); // traps; Temporary: not restarted
        until("the guest stopped", || rt.component_stats(&id("g")).unwrap().closed);
        assert_eq!(rt.health(&id("g"), WAIT), HealthStatus::Stopped);
        assert!(!rt.health(&id("g"), WAIT).is_healthy());
        assert_eq!(rt.readiness().stopped, vec![id("g")]);
    }

    #[test]
    fn a_guest_health_export_that_returns_an_error_is_unhealthy_with_its_text() {
        let (rt, _dl) = runtime(1);
        let host = host();
        let code = guests::load(&host, &guests::with_health(HealthAnswer::Error, false));
        assert!(code.has_health() && !code.has_init());
        host.register(&rt.handle(), id("g"), &code, options()).unwrap();
        assert_eq!(rt.health(&id("g"), WAIT), HealthStatus::Unhealthy { reason: "backend down".into() });
        let reply = rt.request(req(&id("g"), b"still here"), WAIT).unwrap().wait().unwrap();
        assert_eq!(reply.payload, b"still here", "an unhealthy guest keeps running");
        assert_eq!(rt.component_stats(&id("g")).unwrap().restarts, 0);
    }

    #[test]
    fn a_guest_health_export_that_traps_is_unhealthy_and_the_guest_goes_on_on_a_fresh_instance() {
        let (rt, _dl) = runtime(1);
        let host = host();
        let code = guests::load(&host, &guests::with_health(HealthAnswer::Trap, false));
        host.register(&rt.handle(), id("g"), &code, options()).unwrap();
        match rt.health(&id("g"), WAIT) {
            HealthStatus::Unhealthy { reason } => assert!(reason.contains("unreachable"), "{reason}"),
            other => panic!("expected unhealthy, got {other:?}"),
        }
        let reply = rt.request(req(&id("g"), b"fresh"), WAIT).unwrap().wait().unwrap();
        assert_eq!(reply.payload, b"fresh");
        let stats = host.stats(&id("g")).unwrap();
        assert_eq!(stats.instantiations, 2, "the trapped instance was replaced");
        assert_eq!(stats.total_traps(), 1);
        assert_eq!(rt.component_stats(&id("g")).unwrap().restarts, 0, "not counted as a restart");
    }

    /// A health endpoint that anyone can poll must not be a way to stop a component: a
    /// guest whose check always traps, under a supervision that stops it at its second
    /// crash, stays up however often it is asked.
    #[test]
    fn health_checks_that_keep_failing_cannot_stop_a_component() {
        let (rt, _dl) = runtime(1);
        let host = host();
        let code = guests::load(&host, &guests::with_health(HealthAnswer::Trap, false));
        let options = options().restart_policy(RestartPolicy::Permanent).restart_limit(1, Duration::from_secs(600));
        host.register(&rt.handle(), id("g"), &code, options).unwrap();
        for _ in 0..5 {
            assert!(
                matches!(rt.health(&id("g"), WAIT), HealthStatus::Unhealthy { .. }),
                "each check answers unhealthy, never stopped"
            );
        }
        assert_eq!(rt.readiness().stopped, Vec::<switchyard::ComponentId>::new());
        let reply = rt.request(req(&id("g"), b"up"), WAIT).unwrap().wait().unwrap();
        assert_eq!(reply.payload, b"up", "it still handles messages");
        assert_eq!(rt.component_stats(&id("g")).unwrap().restarts, 0);
        assert_eq!(host.stats(&id("g")).unwrap().instantiations, 6, "a fresh instance after each trap");
    }

    #[test]
    fn a_guest_health_export_runs_under_the_fuel_budget() {
        let (rt, _dl) = runtime(1);
        let host = host();
        let code = guests::load(&host, &guests::with_health(HealthAnswer::Spin, false));
        host.register(&rt.handle(), id("g"), &code, options().fuel_per_message(100_000)).unwrap();
        match rt.health(&id("g"), WAIT) {
            HealthStatus::Unhealthy { reason } => assert!(reason.contains("fuel"), "{reason}"),
            other => panic!("expected unhealthy, got {other:?}"),
        }
    }

    #[test]
    fn guests_export_init_health_or_both_and_init_alone_still_loads() {
        let host = host();
        let both = guests::load(&host, &guests::with_health(HealthAnswer::Ok, true));
        assert!(both.has_init() && both.has_health());
        let init_only = guests::load(&host, &guests::subscriber());
        assert!(init_only.has_init() && !init_only.has_health());
        let (rt, _dl) = runtime(1);
        host.register(&rt.handle(), id("g"), &both, options()).unwrap();
        assert_eq!(rt.health(&id("g"), WAIT), HealthStatus::Healthy);
    }
}
