//! Panics are contained; components restart under their policy with the mailbox kept;
//! at-least-once messages are redelivered; the restart limit stops the component.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use crossbeam_channel::unbounded;
use switchyard::{
    ComponentSpec, Context, DeadLetterReason, DeliveryGuarantee, Handler, HandlerError, MessageEnvelope, RequestError,
    RestartPolicy, SendError, Supervision, handler_fn,
};

fn no_backoff(policy: RestartPolicy, max_restarts: u32) -> Supervision {
    Supervision {
        policy,
        max_restarts,
        window: Duration::from_secs(600),
        backoff_initial: Duration::ZERO,
        backoff_max: Duration::ZERO,
    }
}

/// Panics on payload "panic", fails on "fail", otherwise reports (instance, payload).
/// Each new instance takes the next number from `instances`.
fn volatile(instances: Arc<AtomicUsize>, seen: crossbeam_channel::Sender<(usize, Vec<u8>)>) -> ComponentSpec {
    ComponentSpec::new(move || {
        let me = instances.fetch_add(1, Ordering::SeqCst);
        let seen = seen.clone();
        handler_fn(move |_ctx, msg| match msg.payload.as_slice() {
            b"panic" => panic!("asked to panic"),
            b"fail" => Err(HandlerError::new("asked to fail")),
            _ => {
                seen.send((me, msg.payload.clone())).unwrap();
                Ok(Some(msg.payload.clone()))
            }
        })
    })
}

#[test]
fn panicking_handler_is_caught_dead_lettered_and_restarted() {
    let (rt, dead) = runtime(1);
    let instances = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = unbounded();
    rt.register(id("v"), volatile(instances.clone(), tx).supervision(no_backoff(RestartPolicy::Permanent, 5))).unwrap();
    rt.try_send(ff(&id("v"), b"before")).unwrap();
    rt.try_send(ff(&id("v"), b"panic")).unwrap();
    rt.try_send(ff(&id("v"), b"after")).unwrap();
    assert_eq!(recv(&rx), (0, b"before".to_vec()));
    let d = recv(&dead);
    assert_eq!(d.envelope.payload, b"panic");
    assert_eq!(d.reason, DeadLetterReason::HandlerPanicked { message: "asked to panic".into(), attempts: 1 });
    // The queued message survived the restart and is handled by the new instance.
    assert_eq!(recv(&rx), (1, b"after".to_vec()));
    // The handler reports before it returns; the worker counts the message after.
    until("the message is counted", || rt.component_stats(&id("v")).unwrap().handled >= 2);
    let s = rt.component_stats(&id("v")).unwrap();
    assert_eq!((s.handled, s.failed, s.restarts), (2, 1, 1));
}

#[test]
fn handler_error_dead_letters_without_restarting() {
    let (rt, dead) = runtime(1);
    let instances = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = unbounded();
    rt.register(id("v"), volatile(instances.clone(), tx)).unwrap();
    rt.try_send(ff(&id("v"), b"fail")).unwrap();
    rt.try_send(ff(&id("v"), b"ok")).unwrap();
    let d = recv(&dead);
    assert_eq!(d.reason, DeadLetterReason::HandlerFailed { error: "asked to fail".into(), code: None, attempts: 1 });
    assert_eq!(recv(&rx), (0, b"ok".to_vec()), "same instance: no restart");
}

#[test]
fn pending_requester_gets_an_error_when_the_handler_panics() {
    let (rt, _dl) = runtime(1);
    let (tx, _rx) = unbounded();
    rt.register(id("v"), volatile(Arc::new(AtomicUsize::new(0)), tx)).unwrap();
    let outcome = rt.request(req(&id("v"), b"panic"), WAIT).unwrap().wait();
    assert_eq!(
        outcome,
        Err(RequestError::Failed(DeadLetterReason::HandlerPanicked { message: "asked to panic".into(), attempts: 1 }))
    );
}

