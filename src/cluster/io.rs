//! The bridge's I/O thread: a current-thread tokio runtime driving one NATS connection.
//!
//! One loop owns the client, the directory and the subscriptions. It wakes for jobs from
//! the synchronous side (the outbound queue, the control queue), for the heartbeat, and
//! for directory and topic messages; every NATS round trip (a confirmed send, a request)
//! runs as a task of its own, so a slow peer holds up nothing else (`outbound.rs`). Messages
//! for hosted components are read by one task per component (its queue-group subscription)
//! that only ever `try_send`s into the mailbox, so the reader never blocks (`inbound.rs`).
//! This file holds the loop itself: the directory, hosting, replacing a client whose
//! connection task is gone, and the stop (connecting and subscribing: `client.rs`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_nats::{Client, HeaderMap, Message};
use bytes::Bytes;
use crossbeam_channel::Sender;
use futures_util::StreamExt;
use tokio::task::JoinSet;

use super::bridge::{Bridge, Control, IoSide, Queued, RemoteTarget};
use super::directory::{self, Change, Directory};
use super::inbound::{DurableReader, Hosted, Via, durable_stream, inbound};
use super::{client, subject, wire};
use crate::deadletter::DeadLetterReason;
use crate::envelope::MessageType;
use crate::id::ComponentId;
use crate::runtime::Inner;

/// Jobs taken from the outbound queue per turn of the loop (then the loop looks at its
/// other sources again).
const OUTBOUND_PER_TURN: usize = 512;

/// Runs the I/O thread: connects, reports on `ready`, serves until told to stop.
pub(crate) fn run(side: IoSide, ready: Sender<Result<(), String>>) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot start the cluster bridge's runtime: {e}")));
            return;
        }
    };
    let bridge = side.bridge.clone();
    let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(serve(side, ready))));
    if served.is_err() {
        // A bug, not an input (inputs are checked before they get here): at least refuse
        // every later send as cut off, rather than queue it for a thread that is gone.
        bridge.set_leaving();
    }
}

/// Bounds an await of the loop on the client (which stops reading its commands while it
/// reconnects): the loop must never wait on the server.
async fn bounded<F: std::future::Future>(f: F) -> Option<F::Output> {
    tokio::time::timeout(Duration::from_secs(1), f).await.ok()
}

/// A round trip on the connection: the server has processed everything this client sent
/// before it (its subscriptions included), and the permission refusals it answered any of
/// that with are recorded in the bridge. `flush` only empties the client's buffer.
async fn barrier(client: &Client, bridge: &Bridge) -> Result<(), String> {
    // Only a refusal that comes after this point ends the wait early.
    let denied = bridge.denied.notified();
    tokio::pin!(denied);
    denied.as_mut().enable();
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.map_err(|e| e.to_string())?;
    client.publish(inbox, Bytes::new()).await.map_err(|e| e.to_string())?;
    let answered = tokio::select! {
        m = tokio::time::timeout(Duration::from_secs(5), sub.next()) => matches!(m, Ok(Some(_))),
        // A refused inbox would never answer: the refusal is the answer.
        _ = &mut denied => false,
    };
    // The server answers a refusal before the round trip's message, and the client queues
    // the event before it delivers that message; the events are handled by a task of this
    // same runtime, woken before this one: let it run.
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    if answered || !bridge.denials.lock().is_empty() {
        Ok(())
    } else {
        Err("the server did not answer a round trip within 5 s".to_string())
    }
}

