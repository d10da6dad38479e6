//! The send path: the checks every send makes, the route into the target's mailbox, and
//! the blocking send that waits for room.
//!
//! A send resolves its target in the registry and, with the entry pinned, pushes straight
//! into the destination's mailbox; if that made the component runnable it schedules it on
//! its worker ([`crate::workers`]). Nothing is lost silently: every refusal hands the
//! envelope back in a [`SendError`] and is counted once in the routing stats. The whole
//! path of one send is written out in `docs/design.md` ("The path of one send").

use std::time::Duration;

use crate::component::Component;
use crate::envelope::{DeliveryGuarantee, MessageEnvelope, MessageType};
use crate::error::{BatchError, InvalidEnvelope, SendError};
use crate::mailbox::{Letter, Refused, Wake};
use crate::registry::Destination;
use crate::runtime::{Inner, deadline_after};
use crate::stats::ComponentStats;
use crate::sync::channel::TrySendError;
use crate::sync::{Arc, Ordering};
use crate::workers::on_worker_thread;

/// Who is sending: the host (subject to shutdown's "stop accepting") or a handler running
/// on a worker (still allowed while the runtime drains).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Host,
    Worker,
}

/// Why [`Inner::precheck`] turned a send away.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rejected {
    PayloadTooLarge,
    Closed,
}

impl Rejected {
    pub(crate) fn with(self, env: MessageEnvelope) -> SendError {
        match self {
            Rejected::PayloadTooLarge => SendError::PayloadTooLarge(env),
            Rejected::Closed => SendError::Closed(env),
        }
    }
}

impl Inner {
    /// The non-blocking send behind every `try_send`/`send` API.
    #[inline]
    pub(crate) fn send(
        &self,
        env: MessageEnvelope,
        guarantee: DeliveryGuarantee,
        origin: Origin,
    ) -> Result<(), SendError> {
        let r = self.route(env, guarantee, origin, None, true);
        if let Err(e) = &r {
            self.count_rejection(e);
        }
        r
    }

    /// The checks every send makes before routing, by reference (the envelope is moved
    /// only once, into the mailbox).
    #[inline]
    pub(crate) fn precheck(&self, env: &MessageEnvelope, origin: Origin) -> Result<(), Rejected> {
        if env.payload.len() > self.config.max_payload_bytes {
            return Err(Rejected::PayloadTooLarge);
        }
        // Acquire pairs with the Release swap in `begin_shutdown`.
        if origin == Origin::Host && !self.accepting.load(Ordering::Acquire) {
            return Err(Rejected::Closed);
        }
        Ok(())
    }

    /// Routes one envelope without counting a rejection (callers count or dead-letter).
    /// `ticket`: a request whose requester waits in the pending table (under that
    /// registration of its id). `count_full`:
    /// record a full mailbox in the component's stats (false for a sender that will wait
    /// for room and try again).
    #[inline]
    pub(crate) fn route(
        &self,
        env: MessageEnvelope,
        guarantee: DeliveryGuarantee,
        origin: Origin,
        ticket: Option<crate::request::Ticket>,
        count_full: bool,
    ) -> Result<(), SendError> {
        // The envelope is moved once, into the letter the mailbox takes; everything before
        // the push reads it in place (each extra move is a 168-byte copy on the hot path).
        let letter = Letter::new(env, guarantee, ticket);
        if let Err(r) = self.precheck(&letter.env, origin) {
            return Err(r.with(letter.env));
        }
        if letter.env.message_type == MessageType::Response {
            return self.route_response(letter.env);
        }
        // The push runs with the registry entry pinned (a shard read lock): no Arc clone
        // unless the push makes the component runnable, and no sender count on the state
        // word (closers pass the registry barrier instead; see `crate::mailbox`).
        let Some(entry) = self.registry.get(&letter.env.to) else {
            #[cfg(all(feature = "cluster", not(loom)))]
            if let Some(bridge) = self.cluster.get().filter(|b| b.warming()) {
                return self.route_unresolved(bridge, letter);
            }
            return Err(SendError::NoSuchComponent(letter.env));
        };
        match &*entry {
            Destination::Local(comp) => {
                // The push is written out here (see `Mailbox::pinned_open`): the letter is
                // moved once, straight into the queue.
                if !comp.mailbox.pinned_open() {
                    return Err(SendError::Closed(letter.env));
                }
                match comp.mailbox.queue().try_send(letter) {
                    Ok(()) => {
                        self.stats.messages_routed.add(1);
                        if comp.mailbox.pinned_delivered() == Wake::Schedule {
                            self.enqueue(comp.clone());
                        }
                        Ok(())
                    }
                    Err(TrySendError::Full(letter)) | Err(TrySendError::Disconnected(letter)) => {
                        Err(full(comp, letter.env, count_full))
                    }
                }
            }
            #[cfg(all(feature = "cluster", not(loom)))]
            Destination::Remote(target) => self.route_remote(target, letter),
        }
    }

