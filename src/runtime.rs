//! The runtime: registry, send paths, request-response, publish, worker pool, shutdown.
//!
//! # The send path
//! A send resolves the target in the sharded registry and, while the entry is pinned
//! (a shard read lock, no global lock), registers as a sender on the component's state
//! word, pushes into its bounded crossbeam mailbox, and finishes the permit. If that made
//! the component runnable, the sender puts it on its worker's run queue and unparks the
//! worker. No broker, no router thread, and no allocation beyond the envelope itself
//! unless the component was idle (then one reference-count increment and a queue push).
//!
//! # Workers
//! Each component has a home worker, chosen round-robin at registration; only that
//! worker runs it, so its handler stays on one (pinned) core. A worker pops runnable
//! components from its run queue, runs one turn each, spins briefly when the queue is
//! empty and then parks.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::component::{Component, ComponentSpec, Letter, Outcome, run_turn};
use crate::deadletter::{DeadLetter, DeadLetterHook, DeadLetterReason, DeadLetterSink};
use crate::envelope::{DeliveryGuarantee, MessageEnvelope, MessageType};
use crate::error::{BuildError, InvalidEnvelope, RegisterError, RequestError, SendError, UnregisterError};
use crate::id::{ComponentId, IdBuildHasher};
use crate::mailbox::{MailboxState, Wake};
use crate::parker::Parker;
use crate::request::{Pending, PendingRequests, ReplyHandle, ReplySlot, Requester, ResponseMatch};
use crate::stats::{ComponentStatsSnapshot, RoutingStats, RoutingStatsSnapshot};
use crate::sync::channel::{Receiver, Sender, TrySendError, unbounded};
use crate::sync::map::ShardedMap;
use crate::sync::{Arc, AtomicBool, AtomicUsize, Condvar, Mutex, Ordering};
use crate::timer::{Timer, TimerEvent, TimerKey};

/// Spins before parking an idle worker (shrunk under loom, where every spin is a branch).
#[cfg(not(loom))]
const SPINS: u32 = 200;
#[cfg(loom)]
const SPINS: u32 = 0;

/// Spins a worker lingers on a component whose mailbox it just emptied, when it has nothing
/// else to run (none under loom: lingering only lengthens a turn, which the models already
/// cover, and every spin would be a branch).
#[cfg(not(loom))]
const LINGER_SPINS: u32 = 256;
#[cfg(loom)]
const LINGER_SPINS: u32 = 0;

/// Which worker of which runtime this thread is: `(runtime id, worker index)`. Runtime ids
/// start at 1, so `(0, _)` means "not a worker". A host may run several runtimes in one
/// process: the index alone does not say whose worker a thread is.
type WorkerIdentity = (u64, usize);
const NOT_A_WORKER: WorkerIdentity = (0, usize::MAX);

crate::sync::core_thread_local! {
    static WORKER: Cell<WorkerIdentity> = Cell::new(NOT_A_WORKER);
}

/// True on a worker thread (of any runtime): such threads must never block.
pub(crate) fn on_worker_thread() -> bool {
    WORKER.with(|w| w.get().0 != 0)
}

/// Marks the calling thread as worker `index` of runtime `runtime`.
pub(crate) fn become_worker(runtime: u64, index: usize) {
    WORKER.with(|w| w.set((runtime, index)));
}

/// A fresh runtime id (unique in the process; never 0).
fn next_runtime_id() -> u64 {
    // A `std` atomic even under loom: it only hands out distinct numbers and orders nothing.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Who is sending: the host (subject to shutdown's "stop accepting") or a handler running
/// on a worker (still allowed while the runtime drains).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Host,
    Worker,
}

/// Runtime-wide settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Worker threads. Default: the number of available cores.
    pub workers: usize,
    /// Pin each worker to a core (`core_affinity`). Default: false. Pin only on cores the
    /// host dedicates to the runtime (isolated, nothing else scheduled there): a pinned
    /// worker cannot leave its core, so anything else that takes the core (a busy process,
    /// a real-time task, which Linux lets hold a core for 950 ms of every second) stalls
    /// every component homed on that worker for as long. Ignored where pinning is
    /// unsupported.
    pub pin_workers: bool,
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
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            pin_workers: false,
            max_payload_bytes: 16 << 20,
            dead_letter_capacity: 10_000,
            drop_drain_timeout: Duration::from_secs(5),
            stop_grace: Duration::from_secs(1),
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
        if self.dead_letter_capacity > MAX_DEAD_LETTER_CAPACITY {
            return Err(BuildError::InvalidConfig(format!(
                "dead_letter_capacity is {}; at most {MAX_DEAD_LETTER_CAPACITY} is allowed",
                self.dead_letter_capacity
            )));
        }
        Ok(())
    }
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublishReport {
    /// Subscribers whose mailbox took the message.
    pub delivered: usize,
    /// Copies dead-lettered (subscriber full, gone or closed; or no subscriber at all).
    pub dead_lettered: usize,
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
        s.messages_sent == s.messages_handled + s.messages_dead_lettered + s.routing_failures + held
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
fn deadline_after(timeout: Duration) -> Instant {
    Instant::now().checked_add(timeout).unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365))
}

pub(crate) struct Worker {
    tx: Sender<Arc<Component>>,
    rx: Receiver<Arc<Component>>,
    parker: Parker,
    idle: AtomicBool,
}

/// One step of a worker's loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerStep {
    /// Ran one turn of a component.
    Ran,
    /// Found work while spinning.
    Spun,
    /// Parked and was unparked.
    Parked,
    /// Told to stop.
    Stop,
}

