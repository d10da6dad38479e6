//! The runtime: its settings, the state its threads share ([`Inner`]), and the public
//! [`Runtime`] that starts the threads and shuts them down.
//!
//! `Inner` is assembled from the parts each module owns: the registry
//! ([`crate::registry`]), topics ([`crate::topics`]), pending requests and the timer
//! ([`crate::request`], [`crate::timer`]), the worker pool ([`crate::workers`]), dead
//! letters and stats. Each module adds its own `impl Inner` block, so the path of a send
//! reads in the send module, not in one file that does everything.

use std::time::{Duration, Instant};

use crate::component::Component;
use crate::deadletter::{DeadLetterHook, DeadLetterReason, DeadLetterSink};
use crate::error::{BuildError, RequestError};
use crate::id::ComponentId;
use crate::idle::IdleStrategy;
use crate::registry::Registry;
use crate::request::PendingRequests;
use crate::stats::{RoutingStats, RoutingStatsSnapshot};
use crate::sync::{Arc, AtomicBool};
use crate::timer::{Timer, TimerEvent, TimerKey};
use crate::topics::Topics;
use crate::workers::WorkerPool;

/// A fresh runtime id (unique in the process; never 0).
fn next_runtime_id() -> u64 {
    // A `std` atomic even under loom: it only hands out distinct numbers and orders nothing.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Runtime-wide settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Worker threads. Default: the number of available cores.
    pub workers: usize,
    /// Workers for components that block on I/O ([`crate::ComponentSpec::blocking_io`]:
    /// durable storage writes, files, sockets), beside the `workers`. A component homed on
    /// one of them never holds up the components on the general workers while it waits for
    /// an fsync. Default: 1. With 0, blocking components share the general workers.
    pub io_workers: usize,
    /// Pin each worker to a core (`core_affinity`). Default: false. Pin only on cores the
    /// host dedicates to the runtime (isolated, nothing else scheduled there): a pinned
    /// worker cannot leave its core, so anything else that takes the core (a busy process,
    /// a real-time task, which Linux lets hold a core for 950 ms of every second) stalls
    /// every component homed on that worker for as long. Ignored where pinning is
    /// unsupported.
    pub pin_workers: bool,
    /// What a worker does when it has nothing to run: spin, yield, park (see
    /// [`IdleStrategy`]). Default: spin briefly, then park.
    pub idle_strategy: IdleStrategy,
    /// Largest payload accepted by a send, in bytes. Default: 16 MiB.
    pub max_payload_bytes: usize,
    /// Capacity of the dead-letter queue when no hook is installed. Default: 10 000.
    pub dead_letter_capacity: usize,
    /// How long dropping a [`Runtime`] lets queued messages drain. Default: 5 s.
    pub drop_drain_timeout: Duration,
    /// After the drain, how long shutdown waits for each worker to finish the message in
    /// hand and stop. A worker still busy after that (a handler that never returns) is
    /// left running, detached, and its component reported in [`ShutdownReport::stuck`].
    /// Default: 1 s.
    pub stop_grace: Duration,
    /// Record the handler-time and request-duration histograms through the `metrics`
    /// facade (see [`crate::metrics`]): two clock reads per message handled and per
    /// request. Default: false.
    #[cfg(feature = "metrics")]
    pub timing_metrics: bool,
    /// The sender of the host's typed sends (`tell`, `ask`, `publish_on` on a
    /// [`crate::RuntimeHandle`] or [`crate::ComponentRef`]): what their envelopes carry as
    /// `from`. Default: `host`.
    pub host_id: ComponentId,
    /// The codec typed sends encode with ([`crate::codec::JSON`] or
    /// [`crate::codec::CBOR`]); a typed reply to a request uses the request's own codec when
    /// it is one of these. Default: JSON.
    pub codec: u64,
    /// How long a typed `ask` waits for its answer unless given a timeout of its own.
    /// Default: 5 s.
    pub ask_timeout: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            io_workers: 1,
            pin_workers: false,
            idle_strategy: IdleStrategy::default(),
            max_payload_bytes: 16 << 20,
            dead_letter_capacity: 10_000,
            drop_drain_timeout: Duration::from_secs(5),
            stop_grace: Duration::from_secs(1),
            #[cfg(feature = "metrics")]
            timing_metrics: false,
            host_id: ComponentId::new("host").expect("a valid id"),
            codec: crate::codec::JSON,
            ask_timeout: Duration::from_secs(5),
        }
    }
}