pub(super) struct Loop {
    pub(super) client: Client,
    /// The directory and topic subscriptions of `client`.
    pub(super) reading: client::Reading,
    pub(super) bridge: Arc<Bridge>,
    pub(super) inner: Weak<Inner>,
    pub(super) directory: Directory,
    /// The reader tasks of each hosted component.
    pub(super) hosted: HashMap<ComponentId, Hosted>,
    /// The cluster's stream, with JetStream on.
    pub(super) stream: Option<async_nats::jetstream::stream::Stream>,
    /// The JetStream context the bridge publishes through (one: each has its own
    /// acknowledgement task).
    pub(super) jetstream: async_nats::jetstream::Context,
    pub(super) ack_wait: Duration,
    pub(super) consumer_inactive: Duration,
    /// Round trips in flight.
    pub(super) inflight: JoinSet<()>,
    /// Tells the round trips in flight to give up (at stop, after the grace).
    pub(super) give_up: tokio::sync::watch::Sender<bool>,
    pub(super) ack_timeout: Duration,
    pub(super) heartbeat: Duration,
    /// The generation of this node's last state announcement.
    pub(super) state_gen: u64,
    /// Parts of other nodes' state announcements, until complete.
    pub(super) parts: directory::StateParts,
    /// When this node last announced its state (a `hello` is answered at most once per
    /// quarter heartbeat: anyone may say `hello`).
    pub(super) last_state: Option<Instant>,
    /// Jobs taken from the outbound queue while cut off, with the time each was taken, in
    /// order: they go out first once the connection is back (the reconnect buffer).
    pub(super) waiting: VecDeque<(Instant, Queued)>,
    /// One-way messages in flight that an outage held back (see `Loop::dispatch`).
    pub(super) backlog: Arc<super::outbound::Aftermath>,
    /// Components whose subscription could not be made (cut off, the client busy
    /// reconnecting): tried again at each heartbeat while still registered.
    pub(super) unhosted: Vec<ComponentId>,
    /// Turns among the replicas of an id (see `Loop::dispatch`).
    pub(super) turn: usize,
    /// The replicas' subjects per id, as of a directory generation (`Loop::replicas`).
    pub(super) replicas: (u64, HashMap<ComponentId, Arc<[String]>>),
    /// When a new client was last tried in place of a dead one (`Loop::rebuild`).
    pub(super) rebuilt: Option<Instant>,
    /// What the bridge was started with (a client made in place of a dead one uses it).
    pub(super) config: super::ClusterConfig,
    /// Wakes the loop (the client's events do).
    pub(super) wake: Arc<tokio::sync::Notify>,
}