#[test]
fn restart_limit_stops_the_component_and_dead_letters_its_queue() {
    let (rt, dead) = runtime(1);
    let gate = Gate::new();
    let g = gate.clone();
    let (started_tx, started_rx) = unbounded();
    rt.register(
        id("fragile"),
        ComponentSpec::new(move || {
            let (g, started_tx) = (g.clone(), started_tx.clone());
            handler_fn(move |_c, m| {
                if m.payload == b"hold" {
                    started_tx.send(()).unwrap();
                    g.wait();
                    return Ok(None);
                }
                panic!("always")
            })
        })
        .mailbox_capacity(16)
        .supervision(no_backoff(RestartPolicy::Permanent, 2)),
    )
    .unwrap();
    rt.try_send(ff(&id("fragile"), b"hold")).unwrap();
    recv(&started_rx);
    for i in 0..5u8 {
        rt.try_send(ff(&id("fragile"), &[i])).unwrap();
    }
    gate.open(1);
    // Three panics: two restarts allowed, the third stops it; two messages remain queued.
    let mut reasons = Vec::new();
    for _ in 0..5 {
        reasons.push(recv(&dead).reason);
    }
    let panicked = reasons.iter().filter(|r| matches!(r, DeadLetterReason::HandlerPanicked { .. })).count();
    let stopped = reasons.iter().filter(|r| **r == DeadLetterReason::ComponentStopped).count();
    assert_eq!((panicked, stopped), (3, 2), "{reasons:?}");
    let s = rt.component_stats(&id("fragile")).unwrap();
    assert!(s.closed);
    assert_eq!(s.restarts, 2);
    assert!(matches!(rt.try_send(ff(&id("fragile"), b"x")), Err(SendError::Closed(_))));
}

#[test]
fn temporary_component_stops_at_its_first_panic() {
    let (rt, dead) = runtime(1);
    let (tx, _rx) = unbounded();
    rt.register(id("once"), volatile(Arc::new(AtomicUsize::new(0)), tx).restart_policy(RestartPolicy::Temporary))
        .unwrap();
    let gate = Gate::new();
    hold_worker(&rt, &gate);
    rt.try_send(ff(&id("once"), b"panic")).unwrap();
    rt.try_send(ff(&id("once"), b"next")).unwrap();
    gate.open(1);
    assert!(matches!(recv(&dead).reason, DeadLetterReason::HandlerPanicked { .. }));
    let d = recv(&dead);
    assert_eq!((d.reason, d.envelope.payload), (DeadLetterReason::ComponentStopped, b"next".to_vec()));
    let s = rt.component_stats(&id("once")).unwrap();
    assert!(s.closed);
    assert_eq!(s.restarts, 0);
}

/// Stops itself on "stop"; reports each instance start.
struct Stopper(crossbeam_channel::Sender<&'static str>);

impl Handler for Stopper {
    fn init(&mut self, _ctx: &mut Context<'_>) -> Result<(), HandlerError> {
        self.0.send("started").unwrap();
        Ok(())
    }
    fn handle(&mut self, ctx: &mut Context<'_>, msg: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
        if msg.payload == b"stop" {
            ctx.stop();
        }
        self.0.send("handled").unwrap();
        Ok(None)
    }
}

#[test]
fn permanent_component_restarts_after_asking_to_stop() {
    let (rt, _dl) = runtime(1);
    let (tx, rx) = unbounded();
    rt.register(
        id("p"),
        ComponentSpec::new(move || Stopper(tx.clone())).supervision(no_backoff(RestartPolicy::Permanent, 5)),
    )
    .unwrap();
    assert_eq!(recv(&rx), "started");
    rt.try_send(ff(&id("p"), b"stop")).unwrap();
    assert_eq!(recv(&rx), "handled");
    assert_eq!(recv(&rx), "started", "a permanent component comes back");
    rt.try_send(ff(&id("p"), b"more")).unwrap();
    assert_eq!(recv(&rx), "handled");
}

#[test]
fn transient_component_stays_stopped_after_asking_to_stop() {
    let (rt, dead) = runtime(1);
    let (tx, rx) = unbounded();
    let gate = Gate::new();
    rt.register(
        id("t"),
        ComponentSpec::new(move || Stopper(tx.clone())).supervision(no_backoff(RestartPolicy::Transient, 5)),
    )
    .unwrap();
    assert_eq!(recv(&rx), "started");
    // Hold the worker so both messages queue up first.
    hold_worker(&rt, &gate);
    rt.try_send(ff(&id("t"), b"stop")).unwrap();
    rt.try_send(ff(&id("t"), b"queued")).unwrap();
    gate.open(1);
    assert_eq!(recv(&rx), "handled");
    let d = recv(&dead);
    assert_eq!((d.reason, d.envelope.payload), (DeadLetterReason::ComponentStopped, b"queued".to_vec()));
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err(), "no restart");
}

