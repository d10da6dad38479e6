//! Bounded mailboxes: every failed send hands the envelope back with the reason.

mod common;

use std::time::Duration;

use common::*;
use crossbeam_channel::unbounded;
use switchyard::{
    ComponentId, ComponentSpec, InvalidEnvelope, MessageEnvelope, MessageType, Runtime, SendError, SendErrorKind,
    codec, handler_fn,
};

/// A component whose worker holds "held" on `gate` while `capacity` more messages fill its
/// mailbox.
fn held_and_full(
    rt: &Runtime,
    name: &str,
    capacity: usize,
    gate: &Gate,
) -> (crossbeam_channel::Receiver<()>, ComponentId) {
    let started = blocked_component(rt, name, capacity, gate);
    let target = id(name);
    rt.try_send(ff(&target, b"held")).unwrap();
    recv(&started);
    for _ in 0..capacity {
        rt.try_send(ff(&target, b"fills")).unwrap();
    }
    (started, target)
}

#[test]
fn full_mailbox_returns_envelope() {
    let (rt, _dl) = runtime(1);
    let gate = Gate::new();
    let started = blocked_component(&rt, "slow", 2, &gate);
    let target = id("slow");
    rt.try_send(ff(&target, b"held")).unwrap();
    recv(&started);
    rt.try_send(ff(&target, b"q1")).unwrap();
    rt.try_send(ff(&target, b"q2")).unwrap();
    match rt.try_send(ff(&target, b"overflow")) {
        Err(SendError::Full(env)) => assert_eq!(env.payload, b"overflow"),
        other => panic!("expected Full, got {other:?}"),
    }
    let s = rt.component_stats(&target).unwrap();
    assert_eq!(s.rejected_full, 1);
    assert_eq!(s.mailbox_high_water, 2);
    assert_eq!(s.mailbox_len, 2);
    assert_eq!(rt.stats().mailbox_send_failures, 1);
    gate.open(3);
}

#[test]
fn unknown_target_returns_envelope() {
    let (rt, _dl) = runtime(1);
    let err = rt.try_send(ff(&id("ghost"), b"boo")).unwrap_err();
    assert!(matches!(&err, SendError::NoSuchComponent(_)));
    assert_eq!(err.to_string(), "no component is registered as ghost");
    assert_eq!(err.into_envelope().payload, b"boo");
    assert_eq!(rt.stats().components_not_found, 1);
}

#[test]
fn oversize_payload_returns_envelope() {
    let rt = Runtime::builder().workers(1).pin_workers(false).max_payload_bytes(8).build().unwrap();
    rt.register(id("small"), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))).unwrap();
    let err = rt.try_send(ff(&id("small"), &[0; 9])).unwrap_err();
    assert!(matches!(err, SendError::PayloadTooLarge(ref e) if e.payload.len() == 9));
    rt.try_send(ff(&id("small"), &[0; 8])).unwrap();
    assert_eq!(rt.stats().invalid_rejections, 1);
}

#[test]
fn response_without_correlation_is_invalid() {
    let (rt, _dl) = runtime(1);
    let env = MessageEnvelope::new(MessageType::Response, id("a"), id("b"), vec![], codec::RAW, "r");
    assert!(matches!(rt.try_send(env), Err(SendError::Invalid(_, InvalidEnvelope::ResponseWithoutCorrelation))));
}

#[test]
fn request_api_rejects_non_requests_and_duplicate_ids() {
    let (rt, _dl) = runtime(1);
    let gate = Gate::new();
    let _started = blocked_component(&rt, "svc", 4, &gate);
    let err = rt.request(ff(&id("svc"), b""), WAIT).unwrap_err();
    assert!(matches!(err, SendError::Invalid(_, InvalidEnvelope::NotARequest)));
    let r = req(&id("svc"), b"");
    let dup = r.clone();
    let _h = rt.request(r, WAIT).unwrap();
    let err = rt.request(dup, WAIT).unwrap_err();
    assert!(matches!(err, SendError::Invalid(_, InvalidEnvelope::DuplicateRequestId)));
    gate.open(4);
}

