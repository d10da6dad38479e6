//! What a node sends to other nodes, and how each send ends: a one-way message confirmed
//! by the receiving node (or stored on JetStream), a request and its one outcome, a
//! publish, the answer to a request another node made, and the settling of a stored
//! message. Each round trip runs as a task of the I/O loop (`io.rs`), so a slow peer holds
//! up nothing else.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::{Message, RequestErrorKind};
use bytes::Bytes;

use super::bridge::{Bridge, Outbound, Queued};
use super::{subject, wire};
use crate::deadletter::DeadLetterReason;
use crate::envelope::{MessageEnvelope, MessageType};
use crate::error::RequestError;
use crate::runtime::Inner;

use super::io::Loop;

/// Times a one-way message is sent before a missing confirmation dead-letters it.
const SEND_ATTEMPTS: usize = 3;

impl Loop {
    /// When the oldest message in the reconnect buffer reaches the buffer's deadline.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        let deadline = self.bridge.buffer_deadline()?;
        self.waiting.front().map(|(at, _)| *at + deadline)
    }

    /// Dead-letters the messages that waited in the reconnect buffer past its deadline.
    pub(super) fn expire_waiting(&mut self, now: Instant) {
        let Some(deadline) = self.bridge.buffer_deadline() else {
            return;
        };
        while self.waiting.front().is_some_and(|(at, _)| now.duration_since(*at) >= deadline) {
            let Some((_, q)) = self.waiting.pop_front() else { break };
            self.bridge.release(q.reserved);
            self.bridge.counters.buffer_expired.fetch_add(1, Ordering::Relaxed);
            let detail =
                format!("cut off from the NATS server for the reconnect buffer's whole deadline ({deadline:?})");
            self.give_up_on(q.job, detail);
        }
    }

    /// Ends a job that never left this node: a one-way message or a request is
    /// dead-lettered here (the request's requester, if still waiting, learns why), a
    /// publish counts as a remote failure (at most once, as a publish to a full mailbox).
    pub(super) fn give_up_on(&self, job: Outbound, detail: String) {
        let Some(inner) = self.inner.upgrade() else { return };
        let reason = DeadLetterReason::Transport { detail };
        match job {
            Outbound::Send { env, .. } | Outbound::Durable { env, .. } => failed(&inner, &self.bridge, env, reason),
            Outbound::Request { env, deadline, .. } => {
                self.bridge.counters.remote_failures.fetch_add(1, Ordering::Relaxed);
                inner.fail_request(&env.message_id, deadline, reason.clone());
                inner.dead_letter_only(env, reason);
            }
            Outbound::Publish { .. } => {
                self.bridge.counters.remote_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The own subjects of the other nodes hosting `id`, in name order (`None`: the
    /// directory lists none). Kept per id until the directory's next change, so a send
    /// looks them up rather than scan the nodes.
    fn replicas(&mut self, id: &crate::id::ComponentId) -> Option<std::sync::Arc<[String]>> {
        if self.replicas.0 != self.directory.generation() {
            self.replicas = (self.directory.generation(), std::collections::HashMap::new());
        }
        let (directory, cluster) = (&self.directory, &self.bridge.cluster);
        let subjects =
            self.replicas.1.entry(id.clone()).or_insert_with(|| {
                directory.nodes_hosting(id).iter().map(|node| subject::node(cluster, node)).collect()
            });
        (!subjects.is_empty()).then(|| subjects.clone())
    }

    /// Sends a job from the outbound queue; `waited`: how long it waited in the reconnect
    /// buffer, if it did (a request has that much less time).
    pub(super) fn dispatch(&mut self, q: Queued, waited: Option<Duration>) {
        self.bridge.release(q.reserved);
        let mut job = q.job;
        if let (Outbound::Request { timeout, .. }, Some(waited)) = (&mut job, waited) {
            *timeout = timeout.saturating_sub(waited);
            if timeout.is_zero() {
                self.give_up_on(job, "its deadline passed while this node was cut off from the NATS server".into());
                return;
            }
        }
        let (client, bridge, inner) = (self.client.clone(), self.bridge.clone(), self.inner.clone());
        let mut give_up = self.give_up.subscribe();
        match job {
            Outbound::Send { subject, env } => {
                let mut headers = wire::headers(&env, None);
                // The key of this send alone, the same on every attempt: the receiving node
                // recognises a resend by it (and nothing else: a caller that reuses a
                // message id sends a new message).
                headers.insert(wire::SEND_ID, bridge.next_send_id().as_str());
                // This node picks the replica (in turn among the nodes the directory lists
                // for the id) and addresses it on its own subject: a resend after a lost
                // confirmation must go where the first attempt went, since only that node
                // can recognise it (the queue group would pick any replica, which would
                // deliver it again).
                headers.insert(wire::TO, env.to.as_str());
                let (targets, first) = match self.replicas(&env.to) {
                    Some(targets) => {
                        self.turn = self.turn.wrapping_add(1);
                        let first = self.turn % targets.len();
                        (targets, first)
                    }
                    // No node listed for it any more: its queue group, where the key does
                    // not count (a resend is not recognised there, as it could not be by
                    // another replica).
                    None => (std::sync::Arc::from([subject]), 0),
                };
                let payload = Bytes::from(env.payload.clone());
                let ack_timeout = self.ack_timeout;
                let mut connection = bridge.connection.subscribe();
                let buffer_deadline = bridge.buffer_deadline();
                // A message the outage held back (it waited in the reconnect buffer, or met
                // a dead connection) was taken from its sender as if the connection were
                // up: a full mailbox on the receiving node (the burst when the connection
                // comes back) is asked again, as a waiting send would, until the buffer's
                // deadline.
                // So is a message sent while such a backlog is still going out, or while
                // its burst still fills the receiving mailbox: it waits its turn behind the
                // backlog rather than be refused by the burst.
                let backlog = self.backlog.clone();
                let held = waited.is_some() || backlog.holds();
                let mut patience = match (held, buffer_deadline) {
                    (true, Some(d)) => Some(Instant::now() + d.saturating_sub(waited.unwrap_or_default())),
                    _ => None,
                };
                // Only what met the outage is its backlog (a message merely sent behind it is
                // patient, but does not keep the aftermath going under steady traffic).
                let mut in_backlog = waited.map(|_| Backlog::join(&backlog));
                self.inflight.spawn(async move {
                    // A lost confirmation (the connection dropped after the receiving node
                    // took the message) is asked for again once the connection is back,
                    // with the same send key: the receiving node confirms a message it
                    // already took without delivering it twice. "No responders" is asked
                    // again after a moment too, for as long as the directory still lists
                    // a node hosting the id (a peer that reconnected re-subscribes shortly
                    // after); a refusal is an answer. Once an attempt's outcome is unknown
                    // (it may have been taken), "no responders" no longer proves the
                    // message was not delivered: it is asked again, for longer, until the
                    // receiving node answers (it then recognises the message).
                    // A node that did not take it (no responders, or it no longer serves the
                    // id) passes the message to the next replica; once an attempt's outcome
                    // is unknown, every later one goes to the same node.
                    let mut r = None;
                    let mut unknown = false;
                    let mut at = 0;
                    // Replicas that refused it for good (closing, no longer serving it).
                    let mut passed = 0;
                    let mut started = Instant::now();
                    let budget = ack_timeout * SEND_ATTEMPTS as u32;
                    for attempt in 0.. {
                        let retry = unknown || (not_taken(&r) && still_listed(&inner, &env.to));
                        let more = if matches!(&r, Some(Ok(m)) if !is_not_served(m)) {
                            true // a full mailbox, with patience left (below)
                        } else {
                            attempt < SEND_ATTEMPTS || (retry && started.elapsed() < budget)
                        };
                        // Another replica is asked at once; the same node after a pause.
                        let moved = attempt > 0 && !unknown && not_taken(&r) && targets.len() > 1;
                        if moved {
                            at = (at + 1) % targets.len();
                        }
                        if attempt > 0 {
                            if !more {
                                break;
                            }
                            let pause = if moved && at != 0 { Duration::ZERO } else { pause_after(&r, attempt) };
                            match resend_pause(pause, &mut connection, &mut give_up).await {
                                None => break,
                                // The budget counts from the connection's return, not
                                // through the outage.
                                Some(true) => started = Instant::now(),
                                Some(false) => {}
                            }
                        }
                        let req = async_nats::Request::new()
                            .headers(headers.clone())
                            .payload(payload.clone())
                            .timeout(Some(ack_timeout));
                        r = tokio::select! {
                            r = client.send_request(targets[(first + at) % targets.len()].clone(), req) => Some(r),
                            _ = give_up.changed() => None,
                            // The connection dropped under the attempt: its answer will not
                            // come, so it is asked again once the connection is back, not
                            // after the whole ack timeout.
                            // It met the outage: from now on it is held back by it, as if
                            // it had waited in the reconnect buffer.
                            _ = connection.wait_for(|up| !*up) => {
                                unknown = true;
                                patience = patience.or_else(|| buffer_deadline.map(|d| Instant::now() + d));
                                if patience.is_some() && in_backlog.is_none() {
                                    in_backlog = Some(Backlog::join(&backlog));
                                }
                                continue;
                            }
                        };
                        match &r {
                            Some(Err(e)) if e.kind() == RequestErrorKind::NoResponders => {}
                            Some(Ok(m)) if is_not_served(m) => {}
                            Some(Err(_)) => {
                                unknown = true;
                                patience = patience.or_else(|| buffer_deadline.map(|d| Instant::now() + d));
                                if patience.is_some() && in_backlog.is_none() {
                                    in_backlog = Some(Backlog::join(&backlog));
                                }
                            }
                            // A replica that is closing or no longer has the component took
                            // nothing: the next one is asked, each once.
                            Some(Ok(m)) if !unknown && passes_on(m) && passed + 1 < targets.len() => {
                                passed += 1;
                                at = (at + 1) % targets.len();
                            }
                            Some(Ok(m)) if attempt == 0 && wire::status(m.headers.as_ref()) == wire::OK => {
                                if patience.is_some() {
                                    backlog.got_in_at_once(in_backlog.is_some());
                                }
                                break;
                            }
                            Some(Ok(m))
                                if wire::status(m.headers.as_ref()) == "mailbox_full"
                                    && patience.is_some_and(|p| Instant::now() < p) =>
                            {
                                if in_backlog.is_some() {
                                    backlog.crowded.store(true, Ordering::Release);
                                }
                                let pause = Duration::from_millis(5 * attempt.min(50) as u64);
                                tokio::select! {
                                    _ = tokio::time::sleep(pause) => {}
                                    _ = give_up.changed() => break,
                                }
                            }
                            _ => break,
                        }
                    }
                    let Some(inner) = inner.upgrade() else { return };
                    if unknown && not_taken(&r) {
                        // The node that may have taken it no longer answers for the id (it
                        // left, or stopped serving it): asking another could deliver it twice.
                        let detail = format!(
                            "the confirmation was lost and {} no longer answers for the component: \
                             delivered or not, unknown",
                            targets[(first + at) % targets.len()]
                        );
                        failed(&inner, &bridge, env, DeadLetterReason::Transport { detail });
                        return;
                    }
                    match r {
                        Some(Ok(m)) if is_not_served(&m) => {
                            failed(&inner, &bridge, env, DeadLetterReason::NoSuchComponent);
                        }
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
                        if attempt > 0
                            && resend_pause(pause_after(&None, attempt), &mut connection, &mut give_up).await.is_none()
                        {
                            break;
                        }
                        let stored = async {
                            let ack = js
                                .publish_with_headers(subject.clone(), headers.clone(), payload.clone())
                                .await
                                .map_err(|e| (e.to_string(), false))?;
                            // The stream's own answer that it did not store the message (full,
                            // a limit, no stream) is final; a lost one is asked again.
                            ack.await.map_err(|e| {
                                use async_nats::jetstream::context::PublishErrorKind as K;
                                (e.to_string(), !matches!(e.kind(), K::TimedOut | K::BrokenPipe))
                            })
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
                            Ok(Err((e, true))) => {
                                let Some(inner) = inner.upgrade() else { return };
                                let detail = format!("the cluster's stream refused to store it: {e}");
                                failed(&inner, &bridge, env, DeadLetterReason::Transport { detail });
                                return;
                            }
                            Ok(Err((e, false))) => last = e,
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
                let payload = Bytes::from(env.payload.clone());
                let ack_timeout = self.ack_timeout;
                let mut connection = bridge.connection.subscribe();
                // Held back by an outage (as a one-way message above): a full mailbox is
                // asked again while the request has time.
                let held = waited.is_some() || self.backlog.holds();
                self.inflight.spawn(async move {
                    // Asked again only after "no responders" or a full mailbox (nobody
                    // took it, so nothing is handled twice): a peer that reconnected
                    // re-subscribes shortly after. Any other failure may have reached the
                    // handler. After the first attempts, only while the directory still
                    // lists a node hosting the id and the request has time left.
                    let started = Instant::now();
                    let mut r: Option<Result<Message, async_nats::RequestError>> = None;
                    for attempt in 0.. {
                        let left = timeout.saturating_sub(started.elapsed());
                        if attempt > 0 {
                            let full =
                                held && matches!(&r, Some(Ok(m)) if wire::status(m.headers.as_ref()) == "mailbox_full");
                            if full {
                                let pause = Duration::from_millis(5 * attempt.min(50) as u64).min(left);
                                tokio::select! {
                                    _ = tokio::time::sleep(pause) => {}
                                    _ = give_up.changed() => break,
                                }
                                if timeout.saturating_sub(started.elapsed()).is_zero() {
                                    break;
                                }
                            }
                            let more = full || attempt < SEND_ATTEMPTS || still_listed(&inner, &env.to);
                            if !(no_responders(&r) || full)
                                || !more
                                || left.is_zero()
                                || resend_pause(pause_after(&r, attempt), &mut connection, &mut give_up).await.is_none()
                            {
                                break;
                            }
                        }
                        let left = timeout.saturating_sub(started.elapsed());
                        let req = async_nats::Request::new()
                            .headers(wire::headers(&env, Some(left)))
                            .payload(payload.clone())
                            .timeout(Some(left + ack_timeout));
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
    pub(super) fn settle(&mut self, msg: async_nats::jetstream::Message, kind: async_nats::jetstream::AckKind) {
        let mut give_up = self.give_up.subscribe();
        self.inflight.spawn(async move {
            tokio::select! {
                _ = msg.ack_with(kind) => {}
                _ = give_up.changed() => {}
            }
        });
    }

    /// Asks for the health of the components at `subjects`, all at once; the statuses go to
    /// `reply` in the same order.
    pub(super) fn ask_health(
        &mut self,
        subjects: Vec<String>,
        timeout: Duration,
        reply: crossbeam_channel::Sender<Vec<(Option<String>, crate::HealthStatus)>>,
    ) {
        let client = self.client.clone();
        let mut give_up = self.give_up.subscribe();
        self.inflight.spawn(async move {
            let asks = subjects.into_iter().map(|subject| {
                let client = client.clone();
                async move {
                    let req = async_nats::Request::new()
                        .headers(super::health::question(timeout))
                        .timeout(Some(timeout + Duration::from_millis(100)));
                    match client.send_request(subject, req).await {
                        Ok(m) => match super::health::status_of(&m) {
                            Some(status) => (super::health::node_of(&m), status),
                            None => (None, crate::HealthStatus::NoAnswer),
                        },
                        Err(e) if e.kind() == RequestErrorKind::NoResponders => {
                            (None, crate::HealthStatus::NoSuchComponent)
                        }
                        Err(_) => (None, crate::HealthStatus::NoAnswer),
                    }
                }
            });
            tokio::select! {
                all = futures_util::future::join_all(asks) => { let _ = reply.send(all); }
                _ = give_up.changed() => {}
            }
        });
    }

    /// Publishes the outcome of a request from another node to its reply subject.
    pub(super) fn answer(&mut self, reply_to: String, result: Result<MessageEnvelope, RequestError>) {
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
}

/// The reason a status name from another node stands for (its text in the details, bounded;
/// the attempts and guest codes stay on the node that handled the message).
fn reason_of(status: &str, text: &str) -> DeadLetterReason {
    let text = &crate::text::cap_foreign(text);
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
        other => DeadLetterReason::Transport {
            detail: crate::text::cap_foreign(format!("the receiving node answered {other}: {text}")),
        },
    }
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

/// An outage's aftermath (see `Loop::dispatch`): the one-way messages it held back that are
/// still in flight, and whether their burst still fills a receiving mailbox.
#[derive(Default)]
pub(super) struct Aftermath {
    inflight: std::sync::atomic::AtomicUsize,
    /// Set when a held message found the receiving mailbox full; cleared when a message
    /// got in at its first try with no other held message in flight (the burst is over).
    crowded: std::sync::atomic::AtomicBool,
}

impl Aftermath {
    /// True while messages sent now go behind the backlog (asked again on a full mailbox).
    fn holds(&self) -> bool {
        self.inflight.load(Ordering::Acquire) > 0 || self.crowded.load(Ordering::Acquire)
    }

    /// A patient message got in at its first try (`own`: it is of the backlog itself): if
    /// no other message of the backlog is in flight, the burst is over.
    fn got_in_at_once(&self, own: bool) {
        if self.inflight.load(Ordering::Acquire) == usize::from(own) {
            self.crowded.store(false, Ordering::Release);
        }
    }
}

/// One message of an outage's backlog in flight.
pub(super) struct Backlog(std::sync::Arc<Aftermath>);

impl Backlog {
    fn join(aftermath: &std::sync::Arc<Aftermath>) -> Self {
        aftermath.inflight.fetch_add(1, Ordering::AcqRel);
        Self(aftermath.clone())
    }
}

impl Drop for Backlog {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

fn no_responders(r: &Option<Result<Message, async_nats::RequestError>>) -> bool {
    matches!(r, Some(Err(e)) if e.kind() == RequestErrorKind::NoResponders)
}

/// The answer of a node that does not serve the component a message on its own subject is
/// for (`inbound::direct`): like "no responders", nothing was taken.
fn is_not_served(m: &Message) -> bool {
    wire::status(m.headers.as_ref()) == wire::NOT_SERVED
}

/// A refusal by a replica that is going away or no longer runs the component: another
/// replica may take the message.
fn passes_on(m: &Message) -> bool {
    matches!(
        wire::status(m.headers.as_ref()),
        "closed" | "shutdown" | "unregistered" | "no_such_component" | "component_stopped"
    )
}

/// Nobody took the message: no responders, or a node that does not serve the id.
fn not_taken(r: &Option<Result<Message, async_nats::RequestError>>) -> bool {
    no_responders(r) || matches!(r, Some(Ok(m)) if is_not_served(m))
}

/// True while the directory says another node hosts `id` (so "no responders" means it is
/// reconnecting, not gone).
fn still_listed(inner: &std::sync::Weak<Inner>, id: &crate::id::ComponentId) -> bool {
    inner.upgrade().is_some_and(|i| i.registry.is_remote(id))
}

/// How long to wait before attempt `attempt` after the outcome `last`: after nobody took it
/// (a peer that reconnected re-subscribes a moment later) `attempt` x 100 ms, after any
/// other failure `attempt` x 10 ms (one that comes back at once must not spin the loop).
fn pause_after(last: &Option<Result<Message, async_nats::RequestError>>, attempt: usize) -> Duration {
    let step = if not_taken(last) { 100 } else { 10 };
    Duration::from_millis(step * attempt.min(10) as u64)
}

/// Before sending a message again: waits for the connection if it is down, then `pause`.
/// `None` if the bridge is stopping; otherwise whether it had to wait for the connection.
async fn resend_pause(
    pause: Duration,
    connection: &mut tokio::sync::watch::Receiver<bool>,
    give_up: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<bool> {
    let was_down = !*connection.borrow();
    let wait = async {
        // Resent only once connected (resending into a client that is reconnecting would
        // only fill its queue): the message waits for the connection, holding its place in
        // flight, so a long outage shows as a full outbound queue; a stop gives it up.
        let up = connection.wait_for(|up| *up).await.is_ok();
        if up && !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        up
    };
    tokio::select! {
        up = wait => up.then_some(was_down),
        _ = give_up.changed() => None,
    }
}

/// Another node took a message of ours.
fn forwarded(inner: &Inner, bridge: &Bridge) {
    inner.stats.messages_forwarded.add(1);
    bridge.counters.forwarded.fetch_add(1, Ordering::Relaxed);
}

/// Another node refused a message of ours, or never answered: it is dead-lettered here.
pub(super) fn failed(inner: &Inner, bridge: &Bridge, env: MessageEnvelope, reason: DeadLetterReason) {
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
                            // Correlated by the inbox it came to, never by what it says: the
                            // answer on this request's reply subject answers this request,
                            // and comes from the component asked (whatever its headers claim,
                            // it cannot complete another request).
                            let mut resp = incoming.env;
                            resp.message_type = MessageType::Response;
                            resp.correlation_id = Some(id.clone());
                            resp.from = from;
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

/// The key a confirmed one-way message is remembered by: its target and the sending
/// bridge's key of the send (`sy-send-id`, the same on every attempt of one send, unique and
/// unpredictable across sends). A message without one (a plain client's) is not
/// remembered: a resend of it is a new message.
pub(super) fn accepted_key(to: &crate::id::ComponentId, send_id: &str) -> crate::envelope::MessageId {
    format!("{to}\n{send_id}").into()
}
