//! Several runtimes in one process (one per subsystem, as hosts do): a handler of one
//! runtime that sends to a component of another wakes that runtime's worker.

mod common;

use common::*;
use crossbeam_channel::unbounded;
use switchyard::{ComponentSpec, handler_fn};

#[test]
fn a_handler_on_one_runtime_wakes_a_parked_worker_of_another() {
    // One worker each: the sending handler runs on worker 0 of `a`, the target is homed on
    // worker 0 of `b`. Same index, different runtimes.
    let (a, _dead_a) = runtime(1);
    let (b, _dead_b) = runtime(1);
    let sink = payload_probe(&b, "sink");
    let (sent_tx, sent_rx) = unbounded();
    let b_handle = b.handle();
    a.register(
        id("relay"),
        ComponentSpec::new(move || {
            let (b, sent_tx) = (b_handle.clone(), sent_tx.clone());
            handler_fn(move |_ctx, msg| {
                sent_tx.send(b.try_send(ff(&id("sink"), &msg.payload)).is_ok()).unwrap();
                Ok(None)
            })
        }),
    )
    .unwrap();
    // Many rounds: in each, b's worker has gone idle (it handled the previous message and
    // nothing else is queued) before the relay sends, so only a wake-up brings it back.
    for round in 0..200u32 {
        a.try_send(ff(&id("relay"), &round.to_le_bytes())).unwrap();
        assert!(recv(&sent_rx), "the relay's send was accepted");
        assert_eq!(recv(&sink), round.to_le_bytes(), "round {round}");
    }
}