/// Everything the runtime shares between threads.
pub(crate) struct Inner {
    /// This runtime's identity among the runtimes of the process (see [`WorkerIdentity`]).
    pub(crate) id: u64,
    registry: ShardedMap<ComponentId, Arc<Component>, IdBuildHasher>,
    /// Topic -> subscribers, copy-on-write (a `std` Arc: shared immutable data).
    topics: ShardedMap<String, std::sync::Arc<[ComponentId]>, IdBuildHasher>,
    pub(crate) pending: PendingRequests,
    workers: Vec<Worker>,
    next_worker: AtomicUsize,
    pub(crate) timer: Timer,
    dead: DeadLetterSink,
    pub(crate) stats: RoutingStats,
    config: RuntimeConfig,
    accepting: AtomicBool,
    stop_workers: AtomicBool,
    draining: AtomicBool,
    quiesce: Mutex<u64>,
    quiesce_cv: Condvar,
    /// Unregistered components whose worker has not drained them yet.
    closing: Mutex<Vec<Arc<Component>>>,
    #[cfg(loom)]
    pub(crate) fault: crate::mailbox::Fault,
    /// A weak reference to the `Arc` holding this runtime, for executors that keep a
    /// handle past one call (the WASM host's per-instance state).
    #[cfg(all(not(loom), feature = "wasm"))]
    self_ref: std::sync::OnceLock<std::sync::Weak<Inner>>,
}

/// Why [`Inner::precheck`] turned a send away.
#[derive(Debug, Clone, Copy)]
enum Rejected {
    PayloadTooLarge,
    Closed,
}

impl Rejected {
    fn with(self, env: MessageEnvelope) -> SendError {
        match self {
            Rejected::PayloadTooLarge => SendError::PayloadTooLarge(env),
            Rejected::Closed => SendError::Closed(env),
        }
    }
}

impl Inner {
    pub(crate) fn new(config: RuntimeConfig, hook: Option<DeadLetterHook>) -> Self {
        let n = config.workers.max(1);
        let workers = (0..n)
            .map(|_| {
                let (tx, rx) = unbounded();
                Worker { tx, rx, parker: Parker::new(), idle: AtomicBool::new(false) }
            })
            .collect();
        Self {
            id: next_runtime_id(),
            registry: ShardedMap::new(),
            topics: ShardedMap::new(),
            pending: PendingRequests::new(),
            workers,
            next_worker: AtomicUsize::new(0),
            timer: Timer::new(),
            dead: DeadLetterSink::new(config.dead_letter_capacity, hook),
            stats: RoutingStats::new(),
            config,
            accepting: AtomicBool::new(true),
            stop_workers: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            quiesce: Mutex::new(0),
            quiesce_cv: Condvar::new(),
            closing: Mutex::new(Vec::new()),
            #[cfg(loom)]
            fault: crate::mailbox::Fault::None,
            #[cfg(all(not(loom), feature = "wasm"))]
            self_ref: std::sync::OnceLock::new(),
        }
    }

    /// A weak handle to this runtime (set when the runtime is built).
    #[cfg(all(not(loom), feature = "wasm"))]
    pub(crate) fn weak(&self) -> std::sync::Weak<Inner> {
        self.self_ref.get().cloned().unwrap_or_default()
    }

    fn new_state(&self) -> MailboxState {
        #[cfg(loom)]
        return MailboxState::with_fault(self.fault);
        #[cfg(not(loom))]
        MailboxState::new()
    }

    // ----- registry -------------------------------------------------------------------

    pub(crate) fn register(&self, id: ComponentId, spec: ComponentSpec) -> Result<(), RegisterError> {
        spec.config.validate()?;
        // Acquire pairs with the Release store in `begin_shutdown`.
        if !self.accepting.load(Ordering::Acquire) {
            return Err(RegisterError::ShuttingDown);
        }
        // Relaxed: only spreads components over workers.
        let worker = self.next_worker.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        let comp = Arc::new(Component::new(id.clone(), spec, worker, self.new_state()));
        self.registry.insert_new(id.clone(), comp.clone()).map_err(|_| RegisterError::AlreadyRegistered(id))?;
        comp.registered();
        // Run `init` now, on the component's own worker: schedule it with no message.
        if comp.state.try_schedule() {
            self.enqueue(comp);
        }
        Ok(())
    }

    pub(crate) fn unregister(&self, id: &ComponentId) -> Result<(), UnregisterError> {
        let comp = self.registry.remove(id).ok_or_else(|| UnregisterError::NoSuchComponent(id.clone()))?;
        comp.unregistered();
        comp.close(DeadLetterReason::Unregistered);
        self.drop_subscriptions(id);
        {
            let mut closing = self.closing.lock();
            closing.retain(|c| !c.is_terminated());
            closing.push(comp.clone());
        }
        // Whoever owns it (a worker mid-turn, the run queue, the timer) will see CLOSED;
        // if nobody does, take it and let its worker drain it.
        if comp.state.try_schedule() {
            self.enqueue(comp);
        }
        Ok(())
    }

    #[cfg(loom)]
    pub(crate) fn component(&self, id: &ComponentId) -> Option<Arc<Component>> {
        self.registry.with(id, Arc::clone)
    }

    pub(crate) fn component_stats(&self, id: &ComponentId) -> Option<ComponentStatsSnapshot> {
        self.registry.with(id, |c| c.snapshot())
    }