async fn serve(side: IoSide, ready: Sender<Result<(), String>>) {
    let IoSide { bridge, inner, out, control, wake, config } = side;
    let client = match client::connect(&config, &bridge, &wake).await {
        Ok(client) => client,
        Err(why) => {
            let _ = ready.send(Err(why));
            return;
        }
    };
    let subscribed = match client::subscribe(&client, &bridge, config.discovery).await {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot join cluster {:?}: {e}", bridge.cluster)));
            return;
        }
    };
    let stream = if config.jetstream {
        match durable_stream(&client, &config).await {
            Ok(stream) => Some(stream),
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        }
    } else {
        None
    };
    bridge.set_max_payload(client.server_info().max_payload);
    bridge.set_joined();
    let (give_up, _) = tokio::sync::watch::channel(false);
    let jetstream = async_nats::jetstream::new(client.clone());
    let reading = subscribed.start(&client, &bridge, &inner);
    let mut lp = Loop {
        client,
        reading,
        bridge: bridge.clone(),
        inner,
        directory: Directory::new(&bridge.node, config.max_nodes, config.max_remote_ids),
        jetstream,
        hosted: HashMap::new(),
        stream,
        ack_wait: config.ack_wait,
        consumer_inactive: config.consumer_inactive,
        inflight: JoinSet::new(),
        give_up,
        ack_timeout: config.ack_timeout,
        heartbeat: config.heartbeat,
        state_gen: 0,
        parts: directory::StateParts::new(config.max_nodes, config.max_remote_ids),
        last_state: None,
        waiting: VecDeque::new(),
        backlog: Arc::default(),
        unhosted: Vec::new(),
        turn: 0,
        replicas: (0, HashMap::new()),
        rebuilt: None,
        config,
        wake: wake.clone(),
    };
    // Components registered before the bridge started.
    if let Some(inner) = lp.inner.upgrade() {
        lp.host_all(inner.component_ids()).await;
    }
    lp.announce("hello", Bytes::new()).await;
    // Publishing to nodes' own subjects (this node's reader drops its own probe).
    let mut probe = HeaderMap::new();
    probe.insert(wire::NODE, bridge.node.as_str());
    let own = subject::node(&bridge.cluster, &bridge.node);
    let _ = bounded(lp.client.publish_with_headers(own, probe, Bytes::new())).await;
    // Everything above went through the server, and it refused none of it: a node missing
    // a permission it needs would join deaf (or mute) to part of the cluster.
    let checked = barrier(&lp.client, &bridge).await;
    let denials = bridge.take_denials();
    if !denials.is_empty() || checked.is_err() {
        lp.announce("bye", Bytes::new()).await;
        let why = if denials.is_empty() {
            checked.err().unwrap_or_default()
        } else {
            format!(
                "the NATS server refused permissions this node needs (the table in `switchyard::cluster`'s \
                 docs lists them): {}",
                denials.join("; ")
            )
        };
        let _ = ready.send(Err(format!("cannot join cluster {:?}: {why}", bridge.cluster)));
        return;
    }
    if ready.send(Ok(())).is_err() {
        // The runtime gave up waiting (and failed its build): leave, rather than serve a
        // cluster nobody on this side knows it joined.
        lp.announce("bye", Bytes::new()).await;
        return;
    }
    let mut heartbeat = tokio::time::interval(lp.config.heartbeat);
    loop {
        let expiry = lp.next_expiry();
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep_until(expiry.unwrap_or_else(Instant::now).into()), if expiry.is_some() => {}
            _ = heartbeat.tick() => lp.tick().await,
            Some(m) = lp.reading.directory.next() => lp.directory_message(m).await,
            Some(m) = lp.reading.topics.next() => lp.topic_message(m),
            Some(_) = lp.inflight.join_next(), if !lp.inflight.is_empty() => {}
            // The client's connection task is gone (it panicked, or ended): nothing reaches
            // this node through the client any more, and it will not reconnect by itself.
            _ = lp.client.closed(), if !lp.client.is_closed() => lp.rebuild().await,
        }
        lp.resync().await;
        if !lp.bridge.denials.lock().is_empty() {
            lp.withdraw_denied().await;
        }
        let mut to_host = Vec::new();
        while let Ok(c) = control.try_recv() {
            match c {
                Control::Host(id) => to_host.push(id),
                Control::Unhost(id) => {
                    // In order with the hosts before it.
                    lp.host_all(std::mem::take(&mut to_host)).await;
                    lp.unhost(&id).await;
                }
                Control::Answer { reply_to, result } => lp.answer(reply_to, result),
                Control::Settle { msg, kind } => lp.settle(*msg, kind),
                Control::Health { subjects, timeout, reply } => lp.ask_health(subjects, timeout, reply),
                #[cfg(test)]
                Control::EndClientTask => {
                    let _ = bounded(lp.client.drain()).await;
                }
                Control::StopReading => {
                    for hosted in lp.hosted.values_mut() {
                        if let Some(reader) = hosted.durable.take() {
                            reader.abort();
                        }
                    }
                }
                Control::Stop { grace } => {
                    to_host.clear();
                    // Whatever senders queued before the stop still goes out (or waits in
                    // flight for the connection, up to the grace).
                    while let Some((at, q)) = lp.waiting.pop_front() {
                        lp.dispatch(q, Some(at.elapsed()));
                    }
                    while let Ok(q) = out.try_recv() {
                        lp.dispatch(q, None);
                    }
                    lp.stop(grace, &out, &control).await;
                    return;
                }
            }
        }
        lp.host_all(to_host).await;
        lp.expire_waiting(Instant::now());
        let up = lp.bridge.connected.load(Ordering::Acquire);
        for _ in 0..OUTBOUND_PER_TURN {
            if !up {
                // Cut off: into the reconnect buffer, in order (the senders' reservations
                // bound it), so the queue keeps its room.
                match out.try_recv() {
                    Ok(q) => lp.waiting.push_back((Instant::now(), q)),
                    Err(_) => break,
                }
                continue;
            }
            // At most the outbound capacity in flight as well: the queue's bound is the
            // node's, not just the queue's.
            if lp.inflight.len() >= lp.config.outbound_capacity {
                break;
            }
            // What waited for the connection goes first.
            if let Some((at, q)) = lp.waiting.pop_front() {
                lp.dispatch(q, Some(at.elapsed()));
                continue;
            }
            match out.try_recv() {
                Ok(q) => lp.dispatch(q, None),
                Err(_) => break,
            }
        }
        let more = !out.is_empty() || (up && !lp.waiting.is_empty());
        if more && (!up || lp.inflight.len() < lp.config.outbound_capacity) {
            wake.notify_one();
        }
    }
}