/// Most worker threads a runtime may have.
pub const MAX_WORKERS: usize = 1024;

/// Largest dead-letter queue (its slots are allocated up front).
pub const MAX_DEAD_LETTER_CAPACITY: usize = 1 << 20;

impl RuntimeConfig {
    fn validate(&self) -> Result<(), BuildError> {
        if self.workers > MAX_WORKERS {
            return Err(BuildError::InvalidConfig(format!(
                "workers is {}; at most {MAX_WORKERS} are allowed",
                self.workers
            )));
        }
        if self.io_workers > MAX_WORKERS {
            return Err(BuildError::InvalidConfig(format!(
                "io_workers is {}; at most {MAX_WORKERS} are allowed",
                self.io_workers
            )));
        }
        if let Some(why) = self.idle_strategy.invalid() {
            return Err(BuildError::InvalidConfig(why));
        }
        if self.dead_letter_capacity > MAX_DEAD_LETTER_CAPACITY {
            return Err(BuildError::InvalidConfig(format!(
                "dead_letter_capacity is {}; at most {MAX_DEAD_LETTER_CAPACITY} is allowed",
                self.dead_letter_capacity
            )));
        }
        if !crate::codec::is_serde(self.codec) {
            return Err(BuildError::InvalidConfig(format!(
                "codec is 0x{:x}; typed sends encode with json (0x200) or cbor (0x51)",
                self.codec
            )));
        }
        Ok(())
    }
}

/// What shutdown did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// True when every queued message was handled before the drain deadline.
    pub drained: bool,
    /// Messages dead-lettered as [`DeadLetterReason::Shutdown`] by the final drain.
    pub dead_lettered: u64,
    /// Host requests failed with [`RequestError::Shutdown`].
    pub requests_failed: u64,
    /// The routing counters after everything stopped.
    pub stats: RoutingStatsSnapshot,
    /// Components whose handler was still running when the workers' stop grace ran out
    /// (a handler that never returns). Their worker threads are left running, detached;
    /// their queued messages were dead-lettered like everyone else's.
    pub stuck: Vec<StuckComponent>,
}

impl ShutdownReport {
    /// The accounting identity after shutdown: every message sent was handled,
    /// dead-lettered, rejected at the send, or is held by a stuck handler.
    pub fn is_balanced(&self) -> bool {
        let held: u64 = self.stuck.iter().map(|s| s.messages_held).sum();
        let s = &self.stats;
        s.messages_sent
            == s.messages_handled + s.messages_dead_lettered + s.routing_failures + s.messages_forwarded + held
    }
}

/// A component whose handler did not return by the end of shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckComponent {
    /// The component.
    pub id: ComponentId,
    /// Messages its handler holds: the one it is handling (if the stuck call holds one)
    /// and those awaiting redelivery. Neither handled nor dead-lettered.
    pub messages_held: u64,
}

/// `timeout` from now; a timeout too large to represent means a year.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    Instant::now().checked_add(timeout).unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365))
}

/// Everything the runtime shares between threads.
pub(crate) struct Inner {
    /// This runtime's identity among the runtimes of the process (workers record it).
    pub(crate) id: u64,
    pub(crate) config: RuntimeConfig,
    pub(crate) registry: Registry,
    pub(crate) topics: Topics,
    pub(crate) pending: PendingRequests,
    /// Shared with the host's reply handles, which cancel their request's deadline.
    pub(crate) timer: Arc<Timer>,
    pub(crate) pool: WorkerPool,
    pub(crate) dead: DeadLetterSink,
    pub(crate) stats: RoutingStats,
    /// Cleared once by `begin_shutdown`: host sends and registrations are refused.
    pub(crate) accepting: AtomicBool,
    #[cfg(loom)]
    pub(crate) fault: crate::mailbox::Fault,
    /// A weak reference to the `Arc` holding this runtime, for what keeps a handle past
    /// one call (the WASM host's per-instance state, a deferred reply).
    #[cfg(not(loom))]
    pub(crate) self_ref: std::sync::OnceLock<std::sync::Weak<Inner>>,
    /// The bridge to the cluster this runtime joined, if it did (set once, when built).
    #[cfg(all(feature = "cluster", not(loom)))]
    pub(crate) cluster: std::sync::OnceLock<std::sync::Arc<crate::cluster::Bridge>>,
    /// What the last `record_metrics` exported.
    #[cfg(all(feature = "metrics", not(loom)))]
    pub(crate) exported: crate::metrics::Exported,
}

