//! Shutdown stops accepting, drains up to a deadline, dead-letters the rest, fails pending
//! requests, and joins every thread.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use crossbeam_channel::unbounded;
use switchyard::{
    ComponentConfig, ComponentSpec, DeadLetterReason, RegisterError, RequestError, Runtime, SendError, handler_fn,
};

/// Sends probes to `to` until shutdown turns host sends away (`Closed`); a full mailbox only
/// means the probes got there first.
fn probe_until_closed(h: &switchyard::RuntimeHandle, to: &switchyard::ComponentId) {
    loop {
        match h.try_send(ff(to, b"probe")) {
            Ok(()) | Err(SendError::Full(_)) => std::thread::yield_now(),
            Err(SendError::Closed(_)) => return,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn shutdown_drains_queued_messages_before_the_deadline() {
    let (rt, _dl) = runtime(2);
    let handled = Arc::new(AtomicUsize::new(0));
    let gate = Gate::new();
    let (started_tx, started_rx) = unbounded();
    let (h, g) = (handled.clone(), gate.clone());
    rt.register(
        id("worker"),
        ComponentSpec::new(move || {
            let (h, g, started_tx) = (h.clone(), g.clone(), started_tx.clone());
            handler_fn(move |_c, m| {
                if m.payload == b"first" {
                    started_tx.send(()).unwrap();
                    g.wait();
                }
                h.fetch_add(1, Ordering::SeqCst);
                Ok(None)
            })
        })
        .mailbox_capacity(256),
    )
    .unwrap();
    rt.try_send(ff(&id("worker"), b"first")).unwrap();
    recv(&started_rx);
    for _ in 0..100 {
        rt.try_send(ff(&id("worker"), b"rest")).unwrap();
    }
    let h2 = rt.handle();
    let g2 = gate.clone();
    // Open the gate from another thread once shutdown has stopped accepting host sends.
    let opener = std::thread::spawn(move || {
        probe_until_closed(&h2, &id("worker"));
        g2.open(1);
    });
    let report = rt.shutdown(WAIT);
    opener.join().unwrap();
    assert!(report.drained, "{report:?}");
    assert_eq!(report.dead_lettered, 0);
    let probes = report.stats.messages_routed - 101;
    assert_eq!(handled.load(Ordering::SeqCst) as u64, 101 + probes);
    assert!(report.stats.is_balanced());
}

#[test]
fn shutdown_deadline_dead_letters_what_is_left_with_reason_shutdown() {
    let (rt, dead) = runtime(1);
    let gate = Gate::new();
    let started_rx = blocked_component(&rt, "stuck", ComponentConfig::default().mailbox_capacity, &gate);
    rt.try_send(ff(&id("stuck"), b"in handler")).unwrap();
    recv(&started_rx);
    for i in 0..3u8 {
        rt.try_send(ff(&id("stuck"), &[i])).unwrap();
    }
    // The handler holds its worker past the (zero) drain deadline. Once shutdown has
    // stopped accepting, the gate opens for every message: the worker finishes what it
    // holds and stops between messages; the rest is dead-lettered.
    let h2 = rt.handle();
    let g2 = gate.clone();
    let opener = std::thread::spawn(move || {
        probe_until_closed(&h2, &id("stuck"));
        // Enough permits for everything the mailbox can hold, plus the message in hand.
        g2.open(256);
    });
    let report = rt.shutdown(Duration::ZERO);
    opener.join().unwrap();
    assert!(!report.drained);
    let letters: Vec<_> = std::iter::from_fn(|| dead.try_recv().ok()).collect();
    assert!(letters.iter().all(|d| d.reason == DeadLetterReason::Shutdown));
    assert_eq!(letters.len() as u64, report.dead_lettered);
    let probes_accepted = report.stats.messages_routed - 4;
    assert_eq!(report.stats.messages_handled + report.dead_lettered, 4 + probes_accepted, "{report:?}");
    assert!(report.stats.is_balanced(), "{report:?}");
}

#[test]
fn sends_and_registrations_after_shutdown_are_refused_with_the_envelope() {
    let (rt, _dl) = runtime(1);
    rt.register(id("a"), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))).unwrap();
    let handle = rt.handle();
    rt.shutdown(WAIT);
    match handle.try_send(ff(&id("a"), b"late")) {
        Err(SendError::Closed(env)) => assert_eq!(env.payload, b"late"),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(matches!(handle.request(req(&id("a"), b""), WAIT), Err(SendError::Closed(_))));
    assert_eq!(
        handle.register(id("b"), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))),
        Err(RegisterError::ShuttingDown)
    );
}