impl Loop {
    /// The headers of a directory message: who says it, and how often it will.
    fn header_node(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(wire::NODE, self.bridge.node.as_str());
        h.insert(directory::HEARTBEAT_MS, self.heartbeat.as_millis().to_string().as_str());
        h
    }

    async fn announce(&self, verb: &str, payload: Bytes) {
        let subject = subject::directory(&self.bridge.cluster, verb);
        let _ = bounded(self.client.publish_with_headers(subject, self.header_node(), payload)).await;
    }

    /// After a reconnection: peers may have forgotten us, and we heard nothing meanwhile.
    async fn resync(&mut self) {
        // The client's own state, not only its events (whose queue drops events when full);
        // a client whose connection task is gone still reports that task's last state.
        let up = !self.client.is_closed() && self.client.connection_state() == async_nats::connection::State::Connected;
        if up != self.bridge.connected.load(Ordering::Acquire) && self.bridge.joined() {
            if up {
                self.bridge.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                self.bridge.request_resync();
            }
            self.bridge.set_connected(up);
        }
        if self.bridge.take_resync() {
            self.directory.touch_all(Instant::now());
            self.announce_state().await;
        }
    }

    /// This node's ids, in parts that each fit in a NATS message (`sy-state-part: i/k`,
    /// all parts of one announcement under one `sy-state-gen`); receivers apply a state
    /// once they have all its parts.
    async fn announce_state(&mut self) {
        self.last_state = Some(Instant::now());
        let ids: Vec<ComponentId> = self.hosted.keys().cloned().collect();
        self.state_gen += 1;
        let parts: Vec<&[ComponentId]> =
            if ids.is_empty() { vec![&[][..]] } else { ids.chunks(directory::IDS_PER_PART).collect() };
        let k = parts.len();
        for (i, part) in parts.into_iter().enumerate() {
            let mut h = self.header_node();
            h.insert(directory::STATE_GEN, self.state_gen.to_string().as_str());
            h.insert(directory::STATE_PART, format!("{}/{k}", i + 1).as_str());
            let subject = subject::directory(&self.bridge.cluster, "state");
            let _ = bounded(self.client.publish_with_headers(subject, h, directory::encode(part).into())).await;
        }
    }

    async fn tick(&mut self) {
        if self.client.is_closed() {
            // Not replaced yet: the last attempt failed or came too soon, or the task went
            // while the loop was busy elsewhere.
            self.rebuild().await;
        }
        self.resync().await;
        if !self.bridge.connected.load(Ordering::Acquire) {
            return; // deaf while cut off: forget nobody for a silence we caused
        }
        let retry = std::mem::take(&mut self.unhosted);
        self.host_all(retry).await;
        self.announce_state().await;
        let now = Instant::now();
        self.parts.expire(now, (self.heartbeat * 3).max(Duration::from_secs(1)));
        let (changes, forgotten) = self.directory.expire(now, self.heartbeat);
        self.bridge.counters.nodes_expired.fetch_add(forgotten as u64, Ordering::Relaxed);
        self.apply(changes);
    }

