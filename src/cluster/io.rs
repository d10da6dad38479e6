//! The bridge's I/O thread: a current-thread tokio runtime driving one NATS connection.
//!
//! One loop owns the client, the directory and the subscriptions. It wakes for jobs from
//! the synchronous side (the outbound queue, the control queue), for the heartbeat, and
//! for directory and topic messages; every NATS round trip (a confirmed send, a request)
//! runs as a task of its own, so a slow peer holds up nothing else. Messages for hosted
//! components are read by one task per component (its queue-group subscription) that only
//! ever `try_send`s into the mailbox, so the reader never blocks.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_nats::{Client, HeaderMap, Message, RequestErrorKind};
use bytes::Bytes;
use crossbeam_channel::Sender;
use futures_util::StreamExt;
use tokio::task::{AbortHandle, JoinSet};

use super::bridge::{Bridge, Control, IoSide, Outbound, Receipt, RemoteReply, RemoteTarget};
use super::directory::{self, Change, Directory};
use super::{subject, wire};
use crate::deadletter::DeadLetterReason;
use crate::envelope::{MessageEnvelope, MessageType};
use crate::error::RequestError;
use crate::id::ComponentId;
use crate::mailbox::Letter;
use crate::runtime::Inner;

/// Jobs taken from the outbound queue per turn of the loop (then the loop looks at its
/// other sources again).
const OUTBOUND_PER_TURN: usize = 512;

/// Times a one-way message is sent before a missing confirmation dead-letters it.
const SEND_ATTEMPTS: usize = 3;

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
        bridge.set_connected(false);
    }
}

/// The reason a status name from another node stands for (its text in the details; the
/// attempts and guest codes stay on the node that handled the message).
fn reason_of(status: &str, text: &str) -> DeadLetterReason {
    match status {
        "no_such_component" => DeadLetterReason::NoSuchComponent,
        "mailbox_full" => DeadLetterReason::MailboxFull,
        "closed" => DeadLetterReason::Closed,
        "invalid" => DeadLetterReason::Invalid,
        "shutdown" => DeadLetterReason::Shutdown,
        "timed_out" => DeadLetterReason::TimedOut,
        "unregistered" => DeadLetterReason::Unregistered,
        "component_stopped" => DeadLetterReason::ComponentStopped,
        "duplicate" => DeadLetterReason::Duplicate,
        "handler_failed" | "trapped" => {
            DeadLetterReason::HandlerFailed { error: text.to_string(), code: None, attempts: 0 }
        }
        "handler_panicked" => DeadLetterReason::HandlerPanicked { message: text.to_string(), attempts: 0 },
        other => DeadLetterReason::Transport { detail: format!("the receiving node answered {other}: {text}") },
    }
}

/// Bounds an await of the loop on the client (which stops reading its commands while it
/// reconnects): the loop must never wait on the server.
async fn bounded<F: std::future::Future>(f: F) -> Option<F::Output> {
    tokio::time::timeout(Duration::from_secs(1), f).await.ok()
}

/// The status name of a request's failed outcome.
fn status_of(e: &RequestError) -> String {
    match e {
        RequestError::Timeout => "timed_out".to_string(),
        RequestError::Failed(reason) => reason.name().to_string(),
        RequestError::Shutdown => "shutdown".to_string(),
        other => format!("failed: {other}"),
    }
}

/// A round trip on the connection: the server has processed everything this client sent
/// before it (its subscriptions included). `flush` only empties the client's buffer.
async fn barrier(client: &Client) -> Result<(), String> {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.map_err(|e| e.to_string())?;
    client.publish(inbox, Bytes::new()).await.map_err(|e| e.to_string())?;
    match tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
        Ok(Some(_)) => Ok(()),
        _ => Err("the server did not answer a round trip within 5 s".to_string()),
    }
}

struct Loop {
    client: Client,
    bridge: Arc<Bridge>,
    inner: Weak<Inner>,
    directory: Directory,
    /// The reader tasks of each hosted component.
    hosted: HashMap<ComponentId, Hosted>,
    /// The cluster's stream, with JetStream on.
    stream: Option<async_nats::jetstream::stream::Stream>,
    /// The JetStream context the bridge publishes through (one: each has its own
    /// acknowledgement task).
    jetstream: async_nats::jetstream::Context,
    ack_wait: Duration,
    /// Round trips in flight.
    inflight: JoinSet<()>,
    /// Tells the round trips in flight to give up (at stop, after the grace).
    give_up: tokio::sync::watch::Sender<bool>,
    ack_timeout: Duration,
    heartbeat: Duration,
    /// The generation of this node's last state announcement.
    state_gen: u64,
    /// Parts of other nodes' state announcements, until complete.
    parts: directory::StateParts,
}

