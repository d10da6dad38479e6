//! The async baseline: the tokio broker design of the earlier system ("Technical Design",
//! "Message Flow" of its broker design).
//!
//! This is the design switchyard replaces, built faithfully so the benches compare against
//! what that design specified, neither weakened nor improved:
//!
//! - a multi-thread tokio runtime with the same worker count as the switchyard runtime;
//! - a [`Broker`] (the broker design's `InMemoryMessageBroker`) holding
//!   `tokio::sync::RwLock<Vec<UnboundedSender<_>>>`; `publish` takes the read lock and sends a
//!   clone of the envelope to every subscriber ("publish(envelope) → broadcast to subscribers");
//! - one `ActorSystemSubscriber` task, subscribed at initialisation ("ActorSystem subscribes to
//!   MessageBroker"), whose routing loop receives every published envelope, resolves the
//!   target in `Arc<RwLock<HashMap<ComponentId, ActorAddress>>>` (cloning the address out of
//!   the read guard, as `resolve_actor` does), sends into the component task's unbounded
//!   tokio mailbox and then bumps `stats.write().await.messages_routed`;
//! - one tokio task per component, looping on its unbounded mailbox;
//! - request-response (broker design, "Phase 3": "Response correlation (automatic by runtime)",
//!   "Timeout enforcement (automatic by runtime)"): the requester parks a oneshot sender in a
//!   `RwLock<HashMap<correlation id, oneshot::Sender>>`, publishes the request through the
//!   broker and awaits the oneshot under `tokio::time::timeout`; the component publishes its
//!   response through the broker like any other message, and the subscriber, seeing a
//!   response, completes the waiting oneshot.
//!
//! PERF.md lists each of these choices beside the passage of the design it follows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard::{ComponentId, MessageEnvelope, new_message_id};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::{RwLock, oneshot};

/// A component's behaviour in the baseline: called for each message; a `Some` reply to a
/// request is published back as the response.
pub type BaselineHandler = Arc<dyn Fn(&MessageEnvelope) -> Option<Vec<u8>> + Send + Sync>;

/// Why a baseline operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaselineError {
    /// The target component is not registered (the broker design's "Component not found").
    ComponentNotFound,
    /// A mailbox or subscriber channel was closed.
    Closed,
    /// No response before the request's timeout.
    Timeout,
}

/// The broker design's `InMemoryMessageBroker`: pure pub-sub, every publish goes to every
/// subscriber.
#[derive(Default)]
pub struct Broker {
    subscribers: RwLock<Vec<UnboundedSender<MessageEnvelope>>>,
}

impl Broker {
    /// Adds a subscriber and returns its message stream.
    pub async fn subscribe(&self) -> UnboundedReceiver<MessageEnvelope> {
        let (tx, rx) = unbounded_channel();
        self.subscribers.write().await.push(tx);
        rx
    }

    /// Broadcasts a clone of `envelope` to every subscriber.
    pub async fn publish(&self, envelope: MessageEnvelope) -> Result<(), BaselineError> {
        let subscribers = self.subscribers.read().await;
        for subscriber in subscribers.iter() {
            subscriber.send(envelope.clone()).map_err(|_| BaselineError::Closed)?;
        }
        Ok(())
    }

    /// Number of subscribers.
    pub async fn subscriber_count(&self) -> usize {
        self.subscribers.read().await.len()
    }
}

/// The broker design's `ActorAddress`: the sending half of a component task's unbounded
/// mailbox.
#[derive(Clone)]
pub struct ActorAddress(UnboundedSender<MessageEnvelope>);

impl ActorAddress {
    /// Delivers into the mailbox (the broker design's
    /// `actor_addr.send(envelope.payload).await`).
    pub async fn send(&self, envelope: MessageEnvelope) -> Result<(), BaselineError> {
        self.0.send(envelope).map_err(|_| BaselineError::Closed)
    }
}

/// The broker design's `RoutingStats`, kept behind `Arc<RwLock<_>>` as its subscriber holds it.
#[derive(Debug, Default, Clone, Copy)]
pub struct RoutingStats {
    /// Envelopes delivered to a mailbox or a waiting requester.
    pub messages_routed: u64,
    /// Envelopes whose target was not registered.
    pub components_not_found: u64,
    /// Envelopes whose mailbox was closed.
    pub mailbox_send_failures: u64,
}

type Registry = Arc<RwLock<HashMap<ComponentId, ActorAddress>>>;
type Pending = Arc<RwLock<HashMap<String, oneshot::Sender<MessageEnvelope>>>>;

/// The broker design's `ActorSystemSubscriber`: one task routing every broker message by `to`.
struct ActorSystemSubscriber {
    actor_registry: Registry,
    pending: Pending,
    stats: Arc<RwLock<RoutingStats>>,
}

