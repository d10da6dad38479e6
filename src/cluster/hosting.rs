//! Serving this node's components to the cluster: a queue-group subscription per hosted id
//! (and, with JetStream, its durable reader), announced to the other nodes as a change of
//! what this node hosts (`membership.rs`); the topics' messages from other nodes; and a new
//! client in place of one whose connection task is gone.

use std::sync::atomic::Ordering;
use std::time::Instant;

use async_nats::Message;

use super::directory::Change;
use super::inbound::{DurableReader, Hosted, durable_stream};
use super::io::{Loop, barrier, bounded};
use super::{client, subject, wire};
use crate::envelope::MessageType;
use crate::id::ComponentId;

impl Loop {
    /// Serves `ids` to the cluster: subscribes to each one's subject, waits for the server
    /// to have taken the subscriptions, and announces those it did not refuse.
    pub(super) async fn host_all(&mut self, ids: Vec<ComponentId>) {
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
        // After the subscriptions on the same connection: a node that learns of the ids
        // from this announcement finds the subscriptions in place.
        added.retain(|id| self.hosted.contains_key(id));
        let before = self.rehash();
        if !added.is_empty() && self.joined {
            self.announce_change(before, &added, &[]).await;
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
        let Some(Ok(sub)) = bounded(self.client.queue_subscribe(subject, subject::QUEUE_GROUP.to_string())).await
        else {
            return false;
        };
        let (client, bridge, inner, me) = (self.client.clone(), self.bridge.clone(), self.inner.clone(), id.clone());
        let (leave, left) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(super::inbound::serve(sub, left, client, bridge, inner, me));
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
        self.hosted.insert(id, Hosted { leave, core: task.abort_handle(), durable });
        true
    }

    /// Stops serving the hosted components whose subscription the server refused (the
    /// refusal names the subject), telling the cluster if it was announced.
    pub(super) async fn withdraw_denied(&mut self) {
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
        let mut removed = Vec::new();
        for id in denied {
            self.bridge.served.write().remove(&id);
            if let Some(hosted) = self.hosted.remove(&id) {
                hosted.stop();
                removed.push(id);
            }
        }
        if !removed.is_empty() {
            let before = self.rehash();
            self.announce_change(before, &[], &removed).await;
        }
    }

    pub(super) async fn unhost(&mut self, id: &ComponentId) {
        self.unhosted.retain(|u| u != id);
        self.bridge.served.write().remove(id);
        if let Some(hosted) = self.hosted.remove(id) {
            hosted.stop();
            let before = self.rehash();
            self.announce_change(before, &[], std::slice::from_ref(id)).await;
        }
        // Other nodes may host it too: reach them from now on.
        if self.directory.hosted_elsewhere(id) {
            self.apply(vec![Change::Reachable(id.clone())]);
        }
    }

    pub(super) fn topic_message(&self, m: Message) {
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
}