    pub(crate) fn component_ids(&self) -> Vec<ComponentId> {
        let mut ids: Vec<_> = self.registry.values().into_iter().map(|c| c.id.clone()).collect();
        ids.sort();
        ids
    }

    pub(crate) fn component_count(&self) -> usize {
        self.registry.len()
    }

    // ----- sending --------------------------------------------------------------------

    /// The non-blocking send behind every `try_send`/`send` API.
    #[inline]
    pub(crate) fn send(
        &self,
        env: MessageEnvelope,
        guarantee: DeliveryGuarantee,
        origin: Origin,
    ) -> Result<(), SendError> {
        let r = self.route(env, guarantee, origin, false, true);
        if let Err(e) = &r {
            self.count_rejection(e);
        }
        r
    }

    /// The checks every send makes before routing, by reference (the envelope is moved
    /// only once, into the mailbox).
    #[inline]
    fn precheck(&self, env: &MessageEnvelope, origin: Origin) -> Result<(), Rejected> {
        if env.payload.len() > self.config.max_payload_bytes {
            return Err(Rejected::PayloadTooLarge);
        }
        // Acquire pairs with the Release store in `begin_shutdown`.
        if origin == Origin::Host && !self.accepting.load(Ordering::Acquire) {
            return Err(Rejected::Closed);
        }
        Ok(())
    }

    /// Routes one envelope without counting a rejection (callers count or dead-letter).
    /// `count_full`: record a full mailbox in the component's stats (false for a sender
    /// that will wait for room and try again).
    #[inline]
    fn route(
        &self,
        env: MessageEnvelope,
        guarantee: DeliveryGuarantee,
        origin: Origin,
        tracked: bool,
        count_full: bool,
    ) -> Result<(), SendError> {
        // The envelope is moved once, into the letter the mailbox takes; everything before
        // the push reads it in place (each extra move is a 168-byte copy on the hot path).
        let letter = Letter { env, guarantee, attempts: 0, tracked };
        if let Err(r) = self.precheck(&letter.env, origin) {
            return Err(r.with(letter.env));
        }
        if letter.env.message_type == MessageType::Response {
            if letter.env.correlation_id.is_none() {
                return Err(SendError::Invalid(letter.env, InvalidEnvelope::ResponseWithoutCorrelation));
            }
            self.deliver_response(letter.env);
            return Ok(());
        }
        // The push runs with the registry entry pinned (a shard read lock): no Arc clone
        // unless the push makes the component runnable, and no sender count on the state
        // word (closers pass the registry barrier instead; see `mailbox`).
        let Some(comp) = self.registry.get(&letter.env.to) else {
            return Err(SendError::NoSuchComponent(letter.env));
        };
        // Pushed here rather than in a helper: a by-value letter crossing even an inlined
        // call boundary costs a copy.
        if !comp.state.pinned_open() {
            return Err(SendError::Closed(letter.env));
        }
        match comp.tx.try_send(letter) {
            Ok(()) => {
                self.stats.messages_routed.add(1);
                if comp.state.pinned_delivered() == Wake::Schedule {
                    self.enqueue(comp.clone());
                }
                Ok(())
            }
            Err(TrySendError::Full(letter)) | Err(TrySendError::Disconnected(letter)) => {
                if count_full {
                    crate::stats::ComponentStats::bump(&comp.stats.rejected_full);
                    comp.stats.observe_len(comp.config.mailbox_capacity);
                }
                Err(SendError::Full(letter.env))
            }
        }
    }

    /// Orders a closer after every sender that pinned `comp` in the registry: afterwards
    /// each of them either saw `CLOSED` or finished its push (see `mailbox`).
    pub(crate) fn registry_barrier(&self, comp: &Component) {
        #[cfg(loom)]
        if comp.state.skips_registry_barrier() {
            return;
        }
        self.registry.barrier(&comp.id);
    }

    fn count_rejection(&self, e: &SendError) {
        let s = &self.stats;
        match e {
            SendError::Full(_) => s.mailbox_send_failures.add(1),
            SendError::Timeout(_) => s.send_timeouts.add(1),
            SendError::NoSuchComponent(_) => s.components_not_found.add(1),
            SendError::Closed(_) => s.closed_rejections.add(1),
            SendError::PayloadTooLarge(_) | SendError::Invalid(..) => s.invalid_rejections.add(1),
        }
    }

    /// Blocking send: waits up to `timeout` for mailbox space. On a worker thread it does
    /// not wait (a full mailbox returns `Full` at once).
    #[cfg(not(loom))]
    pub(crate) fn send_timeout(
        &self,
        env: MessageEnvelope,
        guarantee: DeliveryGuarantee,
        timeout: Duration,
    ) -> Result<(), SendError> {
        if on_worker_thread() || env.message_type == MessageType::Response {
            return self.send(env, guarantee, Origin::Host);
        }
        let r = (|| {
            // First as a plain send (registry entry pinned, no `Arc` clone, no sender
            // count); only a full mailbox takes the waiting path below.
            let env = match self.route(env, guarantee, Origin::Host, false, false) {
                Err(SendError::Full(env)) => env,
                done => return done,
            };
            let Some(comp) = self.registry.with(&env.to, Arc::clone) else {
                return Err(SendError::NoSuchComponent(env));
            };
            let deadline = deadline_after(timeout);
            let mut env = env;
            // The sender counts itself (a permit) only around each push attempt, never
            // while it waits, so a closer never waits for a blocked sender. After the
            // deadline passes it tries once more, in case a slot is free.
            let mut deadline_passed = false;
            loop {
                env = match self.push_counted(&comp, Letter { env, guarantee, attempts: 0, tracked: false }) {
                    Err(SendError::Full(env)) => env,
                    done => return done,
                };
                if deadline_passed {
                    crate::stats::ComponentStats::bump(&comp.stats.rejected_full);
                    comp.stats.observe_len(comp.config.mailbox_capacity);
                    return Err(SendError::Timeout(env));
                }
                deadline_passed = !comp.wait_for_room(deadline);
            }
        })();
        if let Err(e) = &r {
            self.count_rejection(e);
        }
        r
    }

