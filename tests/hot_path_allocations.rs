//! The send path allocates nothing beyond the envelope itself when the target is already
//! scheduled or running. Counted with a global allocator (this binary holds one test).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::*;
use crossbeam_channel::unbounded;
use switchyard::{ComponentSpec, MessageEnvelope, MessageType, handler_fn};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts calls per thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn sending_to_a_scheduled_component_allocates_nothing_one_by_one_or_in_batches() {
    let (rt, _dl) = runtime(1);
    let gate = Gate::new();
    let (started_tx, started_rx) = unbounded();
    let g = gate.clone();
    rt.register(
        id("busy"),
        ComponentSpec::new(move || {
            let (g, started_tx) = (g.clone(), started_tx.clone());
            handler_fn(move |_c, m| {
                if m.payload == b"hold" {
                    started_tx.send(()).unwrap();
                    g.wait();
                }
                Ok(None)
            })
        })
        .mailbox_capacity(1024),
    )
    .unwrap();
    rt.try_send(ff(&id("busy"), b"hold")).unwrap();
    recv(&started_rx); // the component is running: later sends need not schedule it
    let envelopes: Vec<_> = (0..500).map(|_| ff(&id("busy"), b"x")).collect();
    // Warm up this thread's stats stripe and any lazy state.
    rt.try_send(ff(&id("busy"), b"warm")).unwrap();
    // Control: the counter does see allocations (making an envelope allocates).
    let control = allocations();
    drop(std::hint::black_box(ff(&id("busy"), b"control")));
    assert!(allocations() > control, "the counting allocator counts");
    let before = allocations();
    for env in envelopes {
        rt.try_send(env).unwrap();
    }
    let during = allocations() - before;
    assert_eq!(during, 0, "the send path allocated {during} times for 500 sends");
    // Batches: the batch's own vector is the caller's; the runtime allocates nothing more.
    let batches: Vec<Vec<_>> = (0..10).map(|_| (0..50).map(|_| ff(&id("busy"), b"x")).collect()).collect();
    let before = allocations();
    for batch in batches {
        rt.send_batch(batch).unwrap();
    }
    let during = allocations() - before;
    assert_eq!(during, 0, "the batch path allocated {during} times for 10 batches of 50");
    gate.open(1);
    assert!(rt.shutdown(WAIT).drained);
}

#[test]
fn a_generated_message_id_and_its_clones_allocate_nothing() {
    let _warm = switchyard::new_message_id(); // the process's id state, made once
    let before = allocations();
    let ids: [switchyard::MessageId; 8] = std::array::from_fn(|_| switchyard::new_message_id());
    let copies = ids.clone();
    let during = allocations() - before;
    assert_eq!(during, 0, "making and cloning 8 ids allocated {during} times");
    assert!(copies.iter().zip(&ids).all(|(a, b)| a == b && a.len() == 36));
    // An envelope with an empty payload (no heap for the payload): only the id could
    // allocate, and it does not.
    let before = allocations();
    let env = MessageEnvelope::new(
        MessageType::FireAndForget,
        id("a"),
        id("b"),
        Vec::new(),
        switchyard::codec::RAW,
        switchyard::new_message_id(),
    );
    let reply = env.reply_to(Vec::new(), switchyard::codec::RAW, switchyard::new_message_id());
    assert_eq!(allocations() - before, 0, "an envelope and its reply allocated");
    assert_eq!(reply.correlation_id.as_deref(), Some(env.message_id.as_str()));
}