async fn serve(side: IoSide, ready: Sender<Result<(), String>>) {
    let IoSide { bridge, inner, out, control, wake, config } = side;
    let events = bridge.clone();
    let waker = wake.clone();
    let connect = async_nats::ConnectOptions::new()
        .name(format!("switchyard {}/{}", config.name, bridge.node))
        // A half-open connection is noticed within a few heartbeats, not minutes.
        .ping_interval((config.heartbeat * 2).max(Duration::from_millis(500)))
        .event_callback(move |ev| {
            let bridge = events.clone();
            let wake = waker.clone();
            async move { on_event(&bridge, &wake, ev) }
        })
        .connect(config.url.as_str());
    let client = match tokio::time::timeout(config.connect_timeout, connect).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            let _ = ready.send(Err(format!("cannot connect to the NATS server at {}: {e}", config.url)));
            return;
        }
        Err(_) => {
            let _ = ready.send(Err(format!(
                "no answer from the NATS server at {} within {:?}",
                config.url, config.connect_timeout
            )));
            return;
        }
    };
    let subscribed = async {
        let d = client.subscribe(format!("sy.{}.n.>", bridge.cluster)).await.map_err(|e| e.to_string())?;
        let t = client.subscribe(format!("sy.{}.t.>", bridge.cluster)).await.map_err(|e| e.to_string())?;
        barrier(&client).await?;
        Ok::<_, String>((d, t))
    };
    let (mut dir_sub, mut topic_sub) = match subscribed.await {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot join cluster {:?}: {e}", bridge.cluster)));
            return;
        }
    };
    let stream = if config.jetstream {
        match durable_stream(&client, &bridge.cluster).await {
            Ok(stream) => Some(stream),
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        }
    } else {
        None
    };
    bridge.set_joined();
    let (give_up, _) = tokio::sync::watch::channel(false);
    let jetstream = async_nats::jetstream::new(client.clone());
    let mut lp = Loop {
        client,
        bridge: bridge.clone(),
        inner,
        directory: Directory::new(&bridge.node),
        jetstream,
        hosted: HashMap::new(),
        stream,
        ack_wait: config.ack_wait,
        inflight: JoinSet::new(),
        give_up,
        ack_timeout: config.ack_timeout,
        heartbeat: config.heartbeat,
        state_gen: 0,
        parts: directory::StateParts::default(),
    };
    // Components registered before the bridge started.
    if let Some(inner) = lp.inner.upgrade() {
        for id in inner.component_ids() {
            lp.host(id).await;
        }
    }
    lp.announce("hello", Bytes::new()).await;
    let _ = ready.send(Ok(()));
    let mut heartbeat = tokio::time::interval(config.heartbeat);
    loop {
        tokio::select! {
            _ = wake.notified() => {}
            _ = heartbeat.tick() => lp.tick().await,
            Some(m) = dir_sub.next() => lp.directory_message(m).await,
            Some(m) = topic_sub.next() => lp.topic_message(m),
            Some(_) = lp.inflight.join_next(), if !lp.inflight.is_empty() => {}
        }
        lp.resync().await;
        while let Ok(c) = control.try_recv() {
            match c {
                Control::Host(id) => lp.host(id).await,
                Control::Unhost(id) => lp.unhost(&id).await,
                Control::Answer { reply_to, result } => lp.answer(reply_to, result),
                Control::Settle { msg, kind } => lp.settle(*msg, kind),
                Control::StopReading => {
                    for hosted in lp.hosted.values_mut() {
                        if let Some(reader) = hosted.durable.take() {
                            reader.abort();
                        }
                    }
                }
                Control::Stop { grace } => {
                    // Whatever senders queued before the stop still goes out.
                    while let Ok(job) = out.try_recv() {
                        lp.dispatch(job);
                    }
                    lp.stop(grace, &out).await;
                    return;
                }
            }
        }
        for _ in 0..OUTBOUND_PER_TURN {
            // At most the outbound capacity in flight as well: the queue's bound is the
            // node's, not just the queue's.
            if lp.inflight.len() >= config.outbound_capacity {
                break;
            }
            match out.try_recv() {
                Ok(job) => lp.dispatch(job),
                Err(_) => break,
            }
        }
        if !out.is_empty() && lp.inflight.len() < config.outbound_capacity {
            wake.notify_one();
        }
    }
}

