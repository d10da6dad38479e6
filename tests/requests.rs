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

/// A request under a chosen id.
fn req_with_id(to: &str, payload: &[u8], message_id: &str) -> MessageEnvelope {
    MessageEnvelope::new(MessageType::Request, id("host"), id(to), payload.to_vec(), codec::RAW, message_id)
}

#[test]
fn the_answer_to_an_earlier_request_does_not_complete_a_newer_one_that_reuses_its_id() {
    let (rt, dead) = runtime(2);
    let (started_tx, started_rx) = unbounded();
    let (gate_tx, gate_rx) = unbounded::<()>();
    // Answers with the payload; holds its first message until the gate opens.
    rt.register(
        id("slow"),
        ComponentSpec::new(move || {
            let (started_tx, gate_rx) = (started_tx.clone(), gate_rx.clone());
            let mut first = true;
            handler_fn(move |_c, m| {
                if std::mem::take(&mut first) {
                    started_tx.send(()).unwrap();
                    gate_rx.recv().unwrap();
                }
                Ok(Some(m.payload.clone()))
            })
        }),
    )
    .unwrap();
    let earlier = rt.request(req_with_id("slow", b"earlier", "m-1"), Duration::from_millis(50)).unwrap();
    recv(&started_rx);
    assert_eq!(earlier.wait().map(|r| r.payload), Err(RequestError::Timeout));
    // Asked again under the same id while the first copy is still being handled.
    let newer = rt.request(req_with_id("slow", b"newer", "m-1"), WAIT).unwrap();
    gate_tx.send(()).unwrap();
    assert_eq!(newer.wait().unwrap().payload, b"newer", "the newer request gets its own answer");
    let late = recv(&dead);
    assert_eq!((late.reason, late.envelope.payload), (DeadLetterReason::LateReply, b"earlier".to_vec()));
    assert!(rt.shutdown(WAIT).stats.is_balanced());
}

#[test]
fn a_queued_copy_of_an_earlier_request_is_not_handled_for_a_newer_one_that_reuses_its_id() {
    let (rt, dead) = runtime(1);
    let (started_tx, started_rx) = unbounded();
    let (gate_tx, gate_rx) = unbounded::<()>();
    let handled = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = handled.clone();
    // Holds a one-way "block" until the gate opens; answers requests with their payload.
    rt.register(
        id("busy"),
        ComponentSpec::new(move || {
            let (started_tx, gate_rx, seen) = (started_tx.clone(), gate_rx.clone(), seen.clone());
            handler_fn(move |_c, m| {
                if !m.is_request() {
                    started_tx.send(()).unwrap();
                    gate_rx.recv().unwrap();
                    return Ok(None);
                }
                seen.lock().unwrap().push(m.payload.clone());
                Ok(Some(m.payload.clone()))
            })
        }),
    )
    .unwrap();
    rt.try_send(MessageEnvelope::fire_and_forget(id("host"), id("busy"), b"block".to_vec(), codec::RAW)).unwrap();
    recv(&started_rx);
    let earlier = rt.request(req_with_id("busy", b"earlier", "m-1"), Duration::from_millis(50)).unwrap();
    assert_eq!(earlier.wait().map(|r| r.payload), Err(RequestError::Timeout));
    let newer = rt.request(req_with_id("busy", b"newer", "m-1"), WAIT).unwrap();
    gate_tx.send(()).unwrap();
    assert_eq!(newer.wait().unwrap().payload, b"newer");
    let skipped = recv(&dead);
    assert_eq!((skipped.reason, skipped.envelope.payload), (DeadLetterReason::TimedOut, b"earlier".to_vec()));
    assert_eq!(*handled.lock().unwrap(), vec![b"newer".to_vec()], "the earlier copy was never handled");
    assert!(rt.shutdown(WAIT).stats.is_balanced());
}
