//! The request models (`docs/design.md`, "Request completion"): exactly one outcome
//! whichever completer comes first, and a reused request id confined to its own request.

use super::*;

/// A response racing the request's timeout: the requester gets exactly one outcome; if it
/// is the timeout, the response is dead-lettered as a late reply.
pub(super) fn reply_racing_timeout(fault: Fault) {
    model(move || {
        let rt = ModelRuntime::with_fault(1, fault);
        // The target exists so the request is accepted; its worker never runs here.
        counting(&rt, "svc", 2);
        let request = MessageEnvelope::new(MessageType::Request, id("h"), id("svc"), vec![], codec::RAW, "req-1");
        let response = request.reply_to(b"answer".to_vec(), codec::RAW, "resp-1");
        let handle = rt.request(request).unwrap();
        let replier = {
            let rt = rt.clone();
            spawn(move || rt.respond(response))
        };
        let timer = {
            let rt = rt.clone();
            spawn(move || rt.expire("req-1"))
        };
        let outcome = handle.wait();
        replier.join().unwrap();
        timer.join().unwrap();
        let late = rt.dead_letters().iter().filter(|d| d.reason == DeadLetterReason::LateReply).count();
        match outcome {
            Ok(env) => {
                assert_eq!(env.payload, b"answer");
                assert_eq!(late, 0, "a delivered response is not also dead-lettered");
            }
            Err(RequestError::Timeout) => assert_eq!(late, 1, "the losing response is dead-lettered"),
            Err(other) => panic!("unexpected outcome {other:?}"),
        }
    });
}

#[test]
fn reply_racing_timeout_gives_exactly_one_outcome() {
    reply_racing_timeout(Fault::None);
}

#[test]
fn reply_racing_timeout_catches_peek_then_remove() {
    expect_model_failure("reply_racing_timeout", "PeekThenRemove", "response");
}

/// A request handed on to another component (`Context::forward`) racing its deadline:
/// the requester gets exactly one outcome, the timeout (the new responder never answers
/// here), and nothing stays pending, whichever comes first.
pub(super) fn hand_over_racing_deadline(fault: Fault) {
    model(move || {
        let rt = ModelRuntime::with_fault(1, fault);
        // Both exist so sends are accepted; their worker never runs here.
        counting(&rt, "front", 2);
        counting(&rt, "back", 2);
        let request = MessageEnvelope::new(MessageType::Request, id("h"), id("front"), vec![], codec::RAW, "req-1");
        let handle = rt.request(request.clone()).unwrap();
        let deadline = rt.deadline("req-1").expect("pending");
        let forwarder = {
            let rt = rt.clone();
            spawn(move || rt.forward(&id("front"), &request, &id("back")))
        };
        let timer = {
            let rt = rt.clone();
            spawn(move || rt.fire_deadline("req-1", deadline))
        };
        let forwarded = forwarder.join().unwrap();
        timer.join().unwrap();
        match handle.try_wait() {
            Some(Err(RequestError::Timeout)) => {}
            other => panic!("the requester got {other:?} instead of its timeout"),
        }
        assert_eq!(rt.pending_requests(), 0, "a request stays pending after its deadline");
        // Handed on before the deadline, the request waits in back's mailbox; after it,
        // there was nothing to hand on.
        assert_eq!(rt.component_stats(&id("back")).unwrap().mailbox_len, usize::from(forwarded));
    });
}

#[test]
fn hand_over_racing_the_deadline_gives_exactly_one_outcome() {
    hand_over_racing_deadline(Fault::None);
}

#[test]
fn hand_over_racing_the_deadline_catches_a_hand_over_by_removal_and_insertion() {
    expect_model_failure("hand_over_racing_deadline", "HandOverByReinsert", "instead of its timeout");
}

/// A request id reused after its first request was answered: the first request's deadline
/// entry, firing late, must not expire the second request, which gets its own response.
pub(super) fn stale_deadline_spares_reused_id(fault: Fault) {
    model(move || {
        let rt = ModelRuntime::with_fault(1, fault);
        counting(&rt, "svc", 2);
        let request = MessageEnvelope::new(MessageType::Request, id("h"), id("svc"), vec![], codec::RAW, "req-1");
        let first = rt.request(request.clone()).unwrap();
        let stale = rt.deadline("req-1").expect("the first request is pending");
        rt.respond(request.reply_to(b"first".to_vec(), codec::RAW, "resp-1"));
        assert_eq!(first.wait().unwrap().payload, b"first");
        let second = rt.request(request.clone()).unwrap();
        let timer = {
            let rt = rt.clone();
            spawn(move || rt.fire_deadline("req-1", stale))
        };
        let replier = {
            let (rt, request) = (rt.clone(), request.clone());
            spawn(move || rt.respond(request.reply_to(b"second".to_vec(), codec::RAW, "resp-2")))
        };
        timer.join().unwrap();
        replier.join().unwrap();
        assert_eq!(second.wait().map(|env| env.payload), Ok(b"second".to_vec()), "a stale deadline expired it");
    });
}