fn on_event(bridge: &Bridge, wake: &tokio::sync::Notify, ev: async_nats::Event) {
    match ev {
        // The first connection is the bridge's own (set when it joined); a later one is a
        // reconnection.
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
        _ => {}
    }
}

impl Loop {
    fn header_node(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(wire::NODE, self.bridge.node.as_str());
        h
    }

    async fn announce(&self, verb: &str, payload: Bytes) {
        let subject = subject::directory(&self.bridge.cluster, verb);
        let _ = bounded(self.client.publish_with_headers(subject, self.header_node(), payload)).await;
    }

    /// After a reconnection: peers may have forgotten us, and we heard nothing meanwhile.
    async fn resync(&mut self) {
        // The client's own state, not only its events (whose queue drops events when full).
        let up = self.client.connection_state() == async_nats::connection::State::Connected;
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
        self.resync().await;
        if !self.bridge.connected.load(Ordering::Acquire) {
            return; // deaf while cut off: forget nobody for a silence we caused
        }
        self.announce_state().await;
        let changes = self.directory.expire(Instant::now(), self.heartbeat * 3);
        self.apply(changes);
    }

    async fn directory_message(&mut self, m: Message) {
        let Some(node) = m.headers.as_ref().and_then(|h| h.get(wire::NODE)).map(|v| v.as_str().to_string()) else {
            return;
        };
        if node == self.bridge.node {
            return;
        }
        let verb = m.subject.as_str().rsplit('.').next().unwrap_or("");
        let now = Instant::now();
        let id = || ComponentId::new(String::from_utf8_lossy(&m.payload)).ok();
        let changes = match verb {
            "hello" => {
                self.announce_state().await;
                // Heard from; what it hosts comes in its own adds and state.
                self.directory.touch(&node, now);
                Vec::new()
            }
            "state" => match directory::part_of(m.headers.as_ref()) {
                Some((generation, i, k)) => match self.parts.add(&node, generation, i, k, &m.payload) {
                    Some(ids) => self.directory.state(&node, ids, now),
                    None => Vec::new(),
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
        self.bridge.notify_changed();
    }

    async fn host(&mut self, id: ComponentId) {
        if self.hosted.contains_key(&id) {
            return;
        }
        let subject = subject::component(&self.bridge.cluster, id.as_str());
        // One queue group per id: replicas on several nodes share its messages.
        let Some(Ok(mut sub)) = bounded(self.client.queue_subscribe(subject, "switchyard".to_string())).await else {
            return;
        };
        let (client, bridge, inner, me) = (self.client.clone(), self.bridge.clone(), self.inner.clone(), id.clone());
        let task = tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                inbound(&client, &bridge, &inner, &me, m).await;
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
            };
            Some(tokio::spawn(reader.run()).abort_handle())
        });
        self.hosted.insert(id.clone(), Hosted { core: task.abort_handle(), durable });
        // After the subscription on the same connection: a node that learns of the id
        // from this announcement finds the subscription in place.
        self.announce("add", Bytes::from(id.as_str().to_string())).await;
    }

