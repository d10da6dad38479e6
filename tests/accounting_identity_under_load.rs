//! The accounting identity `sent == handled + dead-lettered + rejected` holds exactly under
//! concurrent load with random handler panics, errors, redeliveries, full mailboxes and
//! component-to-component traffic.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use switchyard::{
    ComponentSpec, DeliveryGuarantee, HandlerError, MessageType, RestartPolicy, Runtime, Supervision, codec, handler_fn,
};

const PRODUCERS: usize = 4;
const COMPONENTS: usize = 100;
/// Messages each producer sends to each component (interleaved over the components).
const PER_COMPONENT: usize = 25_000;
const PER_PRODUCER: usize = PER_COMPONENT * COMPONENTS;

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn accounting_identity_holds_under_concurrent_load_with_panics() {
    // About one message in a hundred panics on purpose; keep the default hook from printing
    // each one (this binary holds only this test).
    std::panic::set_hook(Box::new(|_| {}));
    let rt = Runtime::builder().workers(2).pin_workers(false).dead_letter_capacity(1 << 20).build().unwrap();
    let handled_payload_sum = Arc::new(AtomicU64::new(0));
    let sup = Supervision {
        policy: RestartPolicy::Permanent,
        max_restarts: u32::MAX,
        window: Duration::from_secs(3600),
        backoff_initial: Duration::ZERO,
        backoff_max: Duration::ZERO,
    };
    for c in 0..COMPONENTS {
        let sum = handled_payload_sum.clone();
        rt.register(
            id(&format!("c{c}")),
            ComponentSpec::new(move || {
                let sum = sum.clone();
                handler_fn(move |ctx, msg| {
                    let v = u64::from_le_bytes(msg.payload[..8].try_into().unwrap());
                    match v % 97 {
                        0 => panic!("random panic"),
                        1 => return Err(HandlerError::new("random failure")),
                        2 if msg.from.as_str() == "host" => {
                            // Forward to a neighbour; a full neighbour hands it back, which
                            // the handler turns into a failure of this message.
                            let next = id(&format!("c{}", (v as usize / 97) % COMPONENTS));
                            let env = ctx.envelope(MessageType::FireAndForget, next, msg.payload.clone(), codec::RAW);
                            ctx.send(env)?;
                        }
                        _ => {}
                    }
                    sum.fetch_add(v, Ordering::Relaxed);
                    Ok(None)
                })
            })
            .mailbox_capacity(64)
            .supervision(sup),
        )
        .unwrap();
    }
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let h = rt.handle();
            std::thread::spawn(move || {
                let mut seed = 0x9e37_79b9_7f4a_7c15 ^ (p as u64 + 1);
                let mut rejected = 0u64;
                let ids: Vec<_> = (0..COMPONENTS).map(|c| id(&format!("c{c}"))).collect();
                for i in 0..PER_PRODUCER {
                    let v = xorshift(&mut seed);
                    let to = &ids[i % COMPONENTS];
                    let guarantee = if v.is_multiple_of(5) {
                        DeliveryGuarantee::AtLeastOnce
                    } else {
                        DeliveryGuarantee::AtMostOnce
                    };
                    if h.try_send_with(ff(to, &v.to_le_bytes()), guarantee).is_err() {
                        rejected += 1;
                    }
                }
                rejected
            })
        })
        .collect();
    let rejected_by_producers: u64 = producers.into_iter().map(|t| t.join().unwrap()).sum();
    let report = rt.shutdown(WAIT);
    let s = report.stats;
    assert!(report.drained, "everything drained before the deadline: {report:?}");
    assert!(s.messages_sent >= (PRODUCERS * PER_PRODUCER) as u64);
    assert_eq!(
        s.messages_sent,
        s.messages_handled + s.messages_dead_lettered + s.routing_failures,
        "accounting identity: {s:?}"
    );
    assert!(s.routing_failures >= rejected_by_producers);
    assert!(
        s.dead_letters_by_reason
            [switchyard::DeadLetterReason::HandlerPanicked { message: String::new(), attempts: 0 }.index()]
            > 0
    );
    assert!(s.restarts > 0);
    assert!(s.redeliveries > 0);
    assert_eq!(s.dead_letters_dropped, 0);
    let per_component_handled: u64 = rt.component_ids().iter().map(|c| rt.component_stats(c).unwrap().handled).sum();
    assert_eq!(per_component_handled, s.messages_handled, "per-component counters add up");
    assert!(handled_payload_sum.load(Ordering::Relaxed) > 0);
}