#[test]
fn send_timeout_waits_for_space_then_delivers() {
    let (rt, _dl) = runtime(1);
    let gate = Gate::new();
    let (started, target) = held_and_full(&rt, "slow", 1, &gate);
    let handle = rt.handle();
    let t2 = target.clone();
    let waiter = std::thread::spawn(move || handle.send_timeout(ff(&t2, b"waits"), WAIT).map_err(|e| e.kind()));
    // Free one slot: the held message completes, "fills" starts and holds the worker.
    gate.open(1);
    recv(&started);
    waiter.join().unwrap().expect("space appeared before the deadline");
    gate.open(2);
    recv(&started);
}

#[test]
fn send_timeout_expires_and_returns_envelope() {
    let (rt, _dl) = runtime(1);
    let gate = Gate::new();
    let (_started, target) = held_and_full(&rt, "slow", 1, &gate);
    match rt.send_timeout(ff(&target, b"late"), Duration::from_millis(20)) {
        Err(SendError::Timeout(env)) => assert_eq!(env.payload, b"late"),
        other => panic!("expected Timeout, got {other:?}"),
    }
    gate.open(2);
}

#[test]
fn send_timeout_inside_a_handler_returns_full_at_once() {
    let (rt, _dl) = runtime(2);
    let gate = Gate::new();
    let (_started, _slow) = held_and_full(&rt, "slow", 1, &gate);
    let (tx, rx) = unbounded();
    let handle = rt.handle();
    rt.register(
        id("impatient"),
        ComponentSpec::new(move || {
            let (tx, handle) = (tx.clone(), handle.clone());
            handler_fn(move |_c, _m| {
                // A day-long timeout, but on a worker thread it must not wait at all.
                let r = handle.send_timeout(ff(&id("slow"), b"from handler"), Duration::from_secs(86_400));
                tx.send(r.map_err(|e| e.kind())).unwrap();
                Ok(None)
            })
        }),
    )
    .unwrap();
    rt.try_send(ff(&id("impatient"), b"go")).unwrap();
    assert_eq!(recv(&rx), Err(switchyard::SendErrorKind::Full));
    gate.open(2);
}

#[test]
fn handler_send_to_full_target_gets_envelope_back() {
    let (rt, _dl) = runtime(2);
    let gate = Gate::new();
    let started = blocked_component(&rt, "slow", 1, &gate);
    rt.try_send(ff(&id("slow"), b"held")).unwrap();
    recv(&started);
    rt.try_send(ff(&id("slow"), b"fills")).unwrap();
    let (tx, rx) = unbounded();
    rt.register(
        id("forwarder"),
        ComponentSpec::new(move || {
            let tx = tx.clone();
            handler_fn(move |ctx, msg| {
                let env = ctx.envelope(MessageType::FireAndForget, id("slow"), msg.payload.clone(), codec::RAW);
                match ctx.send(env) {
                    Err(SendError::Full(back)) => tx.send(back.payload).unwrap(),
                    other => panic!("expected Full, got {other:?}"),
                }
                Ok(None)
            })
        }),
    )
    .unwrap();
    rt.try_send(ff(&id("forwarder"), b"payload")).unwrap();
    assert_eq!(recv(&rx), b"payload");
    gate.open(2);
}

#[test]
fn a_blocked_send_timeout_gives_up_with_closed_when_the_component_is_unregistered() {
    let (rt, _dl) = runtime(1);
    let gate = Gate::new();
    let (_started, target) = held_and_full(&rt, "slow", 1, &gate);
    let handle = rt.handle();
    let t2 = target.clone();
    // A deadline far beyond the test's: only the close can end this wait in time.
    let waiter = std::thread::spawn(move || {
        handle
            .send_timeout(ff(&t2, b"blocked"), Duration::from_secs(3600))
            .map_err(|e| (e.kind(), e.into_envelope().payload))
    });
    until("the sender is blocked", || rt.component_stats(&target).unwrap().blocked_senders == 1);
    let unregistering = {
        let handle = rt.handle();
        let t3 = target.clone();
        std::thread::spawn(move || handle.unregister(&t3))
    };
    match waiter.join().unwrap() {
        Err((SendErrorKind::Closed, payload)) => assert_eq!(payload, b"blocked"),
        other => panic!("expected Closed, got {other:?}"),
    }
    gate.open(2);
    unregistering.join().unwrap().unwrap();
}