    async fn unhost(&mut self, id: &ComponentId) {
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
            let token = m.subject.as_str().rsplit('.').next().unwrap_or("");
            env.topic = subject::unescape(token);
        }
        env.message_type = MessageType::Publish;
        self.bridge.counters.inbound.fetch_add(1, Ordering::Relaxed);
        inner.publish_from_cluster(env);
    }

    fn dispatch(&mut self, job: Outbound) {
        let (client, bridge, inner) = (self.client.clone(), self.bridge.clone(), self.inner.clone());
        let mut give_up = self.give_up.subscribe();
        match job {
            Outbound::Send { subject, env } => {
                let headers = wire::headers(&env, None);
                let payload = Bytes::from(env.payload.clone());
                let ack_timeout = self.ack_timeout;
                let mut connection = bridge.connection.subscribe();
                self.inflight.spawn(async move {
                    // A lost confirmation (the connection dropped after the receiving node
                    // took the message) is asked for again once the connection is back,
                    // with the same message id: the receiving node confirms a message it
                    // already took without delivering it twice. "No responders" is asked
                    // again after a moment too (a peer that reconnected re-subscribes
                    // shortly after); a refusal is an answer. Once an attempt's outcome is
                    // unknown (it may have been taken), "no responders" no longer proves
                    // the message was not delivered: it is asked again, for longer, until
                    // the receiving node answers (it then recognises the message).
                    let mut r = None;
                    let mut unknown = false;
                    let started = Instant::now();
                    let budget = ack_timeout * SEND_ATTEMPTS as u32;
                    for attempt in 0.. {
                        let more = attempt < SEND_ATTEMPTS || (unknown && started.elapsed() < budget);
                        if attempt > 0
                            && (!more || !resend_pause(&r, attempt.min(10), &mut connection, &mut give_up).await)
                        {
                            break;
                        }
                        let req = async_nats::Request::new()
                            .headers(headers.clone())
                            .payload(payload.clone())
                            .timeout(Some(ack_timeout));
                        r = tokio::select! {
                            r = client.send_request(subject.clone(), req) => Some(r),
                            _ = give_up.changed() => None,
                        };
                        match &r {
                            Some(Err(e)) if e.kind() == RequestErrorKind::NoResponders => {}
                            Some(Err(_)) => unknown = true,
                            _ => break,
                        }
                    }
                    let Some(inner) = inner.upgrade() else { return };
                    match r {
                        Some(Ok(m)) => match wire::status(m.headers.as_ref()) {
                            wire::OK => forwarded(&inner, &bridge),
                            status => {
                                let reason = reason_of(status, &String::from_utf8_lossy(&m.payload));
                                failed(&inner, &bridge, env, reason);
                            }
                        },
                        Some(Err(e)) if e.kind() == RequestErrorKind::NoResponders => {
                            failed(&inner, &bridge, env, DeadLetterReason::NoSuchComponent);
                        }
                        Some(Err(e)) => {
                            let detail = format!("no confirmation from the receiving node: {e}");
                            failed(&inner, &bridge, env, DeadLetterReason::Transport { detail });
                        }
                        None => {
                            let detail = "this node left the cluster before the confirmation came".to_string();
                            failed(&inner, &bridge, env, DeadLetterReason::Transport { detail });
                        }
                    }
                });
            }
            Outbound::Durable { subject, env, guarantee } => {
                let mut headers = wire::headers(&env, None);
                headers.insert(wire::DELIVERY, wire::delivery_name(guarantee));
                // The server's duplicate window drops a second publish under the same key.
                // Exactly once: the target and the message id, the key the receiving
                // component's window uses, so a resend of a message already stored is
                // dropped as the component would drop it. At least once: a key of this send
                // alone (a resend by the caller is delivered again, as locally); only this
                // bridge's own publishes after a lost acknowledgement are dropped.
                let exactly_once = guarantee.is_exactly_once();
                let key = if exactly_once {
                    format!("{}/{}", subject::escape(env.to.as_str()), env.message_id)
                } else {
                    crate::new_message_id().to_string()
                };
                headers.insert(async_nats::header::NATS_MESSAGE_ID, key.as_str());
                let payload = Bytes::from(env.payload.clone());
                let js = self.jetstream.clone();
                let ack_timeout = self.ack_timeout;
                let mut connection = bridge.connection.subscribe();
                self.inflight.spawn(async move {
                    // Stored once the stream acknowledged it. A publish whose
                    // acknowledgement did not come is published again (after the
                    // connection is back): the server drops a copy it already stored.
                    let mut last = String::new();
                    for attempt in 0..SEND_ATTEMPTS {
                        if attempt > 0 && !resend_pause(&None, attempt, &mut connection, &mut give_up).await {
                            break;
                        }
                        let stored = async {
                            let ack = js
                                .publish_with_headers(subject.clone(), headers.clone(), payload.clone())
                                .await
                                .map_err(|e| e.to_string())?;
                            ack.await.map_err(|e| e.to_string())
                        };
                        let r = tokio::select! {
                            r = tokio::time::timeout(ack_timeout, stored) => r,
                            _ = give_up.changed() => break,
                        };
                        match r {
                            Ok(Ok(ack)) => {
                                if let Some(inner) = inner.upgrade() {
                                    if ack.duplicate && exactly_once && attempt == 0 {
                                        // Stored before under the same id (a caller's
                                        // resend): a duplicate, as the component's window
                                        // would call it.
                                        failed(&inner, &bridge, env, DeadLetterReason::Duplicate);
                                    } else {
                                        forwarded(&inner, &bridge);
                                    }
                                }
                                return;
                            }
                            Ok(Err(e)) => last = e,
                            Err(_) => last = format!("no acknowledgement within {ack_timeout:?}"),
                        }
                    }
                    let Some(inner) = inner.upgrade() else { return };
                    let detail = if last.is_empty() {
                        "this node left the cluster before the stream acknowledged it (stored or not: unknown)"
                            .to_string()
                    } else {
                        format!("the cluster's stream did not acknowledge it (stored or not: unknown): {last}")
                    };
                    failed(&inner, &bridge, env, DeadLetterReason::Transport { detail });
                });
            }
            Outbound::Request { subject, env, timeout, deadline } => {
                // The runtime's timer enforces the deadline; NATS waits a little longer so
                // that an answer just after it is recognised as a late reply.
                let headers = wire::headers(&env, Some(timeout));
                let payload = Bytes::from(env.payload.clone());
                let ack_timeout = self.ack_timeout;
                let mut connection = bridge.connection.subscribe();
                self.inflight.spawn(async move {
                    // Asked again only after "no responders" (nobody received it, so
                    // nothing is handled twice): a peer that reconnected re-subscribes
                    // shortly after. Any other failure may have reached the handler.
                    let mut r: Option<Result<Message, async_nats::RequestError>> = None;
                    for attempt in 0..SEND_ATTEMPTS {
                        let no_responders = matches!(&r, Some(Err(e)) if e.kind() == RequestErrorKind::NoResponders);
                        if attempt > 0
                            && (!no_responders || !resend_pause(&r, attempt, &mut connection, &mut give_up).await)
                        {
                            break;
                        }
                        let req = async_nats::Request::new()
                            .headers(headers.clone())
                            .payload(payload.clone())
                            .timeout(Some(timeout + ack_timeout));
                        r = tokio::select! {
                            r = client.send_request(subject.clone(), req) => Some(r),
                            _ = give_up.changed() => None,
                        };
                    }
                    let Some(inner) = inner.upgrade() else { return };
                    request_outcome(&inner, &bridge, env, deadline, r);
                });
            }
            Outbound::Publish { env } => {
                let Some(topic) = env.topic.clone() else { return };
                let mut h = wire::headers(&env, None);
                h.insert(wire::NODE, bridge.node.as_str());
                let subject = subject::topic(&bridge.cluster, &topic);
                self.inflight.spawn(async move {
                    let sent = tokio::select! {
                        r = client.publish_with_headers(subject, h, Bytes::from(env.payload)) => r.is_ok(),
                        _ = give_up.changed() => false,
                    };
                    let counter = if sent { &bridge.counters.published } else { &bridge.counters.remote_failures };
                    counter.fetch_add(1, Ordering::Relaxed);
                });
            }
        }
    }

    /// Settles an at-least-once message with the stream (best effort: one that does not
    /// arrive is offered again after the ack wait).
    fn settle(&mut self, msg: async_nats::jetstream::Message, kind: async_nats::jetstream::AckKind) {
        let mut give_up = self.give_up.subscribe();
        self.inflight.spawn(async move {
            tokio::select! {
                _ = msg.ack_with(kind) => {}
                _ = give_up.changed() => {}
            }
        });
    }

    /// Publishes the outcome of a request from another node to its reply subject.
    fn answer(&mut self, reply_to: String, result: Result<MessageEnvelope, RequestError>) {
        let (client, bridge, inner) = (self.client.clone(), self.bridge.clone(), self.inner.clone());
        let mut give_up = self.give_up.subscribe();
        self.inflight.spawn(async move {
            match result {
                Ok(env) => {
                    let h = wire::answer(wire::OK, Some(&env));
                    let payload = Bytes::from(env.payload.clone());
                    let sent = tokio::select! {
                        r = client.publish_with_headers(reply_to, h, payload) => r.map_err(|e| e.to_string()),
                        _ = give_up.changed() => Err("this node left the cluster first".to_string()),
                    };
                    let Some(inner) = inner.upgrade() else { return };
                    match sent {
                        Ok(()) => forwarded(&inner, &bridge),
                        Err(e) => {
                            let detail = format!("cannot send the response to the requesting node: {e}");
                            failed(&inner, &bridge, env, DeadLetterReason::Transport { detail });
                        }
                    }
                }
                Err(e) => {
                    let h = wire::answer(&status_of(&e), None);
                    tokio::select! {
                        _ = client.publish_with_headers(reply_to, h, Bytes::from(e.to_string())) => {}
                        _ = give_up.changed() => {}
                    }
                }
            }
        });
    }

    async fn stop(mut self, grace: Duration, out: &crossbeam_channel::Receiver<Outbound>) {
        // From now on a send to another node is refused (`Transport`) at once, not queued
        // behind the stop.
        self.bridge.set_connected(false);
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
            while let Ok(job) = out.try_recv() {
                let detail = "this node left the cluster before sending it".to_string();
                failed(&inner, &self.bridge, job.into_envelope(), DeadLetterReason::Transport { detail });
            }
            for id in self.directory.ids() {
                inner.registry.remove_remote(&id);
            }
        }
    }
}

