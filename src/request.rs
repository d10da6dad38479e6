//! Requests: the table of pending requests, and how a request starts, is answered,
//! expires or fails.
//!
//! Exactly one outcome per request: a response, the timer's expiry, a dead-lettered request
//! and shutdown all complete a request by *removing* its entry from the pending table, and
//! only the one that removes it delivers an outcome. Whoever comes second finds nothing: a
//! late response is dead-lettered, a late expiry does nothing. A response completes a
//! request only if it comes from the component the request was sent to; an expiry only if
//! it is the request's own deadline entry (not an older one under a reused id). A request
//! that completes before its deadline takes its entry out of the timer, so the timer holds
//! requests in flight only (`docs/design.md`, "Request completion").

use std::time::Duration;

use crate::component::Component;
use crate::deadletter::DeadLetterReason;
use crate::envelope::{DeliveryGuarantee, MessageEnvelope, MessageId, MessageType};
use crate::error::{InvalidEnvelope, RequestError, SendError};
use crate::id::{ComponentId, IdBuildHasher};
use crate::mailbox::{Outcome, Wake};
use crate::reply::{ReplyHandle, ReplySlot};
use crate::runtime::{Inner, deadline_after};
use crate::send::Origin;
use crate::sync::Arc;
use crate::sync::map::ShardedMap;
use crate::timer::{TimerEvent, TimerKey};

/// Which registration of a request id a letter, a reply or a kept request belongs to (the
/// sequence number of the request's deadline entry). A requester may use an id again once
/// its request ended; a copy of the earlier request, still queued or being handled,
/// carries the earlier ticket, and its answer is a late reply, not the newer request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(std::num::NonZeroU64);

impl Ticket {
    /// The ticket of the request whose deadline entry is `key`.
    pub(crate) fn of(key: TimerKey) -> Self {
        Self(std::num::NonZeroU64::MIN.saturating_add(key.seq()))
    }

    /// True when `pending` is the registration this ticket belongs to.
    pub(crate) fn admits(self, pending: &Pending) -> bool {
        Ticket::of(pending.deadline) == self
    }
}

/// Who waits for a request's outcome.
#[derive(Clone)]
pub(crate) enum Requester {
    /// A host thread, through a [`ReplyHandle`].
    Host(Arc<ReplySlot>),
    /// A component, through its `handle_callback`.
    Component(Arc<Component>),
    /// A requester on another node of the cluster, through the bridge.
    #[cfg(all(feature = "cluster", not(loom)))]
    Remote(std::sync::Arc<crate::cluster::RemoteReply>),
}

/// A request awaiting its outcome.
#[derive(Clone)]
pub(crate) struct Pending {
    pub(crate) requester: Requester,
    /// The component the request was sent to (its fingerprint): only its response
    /// completes the request. A fingerprint rather than the id: no reference count is
    /// bumped here and dropped on the responder's worker, per request.
    pub(crate) responder: u64,
    /// The request's entry in the timer, cancelled when another outcome comes first.
    pub(crate) deadline: TimerKey,
    /// When it was made, with `RuntimeConfig::timing_metrics` on.
    #[cfg(all(feature = "metrics", not(loom)))]
    pub(crate) started: Option<std::time::Instant>,
}

/// What a response found in the pending table.
pub(crate) enum ResponseMatch {
    /// The request was pending and awaited this responder: it is now the caller's to
    /// complete.
    Taken(Pending),
    /// The request is pending, but for another responder; it stays pending.
    WrongResponder,
    /// The id is pending again, for a newer request: the response answers an earlier one
    /// under the same id (a late reply).
    Stale,
    /// No such request is pending (it completed, timed out, or never existed).
    NotPending,
}

/// The pending-request table, keyed by the request's `message_id`.
pub(crate) struct PendingRequests {
    map: ShardedMap<MessageId, Pending, IdBuildHasher>,
    #[cfg(loom)]
    pub(crate) fault: crate::mailbox::Fault,
}

impl PendingRequests {
    pub(crate) fn new() -> Self {
        Self {
            map: ShardedMap::new(),
            #[cfg(loom)]
            fault: crate::mailbox::Fault::None,
        }
    }