impl Inner {
    pub(crate) fn new(config: RuntimeConfig, hook: Option<DeadLetterHook>) -> Self {
        Self {
            id: next_runtime_id(),
            registry: Registry::new(),
            topics: Topics::new(),
            pending: PendingRequests::new(),
            timer: Arc::new(Timer::new()),
            pool: WorkerPool::new(config.workers, config.io_workers, config.idle_strategy),
            dead: DeadLetterSink::new(config.dead_letter_capacity, hook),
            stats: RoutingStats::new(),
            config,
            accepting: AtomicBool::new(true),
            #[cfg(loom)]
            fault: crate::mailbox::Fault::None,
            #[cfg(not(loom))]
            self_ref: std::sync::OnceLock::new(),
            #[cfg(all(feature = "cluster", not(loom)))]
            cluster: std::sync::OnceLock::new(),
            #[cfg(all(feature = "metrics", not(loom)))]
            exported: crate::metrics::Exported::default(),
        }
    }

    /// A weak handle to this runtime (set when the runtime is built).
    #[cfg(not(loom))]
    pub(crate) fn weak(&self) -> std::sync::Weak<Inner> {
        self.self_ref.get().cloned().unwrap_or_default()
    }

    /// Closes every component and dead-letters what is queued, on this thread. Call once
    /// the workers stopped (after `stop_workers` and joining those that exited), or from a
    /// loom model. A component whose runner a stuck worker still holds has its queues
    /// drained without it and is returned with what its handler holds.
    pub(crate) fn close_all(&self) -> (u64, Vec<StuckComponent>) {
        let comps = self.registry.all_components();
        let mut n = 0;
        let mut stuck = Vec::new();
        for c in comps {
            c.close(DeadLetterReason::Shutdown);
            let (dead, held) = Component::drain_closed(&c, self);
            n += dead;
            if let Some(messages_held) = held {
                stuck.push(StuckComponent { id: c.id.clone(), messages_held });
            }
        }
        stuck.sort_by(|a, b| a.id.cmp(&b.id));
        (n, stuck)
    }

    pub(crate) fn fire(&self, key: TimerKey, event: TimerEvent) {
        match event {
            TimerEvent::ExpireRequest(id) => self.expire_request(&id, key, RequestError::Timeout),
            TimerEvent::Resume(comp) => {
                comp.health.leave_backoff();
                self.enqueue(comp);
            }
        }
    }

    pub(crate) fn timer_entries(&self) -> usize {
        self.timer.len()
    }
}

#[cfg(not(loom))]
pub use host::{Runtime, RuntimeBuilder};

#[cfg(not(loom))]
mod host {
    use std::ops::Deref;
    use std::thread::JoinHandle;

    use super::*;
    use crate::deadletter::DeadLetter;
    use crate::handle::RuntimeHandle;
    use crate::sync::{Arc, Mutex};
    use crate::workers::{WorkerStep, become_worker};

