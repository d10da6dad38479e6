//! `DeliveryGuarantee::ExactlyOnce` (feature `exactly-once-delivery`): duplicates by
//! message id are dead-lettered within the component's window.
#![cfg(feature = "exactly-once-delivery")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use switchyard::{ComponentConfig, ComponentSpec, DeadLetterReason, DeliveryGuarantee, HandlerError, handler_fn};

fn counting_spec(calls: Arc<AtomicUsize>, fail_first: bool, window: usize) -> ComponentSpec {
    ComponentSpec::new(move || {
        let calls = calls.clone();
        handler_fn(move |ctx, _m| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if fail_first && n == 0 && ctx.attempt() == 1 {
                return Err(HandlerError::new("first try fails"));
            }
            Ok(None)
        })
    })
    .config(ComponentConfig { dedup_window: window, ..ComponentConfig::default() })
}

#[test]
fn retried_message_is_handled_once_and_the_duplicate_dead_lettered() {
    let (rt, dead) = runtime(1);
    let calls = Arc::new(AtomicUsize::new(0));
    rt.register(id("once"), counting_spec(calls.clone(), false, 16)).unwrap();
    let env = ff(&id("once"), b"pay 10");
    rt.try_send_with(env.clone(), DeliveryGuarantee::ExactlyOnce).unwrap();
    rt.try_send_with(env, DeliveryGuarantee::ExactlyOnce).unwrap(); // the sender's retry
    let d = recv(&dead);
    assert_eq!(d.reason, DeadLetterReason::Duplicate);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn failed_attempt_is_redelivered_and_not_mistaken_for_a_duplicate() {
    let (rt, _dl) = runtime(1);
    let calls = Arc::new(AtomicUsize::new(0));
    rt.register(id("once"), counting_spec(calls.clone(), true, 16)).unwrap();
    rt.try_send_with(ff(&id("once"), b"x"), DeliveryGuarantee::ExactlyOnce).unwrap();
    // Shutdown drains, redelivery included.
    let report = rt.shutdown(WAIT);
    assert!(report.drained);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "first attempt failed, redelivery succeeded");
    assert_eq!(report.stats.redeliveries, 1);
    assert_eq!(report.stats.dead_letters_by_reason[DeadLetterReason::Duplicate.index()], 0);
}

#[test]
fn duplicate_older_than_the_window_is_not_recognised() {
    let (rt, _dl) = runtime(1);
    let calls = Arc::new(AtomicUsize::new(0));
    rt.register(id("once"), counting_spec(calls.clone(), false, 2)).unwrap();
    let first = ff(&id("once"), b"a");
    rt.try_send_with(first.clone(), DeliveryGuarantee::ExactlyOnce).unwrap();
    rt.try_send_with(ff(&id("once"), b"b"), DeliveryGuarantee::ExactlyOnce).unwrap();
    rt.try_send_with(ff(&id("once"), b"c"), DeliveryGuarantee::ExactlyOnce).unwrap();
    rt.try_send_with(first, DeliveryGuarantee::ExactlyOnce).unwrap();
    let report = rt.shutdown(WAIT);
    assert_eq!(calls.load(Ordering::SeqCst), 4, "the window of 2 forgot the first id");
    assert_eq!(report.stats.dead_letters_by_reason[DeadLetterReason::Duplicate.index()], 0);
}

#[test]
fn at_least_once_does_not_deduplicate() {
    let (rt, _dl) = runtime(1);
    let calls = Arc::new(AtomicUsize::new(0));
    rt.register(id("twice"), counting_spec(calls.clone(), false, 16)).unwrap();
    let env = ff(&id("twice"), b"x");
    rt.try_send_with(env.clone(), DeliveryGuarantee::AtLeastOnce).unwrap();
    rt.try_send_with(env, DeliveryGuarantee::AtLeastOnce).unwrap();
    rt.shutdown(WAIT);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
