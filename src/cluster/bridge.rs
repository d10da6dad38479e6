//! The bridge's synchronous side: what senders, workers and the registry call. Each call
//! hands a job to the I/O thread through a crossbeam queue and wakes it; nothing here
//! blocks or awaits.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, unbounded};

use super::{ClusterConfig, ClusterStats, ReconnectBuffer, io};
use crate::envelope::{MessageEnvelope, MessageType};
use crate::error::{BuildError, RequestError, SendError};
use crate::id::ComponentId;
use crate::runtime::Inner;

pub(crate) use super::jobs::{Control, Outbound, Queued, Receipt, RemoteReply, RemoteTarget};

/// Counters of the bridge (see [`ClusterStats`]).
#[derive(Default)]
pub(crate) struct BridgeCounters {
    pub(crate) forwarded: AtomicU64,
    pub(crate) remote_failures: AtomicU64,
    pub(crate) inbound: AtomicU64,
    pub(crate) inbound_refused: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) slow_consumer_events: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) client_rebuilds: AtomicU64,
    pub(crate) buffer_refused: AtomicU64,
    pub(crate) nodes_expired: AtomicU64,
    pub(crate) directory_refused: AtomicU64,
    pub(crate) buffer_expired: AtomicU64,
    pub(crate) durable_inbound: AtomicU64,
    pub(crate) durable_redelivered: AtomicU64,
    pub(crate) durable_returned: AtomicU64,
    pub(crate) discovery_refused: AtomicU64,
    pub(crate) discovery_summaries: AtomicU64,
    pub(crate) permission_denied: AtomicU64,
    pub(crate) link_batches: AtomicU64,
    pub(crate) link_resends: AtomicU64,
    pub(crate) state_fetches: AtomicU64,
    pub(crate) remote_nodes: AtomicUsize,
    pub(crate) remote_components: AtomicUsize,
}

/// One node's bridge to the cluster.
pub(crate) struct Bridge {
    pub(crate) cluster: String,
    pub(crate) node: String,
    /// Drawn at random when the node starts: a node that restarts under the same name is
    /// another node (`directory.rs`), and link sessions are between two epochs
    /// (`session.rs`).
    pub(crate) epoch: u64,
    /// The epochs of the other nodes membership knows now (the link receiver takes batches
    /// only from these).
    epochs: parking_lot::RwLock<std::collections::HashMap<String, u64>>,
    /// Until then, a send to an id no node is known to host waits for membership to learn
    /// of it (the node joined a moment ago: a node that answered its hello late is heard
    /// from within a heartbeat) rather than fail.
    warm_until: parking_lot::Mutex<Option<std::time::Instant>>,
    /// At-least-once messages travel through the cluster's stream.
    pub(crate) jetstream: bool,
    /// The cap on a remote request's time here ([`ClusterConfig::max_request_timeout`]).
    pub(crate) max_request_timeout: Duration,
    out: Sender<Queued>,
    control: Sender<Control>,
    /// The reconnect buffer's bounds (`None`: off).
    buffer: Option<ReconnectBuffer>,
    /// What the reconnect buffer holds now: messages and bytes reserved by sends made
    /// while cut off, until each leaves the node or ends here.
    buffered_messages: AtomicUsize,
    buffered_bytes: AtomicUsize,
    /// Set when the node leaves the cluster (or its I/O thread failed): from then on every
    /// send is refused with `Transport`, buffer or not.
    leaving: AtomicBool,
    wake: Arc<tokio::sync::Notify>,
    /// False while cut off from the server: sends wait in the reconnect buffer (or are
    /// refused with `Transport` at once when it is full or off), not in the client.
    pub(crate) connected: AtomicBool,
    /// The same, for the I/O thread's tasks to await (a resend waits for the connection).
    pub(crate) connection: tokio::sync::watch::Sender<bool>,
    joined: AtomicBool,
    pub(crate) counters: BridgeCounters,
    /// Set by a reconnection: the I/O loop re-announces this node's state.
    resync: AtomicBool,
    /// Bumped (under its lock) whenever the directory changed the registry: what
    /// `wait_for_component` waits on.
    changes: parking_lot::Mutex<u64>,
    changed: parking_lot::Condvar,
    thread: parking_lot::Mutex<Option<JoinHandle<()>>>,
    /// The keys and the counter of `store_key`.
    store_keys: (std::collections::hash_map::RandomState, std::collections::hash_map::RandomState),
    stores: AtomicU64,
    /// Health questions from the cluster this node is waiting on (see `health.rs`).
    pub(crate) health_waiting: Arc<AtomicUsize>,
    /// The server's permission refusals not yet looked at by the I/O loop (the latest
    /// [`MAX_DENIALS`], each the server's text), and a wake-up for a round trip waiting on
    /// one.
    pub(crate) denials: parking_lot::Mutex<std::collections::VecDeque<String>>,
    pub(crate) denied: tokio::sync::Notify,
    /// False once the I/O thread took its last answers (at stop): a later answer is handed
    /// back to its caller (to dead-letter) instead of left in a queue nobody reads.
    answers_open: parking_lot::RwLock<bool>,
    /// The components this node serves to the cluster (subscribed and announced): what a
    /// message on its own subject may be for, and what discovery lists.
    pub(crate) served: parking_lot::RwLock<super::served::Served>,
    /// The largest message the server takes (its `max_payload`, payload and headers): a
    /// larger one is refused at the send, not sent to be refused by the client each time.
    max_payload: AtomicUsize,
}

