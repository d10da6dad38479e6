//! Batched sends: many one-way messages to one component with one routing. They go in, in
//! order, until one is refused; the refused one and the rest come back in order; nothing is
//! lost, and the routing stats count exactly what went in and what was refused.

mod common;

use common::*;
use switchyard::{ComponentSpec, InvalidEnvelope, SendError, SendErrorKind, handler_fn};

fn payloads(n: u8) -> Vec<Vec<u8>> {
    (0..n).map(|i| vec![i]).collect()
}

#[test]
fn a_batch_goes_in_whole_and_is_handled_in_order() {
    let (rt, _dead) = runtime(2);
    let probe = payload_probe(&rt, "sink");
    let batch = payloads(100).iter().map(|p| ff(&id("sink"), p)).collect();
    rt.send_batch(batch).expect("a mailbox of 128 takes 100");
    let got: Vec<Vec<u8>> = (0..100).map(|_| recv(&probe)).collect();
    assert_eq!(got, payloads(100));
    let s = rt.stats();
    assert_eq!((s.messages_routed, s.mailbox_send_failures), (100, 0));
}

#[test]
fn a_batch_that_fills_the_mailbox_hands_back_the_refused_envelope_and_the_rest_in_order() {
    let (rt, _dead) = runtime(1);
    let gate = Gate::new();
    let started = blocked_component(&rt, "slow", 4, &gate);
    rt.try_send(ff(&id("slow"), b"first")).unwrap();
    recv(&started); // the worker holds "first": the mailbox's 4 slots are free
    let batch: Vec<_> = payloads(10).iter().map(|p| ff(&id("slow"), p)).collect();
    let ids: Vec<switchyard::MessageId> = batch.iter().map(|e| e.message_id.clone()).collect();
    let err = rt.send_batch(batch).expect_err("4 slots for 10 envelopes");
    assert_eq!(err.sent, 4);
    assert_eq!(err.error.kind(), SendErrorKind::Full);
    let unsent: Vec<switchyard::MessageId> = err.into_unsent().into_iter().map(|e| e.message_id).collect();
    assert_eq!(unsent, ids[4..], "the refused envelope first, then the rest, in order");
    let s = rt.stats();
    assert_eq!((s.messages_routed, s.mailbox_send_failures), (5, 1), "one refusal counted for the batch");
    gate.open(5);
    for _ in 0..4 {
        recv(&started);
    }
    until("the 5 messages are handled", || rt.component_stats(&id("slow")).unwrap().handled == 5);
}

#[test]
fn a_batch_stops_at_an_envelope_for_another_component_or_of_another_type() {
    let (rt, _dead) = runtime(1);
    let probe = payload_probe(&rt, "sink");
    payload_probe(&rt, "other");
    let batch = vec![ff(&id("sink"), b"a"), ff(&id("sink"), b"b"), ff(&id("other"), b"c"), ff(&id("sink"), b"d")];
    let err = rt.send_batch(batch).expect_err("a batch is for one component");
    assert_eq!(err.sent, 2);
    assert!(matches!(&err.error, SendError::Invalid(e, InvalidEnvelope::NotInBatch) if e.payload == b"c"));
    assert_eq!(err.rest.len(), 1);
    assert_eq!((recv(&probe), recv(&probe)), (b"a".to_vec(), b"b".to_vec()));

    let err = rt.send_batch(vec![req(&id("sink"), b"q")]).expect_err("a request is not a one-way message");
    assert_eq!((err.sent, err.error.kind()), (0, SendErrorKind::Invalid));
}

#[test]
fn a_batch_to_an_unknown_component_comes_back_whole() {
    let (rt, _dead) = runtime(1);
    let batch: Vec<_> = payloads(3).iter().map(|p| ff(&id("nobody"), p)).collect();
    let err = rt.send_batch(batch.clone()).expect_err("nobody is registered");
    assert_eq!((err.sent, err.error.kind()), (0, SendErrorKind::NoSuchComponent));
    assert_eq!(err.into_unsent(), batch);
    assert_eq!(rt.stats().components_not_found, 1);
    assert!(rt.send_batch(Vec::new()).is_ok(), "an empty batch sends nothing");
}

#[test]
fn a_handler_fans_out_a_batch_to_another_component() {
    let (rt, _dead) = runtime(2);
    let probe = payload_probe(&rt, "sink");
    rt.register(
        id("fan"),
        ComponentSpec::new(|| {
            handler_fn(|ctx, m| {
                let batch = (0..m.payload[0]).map(|i| ff(&id("sink"), &[i])).collect();
                ctx.send_batch(batch).map_err(|e| switchyard::HandlerError::new(e.to_string()))?;
                Ok(None)
            })
        }),
    )
    .unwrap();
    rt.try_send(ff(&id("fan"), &[5])).unwrap();
    let got: Vec<Vec<u8>> = (0..5).map(|_| recv(&probe)).collect();
    assert_eq!(got, payloads(5));
}
