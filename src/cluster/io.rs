//! The bridge's I/O thread: a current-thread tokio runtime driving one NATS connection.
//!
//! One loop owns the client, the directory, the links and the subscriptions. It wakes for
//! jobs from the synchronous side (the outbound queue, the control queue), for the
//! heartbeat, for membership, topic and link-acknowledgement messages, and for the links'
//! timers. One-way messages to other nodes go on links (`links.rs`), in batches; every other
//! NATS round trip (a request, a store) runs as a task of its own, so a slow peer holds up
//! nothing else (`outbound.rs`). Messages for hosted components are read by one task per
//! component (its queue-group subscription) and one for the node's links, that only ever
//! `try_send` into mailboxes, so no reader blocks (`inbound.rs`, `links.rs`). This file holds
//! the loop itself, the join and the leave (membership: `membership.rs`; hosting and a new
//! client: `hosting.rs`; connecting and subscribing: `client.rs`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_nats::{Client, HeaderMap};
use bytes::{Bytes, BytesMut};
use crossbeam_channel::Sender;
use futures_util::StreamExt;
use tokio::task::JoinSet;

use super::bridge::{Bridge, Control, IoSide, Queued};
use super::directory::Directory;
use super::inbound::{Hosted, durable_stream};
use super::links::Pending;
use super::membership::Fetched;
use super::session::SendLink;
use super::{client, subject, wire};
use crate::deadletter::DeadLetterReason;
use crate::id::ComponentId;
use crate::runtime::Inner;

/// Jobs taken from the outbound queue per turn of the loop (then the loop looks at its
/// other sources again).
const OUTBOUND_PER_TURN: usize = 512;

/// Times a link sends what it has not seen acknowledged before it gives up on it.
const LINK_ATTEMPTS: u32 = 6;

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
pub(super) async fn bounded<F: std::future::Future>(f: F) -> Option<F::Output> {
    tokio::time::timeout(Duration::from_secs(1), f).await.ok()
}

/// A round trip on the connection: the server has processed everything this client sent
/// before it (its subscriptions included), and the permission refusals it answered any of
/// that with are recorded in the bridge. `flush` only empties the client's buffer.
pub(super) async fn barrier(client: &Client, bridge: &Bridge) -> Result<(), String> {
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
    /// The subscriptions the loop reads itself (membership, topics, link acknowledgements).
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
    /// Jobs taken from the outbound queue while cut off, with the time each was taken, in
    /// order: they go out first once the connection is back (the reconnect buffer).
    pub(super) waiting: VecDeque<(Instant, Queued)>,
    /// Components whose subscription could not be made (cut off, the client busy
    /// reconnecting): tried again at each heartbeat while still registered.
    pub(super) unhosted: Vec<ComponentId>,
    /// Turns among the replicas of an id (`Loop::send_on_link`).
    pub(super) turn: usize,
    /// When a new client was last tried in place of a dead one (`Loop::rebuild`).
    pub(super) rebuilt: Option<Instant>,
    /// What the bridge was started with (a client made in place of a dead one uses it).
    pub(super) config: super::ClusterConfig,
    /// Wakes the loop (the client's events do).
    pub(super) wake: Arc<tokio::sync::Notify>,
    /// The links to the other nodes, by node name (`links.rs`).
    pub(super) links: HashMap<String, SendLink<Pending>>,
    /// Messages a full mailbox refused that are sent again after a pause, in order.
    pub(super) delayed: VecDeque<(Instant, Pending)>,
    /// Messages an outage held back that are not settled yet (`Loop::holds`).
    pub(super) held: usize,
    /// A link gives up on what it sent after this long without an acknowledgement.
    pub(super) link_give_up: Duration,
    /// Where a batch is encoded (its buffer reused).
    pub(super) link_buf: BytesMut,
    /// The digest of the ids this node serves, as last announced (`membership.rs`).
    pub(super) digest: u64,
    /// True once the node joined (before that, what it hosts goes out with its hello).
    pub(super) joined: bool,
    /// Nodes whose ids are being fetched, and where the fetches report.
    pub(super) fetching: HashSet<String>,
    pub(super) fetched_tx: tokio::sync::mpsc::Sender<(String, Option<Fetched>)>,
    /// Sends to ids nobody was known to host while membership was warming up, each with
    /// the time it may wait (`Outbound::Unresolved`).
    pub(super) unresolved: Vec<(Instant, Queued)>,
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
    let (give_up, _) = tokio::sync::watch::channel(false);
    let jetstream = async_nats::jetstream::new(client.clone());
    let reading = subscribed.start(&client, &bridge, &inner);
    let (fetched_tx, mut fetched_rx) = tokio::sync::mpsc::channel(64);
    // Resent this many times (while connected) without an acknowledgement, a link's messages
    // end unknown.
    let give_up_links = config.ack_timeout * LINK_ATTEMPTS;
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
        waiting: VecDeque::new(),
        unhosted: Vec::new(),
        turn: 0,
        rebuilt: None,
        config,
        wake: wake.clone(),
        links: HashMap::new(),
        delayed: VecDeque::new(),
        held: 0,
        link_give_up: give_up_links,
        link_buf: BytesMut::new(),
        digest: 0,
        joined: false,
        fetching: HashSet::new(),
        fetched_tx,
        unresolved: Vec::new(),
    };
    // Components registered before the bridge started: their digest goes with the hello.
    if let Some(inner) = lp.inner.upgrade() {
        lp.host_all(inner.component_ids()).await;
    }
    bridge.set_joined();
    let joined = lp.join().await;
    lp.joined = true;
    // Publishing on links and their acknowledgements (this node's readers drop their own
    // probes): the permissions a node needs, checked once with the others below.
    let mut probe = HeaderMap::new();
    probe.insert(wire::NODE, bridge.node.as_str());
    for subject in [subject::link(&bridge.cluster, &bridge.node), subject::link_ack(&bridge.cluster, &bridge.node)] {
        let _ = bounded(lp.client.publish_with_headers(subject, probe.clone(), Bytes::new())).await;
    }
    // Everything above went through the server, and it refused none of it: a node missing
    // a permission it needs would join deaf (or mute) to part of the cluster.
    let checked = match joined {
        Ok(()) => barrier(&lp.client, &bridge).await,
        Err(e) => Err(e),
    };
    let denials = bridge.take_denials();
    if !denials.is_empty() || checked.is_err() {
        lp.say_bye().await;
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
        lp.say_bye().await;
        return;
    }
    let mut heartbeat = tokio::time::interval(lp.config.heartbeat);
    let mut link_timer = tokio::time::interval((lp.ack_timeout / 4).max(Duration::from_millis(10)));
    link_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let expiry = [lp.next_expiry(), lp.next_delayed(), lp.next_unresolved()].into_iter().flatten().min();
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep_until(expiry.unwrap_or_else(Instant::now).into()), if expiry.is_some() => {}
            _ = heartbeat.tick() => lp.tick().await,
            _ = link_timer.tick() => lp.resend_links(true).await,
            Some(m) = lp.reading.directory.next() => lp.membership_message(m).await,
            Some(m) = lp.reading.topics.next() => lp.topic_message(m),
            Some(m) = lp.reading.acks.next() => lp.link_ack(m).await,
            Some((node, got)) = fetched_rx.recv() => lp.fetched(node, got),
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
                Control::Leave => lp.leave().await,
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
        lp.retry_delayed();
        lp.resolve_unresolved(Instant::now());
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
            // At most the outbound capacity in flight as well (round trips, and what the links
            // hold): the queue's bound is the node's, not just the queue's.
            if lp.inflight.len() + lp.link_load() >= lp.config.outbound_capacity {
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
        lp.flush_links().await;
        let more = !out.is_empty() || (up && !lp.waiting.is_empty());
        if more && (!up || lp.inflight.len() + lp.link_load() < lp.config.outbound_capacity) {
            wake.notify_one();
        }
    }
}

