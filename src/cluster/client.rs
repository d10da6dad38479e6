//! The bridge's NATS client: connecting it (TLS and credentials from `connect.rs`, the
//! reconnection back-off, pings, the events the bridge counts) and subscribing it to what a
//! node reads besides its components' subjects. The I/O loop (`io.rs`) makes one when it
//! starts, and a new one in place of a client whose connection task is gone
//! (`Loop::rebuild`): the client reconnects by itself after an outage, but not after its own
//! task ended or panicked.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::{Client, Subscriber};
use tokio::sync::Notify;

use super::bridge::Bridge;
use super::{ClusterConfig, links, membership, services, subject};
use crate::runtime::Inner;

/// Connects to the server of `config` as node `bridge`, within `config.connect_timeout`;
/// the client's events go to `bridge` (and wake the loop through `wake`).
pub(super) async fn connect(
    config: &ClusterConfig,
    bridge: &Arc<Bridge>,
    wake: &Arc<Notify>,
) -> Result<Client, String> {
    // Back off from 2 ms, doubling, to half a heartbeat (at least 50 ms, at most 2 s):
    // the client's own cap of 4 s would leave a node cut off for seconds after the server
    // is back, and its peers' directory forgets a node silent for three heartbeats.
    let retry_cap = (config.heartbeat / 2).clamp(Duration::from_millis(50), Duration::from_secs(2));
    // TLS and credentials (checked when the runtime was built; the files are read again).
    let options = super::connect::options(config)?;
    let (events, waker) = (bridge.clone(), wake.clone());
    let connect = options
        .name(format!("switchyard {}/{}", config.name, bridge.node))
        .reconnect_delay_callback(move |attempts| match attempts {
            0 | 1 => Duration::ZERO,
            n => Duration::from_millis(1 << (n - 1).min(16)).min(retry_cap),
        })
        // A half-open connection is noticed within a few heartbeats, not minutes.
        .ping_interval((config.heartbeat * 2).max(Duration::from_millis(500)))
        .event_callback(move |ev| {
            let bridge = events.clone();
            let wake = waker.clone();
            async move { on_event(&bridge, &wake, ev) }
        })
        .connect(config.url.as_str());
    match tokio::time::timeout(config.connect_timeout, connect).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(format!("cannot connect to the NATS server at {}: {e}", config.url)),
        Err(_) => Err(format!("no answer from the NATS server at {} within {:?}", config.url, config.connect_timeout)),
    }
}