    /// One push by a counted sender (one holding `comp` outside the registry). Returns
    /// `Full` or `Closed` with the envelope; counts success only.
    #[cfg(not(loom))]
    fn push_counted(&self, comp: &Arc<Component>, letter: Letter) -> Result<(), SendError> {
        let Ok(permit) = comp.state.begin_send() else {
            return Err(SendError::Closed(letter.env));
        };
        match comp.tx.try_send(letter) {
            Ok(()) => {
                self.stats.messages_routed.add(1);
                if permit.delivered() == Wake::Schedule {
                    self.enqueue(comp.clone());
                }
                Ok(())
            }
            Err(TrySendError::Full(l)) | Err(TrySendError::Disconnected(l)) => {
                permit.undelivered();
                Err(SendError::Full(l.env))
            }
        }
    }

    /// Puts an owned component on its worker's run queue and wakes the worker.
    pub(crate) fn enqueue(&self, comp: Arc<Component>) {
        let index = comp.worker;
        #[cfg(any(loom, debug_assertions))]
        comp.mark_enqueued();
        let w = &self.workers[index];
        // The run queue is unbounded and we hold its receiver: the send cannot fail.
        let _ = w.tx.send(comp);
        // A worker that schedules a component homed on itself will look at its run queue
        // after its turn: no unpark needed. Any other thread (a host thread, the timer,
        // another worker, a worker of another runtime) must unpark it.
        #[cfg(loom)]
        let me_too = if self.fault == crate::mailbox::Fault::WorkerIndexOnly {
            WORKER.with(|c| c.get().1 == index)
        } else {
            WORKER.with(|c| c.get()) == (self.id, index)
        };
        #[cfg(not(loom))]
        let me_too = WORKER.with(|c| c.get()) == (self.id, index);
        if !me_too {
            w.parker.unpark();
        }
    }

    // ----- request / response -----------------------------------------------------------

    fn start_request(
        &self,
        env: MessageEnvelope,
        requester: Requester,
        timeout: Duration,
        origin: Origin,
    ) -> Result<(), SendError> {
        if env.message_type != MessageType::Request {
            return Err(SendError::Invalid(env, InvalidEnvelope::NotARequest));
        }
        if let Err(r) = self.precheck(&env, origin) {
            return Err(r.with(env));
        }
        let id = env.message_id.clone();
        let deadline = self.timer.key(deadline_after(timeout));
        let pending = Pending { requester, responder: env.to.clone(), deadline };
        if self.pending.insert(id.clone(), pending).is_err() {
            return Err(SendError::Invalid(env, InvalidEnvelope::DuplicateRequestId));
        }
        if let Err(e) = self.route(env, DeliveryGuarantee::AtMostOnce, origin, true, true) {
            // Not delivered: no outcome will come, so withdraw the pending entry.
            let _ = self.pending.take(&id);
            return Err(e);
        }
        // The deadline goes in after the delivery, so an expiry can never complete a
        // request whose send then failed.
        if self.timer.schedule(deadline, TimerEvent::ExpireRequest(id.clone())).is_err() {
            // The timer stopped (shutdown): fail the request now rather than never.
            self.expire_request(&id, deadline, RequestError::Shutdown);
        } else if !self.pending.is_pending_with(&id, deadline) {
            // An outcome came first and found no timer entry to cancel: take ours out
            // again, so the timer only holds entries of requests in flight. Every
            // completer removes the pending entry before it cancels, so whichever of the
            // two comes second removes the timer entry.
            self.timer.cancel(deadline);
        }
        Ok(())
    }

    pub(crate) fn request_host(&self, env: MessageEnvelope, timeout: Duration) -> Result<ReplyHandle, SendError> {
        let slot = Arc::new(ReplySlot::new());
        let id = env.message_id.clone();
        let r = self.start_request(env, Requester::Host(slot.clone()), timeout, Origin::Host);
        match r {
            Ok(()) => Ok(ReplyHandle::new(slot, id)),
            Err(e) => {
                self.count_rejection(&e);
                Err(e)
            }
        }
    }

    pub(crate) fn request_from_component(
        &self,
        me: &Arc<Component>,
        env: MessageEnvelope,
        timeout: Duration,
    ) -> Result<String, SendError> {
        let id = env.message_id.clone();
        match self.start_request(env, Requester::Component(me.clone()), timeout, Origin::Worker) {
            Ok(()) => Ok(id),
            Err(e) => {
                self.count_rejection(&e);
                Err(e)
            }
        }
    }

    /// Routes a response to whoever waits for it, or dead-letters it as a late reply.
    pub(crate) fn deliver_response(&self, env: MessageEnvelope) {
        let Some(corr) = env.correlation_id.as_deref() else {
            self.dead_letter_at_send(env, DeadLetterReason::Invalid);
            return;
        };
        match self.pending.take_response(corr, &env.from) {
            ResponseMatch::Taken(pending) => {
                self.timer.cancel(pending.deadline);
                let id = corr.to_string();
                self.complete(pending.requester, id, Ok(env));
            }
            ResponseMatch::WrongResponder => self.dead_letter_at_send(env, DeadLetterReason::UnexpectedResponder),
            ResponseMatch::NotPending => self.dead_letter_at_send(env, DeadLetterReason::LateReply),
        }
    }