/// Before sending a one-way message again: waits for the connection if it is down, and
/// after "no responders" a moment more (`attempt` x 100 ms). False if the bridge is
/// stopping.
async fn resend_pause(
    last: &Option<Result<Message, async_nats::RequestError>>,
    attempt: usize,
    connection: &mut tokio::sync::watch::Receiver<bool>,
    give_up: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    let no_responders = matches!(last, Some(Err(e)) if e.kind() == RequestErrorKind::NoResponders);
    let pause = async {
        // Resent only once connected (resending into a client that is reconnecting would
        // only fill its queue): the message waits for the connection, holding its place in
        // flight, so a long outage shows as a full outbound queue; a stop gives it up.
        let up = connection.wait_for(|up| *up).await.is_ok();
        if up && no_responders {
            tokio::time::sleep(Duration::from_millis(100) * attempt as u32).await;
        }
        up
    };
    tokio::select! {
        up = pause => up,
        _ = give_up.changed() => false,
    }
}

/// Another node took a message of ours.
fn forwarded(inner: &Inner, bridge: &Bridge) {
    inner.stats.messages_forwarded.add(1);
    bridge.counters.forwarded.fetch_add(1, Ordering::Relaxed);
}

/// Another node refused a message of ours, or never answered: it is dead-lettered here.
fn failed(inner: &Inner, bridge: &Bridge, env: MessageEnvelope, reason: DeadLetterReason) {
    bridge.counters.remote_failures.fetch_add(1, Ordering::Relaxed);
    inner.dead_letter(env, reason);
}

