//! [`RuntimeHandle`]: the cloneable handle through which hosts (and `Runtime`, which
//! derefs to it) register components, send, ask, publish and observe.

use std::time::Duration;

use crate::component_ref::ComponentRef;
use crate::deadletter::DeadLetter;
use crate::envelope::{DeliveryGuarantee, MessageEnvelope};
use crate::error::{BatchError, RegisterError, SendError, UnregisterError};
use crate::health::{HealthStatus, Readiness};
use crate::id::ComponentId;
use crate::reply::ReplyHandle;
use crate::runtime::Inner;
use crate::send::Origin;
use crate::spec::ComponentSpec;
use crate::stats::{ComponentStatsSnapshot, RoutingStatsSnapshot};
use crate::sync::Arc;
use crate::topics::PublishReport;

/// A cloneable, thread-safe handle for sending to and managing a running [`Runtime`](crate::Runtime).
///
/// Handles stay valid after shutdown; sends then fail with [`SendError::Closed`].
#[derive(Clone)]
pub struct RuntimeHandle {
    pub(crate) inner: Arc<Inner>,
}

impl RuntimeHandle {
    /// The runtime's core, for the typed layer's sends.
    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
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
    /// messages already queued are dead-lettered as [`DeadLetterReason::Unregistered`](crate::DeadLetterReason::Unregistered)
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
    /// `Closed`, `PayloadTooLarge`, `Invalid`; and, for a component on another node of a
    /// cluster, `Transport` while this node is cut off from the server.
    #[inline]
    pub fn try_send(&self, env: MessageEnvelope) -> Result<(), SendError> {
        self.inner.send(env, DeliveryGuarantee::AtMostOnce, Origin::Host)
    }

    /// Resolves `id` once, for many sends without the registry lookup
    /// ([`ComponentRef::try_send`], [`ComponentRef::send_batch`],
    /// [`ComponentRef::send_timeout`], [`ComponentRef::request`]). `None` if nothing is
    /// registered as `id` here now (also for a component hosted by another node of a
    /// cluster: reach that one through the routed sends). The reference stays tied to the
    /// component registered now:
    /// once that one is unregistered or stopped, sends through it are refused with
    /// [`SendError::Closed`], even if another component is registered under the same id.
    pub fn resolve(&self, id: &ComponentId) -> Option<ComponentRef> {
        crate::component_ref::resolve(&self.inner, id)
    }

