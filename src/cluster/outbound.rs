//! What a node sends to other nodes besides one-way messages (those go on links:
//! `links.rs`), and how each send ends: an at-least-once message stored on JetStream, a
//! request and its one outcome, a publish, the answer to a request another node made, and
//! the settling of a stored message; and the reconnect buffer every send waits in while the
//! node is cut off. Each round trip runs as a task of the I/O loop (`io.rs`), so a slow peer
//! holds up nothing else.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::{Message, RequestErrorKind};
use bytes::Bytes;

use super::bridge::{Bridge, Outbound, Queued};
use super::links::Pending;
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
        self.end_here(job, DeadLetterReason::Transport { detail });
    }

    /// Ends a job whose target no node hosts (after membership warmed up without one).
    pub(super) fn give_up_on_unknown(&self, job: Outbound) {
        self.end_here(job, DeadLetterReason::NoSuchComponent);
    }

    fn end_here(&self, job: Outbound, reason: DeadLetterReason) {
        let Some(inner) = self.inner.upgrade() else { return };
        match job {
            Outbound::Send { env, .. } | Outbound::Durable { env, .. } => failed(&inner, &self.bridge, env, reason),
            Outbound::Request { env, deadline, .. } | Outbound::Unresolved { env, deadline, .. }
                if env.message_type == crate::envelope::MessageType::Request =>
            {
                self.bridge.counters.remote_failures.fetch_add(1, Ordering::Relaxed);
                inner.fail_request(&env.message_id, deadline, reason.clone());
                inner.dead_letter_only(env, reason);
            }
            Outbound::Unresolved { env, .. } => failed(&inner, &self.bridge, env, reason),
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
            Outbound::Unresolved { env, guarantee, timeout, deadline } => {
                if !self.directory.hosted_elsewhere(&env.to) {
                    // Waits for membership (`Loop::resolve_unresolved`); its reservation of
                    // the reconnect buffer was given back above.
                    let job = Outbound::Unresolved { env, guarantee, timeout, deadline };
                    self.unresolved.push((Instant::now() + timeout, Queued { job, reserved: None }));
                    return;
                }
                match self.bridge.job_for(env, guarantee, timeout, deadline) {
                    Ok(job) => self.dispatch(Queued { job, reserved: None }, waited),
                    Err(e) => {
                        if let Some(inner) = inner.upgrade() {
                            let reason = e.as_dead_letter_reason();
                            failed(&inner, &bridge, e.into_envelope(), reason);
                        }
                    }
                }
            }
            Outbound::Send { env } => {
                // Patient with a full mailbox while an outage's backlog drains: it waited
                // in the reconnect buffer, or goes behind messages that did.
                let held = waited.is_some() || self.holds();
                let patience = match (held, self.bridge.buffer_deadline()) {
                    (true, Some(d)) => Some(Instant::now() + d.saturating_sub(waited.unwrap_or_default())),
                    _ => None,
                };
                self.send_on_link(Pending::new(env, patience));
            }
            Outbound::Durable { subject, env, guarantee } => {
                let mut headers = wire::headers(&env, None);
                headers.insert(wire::DELIVERY, wire::delivery_name(guarantee));
                // The server's duplicate window drops a second publish under the same key.
                // Exactly once: the target and the message id, the key the receiving
                // component's window uses, so a resend of a message already stored is
                // dropped as the component would drop it. At least once: a key of this send
                // alone (a resend by the caller is delivered again, as locally); only this
                // bridge's own publishes after a lost acknowledgement are dropped. That key is
                // unguessable (`Bridge::store_key`): nobody can store a message under it first
                // and have the real one dropped as a duplicate.
                let exactly_once = guarantee.is_exactly_once();
                let key = if exactly_once {
                    format!("{}/{}", subject::escape(env.to.as_str()), env.message_id)
                } else {
                    self.bridge.store_key()
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
                let held = waited.is_some() || self.holds();
                // On the wire the request has an id of its own: the answer is matched by the
                // inbox it comes to, and the receiving node keeps the request under this id.
                // A request handed on (`Context::forward`) keeps its id on its own node, so
                // one handed back to the requester's node must not arrive under the id the
                // requester's pending entry has.
                let wire_id = crate::envelope::new_message_id();
                self.inflight.spawn(async move {
                    // Asked again only when nobody took it, so nothing is handled twice: "no
                    // responders" (a peer that reconnected re-subscribes shortly after), a
                    // full mailbox (while an outage's patience lasts), or a replica that is
                    // closing or no longer runs the component (the queue group then gives
                    // it to another). Any other failure may have reached the handler. After
                    // the first attempts, only while the directory still lists a node
                    // hosting the id and the request has time left.
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
                            if !(no_responders(&r) || full || passed_on(&r))
                                || !more
                                || left.is_zero()
                                || resend_pause(pause_after(&r, attempt), &mut connection, &mut give_up).await.is_none()
                            {
                                break;
                            }
                        }
                        let left = timeout.saturating_sub(started.elapsed());
                        let mut headers = wire::headers(&env, Some(left));
                        headers.insert(wire::MESSAGE_ID, wire_id.as_str());
                        let req = async_nats::Request::new()
                            .headers(headers)
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
pub(super) fn reason_of(status: &str, text: &str) -> DeadLetterReason {
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

fn no_responders(r: &Option<Result<Message, async_nats::RequestError>>) -> bool {
    matches!(r, Some(Err(e)) if e.kind() == RequestErrorKind::NoResponders)
}

/// A refusal by a replica that is going away or no longer runs the component: it took
/// nothing, and another replica may.
fn passed_on(r: &Option<Result<Message, async_nats::RequestError>>) -> bool {
    matches!(r, Some(Ok(m)) if matches!(
        wire::status(m.headers.as_ref()),
        "closed" | "shutdown" | "unregistered" | "no_such_component" | "component_stopped"
    ))
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
    let step = if no_responders(last) || passed_on(last) { 100 } else { 10 };
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
pub(super) fn forwarded(inner: &Inner, bridge: &Bridge) {
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
        Some(Err(e)) if e.kind() == RequestErrorKind::TimedOut => DeadLetterReason::Transport {
            detail: "no answer from the receiving node within the deadline: handled or not, unknown".into(),
        },
        Some(Err(e)) => DeadLetterReason::Transport {
            detail: format!("no answer from the receiving node ({e}): handled or not, unknown"),
        },
        None => DeadLetterReason::Transport {
            detail: "this node left the cluster before the answer came: handled or not, unknown".into(),
        },
    };
    // Refused by nobody (no responders), or no answer: the request ends here, dead-lettered,
    // and its requester (if still waiting) learns why. Without an answer nobody can tell
    // whether another node took it (its answer may have been lost with a connection): the
    // reason says so, and the other node may count it handled.
    bridge.counters.remote_failures.fetch_add(1, Ordering::Relaxed);
    inner.fail_request(&id, deadline, reason.clone());
    inner.dead_letter_only(env, reason);
}
