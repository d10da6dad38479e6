//! The runtime's core without its threads, for loom models (built only with `--cfg loom`).
//!
//! A [`ModelRuntime`] holds the real registry, state words, mailboxes, run queues,
//! parkers, pending-request table and dead-letter sink. It starts no worker or timer
//! thread: a model drives the worker loop itself ([`ModelRuntime::worker_iteration`]) and
//! plays the timer ([`ModelRuntime::expire`]), each from the loom thread it chooses. Every
//! method is a thin call into the same code the threaded runtime runs.

use std::time::Duration;

use crate::RequestError;
use crate::deadletter::DeadLetter;
use crate::envelope::{DeliveryGuarantee, MessageEnvelope};
use crate::error::{RegisterError, SendError, UnregisterError};
use crate::health::HealthStatus;
use crate::id::ComponentId;
pub use crate::mailbox::Fault;
use crate::reply::ReplyHandle;
use crate::runtime::{Inner, RuntimeConfig};
use crate::send::Origin;
use crate::spec::ComponentSpec;
use crate::stats::{ComponentStatsSnapshot, RoutingStatsSnapshot};
use crate::sync::Arc;

/// A request's deadline entry in the timer (opaque).
#[derive(Debug, Clone, Copy)]
pub struct Deadline(crate::timer::TimerKey);

/// A health check started by [`ModelRuntime::ask_health`].
pub struct HealthAsk(Result<crate::health::HealthProbe, HealthStatus>);

impl HealthAsk {
    /// The answer, if given yet (at once, or since by whoever took the probe).
    pub fn answer(&self) -> Option<HealthStatus> {
        match &self.0 {
            Ok(probe) => probe.answered(),
            Err(status) => Some(status.clone()),
        }
    }
}

/// The runtime core, driven by a loom model.
#[derive(Clone)]
pub struct ModelRuntime {
    inner: Arc<Inner>,
}

impl ModelRuntime {
    /// A core with `workers` run queues and the correct protocol.
    pub fn new(workers: usize) -> Self {
        Self::with_fault(workers, Fault::None)
    }

    /// A core whose components carry a deliberate bug (for checking that a model catches it).
    pub fn with_fault(workers: usize, fault: Fault) -> Self {
        let config = RuntimeConfig { workers, io_workers: 0, pin_workers: false, ..RuntimeConfig::default() };
        let mut inner = Inner::new(config, None);
        inner.fault = fault;
        inner.pending.fault = fault;
        inner.pool = crate::workers::WorkerPool::with_fault(workers, fault);
        Self { inner: Arc::new(inner) }
    }

    /// Registers a component (its `init` is scheduled on its worker).
    pub fn register(&self, id: ComponentId, spec: ComponentSpec) -> Result<(), RegisterError> {
        self.inner.register(id, spec)
    }

    /// Unregisters a component.
    pub fn unregister(&self, id: &ComponentId) -> Result<(), UnregisterError> {
        self.inner.unregister(id)
    }

    /// The host's non-blocking send.
    pub fn try_send(&self, env: MessageEnvelope) -> Result<(), SendError> {
        self.inner.send(env, DeliveryGuarantee::AtMostOnce, Origin::Host)
    }

    /// A reference to the component registered as `id`.
    pub fn resolve(&self, id: &ComponentId) -> Option<crate::component_ref::ComponentRef> {
        crate::component_ref::resolve(&self.inner, id)
    }

    /// The host's batch send.
    pub fn send_batch(&self, batch: Vec<MessageEnvelope>) -> Result<(), crate::error::BatchError> {
        self.inner.send_batch(batch, DeliveryGuarantee::AtMostOnce, Origin::Host)
    }

    /// The host's request (the deadline is not modelled; call [`Self::expire`] instead).
    pub fn request(&self, env: MessageEnvelope) -> Result<ReplyHandle, SendError> {
        self.inner.request_host(env, Duration::from_secs(3600))
    }

    /// A request made by a registered component (as `Context::request` does from its
    /// handler); the outcome goes to that component's outcome lane.
    pub fn request_from(&self, requester: &ComponentId, env: MessageEnvelope) -> Result<crate::MessageId, SendError> {
        let comp = self.inner.registry.component(requester).expect("requester is registered");
        self.inner.request_from_component(&comp, env, Duration::from_secs(3600))
    }

