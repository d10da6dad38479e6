//! Fire-and-forget, request-response (host and component side), publish-subscribe.

mod common;

use std::time::Duration;

use common::*;
use crossbeam_channel::unbounded;
use switchyard::{
    ComponentSpec, Context, DeadLetterReason, Handler, HandlerError, MessageEnvelope, MessageType, RequestError, codec,
    handler_fn,
};

#[test]
fn fire_and_forget_reaches_the_handler_with_payload_and_sender() {
    let (rt, _dl) = runtime(2);
    let (tx, rx) = unbounded();
    let target = id("sink");
    rt.register(
        target.clone(),
        ComponentSpec::new(move || {
            let tx = tx.clone();
            handler_fn(move |ctx, msg| {
                tx.send((ctx.id().clone(), msg.from.clone(), msg.payload.clone())).unwrap();
                Ok(None)
            })
        }),
    )
    .unwrap();
    rt.try_send(ff(&target, b"hello")).unwrap();
    let (me, from, payload) = recv(&rx);
    assert_eq!(me, target);
    assert_eq!(from, id("host"));
    assert_eq!(payload, b"hello");
}

#[test]
fn messages_from_one_sender_are_handled_in_order() {
    let (rt, _dl) = runtime(2);
    let (tx, rx) = unbounded();
    let target = id("ordered");
    rt.register(
        target.clone(),
        ComponentSpec::new(move || {
            let tx = tx.clone();
            handler_fn(move |_ctx, msg| {
                tx.send(u32::from_le_bytes(msg.payload[..4].try_into().unwrap())).unwrap();
                Ok(None)
            })
        })
        .mailbox_capacity(4096),
    )
    .unwrap();
    for i in 0u32..2000 {
        rt.try_send(ff(&target, &i.to_le_bytes())).unwrap();
    }
    for i in 0u32..2000 {
        assert_eq!(recv(&rx), i);
    }
}

fn echo_spec() -> ComponentSpec {
    ComponentSpec::new(|| handler_fn(|_ctx, msg| Ok(Some(msg.payload.clone()))))
}

