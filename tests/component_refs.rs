//! `ComponentRef`: a component resolved once and sent to many times without the registry.
//! It reaches the component it was resolved to and no other: once that one is gone, every
//! send through it is refused as `Closed` with the envelope handed back, even after a new
//! registration under the same id.

mod common;

use common::*;
use switchyard::{ComponentSpec, InvalidEnvelope, SendError, SendErrorKind, handler_fn};

fn echo(rt: &switchyard::Runtime, name: &str) {
    rt.register(id(name), ComponentSpec::new(|| handler_fn(|_c, m| Ok(Some(m.payload.clone()))))).unwrap();
}

#[test]
fn a_reference_sends_batches_and_requests_in_order() {
    let (rt, _dead) = runtime(2);
    let probe = payload_probe(&rt, "sink");
    let sink = rt.resolve(&id("sink")).expect("registered");
    assert_eq!(sink.id(), &id("sink"));
    for i in 0..10u8 {
        sink.try_send(ff(&id("sink"), &[i])).unwrap();
    }
    sink.send_batch((10..20u8).map(|i| ff(&id("sink"), &[i])).collect()).unwrap();
    sink.send_timeout(ff(&id("sink"), &[20]), WAIT).unwrap();
    let got: Vec<Vec<u8>> = (0..21).map(|_| recv(&probe)).collect();
    assert_eq!(got, (0..21u8).map(|i| vec![i]).collect::<Vec<_>>());
    assert_eq!(rt.stats().messages_routed, 21);

    echo(&rt, "echo");
    let echo_ref = rt.resolve(&id("echo")).unwrap();
    let reply = echo_ref.request(req(&id("echo"), b"ping"), WAIT).unwrap().wait().unwrap();
    assert_eq!(reply.payload, b"ping");
}

#[test]
fn a_reference_outlived_by_its_component_refuses_sends_as_closed_even_after_re_registration() {
    let (rt, _dead) = runtime(1);
    echo(&rt, "svc");
    let old = rt.resolve(&id("svc")).unwrap();
    assert!(!old.is_closed());
    rt.unregister(&id("svc")).unwrap();
    until("the old component is closed", || old.is_closed());
    let probe = payload_probe(&rt, "svc"); // a new component under the same id

    let env = ff(&id("svc"), b"stale");
    match old.try_send(env.clone()) {
        Err(SendError::Closed(back)) => assert_eq!(back, env),
        other => panic!("expected Closed with the envelope: {other:?}"),
    }
    let err = old.send_batch(vec![ff(&id("svc"), b"a"), ff(&id("svc"), b"b")]).expect_err("closed");
    assert_eq!((err.sent, err.error.kind(), err.rest.len()), (0, SendErrorKind::Closed, 1));
    assert_eq!(old.send_timeout(ff(&id("svc"), b"t"), WAIT).unwrap_err().kind(), SendErrorKind::Closed);
    assert_eq!(old.request(req(&id("svc"), b"q"), WAIT).unwrap_err().kind(), SendErrorKind::Closed);
    assert_eq!(rt.stats().closed_rejections, 4, "each refusal counted once");

    // A fresh resolve reaches the new component.
    rt.resolve(&id("svc")).unwrap().try_send(ff(&id("svc"), b"fresh")).unwrap();
    assert_eq!(recv(&probe), b"fresh");
    assert!(rt.resolve(&id("nobody")).is_none());
}

#[test]
fn a_reference_refuses_an_envelope_for_another_component() {
    let (rt, _dead) = runtime(1);
    payload_probe(&rt, "a");
    payload_probe(&rt, "b");
    let a = rt.resolve(&id("a")).unwrap();
    let err = a.try_send(ff(&id("b"), b"x")).unwrap_err();
    assert!(matches!(err, SendError::Invalid(_, InvalidEnvelope::NotForThisRef)), "{err:?}");
    let err = a.request(req(&id("b"), b"x"), WAIT).unwrap_err();
    assert!(matches!(err, SendError::Invalid(_, InvalidEnvelope::NotForThisRef)), "{err:?}");
}

#[test]
fn send_timeout_through_a_reference_waits_for_room_and_a_full_batch_hands_back_the_rest() {
    let (rt, _dead) = runtime(1);
    let gate = Gate::new();
    let started = blocked_component(&rt, "slow", 2, &gate);
    let slow = rt.resolve(&id("slow")).unwrap();
    slow.try_send(ff(&id("slow"), b"held")).unwrap();
    recv(&started);
    let err = slow.send_batch((0..3u8).map(|i| ff(&id("slow"), &[i])).collect()).expect_err("2 slots for 3");
    assert_eq!((err.sent, err.error.kind(), err.rest.len()), (2, SendErrorKind::Full, 0));
    assert_eq!(err.into_unsent()[0].payload, vec![2]);
    // Full now: a waiting send goes in once the worker makes room.
    let waiter = {
        let slow = slow.clone();
        std::thread::spawn(move || slow.send_timeout(ff(&id("slow"), b"late"), WAIT).map_err(|e| e.kind()))
    };
    until("the sender is blocked", || rt.component_stats(&id("slow")).unwrap().blocked_senders == 1);
    gate.open(4);
    waiter.join().unwrap().expect("room was made");
    for _ in 0..3 {
        recv(&started);
    }
    until("all four are handled", || rt.component_stats(&id("slow")).unwrap().handled == 4);
}