/// The server's permission refusals a bridge keeps until its I/O loop looks at them.
pub(crate) const MAX_DENIALS: usize = 32;

/// What the I/O thread works from.
pub(crate) struct IoSide {
    pub(crate) bridge: Arc<Bridge>,
    pub(crate) inner: Weak<Inner>,
    pub(crate) out: Receiver<Queued>,
    pub(crate) control: Receiver<Control>,
    pub(crate) wake: Arc<tokio::sync::Notify>,
    pub(crate) config: ClusterConfig,
}

impl Bridge {
    /// Connects to the server, joins the directory and starts the I/O thread. Returns once
    /// connected (or why not within the connect timeout).
    pub(crate) fn start(config: ClusterConfig, inner: Weak<Inner>) -> Result<Arc<Bridge>, BuildError> {
        if let Some(why) = config.invalid() {
            return Err(BuildError::InvalidConfig(why));
        }
        let (out_tx, out_rx) = bounded(config.outbound_capacity);
        let (control_tx, control_rx) = unbounded();
        let wake = Arc::new(tokio::sync::Notify::new());
        let node = config.node.clone().unwrap_or_else(|| format!("node-{:016x}", random_u64()));
        let bridge = Arc::new(Bridge {
            cluster: config.name.clone(),
            node,
            epoch: random_u64() ^ random_u64().rotate_left(32),
            epochs: parking_lot::RwLock::default(),
            warm_until: parking_lot::Mutex::new(None),
            jetstream: config.jetstream,
            max_request_timeout: config.max_request_timeout,
            out: out_tx,
            control: control_tx,
            buffer: config.reconnect_buffer,
            buffered_messages: AtomicUsize::new(0),
            buffered_bytes: AtomicUsize::new(0),
            leaving: AtomicBool::new(false),
            wake: wake.clone(),
            connected: AtomicBool::new(false),
            connection: tokio::sync::watch::Sender::new(false),
            joined: AtomicBool::new(false),
            counters: BridgeCounters::default(),
            resync: AtomicBool::new(false),
            changes: parking_lot::Mutex::new(0),
            changed: parking_lot::Condvar::new(),
            thread: parking_lot::Mutex::new(None),
            store_keys: (
                std::collections::hash_map::RandomState::new(),
                std::collections::hash_map::RandomState::new(),
            ),
            stores: AtomicU64::new(0),
            health_waiting: Arc::default(),
            denials: parking_lot::Mutex::default(),
            denied: tokio::sync::Notify::new(),
            answers_open: parking_lot::RwLock::new(true),
            served: parking_lot::RwLock::default(),
            max_payload: AtomicUsize::new(usize::MAX),
        });
        let (ready_tx, ready_rx) = bounded::<Result<(), String>>(1);
        // The connection, then at most 5 s for the stream and 5 s for the first round trip.
        let wait = config.connect_timeout + Duration::from_secs(12);
        let side = IoSide { bridge: bridge.clone(), inner, out: out_rx, control: control_rx, wake, config };
        let handle = std::thread::Builder::new()
            .name("switchyard-cluster".into())
            .spawn(move || io::run(side, ready_tx))
            .map_err(BuildError::Spawn)?;
        match ready_rx.recv_timeout(wait) {
            Ok(Ok(())) => {
                *bridge.thread.lock() = Some(handle);
                Ok(bridge)
            }
            Ok(Err(why)) => {
                let _ = handle.join();
                Err(BuildError::Cluster(why))
            }
            Err(_) => Err(BuildError::Cluster(format!("the cluster bridge did not start within {wait:?}"))),
        }
    }