#[test]
fn stale_deadline_spares_a_request_that_reuses_its_id() {
    stale_deadline_spares_reused_id(Fault::None);
}

#[test]
fn stale_deadline_catches_an_expiry_by_id_alone() {
    expect_model_failure("stale_deadline_spares_reused_id", "ExpireById", "a stale deadline expired it");
}

/// A request id reused after its first request timed out: the first request's answer, made
/// by a responder still handling it, races the second's; only the second's completes the
/// second request, and the first's is a late reply.
pub(super) fn stale_response_spares_reused_id(fault: Fault) {
    model(move || {
        let rt = ModelRuntime::with_fault(1, fault);
        counting(&rt, "svc", 2);
        let request = MessageEnvelope::new(MessageType::Request, id("h"), id("svc"), vec![], codec::RAW, "req-1");
        let first = rt.request(request.clone()).unwrap();
        let earlier = rt.deadline("req-1").expect("the first request is pending");
        rt.fire_deadline("req-1", earlier);
        assert_eq!(first.wait().map(|env| env.payload), Err(RequestError::Timeout));
        let second = rt.request(request.clone()).unwrap();
        let newer = rt.deadline("req-1").expect("the second request is pending");
        let late = {
            let (rt, request) = (rt.clone(), request.clone());
            spawn(move || rt.respond_to(request.reply_to(b"first".to_vec(), codec::RAW, "resp-1"), earlier))
        };
        let replier = {
            let (rt, request) = (rt.clone(), request.clone());
            spawn(move || rt.respond_to(request.reply_to(b"second".to_vec(), codec::RAW, "resp-2"), newer))
        };
        late.join().unwrap();
        replier.join().unwrap();
        assert_eq!(
            second.wait().map(|env| env.payload),
            Ok(b"second".to_vec()),
            "an answer to the earlier request completed the newer one"
        );
        let late_replies = rt.dead_letters().iter().filter(|d| d.reason == DeadLetterReason::LateReply).count();
        assert_eq!(late_replies, 1);
    });
}

#[test]
fn stale_response_spares_a_request_that_reuses_its_id() {
    stale_response_spares_reused_id(Fault::None);
}

#[test]
fn stale_response_catches_a_response_matched_by_id_alone() {
    expect_model_failure(
        "stale_response_spares_reused_id",
        "ResponseById",
        "an answer to the earlier request completed the newer one",
    );
}

/// A response racing a component while it starts a request (pending entry, delivery,
/// deadline): whatever the order, the timer ends with one entry per request still pending
/// and none for an answered one. (A host's request is simpler: its own handle cancels the
/// entry, on the requester's thread, after the outcome.)
pub(super) fn answered_request_leaves_no_timer_entry(fault: Fault) {
    model(move || {
        let rt = ModelRuntime::with_fault(1, fault);
        counting(&rt, "svc", 2);
        counting(&rt, "c", 2);
        let request = MessageEnvelope::new(MessageType::Request, id("c"), id("svc"), vec![], codec::RAW, "req-1");
        let response = request.reply_to(b"answer".to_vec(), codec::RAW, "resp-1");
        let requester = {
            let rt = rt.clone();
            spawn(move || rt.request_from(&id("c"), request).map(|_id| ()))
        };
        let replier = {
            let rt = rt.clone();
            spawn(move || rt.respond(response))
        };
        requester.join().unwrap().expect("the request is accepted");
        replier.join().unwrap();
        assert_eq!(rt.timer_entries(), rt.pending_requests(), "a timer entry outlived its request");
    });
}

#[test]
fn answered_request_leaves_no_timer_entry_behind() {
    answered_request_leaves_no_timer_entry(Fault::None);
}

#[test]
fn answered_request_catches_a_deadline_scheduled_without_the_recheck() {
    expect_model_failure(
        "answered_request_leaves_no_timer_entry",
        "SkipDeadlineRecheck",
        "a timer entry outlived its request",
    );
}