impl ActorSystemSubscriber {
    async fn routing_loop(self, mut stream: UnboundedReceiver<MessageEnvelope>) {
        while let Some(envelope) = stream.recv().await {
            // The broker design's loop propagates the error with `?` and would end routing for good;
            // it is counted here instead so one unknown target does not stop a benchmark.
            let _ = self.route_message(envelope).await;
        }
    }

    async fn route_message(&self, envelope: MessageEnvelope) -> Result<(), BaselineError> {
        if envelope.is_response() {
            // "Response correlation (automatic by runtime)".
            let waiter = match &envelope.correlation_id {
                Some(id) => self.pending.write().await.remove(id.as_str()),
                None => None,
            };
            if let Some(waiter) = waiter {
                let _ = waiter.send(envelope);
            }
            self.stats.write().await.messages_routed += 1;
            return Ok(());
        }
        let Some(actor_addr) = self.resolve_actor(&envelope.to).await else {
            self.stats.write().await.components_not_found += 1;
            return Err(BaselineError::ComponentNotFound);
        };
        if let Err(e) = actor_addr.send(envelope).await {
            self.stats.write().await.mailbox_send_failures += 1;
            return Err(e);
        }
        self.stats.write().await.messages_routed += 1;
        Ok(())
    }

    async fn resolve_actor(&self, component_id: &ComponentId) -> Option<ActorAddress> {
        self.actor_registry.read().await.get(component_id).cloned()
    }
}

/// The whole baseline system: tokio runtime, broker, subscriber task, component tasks.
pub struct AsyncBaseline {
    runtime: tokio::runtime::Runtime,
    broker: Arc<Broker>,
    registry: Registry,
    pending: Pending,
    stats: Arc<RwLock<RoutingStats>>,
}

impl AsyncBaseline {
    /// Starts a multi-thread tokio runtime with `workers` worker threads, the broker, and the
    /// subscriber task (subscribed before this returns).
    pub fn new(workers: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()?;
        let broker = Arc::new(Broker::default());
        let registry: Registry = Arc::default();
        let pending: Pending = Arc::default();
        let stats: Arc<RwLock<RoutingStats>> = Arc::default();
        let stream = runtime.block_on(broker.subscribe());
        let subscriber = ActorSystemSubscriber {
            actor_registry: Arc::clone(&registry),
            pending: Arc::clone(&pending),
            stats: Arc::clone(&stats),
        };
        runtime.spawn(subscriber.routing_loop(stream));
        Ok(Self { runtime, broker, registry, pending, stats })
    }

    /// Spawns a component task running `handler` and registers its address under `id`.
    pub fn register(&self, id: ComponentId, handler: BaselineHandler) {
        let (tx, mut rx) = unbounded_channel::<MessageEnvelope>();
        let broker = Arc::clone(&self.broker);
        self.runtime.spawn(async move {
            while let Some(envelope) = rx.recv().await {
                let reply = handler(&envelope);
                if let (true, Some(payload)) = (envelope.is_request(), reply) {
                    let response = envelope.reply_to(payload, envelope.codec, new_message_id());
                    let _ = broker.publish(response).await;
                }
            }
        });
        self.runtime.block_on(async { self.registry.write().await.insert(id, ActorAddress(tx)) });
    }

    /// Publishes through the broker (the broker design's send path for every message).
    pub async fn publish(&self, envelope: MessageEnvelope) -> Result<(), BaselineError> {
        self.broker.publish(envelope).await
    }

    /// Sends a request and waits for its response under `tokio::time::timeout`.
    pub async fn request(
        &self,
        envelope: MessageEnvelope,
        timeout: Duration,
    ) -> Result<MessageEnvelope, BaselineError> {
        let (tx, rx) = oneshot::channel();
        // The earlier design keyed its table by the id's `String`.
        let id = envelope.message_id.to_string();
        self.pending.write().await.insert(id.clone(), tx);
        if let Err(e) = self.broker.publish(envelope).await {
            self.pending.write().await.remove(&id);
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(_)) => Err(BaselineError::Closed),
            Err(_) => {
                self.pending.write().await.remove(&id);
                Err(BaselineError::Timeout)
            }
        }
    }

    /// Runs `future` to completion on the calling thread inside the runtime's context.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// A handle for driving the runtime from other threads.
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    /// The routing counters.
    pub fn stats(&self) -> RoutingStats {
        self.runtime.block_on(async { *self.stats.read().await })
    }

    /// Number of registered components.
    pub fn component_count(&self) -> usize {
        self.runtime.block_on(async { self.registry.read().await.len() })
    }
}