    /// Queues `env` for another node's component. `timeout` is a request's remaining time
    /// (requests only).
    pub(crate) fn forward(
        &self,
        env: MessageEnvelope,
        guarantee: crate::DeliveryGuarantee,
        timeout: Duration,
        deadline: Option<crate::timer::TimerKey>,
    ) -> Result<(), SendError> {
        let job = self.job_for(env, guarantee, timeout, deadline)?;
        self.push(job)
    }

    /// The job that sends `env` to another node's component.
    pub(crate) fn job_for(
        &self,
        env: MessageEnvelope,
        guarantee: crate::DeliveryGuarantee,
        timeout: Duration,
        deadline: Option<crate::timer::TimerKey>,
    ) -> Result<Outbound, SendError> {
        let stored = guarantee.redelivers();
        if stored && (!self.jetstream || env.message_type != MessageType::FireAndForget) {
            // Only one-way messages are stored, and only with JetStream (see the module
            // docs): never silently downgraded to at-most-once.
            return Err(SendError::Invalid(env, crate::error::InvalidEnvelope::NotForTheCluster));
        }
        Ok(if stored {
            Outbound::Durable { subject: super::subject::durable(&self.cluster, env.to.as_str()), env, guarantee }
        } else if env.message_type == MessageType::Request {
            let subject = super::subject::component(&self.cluster, env.to.as_str());
            Outbound::Request { subject, env, timeout, deadline }
        } else {
            Outbound::Send { env }
        })
    }

    /// Queues `env`, whose target no node is known to host while membership is still
    /// warming up (`Bridge::warming`): it waits, up to `timeout`, for membership to learn
    /// of a node that does, then goes there; or is refused as `NoSuchComponent`.
    pub(crate) fn forward_unresolved(
        &self,
        env: MessageEnvelope,
        guarantee: crate::DeliveryGuarantee,
        timeout: Duration,
        deadline: Option<crate::timer::TimerKey>,
    ) -> Result<(), SendError> {
        if !super::wire::can_carry(&env) {
            return Err(SendError::Invalid(env, crate::error::InvalidEnvelope::NotForTheCluster));
        }
        self.push(Outbound::Unresolved { env, guarantee, timeout, deadline })
    }

    /// Queues a publish for the other nodes' subscribers.
    pub(crate) fn publish(&self, env: MessageEnvelope) -> Result<(), SendError> {
        if !super::wire::can_carry(&env) {
            return Err(SendError::Invalid(env, crate::error::InvalidEnvelope::NotForTheCluster));
        }
        self.push(Outbound::Publish { env })
    }

    /// Records the server's `max_payload`.
    pub(crate) fn set_max_payload(&self, bytes: usize) {
        self.max_payload.store(bytes, Ordering::Relaxed);
    }

    /// The largest message the server takes.
    pub(crate) fn max_payload(&self) -> usize {
        self.max_payload.load(Ordering::Relaxed)
    }

    /// The epoch of `node`, if membership knows it.
    pub(crate) fn epoch_of(&self, node: &str) -> Option<u64> {
        self.epochs.read().get(node).copied()
    }

    /// Records the epochs of the nodes membership knows now.
    pub(crate) fn set_epochs(&self, epochs: std::collections::HashMap<String, u64>) {
        *self.epochs.write() = epochs;
    }

    /// Sends to ids no node is known to host wait for membership until `until`.
    pub(crate) fn warm_until(&self, until: std::time::Instant) {
        *self.warm_until.lock() = Some(until);
    }

    /// True while membership may still learn of an id a send names (see `warm_until`).
    pub(crate) fn warming(&self) -> bool {
        self.warm_until.lock().is_some_and(|t| std::time::Instant::now() < t)
    }

    /// Queues `job` for the I/O thread; while cut off, only if the reconnect buffer has
    /// room for it.
    fn push(&self, job: Outbound) -> Result<(), SendError> {
        if self.leaving.load(Ordering::Acquire) {
            return Err(SendError::Transport(job.into_envelope()));
        }
        // Room for the `sy-*` headers too (a few hundred bytes; ids and topics are bounded).
        if job.payload_len().saturating_add(super::wire::HEADER_ROOM) > self.max_payload.load(Ordering::Relaxed) {
            return Err(SendError::PayloadTooLarge(job.into_envelope()));
        }
        let reserved = if self.connected.load(Ordering::Acquire) {
            None
        } else {
            let size = job.buffered_size();
            if !self.reserve(size) {
                self.counters.buffer_refused.fetch_add(1, Ordering::Relaxed);
                return Err(SendError::Transport(job.into_envelope()));
            }
            Some(size)
        };
        match self.out.try_send(Queued { job, reserved }) {
            Ok(()) => {
                self.wake.notify_one();
                Ok(())
            }
            Err(TrySendError::Full(q)) => {
                self.release(q.reserved);
                Err(SendError::Full(q.job.into_envelope()))
            }
            Err(TrySendError::Disconnected(q)) => {
                self.release(q.reserved);
                Err(SendError::Closed(q.job.into_envelope()))
            }
        }
    }