/// What a request to another node came to.
fn request_outcome(
    inner: &Inner,
    bridge: &Bridge,
    env: MessageEnvelope,
    deadline: Option<crate::timer::TimerKey>,
    r: Option<Result<Message, async_nats::RequestError>>,
) {
    let id = env.message_id.clone();
    let reason = match r {
        Some(Ok(m)) => {
            // The other node took the request: it is accounted for there.
            forwarded(inner, bridge);
            match wire::status(m.headers.as_ref()) {
                wire::OK => {
                    let from = env.to.clone();
                    match wire::envelope(env.from.clone(), m.headers.as_ref(), &m.payload, false) {
                        Ok(incoming) => {
                            let mut resp = incoming.env;
                            resp.message_type = MessageType::Response;
                            if resp.correlation_id.is_none() {
                                resp.correlation_id = Some(id.clone());
                            }
                            // A plain responder may not say who it is: the component asked.
                            if m.headers.as_ref().and_then(|h| h.get(wire::FROM)).is_none() {
                                resp.from = from;
                            }
                            inner.deliver_response(resp);
                        }
                        Err(e) => {
                            let detail = format!("the response was malformed: {}", e.0);
                            inner.fail_request(&id, deadline, DeadLetterReason::Transport { detail });
                        }
                    }
                    return;
                }
                // The other node gave up at (about) the requester's own deadline: the
                // requester's timer completes the request, as a timeout.
                "timed_out" => return,
                status => {
                    inner.fail_request(&id, deadline, reason_of(status, &String::from_utf8_lossy(&m.payload)));
                    return;
                }
            }
        }
        Some(Err(e)) if e.kind() == RequestErrorKind::NoResponders => DeadLetterReason::NoSuchComponent,
        Some(Err(e)) if e.kind() == RequestErrorKind::TimedOut => {
            DeadLetterReason::Transport { detail: "no answer from the receiving node within the deadline".into() }
        }
        Some(Err(e)) => DeadLetterReason::Transport { detail: format!("no answer from the receiving node: {e}") },
        None => DeadLetterReason::Transport { detail: "this node left the cluster before the answer came".into() },
    };
    // Not taken by another node: the request is dead-lettered here, and its requester (if
    // still waiting) learns why.
    bridge.counters.remote_failures.fetch_add(1, Ordering::Relaxed);
    inner.fail_request(&id, deadline, reason.clone());
    inner.dead_letter_only(env, reason);
}

/// The key a confirmed one-way message is remembered by: its target and its id (a publish's
/// copies to several components share the id).
fn accepted_key(env: &MessageEnvelope) -> crate::envelope::MessageId {
    format!("{}\n{}", env.to, env.message_id).into()
}