fn on_event(bridge: &Bridge, wake: &Notify, ev: async_nats::Event) {
    match ev {
        // The first connection is the bridge's own (set when it joined); a later one is a
        // reconnection (of this client, or the first of a client made in place of a dead one).
        async_nats::Event::Connected if !bridge.connected.load(Ordering::Acquire) && bridge.joined() => {
            bridge.counters.reconnects.fetch_add(1, Ordering::Relaxed);
            bridge.request_resync();
            bridge.set_connected(true);
            wake.notify_one();
        }
        async_nats::Event::Disconnected | async_nats::Event::Closed => bridge.set_connected(false),
        async_nats::Event::SlowConsumer(_) => {
            bridge.counters.slow_consumer_events.fetch_add(1, Ordering::Relaxed);
        }
        // A subscription or publish the node's permissions do not cover: the server says so
        // on the connection and drops it (the connection stays up).
        async_nats::Event::ServerError(async_nats::ServerError::Other(text))
            if text.to_ascii_lowercase().starts_with("permissions violation") =>
        {
            bridge.record_denial(text);
        }
        // A message the client could not read (a header block it cannot parse, a subject
        // that is not UTF-8), dropped by it (the vendored async-nats' patch,
        // `vendor/async-nats/PATCHED.md`).
        async_nats::Event::ClientError(async_nats::ClientError::Other(text))
            if text.starts_with("dropped a message") =>
        {
            bridge.counters.inbound_refused.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

/// The subscriptions the I/O loop reads itself.
pub(super) struct Reading {
    /// `sy.<cluster>.n.>`: membership.
    pub(super) directory: Subscriber,
    /// `sy.<cluster>.t.>`: publishes on topics.
    pub(super) topics: Subscriber,
    /// `sy.<cluster>.k.<node>`: the acknowledgements of this node's link batches.
    pub(super) acks: Subscriber,
}

/// What a node subscribes to besides its components' subjects, not read yet.
pub(super) struct Subscribed {
    reading: Reading,
    /// `sy.<cluster>.l.<node>`: the links to this node (`links.rs`).
    links: Subscriber,
    /// `sy.<cluster>.s.<node>`: fetches of this node's ids (`membership.rs`).
    state: Subscriber,
    discovery: Option<services::Requests>,
}

/// Subscribes `client` to membership, the topics, the node's links, their
/// acknowledgements, its state subject and (with `discovery`) the services protocol's
/// subjects. The server may still refuse any of them (a `Permissions Violation` event: see
/// `io::barrier`).
pub(super) async fn subscribe(client: &Client, bridge: &Bridge, discovery: bool) -> Result<Subscribed, String> {
    let sub = |subject: String| async move { client.subscribe(subject).await.map_err(|e| e.to_string()) };
    let directory = sub(format!("sy.{}.n.>", bridge.cluster)).await?;
    let topics = sub(format!("sy.{}.t.>", bridge.cluster)).await?;
    let acks = sub(subject::link_ack(&bridge.cluster, &bridge.node)).await?;
    let links = sub(subject::link(&bridge.cluster, &bridge.node)).await?;
    let state = sub(subject::state(&bridge.cluster, &bridge.node)).await?;
    let discovery = if discovery { Some(services::subscribe(client, bridge).await?) } else { None };
    Ok(Subscribed { reading: Reading { directory, topics, acks }, links, state, discovery })
}

impl Subscribed {
    /// Starts the tasks that read the node's links, its state subject and discovery
    /// (discovery answers on a task of its own, bounded there, never in the loop); the rest
    /// is the loop's to read.
    pub(super) fn start(self, client: &Client, bridge: &Arc<Bridge>, inner: &Weak<Inner>) -> Reading {
        tokio::spawn(links::receive(self.links, client.clone(), bridge.clone(), inner.clone()));
        tokio::spawn(membership::serve_state(self.state, client.clone(), bridge.clone()));
        if let Some(requests) = self.discovery {
            tokio::spawn(services::answer(requests, client.clone(), bridge.clone(), inner.clone()));
        }
        self.reading
    }
}

// The integration tests' `nats-server` helper (this test uses part of it).
#[cfg(all(test, not(loom)))]
#[path = "../../tests/common/nats.rs"]
#[allow(dead_code)]
mod nats_server;

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::{Duration, Instant};

    use super::nats_server::NatsServer;
    use crate::cluster::ClusterConfig;
    use crate::{ComponentId, ComponentSpec, MessageEnvelope, MessageType, Runtime, codec, handler_fn};

    const WAIT: Duration = Duration::from_secs(20);

    fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::yield_now();
        }
    }

    // A client whose connection task panicked (as async-nats 0.51's did on a header value
    // holding a carriage return) or ended is never usable again, and the client does not
    // replace itself: without the bridge's watch, the node stayed cut off for good while
    // reporting no reconnection. Draining the client is the one way to end the task without
    // a bug in the client; the bridge cannot tell the two apart, and need not.
    #[test]
    fn a_client_whose_connection_task_is_gone_is_replaced_and_the_node_serves_again() {
        let Some(server) = NatsServer::start() else { return };
        let node = |name: &str| {
            let config = ClusterConfig {
                node: Some(name.into()),
                heartbeat: Duration::from_millis(400),
                ..ClusterConfig::new(server.url(), "t-rebuild")
            };
            Runtime::builder().workers(2).cluster(config).build().expect("the node joins the cluster")
        };
        let (a, b) = (node("a"), node("b"));
        let store = ComponentId::new("store").unwrap();
        let echo = ComponentSpec::new(|| handler_fn(|_ctx, m| Ok(Some(m.payload.clone()))));
        b.register(store.clone(), echo).unwrap();
        assert!(a.wait_for_component(&store, WAIT), "store never became reachable");
        let ask = |payload: &[u8]| {
            let host = ComponentId::new("host").unwrap();
            let env = MessageEnvelope::new(
                MessageType::Request,
                host,
                store.clone(),
                payload.to_vec(),
                codec::RAW,
                crate::new_message_id(),
            );
            a.request(env, WAIT).unwrap().wait().map(|r| r.payload)
        };
        assert_eq!(ask(b"before").expect("answered"), b"before");
        let stats = || b.cluster_stats().unwrap();
        b.inner().cluster.get().expect("node b joined").end_client_task();
        until("node b made a new client", || stats().client_rebuilds == 1 && stats().connected);
        assert_eq!(ask(b"after").expect("answered through node b's new client"), b"after");
        assert_eq!((stats().client_rebuilds, stats().reconnects), (1, 1), "{:?}", stats());
        // Again at once: a fault that recurs is answered at the next heartbeat, not in a loop.
        b.inner().cluster.get().expect("node b joined").end_client_task();
        until("node b made another client", || stats().client_rebuilds == 2 && stats().connected);
        assert_eq!(ask(b"again").expect("answered through node b's third client"), b"again");
        assert_eq!((stats().client_rebuilds, stats().reconnects), (2, 2), "{:?}", stats());
        assert!(a.shutdown(WAIT).is_balanced() && b.shutdown(WAIT).is_balanced());
    }
}
