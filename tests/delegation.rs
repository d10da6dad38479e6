//! Delegation: a component hands a request on (`Context::forward`) or keeps it to answer
//! later (`Context::defer`); the requester gets exactly one outcome, from whoever holds
//! the request, under the request's own deadline.

mod common;
#[cfg(feature = "wasm")]
mod wasm_guests;

use std::time::Duration;

use common::*;
use crossbeam_channel::unbounded;
use switchyard::{
    ComponentSpec, DeadLetterReason, ForwardError, HandlerError, RequestError, SendErrorKind, handler_fn,
};

/// "front" hands every request to "back"; returns what the forward said on `said`, and
/// (were it not ignored) would answer `ignored`.
fn front(rt: &switchyard::Runtime, said: crossbeam_channel::Sender<Result<(), String>>) {
    rt.register(
        id("front"),
        ComponentSpec::new(move || {
            let said = said.clone();
            handler_fn(move |ctx, _m| {
                let r = ctx.forward(&id("back"));
                said.send(r.map_err(|e| e.to_string())).unwrap();
                Ok(Some(b"ignored".to_vec()))
            })
        }),
    )
    .unwrap();
}

#[test]
fn a_forwarded_request_is_answered_by_the_component_it_was_handed_to() {
    let (rt, dead) = runtime(2);
    let (said, forwarded) = unbounded();
    front(&rt, said);
    rt.register(
        id("back"),
        ComponentSpec::new(|| handler_fn(|_ctx, m| Ok(Some([b"back: ", &m.payload[..]].concat())))),
    )
    .unwrap();
    let reply = rt.request(req(&id("front"), b"hi"), WAIT).unwrap().wait().expect("answered");
    assert_eq!(recv(&forwarded), Ok(()));
    assert_eq!(reply.payload, b"back: hi", "the answer is back's, and front's return value was ignored");
    assert_eq!(reply.from, id("back"));
    assert!(dead.try_recv().is_err(), "nothing dead-lettered");
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn a_failure_of_the_component_it_was_handed_to_fails_the_original_request() {
    let (rt, dead) = runtime(2);
    let (said, forwarded) = unbounded();
    front(&rt, said);
    rt.register(id("back"), ComponentSpec::new(|| handler_fn(|_ctx, _m| Err(HandlerError::new("back is broken")))))
        .unwrap();
    let outcome = rt.request(req(&id("front"), b"hi"), WAIT).unwrap().wait();
    assert_eq!(recv(&forwarded), Ok(()));
    match outcome {
        Err(RequestError::Failed(DeadLetterReason::HandlerFailed { error, .. })) => {
            assert_eq!(error, "back is broken")
        }
        other => panic!("expected back's failure, got {other:?}"),
    }
    assert_eq!(recv(&dead).envelope.to, id("back"), "back's copy is dead-lettered");
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn a_forwarded_request_keeps_its_deadline_and_a_late_answer_is_dead_lettered() {
    let (rt, dead) = runtime(2);
    let (said, forwarded) = unbounded();
    front(&rt, said);
    let gate = Gate::new();
    let g = gate.clone();
    rt.register(
        id("back"),
        ComponentSpec::new(move || {
            let g = g.clone();
            handler_fn(move |_ctx, _m| {
                g.wait();
                Ok(Some(b"too late".to_vec()))
            })
        }),
    )
    .unwrap();
    let outcome = rt.request(req(&id("front"), b"hi"), Duration::from_millis(100)).unwrap().wait();
    assert_eq!(recv(&forwarded), Ok(()));
    assert_eq!(outcome, Err(RequestError::Timeout));
    gate.open(1);
    assert_eq!(recv(&dead).reason, DeadLetterReason::LateReply);
    until("nothing in flight", || rt.stats().is_balanced());
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn the_component_that_forwarded_can_no_longer_answer_or_fail_the_request() {
    let (rt, dead) = runtime(2);
    let gate = Gate::new();
    let g = gate.clone();
    rt.register(
        id("front"),
        ComponentSpec::new(|| {
            handler_fn(|ctx, _m| {
                ctx.forward(&id("back"))?;
                assert!(matches!(ctx.forward(&id("back")), Err(ForwardError::NotPending)), "not twice");
                assert!(ctx.reply(b"mine".to_vec(), switchyard::codec::RAW).is_err(), "no reply after");
                Err(HandlerError::new("front fails its own copy"))
            })
        }),
    )
    .unwrap();
    rt.register(
        id("back"),
        ComponentSpec::new(move || {
            let g = g.clone();
            handler_fn(move |_ctx, m| {
                g.wait();
                Ok(Some(m.payload.clone()))
            })
        }),
    )
    .unwrap();
    let handle = rt.request(req(&id("front"), b"ok"), WAIT).unwrap();
    // Front's failure dead-letters front's copy, and does not fail the request back holds.
    let d = recv(&dead);
    assert_eq!(d.envelope.to, id("front"));
    assert!(handle.try_wait().is_none(), "the request is still back's");
    gate.open(1);
    assert_eq!(handle.wait().expect("back answers").payload, b"ok");
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn a_forward_the_target_refuses_hands_the_envelope_back_and_the_request_stays() {
    let (rt, _dead) = runtime(2);
    rt.register(
        id("front"),
        ComponentSpec::new(|| {
            handler_fn(|ctx, m| match ctx.forward(&id("nobody")) {
                Err(ForwardError::Send(e)) => {
                    assert_eq!(e.kind(), SendErrorKind::NoSuchComponent);
                    assert_eq!(e.into_envelope().to, id("nobody"), "the envelope comes back");
                    Ok(Some([b"front kept it: ", &m.payload[..]].concat()))
                }
                other => panic!("expected the target's refusal, got {other:?}"),
            })
        }),
    )
    .unwrap();
    let reply = rt.request(req(&id("front"), b"hi"), WAIT).unwrap().wait().expect("answered");
    assert_eq!(reply.payload, b"front kept it: hi");
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn forward_outside_a_request_is_refused() {
    let (rt, dead) = runtime(1);
    let (said, forwarded) = unbounded();
    front(&rt, said);
    rt.try_send(ff(&id("front"), b"one-way")).unwrap();
    assert_eq!(recv(&forwarded), Err(ForwardError::NotARequest.to_string()));
    assert!(dead.try_recv().is_err());
    assert!(rt.shutdown(WAIT).is_balanced());
}

/// Keeps each request and hands it to the test, which answers from its own thread.
fn deferring(rt: &switchyard::Runtime) -> crossbeam_channel::Receiver<switchyard::DeferredReply> {
    let (tx, rx) = unbounded();
    rt.register(
        id("later"),
        ComponentSpec::new(move || {
            let tx = tx.clone();
            handler_fn(move |ctx, _m| {
                tx.send(ctx.defer()?).unwrap();
                Ok(Some(b"ignored".to_vec()))
            })
        }),
    )
    .unwrap();
    rx
}

#[test]
fn a_deferred_reply_answers_from_another_thread() {
    let (rt, _dead) = runtime(1);
    let kept = deferring(&rt);
    let handle = rt.request(req(&id("later"), b"q"), WAIT).unwrap();
    let deferred = recv(&kept);
    assert_eq!(deferred.requester(), &id("host"));
    assert_eq!(deferred.request_id(), handle.request_id());
    std::thread::spawn(move || deferred.reply(b"answered later".to_vec(), switchyard::codec::RAW));
    let reply = handle.wait().expect("answered");
    assert_eq!((reply.payload.as_slice(), &reply.from), (&b"answered later"[..], &id("later")));
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn a_deferred_reply_can_fail_the_request_and_fails_it_when_dropped_unanswered() {
    let (rt, _dead) = runtime(1);
    let kept = deferring(&rt);
    let first = rt.request(req(&id("later"), b"q1"), WAIT).unwrap();
    recv(&kept).fail("no stock");
    match first.wait() {
        Err(RequestError::Failed(DeadLetterReason::HandlerFailed { error, .. })) => assert_eq!(error, "no stock"),
        other => panic!("expected the failure, got {other:?}"),
    }
    let second = rt.request(req(&id("later"), b"q2"), WAIT).unwrap();
    drop(recv(&kept));
    match second.wait() {
        Err(RequestError::Failed(reason)) => assert!(reason.to_string().contains("dropped without an answer")),
        other => panic!("expected a failure at once, got {other:?}"),
    }
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn a_typed_deferred_reply_answers_in_the_requests_codec() {
    let (rt, _dead) = runtime(1);
    let kept = deferring(&rt);
    let body = <switchyard::codec::Json as switchyard::codec::SerdeCodec>::encode("q").expect("encodes");
    let request = switchyard::MessageEnvelope::request(id("host"), id("later"), body.bytes, body.code);
    let handle = rt.request(request, WAIT).unwrap();
    recv(&kept).reply_with(&42u32).expect("encoded");
    let reply = handle.wait().expect("answered");
    assert_eq!((reply.codec, reply.decode::<u32>().expect("a u32")), (switchyard::codec::JSON, 42));
    assert!(rt.shutdown(WAIT).is_balanced());
}

/// WebAssembly guests delegate through the WIT `delegation` interface.
#[cfg(feature = "wasm")]
mod wasm {
    use switchyard::{Capabilities, TargetPattern, WasmConfig, WasmHost, WasmOptions};

    use super::*;

    use crate::wasm_guests;

    const IMPORTS: &str = r#"
  (import "switchyard:component/delegation@0.1.0" "forward" (func $forward (param i32 i32 i32)))
  (import "switchyard:component/delegation@0.1.0" "defer" (func $defer (param i32)))
  (import "switchyard:component/delegation@0.1.0" "reply" (func $reply (param i32 i32 i32 i32 i64 i32)))"#;

    /// `f`: forwards the request to "back" and returns a reply of its own (ignored).
    /// `k`: keeps the request (its id copied to 3000, its length at 2996).
    /// `a` (one-way): answers the kept request with "kept: a".
    fn delegator() -> String {
        wasm_guests::module(
            IMPORTS,
            &format!(
                r#"{}
  (data (i32.const 256) "back")
  (data (i32.const 272) "kept: a")
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (local $op i32)
    (local.set $op (i32.load8_u (call $payload_ptr (local.get $env))))
    (if (i32.eq (local.get $op) (i32.const 102))
      (then
        (call $forward (i32.const 256) (i32.const 4) (i32.const 1024))
        (if (i32.load8_u (i32.const 1024)) (then unreachable))
        (return (call $ok_some (i32.const 272) (i32.const 7)))))
    (if (i32.eq (local.get $op) (i32.const 107))
      (then
        (call $defer (i32.const 1024))
        (if (i32.load8_u (i32.const 1024)) (then unreachable))
        (i32.store (i32.const 2996) (i32.load (i32.const 1032)))
        (memory.copy (i32.const 3000) (i32.load (i32.const 1028)) (i32.load (i32.const 1032)))
        (return (call $ok_some (i32.const 272) (i32.const 7)))))
    (if (i32.eq (local.get $op) (i32.const 97))
      (then
        (call $reply (i32.const 3000) (i32.load (i32.const 2996)) (i32.const 272) (i32.const 7) (i64.const 0x55) (i32.const 1024))
        (if (i32.load8_u (i32.const 1024)) (then unreachable))))
    (call $ok_none))"#,
                wasm_guests::IGNORE_CALLBACKS
            ),
        )
    }

    fn register_delegator(rt: &switchyard::Runtime) -> WasmHost {
        let host = WasmHost::new(WasmConfig { pooling: false, ..WasmConfig::default() }).expect("host");
        let code = wasm_guests::load(&host, &delegator());
        let caps = Capabilities { request: vec![TargetPattern::parse("back")], ..Capabilities::default() };
        host.register(&rt.handle(), id("guest"), &code, WasmOptions::default().capabilities(caps)).expect("registers");
        host
    }

    #[test]
    fn a_guest_forwards_a_request_and_the_new_responder_answers_it() {
        let (rt, dead) = runtime(2);
        let _host = register_delegator(&rt);
        rt.register(
            id("back"),
            ComponentSpec::new(|| handler_fn(|_c, m| Ok(Some([b"back: ", &m.payload[..]].concat())))),
        )
        .unwrap();
        let reply = rt.request(req(&id("guest"), b"f"), WAIT).unwrap().wait().expect("answered");
        assert_eq!((reply.payload.as_slice(), &reply.from), (&b"back: f"[..], &id("back")));
        assert!(dead.try_recv().is_err(), "the guest's own reply was not sent");
        assert!(rt.shutdown(WAIT).is_balanced());
    }

    #[test]
    fn a_guest_keeps_a_request_and_answers_it_from_a_later_message() {
        let (rt, _dead) = runtime(1);
        let _host = register_delegator(&rt);
        let handle = rt.request(req(&id("guest"), b"k"), WAIT).unwrap();
        until("kept", || rt.component_stats(&id("guest")).is_some_and(|c| c.handled == 1));
        assert!(handle.try_wait().is_none(), "not answered by the call that kept it");
        rt.try_send(ff(&id("guest"), b"a")).unwrap();
        assert_eq!(handle.wait().expect("answered later").payload, b"kept: a");
        assert!(rt.shutdown(WAIT).is_balanced());
    }

    #[test]
    fn a_kept_request_fails_at_once_when_the_guest_traps() {
        let (rt, _dead) = runtime(1);
        let _host = register_delegator(&rt);
        let handle = rt.request(req(&id("guest"), b"k"), WAIT).unwrap();
        until("kept", || rt.component_stats(&id("guest")).is_some_and(|c| c.handled == 1));
        // `f` with no "back" registered: the forward fails and the guest traps.
        let trapped = rt.request(req(&id("guest"), b"f"), WAIT).unwrap();
        assert!(trapped.wait().is_err(), "the guest trapped");
        match handle.wait() {
            Err(RequestError::Failed(reason)) => assert!(reason.to_string().contains("dropped"), "{reason}"),
            other => panic!("expected the kept request to fail, got {other:?}"),
        }
        until("nothing in flight", || rt.stats().is_balanced());
        assert!(rt.shutdown(WAIT).is_balanced());
    }
}
