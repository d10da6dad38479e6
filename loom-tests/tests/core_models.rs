//! Loom models of switchyard's concurrency core, each paired with a deliberately broken
//! variant that the model must catch.
//!
//! Run (from the workspace root):
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target/loom cargo test -p switchyard-loom-tests --release`
//!
//! What each model checks, and what the stand-ins for crossbeam and DashMap can and cannot
//! show, is in `docs/design.md` ("What loom checks, and what it cannot").
#![cfg(loom)]

use std::sync::Arc as StdArc;
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use switchyard::model::{Fault, ModelRuntime};
use switchyard::{
    ComponentId, ComponentSpec, DeadLetterReason, HealthStatus, MessageEnvelope, MessageType, RequestError, SendError,
    codec, handler_fn,
};

// The request models: a response, a deadline, a hand-over and a reused id racing.
#[path = "core_models/requests.rs"]
mod requests;
use requests::{
    answered_request_leaves_no_timer_entry, hand_over_racing_deadline, reply_racing_timeout,
    stale_deadline_spares_reused_id, stale_response_spares_reused_id,
};

/// Loom runs model threads as coroutines with small stacks; the core's frames (panic
/// catching, formatting) need more, so every model thread gets 4 MiB.
const STACK: usize = 4 << 20;

fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    thread::Builder::new().stack_size(STACK).spawn(f).expect("loom spawn")
}

/// `loom::model`, with the body on a thread that has a big enough stack, exploring up to
/// `LOOM_MAX_PREEMPTIONS` preemptions (CI: 3).
fn model(f: impl Fn() + Send + Sync + 'static) {
    model_bounded(usize::MAX, f);
}

/// As [`model`], with at most `cap` preemptions whatever `LOOM_MAX_PREEMPTIONS` says: for
/// the heavy models (several threads, many operations each), whose state space at the
/// suite's bound would not fit CI's time budget. The cap is stated at each such model.
fn model_bounded(cap: usize, f: impl Fn() + Send + Sync + 'static) {
    let f = StdArc::new(f);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.unwrap_or(cap).min(cap));
    builder.check(move || {
        let f = f.clone();
        spawn(move || f()).join().unwrap();
    });
}

fn id(s: &str) -> ComponentId {
    ComponentId::new(s).unwrap()
}

fn msg(to: &str, n: u8) -> MessageEnvelope {
    MessageEnvelope::new(MessageType::FireAndForget, id("h"), id(to), vec![n], codec::RAW, format!("m{n}"))
}

/// A component that counts what it handles (a std counter: read after the model's joins).
fn counting(rt: &ModelRuntime, name: &str, capacity: usize) -> StdArc<StdAtomicUsize> {
    let handled = StdArc::new(StdAtomicUsize::new(0));
    let h = handled.clone();
    rt.register(
        id(name),
        ComponentSpec::new(move || {
            let h = h.clone();
            handler_fn(move |_ctx, _msg| {
                h.fetch_add(1, StdOrdering::SeqCst);
                Ok(None)
            })
        })
        .mailbox_capacity(capacity)
        .batch(1),
    )
    .unwrap();
    handled
}

/// Two senders and one worker: every message is handled exactly once, the worker never
/// sleeps through a message (a lost wake-up shows as a loom deadlock: the worker parked
/// forever), and the component is never queued twice (checked inside the core).
fn two_senders_one_worker(fault: Fault) {
    model(move || {
        let rt = ModelRuntime::with_fault(1, fault);
        let handled = counting(&rt, "c", 4);
        let senders: Vec<_> = (0..2u8)
            .map(|n| {
                let rt = rt.clone();
                spawn(move || rt.try_send(msg("c", n)).expect("capacity 4 holds both"))
            })
            .collect();
        while handled.load(StdOrdering::SeqCst) < 2 {
            rt.worker_iteration(0);
        }
        for s in senders {
            s.join().unwrap();
        }
        assert_eq!(handled.load(StdOrdering::SeqCst), 2);
        assert!(!rt.run_one(0) || handled.load(StdOrdering::SeqCst) == 2);
        let s = rt.stats();
        assert_eq!(s.messages_handled, 2);
        assert!(s.is_balanced());
    });
}

#[test]
fn two_senders_one_worker_handles_each_message_once() {
    two_senders_one_worker(Fault::None);
}

#[test]
fn two_senders_one_worker_catches_a_missing_recheck() {
    // The stranded message leaves the worker parked forever: loom reports a deadlock.
    expect_model_failure("two_senders_one_worker", "SkipRecheck", "deadlock");
}

/// A send through a `ComponentRef` (pinned through the component's gate: the reference
/// holds the component, not the registry entry) racing the component's unregistration: the message is handled,
/// dead-lettered, or handed back as `Closed`, exactly once, and never lands after the drain.
fn component_ref_racing_unregister(fault: Fault) {
    model(move || {
        let rt = ModelRuntime::with_fault(1, fault);
        let handled = counting(&rt, "c", 2);
        let target = rt.resolve(&id("c")).expect("registered");
        let sent_done = Arc::new(AtomicBool::new(false));
        let sender = {
            let done = sent_done.clone();
            spawn(move || {
                let r = target.try_send(msg("c", 1));
                done.store(true, Ordering::Release);
                r
            })
        };
        rt.unregister(&id("c")).unwrap();
        while !sent_done.load(Ordering::Acquire) {
            if !rt.run_one(0) {
                thread::yield_now();
            }
        }
        let sent = sender.join().unwrap();
        while rt.run_one(0) {}
        assert!(!matches!(sent, Err(SendError::NoSuchComponent(_))), "a reference never looks the id up");
        assert_handled_dead_or_handed_back(&sent, &handled, &rt.dead_letters());
        assert!(rt.stats().is_balanced());
    });
}

#[test]
fn component_ref_racing_unregister_never_loses_the_message() {
    component_ref_racing_unregister(Fault::None);
}

#[test]
fn component_ref_racing_unregister_catches_a_close_that_does_not_pass_the_gate() {
    expect_model_failure(
        "component_ref_racing_unregister",
        "SkipRefGate",
        "an accepted message is handled or dead-lettered, once",
    );
}

/// A batch of two messages racing the worker that drains the first: the one `SCHEDULED`
/// RMW after the last push publishes both, so the worker handles each once and never parks
/// with a message queued.
fn batch_send_racing_the_worker(fault: Fault) {
    model(move || {
        let rt = ModelRuntime::with_fault(1, fault);
        let handled = counting(&rt, "c", 4);
        let sender = {
            let rt = rt.clone();
            spawn(move || rt.send_batch(vec![msg("c", 1), msg("c", 2)]).expect("capacity 4 holds both"))
        };
        while handled.load(StdOrdering::SeqCst) < 2 {
            rt.worker_iteration(0);
        }
        sender.join().unwrap();
        assert_eq!(handled.load(StdOrdering::SeqCst), 2);
        let s = rt.stats();
        assert_eq!((s.messages_routed, s.messages_handled), (2, 2));
        assert!(s.is_balanced());
    });
}

#[test]
fn batch_send_racing_the_worker_handles_each_message_once() {
    batch_send_racing_the_worker(Fault::None);
}

#[test]
fn batch_send_racing_the_worker_catches_a_schedule_after_the_first_push() {
    // The second message is stranded and the worker parks forever: loom reports a deadlock.
    expect_model_failure("batch_send_racing_the_worker", "ScheduleAfterFirstPush", "deadlock");
}

/// The outcome of a send of message 1 to "c" racing its unregistration: accepted and then
/// handled or dead-lettered exactly once, or refused with the envelope handed back.
fn assert_handled_dead_or_handed_back(
    sent: &Result<(), SendError>,
    handled: &StdAtomicUsize,
    dead: &[switchyard::DeadLetter],
) {
    let to_c = |d: &&switchyard::DeadLetter| d.envelope.to == id("c") && d.envelope.payload == vec![1];
    match sent {
        Ok(()) => {
            let handled_here = usize::from(handled.load(StdOrdering::SeqCst) > 0);
            let dead_here = dead.iter().filter(to_c).count();
            assert_eq!(handled_here + dead_here, 1, "an accepted message is handled or dead-lettered, once");
        }
        Err(e) => {
            assert!(matches!(e, SendError::NoSuchComponent(_) | SendError::Closed(_)), "{e:?}");
            assert_eq!(e.envelope().payload, vec![1], "the envelope is handed back");
            assert!(!dead.iter().any(|d| to_c(&d)));
        }
    }
}

/// Unregister racing two deliveries to the same component: a host send (which pushes with
/// the registry entry pinned) and a response to a request the component made (pushed into
/// its outcome lane through the requester's handle, not through the registry). Each is
/// handled, dead-lettered, or handed back to its sender; never lost, never twice.
fn unregister_racing_send(fault: Fault) {
    // Heavy: three threads of several operations each. At 3 preemptions it runs for tens of
    // minutes; 2 covers every interleaving with two preemptions in about a minute.
    model_bounded(2, move || {
        let rt = ModelRuntime::with_fault(1, fault);
        let handled = counting(&rt, "c", 2);
        counting(&rt, "svc", 2);
        let request = MessageEnvelope::new(MessageType::Request, id("c"), id("svc"), vec![], codec::RAW, "req-1");
        let response = request.reply_to(vec![9], codec::RAW, "resp-1");
        rt.request_from(&id("c"), request).unwrap();
        let sent_done = Arc::new(AtomicBool::new(false));
        let unreg_done = Arc::new(AtomicBool::new(false));
        let sender = {
            let (rt, done) = (rt.clone(), sent_done.clone());
            spawn(move || {
                let r = rt.try_send(msg("c", 1));
                rt.respond(response);
                done.store(true, Ordering::Release);
                r
            })
        };
        let unregisterer = {
            let (rt, done) = (rt.clone(), unreg_done.clone());
            spawn(move || {
                rt.unregister(&id("c")).unwrap();
                done.store(true, Ordering::Release);
            })
        };
        // The worker runs concurrently with both, never parking (there may be no work).
        while !(sent_done.load(Ordering::Acquire) && unreg_done.load(Ordering::Acquire)) {
            if !rt.run_one(0) {
                thread::yield_now();
            }
        }
        let sent = sender.join().unwrap();
        unregisterer.join().unwrap();
        while rt.run_one(0) {}
        assert_handled_dead_or_handed_back(&sent, &handled, &rt.dead_letters());
        let s = rt.stats();
        assert!(s.is_balanced(), "the response is handled or dead-lettered, once: {s:?}");
    });
}

#[test]
fn unregister_racing_send_never_loses_the_message() {
    unregister_racing_send(Fault::None);
}

#[test]
fn unregister_racing_send_catches_a_close_that_does_not_wait_for_senders() {
    expect_model_failure(
        "unregister_racing_send",
        "CloseWithoutWaiting",
        "the response is handled or dead-lettered, once",
    );
}

/// A component that stops (its handler crashes under a `Temporary` policy, so it is not
/// restarted) while a host send to it is in flight. The sender pushes with the registry
/// entry pinned and is not counted on the state word; the stopping worker's registry
/// barrier is what keeps the message from landing after the final drain. The message is
/// dead-lettered or handed back to its sender; never stranded in the closed mailbox.
fn component_stop_racing_send(fault: Fault) {
    model(move || {
        let rt = ModelRuntime::with_fault(1, fault);
        rt.register(
            id("c"),
            ComponentSpec::new(|| handler_fn(|_ctx, _msg| Err(switchyard::HandlerError::crash("boom"))))
                .mailbox_capacity(2)
                .batch(1)
                .restart_policy(switchyard::RestartPolicy::Temporary),
        )
        .unwrap();
        while rt.run_one(0) {} // init
        rt.try_send(msg("c", 0)).unwrap(); // the message that stops it
        let done = Arc::new(AtomicBool::new(false));
        let sender = {
            let (rt, done) = (rt.clone(), done.clone());
            spawn(move || {
                let r = rt.try_send(msg("c", 1));
                done.store(true, Ordering::Release);
                r
            })
        };
        while !done.load(Ordering::Acquire) {
            if !rt.run_one(0) {
                thread::yield_now();
            }
        }
        let sent = sender.join().unwrap();
        while rt.run_one(0) {}
        let dead = rt.dead_letters();
        let second = |d: &&switchyard::DeadLetter| d.envelope.payload == vec![1];
        match sent {
            Ok(()) => {
                assert_eq!(dead.iter().filter(second).count(), 1, "an accepted message is dead-lettered once");
            }
            Err(e) => {
                assert!(matches!(e, SendError::Closed(_)), "{e:?}");
                assert_eq!(e.envelope().payload, vec![1], "the envelope is handed back");
                assert!(!dead.iter().any(|d| second(&d)));
            }
        }
        assert!(rt.stats().is_balanced(), "{:?}", rt.stats());
    });
}

#[test]
fn component_stop_racing_send_never_strands_the_message() {
    component_stop_racing_send(Fault::None);
}

#[test]
fn component_stop_racing_send_catches_a_close_without_the_registry_barrier() {
    expect_model_failure("component_stop_racing_send", "SkipRegistryBarrier", "dead-lettered once");
}

/// Shutdown racing sends: every send is rejected (envelope handed back) or accepted and
/// then dead-lettered as `Shutdown`; the accounting identity holds.
fn shutdown_racing_sends(fault: Fault) {
    model(move || {
        let rt = ModelRuntime::with_fault(1, fault);
        let handled = counting(&rt, "c", 4);
        let sender = {
            let rt = rt.clone();
            spawn(move || {
                let mut accepted = 0;
                for n in 0..2u8 {
                    match rt.try_send(msg("c", n)) {
                        Ok(()) => accepted += 1,
                        Err(SendError::Closed(env)) => assert_eq!(env.payload, vec![n]),
                        Err(other) => panic!("unexpected {other:?}"),
                    }
                }
                accepted
            })
        };
        rt.begin_shutdown();
        rt.stop_workers();
        rt.close_all();
        let accepted = sender.join().unwrap();
        assert_eq!(handled.load(StdOrdering::SeqCst), 0, "no worker ran");
        let shutdown = rt.dead_letters().iter().filter(|d| d.reason == DeadLetterReason::Shutdown).count();
        assert_eq!(shutdown, accepted, "every accepted message is dead-lettered at shutdown");
        assert!(rt.stats().is_balanced());
    });
}

#[test]
fn shutdown_racing_sends_accounts_for_every_message() {
    shutdown_racing_sends(Fault::None);
}

#[test]
fn shutdown_racing_sends_catches_a_close_without_the_registry_barrier() {
    // Host sends push with the registry entry pinned: the shutdown's close must pass the
    // registry barrier before its final drain.
    expect_model_failure("shutdown_racing_sends", "SkipRegistryBarrier", "dead-lettered at shutdown");
}

/// Two runtimes in one process, one worker each: a thread that is worker 0 of runtime `a`
/// (a handler there) sends to a component of runtime `b`, whose worker 0 may be parked.
/// The sender must unpark it: being worker 0 of *another* runtime is no reason to skip the
/// wake-up. (A missed one leaves `b`'s worker parked forever: loom reports a deadlock.)
fn cross_runtime_wakeup(fault: Fault) {
    model(move || {
        let a = ModelRuntime::with_fault(1, fault);
        let b = ModelRuntime::with_fault(1, fault);
        let handled = counting(&b, "sink", 2);
        while b.run_one(0) {} // init
        let sender = {
            let (a, b) = (a.clone(), b.clone());
            spawn(move || {
                a.act_as_worker(0);
                b.try_send(msg("sink", 1)).expect("capacity 2 holds it");
            })
        };
        b.act_as_worker(0);
        while handled.load(StdOrdering::SeqCst) < 1 {
            b.worker_iteration(0);
        }
        sender.join().unwrap();
        assert!(b.stats().is_balanced());
    });
}

#[test]
fn cross_runtime_send_wakes_the_other_runtimes_worker() {
    cross_runtime_wakeup(Fault::None);
}

#[test]
fn cross_runtime_send_catches_a_worker_identity_without_the_runtime() {
    expect_model_failure("cross_runtime_wakeup", "WorkerIndexOnly", "deadlock");
}

/// A component subscribes to a topic while the topic's last subscriber leaves it: the new
/// subscription is kept (the topic is removed only if it is still empty at that moment).
fn subscribe_racing_last_unsubscribe(fault: Fault) {
    model(move || {
        let rt = ModelRuntime::with_fault(1, fault);
        rt.subscribe("t", id("old"));
        let leaver = {
            let rt = rt.clone();
            spawn(move || rt.unsubscribe("t", &id("old")))
        };
        rt.subscribe("t", id("new"));
        leaver.join().unwrap();
        assert_eq!(rt.subscribers("t"), vec![id("new")], "a subscription vanished");
    });
}

#[test]
fn subscribe_racing_the_last_unsubscribe_keeps_the_subscription() {
    subscribe_racing_last_unsubscribe(Fault::None);
}

#[test]
fn subscribe_racing_the_last_unsubscribe_catches_a_split_update_and_removal() {
    expect_model_failure("subscribe_racing_last_unsubscribe", "SplitUnsubscribe", "a subscription vanished");
}

/// A sender blocked in `send_timeout` on a full mailbox (capacity 1) is woken when the
/// worker takes the message that filled it, and its message then goes in. Loom never times
/// a wait out, so a wake-up the owner skips leaves the sender asleep forever: a deadlock.
fn blocked_send_woken_by_room(fault: Fault) {
    model(move || {
        let rt = ModelRuntime::with_fault(1, fault);
        let handled = counting(&rt, "c", 1);
        while rt.run_one(0) {} // init
        rt.try_send(msg("c", 0)).expect("the empty mailbox takes the first message");
        let sender = {
            let rt = rt.clone();
            spawn(move || rt.send_timeout(msg("c", 1), std::time::Duration::from_secs(3600)))
        };
        while handled.load(StdOrdering::SeqCst) < 2 {
            rt.worker_iteration(0);
        }
        sender.join().unwrap().expect("the blocked send goes in once there is room");
        assert!(rt.stats().is_balanced());
    });
}

#[test]
fn blocked_send_is_woken_when_the_worker_makes_room() {
    blocked_send_woken_by_room(Fault::None);
}

#[test]
fn blocked_send_catches_an_owner_that_skips_the_wake_up() {
    expect_model_failure("blocked_send_woken_by_room", "SkipRoomWake", "deadlock");
}

/// A sender blocked on a full mailbox whose component is unregistered gives up at once
/// with the envelope (`Closed`), instead of sleeping until its deadline; the message that
/// filled the mailbox is dead-lettered. A close that does not wake blocked senders leaves
/// this one asleep (loom never times a wait out): a deadlock.
fn unregister_wakes_blocked_sender(fault: Fault) {
    model(move || {
        let rt = ModelRuntime::with_fault(1, fault);
        counting(&rt, "c", 1);
        while rt.run_one(0) {} // init
        rt.try_send(msg("c", 0)).expect("the empty mailbox takes the first message");
        let sender = {
            let rt = rt.clone();
            spawn(move || rt.send_timeout(msg("c", 1), std::time::Duration::from_secs(3600)))
        };
        rt.unregister(&id("c")).unwrap();
        match sender.join().unwrap() {
            Err(SendError::Closed(env)) | Err(SendError::NoSuchComponent(env)) => assert_eq!(env.payload, vec![1]),
            other => panic!("the blocked sender must get its envelope back, got {other:?}"),
        }
        while rt.run_one(0) {} // the worker drains the closed component
        let dead = rt.dead_letters();
        assert!(dead.iter().any(|d| d.envelope.payload == vec![0] && d.reason == DeadLetterReason::Unregistered));
        assert!(rt.stats().is_balanced());
    });
}

#[test]
fn unregister_wakes_a_blocked_sender_with_its_envelope() {
    unregister_wakes_blocked_sender(Fault::None);
}

#[test]
fn unregister_catches_a_close_that_does_not_wake_blocked_senders() {
    expect_model_failure("unregister_wakes_blocked_sender", "CloseWithoutWakingSenders", "deadlock");
}

/// A worker parks with nothing to do; a send unparks it. The parker's notify must take the
/// parker's lock, or it can slip in between the worker's "going to sleep" and its sleep:
/// then the worker sleeps through the message (a deadlock in the model).
fn parked_worker_wakes_for_a_send(fault: Fault) {
    model(move || {
        let rt = ModelRuntime::with_fault(1, fault);
        let handled = counting(&rt, "c", 2);
        while rt.run_one(0) {} // init
        let sender = {
            let rt = rt.clone();
            spawn(move || rt.try_send(msg("c", 1)).expect("room for one"))
        };
        while handled.load(StdOrdering::SeqCst) < 1 {
            rt.worker_iteration(0);
        }
        sender.join().unwrap();
    });
}

#[test]
fn parked_worker_wakes_for_a_send_to_its_component() {
    parked_worker_wakes_for_a_send(Fault::None);
}

#[test]
fn parked_worker_catches_a_notify_without_the_parkers_lock() {
    expect_model_failure("parked_worker_wakes_for_a_send", "NotifyWithoutLock", "deadlock");
}

/// A health check racing the component's unregistration: it finds no component (after the
/// registry removal), or its probe is refused (answered `Stopped` at once), or pushed before
/// the close and answered `Stopped` by the drain. Whatever the order, it ends answered:
/// never dropped with nobody left to answer it.
fn health_probe_racing_unregister(fault: Fault) {
    model(move || {
        let rt = ModelRuntime::with_fault(1, fault);
        counting(&rt, "c", 2);
        while rt.run_one(0) {} // init
        let asker = {
            let rt = rt.clone();
            spawn(move || rt.ask_health(&id("c")))
        };
        rt.unregister(&id("c")).unwrap();
        while rt.run_one(0) {}
        let ask = asker.join().unwrap();
        while rt.run_one(0) {} // the asker's push may have scheduled the component last
        let answer = ask.answer().expect("a probe was left unanswered");
        assert!(matches!(answer, HealthStatus::Stopped | HealthStatus::NoSuchComponent), "{answer:?}");
    });
}

#[test]
fn health_probe_racing_unregister_is_answered_stopped() {
    health_probe_racing_unregister(Fault::None);
}

#[test]
fn health_probe_racing_unregister_catches_a_drain_that_drops_probes() {
    expect_model_failure("health_probe_racing_unregister", "DrainDropsProbes", "a probe was left unanswered");
}

// ----- running a broken variant -------------------------------------------------------------
//
// A failing loom model may abort the process (loom's objects are dropped after the failed
// execution, e.g. on a deadlock), so each broken variant runs in a child process: this test
// binary re-executed with `model_child` selected and the model named in the environment.

const CHILD_ENV: &str = "SWITCHYARD_LOOM_CHILD";

fn fault_named(name: &str) -> Fault {
    match name {
        "None" => Fault::None,
        "SkipRecheck" => Fault::SkipRecheck,
        "CloseWithoutWaiting" => Fault::CloseWithoutWaiting,
        "PeekThenRemove" => Fault::PeekThenRemove,
        "SkipRegistryBarrier" => Fault::SkipRegistryBarrier,
        "WorkerIndexOnly" => Fault::WorkerIndexOnly,
        "SplitUnsubscribe" => Fault::SplitUnsubscribe,
        "SkipRoomWake" => Fault::SkipRoomWake,
        "CloseWithoutWakingSenders" => Fault::CloseWithoutWakingSenders,
        "ExpireById" => Fault::ExpireById,
        "SkipDeadlineRecheck" => Fault::SkipDeadlineRecheck,
        "NotifyWithoutLock" => Fault::NotifyWithoutLock,
        "ScheduleAfterFirstPush" => Fault::ScheduleAfterFirstPush,
        "DrainDropsProbes" => Fault::DrainDropsProbes,
        "HandOverByReinsert" => Fault::HandOverByReinsert,
        "ResponseById" => Fault::ResponseById,
        "SkipRefGate" => Fault::SkipRefGate,
        other => panic!("unknown fault {other}"),
    }
}

#[test]
#[ignore = "run by expect_model_failure in a child process"]
fn model_child() {
    let spec = std::env::var(CHILD_ENV).expect("child mode needs the model name");
    let (model, fault) = spec.split_once(':').expect("model:fault");
    let fault = fault_named(fault);
    match model {
        "two_senders_one_worker" => two_senders_one_worker(fault),
        "unregister_racing_send" => unregister_racing_send(fault),
        "reply_racing_timeout" => reply_racing_timeout(fault),
        "shutdown_racing_sends" => shutdown_racing_sends(fault),
        "component_stop_racing_send" => component_stop_racing_send(fault),
        "cross_runtime_wakeup" => cross_runtime_wakeup(fault),
        "subscribe_racing_last_unsubscribe" => subscribe_racing_last_unsubscribe(fault),
        "blocked_send_woken_by_room" => blocked_send_woken_by_room(fault),
        "unregister_wakes_blocked_sender" => unregister_wakes_blocked_sender(fault),
        "stale_deadline_spares_reused_id" => stale_deadline_spares_reused_id(fault),
        "stale_response_spares_reused_id" => stale_response_spares_reused_id(fault),
        "answered_request_leaves_no_timer_entry" => answered_request_leaves_no_timer_entry(fault),
        "parked_worker_wakes_for_a_send" => parked_worker_wakes_for_a_send(fault),
        "batch_send_racing_the_worker" => batch_send_racing_the_worker(fault),
        "component_ref_racing_unregister" => component_ref_racing_unregister(fault),
        "health_probe_racing_unregister" => health_probe_racing_unregister(fault),
        "hand_over_racing_deadline" => hand_over_racing_deadline(fault),
        other => panic!("unknown model {other}"),
    }
}

/// Runs `model` with `fault` in a child process and asserts that loom found the bug: the
/// child fails, and its output contains `expected`.
fn expect_model_failure(model: &str, fault: &str, expected: &str) {
    let exe = std::env::current_exe().expect("test binary path");
    let out = std::process::Command::new(exe)
        .args(["--exact", "model_child", "--include-ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{model}:{fault}"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("child test process runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "loom did not catch {fault} in {model}:\n{text}");
    assert!(text.contains(expected), "{model} with {fault} failed, but not as expected ({expected:?}):\n{text}");
}