#[test]
fn host_request_gets_the_handlers_reply() {
    let (rt, _dl) = runtime(2);
    let echo = id("echo");
    rt.register(echo.clone(), echo_spec()).unwrap();
    let request = req(&echo, b"ping");
    let request_id = request.message_id.clone();
    let handle = rt.request(request, WAIT).unwrap();
    assert_eq!(handle.request_id(), request_id);
    let reply = handle.wait().unwrap();
    assert_eq!(reply.payload, b"ping");
    assert!(reply.is_response());
    assert_eq!(reply.correlation_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(reply.from, echo);
    assert_eq!(rt.pending_requests(), 0);
}

#[test]
fn reply_handle_can_be_awaited_without_an_async_runtime() {
    let (rt, _dl) = runtime(1);
    let echo = id("echo");
    rt.register(echo.clone(), echo_spec()).unwrap();
    let handle = rt.request(req(&echo, b"async"), WAIT).unwrap();
    let reply = block_on(handle).unwrap();
    assert_eq!(reply.payload, b"async");
}

#[test]
fn explicit_reply_with_its_own_codec_wins_over_the_return_value() {
    let (rt, _dl) = runtime(1);
    let svc = id("svc");
    rt.register(
        svc.clone(),
        ComponentSpec::new(|| {
            handler_fn(|ctx, _msg| {
                ctx.reply(b"{\"ok\":true}".to_vec(), codec::JSON)?;
                assert!(ctx.reply(vec![], codec::RAW).is_err(), "second reply must be refused");
                Ok(Some(b"ignored".to_vec()))
            })
        }),
    )
    .unwrap();
    let reply = rt.request(req(&svc, b""), WAIT).unwrap().wait().unwrap();
    assert_eq!(reply.payload, b"{\"ok\":true}");
    assert_eq!(reply.codec, codec::JSON);
}

#[test]
fn reply_outside_a_request_is_refused() {
    let (rt, _dl) = runtime(1);
    let (tx, rx) = unbounded();
    let svc = id("svc");
    rt.register(
        svc.clone(),
        ComponentSpec::new(move || {
            let tx = tx.clone();
            handler_fn(move |ctx, _msg| {
                tx.send(ctx.reply(vec![], codec::RAW)).unwrap();
                Ok(None)
            })
        }),
    )
    .unwrap();
    rt.try_send(ff(&svc, b"")).unwrap();
    assert_eq!(recv(&rx), Err(switchyard::ReplyError::NotARequest));
}

#[test]
fn request_without_reply_times_out_exactly_once() {
    let (rt, _dl) = runtime(1);
    let silent = id("silent");
    rt.register(silent.clone(), ComponentSpec::new(|| handler_fn(|_ctx, _msg| Ok(None)))).unwrap();
    let handle = rt.request(req(&silent, b"?"), Duration::from_millis(50)).unwrap();
    assert_eq!(handle.wait(), Err(RequestError::Timeout));
    assert_eq!(rt.stats().requests_timed_out, 1);
    assert_eq!(rt.pending_requests(), 0);
}

#[test]
fn wait_timeout_leaves_the_request_pending_and_the_outcome_still_arrives() {
    let (rt, _dl) = runtime(1);
    let gate = Gate::new();
    let slow = id("slow");
    let g = gate.clone();
    rt.register(
        slow.clone(),
        ComponentSpec::new(move || {
            let g = g.clone();
            handler_fn(move |_ctx, msg| {
                g.wait();
                Ok(Some(msg.payload.clone()))
            })
        }),
    )
    .unwrap();
    let handle = rt.request(req(&slow, b"later"), WAIT).unwrap();
    assert_eq!(handle.wait_timeout(Duration::from_millis(1)), Err(switchyard::WaitTimeoutError::Pending));
    assert!(handle.try_wait().is_none());
    gate.open(1);
    let reply = handle.wait_timeout(WAIT).expect("reply arrives");
    assert_eq!(reply.payload, b"later");
}

#[test]
fn late_reply_is_dead_lettered() {
    let (rt, dead) = runtime(1);
    let gate = Gate::new();
    let slow = id("slow");
    let g = gate.clone();
    rt.register(
        slow.clone(),
        ComponentSpec::new(move || {
            let g = g.clone();
            handler_fn(move |ctx, _msg| {
                g.wait();
                // Reply explicitly: the requester is gone by now.
                ctx.reply(b"too late".to_vec(), codec::RAW)?;
                Ok(None)
            })
        }),
    )
    .unwrap();
    // The handler takes the request (tracked, still pending) and blocks on the gate.
    let handle = rt.request(req(&slow, b"x"), Duration::from_millis(30)).unwrap();
    assert_eq!(handle.wait(), Err(RequestError::Timeout));
    gate.open(1);
    let d = recv(&dead);
    // Either the handler had already taken the request (its reply is late) or it had not
    // (the expired request is skipped): both are accounted, never silent.
    match d.reason {
        DeadLetterReason::LateReply => assert_eq!(d.envelope.payload, b"too late"),
        DeadLetterReason::TimedOut => assert_eq!(d.envelope.payload, b"x"),
        other => panic!("unexpected dead letter {other:?}"),
    }
}

#[test]
fn response_sent_by_the_host_for_no_request_is_a_late_reply() {
    let (rt, dead) = runtime(1);
    let orphan = MessageEnvelope::new(MessageType::Response, id("a"), id("b"), vec![7], codec::RAW, "r-1")
        .with_correlation_id("never-requested");
    rt.try_send(orphan).unwrap();
    let d = recv(&dead);
    assert_eq!(d.reason, DeadLetterReason::LateReply);
    assert_eq!(d.envelope.payload, vec![7]);
    assert!(rt.stats().is_balanced());
}

#[test]
fn deferred_reply_sent_later_as_a_response_envelope_completes_the_request() {
    let (rt, _dl) = runtime(1);
    let svc = id("deferring");
    let (tx, rx) = unbounded::<MessageEnvelope>();
    rt.register(
        svc.clone(),
        ComponentSpec::new(move || {
            let tx = tx.clone();
            handler_fn(move |ctx, msg| {
                if msg.is_request() {
                    // Keep the request; answer on the next message.
                    tx.send(msg.clone()).unwrap();
                } else {
                    let original: MessageEnvelope = serde_json::from_slice(&msg.payload).unwrap();
                    let resp = original.reply_to(b"deferred".to_vec(), codec::RAW, switchyard::new_message_id());
                    ctx.send(resp)?;
                }
                Ok(None)
            })
        }),
    )
    .unwrap();
    let handle = rt.request(req(&svc, b"q"), WAIT).unwrap();
    let stored = recv(&rx);
    rt.try_send(ff(&svc, &serde_json::to_vec(&stored).unwrap())).unwrap();
    assert_eq!(handle.wait().unwrap().payload, b"deferred");
}

/// A component that asks `echo` and reports the callback's outcome.
struct Asker {
    target: switchyard::ComponentId,
    timeout: Duration,
    report: crossbeam_channel::Sender<(String, Result<Vec<u8>, RequestError>)>,
    issued: Option<switchyard::MessageId>,
}

impl Handler for Asker {
    fn handle(&mut self, ctx: &mut Context<'_>, msg: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
        let env = ctx.envelope(MessageType::Request, self.target.clone(), msg.payload.clone(), codec::RAW);
        self.issued = Some(ctx.request(env, self.timeout)?);
        Ok(None)
    }

    fn handle_callback(
        &mut self,
        _ctx: &mut Context<'_>,
        request_id: &str,
        outcome: Result<&MessageEnvelope, &RequestError>,
    ) -> Result<(), HandlerError> {
        assert_eq!(Some(request_id), self.issued.as_deref(), "callback names the request it answers");
        let outcome = outcome.map(|e| e.payload.clone()).map_err(Clone::clone);
        self.report.send((request_id.to_string(), outcome)).unwrap();
        Ok(())
    }
}

#[test]
fn component_request_response_arrives_through_the_callback() {
    let (rt, _dl) = runtime(2);
    let (tx, rx) = unbounded();
    rt.register(id("echo"), echo_spec()).unwrap();
    let asker = id("asker");
    rt.register(
        asker.clone(),
        ComponentSpec::new(move || Asker { target: id("echo"), timeout: WAIT, report: tx.clone(), issued: None }),
    )
    .unwrap();
    rt.try_send(ff(&asker, b"round trip")).unwrap();
    let (_id, outcome) = recv(&rx);
    assert_eq!(outcome, Ok(b"round trip".to_vec()));
    // The callback reports before it returns; the worker counts the message after.
    until("the response is counted", || rt.component_stats(&asker).unwrap().handled >= 2);
    let s = rt.component_stats(&asker).unwrap();
    assert_eq!(s.handled, 2, "the trigger and the response are both handled");
}

#[test]
fn component_request_timeout_arrives_through_the_callback() {
    let (rt, _dl) = runtime(2);
    let (tx, rx) = unbounded();
    rt.register(id("silent"), ComponentSpec::new(|| handler_fn(|_ctx, _msg| Ok(None)))).unwrap();
    let asker = id("asker");
    rt.register(
        asker.clone(),
        ComponentSpec::new(move || Asker {
            target: id("silent"),
            timeout: Duration::from_millis(20),
            report: tx.clone(),
            issued: None,
        }),
    )
    .unwrap();
    rt.try_send(ff(&asker, b"anyone?")).unwrap();
    let (_id, outcome) = recv(&rx);
    assert_eq!(outcome, Err(RequestError::Timeout));
}

#[test]
fn component_request_to_unknown_target_is_handed_back_without_a_callback() {
    let (rt, _dl) = runtime(1);
    let (tx, rx) = unbounded();
    let asker = id("asker");
    rt.register(
        asker.clone(),
        ComponentSpec::new(move || {
            let tx = tx.clone();
            handler_fn(move |ctx, _msg| {
                let env = ctx.envelope(MessageType::Request, id("ghost"), vec![], codec::RAW);
                let err = ctx.request(env, WAIT).unwrap_err();
                tx.send(err.kind()).unwrap();
                Ok(None)
            })
        }),
    )
    .unwrap();
    rt.try_send(ff(&asker, b"")).unwrap();
    assert_eq!(recv(&rx), switchyard::SendErrorKind::NoSuchComponent);
    assert_eq!(rt.pending_requests(), 0);
}

#[test]
fn publish_reaches_every_subscriber_once() {
    let (rt, _dl) = runtime(2);
    let (tx, rx) = unbounded();
    for name in ["s1", "s2", "s3"] {
        let tx = tx.clone();
        rt.register(
            id(name),
            ComponentSpec::new(move || {
                let tx = tx.clone();
                handler_fn(move |ctx, msg| {
                    assert!(msg.is_publish());
                    assert_eq!(&msg.to, ctx.id());
                    tx.send((ctx.id().to_string(), msg.topic.clone().unwrap())).unwrap();
                    Ok(None)
                })
            }),
        )
        .unwrap();
        rt.subscribe("prices", id(name));
    }
    rt.subscribe("prices", id("s1")); // subscribing twice has no effect
    let report = rt.publish(publish("prices", b"42")).unwrap();
    assert_eq!(report.delivered, 3);
    let mut got: Vec<_> = (0..3).map(|_| recv(&rx)).collect();
    got.sort();
    assert_eq!(
        got,
        vec![("s1".into(), "prices".into()), ("s2".into(), "prices".into()), ("s3".into(), "prices".into())]
    );
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err(), "no duplicate delivery");
}