    /// The host's blocking send: waits (sleeping) for room in a full mailbox.
    pub fn send_timeout(&self, env: MessageEnvelope, timeout: Duration) -> Result<(), SendError> {
        self.inner.send_timeout(env, DeliveryGuarantee::AtMostOnce, timeout)
    }

    /// The deadline entry of a pending request (to fire it later, perhaps stale).
    pub fn deadline(&self, request_id: &str) -> Option<Deadline> {
        self.inner.pending.deadline_of(request_id).map(Deadline)
    }

    /// What the timer does when `deadline` comes due for `request_id`.
    pub fn fire_deadline(&self, request_id: &str, deadline: Deadline) {
        self.inner.expire_request(request_id, deadline.0, RequestError::Timeout);
    }

    /// Entries in the timer.
    pub fn timer_entries(&self) -> usize {
        self.inner.timer_entries()
    }

    /// Requests awaiting an outcome.
    pub fn pending_requests(&self) -> usize {
        self.inner.pending_requests()
    }

    /// What the timer does at a request's deadline.
    pub fn expire(&self, request_id: &str) {
        if let Some(deadline) = self.inner.pending.deadline_of(request_id) {
            self.inner.expire_request(request_id, deadline, RequestError::Timeout);
        }
    }

    /// What `Context::forward` does when component `me`, handling `request`, hands it on
    /// to `to`: true when handed over and delivered.
    pub fn forward(&self, me: &ComponentId, request: &MessageEnvelope, to: &ComponentId) -> bool {
        let ticket = self.inner.pending.deadline_of(&request.message_id).map(crate::request::Ticket::of);
        self.inner.forward(me, request, ticket, to, None, Origin::Worker).is_ok()
    }

    /// Routes a response (what a handler's reply does).
    pub fn respond(&self, env: MessageEnvelope) {
        self.inner.deliver_response(env);
    }

    /// Routes a response made while handling the request registered with `deadline` (what
    /// a handler's reply to that letter does).
    pub fn respond_to(&self, env: MessageEnvelope, deadline: Deadline) {
        self.inner.deliver_response_to(env, Some(crate::request::Ticket::of(deadline.0)));
    }

    /// One iteration of worker `index`'s loop (may park).
    pub fn worker_iteration(&self, index: usize) {
        self.inner.worker_iteration(index);
    }

    /// Runs one turn from worker `index`'s run queue, if any; never parks.
    pub fn run_one(&self, index: usize) -> bool {
        self.inner.run_one(index)
    }

    /// Tells the workers to stop and unparks them.
    pub fn stop_workers(&self) {
        self.inner.stop_workers();
    }

    /// Shutdown's "stop accepting" step.
    pub fn begin_shutdown(&self) {
        self.inner.begin_shutdown();
    }

    /// Shutdown's final step: close every component and dead-letter what is queued.
    pub fn close_all(&self) -> u64 {
        self.inner.close_all().0
    }

    /// Routing counters.
    pub fn stats(&self) -> RoutingStatsSnapshot {
        self.inner.snapshot()
    }

    /// One component's counters.
    pub fn component_stats(&self, id: &ComponentId) -> Option<ComponentStatsSnapshot> {
        self.inner.component_stats(id)
    }

    /// Queued dead letters.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.inner.take_dead_letters()
    }

    /// Marks the calling (loom) thread as worker `index` of this runtime, as the threaded
    /// runtime marks its worker threads: a send from it skips the unpark of that worker.
    pub fn act_as_worker(&self, index: usize) {
        crate::workers::become_worker(self.inner.id, index);
    }

    /// Starts a health check of `id` as `RuntimeHandle::health` does, without waiting:
    /// the probe put into its outcome lane (or joined there), or the answer given at once.
    pub fn ask_health(&self, id: &ComponentId) -> HealthAsk {
        match self.inner.registry.component(id) {
            Some(comp) => HealthAsk(self.inner.probe(&comp)),
            None => HealthAsk(Err(HealthStatus::NoSuchComponent)),
        }
    }

    /// Subscribes `id` to `topic`.
    pub fn subscribe(&self, topic: &str, id: ComponentId) {
        self.inner.subscribe(topic, id);
    }

    /// Unsubscribes `id` from `topic`.
    pub fn unsubscribe(&self, topic: &str, id: &ComponentId) {
        self.inner.unsubscribe(topic, id);
    }

    /// The subscribers of `topic`.
    pub fn subscribers(&self, topic: &str) -> Vec<ComponentId> {
        self.inner.subscribers(topic)
    }
}