#[test]
fn restart_waits_for_its_backoff_in_the_timer_without_blocking_the_worker() {
    let (rt, _dl) = runtime(1);
    let (tx, rx) = unbounded();
    let sup = Supervision {
        policy: RestartPolicy::Permanent,
        max_restarts: 5,
        window: Duration::from_secs(600),
        backoff_initial: Duration::from_millis(200),
        backoff_max: Duration::from_millis(200),
    };
    rt.register(id("slowstart"), volatile(Arc::new(AtomicUsize::new(0)), tx.clone()).supervision(sup)).unwrap();
    let (other_tx, other_rx) = unbounded();
    rt.register(
        id("other"),
        ComponentSpec::new(move || {
            let other_tx = other_tx.clone();
            handler_fn(move |_c, m| {
                other_tx.send(m.payload.clone()).unwrap();
                Ok(None)
            })
        }),
    )
    .unwrap();
    rt.try_send(ff(&id("slowstart"), b"panic")).unwrap();
    rt.try_send(ff(&id("slowstart"), b"after backoff")).unwrap();
    // While "slowstart" waits out its backoff, its worker serves "other".
    rt.try_send(ff(&id("other"), b"served")).unwrap();
    assert_eq!(recv(&other_rx), b"served");
    assert_eq!(recv(&rx), (1, b"after backoff".to_vec()));
}

#[test]
fn at_least_once_message_is_redelivered_flagged_until_it_succeeds() {
    let (rt, _dl) = runtime(1);
    let (tx, rx) = unbounded();
    rt.register(
        id("flaky"),
        ComponentSpec::new(move || {
            let tx = tx.clone();
            handler_fn(move |ctx, _m| {
                tx.send((ctx.attempt(), ctx.is_redelivery())).unwrap();
                if ctx.attempt() < 3 { Err(HandlerError::new("not yet")) } else { Ok(None) }
            })
        })
        .max_attempts(3),
    )
    .unwrap();
    rt.try_send_with(ff(&id("flaky"), b""), DeliveryGuarantee::AtLeastOnce).unwrap();
    assert_eq!([recv(&rx), recv(&rx), recv(&rx)], [(1, false), (2, true), (3, true)]);
    until("the message is counted", || rt.component_stats(&id("flaky")).unwrap().handled >= 1);
    let s = rt.component_stats(&id("flaky")).unwrap();
    assert_eq!((s.received, s.handled, s.failed, s.redelivered), (1, 1, 2, 2));
}

#[test]
fn at_least_once_message_is_dead_lettered_after_its_last_attempt() {
    let (rt, dead) = runtime(1);
    rt.register(
        id("broken"),
        ComponentSpec::new(|| handler_fn(|_c, _m| -> Result<Option<Vec<u8>>, HandlerError> { panic!("never works") }))
            .max_attempts(2)
            .supervision(no_backoff(RestartPolicy::Permanent, 10)),
    )
    .unwrap();
    rt.try_send_with(ff(&id("broken"), b"m"), DeliveryGuarantee::AtLeastOnce).unwrap();
    let d = recv(&dead);
    assert_eq!(d.reason, DeadLetterReason::HandlerPanicked { message: "never works".into(), attempts: 2 });
    // The worker dead-letters the message and then counts the restart that follows the
    // second panic: wait for the count rather than race it.
    until("both restarts are counted", || rt.component_stats(&id("broken")).unwrap().restarts >= 2);
    assert_eq!(rt.component_stats(&id("broken")).unwrap().restarts, 2);
}

#[test]
fn at_most_once_message_is_not_redelivered() {
    let (rt, dead) = runtime(1);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    rt.register(
        id("f"),
        ComponentSpec::new(move || {
            let c = c.clone();
            handler_fn(move |_x, _m| {
                c.fetch_add(1, Ordering::SeqCst);
                Err(HandlerError::new("no"))
            })
        }),
    )
    .unwrap();
    rt.try_send(ff(&id("f"), b"")).unwrap();
    recv(&dead);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn failing_factory_counts_as_a_crash_and_is_retried() {
    let (rt, _dl) = runtime(1);
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = attempts.clone();
    let (tx, rx) = unbounded();
    rt.register(
        id("late-bloomer"),
        ComponentSpec::try_new(move || {
            if a.fetch_add(1, Ordering::SeqCst) < 2 {
                return Err(HandlerError::new("not ready"));
            }
            let tx = tx.clone();
            Ok(Box::new(handler_fn(move |_c, m| {
                tx.send(m.payload.clone()).unwrap();
                Ok(None)
            })))
        })
        .supervision(no_backoff(RestartPolicy::Permanent, 5)),
    )
    .unwrap();
    rt.try_send(ff(&id("late-bloomer"), b"eventually")).unwrap();
    assert_eq!(recv(&rx), b"eventually");
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(rt.component_stats(&id("late-bloomer")).unwrap().restarts, 2);
}