#[test]
fn unsubscribed_component_no_longer_receives() {
    let (rt, _dl) = runtime(1);
    rt.register(id("a"), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))).unwrap();
    rt.register(id("b"), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))).unwrap();
    rt.subscribe("t", id("a"));
    rt.subscribe("t", id("b"));
    rt.unsubscribe("t", &id("a"));
    assert_eq!(rt.subscribers("t"), vec![id("b")]);
    assert_eq!(rt.publish(publish("t", b"")).unwrap().delivered, 1);
    rt.unsubscribe("t", &id("b"));
    assert!(rt.subscribers("t").is_empty());
}

#[test]
fn unregistering_a_component_drops_its_subscriptions() {
    let (rt, dead) = runtime(1);
    rt.register(id("a"), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))).unwrap();
    rt.register(id("b"), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))).unwrap();
    rt.subscribe("t", id("a"));
    rt.subscribe("t", id("b"));
    rt.subscribe("only-a", id("a"));
    rt.unregister(&id("a")).unwrap();
    assert_eq!(rt.subscribers("t"), vec![id("b")]);
    assert!(rt.subscribers("only-a").is_empty());
    assert_eq!(rt.publish(publish("t", b"")).unwrap().delivered, 1, "no copy for the unregistered one");
    let report = rt.publish(publish("only-a", b"")).unwrap();
    assert_eq!((report.delivered, report.dead_lettered), (0, 1));
    assert_eq!(recv(&dead).reason, DeadLetterReason::NoSubscribers);
}