    /// Records a request; hands the entry back if the id is already pending.
    pub(crate) fn insert(&self, id: MessageId, pending: Pending) -> Result<(), Pending> {
        self.map.insert_new(id, pending)
    }

    /// Removes the entry if `accept` approves of it: the caller then owns delivering the
    /// request's one outcome. `None` in the first place when nothing is pending under
    /// `id`; `Some(false)` when something is but `accept` refused it.
    fn take_if(&self, id: &str, accept: impl FnOnce(&Pending) -> bool) -> Result<Pending, bool> {
        #[cfg(loom)]
        if self.fault == crate::mailbox::Fault::PeekThenRemove {
            // The classic check-then-act bug: look, act on what was seen, remove later.
            let seen = self.map.with(id, |p| (accept(p), p.clone()));
            crate::sync::yield_now();
            let _ = self.map.remove(id);
            return match seen {
                Some((true, p)) => Ok(p),
                Some((false, _)) => Err(true),
                None => Err(false),
            };
        }
        let mut present = false;
        self.map
            .remove_if(id, |p| {
                present = true;
                accept(p)
            })
            .ok_or(present)
    }

    /// Completion by the request's responder (a deferred reply failing it): the entry is
    /// taken only if `responder` (a fingerprint) still answers it, and it is the
    /// registration `ticket` names (when known).
    pub(crate) fn take_responded_by(&self, id: &str, responder: u64, ticket: Option<Ticket>) -> Option<Pending> {
        self.take_if(id, |p| p.responder == responder && ticket.is_none_or(|t| t.admits(p))).ok()
    }

    /// Changes the entry under `id` in place, under its shard's write lock.
    pub(crate) fn update_in_place(&self, id: &str, f: impl FnOnce(&mut Pending)) {
        self.map.update_or_remove(id, |p| {
            f(p);
            true
        });
    }

    /// Completion by a response from `from`, answering the registration `ticket` names
    /// (`None`: a response made without one, e.g. by another node, matched by id).
    pub(crate) fn take_response(&self, id: &str, from: &ComponentId, ticket: Option<Ticket>) -> ResponseMatch {
        #[cfg(loom)]
        let ticket = ticket.filter(|_| self.fault != crate::mailbox::Fault::ResponseById);
        let mut stale = false;
        let r = self.take_if(id, |p| {
            stale = ticket.is_some_and(|t| !t.admits(p));
            p.responder == from.fingerprint() && !stale
        });
        match r {
            Ok(p) => ResponseMatch::Taken(p),
            Err(true) if stale => ResponseMatch::Stale,
            Err(true) => ResponseMatch::WrongResponder,
            Err(false) => ResponseMatch::NotPending,
        }
    }

    /// Completion by the deadline under `key`: a newer request that reuses the id (with
    /// another deadline entry) is left alone.
    pub(crate) fn take_expired(&self, id: &str, key: TimerKey) -> Option<Pending> {
        #[cfg(loom)]
        if self.fault == crate::mailbox::Fault::ExpireById {
            return self.take_if(id, |_| true).ok();
        }
        self.take_if(id, |p| p.deadline == key).ok()
    }

    /// Completion by the runtime itself (the request was dead-lettered or not delivered).
    pub(crate) fn take(&self, id: &str) -> Option<Pending> {
        self.take_if(id, |_| true).ok()
    }

    /// True while the request `ticket` names awaits its outcome from `responder` (a
    /// fingerprint).
    #[cfg(not(loom))]
    pub(crate) fn is_pending_for(&self, id: &str, responder: u64, ticket: Option<Ticket>) -> bool {
        self.map.with(id, |p| p.responder == responder && ticket.is_none_or(|t| t.admits(p))).unwrap_or(false)
    }

    /// True while the request `ticket` names awaits its outcome.
    pub(crate) fn holds(&self, id: &str, ticket: Ticket) -> bool {
        self.map.with(id, |p| ticket.admits(p)).unwrap_or(false)
    }

    /// True while the request awaits its outcome under this deadline entry.
    pub(crate) fn is_pending_with(&self, id: &str, key: TimerKey) -> bool {
        self.map.with(id, |p| p.deadline == key).unwrap_or(false)
    }

