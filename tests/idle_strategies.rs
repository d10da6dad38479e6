//! Idle strategies: whatever a worker does when it has nothing to run (spin, back off,
//! park), messages and requests are delivered, shutdown drains, and the strategy is the one
//! asked for: a busy-spinning worker never sleeps while idle, a parking one does.

mod common;

use std::time::Duration;

use common::*;
use crossbeam_channel::unbounded;
use switchyard::{BuildError, ComponentSpec, IdleStrategy, MessageType, Runtime, handler_fn};

const STRATEGIES: [IdleStrategy; 4] = [
    IdleStrategy::BusySpin,
    IdleStrategy::Backoff { spins: 200, yields: 0 },
    IdleStrategy::Backoff { spins: 10, yields: 100 },
    IdleStrategy::Park,
];

fn runtime_with(strategy: IdleStrategy) -> Runtime {
    Runtime::builder().workers(1).pin_workers(false).idle_strategy(strategy).build().expect("runtime starts")
}

/// An echo component that also reports the kernel thread of the worker running it.
fn echo_reporting_its_thread(rt: &Runtime) -> crossbeam_channel::Receiver<String> {
    let (tx, rx) = unbounded();
    rt.register(
        id("echo"),
        ComponentSpec::new(move || {
            let tx = tx.clone();
            handler_fn(move |_ctx, env| {
                let tid = std::fs::read_link("/proc/thread-self")
                    .map(|p| format!("/proc/{}", p.display()))
                    .unwrap_or_default();
                let _ = tx.send(tid);
                Ok((env.message_type == MessageType::Request).then(|| env.payload.clone()))
            })
        }),
    )
    .expect("register echo");
    rx
}

#[test]
fn every_strategy_delivers_messages_and_requests_and_drains_at_shutdown() {
    for strategy in STRATEGIES {
        let rt = runtime_with(strategy);
        let seen = echo_reporting_its_thread(&rt);
        for round in 0..50u8 {
            rt.try_send(ff(&id("echo"), &[round])).expect("send");
            recv(&seen);
            let reply = rt.request(req(&id("echo"), &[round]), WAIT).expect("request sent");
            assert_eq!(reply.wait().expect("echo replies").payload, vec![round], "{strategy:?}");
            recv(&seen);
        }
        // A last message just before shutdown: a busy-spinning worker is lingering on the
        // echo (holding it scheduled) when the drain begins, and must let go.
        rt.try_send(ff(&id("echo"), b"last")).expect("send");
        let report = rt.shutdown(Duration::from_secs(10));
        assert!(report.drained, "{strategy:?}: the drain saw every worker idle");
        assert!(report.is_balanced(), "{strategy:?}: {report:?}");
        assert_eq!(report.stats.messages_handled, 151, "{strategy:?}");
    }
}

/// The scheduler state of kernel thread `task` ("/proc/<pid>/task/<tid>"): 'R' running or
/// runnable, 'S' sleeping, ...
#[cfg(target_os = "linux")]
fn thread_state(task: &str) -> char {
    let stat = std::fs::read_to_string(format!("{task}/stat")).expect("the worker thread is alive");
    // The state follows the parenthesised command name, which may itself contain spaces.
    let after = &stat[stat.rfind(')').expect("stat has a command name") + 1..];
    after.trim_start().chars().next().expect("stat has a state")
}

#[cfg(target_os = "linux")]
#[test]
fn a_busy_spinning_worker_never_sleeps_while_idle() {
    let rt = runtime_with(IdleStrategy::BusySpin);
    let seen = echo_reporting_its_thread(&rt);
    rt.try_send(ff(&id("echo"), b"x")).expect("send");
    let task = recv(&seen);
    let states: Vec<char> = (0..2000).map(|_| thread_state(&task)).collect();
    assert!(!states.contains(&'S'), "the worker slept while idle: {:?}", states.iter().filter(|&&c| c == 'S').count());
    rt.shutdown(Duration::from_secs(10));
}

#[cfg(target_os = "linux")]
#[test]
fn a_parking_worker_sleeps_once_idle() {
    let rt = runtime_with(IdleStrategy::Park);
    let seen = echo_reporting_its_thread(&rt);
    rt.try_send(ff(&id("echo"), b"x")).expect("send");
    let task = recv(&seen);
    until("the idle worker sleeps", || thread_state(&task) == 'S');
    // And wakes for the next message.
    rt.try_send(ff(&id("echo"), b"y")).expect("send");
    assert_eq!(recv(&seen), task, "the same worker runs the component");
    rt.shutdown(Duration::from_secs(10));
}

#[test]
fn an_absurd_backoff_is_refused_at_build() {
    let err = Runtime::builder()
        .idle_strategy(IdleStrategy::Backoff { spins: u32::MAX, yields: 0 })
        .build()
        .err()
        .expect("u32::MAX spins is refused");
    assert!(matches!(&err, BuildError::InvalidConfig(why) if why.contains("spins")), "{err:?}");
}