#[test]
fn publish_without_subscribers_is_dead_lettered() {
    let (rt, dead) = runtime(1);
    let report = rt.publish(publish("nobody-listens", b"x")).unwrap();
    assert_eq!(report.delivered, 0);
    assert_eq!(report.dead_lettered, 1);
    assert_eq!(recv(&dead).reason, DeadLetterReason::NoSubscribers);
}

#[test]
fn publish_to_a_full_subscriber_dead_letters_that_copy_only() {
    let (rt, dead) = runtime(1);
    let gate = Gate::new();
    let started_rx = blocked_component(&rt, "blocked", 1, &gate);
    rt.register(id("free"), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))).unwrap();
    rt.subscribe("t", id("blocked"));
    rt.subscribe("t", id("free"));
    // Fill "blocked": one message held in its handler by the gate, one in the mailbox.
    let blocked_probe = id("blocked");
    rt.try_send(ff(&blocked_probe, b"hold")).unwrap();
    recv(&started_rx);
    rt.try_send(ff(&blocked_probe, b"fill")).unwrap();
    let filled = matches!(rt.try_send(ff(&blocked_probe, b"over")), Err(switchyard::SendError::Full(_)));
    assert!(filled, "the one-slot mailbox fills");
    let report = rt.publish(publish("t", b"p")).unwrap();
    assert_eq!(report.delivered, 1);
    assert_eq!(report.dead_lettered, 1);
    let d = recv(&dead);
    assert_eq!(d.reason, DeadLetterReason::MailboxFull);
    assert_eq!(d.envelope.to, id("blocked"));
    gate.open(1000);
}