    /// The timer's action at a request's deadline (or shutdown's): the request under
    /// `id` completes with `why` if it is still pending under this deadline entry.
    pub(crate) fn expire_request(&self, id: &str, deadline: TimerKey, why: RequestError) {
        if let Some(pending) = self.pending.take_expired(id, deadline) {
            if why == RequestError::Timeout {
                self.stats.requests_timed_out.add(1);
            }
            self.complete(pending.requester, id.to_string(), Err(why));
        }
    }

    /// Delivers a request's one outcome (the caller removed its pending entry).
    fn complete(&self, requester: Requester, request_id: String, result: Result<MessageEnvelope, RequestError>) {
        match requester {
            Requester::Host(slot) => {
                if result.is_ok() {
                    self.stats.messages_routed.add(1);
                    self.stats.messages_handled.add(1);
                }
                slot.complete(result);
            }
            Requester::Component(comp) => {
                let Ok(permit) = comp.state.begin_send() else {
                    if let Ok(env) = result {
                        crate::stats::ComponentStats::bump(&comp.stats.dead_lettered);
                        self.dead_letter_at_send(env, DeadLetterReason::Closed);
                    }
                    return;
                };
                let is_message = result.is_ok();
                // Unbounded lane: cannot be full, and we hold its receiver.
                let _ = comp.outcomes_tx.send(Outcome { request_id, result });
                if is_message {
                    self.stats.messages_routed.add(1);
                }
                if permit.delivered() == Wake::Schedule {
                    self.enqueue(comp);
                }
            }
        }
    }

    // ----- publish / subscribe ------------------------------------------------------------

    pub(crate) fn subscribe(&self, topic: &str, id: ComponentId) {
        self.topics.upsert(
            topic.to_string(),
            || std::sync::Arc::from(Vec::new()),
            |subs| {
                if !subs.contains(&id) {
                    let mut v = subs.to_vec();
                    v.push(id);
                    *subs = std::sync::Arc::from(v);
                }
            },
        );
    }

    pub(crate) fn unsubscribe(&self, topic: &str, id: &ComponentId) {
        let without = |subs: &mut std::sync::Arc<[ComponentId]>| {
            let v: Vec<_> = subs.iter().filter(|s| *s != id).cloned().collect();
            *subs = std::sync::Arc::from(v);
        };
        #[cfg(loom)]
        if self.fault == crate::mailbox::Fault::SplitUnsubscribe {
            // The bug this guards against: update, then remove "if empty" in a second
            // critical section, dropping whatever a subscriber added in between.
            let mut empty = false;
            self.topics.update(topic, |subs| {
                without(subs);
                empty = subs.is_empty();
            });
            crate::sync::yield_now();
            if empty {
                let _ = self.topics.remove(topic);
            }
            return;
        }
        // One critical section: a concurrent `subscribe` lands before (and is kept) or
        // after (and re-creates the topic).
        self.topics.update_or_remove(topic, |subs| {
            without(subs);
            !subs.is_empty()
        });
    }

    /// Removes `id` from every topic (it was unregistered), dropping topics left empty.
    fn drop_subscriptions(&self, id: &ComponentId) {
        self.topics.retain(|_, subs| {
            if subs.contains(id) {
                *subs = subs.iter().filter(|s| *s != id).cloned().collect::<Vec<_>>().into();
            }
            !subs.is_empty()
        });
    }

    pub(crate) fn subscribers(&self, topic: &str) -> Vec<ComponentId> {
        self.topics.with(topic, |s| s.to_vec()).unwrap_or_default()
    }

    /// Delivers a copy to every subscriber; copies that cannot be delivered are
    /// dead-lettered (there is no single sender to hand several envelopes back to).
    pub(crate) fn publish(&self, env: MessageEnvelope, origin: Origin) -> Result<PublishReport, SendError> {
        let r = (|| {
            if env.message_type != MessageType::Publish {
                return Err(SendError::Invalid(env, InvalidEnvelope::NotAPublish));
            }
            if let Err(r) = self.precheck(&env, origin) {
                return Err(r.with(env));
            }
            let Some(topic) = env.topic.as_deref() else {
                return Err(SendError::Invalid(env, InvalidEnvelope::PublishWithoutTopic));
            };
            let subs =
                self.topics.with(topic, std::sync::Arc::clone).unwrap_or_else(|| std::sync::Arc::from(Vec::new()));
            let mut report = PublishReport::default();
            if subs.is_empty() {
                self.dead_letter_at_send(env, DeadLetterReason::NoSubscribers);
                report.dead_lettered = 1;
                return Ok(report);
            }
            let last = subs.len() - 1;
            let mut env = Some(env);
            for (i, sub) in subs.iter().enumerate() {
                let mut copy = if i == last { env.take().expect("last") } else { env.as_ref().expect("set").clone() };
                copy.to = sub.clone();
                match self.route(copy, DeliveryGuarantee::AtMostOnce, Origin::Worker, false, true) {
                    Ok(()) => report.delivered += 1,
                    Err(e) => {
                        let reason = e.as_dead_letter_reason();
                        self.dead_letter_at_send(e.into_envelope(), reason);
                        report.dead_lettered += 1;
                    }
                }
            }
            Ok(report)
        })();
        if let Err(e) = &r {
            self.count_rejection(e);
        }
        r
    }

