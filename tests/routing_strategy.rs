//! `RoutingStrategy` as a trait object over the runtime's direct routing.

mod common;

use common::*;
use switchyard::{DirectRouting, RoutingStrategy, SendError};

#[test]
fn test_routing_strategy_trait_object() {
    let (rt, _dl) = runtime(1);
    let rx = payload_probe(&rt, "target");
    let strategy: Box<dyn RoutingStrategy> = Box::new(DirectRouting::new(rt.handle()));
    strategy.route(&ff(&id("target"), b"routed")).unwrap();
    assert_eq!(recv(&rx), b"routed");
    let err = strategy.route(&ff(&id("missing"), b"x")).unwrap_err();
    assert!(matches!(err, SendError::NoSuchComponent(ref e) if e.payload == b"x"));
}