    /// Puts a new client in place of one whose connection task is gone (it panicked, or it
    /// ended): connected and subscribed as at start, the hosted components served through
    /// it, this node's state announced again; counted in `ClusterStats::client_rebuilds`.
    /// Until then the node is cut off (sends wait in the reconnect buffer). Round trips in
    /// flight on the old client fail, and end as such failures do (asked again, or
    /// dead-lettered). If the server does not take the new client, tried again at the next
    /// heartbeat; so is a client whose task is gone within half a heartbeat of the last
    /// attempt (a fault that recurs costs the server at most a few connections a heartbeat).
    pub(super) async fn rebuild(&mut self) {
        self.bridge.set_connected(false);
        let now = Instant::now();
        if self.rebuilt.is_some_and(|at| now.duration_since(at) < self.heartbeat / 2) {
            return;
        }
        self.rebuilt = Some(now);
        let made = async {
            let client = client::connect(&self.config, &self.bridge, &self.wake).await?;
            let subscribed = client::subscribe(&client, &self.bridge, self.config.discovery).await?;
            let stream = match self.stream {
                Some(_) => Some(durable_stream(&client, &self.config).await?),
                None => None,
            };
            Ok::<_, String>((client, subscribed, stream))
        };
        let Ok((client, subscribed, stream)) = made.await else {
            return;
        };
        self.bridge.counters.client_rebuilds.fetch_add(1, Ordering::Relaxed);
        self.jetstream = async_nats::jetstream::new(client.clone());
        self.stream = stream;
        self.reading = subscribed.start(&client, &self.bridge, &self.inner);
        self.client = client;
        // The readers ended with the old client's subscriptions: each id is served again
        // through the new one (and stays in `served` meanwhile: the node's own subject may
        // already deliver to its mailbox).
        let mut ids = std::mem::take(&mut self.unhosted);
        for (id, hosted) in self.hosted.drain() {
            hosted.abort();
            ids.push(id);
        }
        self.host_all(ids).await;
        let hosted = &self.hosted;
        self.bridge.served.write().retain(|id| hosted.contains_key(id));
        self.bridge.request_resync();
        self.wake.notify_one();
    }

    async fn directory_message(&mut self, m: Message) {
        // `sy.<cluster>.n.<verb>`: the cluster's name holds no dot.
        let verb = m.subject.as_str().splitn(4, '.').nth(3).unwrap_or("");
        let node = m.headers.as_ref().and_then(|h| h.get(wire::NODE)).map(|v| v.as_str().to_string());
        if node.as_deref() == Some(self.bridge.node.as_str()) {
            return;
        }
        let Some(node) = node.filter(|_| matches!(verb, "hello" | "state" | "add" | "remove" | "bye")) else {
            // Not an announcement any node makes (nobody's name on it, or a verb this node
            // does not know): dropped, and counted.
            self.directory.refused += 1;
            self.apply(Vec::new());
            return;
        };
        if !subject::valid_cluster_name(&node) {
            // A node's name becomes a subject token (its own subject, `subject::node`): one
            // that could not be is nobody's.
            self.directory.refused += 1;
            self.apply(Vec::new());
            return;
        }
        let now = Instant::now();
        // Its silence is judged by its own heartbeat, not ours.
        if let Some(ms) =
            m.headers.as_ref().and_then(|h| h.get(directory::HEARTBEAT_MS)).and_then(|v| v.as_str().parse().ok())
            && verb != "bye"
        {
            self.directory.heartbeat(&node, Duration::from_millis(ms), now);
        }
        let id = || ComponentId::new(String::from_utf8_lossy(&m.payload)).ok();
        let changes = match verb {
            "hello" => {
                // Answered at once unless this node announced its state within a quarter
                // heartbeat (then the next heartbeat's state answers it): a storm of hellos
                // costs a bounded number of states.
                let gap = (self.heartbeat / 4).max(Duration::from_millis(10));
                if self.last_state.is_none_or(|t| now.duration_since(t) >= gap) {
                    self.announce_state().await;
                }
                // Heard from; what it hosts comes in its own adds and state.
                self.directory.touch(&node, now);
                Vec::new()
            }
            "state" => match directory::part_of(m.headers.as_ref()) {
                Some((generation, i, k)) => match self.parts.add(&node, generation, i, k, &m.payload, now) {
                    Ok(Some(ids)) => self.directory.state(&node, ids, now),
                    Ok(None) => Vec::new(),
                    Err(()) => {
                        self.directory.refused += 1;
                        Vec::new()
                    }
                },
                // A state in one message (no part headers).
                None => self.directory.state(&node, directory::decode(&m.payload), now),
            },
            "add" => id().map(|id| self.directory.add(&node, id, now)).unwrap_or_default(),
            "remove" => id().map(|id| self.directory.remove(&node, &id, now)).unwrap_or_default(),
            "bye" => self.directory.bye(&node),
            _ => Vec::new(),
        };
        self.apply(changes);
    }