#[test]
fn publish_of_a_non_publish_envelope_is_invalid() {
    let (rt, _dl) = runtime(1);
    let err = rt.publish(ff(&id("x"), b"")).unwrap_err();
    assert!(matches!(err, switchyard::SendError::Invalid(_, switchyard::InvalidEnvelope::NotAPublish)));
    let no_topic = MessageEnvelope::new(MessageType::Publish, id("h"), id("h"), vec![], codec::RAW, "p");
    let err = rt.publish(no_topic).unwrap_err();
    assert!(matches!(err, switchyard::SendError::Invalid(_, switchyard::InvalidEnvelope::PublishWithoutTopic)));
}

#[test]
fn component_can_subscribe_and_publish_from_its_handler() {
    let (rt, _dl) = runtime(2);
    let (tx, rx) = unbounded();
    let (subscribed_tx, subscribed_rx) = unbounded();
    rt.register(
        id("listener"),
        ComponentSpec::new(move || {
            let tx = tx.clone();
            let subscribed_tx = subscribed_tx.clone();
            struct L(crossbeam_channel::Sender<Vec<u8>>, crossbeam_channel::Sender<()>);
            impl Handler for L {
                fn init(&mut self, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
                    ctx.subscribe("news");
                    self.1.send(()).unwrap();
                    Ok(())
                }
                fn handle(
                    &mut self,
                    _ctx: &mut Context<'_>,
                    msg: &MessageEnvelope,
                ) -> Result<Option<Vec<u8>>, HandlerError> {
                    self.0.send(msg.payload.clone()).unwrap();
                    Ok(None)
                }
            }
            L(tx, subscribed_tx)
        }),
    )
    .unwrap();
    let (ready_tx, ready_rx) = unbounded();
    rt.register(
        id("announcer"),
        ComponentSpec::new(move || {
            let ready_tx = ready_tx.clone();
            handler_fn(move |ctx, _msg| {
                let env = ctx
                    .envelope(MessageType::Publish, ctx.id().clone(), b"extra".to_vec(), codec::RAW)
                    .with_topic("news");
                ready_tx.send(ctx.publish(env)?.delivered).unwrap();
                Ok(None)
            })
        }),
    )
    .unwrap();
    // The listener subscribes in `init`, which runs on its worker after registration.
    recv(&subscribed_rx);
    assert_eq!(rt.subscribers("news"), vec![id("listener")]);
    rt.try_send(ff(&id("announcer"), b"go")).unwrap();
    assert_eq!(recv(&ready_rx), 1);
    assert_eq!(recv(&rx), b"extra");
}
