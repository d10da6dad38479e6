//! What a node receives for the components it hosts on their own subjects: one reader task
//! per hosted id (its queue-group subscription: requests from nodes, and what plain NATS
//! clients send) that only ever `try_send`s into the mailbox and answers for it, and, with
//! JetStream, one durable reader per id that offers stored messages to the mailbox with a
//! receipt the component's turn settles. One-way messages from other nodes come on links
//! (`links.rs`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::{Client, Message};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::task::AbortHandle;

use super::bridge::{Bridge, Receipt, RemoteReply};
use super::{subject, wire};
use crate::deadletter::DeadLetterReason;
use crate::envelope::MessageType;
use crate::id::ComponentId;
use crate::mailbox::Letter;
use crate::runtime::Inner;

/// A message for hosted component `id` from the cluster, on its subject.
pub(super) async fn inbound(client: &Client, bridge: &Arc<Bridge>, inner: &Weak<Inner>, id: &ComponentId, m: Message) {
    let Some(inner) = inner.upgrade() else {
        return;
    };
    let reply = m.reply.as_ref().map(|s| s.to_string());
    if reply.as_deref().is_some_and(|r| !wire::answerable(r)) {
        // An answer goes only to a requester's inbox (or the server's mapping of one), never
        // to a subject the sender chose (`$JS.API...`, another component's subject):
        // refused unanswered, not delivered.
        bridge.counters.inbound_refused.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if super::health::is_question(&m) {
        // Not a message: the component's health, asked without running its handler.
        super::health::answer(client, bridge, &inner, id, m, &bridge.health_waiting);
        return;
    }
    bridge.counters.inbound.fetch_add(1, Ordering::Relaxed);
    let refuse = |status: String, text: String| {
        bridge.counters.inbound_refused.fetch_add(1, Ordering::Relaxed);
        (status, text)
    };
    let refusal = match wire::envelope(id.clone(), m.headers.as_ref(), &m.payload, reply.is_some()) {
        Err(e) => Some(refuse("invalid".into(), e.0)),
        Ok(incoming) => match (incoming.env.message_type, reply.clone()) {
            (MessageType::Request, Some(reply_to)) => {
                let remote = RemoteReply { reply_to, bridge: bridge.clone() };
                let timeout = incoming.timeout.min(bridge.max_request_timeout);
                match inner.request_from_cluster(incoming.env, timeout, remote) {
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
            (_, reply_to) => {
                // A plain client's one-way message; with a reply subject it is answered with
                // its outcome (a resend is a new message).
                match inner.send_from_cluster(incoming.env) {
                    Ok(()) => None,
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
pub(super) struct Hosted {
    /// Tells the queue-group reader to unsubscribe and finish what the client holds for it.
    pub(super) leave: tokio::sync::oneshot::Sender<()>,
    pub(super) core: AbortHandle,
    pub(super) durable: Option<AbortHandle>,
}

impl Hosted {
    /// Stops serving the component: the queue-group subscription ends, and the messages the
    /// server delivered before that are still answered (refused, if the component is gone:
    /// their senders pass them to another replica), not dropped unread.
    pub(super) fn stop(self) {
        let _ = self.leave.send(());
        if let Some(d) = self.durable {
            d.abort();
        }
    }

    /// Ends the readers at once (their client is gone: nothing more comes through it).
    pub(super) fn abort(self) {
        self.core.abort();
        if let Some(d) = self.durable {
            d.abort();
        }
    }
}

/// Reads hosted component `id`'s queue-group subscription until told to leave; then drains
/// it: the server stops routing to it, and what it routed here before (a request on its way
/// as the node leaves) is still read and answered (refused as closing: its sender asks
/// another replica) rather than dropped by the client unread. Bounded: a connection that is
/// down never confirms the drain.
pub(super) async fn serve(
    mut sub: async_nats::Subscriber,
    mut leave: tokio::sync::oneshot::Receiver<()>,
    client: Client,
    bridge: Arc<Bridge>,
    inner: Weak<Inner>,
    id: ComponentId,
) {
    loop {
        tokio::select! {
            m = sub.next() => match m {
                Some(m) => inbound(&client, &bridge, &inner, &id, m).await,
                None => return,
            },
            _ = &mut leave => break,
        }
    }
    if sub.drain().await.is_err() {
        return;
    }
    let drained = async {
        while let Some(m) = sub.next().await {
            inbound(&client, &bridge, &inner, &id, m).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drained).await;
}

/// Creates the cluster's stream (`sy-<cluster>` over `sy.<cluster>.d.>`), or sets the
/// limits of `config` on the one there.
pub(super) async fn durable_stream(
    client: &Client,
    config: &super::ClusterConfig,
) -> Result<async_nats::jetstream::stream::Stream, String> {
    use async_nats::jetstream::stream;
    let cluster = config.name.as_str();
    let js = async_nats::jetstream::new(client.clone());
    let stream_config = stream::Config {
        name: subject::stream_name(cluster),
        subjects: vec![format!("sy.{cluster}.d.>")],
        // A message is kept until a node acknowledged or dead-lettered it; each
        // component's consumer takes only its own subject.
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        // Bounded: a full stream refuses the store (its sender dead-letters the message
        // with the server's reason) rather than drop a message it holds.
        max_bytes: i64::try_from(config.stream_max_bytes).unwrap_or(i64::MAX),
        max_age: config.stream_max_age,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    let made = async {
        js.create_or_update_stream(stream_config).await.map_err(|e| e.to_string())?;
        js.get_stream(subject::stream_name(cluster)).await.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(Duration::from_secs(5), made).await {
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
pub(super) struct DurableReader {
    pub(super) stream: async_nats::jetstream::stream::Stream,
    pub(super) bridge: Arc<Bridge>,
    pub(super) inner: Weak<Inner>,
    pub(super) id: ComponentId,
    pub(super) max_attempts: u32,
    pub(super) capacity: usize,
    pub(super) ack_wait: Duration,
    /// The server deletes the consumer once no node has read from it for this long.
    pub(super) inactive: Duration,
}

/// A message refused by a full mailbox or a closing runtime is given back for this long
/// before its next offer.
const REFUSED_DELAY: Duration = Duration::from_millis(100);

impl DurableReader {
    pub(super) async fn run(self) {
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
            // A component unregistered everywhere leaves no consumer behind for good.
            inactive_threshold: self.inactive,
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
                // node does not offer): the stream stops offering it, and it is
                // dead-lettered here as it came (raw, from `nats`), with what is wrong with
                // it, not dropped.
                c.inbound_refused.fetch_add(1, Ordering::Relaxed);
                let env = crate::envelope::MessageEnvelope::new(
                    MessageType::FireAndForget,
                    ComponentId::new(wire::PLAIN_CLIENT_ID).expect("a valid id"),
                    self.id.clone(),
                    receipt.payload().to_vec(),
                    crate::codec::RAW,
                    crate::envelope::new_message_id(),
                );
                receipt.stop_offering();
                inner.dead_letter_at_send(env, DeadLetterReason::Invalid);
                return;
            }
        };
        let mut letter = Letter::new(env, guarantee, None);
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