    /// A send to a component on another node: into the bridge's outbound queue. Out of
    /// line, so the local path stays as it was.
    #[cfg(all(feature = "cluster", not(loom)))]
    #[inline(never)]
    fn route_remote(&self, target: &crate::cluster::RemoteTarget, letter: Letter) -> Result<(), SendError> {
        // A request's remaining time travels with it (the receiving node skips it once the
        // requester gave up); an untracked request gets the default.
        if !crate::cluster::wire::can_carry(&letter.env) {
            return Err(SendError::Invalid(letter.env, InvalidEnvelope::NotForTheCluster));
        }
        let deadline = if letter.ticket.is_some() { self.pending.deadline_of(&letter.env.message_id) } else { None };
        let timeout = match deadline {
            Some(key) => key.at().saturating_duration_since(std::time::Instant::now()),
            None => crate::cluster::wire::DEFAULT_REQUEST_TIMEOUT,
        };
        target.bridge.forward(letter.env, letter.guarantee, timeout, deadline)?;
        self.stats.messages_routed.add(1);
        Ok(())
    }

    /// A send to an id no node is known to host while the node has just joined its cluster
    /// (`Bridge::warming`): the bridge holds it until membership learns of a node hosting
    /// it (then it goes there) or the send's time is up (then it is dead-lettered as
    /// `NoSuchComponent`).
    #[cfg(all(feature = "cluster", not(loom)))]
    #[cold]
    #[inline(never)]
    fn route_unresolved(&self, bridge: &crate::cluster::Bridge, letter: Letter) -> Result<(), SendError> {
        let deadline = if letter.ticket.is_some() { self.pending.deadline_of(&letter.env.message_id) } else { None };
        let timeout = match deadline {
            Some(key) => key.at().saturating_duration_since(std::time::Instant::now()),
            None => crate::cluster::wire::DEFAULT_REQUEST_TIMEOUT,
        };
        bridge.forward_unresolved(letter.env, letter.guarantee, timeout, deadline)?;
        self.stats.messages_routed.add(1);
        Ok(())
    }

    /// The blocking send to another node's component whose outbound queue is full: tries
    /// again (yielding, then sleeping 50 us between tries: the bridge has no room
    /// notification) until `timeout`, then hands the envelope back as `Timeout`.
    #[cfg(all(feature = "cluster", not(loom)))]
    #[cold]
    fn forward_waiting(
        &self,
        mut env: MessageEnvelope,
        guarantee: DeliveryGuarantee,
        timeout: Duration,
    ) -> Result<(), SendError> {
        let deadline = deadline_after(timeout);
        let mut attempt = 0u32;
        loop {
            if std::time::Instant::now() >= deadline {
                return Err(SendError::Timeout(env));
            }
            if attempt < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
            attempt = attempt.saturating_add(1);
            env = match self.route(env, guarantee, Origin::Host, None, false) {
                Err(SendError::Full(env)) => env,
                done => return done,
            };
        }
    }

    /// A message from another node (or a plain NATS client) for a component hosted here:
    /// routed like a host's send (refused once the runtime shuts down), not counted when
    /// refused (the caller answers or dead-letters, and counts).
    #[cfg(all(feature = "cluster", not(loom)))]
    pub(crate) fn send_from_cluster(&self, env: MessageEnvelope) -> Result<(), SendError> {
        self.route(env, DeliveryGuarantee::AtMostOnce, Origin::Host, None, true)
    }

    /// An at-least-once message the cluster's stream offered to a component hosted here
    /// (the letter carries its receipt and the attempts made so far). Counted as sent on
    /// this node once it is in the mailbox; a refusal is counted as nothing yet and hands
    /// back why, with the envelope and the receipt apart (the caller gives the message
    /// back to the stream, a routing failure here, or on the last offer dead-letters it).
    #[cfg(all(feature = "cluster", not(loom)))]
    pub(crate) fn send_from_stream(&self, mut letter: Letter) -> Result<(), (SendError, Box<crate::cluster::Receipt>)> {
        let receipt = letter.receipt.take().expect("a letter from the stream carries its receipt");
        if let Err(r) = self.precheck(&letter.env, Origin::Host) {
            return Err((r.with(letter.env), receipt));
        }
        let Some(comp) = self.registry.component(&letter.env.to) else {
            return Err((SendError::NoSuchComponent(letter.env), receipt));
        };
        letter.receipt = Some(receipt);
        let refused = match comp.mailbox.push_counted(letter) {
            Ok(wake) => {
                self.stats.messages_routed.add(1);
                if wake == Wake::Schedule {
                    self.enqueue(comp);
                }
                return Ok(());
            }
            Err(Refused::Closed(letter)) => (letter, false),
            Err(Refused::Full(letter)) => (letter, true),
        };
        let (mut letter, full_mailbox) = refused;
        let receipt = letter.receipt.take().expect("the receipt came back with the letter");
        let e = if full_mailbox { full(&comp, letter.env, true) } else { SendError::Closed(letter.env) };
        Err((e, receipt))
    }

