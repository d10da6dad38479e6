//! Publish-subscribe: explicit topic subscriptions, and a publish that pushes a copy of
//! the envelope into each subscriber's mailbox through the ordinary send path.
//!
//! Subscriber lists are copy-on-write (`Arc<[ComponentId]>`): a publish clones the `Arc`
//! and walks it without holding the topic's shard lock while it routes.

use crate::deadletter::DeadLetterReason;
use crate::envelope::{DeliveryGuarantee, MessageEnvelope, MessageType};
use crate::error::{InvalidEnvelope, SendError};
use crate::id::{ComponentId, IdBuildHasher};
use crate::runtime::Inner;
use crate::send::Origin;
use crate::sync::map::ShardedMap;

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublishReport {
    /// Subscribers whose mailbox took the message.
    pub delivered: usize,
    /// Copies dead-lettered (subscriber full, gone or closed; or no subscriber at all).
    pub dead_lettered: usize,
    /// True when the publish went to the other nodes of the cluster too (their
    /// subscribers get it; the `cluster` feature). A publish handed to the cluster is not
    /// dead-lettered for want of a subscriber here.
    pub sent_to_cluster: bool,
}

/// Topic -> subscribers, copy-on-write. A `std` `Arc`: shared immutable data, not a
/// synchronization point (the map's shard locks are).
pub(crate) struct Topics {
    map: ShardedMap<String, std::sync::Arc<[ComponentId]>, IdBuildHasher>,
}

impl Topics {
    pub(crate) fn new() -> Self {
        Self { map: ShardedMap::new() }
    }
}

impl Inner {
    /// Subscribes `id` to `topic` (idempotent).
    pub(crate) fn subscribe(&self, topic: &str, id: ComponentId) {
        self.topics.map.upsert(
            topic.to_string(),
            || std::sync::Arc::from(Vec::new()),
            |subs| {
                if !subs.contains(&id) {
                    let mut v = subs.to_vec();
                    v.push(id);
                    *subs = std::sync::Arc::from(v);
                }
            },
        );
    }

    /// Unsubscribes `id` from `topic`, removing the topic once nobody is subscribed.
    pub(crate) fn unsubscribe(&self, topic: &str, id: &ComponentId) {
        let without = |subs: &mut std::sync::Arc<[ComponentId]>| {
            let v: Vec<_> = subs.iter().filter(|s| *s != id).cloned().collect();
            *subs = std::sync::Arc::from(v);
        };
        #[cfg(loom)]
        if self.fault == crate::mailbox::Fault::SplitUnsubscribe {
            // The bug this guards against: update, then remove "if empty" in a second
            // critical section, dropping whatever a subscriber added in between.
            let mut empty = false;
            self.topics.map.update(topic, |subs| {
                without(subs);
                empty = subs.is_empty();
            });
            crate::sync::yield_now();
            if empty {
                let _ = self.topics.map.remove(topic);
            }
            return;
        }
        // One critical section: a concurrent `subscribe` lands before (and is kept) or
        // after (and re-creates the topic).
        self.topics.map.update_or_remove(topic, |subs| {
            without(subs);
            !subs.is_empty()
        });
    }

    /// Removes `id` from every topic (it was unregistered), dropping topics left empty.
    pub(crate) fn drop_subscriptions(&self, id: &ComponentId) {
        self.topics.map.retain(|_, subs| {
            if subs.contains(id) {
                *subs = subs.iter().filter(|s| *s != id).cloned().collect::<Vec<_>>().into();
            }
            !subs.is_empty()
        });
    }

    /// The subscribers of `topic`, in subscription order.
    pub(crate) fn subscribers(&self, topic: &str) -> Vec<ComponentId> {
        self.topics.map.with(topic, |s| s.to_vec()).unwrap_or_default()
    }

    /// Delivers a copy to every subscriber; copies that cannot be delivered are
    /// dead-lettered (there is no single sender to hand several envelopes back to).
    pub(crate) fn publish(&self, env: MessageEnvelope, origin: Origin) -> Result<PublishReport, SendError> {
        let r = (|| {
            if env.message_type != MessageType::Publish {
                return Err(SendError::Invalid(env, InvalidEnvelope::NotAPublish));
            }
            if let Err(r) = self.precheck(&env, origin) {
                return Err(r.with(env));
            }
            let Some(topic) = env.topic.as_deref() else {
                return Err(SendError::Invalid(env, InvalidEnvelope::PublishWithoutTopic));
            };
            let subs =
                self.topics.map.with(topic, std::sync::Arc::clone).unwrap_or_else(|| std::sync::Arc::from(Vec::new()));
            let mut report = PublishReport::default();
            #[cfg(all(feature = "cluster", not(loom)))]
            if let Some(bridge) = self.cluster.get() {
                report.sent_to_cluster = bridge.publish(env.clone()).is_ok();
                if !report.sent_to_cluster {
                    bridge.counters.remote_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            if subs.is_empty() {
                if !report.sent_to_cluster {
                    self.dead_letter_at_send(env, DeadLetterReason::NoSubscribers);
                    report.dead_lettered = 1;
                }
                return Ok(report);
            }
            self.fan_out(env, &subs, &mut report);
            Ok(report)
        })();
        if let Err(e) = &r {
            self.count_rejection(e);
        }
        r
    }

    /// A copy of `env` to each of `subs`; copies that cannot be delivered are dead-lettered.
    fn fan_out(&self, env: MessageEnvelope, subs: &[ComponentId], report: &mut PublishReport) {
        let last = subs.len() - 1;
        let mut env = Some(env);
        for (i, sub) in subs.iter().enumerate() {
            let mut copy = if i == last { env.take().expect("last") } else { env.as_ref().expect("set").clone() };
            copy.to = sub.clone();
            match self.route(copy, DeliveryGuarantee::AtMostOnce, Origin::Worker, None, true) {
                Ok(()) => report.delivered += 1,
                Err(e) => {
                    let reason = e.as_dead_letter_reason();
                    self.dead_letter_at_send(e.into_envelope(), reason);
                    report.dead_lettered += 1;
                }
            }
        }
    }

    /// A publish from another node: to this node's subscribers of its topic (none here is
    /// not a dead letter: every node gets every publish).
    #[cfg(all(feature = "cluster", not(loom)))]
    pub(crate) fn publish_from_cluster(&self, env: MessageEnvelope) {
        let Some(topic) = env.topic.as_deref() else {
            return;
        };
        let Some(subs) = self.topics.map.with(topic, std::sync::Arc::clone) else {
            return;
        };
        if subs.is_empty() || self.precheck(&env, Origin::Host).is_err() {
            return;
        }
        self.fan_out(env, &subs, &mut PublishReport::default());
    }
}