#[test]
fn a_blocked_sender_takes_a_free_slot_even_if_the_mailbox_never_drains_to_half() {
    let (rt, _dl) = runtime(1);
    let gate = Gate::new();
    let (started, target) = held_and_full(&rt, "slow", 4, &gate);
    let handle = rt.handle();
    let t2 = target.clone();
    let waiter = std::thread::spawn(move || handle.send_timeout(ff(&t2, b"waits"), WAIT).map_err(|e| e.kind()));
    until("the sender is blocked", || rt.component_stats(&target).unwrap().blocked_senders == 1);
    // One slot frees and the worker blocks again: three of four slots stay taken, above
    // the half mark at which the worker wakes blocked senders.
    gate.open(1);
    recv(&started);
    waiter.join().unwrap().expect("the free slot was taken before the deadline");
    assert_eq!(rt.component_stats(&target).unwrap().mailbox_len, 4);
    gate.open(5);
    for _ in 0..4 {
        recv(&started);
    }
}

#[test]
fn several_blocked_senders_all_deliver_once_the_worker_drains() {
    let (rt, _dl) = runtime(1);
    let gate = Gate::new();
    let (started, target) = held_and_full(&rt, "slow", 4, &gate);
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let handle = rt.handle();
            let t2 = target.clone();
            std::thread::spawn(move || handle.send_timeout(ff(&t2, b"waits"), WAIT).map_err(|e| e.kind()))
        })
        .collect();
    until("both senders are blocked", || rt.component_stats(&target).unwrap().blocked_senders == 2);
    gate.open(7);
    for s in senders {
        s.join().unwrap().expect("both senders delivered");
    }
    for _ in 0..6 {
        recv(&started);
    }
    let s = rt.component_stats(&target).unwrap();
    assert_eq!((s.blocked_senders, s.rejected_full), (0, 0));
}

#[test]
fn a_mailbox_holds_its_capacity_whether_allocated_by_its_first_message_or_at_registration() {
    for lazy in [true, false] {
        let (rt, _dead) = runtime(1);
        let gate = Gate::new();
        let (tx, started) = unbounded();
        let g = gate.clone();
        rt.register(
            id("c"),
            ComponentSpec::new(move || {
                let (tx, g) = (tx.clone(), g.clone());
                handler_fn(move |_c, m| {
                    let _ = tx.send(());
                    g.wait();
                    Ok(m.is_request().then(|| m.payload.clone()))
                })
            })
            .mailbox_capacity(4)
            .lazy_mailbox(lazy),
        )
        .unwrap();
        let stats = rt.component_stats(&id("c")).unwrap();
        assert_eq!((stats.mailbox_len, stats.mailbox_capacity), (0, 4), "lazy: {lazy}");
        rt.try_send(ff(&id("c"), b"first")).unwrap();
        recv(&started); // the worker holds "first": the 4 slots are free
        for i in 0..4u8 {
            rt.try_send(ff(&id("c"), &[i])).expect("4 slots");
        }
        let err = rt.try_send(ff(&id("c"), b"fifth")).expect_err("the mailbox holds 4");
        assert_eq!(err.kind(), SendErrorKind::Full, "lazy: {lazy}");
        assert_eq!(err.into_envelope().payload, b"fifth", "the envelope comes back");
        gate.open(5);
        for _ in 0..4 {
            recv(&started); // each of the 4 queued messages reaches the handler
        }
        let reply = rt.request(req(&id("c"), b"ping"), WAIT).unwrap();
        gate.open(1);
        assert_eq!(reply.wait().unwrap().payload, b"ping", "lazy: {lazy}");
    }
}