    /// A batch of one-way messages to one component: one registry lookup (the entry pinned
    /// for the whole batch), pushes in order while the mailbox takes them, and one
    /// `SCHEDULED := 1` after the last push, so at most one schedule of the component.
    ///
    /// The pinned-sender protocol is the single send's with k pushes before the state-word
    /// RMW (see `crate::mailbox`): the RMW's Release publishes every push, and an owner that
    /// finishes its turn after it sees them all. Modelled in loom
    /// (`batch_send_racing_the_worker_handles_each_message_once`).
    pub(crate) fn send_batch(
        &self,
        batch: Vec<MessageEnvelope>,
        guarantee: DeliveryGuarantee,
        origin: Origin,
    ) -> Result<(), BatchError> {
        let mut envelopes = batch.into_iter();
        let Some(first) = envelopes.next() else {
            return Ok(());
        };
        let (sent, refused) = self.push_batch(first, &mut envelopes, guarantee, origin);
        match refused {
            None => Ok(()),
            Some(error) => {
                self.count_rejection(&error);
                Err(BatchError { sent, error, rest: envelopes.collect() })
            }
        }
    }

    /// The pushes of [`Inner::send_batch`]: how many went in, and the first refusal.
    fn push_batch(
        &self,
        first: MessageEnvelope,
        rest: &mut std::vec::IntoIter<MessageEnvelope>,
        guarantee: DeliveryGuarantee,
        origin: Origin,
    ) -> (usize, Option<SendError>) {
        let one_way = |env: &MessageEnvelope, to: &crate::id::ComponentId| {
            env.message_type == MessageType::FireAndForget && env.to == *to
        };
        if let Err(r) = self.precheck(&first, origin) {
            return (0, Some(r.with(first)));
        }
        if first.message_type != MessageType::FireAndForget {
            return (0, Some(SendError::Invalid(first, InvalidEnvelope::NotInBatch)));
        }
        let Some(entry) = self.registry.get(&first.to) else {
            return (0, Some(SendError::NoSuchComponent(first)));
        };
        let Some(comp) = entry.local() else {
            // A component on another node: each message goes through the bridge.
            drop(entry);
            return self.push_batch_one_by_one(first, rest, guarantee, origin);
        };
        if !comp.mailbox.pinned_open() {
            return (0, Some(SendError::Closed(first)));
        }
        let to = comp.id.clone();
        let mut sent = 0;
        let mut next = Some(first);
        let refused = loop {
            let Some(env) = next.take().or_else(|| rest.next()) else {
                break None;
            };
            if let Err(r) = self.precheck(&env, origin) {
                break Some(r.with(env));
            }
            if !one_way(&env, &to) {
                break Some(SendError::Invalid(env, InvalidEnvelope::NotInBatch));
            }
            match comp.mailbox.queue().try_send(Letter::new(env, guarantee, None)) {
                Ok(()) => {
                    sent += 1;
                    #[cfg(loom)]
                    if sent == 1 && comp.mailbox.schedules_after_first_push() {
                        // The broken variant: the RMW comes too early to publish later pushes.
                        if comp.mailbox.pinned_delivered() == Wake::Schedule {
                            self.enqueue(comp.clone());
                        }
                    }
                }
                Err(TrySendError::Full(letter)) | Err(TrySendError::Disconnected(letter)) => {
                    break Some(full(comp, letter.env, true));
                }
            }
        };
        if sent > 0 {
            self.stats.messages_routed.add(sent as u64);
            #[cfg(loom)]
            if comp.mailbox.schedules_after_first_push() {
                return (sent, refused);
            }
            if comp.mailbox.pinned_delivered() == Wake::Schedule {
                self.enqueue(comp.clone());
            }
        }
        (sent, refused)
    }

    /// A batch for a component on another node: routed one by one, in order, until one is
    /// refused (the bridge has no batch form; the messages still share its queue).
    #[cold]
    fn push_batch_one_by_one(
        &self,
        first: MessageEnvelope,
        rest: &mut std::vec::IntoIter<MessageEnvelope>,
        guarantee: DeliveryGuarantee,
        origin: Origin,
    ) -> (usize, Option<SendError>) {
        let to = first.to.clone();
        let mut sent = 0;
        for env in std::iter::once(first).chain(rest.by_ref()) {
            if env.message_type != MessageType::FireAndForget || env.to != to {
                return (sent, Some(SendError::Invalid(env, InvalidEnvelope::NotInBatch)));
            }
            match self.route(env, guarantee, origin, None, true) {
                Ok(()) => sent += 1,
                Err(e) => return (sent, Some(e)),
            }
        }
        (sent, None)
    }