    /// Sends a batch of one-way messages ([`MessageType::FireAndForget`]) to one component
    /// without blocking: one registry lookup for the whole batch and at most one wake-up of
    /// the component's worker, so a producer that has many messages for one component pays
    /// the routing once. Envelopes go in, in order, until one is refused (a full mailbox,
    /// a closed component, a payload too large, or an envelope of another type or for
    /// another component than the first, [`InvalidEnvelope::NotInBatch`]).
    ///
    /// # Errors
    /// [`BatchError`]: how many went in, the refused envelope with the reason, and the ones
    /// after it (not tried), in order; nothing is lost.
    ///
    /// [`MessageType::FireAndForget`]: crate::MessageType::FireAndForget
    /// [`InvalidEnvelope::NotInBatch`]: crate::InvalidEnvelope::NotInBatch
    pub fn send_batch(&self, batch: Vec<MessageEnvelope>) -> Result<(), BatchError> {
        self.inner.send_batch(batch, DeliveryGuarantee::AtMostOnce, Origin::Host)
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
    /// [`RequestError::Timeout`](crate::RequestError::Timeout) after `timeout` (enforced by the runtime's timer).
    ///
    /// # Errors
    /// [`SendError`] with the envelope handed back; [`InvalidEnvelope::NotARequest`](crate::InvalidEnvelope::NotARequest)
    /// unless `env.message_type` is `Request`.
    pub fn request(&self, env: MessageEnvelope, timeout: Duration) -> Result<ReplyHandle, SendError> {
        self.inner.request_host(env, timeout)
    }

    /// Delivers a copy of a [`MessageType::Publish`](crate::MessageType::Publish) envelope to every subscriber of
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

    /// What this node's cluster bridge did, if the runtime joined a cluster.
    #[cfg(feature = "cluster")]
    pub fn cluster_stats(&self) -> Option<crate::cluster::ClusterStats> {
        self.inner.cluster.get().map(|b| b.stats())
    }

    /// The health of every component other nodes of the cluster serve (not those of this
    /// runtime), asked of them all at once within `timeout`, with the node that answered.
    /// Empty for a runtime that joined no cluster. [`RuntimeHandle::health`] of one such id
    /// asks the same way.
    #[cfg(feature = "cluster")]
    pub fn cluster_health(&self, timeout: std::time::Duration) -> Vec<crate::cluster::RemoteHealth> {
        let Some(bridge) = self.inner.cluster.get() else {
            return Vec::new();
        };
        let ids = self.inner.registry.remote_ids();
        let answers = self.inner.remote_health(bridge, &ids, timeout);
        ids.into_iter()
            .zip(answers)
            .map(|(id, (node, status))| crate::cluster::RemoteHealth { id, node, status })
            .collect()
    }

    /// Waits up to `timeout` until a component `id` is reachable: registered here or
    /// hosted by another node of the cluster (as the directory learns of it). For a node
    /// that must not send before its peers are up. Returns whether it became reachable.
    pub fn wait_for_component(&self, id: &crate::ComponentId, timeout: std::time::Duration) -> bool {
        let reachable = || self.inner.registry.get(id).is_some();
        #[cfg(feature = "cluster")]
        if let Some(bridge) = self.inner.cluster.get() {
            return bridge.wait_until(crate::runtime::deadline_after(timeout), reachable);
        }
        let _ = timeout;
        reachable()
    }

    /// Waits up to `timeout` until this node is connected to its cluster's server (after
    /// a loss, the client reconnects by itself). False at once for a runtime that joined
    /// no cluster.
    #[cfg(feature = "cluster")]
    pub fn wait_for_cluster(&self, timeout: std::time::Duration) -> bool {
        match self.inner.cluster.get() {
            Some(b) => b.wait_until(crate::runtime::deadline_after(timeout), || {
                b.connected.load(std::sync::atomic::Ordering::Acquire)
            }),
            None => false,
        }
    }

    /// A snapshot of the routing counters.
    pub fn stats(&self) -> RoutingStatsSnapshot {
        self.inner.snapshot()
    }

    /// A snapshot of one component's counters.
    pub fn component_stats(&self, id: &ComponentId) -> Option<ComponentStatsSnapshot> {
        self.inner.component_stats(id)
    }

    /// Asks the component registered as `id` whether it is healthy, waiting up to
    /// `timeout` for its answer ([`crate::Handler::health`]; a WASM guest's optional
    /// `health` export).
    ///
    /// The question does not queue behind the component's mailbox: it goes into the lane
    /// that request outcomes use, which the component reads before its next message, so a
    /// component whose mailbox is full answers at its next step. A component that is
    /// closed, or waiting out a restart backoff, is answered for at once without asking
    /// it ([`HealthStatus::Stopped`], [`HealthStatus::Restarting`]). A handler busy with
    /// a message for longer than `timeout` gives [`HealthStatus::NoAnswer`]; the question
    /// then stays in its lane, and the next check waits for the same answer instead of
    /// adding another (so polling a stuck component costs it one entry).
    ///
    /// Blocks the calling thread up to `timeout`; on a worker thread (inside a handler)
    /// it never waits, and answers [`HealthStatus::NoAnswer`] unless the answer is
    /// immediate. A timeout of zero asks without waiting.
    pub fn health(&self, id: &ComponentId, timeout: Duration) -> HealthStatus {
        self.inner.health(id, timeout)
    }

    /// Asks each component of `ids` for its health, as [`RuntimeHandle::health`] does, but
    /// all at once: every probe is placed first, then the answers are awaited within one
    /// `timeout` in all, so components on different workers answer in parallel. The
    /// statuses come back in the order of `ids`.
    pub fn health_all(&self, ids: &[ComponentId], timeout: Duration) -> Vec<HealthStatus> {
        self.inner.health_all(ids, timeout)
    }

    /// The runtime's readiness: how many components are registered and running, which
    /// are restarting or stopped, which mailboxes are full now, and whether the whole is
    /// [`Readiness::ready`]. Read from each component's state without asking any of them:
    /// it never waits (see [`RuntimeHandle::health`] to ask one).
    pub fn readiness(&self) -> Readiness {
        self.inner.readiness()
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

    /// Number of general worker threads: what [`crate::RuntimeBuilder::workers`] set. The
    /// I/O workers are counted apart ([`RuntimeHandle::io_workers`]).
    pub fn workers(&self) -> usize {
        self.inner.general_worker_count()
    }

    /// Number of worker threads for components that block on I/O
    /// ([`crate::RuntimeBuilder::io_workers`]).
    pub fn io_workers(&self) -> usize {
        self.inner.io_worker_count()
    }

    /// Copies every counter and gauge of this runtime (routing, per component, WASM, the
    /// cluster node) into the `metrics` recorder installed now, under the names listed in
    /// [`crate::metrics`]. Call it before each export, or on a timer; it reads the counters
    /// the engine keeps anyway, so the send path pays nothing for metrics.
    #[cfg(feature = "metrics")]
    pub fn record_metrics(&self) {
        self.inner.record_metrics();
    }
}