    /// The engine: a registry of components, their mailboxes, and the worker threads that
    /// run them.
    ///
    /// Dropping it shuts it down (draining for [`RuntimeConfig::drop_drain_timeout`]).
    ///
    /// `Runtime` derefs to [`RuntimeHandle`], so every method of a handle can be called on
    /// it directly (`rt.try_send(env)`); [`Runtime::handle`] gives a cloneable handle for
    /// other threads. What you can do:
    ///
    /// - **Register** components: [`register`](RuntimeHandle::register),
    ///   [`unregister`](RuntimeHandle::unregister), [`contains`](RuntimeHandle::contains),
    ///   [`component_ids`](RuntimeHandle::component_ids).
    /// - **Send**: [`try_send`](RuntimeHandle::try_send) (never blocks),
    ///   [`send_timeout`](RuntimeHandle::send_timeout) (waits for room), their `_with`
    ///   forms for a [`DeliveryGuarantee`](crate::DeliveryGuarantee); a failed send hands the
    ///   envelope back in a [`SendError`](crate::SendError).
    /// - **Ask**: [`request`](RuntimeHandle::request) returns a [`ReplyHandle`](crate::ReplyHandle) to `wait`,
    ///   `wait_timeout` or `.await`.
    /// - **Publish**: [`subscribe`](RuntimeHandle::subscribe),
    ///   [`unsubscribe`](RuntimeHandle::unsubscribe), [`publish`](RuntimeHandle::publish).
    /// - **Observe**: [`stats`](RuntimeHandle::stats),
    ///   [`component_stats`](RuntimeHandle::component_stats),
    ///   [`dead_letters`](RuntimeHandle::dead_letters),
    ///   [`pending_requests`](RuntimeHandle::pending_requests),
    ///   [`health`](RuntimeHandle::health), [`readiness`](RuntimeHandle::readiness).
    /// - **Stop**: [`Runtime::shutdown`].
    pub struct Runtime {
        handle: RuntimeHandle,
        threads: Mutex<Option<Threads>>,
        report: Mutex<Option<ShutdownReport>>,
    }

    struct Threads {
        workers: Vec<JoinHandle<()>>,
        timer: JoinHandle<()>,
        /// Each worker sends its index here as its thread ends (even by a panic), so
        /// shutdown can wait for workers with a deadline, which `JoinHandle` cannot.
        exits: crossbeam_channel::Receiver<usize>,
    }

    /// Sends a worker's index when its thread ends.
    struct ExitNotice(usize, crossbeam_channel::Sender<usize>);

    impl Drop for ExitNotice {
        fn drop(&mut self) {
            let _ = self.1.send(self.0);
        }
    }

    /// Configures and starts a [`Runtime`].
    #[derive(Default)]
    pub struct RuntimeBuilder {
        config: RuntimeConfig,
        hook: Option<DeadLetterHook>,
        /// A setter's refusal, reported by `build`.
        invalid: Option<String>,
        #[cfg(feature = "cluster")]
        cluster: Option<crate::cluster::ClusterConfig>,
    }

    impl RuntimeBuilder {
        /// Sets the number of worker threads (at least 1).
        pub fn workers(mut self, n: usize) -> Self {
            self.config.workers = n.max(1);
            self
        }

        /// Sets the number of workers for components that block on I/O (default 1; see
        /// [`RuntimeConfig::io_workers`]).
        pub fn io_workers(mut self, n: usize) -> Self {
            self.config.io_workers = n;
            self
        }

        /// Pins workers to cores, or not (default: not). See [`RuntimeConfig::pin_workers`]:
        /// pin only on cores dedicated to the runtime.
        pub fn pin_workers(mut self, pin: bool) -> Self {
            self.config.pin_workers = pin;
            self
        }

        /// Records the handler-time and request-duration histograms (see
        /// [`RuntimeConfig::timing_metrics`]).
        #[cfg(feature = "metrics")]
        pub fn timing_metrics(mut self, on: bool) -> Self {
            self.config.timing_metrics = on;
            self
        }

        /// Sets what workers do when they have nothing to run (default: spin briefly, then
        /// park). See [`IdleStrategy`]: busy-spin only on cores dedicated to the runtime.
        pub fn idle_strategy(mut self, strategy: IdleStrategy) -> Self {
            self.config.idle_strategy = strategy;
            self
        }

        /// Sets the largest payload a send accepts.
        pub fn max_payload_bytes(mut self, n: usize) -> Self {
            self.config.max_payload_bytes = n;
            self
        }

        /// Sets the dead-letter queue capacity (used when no hook is installed).
        pub fn dead_letter_capacity(mut self, n: usize) -> Self {
            self.config.dead_letter_capacity = n;
            self
        }

        /// Sends every dead letter to `hook` instead of the queue. The hook runs on the
        /// thread that dead-letters (worker, timer or sender): keep it short.
        pub fn dead_letter_hook(mut self, hook: impl Fn(DeadLetter) + Send + Sync + 'static) -> Self {
            self.hook = Some(Box::new(hook));
            self
        }

