//! The dead-letter hook is the host's code running on the runtime's threads: a hook that
//! panics is contained and counted, and the thread it ran on goes on working.

mod common;

use std::time::Duration;

use common::*;
use switchyard::{ComponentSpec, HandlerError, Runtime, handler_fn};

#[test]
fn a_panicking_dead_letter_hook_is_counted_and_the_worker_goes_on() {
    let rt = Runtime::builder()
        .workers(1)
        .pin_workers(false)
        .dead_letter_hook(|d| panic!("hook refuses {}", d.reason))
        .build()
        .unwrap();
    rt.register(
        id("failing"),
        ComponentSpec::new(|| handler_fn(|_c, _m| Err(HandlerError::new("no")))).max_attempts(1),
    )
    .unwrap();
    let probe = payload_probe(&rt, "probe");
    for i in 0..3u8 {
        // Dead-lettered on the one worker: the hook panics there.
        rt.try_send(ff(&id("failing"), &[i])).unwrap();
        // The same worker still runs the next component.
        rt.try_send(ff(&id("probe"), &[i])).unwrap();
        assert_eq!(recv(&probe), vec![i]);
    }
    // A dead letter made on the sending thread (no subscriber) panics the hook there: the
    // sender is not unwound either.
    let report = rt.publish(publish("nobody-listens", b"x")).unwrap();
    assert_eq!(report.dead_lettered, 1);
    until("the last hook panic is counted", || rt.stats().dead_letter_hook_panics == 4);
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.drained, "{report:?}");
    assert_eq!(report.stats.dead_letter_hook_panics, 4);
    assert_eq!(report.stats.messages_dead_lettered, 4, "a letter whose hook panicked is still counted");
    assert!(report.stats.is_balanced(), "{:?}", report.stats);
}