    /// The deadline entry of a pending request.
    #[cfg(any(loom, feature = "cluster"))]
    pub(crate) fn deadline_of(&self, id: &str) -> Option<TimerKey> {
        self.map.with(id, |p| p.deadline)
    }

    /// Removes every entry (shutdown).
    pub(crate) fn drain(&self) -> Vec<(MessageId, Pending)> {
        self.map.drain()
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

impl Inner {
    /// Records a request, delivers it, and starts its deadline. On failure no outcome
    /// will come: the pending entry is withdrawn and the envelope handed back.
    fn start_request(
        &self,
        env: MessageEnvelope,
        requester: Requester,
        timeout: Duration,
        origin: Origin,
    ) -> Result<TimerKey, SendError> {
        self.start_request_with(env, requester, timeout, origin, |env, ticket| {
            self.route(env, DeliveryGuarantee::AtMostOnce, origin, Some(ticket), true)
        })
    }

    /// As [`Inner::start_request`], delivering the request with `deliver` (a tracked
    /// letter: its requester waits in the pending table).
    fn start_request_with(
        &self,
        env: MessageEnvelope,
        requester: Requester,
        timeout: Duration,
        origin: Origin,
        deliver: impl FnOnce(MessageEnvelope, Ticket) -> Result<(), SendError>,
    ) -> Result<TimerKey, SendError> {
        if env.message_type != MessageType::Request {
            return Err(SendError::Invalid(env, InvalidEnvelope::NotARequest));
        }
        if let Err(r) = self.precheck(&env, origin) {
            return Err(r.with(env));
        }
        let id = env.message_id.clone();
        #[cfg(all(feature = "tracing", not(loom)))]
        crate::trace::request(&env, timeout);
        let deadline = self.timer.key(deadline_after(timeout));
        let host = matches!(requester, Requester::Host(_));
        let pending = Pending {
            requester,
            responder: env.to.fingerprint(),
            deadline,
            #[cfg(all(feature = "metrics", not(loom)))]
            started: self.config.timing_metrics.then(std::time::Instant::now),
        };
        if self.pending.insert(id.clone(), pending).is_err() {
            return Err(SendError::Invalid(env, InvalidEnvelope::DuplicateRequestId));
        }
        if let Err(e) = deliver(env, Ticket::of(deadline)) {
            // Not delivered: no outcome will come, so withdraw the pending entry.
            let _ = self.pending.take(&id);
            return Err(e);
        }
        // The deadline goes in after the delivery, so an expiry can never complete a
        // request whose send then failed.
        if self.timer.schedule(deadline, TimerEvent::ExpireRequest(id.clone())).is_err() {
            // The timer stopped (shutdown): fail the request now rather than never.
            self.expire_request(&id, deadline, RequestError::Shutdown);
        } else if !host && !self.pending.is_pending_with(&id, deadline) && !self.skips_deadline_recheck() {
            // A component's request: an outcome that came first found no timer entry to
            // cancel, so take ours out again; the timer only holds entries of requests in
            // flight. Every completer removes the pending entry before it cancels, so
            // whichever of the two comes second removes the timer entry. (A host's request
            // needs no such check: its own handle cancels the entry once the outcome is
            // taken or the handle dropped, on this same thread, after this.)
            self.timer.cancel(deadline);
        }
        Ok(deadline)
    }

    /// Takes out the deadline entry of a request that completed otherwise. A host's
    /// request is left to its handle (the requester's own thread cancels, after it has
    /// the outcome: off the responder's path and the round trip's).
    pub(crate) fn cancel_deadline(&self, requester: &Requester, deadline: TimerKey) {
        if !matches!(requester, Requester::Host(_)) {
            self.timer.cancel(deadline);
        }
    }

    /// A request from the host: its outcome lands in the returned handle.
    pub(crate) fn request_host(&self, env: MessageEnvelope, timeout: Duration) -> Result<ReplyHandle, SendError> {
        self.request_host_with(env, timeout, |env, ticket| {
            self.route(env, DeliveryGuarantee::AtMostOnce, Origin::Host, Some(ticket), true)
        })
    }

    /// A request from the host, delivered with `deliver` (a tracked letter), e.g. through
    /// a [`crate::ComponentRef`].
    pub(crate) fn request_host_with(
        &self,
        env: MessageEnvelope,
        timeout: Duration,
        deliver: impl FnOnce(MessageEnvelope, Ticket) -> Result<(), SendError>,
    ) -> Result<ReplyHandle, SendError> {
        let slot = Arc::new(ReplySlot::new());
        let id = env.message_id.clone();
        let r = self.start_request_with(env, Requester::Host(slot.clone()), timeout, Origin::Host, deliver);
        match r {
            Ok(deadline) => Ok(ReplyHandle::new(slot, id, self.timer.clone(), deadline)),
            Err(e) => {
                self.count_rejection(&e);
                Err(e)
            }
        }
    }

    /// A request from a component's handler: its outcome arrives in the component's
    /// outcome lane, then its `handle_callback`. Returns the request id.
    pub(crate) fn request_from_component(
        &self,
        me: &Arc<Component>,
        env: MessageEnvelope,
        timeout: Duration,
    ) -> Result<MessageId, SendError> {
        let id = env.message_id.clone();
        match self.start_request(env, Requester::Component(me.clone()), timeout, Origin::Worker) {
            Ok(_) => Ok(id),
            Err(e) => {
                self.count_rejection(&e);
                Err(e)
            }
        }
    }

    /// Routes a response to whoever waits for it, or dead-letters it as a late reply.
    pub(crate) fn deliver_response(&self, env: MessageEnvelope) {
        self.deliver_response_to(env, None);
    }

    /// As [`Inner::deliver_response`], answering the registration of the request id that
    /// `ticket` names (the letter the responder handled): an answer to an earlier request
    /// under a reused id is a late reply.
    pub(crate) fn deliver_response_to(&self, env: MessageEnvelope, ticket: Option<Ticket>) {
        let Some(corr) = env.correlation_id.as_deref() else {
            self.dead_letter_at_send(env, DeadLetterReason::Invalid);
            return;
        };
        match self.pending.take_response(corr, &env.from, ticket) {
            ResponseMatch::Taken(pending) => {
                // Only a component's callback needs the id (the host's slot does not): copy
                // it out of the envelope for that case alone.
                let id = match pending.requester {
                    Requester::Component(_) => corr.to_string(),
                    _ => String::new(),
                };
                self.cancel_deadline(&pending.requester, pending.deadline);
                self.complete(pending, &id, Ok(env));
            }
            ResponseMatch::WrongResponder => self.dead_letter_at_send(env, DeadLetterReason::UnexpectedResponder),
            ResponseMatch::NotPending | ResponseMatch::Stale => {
                self.dead_letter_at_send(env, DeadLetterReason::LateReply);
            }
        }
    }

    /// The timer's action at a request's deadline (or shutdown's): the request under
    /// `id` completes with `why` if it is still pending under this deadline entry.
    pub(crate) fn expire_request(&self, id: &str, deadline: TimerKey, why: RequestError) {
        if let Some(pending) = self.pending.take_expired(id, deadline) {
            if why == RequestError::Timeout {
                self.stats.requests_timed_out.add(1);
            }
            self.complete(pending, id, Err(why));
        }
    }

    /// Delivers a request's one outcome (the caller removed its pending entry).
    pub(crate) fn complete(&self, pending: Pending, request_id: &str, result: Result<MessageEnvelope, RequestError>) {
        #[cfg(any(feature = "metrics", feature = "tracing"))]
        let outcome = match &result {
            Ok(_) => "response",
            Err(RequestError::Timeout) => "timeout",
            Err(_) => "failed",
        };
        #[cfg(all(feature = "metrics", not(loom)))]
        if let Some(started) = pending.started {
            crate::metrics::request_finished(started.elapsed(), outcome);
        }
        #[cfg(all(feature = "tracing", not(loom)))]
        crate::trace::request_outcome(
            match &pending.requester {
                Requester::Component(comp) => comp.id.as_str(),
                Requester::Host(_) => "host",
                #[cfg(all(feature = "cluster", not(loom)))]
                Requester::Remote(_) => "remote",
            },
            request_id,
            outcome,
        );
        match pending.requester {
            Requester::Host(slot) => {
                if result.is_ok() {
                    self.stats.messages_routed.add(1);
                    self.stats.messages_handled.add(1);
                }
                slot.complete(result);
            }
            Requester::Component(comp) => {
                let is_message = result.is_ok();
                // A component's callback gets the id (an allocation the host's slot needs not).
                let request_id = request_id.to_string();
                match comp.mailbox.push_outcome(Outcome { request_id, result }) {
                    Ok(wake) => {
                        if is_message {
                            self.stats.messages_routed.add(1);
                        }
                        if wake == Wake::Schedule {
                            self.enqueue(comp);
                        }
                    }
                    Err(Outcome { result, .. }) => {
                        // The requester closed: a response is dead-lettered; a timeout or
                        // failure notice is not a message and goes nowhere.
                        if let Ok(env) = result {
                            crate::stats::ComponentStats::bump(&comp.stats.dead_lettered);
                            #[cfg(all(feature = "metrics", not(loom)))]
                            crate::metrics::component_dead_letter(&comp.id, &DeadLetterReason::Closed);
                            self.dead_letter_at_send(env, DeadLetterReason::Closed);
                        }
                    }
                }
            }
            #[cfg(all(feature = "cluster", not(loom)))]
            Requester::Remote(remote) => {
                if result.is_ok() {
                    // The response is a message: routed to the bridge, which counts it
                    // forwarded once published (or dead-letters it).
                    self.stats.messages_routed.add(1);
                }
                if let Some(env) = remote.bridge.answer(remote.reply_to.clone(), result) {
                    let detail = "this node left the cluster before the response could go".to_string();
                    self.dead_letter_only(env, DeadLetterReason::Transport { detail });
                }
            }
        }
    }

    /// Fails the request pending under `id`, if it still is, with `reason` (another node
    /// refused it or could not be reached).
    #[cfg(all(feature = "cluster", not(loom)))]
    pub(crate) fn fail_request(&self, id: &str, deadline: Option<TimerKey>, reason: DeadLetterReason) {
        // Only the request this outcome belongs to: one that timed out here may have been
        // followed by a newer request under the same id.
        let pending = match deadline {
            Some(key) => self.pending.take_expired(id, key),
            None => None,
        };
        if let Some(pending) = pending {
            self.cancel_deadline(&pending.requester, pending.deadline);
            self.complete(pending, id, Err(RequestError::Failed(reason)));
        }
    }

    /// A request from another node's requester, whose outcome goes back through the
    /// bridge. Refused (and counted) like a host's request while the runtime shuts down.
    #[cfg(all(feature = "cluster", not(loom)))]
    pub(crate) fn request_from_cluster(
        &self,
        env: MessageEnvelope,
        timeout: Duration,
        remote: crate::cluster::RemoteReply,
    ) -> Result<(), SendError> {
        match self.start_request(env, Requester::Remote(std::sync::Arc::new(remote)), timeout, Origin::Host) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.count_rejection(&e);
                Err(e)
            }
        }
    }

    /// Stops the timer and fails every host request still pending.
    pub(crate) fn fail_pending(&self) -> u64 {
        // The entries that never fired are dropped: every request they belong to is
        // failed below, and a restart backoff no longer matters.
        let _ = self.timer.stop();
        let mut failed = 0;
        for (id, pending) in self.pending.drain() {
            if matches!(pending.requester, Requester::Host(_)) {
                failed += 1;
            }
            self.complete(pending, &id, Err(RequestError::Shutdown));
        }
        failed
    }

    /// True if the requester must not take a late deadline entry out (a loom fault).
    fn skips_deadline_recheck(&self) -> bool {
        #[cfg(loom)]
        return self.fault == crate::mailbox::Fault::SkipDeadlineRecheck;
        #[cfg(not(loom))]
        false
    }

    /// Requests awaiting an outcome.
    pub(crate) fn pending_requests(&self) -> usize {
        self.pending.len()
    }
}
