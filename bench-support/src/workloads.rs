//! The messaging workloads, each runnable on switchyard, the async baseline and a raw floor.
//!
//! Every message carries a `u64` value in its first 8 payload bytes; whoever handles it adds
//! the value to a [`Tally`], and each run waits until the tally holds exactly the count and
//! the sum it sent, panicking otherwise. A path that drops, duplicates or never delivers a
//! message therefore fails the run instead of looking fast.
//!
//! The floors move the same [`MessageEnvelope`]s through plain crossbeam channels to plain
//! consumer threads: no registry, no scheduling, no broker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TryRecvError, bounded};
use hdrhistogram::Histogram;
use switchyard::{
    ComponentId, ComponentSpec, IdleStrategy, MessageEnvelope, MessageType, Runtime, SendError, codec, handler_fn,
    new_message_id,
};

use crate::baseline::{AsyncBaseline, BaselineHandler};

/// Which implementation a fixture drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// switchyard: direct routing into bounded mailboxes, worker threads.
    Switchyard,
    /// The tokio broker design of the earlier system ([`crate::baseline`]).
    Baseline,
    /// Raw crossbeam channels and plain threads.
    Floor,
}

impl Engine {
    /// All three, in report order.
    pub const ALL: [Engine; 3] = [Engine::Switchyard, Engine::Baseline, Engine::Floor];

    /// Lower-case name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Switchyard => "switchyard",
            Engine::Baseline => "baseline",
            Engine::Floor => "floor",
        }
    }
}

/// Longest a run waits for its messages to be handled before declaring the path broken.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the handlers received: count, sum of values, and the latency of the latest message.
pub struct Tally {
    base: Instant,
    count: AtomicU64,
    sum: AtomicU64,
    last_latency_ns: AtomicU64,
}

impl Tally {
    fn new() -> Arc<Self> {
        Arc::new(Tally {
            base: Instant::now(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            last_latency_ns: AtomicU64::new(0),
        })
    }

    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Records one handled message. A 16-byte payload also carries its send time.
    fn record(&self, payload: &[u8]) {
        let now = self.now_ns();
        let value = u64::from_le_bytes(payload[..8].try_into().expect("8-byte value"));
        if payload.len() >= 16 {
            let sent = u64::from_le_bytes(payload[8..16].try_into().expect("8-byte stamp"));
            self.last_latency_ns.store(now.saturating_sub(sent), Ordering::Relaxed);
        }
        self.sum.fetch_add(value, Ordering::Relaxed);
        // Release: pairs with the Acquire load in `wait_count`, so a waiter that sees the new
        // count also sees `last_latency_ns` and `sum`.
        self.count.fetch_add(1, Ordering::Release);
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// Spins (then yields) until `count` messages were handled; panics after the timeout.
    fn wait_count(&self, count: u64) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let mut spins = 0u32;
        while self.count() < count {
            spins += 1;
            if spins < 10_000 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
                assert!(Instant::now() < deadline, "only {} of {count} messages handled: path broken", self.count());
            }
        }
    }

    /// Waits for `count` messages, then checks nothing extra arrived and the sum matches.
    fn settle(&self, count: u64, sum: u64) {
        self.wait_count(count);
        assert_eq!(self.count(), count, "more messages handled than sent");
        assert_eq!(self.sum.load(Ordering::Relaxed), sum, "checksum mismatch: wrong payloads handled");
    }
}

fn payload(value: u64) -> Vec<u8> {
    value.to_le_bytes().to_vec()
}

/// A fresh fire-and-forget envelope carrying `value`.
fn envelope(from: &ComponentId, to: &ComponentId, value: u64) -> MessageEnvelope {
    MessageEnvelope::new(
        MessageType::FireAndForget,
        from.clone(),
        to.clone(),
        payload(value),
        codec::RAW,
        new_message_id(),
    )
}

fn id(name: String) -> ComponentId {
    ComponentId::new(name).expect("valid component id")
}

enum Driver {
    Switchyard(Box<Runtime>),
    Baseline(AsyncBaseline),
    Floor { tx: Option<Sender<MessageEnvelope>>, consumers: Vec<JoinHandle<()>> },
}

