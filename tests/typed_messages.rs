//! The typed layer: components as state plus a function of a serde message, `tell` /
//! `ask` / `publish_on` on references, handles and contexts, replies in the asker's codec,
//! and clear errors for payloads of the wrong type or codec.

mod common;

use std::time::Duration;

use common::*;
use serde::{Deserialize, Serialize};
use switchyard::codec::{self, Cbor, SerdeCodec};
use switchyard::{
    AskError, BuildError, Component, ComponentId, Context, DeadLetterReason, HandlerError, MessageEnvelope,
    RequestError, Runtime, RuntimeHandle,
};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Op {
    Inc(u64),
    Get,
}

#[derive(Default)]
struct Counter(u64);

impl Component for Counter {
    type Message = Op;
    type Reply = u64;
    fn handle(&mut self, _ctx: &mut Context<'_>, msg: Op) -> Result<u64, HandlerError> {
        if let Op::Inc(n) = msg {
            self.0 += n;
        }
        Ok(self.0)
    }
}

fn runtime_with(builder: switchyard::RuntimeBuilder) -> (Runtime, crossbeam_channel::Receiver<switchyard::DeadLetter>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let rt = builder
        .workers(2)
        .dead_letter_hook(move |d| {
            let _ = tx.send(d);
        })
        .build()
        .expect("runtime starts");
    (rt, rx)
}