    // ----- dead letters -------------------------------------------------------------------

    /// Dead-letters a message that was accepted earlier. A request's waiting requester gets
    /// [`RequestError::Failed`].
    pub(crate) fn dead_letter(&self, env: MessageEnvelope, reason: DeadLetterReason) {
        if let Some(pending) = env.is_request().then(|| self.pending.take(&env.message_id)).flatten() {
            self.timer.cancel(pending.deadline);
            self.complete(pending.requester, env.message_id.clone(), Err(RequestError::Failed(reason.clone())));
        }
        self.dead.put(env, reason);
    }

    /// Dead-letters a send attempt that was never accepted (counted as sent).
    fn dead_letter_at_send(&self, env: MessageEnvelope, reason: DeadLetterReason) {
        self.stats.dead_lettered_at_send.add(1);
        self.dead_letter(env, reason);
    }

    pub(crate) fn take_dead_letters(&self) -> Vec<DeadLetter> {
        self.dead.drain()
    }

    // ----- stats --------------------------------------------------------------------------

    pub(crate) fn snapshot(&self) -> RoutingStatsSnapshot {
        let s = &self.stats;
        let routed = s.messages_routed.sum();
        let not_found = s.components_not_found.sum();
        let full = s.mailbox_send_failures.sum() + s.send_timeouts.sum();
        let closed = s.closed_rejections.sum();
        let invalid = s.invalid_rejections.sum();
        let failures = not_found + full + closed + invalid;
        RoutingStatsSnapshot {
            messages_sent: routed + failures + s.dead_lettered_at_send.sum(),
            messages_routed: routed,
            routing_failures: failures,
            components_not_found: not_found,
            mailbox_send_failures: full,
            closed_rejections: closed,
            invalid_rejections: invalid,
            messages_handled: s.messages_handled.sum(),
            messages_dead_lettered: self.dead.total(),
            dead_letters_dropped: self.dead.dropped.sum(),
            dead_letter_hook_panics: self.dead.hook_panics.sum(),
            redeliveries: s.redeliveries.sum(),
            requests_timed_out: s.requests_timed_out.sum(),
            restarts: s.restarts.sum(),
            dead_letters_by_reason: std::array::from_fn(|i| self.dead.by_reason[i].sum()),
        }
    }

    // ----- workers ------------------------------------------------------------------------

    /// One iteration of worker `index`'s loop.
    pub(crate) fn worker_iteration(&self, index: usize) -> WorkerStep {
        let w = &self.workers[index];
        // Acquire pairs with the Release store in `stop_workers`.
        if self.stop_workers.load(Ordering::Acquire) {
            return WorkerStep::Stop;
        }
        if self.run_one(index) {
            return WorkerStep::Ran;
        }
        for _ in 0..SPINS {
            crate::sync::spin_hint();
            if !w.rx.is_empty() {
                return WorkerStep::Spun;
            }
        }
        // SeqCst: the shutdown thread reads `idle` and the run queues in its quiescence
        // check, and this store must not be reordered after the `draining` load below
        // (store-load pair with `begin_shutdown`, which stores `draining` then reads `idle`).
        w.idle.store(true, Ordering::SeqCst);
        if self.draining.load(Ordering::SeqCst) {
            *self.quiesce.lock() += 1;
            self.quiesce_cv.notify_all();
        }
        w.parker.park();
        w.idle.store(false, Ordering::SeqCst);
        WorkerStep::Parked
    }

    /// After a turn that emptied `comp`'s queues: if its worker has nothing else to run,
    /// keeps ownership for a short spin in case the next message is about to arrive. A
    /// sender that finds the component still scheduled just pushes (no run-queue entry, no
    /// unpark), which is what makes a steady one-producer stream cheap. Returns true if a
    /// message came (the caller runs the component again); false to release ownership.
    pub(crate) fn linger(&self, comp: &Component) -> bool {
        let w = &self.workers[comp.worker];
        for _ in 0..LINGER_SPINS {
            if !w.rx.is_empty() || self.workers_stopping() || comp.is_closing() {
                return false;
            }
            if comp.has_queued() {
                return true;
            }
            crate::sync::spin_hint();
        }
        false
    }

    /// Takes one component from worker `index`'s run queue and runs a turn of it.
    pub(crate) fn run_one(&self, index: usize) -> bool {
        match self.workers[index].rx.try_recv() {
            Ok(comp) => {
                #[cfg(any(loom, debug_assertions))]
                comp.mark_dequeued();
                run_turn(self, &comp);
                true
            }
            Err(_) => false,
        }
    }

    /// True once workers were told to stop (checked between messages).
    pub(crate) fn workers_stopping(&self) -> bool {
        // Acquire pairs with the Release store in `stop_workers`.
        self.stop_workers.load(Ordering::Acquire)
    }

    pub(crate) fn stop_workers(&self) {
        // Release pairs with the Acquire load in `worker_iteration`.
        self.stop_workers.store(true, Ordering::Release);
        for w in &self.workers {
            w.parker.unpark();
        }
    }

    /// True when no worker has work and no component holds a message or awaits a restart.
    fn quiescent(&self) -> bool {
        let workers_idle = self.workers.iter().all(|w| w.idle.load(Ordering::SeqCst) && w.rx.is_empty());
        workers_idle
            && self
                .registry
                .values()
                .iter()
                .all(|c| c.is_terminated() || (!c.state.is_scheduled() && c.mailbox_len() == 0))
    }

    // ----- shutdown -----------------------------------------------------------------------

