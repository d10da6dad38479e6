//! Shared helpers for the integration tests: ids, envelopes, runtimes, gates.
#![allow(dead_code)]

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};
use switchyard::{
    ComponentConfig, ComponentId, ComponentSpec, DeadLetter, MessageEnvelope, MessageType, Runtime, codec, handler_fn,
    new_message_id,
};

/// Generous bound for waiting on a channel: a test fails rather than hangs.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn id(s: &str) -> ComponentId {
    ComponentId::new(s).expect("valid test id")
}

pub fn ff(to: &ComponentId, payload: &[u8]) -> MessageEnvelope {
    MessageEnvelope::new(
        MessageType::FireAndForget,
        id("host"),
        to.clone(),
        payload.to_vec(),
        codec::RAW,
        new_message_id(),
    )
}

pub fn req(to: &ComponentId, payload: &[u8]) -> MessageEnvelope {
    MessageEnvelope::new(MessageType::Request, id("host"), to.clone(), payload.to_vec(), codec::RAW, new_message_id())
}

pub fn publish(topic: &str, payload: &[u8]) -> MessageEnvelope {
    MessageEnvelope::new(MessageType::Publish, id("host"), id("host"), payload.to_vec(), codec::RAW, new_message_id())
        .with_topic(topic)
}

/// A runtime with `workers` unpinned workers and a dead-letter hook feeding a channel.
pub fn runtime(workers: usize) -> (Runtime, Receiver<DeadLetter>) {
    let (tx, rx) = unbounded();
    let rt = Runtime::builder()
        .workers(workers)
        .pin_workers(false)
        .dead_letter_hook(move |d| {
            let _ = tx.send(d);
        })
        .build()
        .expect("runtime starts");
    (rt, rx)
}

/// A one-shot gate a handler can block on until the test opens it.
#[derive(Clone)]
pub struct Gate {
    tx: Sender<()>,
    rx: Receiver<()>,
}

impl Gate {
    pub fn new() -> Self {
        let (tx, rx) = unbounded();
        Self { tx, rx }
    }

    /// Lets `n` waiters through.
    pub fn open(&self, n: usize) {
        for _ in 0..n {
            self.tx.send(()).unwrap();
        }
    }

    pub fn wait(&self) {
        self.rx.recv_timeout(WAIT).expect("gate opened in time");
    }
}

/// Registers `name` as a component that forwards the payload of every message it handles
/// to the returned channel.
pub fn payload_probe(rt: &Runtime, name: &str) -> Receiver<Vec<u8>> {
    let (tx, rx) = unbounded();
    rt.register(
        id(name),
        ComponentSpec::new(move || {
            let tx = tx.clone();
            handler_fn(move |_c, m| {
                tx.send(m.payload.clone()).unwrap();
                Ok(None)
            })
        }),
    )
    .unwrap();
    rx
}

/// Registers `name` with a handler that reports each start on the returned receiver and
/// then blocks on `gate`, so a test can hold its worker and fill its mailbox
/// deterministically.
pub fn blocked_component(rt: &Runtime, name: &str, capacity: usize, gate: &Gate) -> Receiver<()> {
    let (started_tx, started_rx) = unbounded();
    let g = gate.clone();
    rt.register(
        id(name),
        ComponentSpec::new(move || {
            let (g, started_tx) = (g.clone(), started_tx.clone());
            handler_fn(move |_c, _m| {
                started_tx.send(()).unwrap();
                g.wait();
                Ok(None)
            })
        })
        .mailbox_capacity(capacity),
    )
    .unwrap();
    started_rx
}

/// Registers a component "holder" that holds its worker until `gate` opens, so messages for
/// other components on that worker queue up first. Returns once it holds the worker.
pub fn hold_worker(rt: &Runtime, gate: &Gate) {
    let held = blocked_component(rt, "holder", ComponentConfig::default().mailbox_capacity, gate);
    rt.try_send(ff(&id("holder"), b"")).unwrap();
    recv(&held);
}

/// Receives one item or fails the test after [`WAIT`].
pub fn recv<T>(rx: &Receiver<T>) -> T {
    rx.recv_timeout(WAIT).expect("expected event did not arrive in time")
}

/// Drives a future to completion on this thread without an async runtime.
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Polls `cond` (yielding) until it holds; panics after `WAIT`. For state that no channel
/// reports, e.g. a counter bumped just after the event a test waited for.
pub fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::yield_now();
    }
}
/// The value of one series (`name{labels}` exactly as rendered) in a Prometheus scrape.
pub fn series_value(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{series} is not in the scrape:\n{scrape}"))
        .parse()
        .expect("a number")
}

#[cfg(feature = "cluster")]
pub mod faults;
pub mod guests;
#[cfg(feature = "cluster")]
pub mod history;
pub mod nats;
pub mod netns;
#[cfg(feature = "cluster")]
pub mod nodes;
#[cfg(feature = "cluster")]
pub mod security;
