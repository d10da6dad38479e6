//! Per-component counters and routing statistics snapshots.

mod common;

use common::*;
use switchyard::{ComponentSpec, HandlerError, RoutingStatsSnapshot, handler_fn};

#[test]
fn per_component_counters_track_received_handled_failed() {
    let (rt, dead) = runtime(1);
    rt.register(
        id("c"),
        ComponentSpec::new(|| {
            handler_fn(|_c, m| if m.payload == b"bad" { Err(HandlerError::new("bad")) } else { Ok(None) })
        }),
    )
    .unwrap();
    for p in [&b"ok"[..], b"bad", b"ok"] {
        rt.try_send(ff(&id("c"), p)).unwrap();
    }
    recv(&dead);
    let report = rt.shutdown(WAIT);
    let s = rt.component_stats(&id("c")).unwrap();
    assert_eq!((s.received, s.handled, s.failed, s.dead_lettered, s.restarts), (3, 2, 1, 1, 0));
    assert!(s.mailbox_high_water <= 3);
    assert_eq!(s.mailbox_capacity, 128);
    assert!(rt.component_stats(&id("nope")).is_none());
    let r: RoutingStatsSnapshot = report.stats;
    assert_eq!((r.messages_sent, r.messages_routed, r.messages_handled, r.messages_dead_lettered), (3, 3, 2, 1));
    assert_eq!(r.dead_letters_named(), vec![("handler_failed", 1)]);
    let json = serde_json::to_string(&r).unwrap();
    let back: RoutingStatsSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
}

#[test]
fn dead_letter_queue_is_bounded_and_counts_what_it_drops() {
    let rt = switchyard::Runtime::builder().workers(1).pin_workers(false).dead_letter_capacity(2).build().unwrap();
    for i in 0..5u8 {
        let _ = rt.publish(publish("nobody", &[i])); // each one dead-lettered: no subscribers
    }
    let kept = rt.dead_letters();
    assert_eq!(kept.iter().map(|d| d.envelope.payload[0]).collect::<Vec<_>>(), vec![3, 4], "the newest are kept");
    let s = rt.stats();
    assert_eq!(s.messages_dead_lettered, 5);
    assert_eq!(s.dead_letters_dropped, 3);
    assert!(s.is_balanced());
}
