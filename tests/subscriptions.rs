//! Topic subscriptions under concurrent changes: a subscription made while another
//! component leaves the same topic is never lost.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;

#[test]
fn a_subscription_racing_the_last_unsubscribe_of_its_topic_is_kept() {
    let (rt, _dead) = runtime(1);
    let rounds = if cfg!(debug_assertions) { 200_000 } else { 2_000_000 };
    let stop = Arc::new(AtomicBool::new(false));
    // Joins and leaves the topic over and over, so the topic is often left empty and
    // removed just as the other thread joins it.
    let churner = {
        let (h, stop) = (rt.handle(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                h.subscribe("t", id("churn"));
                h.unsubscribe("t", &id("churn"));
            }
        })
    };
    let mut lost = 0;
    for _ in 0..rounds {
        rt.subscribe("t", id("steady"));
        if !rt.subscribers("t").contains(&id("steady")) {
            lost += 1;
        }
        rt.unsubscribe("t", &id("steady"));
    }
    stop.store(true, Ordering::Relaxed);
    churner.join().unwrap();
    assert_eq!(lost, 0, "{lost} of {rounds} subscriptions vanished");
}