    /// A response goes to the pending table, not a mailbox. Out of line: it keeps `route`
    /// small enough for its calls on the happy path to be inlined.
    #[inline(never)]
    fn route_response(&self, env: MessageEnvelope) -> Result<(), SendError> {
        if env.correlation_id.is_none() {
            return Err(SendError::Invalid(env, InvalidEnvelope::ResponseWithoutCorrelation));
        }
        self.deliver_response(env);
        Ok(())
    }

    /// Counts a refused send in the routing stats (once per send).
    pub(crate) fn count_rejection(&self, e: &SendError) {
        let s = &self.stats;
        match e {
            SendError::Full(_) => s.mailbox_send_failures.add(1),
            SendError::Timeout(_) => s.send_timeouts.add(1),
            SendError::NoSuchComponent(_) => s.components_not_found.add(1),
            SendError::Closed(_) => s.closed_rejections.add(1),
            SendError::PayloadTooLarge(_) | SendError::Invalid(..) => s.invalid_rejections.add(1),
            SendError::Transport(_) => s.transport_rejections.add(1),
        }
    }

    /// Blocking send: waits up to `timeout` for mailbox space. On a worker thread it does
    /// not wait (a full mailbox returns `Full` at once).
    pub(crate) fn send_timeout(
        &self,
        env: MessageEnvelope,
        guarantee: DeliveryGuarantee,
        timeout: Duration,
    ) -> Result<(), SendError> {
        if on_worker_thread() || env.message_type == MessageType::Response {
            return self.send(env, guarantee, Origin::Host);
        }
        let r = (|| {
            // First as a plain send (registry entry pinned, no `Arc` clone, no sender
            // count); only a full mailbox takes the waiting path below.
            let env = match self.route(env, guarantee, Origin::Host, None, false) {
                Err(SendError::Full(env)) => env,
                done => return done,
            };
            let Some(comp) = self.registry.component(&env.to) else {
                #[cfg(all(feature = "cluster", not(loom)))]
                if self.registry.get(&env.to).is_some() {
                    // Another node's component: the bridge's outbound queue was full.
                    return self.forward_waiting(env, guarantee, timeout);
                }
                return Err(SendError::NoSuchComponent(env));
            };
            self.push_waiting(&comp, env, guarantee, timeout)
        })();
        if let Err(e) = &r {
            self.count_rejection(e);
        }
        r
    }
}

impl Inner {
    /// Pushes into `comp` as a counted sender, waiting up to `timeout` for room: the
    /// waiting half of every blocking send (`send_timeout`, and through a `ComponentRef`).
    /// Counts nothing as a rejection (callers do).
    pub(crate) fn push_waiting(
        &self,
        comp: &Arc<Component>,
        env: MessageEnvelope,
        guarantee: DeliveryGuarantee,
        timeout: Duration,
    ) -> Result<(), SendError> {
        let deadline = deadline_after(timeout);
        let mut env = env;
        // The sender counts itself (a permit) only around each push attempt, never while
        // it waits, so a closer never waits for a blocked sender. After the deadline
        // passes it tries once more, in case a slot is free.
        let mut deadline_passed = false;
        loop {
            let letter = Letter::new(env, guarantee, None);
            env = match comp.mailbox.push_counted(letter) {
                Ok(wake) => {
                    self.stats.messages_routed.add(1);
                    if wake == Wake::Schedule {
                        self.enqueue(comp.clone());
                    }
                    return Ok(());
                }
                Err(Refused::Closed(letter)) => return Err(SendError::Closed(letter.env)),
                Err(Refused::Full(letter)) => letter.env,
            };
            if deadline_passed {
                ComponentStats::bump(&comp.stats.rejected_full);
                comp.stats.observe_len(comp.mailbox.capacity());
                return Err(SendError::Timeout(env));
            }
            deadline_passed = !comp.mailbox.wait_for_room(deadline);
        }
    }
}

/// A full mailbox: counts it (unless the sender will wait and try again) and hands the
/// envelope back. Out of line and cold, which keeps `route` small enough for its calls on
/// the happy path to be inlined.
#[cold]
#[inline(never)]
pub(crate) fn full(comp: &Component, env: MessageEnvelope, count: bool) -> SendError {
    if count {
        ComponentStats::bump(&comp.stats.rejected_full);
        comp.stats.observe_len(comp.mailbox.capacity());
    }
    SendError::Full(env)
}