#[test]
fn a_typed_component_counts_one_way_messages_and_answers_a_typed_ask() {
    let (rt, _dead) = runtime(2);
    let counter = rt.spawn("counter", Counter::default).expect("spawned");
    for n in 1..=4 {
        counter.tell(&Op::Inc(n)).expect("told");
    }
    let total: u64 = counter.ask(&Op::Get).wait().expect("answered");
    assert_eq!(total, 10);
    // By id, through the handle, the same.
    let by_id: u64 = rt.ask(&id("counter"), &Op::Inc(1)).wait().expect("answered");
    assert_eq!(by_id, 11);
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn an_ask_can_be_awaited() {
    let (rt, _dead) = runtime(1);
    let counter = rt.spawn("counter", Counter::default).expect("spawned");
    let n: u64 = block_on(counter.ask(&Op::Inc(5))).expect("answered");
    assert_eq!(n, 5);
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn a_payload_of_the_wrong_type_is_dead_lettered_saying_what_was_expected() {
    let (rt, dead) = runtime(1);
    let counter = rt.spawn("counter", Counter::default).expect("spawned");
    counter.tell(&"not an op").expect("told");
    let d = recv(&dead);
    match &d.reason {
        DeadLetterReason::HandlerFailed { error, .. } => {
            assert!(error.contains("the json (0x200) payload is not a typed_messages::Op"), "{error}")
        }
        other => panic!("expected a handler failure, got {other:?}"),
    }
    // Raw bytes are not a codec the typed layer reads: the error says so.
    rt.try_send(ff(&id("counter"), b"\x01")).expect("sent");
    let d = recv(&dead);
    assert!(d.reason.to_string().contains("raw (0x55) cannot be decoded"), "{}", d.reason);
    // The answer to an ask of the wrong type names the type too.
    match counter.ask::<String>(&Op::Get).wait() {
        Err(AskError::Decode(e)) => assert!(e.to_string().contains("alloc::string::String"), "{e}"),
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn a_request_in_cbor_is_answered_in_cbor_and_the_runtime_codec_encodes_typed_sends() {
    let (rt, _dead) = runtime_with(Runtime::builder().codec(codec::CBOR));
    rt.spawn("counter", Counter::default).expect("spawned");
    // A request written by hand, in CBOR: the answer comes back in CBOR.
    let body = Cbor::encode(&Op::Inc(3)).expect("encodes");
    let req = MessageEnvelope::request(id("me"), id("counter"), body.bytes, body.code);
    let answer = rt.request(req, WAIT).expect("sent").wait().expect("answered");
    assert_eq!(answer.codec, codec::CBOR);
    assert_eq!(Cbor::decode::<u64>(&answer.payload).expect("a u64"), 3);
    // And a typed ask from this runtime encodes in CBOR too.
    let probe = payload_probe(&rt, "probe");
    rt.tell(&id("probe"), &Op::Get).expect("told");
    assert_eq!(Cbor::decode::<Op>(&recv(&probe)).expect("CBOR"), Op::Get);
    assert!(rt.shutdown(WAIT).is_balanced());
}

/// Answers every message with the id of its sender.
struct WhoAsked;

impl Component for WhoAsked {
    type Message = serde_json::Value;
    type Reply = String;
    fn handle(&mut self, ctx: &mut Context<'_>, _msg: serde_json::Value) -> Result<String, HandlerError> {
        Ok(ctx.message().map(|m| m.from.to_string()).unwrap_or_default())
    }
}

#[test]
fn host_sends_come_from_the_host_id_set_on_the_builder() {
    let (rt, _dead) = runtime_with(Runtime::builder().host_id("gateway"));
    let who = rt.spawn("who", || WhoAsked).expect("spawned");
    assert_eq!(who.ask::<String>(&()).wait().expect("answered"), "gateway");
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn a_host_id_or_codec_the_typed_layer_cannot_use_fails_the_build() {
    let bad_id = Runtime::builder().host_id("").build().err().expect("refused");
    assert!(matches!(&bad_id, BuildError::InvalidConfig(why) if why.contains("host_id")), "{bad_id}");
    let bad_codec = Runtime::builder().codec(codec::RAW).build().err().expect("refused");
    assert!(matches!(&bad_codec, BuildError::InvalidConfig(why) if why.contains("json")), "{bad_codec}");
}

/// Counts what it hears on a topic; answers `Get` with the count.
#[derive(Default)]
struct Listener(u64);

#[derive(Serialize, Deserialize)]
enum Heard {
    Tick(u32),
    Count,
}

impl Component for Listener {
    type Message = Heard;
    type Reply = u64;
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
        ctx.subscribe("ticks");
        Ok(())
    }
    fn handle(&mut self, _ctx: &mut Context<'_>, msg: Heard) -> Result<u64, HandlerError> {
        if let Heard::Tick(_) = msg {
            self.0 += 1;
        }
        Ok(self.0)
    }
}

#[test]
fn publish_on_reaches_every_subscriber_with_a_typed_value() {
    let (rt, _dead) = runtime(2);
    let listeners: Vec<_> = ["l1", "l2"].iter().map(|l| rt.spawn(l, Listener::default).expect("spawned")).collect();
    until("both subscribed", || rt.subscribers("ticks").len() == 2);
    for t in 0..3 {
        let report = rt.publish_on("ticks", &Heard::Tick(t)).expect("published");
        assert_eq!(report.delivered, 2, "{report:?}");
    }
    for l in &listeners {
        assert_eq!(l.ask::<u64>(&Heard::Count).wait().expect("answered"), 3);
    }
    assert!(rt.shutdown(WAIT).is_balanced());
}

/// Asks the counter from inside a handler, and tells the host's probe what came back.
struct Relay;

impl Component for Relay {
    type Message = u64;
    type Reply = ();
    fn handle(&mut self, ctx: &mut Context<'_>, n: u64) -> Result<(), HandlerError> {
        ctx.ask(&ComponentId::new("counter")?, &Op::Inc(n))?;
        Ok(())
    }
    fn callback(
        &mut self,
        ctx: &mut Context<'_>,
        _request_id: &str,
        outcome: Result<&MessageEnvelope, &RequestError>,
    ) -> Result<(), HandlerError> {
        let total: u64 = outcome.map_err(|e| HandlerError::new(e.to_string()))?.decode()?;
        ctx.tell(&ComponentId::new("probe")?, &total)?;
        Ok(())
    }
}

#[test]
fn a_handler_asks_and_tells_with_typed_values_and_gets_the_answer_in_its_callback() {
    let (rt, _dead) = runtime(2);
    rt.spawn("counter", Counter::default).expect("spawned");
    let probe = payload_probe(&rt, "probe");
    let relay = rt.spawn("relay", || Relay).expect("spawned");
    relay.tell(&7u64).expect("told");
    assert_eq!(serde_json::from_slice::<u64>(&recv(&probe)).expect("JSON"), 7);
    relay.tell(&8u64).expect("told");
    assert_eq!(serde_json::from_slice::<u64>(&recv(&probe)).expect("JSON"), 15);
    until("nothing in flight", || rt.stats().is_balanced());
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn a_typed_ask_of_a_component_that_is_not_there_says_so() {
    let (rt, _dead) = runtime(1);
    let handle: RuntimeHandle = rt.handle();
    match handle.ask_within::<u64>(&id("nobody"), &Op::Get, Duration::from_millis(100)).wait() {
        Err(AskError::Send(e)) => assert_eq!(e.kind(), switchyard::SendErrorKind::NoSuchComponent),
        other => panic!("expected NoSuchComponent, got {other:?}"),
    }
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn an_ask_polled_again_after_it_completed_says_so_instead_of_pending_forever() {
    use std::future::Future;
    use std::task::{Context as TaskContext, Poll, Waker};
    let (rt, _dead) = runtime(1);
    let counter = rt.spawn("counter", Counter::default).expect("spawned");
    let mut ask = std::pin::pin!(counter.ask::<u64>(&Op::Inc(2)));
    let mut cx = TaskContext::from_waker(Waker::noop());
    let first = loop {
        match ask.as_mut().poll(&mut cx) {
            Poll::Ready(r) => break r,
            Poll::Pending => std::thread::yield_now(),
        }
    };
    assert_eq!(first.expect("answered"), 2);
    match ask.as_mut().poll(&mut cx) {
        Poll::Ready(Err(AskError::Polled)) => {}
        other => panic!("a second poll must end at once with AskError::Polled, got {other:?}"),
    }
    // The same for the untyped handle under it: its one outcome was taken.
    let mut handle = std::pin::pin!(
        counter
            .request(MessageEnvelope::request(id("host"), id("counter"), b"\"Get\"".to_vec(), codec::JSON), WAIT)
            .unwrap()
    );
    let first = loop {
        match handle.as_mut().poll(&mut cx) {
            Poll::Ready(r) => break r,
            Poll::Pending => std::thread::yield_now(),
        }
    };
    assert!(first.is_ok(), "{first:?}");
    match handle.as_mut().poll(&mut cx) {
        Poll::Ready(Err(RequestError::Taken)) => {}
        other => panic!("a second poll of the handle must end with RequestError::Taken, got {other:?}"),
    }
    assert_eq!(handle.try_wait().map(|r| r.map(|_| ())), Some(Err(RequestError::Taken)));
    assert!(rt.shutdown(WAIT).is_balanced());
}