    /// Stops accepting host sends and registrations.
    pub(crate) fn begin_shutdown(&self) -> bool {
        self.draining.store(true, Ordering::SeqCst);
        // Release pairs with the Acquire loads in `precheck` and `register`.
        self.accepting.swap(false, Ordering::AcqRel)
    }

    /// Waits until quiescent or `deadline`. Returns true if quiescent.
    #[cfg(not(loom))]
    pub(crate) fn wait_quiescent(&self, deadline: Instant) -> bool {
        loop {
            let generation = *self.quiesce.lock();
            if self.quiescent() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            let mut g = self.quiesce.lock();
            if *g == generation {
                // A worker going idle bumps the generation; a backoff that ends makes a
                // worker busy and then idle again, so this wait always ends in time.
                let _ = self.quiesce_cv.wait_until(&mut g, deadline);
            }
        }
    }

    /// Closes every component and dead-letters what is queued, on this thread. Call once
    /// the workers stopped (after `stop_workers` and joining those that exited), or from a
    /// loom model. A component whose runner a stuck worker still holds has its queues
    /// drained without it and is returned with what its handler holds.
    pub(crate) fn close_all(&self) -> (u64, Vec<StuckComponent>) {
        let mut comps = self.registry.values();
        comps.extend(self.closing.lock().drain(..));
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

    /// Stops the timer and fails every host request still pending.
    pub(crate) fn fail_pending(&self) -> u64 {
        let _ = self.timer.stop();
        let mut failed = 0;
        for (id, pending) in self.pending.drain() {
            if matches!(pending.requester, Requester::Host(_)) {
                failed += 1;
            }
            self.complete(pending.requester, id, Err(RequestError::Shutdown));
        }
        failed
    }

    pub(crate) fn fire(&self, key: TimerKey, event: TimerEvent) {
        match event {
            TimerEvent::ExpireRequest(id) => self.expire_request(&id, key, RequestError::Timeout),
            TimerEvent::Resume(comp) => self.enqueue(comp),
        }
    }

    pub(crate) fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn timer_entries(&self) -> usize {
        self.timer.len()
    }

    pub(crate) fn worker_count(&self) -> usize {
        self.workers.len()
    }
}

#[cfg(not(loom))]
pub use host::{Runtime, RuntimeBuilder, RuntimeHandle};

#[cfg(not(loom))]
mod host {
    use std::ops::Deref;
    use std::thread::JoinHandle;

    use super::*;

    /// A cloneable, thread-safe handle for sending to and managing a running [`Runtime`].
    ///
    /// Handles stay valid after shutdown; sends then fail with [`SendError::Closed`].
    #[derive(Clone)]
    pub struct RuntimeHandle {
        pub(crate) inner: Arc<Inner>,
    }

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
    ///   forms for a [`DeliveryGuarantee`]; a failed send hands the envelope back in a
    ///   [`SendError`].
    /// - **Ask**: [`request`](RuntimeHandle::request) returns a [`ReplyHandle`] to `wait`,
    ///   `wait_timeout` or `.await`.
    /// - **Publish**: [`subscribe`](RuntimeHandle::subscribe),
    ///   [`unsubscribe`](RuntimeHandle::unsubscribe), [`publish`](RuntimeHandle::publish).
    /// - **Observe**: [`stats`](RuntimeHandle::stats),
    ///   [`component_stats`](RuntimeHandle::component_stats),
    ///   [`dead_letters`](RuntimeHandle::dead_letters),
    ///   [`pending_requests`](RuntimeHandle::pending_requests).
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
    }

    impl RuntimeBuilder {
        /// Sets the number of worker threads (at least 1).
        pub fn workers(mut self, n: usize) -> Self {
            self.config.workers = n.max(1);
            self
        }