/// A message for hosted component `id` from the cluster.
async fn inbound(client: &Client, bridge: &Arc<Bridge>, inner: &Weak<Inner>, id: &ComponentId, m: Message) {
    bridge.counters.inbound.fetch_add(1, Ordering::Relaxed);
    let Some(inner) = inner.upgrade() else {
        return;
    };
    let reply = m.reply.as_ref().map(|s| s.to_string());
    let refuse = |status: String, text: String| {
        bridge.counters.inbound_refused.fetch_add(1, Ordering::Relaxed);
        (status, text)
    };
    let refusal = match wire::envelope(id.clone(), m.headers.as_ref(), &m.payload, reply.is_some()) {
        Err(e) => Some(refuse("invalid".into(), e.0)),
        Ok(incoming) => match (incoming.env.message_type, reply.clone()) {
            (MessageType::Request, Some(reply_to)) => {
                let remote = RemoteReply { reply_to, bridge: bridge.clone() };
                match inner.request_from_cluster(incoming.env, incoming.timeout, remote) {
                    Ok(()) => return, // the outcome is answered when it comes
                    Err(e) => {
                        let reason = e.as_dead_letter_reason();
                        Some(refuse(reason.name().to_string(), e.to_string()))
                    }
                }
            }
            (MessageType::Request, None) => {
                // Nobody could receive its response. Dead-lettered as sent and refused here,
                // without touching the pending table (its id is a stranger's).
                inner.stats.dead_lettered_at_send.add(1);
                inner.dead_letter_only(incoming.env, DeadLetterReason::Invalid);
                bridge.counters.inbound_refused.fetch_add(1, Ordering::Relaxed);
                return;
            }
            (MessageType::Response, _) => {
                // Responses go to the requester's node through its reply subject; one on a
                // component's subject would complete a request here with forged content.
                Some(refuse("invalid".into(), "a response is not sent to a component's subject".into()))
            }
            (_, Some(_)) if bridge.accepted.lock().contains(&accepted_key(&incoming.env)) => {
                // A resend whose first confirmation was lost: taken already.
                None
            }
            (_, reply_to) => {
                let id = reply_to.is_some().then(|| accepted_key(&incoming.env));
                match inner.send_from_cluster(incoming.env) {
                    Ok(()) => {
                        if let Some(id) = id {
                            bridge.accepted.lock().insert(id);
                        }
                        None
                    }
                    Err(e) => {
                        let reason = e.as_dead_letter_reason();
                        let text = e.to_string();
                        if reply_to.is_some() {
                            // The sending node holds the message and dead-letters it.
                            inner.count_rejection(&e);
                        } else {
                            // A plain client's one-way message: nobody else holds it.
                            inner.dead_letter_at_send(e.into_envelope(), reason.clone());
                        }
                        Some(refuse(reason.name().to_string(), text))
                    }
                }
            }
        },
    };
    if let Some(reply_to) = reply {
        let (status, text) = refusal.unwrap_or_else(|| (wire::OK.to_string(), String::new()));
        let _ = client.publish_with_headers(reply_to, wire::answer(&status, None), Bytes::from(text)).await;
    }
}

/// The reader tasks of a hosted component: its queue-group subscription, and with
/// JetStream its durable consumer.
struct Hosted {
    core: AbortHandle,
    durable: Option<AbortHandle>,
}

impl Hosted {
    fn abort(self) {
        self.core.abort();
        if let Some(d) = self.durable {
            d.abort();
        }
    }
}

/// Finds or creates the cluster's stream (`sy-<cluster>` over `sy.<cluster>.d.>`).
async fn durable_stream(client: &Client, cluster: &str) -> Result<async_nats::jetstream::stream::Stream, String> {
    use async_nats::jetstream::stream;
    let js = async_nats::jetstream::new(client.clone());
    let config = stream::Config {
        name: subject::stream_name(cluster),
        subjects: vec![format!("sy.{cluster}.d.>")],
        // A message is kept until a node acknowledged or dead-lettered it; each
        // component's consumer takes only its own subject.
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    match tokio::time::timeout(Duration::from_secs(5), js.get_or_create_stream(config)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!(
            "cannot set up the cluster's JetStream stream {:?} (does the server run JetStream, \
             `nats-server -js`?): {e}",
            subject::stream_name(cluster)
        )),
        Err(_) => Err("the server did not answer the JetStream stream set-up within 5 s".to_string()),
    }
}