/// A running engine with `components` registered components whose handlers feed one
/// [`Tally`] (and echo requests), plus the bookkeeping needed to verify each run.
pub struct Fixture {
    engine: Engine,
    driver: Driver,
    targets: Vec<ComponentId>,
    host: ComponentId,
    tally: Arc<Tally>,
    sent: u64,
    sent_sum: u64,
    mailbox_capacity: Option<usize>,
    eager_mailboxes: bool,
}

/// Fixture settings.
#[derive(Debug, Clone, Copy)]
pub struct FixtureConfig {
    /// Worker threads (switchyard workers, tokio workers, floor consumer threads).
    pub workers: usize,
    /// Pin switchyard's workers to cores.
    pub pin_workers: bool,
    /// Components registered at start.
    pub components: usize,
    /// switchyard mailbox capacity (None: the default); the floor channel's capacity.
    pub mailbox_capacity: Option<usize>,
    /// switchyard's workers busy-spin ([`switchyard::IdleStrategy::BusySpin`]) and the
    /// floor's consumers spin on `try_recv` instead of blocking. The baseline ignores it.
    pub busy_spin: bool,
    /// switchyard's components allocate their mailboxes at registration instead of on the
    /// first message ([`switchyard::ComponentConfig::lazy_mailbox`] false).
    pub eager_mailboxes: bool,
    /// switchyard records its timing histograms (`RuntimeConfig::timing_metrics`).
    #[cfg(feature = "metrics")]
    pub timing_metrics: bool,
}

impl Fixture {
    /// Starts `engine` and registers `config.components` components.
    pub fn new(engine: Engine, config: FixtureConfig) -> Self {
        let tally = Tally::new();
        let driver = match engine {
            Engine::Switchyard => {
                let idle = if config.busy_spin { IdleStrategy::BusySpin } else { IdleStrategy::default() };
                let builder =
                    Runtime::builder().workers(config.workers).pin_workers(config.pin_workers).idle_strategy(idle);
                #[cfg(feature = "metrics")]
                let builder = builder.timing_metrics(config.timing_metrics);
                Driver::Switchyard(Box::new(builder.build().expect("switchyard runtime")))
            }
            Engine::Baseline => Driver::Baseline(AsyncBaseline::new(config.workers).expect("tokio runtime")),
            Engine::Floor => {
                let (tx, rx) = bounded::<MessageEnvelope>(config.mailbox_capacity.unwrap_or(128));
                let consumers = (0..config.workers)
                    .map(|_| {
                        let rx = rx.clone();
                        let tally = Arc::clone(&tally);
                        let spin = config.busy_spin;
                        std::thread::spawn(move || {
                            if spin {
                                loop {
                                    match rx.try_recv() {
                                        Ok(env) => tally.record(&env.payload),
                                        Err(TryRecvError::Empty) => std::hint::spin_loop(),
                                        Err(TryRecvError::Disconnected) => break,
                                    }
                                }
                            } else {
                                for env in rx {
                                    tally.record(&env.payload);
                                }
                            }
                        })
                    })
                    .collect();
                Driver::Floor { tx: Some(tx), consumers }
            }
        };
        let mut fixture = Fixture {
            engine,
            driver,
            targets: Vec::new(),
            host: id("host".into()),
            tally,
            sent: 0,
            sent_sum: 0,
            mailbox_capacity: config.mailbox_capacity,
            eager_mailboxes: config.eager_mailboxes,
        };
        fixture.register_more(config.components);
        fixture
    }