impl Loop {
    /// After a reconnection: peers may have forgotten us, we heard nothing meanwhile, and
    /// what the links had in flight may be lost.
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
            self.beat().await;
            self.resend_links(false).await;
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
        self.beat().await;
        self.expire_nodes(Instant::now());
    }

    /// When the first send waiting for membership may wait no longer.
    fn next_unresolved(&self) -> Option<Instant> {
        self.unresolved.iter().map(|(until, _)| *until).min()
    }

    /// Sends that waited for membership to learn of their target: each goes out once it
    /// is known, or is refused as `NoSuchComponent` once membership is warm or its time is
    /// up.
    fn resolve_unresolved(&mut self, now: Instant) {
        if self.unresolved.is_empty() {
            return;
        }
        let warming = self.bridge.warming();
        for (until, q) in std::mem::take(&mut self.unresolved) {
            let known = self.directory.hosted_elsewhere(q.job.target());
            if known {
                self.dispatch(q, None);
            } else if warming && now < until {
                self.unresolved.push((until, q));
            } else {
                self.bridge.release(q.reserved);
                self.give_up_on_unknown(q.job);
            }
        }
    }

    /// Leaves the cluster's membership and stops serving this node's components to it, but
    /// keeps settling what is in flight: the other nodes stop sending here at once, and
    /// what they sent before still gets its outcome while this node drains.
    async fn leave(&mut self) {
        self.say_bye().await;
        self.bridge.served.write().clear();
        for (_, hosted) in self.hosted.drain() {
            hosted.stop();
        }
        let _ = bounded(self.client.flush()).await;
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
        if !self.hosted.is_empty() || !self.bridge.served.read().is_empty() {
            self.leave().await;
        }
        // What is in flight (requests, stores, link batches) gets its outcome within the
        // grace; the links keep resending what is not acknowledged meanwhile.
        let deadline = Instant::now() + grace;
        loop {
            self.flush_links().await;
            if self.inflight.is_empty() && !self.links_busy() {
                break;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
            tokio::select! {
                Some(_) = self.inflight.join_next(), if !self.inflight.is_empty() => {}
                Some(m) = self.reading.acks.next() => self.link_ack(m).await,
                _ = tokio::time::sleep(left.min(self.ack_timeout / 4)) => self.resend_links(true).await,
            }
            self.retry_delayed();
        }
        let _ = self.give_up.send(true);
        while self.inflight.join_next().await.is_some() {}
        self.close_links(
            "this node left the cluster before the receiving node acknowledged it: delivered or not, unknown",
        );
        let _ = bounded(self.client.flush()).await;
        if let Some(inner) = self.inner.upgrade() {
            // Queued between the drain and the stop (a send that checked just before it).
            while let Ok(q) = out.try_recv() {
                self.bridge.release(q.reserved);
                self.give_up_on(q.job, "this node left the cluster before sending it".to_string());
            }
            for (_, q) in std::mem::take(&mut self.unresolved) {
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