#[test]
fn pending_host_request_fails_with_shutdown() {
    let (rt, _dl) = runtime(1);
    rt.register(id("silent"), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))).unwrap();
    let handle = rt.request(req(&id("silent"), b""), Duration::from_secs(3600)).unwrap();
    let report = rt.shutdown(WAIT);
    assert_eq!(report.requests_failed, 1);
    assert_eq!(handle.wait(), Err(RequestError::Shutdown));
}

#[test]
fn shutdown_is_idempotent_and_drop_after_shutdown_is_quiet() {
    let (rt, _dl) = runtime(1);
    rt.register(id("a"), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))).unwrap();
    rt.try_send(ff(&id("a"), b"")).unwrap();
    let first = rt.shutdown(WAIT);
    let second = rt.shutdown(WAIT);
    assert_eq!(first, second);
    drop(rt);
}

#[test]
fn dropping_the_runtime_shuts_it_down_and_releases_handlers() {
    let token = Arc::new(());
    {
        let rt = Runtime::builder().workers(2).pin_workers(false).build().unwrap();
        for i in 0..10 {
            let t = token.clone();
            rt.register(
                id(&format!("c{i}")),
                ComponentSpec::new(move || {
                    let t = t.clone();
                    handler_fn(move |_c, _m| {
                        let _keep = &t;
                        Ok(None)
                    })
                }),
            )
            .unwrap();
            rt.try_send(ff(&id(&format!("c{i}")), b"")).unwrap();
        }
        assert!(Arc::strong_count(&token) > 1);
    }
    assert_eq!(Arc::strong_count(&token), 1, "every factory and handler was dropped");
}

/// A component whose handler never returns (until the test lets it go, after shutdown).
fn hung_runtime() -> (Runtime, crossbeam_channel::Receiver<switchyard::DeadLetter>, Gate) {
    let (tx, dead) = unbounded();
    let rt = Runtime::builder()
        .workers(2)
        .pin_workers(false)
        .stop_grace(Duration::from_millis(100))
        .drop_drain_timeout(Duration::from_millis(200))
        .dead_letter_hook(move |d| {
            let _ = tx.send(d);
        })
        .build()
        .unwrap();
    let gate = Gate::new();
    let started = blocked_component(&rt, "hung", 16, &gate);
    rt.try_send(ff(&id("hung"), b"in handler")).unwrap();
    recv(&started);
    for i in 0..3u8 {
        rt.try_send(ff(&id("hung"), &[i])).unwrap();
    }
    rt.register(id("fine"), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))).unwrap();
    rt.try_send(ff(&id("fine"), b"ok")).unwrap();
    (rt, dead, gate)
}

#[test]
fn shutdown_returns_by_its_deadline_when_a_handler_never_returns() {
    let (rt, dead, gate) = hung_runtime();
    let (done_tx, done_rx) = unbounded();
    let shutting = std::thread::spawn(move || {
        done_tx.send(rt.shutdown(Duration::from_millis(200))).unwrap();
        rt
    });
    let report = recv(&done_rx);
    assert!(!report.drained);
    assert_eq!(report.stuck.len(), 1, "{report:?}");
    assert_eq!(report.stuck[0].id, id("hung"));
    assert_eq!(report.stuck[0].messages_held, 1, "the message in its handler");
    // The queued messages of the stuck component are accounted for: dead-lettered.
    let letters: Vec<_> = std::iter::from_fn(|| dead.try_recv().ok()).collect();
    assert_eq!(letters.iter().filter(|d| d.envelope.to == id("hung")).count(), 3, "{letters:?}");
    assert!(letters.iter().all(|d| d.reason == DeadLetterReason::Shutdown));
    assert!(report.is_balanced(), "sent = handled + dead-lettered + rejected + held by stuck handlers: {report:?}");
    gate.open(16);
    drop(shutting.join().unwrap());
}

#[test]
fn dropping_a_runtime_whose_handler_never_returns_does_not_hang() {
    let (rt, _dead, gate) = hung_runtime();
    let (done_tx, done_rx) = unbounded();
    let dropper = std::thread::spawn(move || {
        drop(rt);
        done_tx.send(()).unwrap();
    });
    recv(&done_rx);
    gate.open(16);
    dropper.join().unwrap();
}
