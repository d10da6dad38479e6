//! Registering, unregistering, and what happens to messages around them.

mod common;

use common::*;
use crossbeam_channel::unbounded;
use switchyard::{
    ComponentConfig, ComponentSpec, Context, DeadLetterReason, Handler, HandlerError, MessageEnvelope, RegisterError,
    SendError, UnregisterError, handler_fn,
};

#[test]
fn registering_a_taken_id_fails() {
    let (rt, _dl) = runtime(1);
    rt.register(id("a"), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))).unwrap();
    let err = rt.register(id("a"), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))).unwrap_err();
    assert_eq!(err, RegisterError::AlreadyRegistered(id("a")));
    assert_eq!(rt.component_ids(), vec![id("a")]);
}

#[test]
fn invalid_configuration_is_rejected() {
    let (rt, _dl) = runtime(1);
    for (cfg, field) in [
        (ComponentConfig { mailbox_capacity: 0, ..Default::default() }, "mailbox_capacity"),
        (ComponentConfig { batch: 0, ..Default::default() }, "batch"),
        (ComponentConfig { max_attempts: 0, ..Default::default() }, "max_attempts"),
    ] {
        let err = rt.register(id("x"), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None))).config(cfg)).unwrap_err();
        assert!(matches!(err, RegisterError::InvalidConfig(why) if why.contains(field)), "{field}");
    }
    assert!(!rt.contains(&id("x")));
}

#[test]
fn init_runs_once_before_the_first_message() {
    let (rt, _dl) = runtime(1);
    let (tx, rx) = unbounded();
    struct H(crossbeam_channel::Sender<&'static str>);
    impl Handler for H {
        fn init(&mut self, _ctx: &mut Context<'_>) -> Result<(), HandlerError> {
            self.0.send("init").unwrap();
            Ok(())
        }
        fn handle(&mut self, _ctx: &mut Context<'_>, _m: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
            self.0.send("handle").unwrap();
            Ok(None)
        }
    }
    rt.register(id("h"), ComponentSpec::new(move || H(tx.clone()))).unwrap();
    rt.try_send(ff(&id("h"), b"")).unwrap();
    rt.try_send(ff(&id("h"), b"")).unwrap();
    assert_eq!([recv(&rx), recv(&rx), recv(&rx)], ["init", "handle", "handle"]);
}

#[test]
fn unregister_dead_letters_queued_messages_and_rejects_later_sends() {
    let (rt, dead) = runtime(1);
    let gate = Gate::new();
    let (started_tx, started_rx) = unbounded();
    let (dropped_tx, dropped_rx) = unbounded::<()>();
    struct Blocking(Gate, crossbeam_channel::Sender<()>, crossbeam_channel::Sender<()>);
    impl Handler for Blocking {
        fn handle(&mut self, _c: &mut Context<'_>, _m: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
            self.1.send(()).unwrap();
            self.0.wait();
            Ok(None)
        }
    }
    impl Drop for Blocking {
        fn drop(&mut self) {
            let _ = self.2.send(());
        }
    }
    let g = gate.clone();
    rt.register(id("c"), ComponentSpec::new(move || Blocking(g.clone(), started_tx.clone(), dropped_tx.clone())))
        .unwrap();
    rt.try_send(ff(&id("c"), b"in progress")).unwrap();
    recv(&started_rx);
    rt.try_send(ff(&id("c"), b"queued-1")).unwrap();
    rt.try_send(ff(&id("c"), b"queued-2")).unwrap();
    rt.unregister(&id("c")).unwrap();
    assert!(matches!(rt.try_send(ff(&id("c"), b"after")), Err(SendError::NoSuchComponent(_))));
    assert_eq!(rt.unregister(&id("c")), Err(UnregisterError::NoSuchComponent(id("c"))));
    // The message in progress finishes; the queued ones are dead-lettered, in order.
    gate.open(1);
    for expected in [&b"queued-1"[..], b"queued-2"] {
        let d = recv(&dead);
        assert_eq!(d.reason, DeadLetterReason::Unregistered);
        assert_eq!(d.envelope.payload, expected);
    }
    recv(&dropped_rx); // the handler itself is released
    let s = rt.stats();
    assert_eq!(s.messages_handled, 1);
    assert!(s.is_balanced(), "{s:?}");
}

#[test]
fn unregistered_id_can_be_registered_again() {
    let (rt, _dl) = runtime(1);
    rt.register(id("c"), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))).unwrap();
    rt.unregister(&id("c")).unwrap();
    let rx = payload_probe(&rt, "c");
    rt.try_send(ff(&id("c"), b"second life")).unwrap();
    assert_eq!(recv(&rx), b"second life");
}

#[test]
fn queued_request_of_an_unregistered_component_fails_its_requester() {
    let (rt, _dl) = runtime(1);
    let gate = Gate::new();
    let (started_tx, started_rx) = unbounded();
    let g = gate.clone();
    rt.register(
        id("c"),
        ComponentSpec::new(move || {
            let (g, started_tx) = (g.clone(), started_tx.clone());
            handler_fn(move |_c, _m| {
                started_tx.send(()).unwrap();
                g.wait();
                Ok(Some(vec![]))
            })
        }),
    )
    .unwrap();
    rt.try_send(ff(&id("c"), b"hold")).unwrap();
    recv(&started_rx);
    let handle = rt.request(req(&id("c"), b"q"), WAIT).unwrap();
    rt.unregister(&id("c")).unwrap();
    gate.open(1);
    assert_eq!(handle.wait(), Err(switchyard::RequestError::Failed(DeadLetterReason::Unregistered)));
}