    /// Puts ids other nodes host into the registry as remote destinations, and takes out
    /// those no node hosts any more (a local component of the same id is left alone).
    fn apply(&self, changes: Vec<Change>) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        for c in changes {
            match c {
                Change::Reachable(id) => {
                    let target = Arc::new(RemoteTarget {
                        id: id.clone(),
                        subject: subject::component(&self.bridge.cluster, id.as_str()),
                        bridge: self.bridge.clone(),
                    });
                    inner.registry.add_remote(id, target);
                }
                Change::Unreachable(id) => inner.registry.remove_remote(&id),
            }
        }
        let c = &self.bridge.counters;
        c.remote_nodes.store(self.directory.node_count(), Ordering::Relaxed);
        c.remote_components.store(self.directory.id_count(), Ordering::Relaxed);
        c.directory_refused.store(self.directory.refused, Ordering::Relaxed);
        self.bridge.notify_changed();
    }

    /// Serves `ids` to the cluster: subscribes to each one's subject, waits for the server
    /// to have taken the subscriptions, and announces those it did not refuse.
    async fn host_all(&mut self, ids: Vec<ComponentId>) {
        let mut added = Vec::new();
        for id in ids {
            if self.hosted.contains_key(&id) || !self.still_registered(&id) {
                continue;
            }
            if self.host(id.clone()).await {
                added.push(id);
            } else if !self.unhosted.contains(&id) {
                self.unhosted.push(id);
            }
        }
        if added.is_empty() {
            return;
        }
        // One round trip for the lot: a subscription the node's permissions do not cover
        // is refused by the server, and the id is not announced (senders would wait on a
        // subscription that never receives). Not while cut off: the client makes the
        // subscriptions again once connected, and a refusal then withdraws the id.
        if self.bridge.connected.load(Ordering::Acquire) {
            let _ = bounded(barrier(&self.client, &self.bridge)).await;
        }
        self.withdraw_denied().await;
        for id in added {
            // After the subscription on the same connection: a node that learns of the id
            // from this announcement finds the subscription in place.
            if self.hosted.contains_key(&id) {
                self.announce("add", Bytes::from(id.as_str().to_string())).await;
            }
        }
    }

    fn still_registered(&self, id: &ComponentId) -> bool {
        self.inner.upgrade().is_some_and(|inner| inner.registry.component(id).is_some())
    }

    /// Subscribes to `id`'s subject and starts its readers; false if the client did not
    /// take the subscription within the loop's bound (tried again later).
    async fn host(&mut self, id: ComponentId) -> bool {
        let subject = subject::component(&self.bridge.cluster, id.as_str());
        // One queue group per id: replicas on several nodes share its messages.
        let Some(Ok(mut sub)) = bounded(self.client.queue_subscribe(subject, subject::QUEUE_GROUP.to_string())).await
        else {
            return false;
        };
        let (client, bridge, inner, me) = (self.client.clone(), self.bridge.clone(), self.inner.clone(), id.clone());
        let task = tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                inbound(&client, &bridge, &inner, &me, m, Via::Component).await;
            }
        });
        let durable = self.stream.clone().and_then(|stream| {
            let comp = self.inner.upgrade()?.registry.component(&id)?;
            let reader = DurableReader {
                stream,
                bridge: self.bridge.clone(),
                inner: self.inner.clone(),
                id: id.clone(),
                max_attempts: comp.config.max_attempts,
                capacity: comp.mailbox.capacity(),
                ack_wait: self.ack_wait,
                inactive: self.consumer_inactive,
            };
            Some(tokio::spawn(reader.run()).abort_handle())
        });
        self.bridge.served.write().insert(id.clone());
        self.hosted.insert(id, Hosted { core: task.abort_handle(), durable });
        true
    }

    /// Stops serving the hosted components whose subscription the server refused (the
    /// refusal names the subject), telling the cluster if it was announced.
    async fn withdraw_denied(&mut self) {
        let denials = self.bridge.take_denials();
        let denied: Vec<ComponentId> = self
            .hosted
            .keys()
            .filter(|id| {
                let quoted = format!("\"{}\"", subject::component(&self.bridge.cluster, id.as_str()));
                denials.iter().any(|d| d.contains("Subscription") && d.contains(&quoted))
            })
            .cloned()
            .collect();
        for id in denied {
            self.bridge.served.write().remove(&id);
            if let Some(hosted) = self.hosted.remove(&id) {
                hosted.abort();
                self.announce("remove", Bytes::from(id.as_str().to_string())).await;
            }
        }
    }

    async fn unhost(&mut self, id: &ComponentId) {
        self.unhosted.retain(|u| u != id);
        self.bridge.served.write().remove(id);
        if let Some(task) = self.hosted.remove(id) {
            task.abort();
            self.announce("remove", Bytes::from(id.as_str().to_string())).await;
        }
        // Other nodes may host it too: reach them from now on.
        if self.directory.hosted_elsewhere(id) {
            self.apply(vec![Change::Reachable(id.clone())]);
        }
    }

    fn topic_message(&self, m: Message) {
        let h = m.headers.as_ref();
        if h.and_then(|h| h.get(wire::NODE)).map(|v| v.as_str()) == Some(self.bridge.node.as_str()) {
            return; // our own publish, delivered here already
        }
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        // A publish is addressed to each subscriber when it is fanned out; until then its
        // `to` names its sender, as a host's own publish envelope does.
        let sender = h
            .and_then(|h| h.get(wire::FROM))
            .and_then(|v| ComponentId::new(v.as_str()).ok())
            .unwrap_or_else(|| ComponentId::new(wire::PLAIN_CLIENT_ID).expect("a valid id"));
        let Ok(incoming) = wire::envelope(sender, h, &m.payload, false) else {
            self.bridge.counters.inbound_refused.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut env = incoming.env;
        if env.topic.is_none() {
            // `sy.<cluster>.t.<escaped topic>`: one token, which `unescape` checks.
            env.topic = m.subject.as_str().splitn(4, '.').nth(3).and_then(subject::unescape);
        }
        if env.topic.is_none() {
            // Its subject is not one that a topic escapes to (and no header names one).
            self.bridge.counters.inbound_refused.fetch_add(1, Ordering::Relaxed);
            return;
        }
        env.message_type = MessageType::Publish;
        self.bridge.counters.inbound.fetch_add(1, Ordering::Relaxed);
        inner.publish_from_cluster(env);
    }

    async fn stop(
        mut self,
        grace: Duration,
        out: &crossbeam_channel::Receiver<Queued>,
        control: &crossbeam_channel::Receiver<Control>,
    ) {
        // From now on a send to another node is refused (`Transport`) at once, not queued
        // behind the stop.
        self.bridge.set_leaving();
        self.bridge.served.write().clear();
        for (_, task) in self.hosted.drain() {
            task.abort();
        }
        self.announce("bye", Bytes::new()).await;
        let all = async { while self.inflight.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_err() {
            let _ = self.give_up.send(true);
            while self.inflight.join_next().await.is_some() {}
        }
        let _ = bounded(self.client.flush()).await;
        if let Some(inner) = self.inner.upgrade() {
            // Queued between the drain and the stop (a send that checked just before it).
            while let Ok(q) = out.try_recv() {
                self.bridge.release(q.reserved);
                self.give_up_on(q.job, "this node left the cluster before sending it".to_string());
            }
            // Answers queued after the stop (a handler that returned late): from here on
            // each is handed back to its caller; those already queued are dead-lettered
            // here, not left in the queue.
            self.bridge.close_answers();
            while let Ok(c) = control.try_recv() {
                if let Control::Answer { result: Ok(env), .. } = c {
                    let detail = "this node left the cluster before the response could go".to_string();
                    inner.dead_letter_only(env, DeadLetterReason::Transport { detail });
                }
            }
            for id in self.directory.ids() {
                inner.registry.remove_remote(&id);
            }
        }
    }
}