        /// Sets how long dropping the runtime lets queued messages drain.
        pub fn drop_drain_timeout(mut self, t: Duration) -> Self {
            self.config.drop_drain_timeout = t;
            self
        }

        /// Sets how long shutdown waits for workers to stop after the drain (see
        /// [`RuntimeConfig::stop_grace`]).
        pub fn stop_grace(mut self, t: Duration) -> Self {
            self.config.stop_grace = t;
            self
        }

        /// Joins a cluster of runtimes on a NATS server (see [`crate::cluster`]): this
        /// runtime's components become reachable from the other nodes and theirs from it.
        #[cfg(feature = "cluster")]
        pub fn cluster(mut self, config: crate::cluster::ClusterConfig) -> Self {
            self.cluster = Some(config);
            self
        }

        /// Sets the sender of the host's typed sends (see [`RuntimeConfig::host_id`]). An
        /// invalid id fails [`RuntimeBuilder::build`].
        pub fn host_id(mut self, id: &str) -> Self {
            match ComponentId::new(id) {
                Ok(id) => self.config.host_id = id,
                Err(e) => self.invalid = Some(format!("host_id {id:?}: {e}")),
            }
            self
        }

        /// Sets the codec typed sends encode with (see [`RuntimeConfig::codec`]): JSON or
        /// CBOR; another code fails [`RuntimeBuilder::build`].
        pub fn codec(mut self, code: u64) -> Self {
            self.config.codec = code;
            self
        }

        /// Sets how long a typed `ask` waits unless told otherwise (see
        /// [`RuntimeConfig::ask_timeout`]).
        pub fn ask_timeout(mut self, timeout: Duration) -> Self {
            self.config.ask_timeout = timeout;
            self
        }

        /// Replaces the whole configuration (keeping the hook).
        pub fn config(mut self, config: RuntimeConfig) -> Self {
            self.config = config;
            self
        }

        /// Starts the worker threads and the timer thread.
        ///
        /// # Errors
        /// [`BuildError::InvalidConfig`] for a setting out of range (more than
        /// [`MAX_WORKERS`] workers, a dead-letter queue over [`MAX_DEAD_LETTER_CAPACITY`]);
        /// [`BuildError::Spawn`] when the OS refused to start a thread (threads already
        /// started are stopped).
        pub fn build(self) -> Result<Runtime, BuildError> {
            if let Some(why) = self.invalid {
                return Err(BuildError::InvalidConfig(why));
            }
            let mut config = self.config;
            config.workers = config.workers.max(1);
            config.validate()?;
            let pin = config.pin_workers;
            let inner = Arc::new(Inner::new(config, self.hook));
            let _ = inner.self_ref.set(Arc::downgrade(&inner));
            let cores = if pin { core_affinity::get_core_ids().unwrap_or_default() } else { Vec::new() };
            let mut workers = Vec::new();
            let (exit_tx, exits) = crossbeam_channel::unbounded();
            let started = (|| {
                for i in 0..inner.worker_count() {
                    let inner2 = inner.clone();
                    let core = (!cores.is_empty()).then(|| cores[i % cores.len()]);
                    let notice = ExitNotice(i, exit_tx.clone());
                    let name = inner.worker_name(i);
                    let h = std::thread::Builder::new().name(name).spawn(move || {
                        let _notice = notice;
                        if let Some(core) = core {
                            // Best effort: an unpinned worker still works.
                            let _ = core_affinity::set_for_current(core);
                        }
                        become_worker(inner2.id, i);
                        while inner2.worker_iteration(i) != WorkerStep::Stop {}
                    })?;
                    workers.push(h);
                }
                let inner2 = inner.clone();
                let notice = ExitNotice(inner.worker_count(), exit_tx.clone());
                std::thread::Builder::new().name("switchyard-timer".into()).spawn(move || {
                    let _notice = notice;
                    inner2.timer.run(|k, e| inner2.fire(k, e));
                })
            })();
            match started {
                Ok(timer) => {
                    let rt = Runtime {
                        handle: RuntimeHandle { inner },
                        threads: Mutex::new(Some(Threads { workers, timer, exits })),
                        report: Mutex::new(None),
                    };
                    #[cfg(feature = "cluster")]
                    if let Some(config) = self.cluster {
                        // On failure the runtime drops here: its threads stop and join.
                        let bridge = crate::cluster::Bridge::start(config, Arc::downgrade(&rt.handle.inner))?;
                        let _ = rt.handle.inner.cluster.set(bridge);
                    }
                    Ok(rt)
                }
                Err(e) => {
                    inner.stop_workers();
                    let _ = inner.timer.stop();
                    for h in workers {
                        let _ = h.join();
                    }
                    Err(BuildError::Spawn(e))
                }
            }
        }
    }

