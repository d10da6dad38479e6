//! Workers: one worker at a time per component, batches for fairness, and no lost
//! wake-ups under contention.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::*;
use crossbeam_channel::unbounded;
use switchyard::{ComponentSpec, HandlerError, Runtime, handler_fn};

#[test]
fn a_component_never_runs_on_two_workers_at_once() {
    let rt = Runtime::builder().workers(4).pin_workers(false).build().unwrap();
    let inside = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let handled = Arc::new(AtomicUsize::new(0));
    let (i, o, h) = (inside.clone(), overlaps.clone(), handled.clone());
    rt.register(
        id("single"),
        ComponentSpec::new(move || {
            let (i, o, h) = (i.clone(), o.clone(), h.clone());
            handler_fn(move |_c, _m| {
                if i.swap(true, Ordering::SeqCst) {
                    o.fetch_add(1, Ordering::SeqCst);
                }
                std::hint::black_box((0..100).sum::<u64>());
                i.store(false, Ordering::SeqCst);
                h.fetch_add(1, Ordering::SeqCst);
                Ok(None)
            })
        })
        .mailbox_capacity(1024)
        .batch(4),
    )
    .unwrap();
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let handle = rt.handle();
            std::thread::spawn(move || {
                for _ in 0..5_000 {
                    handle.send_timeout(ff(&id("single"), b""), WAIT).unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let report = rt.shutdown(WAIT);
    assert!(report.drained);
    assert_eq!(handled.load(Ordering::SeqCst), 20_000);
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
}

#[test]
fn a_busy_component_yields_its_worker_after_a_batch() {
    // One worker; "busy" has a long queue and a batch of 2; "quiet" gets one message.
    let (rt, _dl) = runtime(1);
    let (tx, rx) = unbounded::<String>();
    let gate = Gate::new();
    let (g, t) = (gate.clone(), tx.clone());
    rt.register(
        id("busy"),
        ComponentSpec::new(move || {
            let (g, t) = (g.clone(), t.clone());
            handler_fn(move |_c, m| {
                if m.payload == b"hold" {
                    t.send("busy-holding".into()).unwrap();
                    g.wait();
                } else {
                    t.send("busy".into()).unwrap();
                }
                Ok(None)
            })
        })
        .mailbox_capacity(64)
        .batch(2),
    )
    .unwrap();
    let t = tx.clone();
    rt.register(
        id("quiet"),
        ComponentSpec::new(move || {
            let t = t.clone();
            handler_fn(move |_c, _m| {
                t.send("quiet".into()).unwrap();
                Ok(None)
            })
        }),
    )
    .unwrap();
    rt.try_send(ff(&id("busy"), b"hold")).unwrap();
    assert_eq!(recv(&rx), "busy-holding");
    for _ in 0..10 {
        rt.try_send(ff(&id("busy"), b"work")).unwrap();
    }
    rt.try_send(ff(&id("quiet"), b"")).unwrap();
    gate.open(1);
    let order: Vec<String> = (0..11).map(|_| recv(&rx)).collect();
    let quiet_at = order.iter().position(|s| s == "quiet").unwrap();
    // The first turn handles "hold" and one "work" (batch 2), then "quiet" runs.
    assert_eq!(quiet_at, 1, "quiet ran after busy's first batch: {order:?}");
}

#[test]
fn many_senders_to_many_components_lose_no_wake_up() {
    let rt = Runtime::builder().workers(2).pin_workers(false).build().unwrap();
    let handled = Arc::new(AtomicUsize::new(0));
    for c in 0..50 {
        let h = handled.clone();
        rt.register(
            id(&format!("c{c}")),
            ComponentSpec::new(move || {
                let h = h.clone();
                handler_fn(move |_c, _m| -> Result<Option<Vec<u8>>, HandlerError> {
                    h.fetch_add(1, Ordering::SeqCst);
                    Ok(None)
                })
            })
            .mailbox_capacity(8),
        )
        .unwrap();
    }
    let senders: Vec<_> = (0..3)
        .map(|s| {
            let handle = rt.handle();
            std::thread::spawn(move || {
                for i in 0..20_000usize {
                    let to = id(&format!("c{}", (i * 7 + s) % 50));
                    handle.send_timeout(ff(&to, b""), WAIT).unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    // Every message must be handled without any further nudge: a lost wake-up would leave
    // a component with queued messages and nobody scheduled to run it.
    let report = rt.shutdown(WAIT);
    assert!(report.drained, "{report:?}");
    assert_eq!(handled.load(Ordering::SeqCst), 60_000);
}

#[test]
fn a_component_that_blocks_on_io_does_not_hold_up_the_general_workers() {
    // One general worker and one I/O worker: the component that blocks (on a gate, as on
    // an fsync) is homed on the I/O worker, so the other keeps running.
    let rt = Runtime::builder().workers(1).io_workers(1).pin_workers(false).build().unwrap();
    let gate = Gate::new();
    let (started_tx, started_rx) = crossbeam_channel::unbounded();
    let g = gate.clone();
    rt.register(
        id("fsyncer"),
        ComponentSpec::new(move || {
            let (g, started_tx) = (g.clone(), started_tx.clone());
            handler_fn(move |_c, _m| {
                started_tx.send(std::thread::current().name().map(str::to_string)).unwrap();
                g.wait();
                Ok(None)
            })
        })
        .blocking_io(true),
    )
    .unwrap();
    let quick = payload_probe(&rt, "quick");
    rt.try_send(ff(&id("fsyncer"), b"write")).unwrap();
    assert_eq!(recv(&started_rx).as_deref(), Some("switchyard-io-worker-0"));
    for i in 0..10u8 {
        rt.try_send(ff(&id("quick"), &[i])).unwrap();
        assert_eq!(recv(&quick), vec![i], "the general worker is not held up");
    }
    gate.open(1);
    assert!(rt.shutdown(WAIT).drained);
}

#[test]
fn without_io_workers_a_blocking_component_shares_the_general_workers() {
    let rt = Runtime::builder().workers(1).io_workers(0).pin_workers(false).build().unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    rt.register(
        id("fsyncer"),
        ComponentSpec::new(move || {
            let tx = tx.clone();
            handler_fn(move |_c, _m| {
                tx.send(std::thread::current().name().map(str::to_string)).unwrap();
                Ok(None)
            })
        })
        .blocking_io(true),
    )
    .unwrap();
    rt.try_send(ff(&id("fsyncer"), b"write")).unwrap();
    assert_eq!(recv(&rx).as_deref(), Some("switchyard-worker-0"));
}

#[test]
fn workers_reports_what_was_set_and_io_workers_are_counted_apart() {
    let rt = Runtime::builder().workers(2).pin_workers(false).build().unwrap();
    assert_eq!((rt.workers(), rt.io_workers()), (2, 1), "two general workers and the default I/O worker");
    let rt = Runtime::builder().workers(3).io_workers(0).pin_workers(false).build().unwrap();
    assert_eq!((rt.workers(), rt.io_workers()), (3, 0));
}
