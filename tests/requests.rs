//! Request bookkeeping: only the addressee can answer, a worker never blocks on a reply,
//! and answered requests leave nothing behind in the timer.

mod common;

use std::time::Duration;

use common::*;
use crossbeam_channel::unbounded;
use switchyard::{
    ComponentSpec, DeadLetterReason, MessageEnvelope, MessageType, RequestError, codec, handler_fn, new_message_id,
};

/// A component that never answers (it leaves requests pending).
fn silent(rt: &switchyard::Runtime, name: &str) {
    rt.register(id(name), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))).unwrap();
}

fn response(request: &MessageEnvelope, from: &str, payload: &[u8]) -> MessageEnvelope {
    MessageEnvelope::new(
        MessageType::Response,
        id(from),
        request.from.clone(),
        payload.to_vec(),
        codec::RAW,
        new_message_id(),
    )
    .with_correlation_id(request.message_id.clone())
}

#[test]
fn a_response_from_another_component_is_dead_lettered_and_the_request_keeps_waiting() {
    let (rt, dead) = runtime(1);
    silent(&rt, "addressee");
    let request = req(&id("addressee"), b"q");
    let handle = rt.request(request.clone(), Duration::from_secs(60)).unwrap();
    rt.try_send(response(&request, "impostor", b"forged")).unwrap();
    let d = recv(&dead);
    assert_eq!(d.reason, DeadLetterReason::UnexpectedResponder);
    assert_eq!(d.envelope.payload, b"forged");
    assert!(handle.try_wait().is_none(), "the forged response completed nothing");
    assert_eq!(rt.pending_requests(), 1);
    rt.try_send(response(&request, "addressee", b"genuine")).unwrap();
    assert_eq!(handle.wait().unwrap().payload, b"genuine");
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.stats.is_balanced(), "{:?}", report.stats);
}

#[test]
fn answered_requests_leave_no_timer_entries() {
    let (rt, _dead) = runtime(2);
    rt.register(id("echo"), ComponentSpec::new(|| handler_fn(|_c, m| Ok(Some(m.payload.clone()))))).unwrap();
    for i in 0..5_000u32 {
        let reply = rt.request(req(&id("echo"), &i.to_le_bytes()), Duration::from_secs(30)).unwrap().wait().unwrap();
        assert_eq!(reply.payload, i.to_le_bytes());
    }
    // Every deadline belonged to a request that got its reply: none is left waiting.
    assert_eq!(rt.timer_entries(), 0);
    assert_eq!(rt.pending_requests(), 0);
}

#[test]
fn requests_in_flight_keep_one_timer_entry_each() {
    let (rt, _dead) = runtime(1);
    silent(&rt, "silent");
    let handles: Vec<_> =
        (0..100).map(|_| rt.request(req(&id("silent"), b"q"), Duration::from_secs(60)).unwrap()).collect();
    assert_eq!(rt.timer_entries(), 100);
    drop(handles);
    let report = rt.shutdown(Duration::from_secs(5));
    assert_eq!(report.requests_failed, 100);
}

#[test]
fn waiting_for_a_reply_on_a_worker_thread_is_refused_at_once() {
    // One worker: the asking handler and the component it asks share it, so a blocking
    // wait could only end by the request's (long) timeout.
    let (rt, _dead) = runtime(1);
    rt.register(id("echo"), ComponentSpec::new(|| handler_fn(|_c, m| Ok(Some(m.payload.clone()))))).unwrap();
    let (out_tx, out_rx) = unbounded();
    let h = rt.handle();
    rt.register(
        id("asker"),
        ComponentSpec::new(move || {
            let (h, out_tx) = (h.clone(), out_tx.clone());
            handler_fn(move |_c, _m| {
                let handle = h.request(req(&id("echo"), b"ping"), Duration::from_secs(3600)).unwrap();
                out_tx.send(handle.wait()).unwrap();
                Ok(None)
            })
        }),
    )
    .unwrap();
    rt.try_send(ff(&id("asker"), b"go")).unwrap();
    assert_eq!(recv(&out_rx), Err(RequestError::WouldBlockWorker));
}

#[test]
fn wait_timeout_composes_with_the_question_mark_operator() {
    fn ask(rt: &switchyard::Runtime) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let handle = rt.request(req(&id("echo"), b"ping"), Duration::from_secs(30))?;
        Ok(handle.wait_timeout(WAIT)?.payload)
    }
    let (rt, _dead) = runtime(1);
    rt.register(id("echo"), ComponentSpec::new(|| handler_fn(|_c, m| Ok(Some(m.payload.clone()))))).unwrap();
    assert_eq!(ask(&rt).unwrap(), b"ping");
}