    impl Runtime {
        /// A builder with default settings.
        pub fn builder() -> RuntimeBuilder {
            RuntimeBuilder::default()
        }

        /// A cloneable handle for other threads.
        pub fn handle(&self) -> RuntimeHandle {
            self.handle.clone()
        }

        /// Shuts down: stops accepting host sends and registrations, lets queued messages
        /// (and the messages handlers send meanwhile) drain for up to `drain_timeout`,
        /// stops the workers, dead-letters whatever is still queued with
        /// [`DeadLetterReason::Shutdown`], fails pending host requests with
        /// [`RequestError::Shutdown`], and joins every thread.
        ///
        /// Returns within `drain_timeout` plus [`RuntimeConfig::stop_grace`], whatever the
        /// handlers do: a worker whose handler has not returned by then is left running,
        /// detached (a thread cannot be killed), its component is listed in
        /// [`ShutdownReport::stuck`] with the messages its handler holds, and its queued
        /// messages are dead-lettered. [`ShutdownReport::is_balanced`] accounts for them.
        ///
        /// Idempotent: later calls return the first report.
        pub fn shutdown(&self, drain_timeout: Duration) -> ShutdownReport {
            let mut report = self.report.lock();
            if let Some(r) = report.as_ref() {
                return r.clone();
            }
            let inner = &self.handle.inner;
            // First out of the cluster: the other nodes stop sending here, and what reaches
            // this node from now on (refused as it shuts down) goes to another replica.
            #[cfg(feature = "cluster")]
            if let Some(bridge) = inner.cluster.get() {
                bridge.leave();
            }
            inner.begin_shutdown();
            // No more offers from the cluster's stream: this node could only give them back.
            #[cfg(feature = "cluster")]
            if let Some(bridge) = inner.cluster.get() {
                bridge.stop_reading();
            }
            let drained = inner.wait_quiescent(deadline_after(drain_timeout));
            inner.stop_workers();
            // The timer too: no restart backoff ends now, and a request made from here on
            // fails at once instead of waiting for a deadline.
            let _ = inner.timer.stop();
            if let Some(t) = self.threads.lock().take() {
                // Workers (indices 0..n) and the timer (index n) announce their exit.
                let stop_by = deadline_after(inner.config.stop_grace);
                let mut exited = vec![false; t.workers.len() + 1];
                while exited.contains(&false) {
                    match t.exits.recv_deadline(stop_by) {
                        Ok(i) => exited[i] = true,
                        Err(_) => break,
                    }
                }
                for (h, exited) in t.workers.into_iter().chain([t.timer]).zip(exited) {
                    // A thread still busy is detached (its handle drops): a handler that
                    // never returns must not hold shutdown hostage.
                    if exited {
                        let _ = h.join();
                    }
                }
            }
            let (dead_lettered, stuck) = inner.close_all();
            let requests_failed = inner.fail_pending();
            // After the drain and the final dead-lettering: the bridge sends what they
            // produced (answers to other nodes' requests), waits for the confirmations in
            // flight up to the stop grace, and leaves the cluster.
            #[cfg(feature = "cluster")]
            if let Some(bridge) = inner.cluster.get() {
                bridge.stop(inner.config.stop_grace);
            }
            let r = ShutdownReport {
                drained: drained && dead_lettered == 0 && stuck.is_empty(),
                dead_lettered,
                requests_failed,
                stats: inner.snapshot(),
                stuck,
            };
            *report = Some(r.clone());
            r
        }
    }

    impl Deref for Runtime {
        type Target = RuntimeHandle;
        fn deref(&self) -> &RuntimeHandle {
            &self.handle
        }
    }

    impl Drop for Runtime {
        fn drop(&mut self) {
            let t = self.handle.inner.config.drop_drain_timeout;
            let _ = self.shutdown(t);
        }
    }
}