    /// Which engine this fixture drives.
    /// The switchyard runtime's handle (switchyard fixtures only).
    pub fn handle(&self) -> Option<switchyard::RuntimeHandle> {
        match &self.driver {
            Driver::Switchyard(rt) => Some(rt.handle()),
            _ => None,
        }
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Registers `n` more components (the floor has one channel and only counts them).
    pub fn register_more(&mut self, n: usize) {
        for _ in 0..n {
            let name = id(format!("c{}", self.targets.len()));
            let tally = Arc::clone(&self.tally);
            match &self.driver {
                Driver::Switchyard(rt) => {
                    let mut spec = ComponentSpec::new(move || {
                        let tally = Arc::clone(&tally);
                        handler_fn(move |_ctx, msg| {
                            tally.record(&msg.payload);
                            Ok(msg.is_request().then(|| msg.payload.clone()))
                        })
                    });
                    if let Some(cap) = self.mailbox_capacity {
                        spec = spec.mailbox_capacity(cap);
                    }
                    spec = spec.lazy_mailbox(!self.eager_mailboxes);
                    rt.register(name.clone(), spec).expect("register");
                }
                Driver::Baseline(sys) => {
                    let handler: BaselineHandler = Arc::new(move |msg: &MessageEnvelope| {
                        tally.record(&msg.payload);
                        msg.is_request().then(|| msg.payload.clone())
                    });
                    sys.register(name.clone(), handler);
                }
                Driver::Floor { .. } => {}
            }
            self.targets.push(name);
        }
    }

    fn expect(&mut self, value: u64) {
        self.sent += 1;
        self.sent_sum = self.sent_sum.wrapping_add(value);
    }

    fn settle(&self) {
        self.tally.settle(self.sent, self.sent_sum);
    }

    /// Workload 1: time `iters` sends from this thread into the first component (idle between
    /// chunks), excluding envelope construction; verifies every message was handled.
    pub fn routing(&mut self, iters: u64) -> Duration {
        const CHUNK: u64 = 4096;
        let mut total = Duration::ZERO;
        let mut done = 0;
        while done < iters {
            let n = CHUNK.min(iters - done);
            let target = self.targets[0].clone();
            let envs: Vec<_> = (0..n)
                .map(|i| {
                    let value = self.sent + i + 1;
                    envelope(&self.host, &target, value)
                })
                .collect();
            for env in &envs {
                let value = u64::from_le_bytes(env.payload[..8].try_into().expect("value"));
                self.expect(value);
            }
            let start = Instant::now();
            match &self.driver {
                Driver::Switchyard(rt) => {
                    for env in envs {
                        rt.try_send(env).expect("mailbox sized for a chunk");
                    }
                }
                Driver::Baseline(sys) => sys.block_on(async {
                    for env in envs {
                        sys.publish(env).await.expect("publish");
                    }
                }),
                Driver::Floor { tx, .. } => {
                    let tx = tx.as_ref().expect("floor running");
                    for env in envs {
                        tx.send(env).expect("floor send");
                    }
                }
            }
            total += start.elapsed();
            self.settle();
            done += n;
        }
        total
    }

    /// Workload 1 through a reference: as [`Fixture::routing`], switchyard sending through
    /// a [`switchyard::ComponentRef`] resolved once (outside the clock); the floor and the
    /// baseline send as in [`Fixture::routing`].
    pub fn routing_ref(&mut self, iters: u64) -> Duration {
        let Driver::Switchyard(rt) = &self.driver else {
            return self.routing(iters);
        };
        let target = rt.resolve(&self.targets[0]).expect("the target is registered");
        self.timed_chunks(iters, |f, n| {
            let base = f.sent;
            let envs: Vec<_> = (0..n).map(|i| envelope(&f.host, target.id(), base + i + 1)).collect();
            for i in 0..n {
                f.expect(base + i + 1);
            }
            let start = Instant::now();
            for env in envs {
                target.try_send(env).expect("mailbox sized for a chunk");
            }
            start.elapsed()
        })
    }

    /// Runs `iters` sends in chunks of 4096: `chunk(self, n)` builds `n` envelopes (each
    /// [`Fixture::expect`]ed) and returns the time its sends took; each chunk then settles.
    fn timed_chunks(&mut self, iters: u64, mut chunk: impl FnMut(&mut Self, u64) -> Duration) -> Duration {
        const CHUNK: u64 = 4096;
        let mut total = Duration::ZERO;
        let mut done = 0;
        while done < iters {
            let n = CHUNK.min(iters - done);
            total += chunk(self, n);
            self.settle();
            done += n;
        }
        total
    }

    /// Workload 1, batched: as [`Fixture::routing`], switchyard sending in batches of
    /// `batch` ([`switchyard::RuntimeHandle::send_batch`]); the floor and the baseline,
    /// which have no batch form, send one by one as in [`Fixture::routing`].
    pub fn routing_batched(&mut self, iters: u64, batch: usize) -> Duration {
        let Driver::Switchyard(_) = &self.driver else {
            return self.routing(iters);
        };
        self.timed_chunks(iters, |f, n| {
            let target = f.targets[0].clone();
            let mut batches: Vec<Vec<MessageEnvelope>> = Vec::with_capacity(n as usize / batch + 1);
            let base = f.sent;
            for i in 0..n {
                if (i as usize).is_multiple_of(batch) {
                    batches.push(Vec::with_capacity(batch));
                }
                let value = base + i + 1;
                batches.last_mut().expect("a batch").push(envelope(&f.host, &target, value));
                f.expect(value);
            }
            let Driver::Switchyard(rt) = &f.driver else { unreachable!("checked by the caller") };
            let start = Instant::now();
            for b in batches {
                rt.send_batch(b).expect("mailbox sized for a chunk");
            }
            start.elapsed()
        })
    }

    /// Workload 2: `n` fire-and-forget messages to one component, one at a time on an idle
    /// system; records send-to-handler latency (ns) into `hist`; returns the total time.
    ///
    /// The stamp is taken just before the send call and read on the handling thread, so the
    /// figure includes the cross-thread hand-off and, for an idle worker, its wake-up.
    pub fn fire_and_forget(&mut self, n: u64, hist: &mut Histogram<u64>) -> Duration {
        let target = self.targets[0].clone();
        let tally = Arc::clone(&self.tally);
        let host = self.host.clone();
        let first = self.sent + 1;
        let make = |value: u64| {
            let mut env = envelope(&host, &target, value);
            env.payload.extend_from_slice(&[0; 8]);
            env
        };
        let stamp = |env: &mut MessageEnvelope| env.payload[8..16].copy_from_slice(&tally.now_ns().to_le_bytes());
        let observe = |value: u64, hist: &mut Histogram<u64>| {
            tally.wait_count(value);
            hist.saturating_record(tally.last_latency_ns.load(Ordering::Relaxed).max(1));
        };
        let start = Instant::now();
        match &self.driver {
            Driver::Switchyard(rt) => {
                for value in first..first + n {
                    let mut env = make(value);
                    stamp(&mut env);
                    rt.try_send(env).expect("send");
                    observe(value, hist);
                }
            }
            Driver::Baseline(sys) => sys.block_on(async {
                for value in first..first + n {
                    let mut env = make(value);
                    stamp(&mut env);
                    sys.publish(env).await.expect("publish");
                    observe(value, hist);
                }
            }),
            Driver::Floor { tx, .. } => {
                let tx = tx.as_ref().expect("floor running");
                for value in first..first + n {
                    let mut env = make(value);
                    stamp(&mut env);
                    tx.send(env).expect("send");
                    observe(value, hist);
                }
            }
        }
        let elapsed = start.elapsed();
        for value in first..first + n {
            self.expect(value);
        }
        self.settle();
        elapsed
    }

    /// Workload 4: `n` request-response round trips from this (host) thread to an echo
    /// component, one at a time; records each round trip (ns) into `hist`. The floor is a
    /// ping-pong of the same envelopes with a dedicated echo thread over two
    /// `crossbeam_channel::bounded(1)` channels.
    pub fn request_response(&mut self, n: u64, hist: &mut Histogram<u64>) -> Duration {
        const TIMEOUT: Duration = Duration::from_secs(10);
        let target = self.targets[0].clone();
        let host = self.host.clone();
        let first = self.sent + 1;
        let make = |value: u64| {
            MessageEnvelope::new(
                MessageType::Request,
                host.clone(),
                target.clone(),
                payload(value),
                codec::RAW,
                new_message_id(),
            )
        };
        let check = |value: u64, reply: &MessageEnvelope| assert_eq!(reply.payload, payload(value), "wrong reply");
        let mut total = Duration::ZERO;
        match &self.driver {
            Driver::Switchyard(rt) => {
                for value in first..first + n {
                    let env = make(value);
                    let start = Instant::now();
                    let reply = rt.request(env, TIMEOUT).expect("request").wait().expect("reply");
                    let took = start.elapsed();
                    check(value, &reply);
                    total += took;
                    hist.saturating_record(took.as_nanos() as u64);
                }
            }
            Driver::Baseline(sys) => sys.block_on(async {
                for value in first..first + n {
                    let env = make(value);
                    let start = Instant::now();
                    let reply = sys.request(env, TIMEOUT).await.expect("reply");
                    let took = start.elapsed();
                    check(value, &reply);
                    total += took;
                    hist.saturating_record(took.as_nanos() as u64);
                }
            }),
            Driver::Floor { .. } => {
                let (req_tx, req_rx) = bounded::<MessageEnvelope>(1);
                let (resp_tx, resp_rx) = bounded::<MessageEnvelope>(1);
                let tally = Arc::clone(&self.tally);
                let echo = std::thread::spawn(move || {
                    for env in req_rx {
                        tally.record(&env.payload);
                        resp_tx.send(env).expect("pong");
                    }
                });
                for value in first..first + n {
                    let env = make(value);
                    let start = Instant::now();
                    req_tx.send(env).expect("ping");
                    let reply = resp_rx.recv().expect("pong");
                    let took = start.elapsed();
                    check(value, &reply);
                    total += took;
                    hist.saturating_record(took.as_nanos() as u64);
                }
                drop(req_tx);
                echo.join().expect("echo thread");
            }
        }
        for value in first..first + n {
            self.expect(value);
        }
        self.settle();
        total
    }

    /// Workloads 3 and 7: `producers` host threads send `n` messages in all, round-robin over
    /// the first `active` components (switchyard: `send_timeout`, waiting when a mailbox is
    /// full; baseline: `publish` through the broker; floor: one shared bounded channel read by
    /// `workers` consumer threads). Returns the time until every message was handled.
    pub fn throughput(&mut self, n: u64, producers: usize, active: usize) -> Duration {
        let producers = producers.max(1) as u64;
        let per = n.div_ceil(producers);
        let active = active.clamp(1, self.targets.len().max(1));
        let targets: Vec<ComponentId> =
            if self.targets.is_empty() { vec![self.host.clone()] } else { self.targets[..active].to_vec() };
        let first = self.sent + 1;
        let host = &self.host;
        let driver = &self.driver;
        let start = Instant::now();
        std::thread::scope(|scope| {
            for p in 0..producers {
                let targets = &targets;
                scope.spawn(move || {
                    let values = (0..per).map(move |k| first + p + k * producers);
                    let mut next = p as usize % targets.len();
                    let mut to = || {
                        next = (next + 1) % targets.len();
                        &targets[next]
                    };
                    match driver {
                        Driver::Switchyard(rt) => {
                            for value in values {
                                match rt.send_timeout(envelope(host, to(), value), SETTLE_TIMEOUT) {
                                    Ok(()) => {}
                                    Err(SendError::Full(_)) => panic!("send_timeout gave up: path stuck"),
                                    Err(e) => panic!("send failed: {e}"),
                                }
                            }
                        }
                        Driver::Baseline(sys) => sys.handle().block_on(async {
                            for value in values {
                                sys.publish(envelope(host, to(), value)).await.expect("publish");
                            }
                        }),
                        Driver::Floor { tx, .. } => {
                            let tx = tx.as_ref().expect("floor running");
                            for value in values {
                                tx.send(envelope(host, to(), value)).expect("send");
                            }
                        }
                    }
                });
            }
        });
        self.finish_throughput(first, per * producers, start)
    }

    /// Workload 3, batched producers: as [`Fixture::throughput`], switchyard's producers
    /// sending batches of `batch` fresh envelopes to one target at a time (round-robin over
    /// the active targets, per batch) through [`switchyard::ComponentRef`]s resolved before
    /// the clock starts; a batch refused by a full mailbox goes on with a waiting send of
    /// its first unsent envelope. The floor and the baseline have no batch form: they run
    /// [`Fixture::throughput`].
    pub fn throughput_batched(&mut self, n: u64, producers: usize, active: usize, batch: usize) -> Duration {
        let Driver::Switchyard(rt) = &self.driver else {
            return self.throughput(n, producers, active);
        };
        let producers = producers.max(1) as u64;
        let per = n.div_ceil(producers);
        let active = active.clamp(1, self.targets.len().max(1));
        let refs: Vec<switchyard::ComponentRef> =
            self.targets[..active].iter().map(|t| rt.resolve(t).expect("the target is registered")).collect();
        let first = self.sent + 1;
        let host = &self.host;
        let start = Instant::now();
        std::thread::scope(|scope| {
            for p in 0..producers {
                let refs = &refs;
                scope.spawn(move || {
                    let mut values = (0..per).map(move |k| first + p + k * producers).peekable();
                    let mut next = p as usize % refs.len();
                    while values.peek().is_some() {
                        next = (next + 1) % refs.len();
                        let target = &refs[next];
                        let envs: Vec<_> =
                            values.by_ref().take(batch).map(|v| envelope(host, target.id(), v)).collect();
                        send_all(target, envs);
                    }
                });
            }
        });
        self.finish_throughput(first, per * producers, start)
    }

    /// The end of a throughput run that sent values `first..first + n` from `start`: waits
    /// until all are handled (the clock stops there), then checks them.
    fn finish_throughput(&mut self, first: u64, n: u64, start: Instant) -> Duration {
        for k in 0..n {
            self.expect(first + k);
        }
        self.tally.wait_count(self.sent);
        let elapsed = start.elapsed();
        self.settle();
        elapsed
    }

    /// Number of registered components.
    pub fn components(&self) -> usize {
        self.targets.len()
    }
}

/// Sends `envs` through `target` in batches, waiting for room whenever its mailbox is full.
fn send_all(target: &switchyard::ComponentRef, mut envs: Vec<MessageEnvelope>) {
    while !envs.is_empty() {
        match target.send_batch(envs) {
            Ok(()) => return,
            Err(e) if e.error.kind() == switchyard::SendErrorKind::Full => {
                let mut unsent = e.into_unsent();
                let first = unsent.remove(0);
                target.send_timeout(first, SETTLE_TIMEOUT).expect("send_timeout gave up: path stuck");
                envs = unsent;
            }
            Err(e) => panic!("batch send failed: {e}"),
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Driver::Floor { tx, consumers } = &mut self.driver {
            tx.take();
            for consumer in consumers.drain(..) {
                let _ = consumer.join();
            }
        }
        if let Driver::Switchyard(rt) = &self.driver {
            let report = rt.shutdown(Duration::from_secs(10));
            // Skipped while unwinding: a failed run has already said what went wrong.
            if !std::thread::panicking() {
                assert!(report.stats.is_balanced(), "switchyard accounting unbalanced: {:?}", report.stats);
            }
        }
    }
}

/// Resident set size of this process, in bytes (`VmRSS` from `/proc/self/status`).
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Workload 7 (memory): RSS growth from registering `n` idle components.
#[derive(Debug, Clone, Copy)]
pub struct MemoryProbe {
    /// RSS before registering, bytes.
    pub rss_before: u64,
    /// RSS after registering, bytes.
    pub rss_after: u64,
    /// Components registered.
    pub components: usize,
}

impl MemoryProbe {
    /// RSS growth per component, bytes.
    pub fn bytes_per_component(&self) -> f64 {
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.components.max(1) as f64
    }
}

/// Starts `engine` with no components, then measures RSS before and after registering `n`
/// idle components (default mailbox). Run it in a fresh process: memory freed by earlier
/// work would otherwise be reused and hide the growth.
pub fn memory_probe(engine: Engine, workers: usize, n: usize, eager_mailboxes: bool) -> MemoryProbe {
    let config = FixtureConfig {
        workers,
        pin_workers: false,
        components: 0,
        mailbox_capacity: None,
        busy_spin: false,
        eager_mailboxes,
        #[cfg(feature = "metrics")]
        timing_metrics: false,
    };
    let mut fixture = Fixture::new(engine, config);
    let rss_before = rss_bytes().unwrap_or(0);
    fixture.register_more(n);
    let rss_after = rss_bytes().unwrap_or(0);
    let probe = MemoryProbe { rss_before, rss_after, components: n };
    drop(fixture);
    probe
}

impl FixtureConfig {
    /// The benches' settings: one worker per available core, unpinned (the machine may be
    /// shared), `components` components, mailbox `mailbox_capacity` (None: the default).
    pub fn bench(components: usize, mailbox_capacity: Option<usize>) -> Self {
        FixtureConfig {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            pin_workers: false,
            components,
            mailbox_capacity,
            busy_spin: false,
            eager_mailboxes: false,
            #[cfg(feature = "metrics")]
            timing_metrics: false,
        }
    }
}

/// A latency histogram in ns from 1 ns to 60 s, 3 significant digits (values above saturate).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}