/// Reads a hosted component's at-least-once messages from its durable consumer and puts
/// them into its mailbox, each with its receipt.
struct DurableReader {
    stream: async_nats::jetstream::stream::Stream,
    bridge: Arc<Bridge>,
    inner: Weak<Inner>,
    id: ComponentId,
    max_attempts: u32,
    capacity: usize,
    ack_wait: Duration,
}

/// A message refused by a full mailbox or a closing runtime is given back for this long
/// before its next offer.
const REFUSED_DELAY: Duration = Duration::from_millis(100);

impl DurableReader {
    async fn run(self) {
        use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
        let name = subject::consumer_name(self.id.as_str());
        // The offers not yet settled are bounded by the mailbox's capacity (shared by the
        // replicas), so messages do not wait out the ack wait in a queue.
        let pending = self.capacity.clamp(1, 65_536);
        let config = pull::Config {
            durable_name: Some(name.clone()),
            filter_subject: subject::durable(&self.bridge.cluster, self.id.as_str()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            // No cap on the server: it would retire a message after its last offer even
            // when that offer was only given back (a node closing, a full mailbox), and
            // the message would stay in the stream unhandled. The reader decides the last
            // handler attempt from the delivery count instead (`Receipt::is_last`).
            max_deliver: -1,
            max_ack_pending: pending as i64,
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        };
        loop {
            // Made again after the server or the consumer was lost (a reconnection).
            let messages = async {
                let consumer =
                    self.stream.get_or_create_consumer(&name, config.clone()).await.map_err(|e| e.to_string())?;
                consumer.stream().max_messages_per_batch(pending.min(256)).messages().await.map_err(|e| e.to_string())
            };
            if let Ok(mut messages) = messages.await {
                while let Some(m) = messages.next().await {
                    // An error (a missed heartbeat, a reconnection) is reported and the
                    // stream goes on; the server re-offers what was not settled.
                    if let Ok(m) = m {
                        self.offered(m);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// One offer of the stream: into the mailbox, or given back, or (the last offer, or a
    /// message no component can take) dead-lettered here.
    fn offered(&self, m: async_nats::jetstream::Message) {
        let c = &self.bridge.counters;
        c.inbound.fetch_add(1, Ordering::Relaxed);
        c.durable_inbound.fetch_add(1, Ordering::Relaxed);
        let delivered = m.info().map(|i| u32::try_from(i.delivered.max(1)).unwrap_or(u32::MAX)).unwrap_or(1);
        if delivered > 1 {
            c.durable_redelivered.fetch_add(1, Ordering::Relaxed);
        }
        let parsed = wire::envelope(self.id.clone(), m.headers.as_ref(), &m.payload, false)
            .and_then(|incoming| Ok((incoming.env, wire::delivery(m.headers.as_ref())?)));
        let receipt = Box::new(Receipt::new(m, self.bridge.clone(), delivered, self.max_attempts));
        let Some(inner) = self.inner.upgrade() else {
            return; // offered again after the ack wait, to a node that runs
        };
        let (env, guarantee) = match parsed {
            Ok((env, g)) if env.message_type == MessageType::FireAndForget => (env, g),
            Ok((env, _)) => {
                // Only one-way messages are stored: a request or response here has no one
                // to answer it. Dead-lettered (the sender counted it as stored), and the
                // stream stops offering it.
                c.inbound_refused.fetch_add(1, Ordering::Relaxed);
                receipt.stop_offering();
                inner.dead_letter_at_send(env, DeadLetterReason::Invalid);
                return;
            }
            Err(_) => {
                // Never deliverable (a plain client's malformed message, a guarantee this
                // node does not offer): nothing to dead-letter, and the stream must stop
                // offering it.
                c.inbound_refused.fetch_add(1, Ordering::Relaxed);
                receipt.stop_offering();
                return;
            }
        };
        let mut letter = Letter::new(env, guarantee, false);
        letter.receipt = Some(receipt);
        if let Err((e, receipt)) = inner.send_from_stream(letter) {
            c.inbound_refused.fetch_add(1, Ordering::Relaxed);
            if matches!(e, crate::SendError::PayloadTooLarge(_)) {
                // Too large for this node now and at every later offer.
                receipt.stop_offering();
                let reason = e.as_dead_letter_reason();
                inner.dead_letter_at_send(e.into_envelope(), reason);
            } else {
                // Not run here (a full mailbox, a closing component or runtime): given back
                // and offered again after a moment, to this node or another, not at once
                // into the same refusal. The offer counts in the delivery count the handler
                // sees, so refusals use up attempts.
                inner.count_rejection(&e);
                receipt.give_back(Some(REFUSED_DELAY));
            }
        }
    }
}