        /// Pins workers to cores, or not (default: not). See [`RuntimeConfig::pin_workers`]:
        /// pin only on cores dedicated to the runtime.
        pub fn pin_workers(mut self, pin: bool) -> Self {
            self.config.pin_workers = pin;
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
            let mut config = self.config;
            config.workers = config.workers.max(1);
            config.validate()?;
            let pin = config.pin_workers;
            let inner = Arc::new(Inner::new(config, self.hook));
            #[cfg(feature = "wasm")]
            let _ = inner.self_ref.set(Arc::downgrade(&inner));
            let cores = if pin { core_affinity::get_core_ids().unwrap_or_default() } else { Vec::new() };
            let mut workers = Vec::new();
            let (exit_tx, exits) = crossbeam_channel::unbounded();
            let started = (|| {
                for i in 0..inner.worker_count() {
                    let inner2 = inner.clone();
                    let core = (!cores.is_empty()).then(|| cores[i % cores.len()]);
                    let notice = ExitNotice(i, exit_tx.clone());
                    let h = std::thread::Builder::new().name(format!("switchyard-worker-{i}")).spawn(move || {
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
                Ok(timer) => Ok(Runtime {
                    handle: RuntimeHandle { inner },
                    threads: Mutex::new(Some(Threads { workers, timer, exits })),
                    report: Mutex::new(None),
                }),
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
            inner.begin_shutdown();
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

    impl RuntimeHandle {
        /// Registers a component and starts it (its `init` runs on its worker).
        ///
        /// # Errors
        /// [`RegisterError`] for a taken id, a bad configuration, or a runtime shutting down.
        pub fn register(&self, id: ComponentId, spec: ComponentSpec) -> Result<(), RegisterError> {
            self.inner.register(id, spec)
        }

        /// Unregisters a component: later sends fail with [`SendError::NoSuchComponent`], and
        /// its topic subscriptions are dropped;
        /// messages already queued are dead-lettered as [`DeadLetterReason::Unregistered`]
        /// by its worker, after the message in progress (if any) finishes.
        ///
        /// # Errors
        /// [`UnregisterError::NoSuchComponent`].
        pub fn unregister(&self, id: &ComponentId) -> Result<(), UnregisterError> {
            self.inner.unregister(id)
        }

        /// True when a component is registered under `id`.
        pub fn contains(&self, id: &ComponentId) -> bool {
            self.inner.component_stats(id).is_some()
        }

        /// The registered ids, sorted.
        pub fn component_ids(&self) -> Vec<ComponentId> {
            self.inner.component_ids()
        }

        /// Number of registered components.
        pub fn component_count(&self) -> usize {
            self.inner.component_count()
        }

        /// Sends without blocking (at-most-once).
        ///
        /// # Errors
        /// [`SendError`] with the envelope handed back: `Full`, `NoSuchComponent`,
        /// `Closed`, `PayloadTooLarge`, `Invalid`.
        #[inline]
        pub fn try_send(&self, env: MessageEnvelope) -> Result<(), SendError> {
            self.inner.send(env, DeliveryGuarantee::AtMostOnce, Origin::Host)
        }

        /// Sends without blocking, with a delivery guarantee.
        ///
        /// # Errors
        /// As [`RuntimeHandle::try_send`].
        pub fn try_send_with(&self, env: MessageEnvelope, guarantee: DeliveryGuarantee) -> Result<(), SendError> {
            self.inner.send(env, guarantee, Origin::Host)
        }

        /// Sends, waiting up to `timeout` for space in a full mailbox.
        ///
        /// A blocked sender sleeps (it spins on nothing) until the component's worker has
        /// drained the mailbox to half its capacity, so a fast producer wakes once per half
        /// mailbox rather than once per message. It also looks on its own every millisecond
        /// and takes any free slot, and it returns [`SendError::Closed`] at once if the
        /// component is unregistered or stopped while it waits. The number of senders
        /// blocked now is in [`crate::ComponentStatsSnapshot::blocked_senders`].
        ///
        /// On a worker thread (inside a handler) it never waits: a full mailbox returns
        /// [`SendError::Full`] at once, so a handler cannot stall its worker.
        ///
        /// # Errors
        /// As [`RuntimeHandle::try_send`], plus [`SendError::Timeout`].
        pub fn send_timeout(&self, env: MessageEnvelope, timeout: Duration) -> Result<(), SendError> {
            self.inner.send_timeout(env, DeliveryGuarantee::AtMostOnce, timeout)
        }

        /// As [`RuntimeHandle::send_timeout`], with a delivery guarantee.
        ///
        /// # Errors
        /// As [`RuntimeHandle::send_timeout`].
        pub fn send_timeout_with(
            &self,
            env: MessageEnvelope,
            guarantee: DeliveryGuarantee,
            timeout: Duration,
        ) -> Result<(), SendError> {
            self.inner.send_timeout(env, guarantee, timeout)
        }

        /// Sends a request and returns a handle to its one outcome: the response, or
        /// [`RequestError::Timeout`] after `timeout` (enforced by the runtime's timer).
        ///
        /// # Errors
        /// [`SendError`] with the envelope handed back; [`InvalidEnvelope::NotARequest`]
        /// unless `env.message_type` is `Request`.
        pub fn request(&self, env: MessageEnvelope, timeout: Duration) -> Result<ReplyHandle, SendError> {
            self.inner.request_host(env, timeout)
        }

        /// Delivers a copy of a [`MessageType::Publish`] envelope to every subscriber of
        /// its topic. Copies that cannot be delivered are dead-lettered with the reason.
        ///
        /// # Errors
        /// [`SendError`] when the envelope is not a publish with a topic, is too large, or
        /// the runtime is shutting down.
        pub fn publish(&self, env: MessageEnvelope) -> Result<PublishReport, SendError> {
            self.inner.publish(env, Origin::Host)
        }

        /// Subscribes a component to a topic.
        pub fn subscribe(&self, topic: &str, id: ComponentId) {
            self.inner.subscribe(topic, id);
        }

        /// Unsubscribes a component from a topic.
        pub fn unsubscribe(&self, topic: &str, id: &ComponentId) {
            self.inner.unsubscribe(topic, id);
        }

        /// The subscribers of a topic.
        pub fn subscribers(&self, topic: &str) -> Vec<ComponentId> {
            self.inner.subscribers(topic)
        }

        /// A snapshot of the routing counters.
        pub fn stats(&self) -> RoutingStatsSnapshot {
            self.inner.snapshot()
        }

        /// A snapshot of one component's counters.
        pub fn component_stats(&self, id: &ComponentId) -> Option<ComponentStatsSnapshot> {
            self.inner.component_stats(id)
        }

        /// Takes the dead letters queued so far (none when a hook is installed).
        pub fn dead_letters(&self) -> Vec<DeadLetter> {
            self.inner.take_dead_letters()
        }

        /// Requests awaiting an outcome.
        pub fn pending_requests(&self) -> usize {
            self.inner.pending_requests()
        }

        /// Entries in the timer: deadlines of requests in flight, and restart backoffs.
        pub fn timer_entries(&self) -> usize {
            self.inner.timer_entries()
        }

        /// Number of worker threads.
        pub fn workers(&self) -> usize {
            self.inner.worker_count()
        }
    }
}