    /// Takes room for one message of `size` bytes in the reconnect buffer, if it has it.
    fn reserve(&self, size: usize) -> bool {
        let Some(limits) = &self.buffer else {
            return false;
        };
        // Both bounds hold at every moment: each is taken first and given back if over
        // (a race may refuse a send that would just have fitted, never overfill).
        if self.buffered_messages.fetch_add(1, Ordering::AcqRel) >= limits.messages {
            self.buffered_messages.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        if self.buffered_bytes.fetch_add(size, Ordering::AcqRel) + size > limits.bytes {
            self.buffered_bytes.fetch_sub(size, Ordering::AcqRel);
            self.buffered_messages.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Gives back what a message held of the reconnect buffer.
    pub(crate) fn release(&self, reserved: Option<usize>) {
        if let Some(size) = reserved {
            self.buffered_bytes.fetch_sub(size, Ordering::AcqRel);
            self.buffered_messages.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The reconnect buffer's deadline, if it is on.
    pub(crate) fn buffer_deadline(&self) -> Option<Duration> {
        self.buffer.map(|b| b.deadline)
    }

    /// From now on every send is refused with `Transport` (the node leaves the cluster).
    pub(crate) fn set_leaving(&self) {
        self.leaving.store(true, Ordering::Release);
        // Senders see the node as cut off; the round trips in flight do not (the
        // connection is still up: their answers may still come within the stop's grace).
        self.connected.store(false, Ordering::Release);
        self.notify_changed();
    }

    pub(super) fn control(&self, c: Control) {
        // The I/O thread holds the receiver until it stops; after that nothing is served.
        if self.control.send(c).is_ok() {
            self.wake.notify_one();
        }
    }

    /// Starts serving a local component to the cluster.
    pub(crate) fn host(&self, id: ComponentId) {
        self.control(Control::Host(id));
    }

    /// Stops serving it.
    pub(crate) fn unhost(&self, id: ComponentId) {
        self.control(Control::Unhost(id));
    }

    /// Sends the outcome of a request from another node back to its requester. A response
    /// that cannot go any more (the bridge stopped) is handed back, to be dead-lettered.
    pub(crate) fn answer(
        &self,
        reply_to: String,
        result: Result<MessageEnvelope, RequestError>,
    ) -> Option<MessageEnvelope> {
        let open = self.answers_open.read();
        if !*open {
            return result.ok();
        }
        match self.control.send(Control::Answer { reply_to, result }) {
            Ok(()) => {
                self.wake.notify_one();
                None
            }
            Err(crossbeam_channel::SendError(Control::Answer { result: Ok(env), .. })) => Some(env),
            Err(_) => None,
        }
    }

    /// Refuses answers from now on (see `answers_open`); the caller then drains those
    /// queued before.
    pub(crate) fn close_answers(&self) {
        *self.answers_open.write() = false;
    }

    /// Asks the nodes serving each of `ids` for its health, all at once, within `timeout`
    /// in all: the status of each and the node that answered (`NoAnswer` and no node when
    /// none did in time). Blocks the calling thread.
    pub(crate) fn health(&self, ids: &[ComponentId], timeout: Duration) -> Vec<(Option<String>, crate::HealthStatus)> {
        let none = || ids.iter().map(|_| (None, crate::HealthStatus::NoAnswer)).collect();
        if ids.is_empty() || timeout.is_zero() || !self.connected.load(Ordering::Acquire) {
            return none();
        }
        let subjects = ids.iter().map(|id| super::subject::component(&self.cluster, id.as_str())).collect();
        let (tx, rx) = bounded(1);
        self.control(Control::Health { subjects, timeout, reply: tx });
        // The I/O thread answers within the timeout; a little more for the hand-over.
        rx.recv_timeout(timeout + Duration::from_millis(250)).unwrap_or_else(|_| none())
    }

    /// Stops taking at-least-once messages from the stream (see [`Control::StopReading`]).
    pub(crate) fn stop_reading(&self) {
        self.control(Control::StopReading);
    }

    /// Ends the client's connection task (see [`Control::EndClientTask`]).
    #[cfg(test)]
    pub(crate) fn end_client_task(&self) {
        self.control(Control::EndClientTask);
    }

    /// Leaves the cluster's membership (see [`Control::Leave`]): other nodes stop sending
    /// here, and requests that reach this node while it drains are passed to another
    /// replica by their senders.
    pub(crate) fn leave(&self) {
        self.control(Control::Leave);
    }

    /// Leaves the cluster and joins the I/O thread (see [`Control::Stop`]).
    pub(crate) fn stop(&self, grace: Duration) {
        self.control(Control::Stop { grace });
        if let Some(h) = self.thread.lock().take() {
            let _ = h.join();
        }
    }

    /// A key for the stream's duplicate window of one at-least-once store: 128 bits of a
    /// keyed hash of a counter, under two keys drawn at random when the bridge started, so
    /// that nobody can guess a key this node will use (a message id would do: it is a
    /// process prefix and a counter).
    pub(crate) fn store_key(&self) -> String {
        use std::hash::BuildHasher;
        let n = self.stores.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}{:016x}", self.store_keys.0.hash_one(n), self.store_keys.1.hash_one(n))
    }

    /// Tells waiters that the directory changed the registry.
    pub(crate) fn notify_changed(&self) {
        *self.changes.lock() += 1;
        self.changed.notify_all();
    }

    /// Waits until `reachable()` holds, re-checking after each directory change, until
    /// `deadline`. Returns whether it held.
    pub(crate) fn wait_until(&self, deadline: std::time::Instant, reachable: impl Fn() -> bool) -> bool {
        let mut seen = self.changes.lock();
        loop {
            if reachable() {
                return true;
            }
            if self.changed.wait_until(&mut seen, deadline).timed_out() {
                return reachable();
            }
        }
    }

    /// True once the bridge joined its cluster (its first connection).
    pub(crate) fn joined(&self) -> bool {
        self.joined.load(Ordering::Acquire)
    }

    /// Records the first connection.
    pub(crate) fn set_joined(&self) {
        self.joined.store(true, Ordering::Release);
        self.set_connected(true);
    }

    /// Records whether the node is connected (for both sides).
    pub(crate) fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Release);
        self.connection.send_replace(up);
        self.notify_changed();
    }

    /// Records one of the server's permission refusals (from the connection's events).
    pub(crate) fn record_denial(&self, text: String) {
        self.counters.permission_denied.fetch_add(1, Ordering::Relaxed);
        let mut d = self.denials.lock();
        if d.len() == MAX_DENIALS {
            d.pop_front();
        }
        d.push_back(text);
        drop(d);
        self.denied.notify_waiters();
        self.wake.notify_one();
    }

    /// The permission refusals recorded since the last call.
    pub(crate) fn take_denials(&self) -> Vec<String> {
        self.denials.lock().drain(..).collect()
    }

    pub(crate) fn request_resync(&self) {
        self.resync.store(true, Ordering::Release);
    }

    pub(crate) fn take_resync(&self) -> bool {
        self.resync.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn stats(&self) -> ClusterStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClusterStats {
            node: self.node.clone(),
            connected: self.connected.load(Ordering::Acquire),
            forwarded: l(&c.forwarded),
            remote_failures: l(&c.remote_failures),
            inbound: l(&c.inbound),
            inbound_refused: l(&c.inbound_refused),
            published: l(&c.published),
            slow_consumer_events: l(&c.slow_consumer_events),
            reconnects: l(&c.reconnects),
            client_rebuilds: l(&c.client_rebuilds),
            buffered: self.buffered_messages.load(Ordering::Relaxed),
            buffer_refused: l(&c.buffer_refused),
            buffer_expired: l(&c.buffer_expired),
            nodes_expired: l(&c.nodes_expired),
            directory_refused: l(&c.directory_refused),
            durable_inbound: l(&c.durable_inbound),
            durable_redelivered: l(&c.durable_redelivered),
            durable_returned: l(&c.durable_returned),
            discovery_refused: l(&c.discovery_refused),
            discovery_summaries: l(&c.discovery_summaries),
            permission_denied: l(&c.permission_denied),
            link_batches: l(&c.link_batches),
            link_resends: l(&c.link_resends),
            state_fetches: l(&c.state_fetches),
            warming: self.warming(),
            remote_nodes: c.remote_nodes.load(Ordering::Relaxed),
            remote_components: c.remote_components.load(Ordering::Relaxed),
        }
    }
}

/// 64 random bits (std's randomly keyed hasher, drawn from the OS once per process).
fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}
