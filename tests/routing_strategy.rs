//! `RoutingStrategy` as a trait object over the runtime's direct routing.

mod common;

use common::*;
use crossbeam_channel::unbounded;
use switchyard::{ComponentSpec, DirectRouting, RoutingStrategy, SendError, handler_fn};

#[test]
fn test_routing_strategy_trait_object() {
    let (rt, _dl) = runtime(1);
    let (tx, rx) = unbounded();
    rt.register(
        id("target"),
        ComponentSpec::new(move || {
            let tx = tx.clone();
            handler_fn(move |_c, m| {
                tx.send(m.payload.clone()).unwrap();
                Ok(None)
            })
        }),
    )
    .unwrap();
    let strategy: Box<dyn RoutingStrategy> = Box::new(DirectRouting::new(rt.handle()));
    strategy.route(&ff(&id("target"), b"routed")).unwrap();
    assert_eq!(recv(&rx), b"routed");
    let err = strategy.route(&ff(&id("missing"), b"x")).unwrap_err();
    assert!(matches!(err, SendError::NoSuchComponent(ref e) if e.payload == b"x"));
}
