//! Delegation: a component that was sent a request hands it on to another component
//! ([`crate::Context::forward`]), or keeps it to answer later ([`crate::Context::defer`],
//! [`DeferredReply`]).
//!
//! A request's one outcome is guarded by its entry in the pending table (`request.rs`):
//! only the component the entry names as its *responder* completes it with a response.
//! Handing a request on changes that name, in one step under the entry's shard lock
//! ([`PendingRequests::hand_over`]): from then on the new component answers (or fails) the
//! request, under the request's own deadline, and the one that handed it on can no longer
//! answer it (its reply would be dead-lettered as from an unexpected responder). If the
//! deadline took the entry first, there is nothing to hand on and the requester already
//! has its outcome. A hand-over is made before the request is delivered to the new
//! responder (whose answer could otherwise come first and be refused), and taken back if
//! the delivery fails. The loom model `hand_over_racing_the_deadline` checks the step
//! against the timer, and catches a hand-over made as a removal and a new insertion.
//!
//! A deferred reply keeps what the answer needs (the request without its payload) and
//! answers through the same table: its reply is a response from the component, its
//! failure completes the request as failed if the component is still its responder, and
//! dropping it unanswered fails the request at once, so the requester never waits for
//! an answer nobody will give.

use std::fmt;

use crate::deadletter::DeadLetterReason;
use crate::envelope::{DeliveryGuarantee, MessageEnvelope};
use crate::error::{RequestError, SendError};
use crate::id::ComponentId;
use crate::request::{PendingRequests, Ticket};
use crate::runtime::Inner;
use crate::send::Origin;

/// Handing a request on failed ([`crate::Context::forward`]).
#[derive(Debug)]
#[non_exhaustive]
// The envelope is handed back by value, as `SendError` does (the crate's rule).
#[allow(clippy::large_enum_variant)]
pub enum ForwardError {
    /// The message being handled is not a request.
    NotARequest,
    /// The request is no longer this component's to hand on: it was answered or handed
    /// on already, or its deadline passed (its requester has its outcome).
    NotPending,
    /// The new responder did not take it (the envelope, addressed to it, is handed back);
    /// the request is still this component's to answer.
    Send(SendError),
    /// The new payload could not be encoded (nothing was handed on).
    Encode(crate::codec::CodecError),
}

impl fmt::Display for ForwardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardError::NotARequest => f.write_str("only a request can be forwarded"),
            ForwardError::NotPending => {
                f.write_str("the request is no longer this component's to forward (answered, forwarded or timed out)")
            }
            ForwardError::Send(e) => write!(f, "the request could not be forwarded: {e}"),
            ForwardError::Encode(e) => write!(f, "the request could not be forwarded: {e}"),
        }
    }
}

impl std::error::Error for ForwardError {}

/// A forward that failed fails the message being handled (the request, if it is still
/// this component's, is then failed with it).
impl From<ForwardError> for crate::error::HandlerError {
    fn from(e: ForwardError) -> Self {
        crate::error::HandlerError::new(e)
    }
}

impl PendingRequests {
    /// Makes `to` the responder of the request pending under `id`, if `from` is: one step
    /// under the entry's shard lock, so a deadline or a response sees the entry before or
    /// after, never without it. True when handed over.
    /// With a `ticket`, only that registration of the id is handed over.
    pub(crate) fn hand_over(&self, id: &str, ticket: Option<Ticket>, from: &ComponentId, to: &ComponentId) -> bool {
        let (from, to) = (from.fingerprint(), to.fingerprint());
        #[cfg(loom)]
        if self.fault == crate::mailbox::Fault::HandOverByReinsert {
            // The broken variant: take the entry out, then put a changed one back. A
            // deadline in between finds nothing to complete, and the entry put back then
            // waits for a deadline that has passed.
            let Some(mut pending) = self.take_responded_by(id, from, ticket) else {
                return false;
            };
            crate::sync::yield_now();
            pending.responder = to;
            return self.insert(id.into(), pending).is_ok();
        }
        let mut handed = false;
        self.update_in_place(id, |p| {
            if p.responder == from && ticket.is_none_or(|t| t.admits(p)) {
                p.responder = to;
                handed = true;
            }
        });
        handed
    }
}

impl Inner {
    /// Hands `request`, which `me` is handling, on to `to` (see the module doc).
    ///
    /// With `payload`, the request goes on with that payload and codec instead of its own
    /// (the same request: its id, requester and deadline).
    pub(crate) fn forward(
        &self,
        me: &ComponentId,
        request: &MessageEnvelope,
        ticket: Option<Ticket>,
        to: &ComponentId,
        payload: Option<(Vec<u8>, u64)>,
        origin: Origin,
    ) -> Result<(), ForwardError> {
        if !request.is_request() {
            return Err(ForwardError::NotARequest);
        }
        let id = &request.message_id;
        if !self.pending.hand_over(id, ticket, me, to) {
            return Err(ForwardError::NotPending);
        }
        let mut env = match payload {
            Some((payload, codec)) => MessageEnvelope { payload, codec, ..request.clone() },
            None => request.clone(),
        };
        env.to = to.clone();
        match self.route(env, DeliveryGuarantee::AtMostOnce, origin, ticket, true) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.count_rejection(&e);
                // Still ours, unless the deadline took it meanwhile.
                self.pending.hand_over(id, ticket, to, me);
                Err(ForwardError::Send(e))
            }
        }
    }

    /// Fails `request` as its responder `request.to`: the requester gets
    /// [`RequestError::Failed`] with `reason`. Nothing happens if the request is no
    /// longer pending for that responder.
    pub(crate) fn fail_as_responder(
        &self,
        request: &MessageEnvelope,
        ticket: Option<Ticket>,
        reason: DeadLetterReason,
    ) {
        if let Some(pending) = self.pending.take_responded_by(&request.message_id, request.to.fingerprint(), ticket) {
            self.cancel_deadline(&pending.requester, pending.deadline);
            self.complete(pending, &request.message_id, Err(RequestError::Failed(reason)));
        }
    }
}

/// A request kept to be answered later ([`crate::Context::defer`]): from another message,
/// a callback, another thread. Answer it once with [`DeferredReply::reply`] (or
/// [`DeferredReply::reply_with`]) or fail it with [`DeferredReply::fail`]; dropping it
/// unanswered fails the request at once. An answer after the request's deadline is
/// dead-lettered as a late reply, as any late reply is. `Send`, so it can travel.
#[cfg(not(loom))]
pub struct DeferredReply {
    inner: std::sync::Weak<Inner>,
    /// The request without its payload: what the answer needs.
    request: MessageEnvelope,
    /// Which registration of the request's id this answers.
    ticket: Option<Ticket>,
    answered: bool,
}

#[cfg(not(loom))]
impl fmt::Debug for DeferredReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeferredReply").field("request_id", &self.request.message_id).finish()
    }
}

#[cfg(not(loom))]
impl DeferredReply {
    pub(crate) fn new(inner: std::sync::Weak<Inner>, request: &MessageEnvelope, ticket: Option<Ticket>) -> Self {
        let mut request = MessageEnvelope { payload: Vec::new(), ..request.clone() };
        request.payload.shrink_to_fit();
        Self { inner, request, ticket, answered: false }
    }

    /// The request's id (its response's correlation id).
    pub fn request_id(&self) -> &str {
        &self.request.message_id
    }

    /// Who asked.
    pub fn requester(&self) -> &ComponentId {
        &self.request.from
    }

    /// True while the request waits for this answer: false once it timed out, was failed,
    /// or its runtime is gone (an answer then would be a late reply).
    pub fn is_pending(&self) -> bool {
        self.inner.upgrade().is_some_and(|inner| {
            inner.pending.is_pending_for(&self.request.message_id, self.request.to.fingerprint(), self.ticket)
        })
    }

    /// Answers the request with `payload` in `codec`.
    pub fn reply(mut self, payload: Vec<u8>, codec: u64) {
        self.answered = true;
        if let Some(inner) = self.inner.upgrade() {
            inner.deliver_response_to(self.request.reply_to(payload, codec, crate::new_message_id()), self.ticket);
        }
    }

    /// Answers the request with a typed value, in the request's codec when it is a serde
    /// codec (JSON or CBOR), else in the runtime's ([`crate::RuntimeBuilder::codec`]).
    ///
    /// # Errors
    /// The value cannot be encoded: the request is failed with the reason, and the error
    /// returned.
    pub fn reply_with<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Result<(), crate::codec::CodecError> {
        let Some(inner) = self.inner.upgrade() else {
            self.answered = true;
            return Ok(());
        };
        let code = if crate::codec::is_serde(self.request.codec) { self.request.codec } else { inner.config.codec };
        match crate::codec::encode(code, value) {
            Ok(e) => {
                self.answered = true;
                let response = self.request.reply_to(e.bytes, e.code, crate::new_message_id());
                inner.deliver_response_to(response, self.ticket);
                Ok(())
            }
            Err(e) => {
                self.fail_now(&inner, e.to_string());
                Err(e)
            }
        }
    }

    /// Fails the request: its requester gets [`RequestError::Failed`] with a
    /// [`DeadLetterReason::HandlerFailed`] carrying `reason`.
    pub fn fail(mut self, reason: impl fmt::Display) {
        if let Some(inner) = self.inner.upgrade() {
            self.fail_now(&inner, reason.to_string());
        }
        self.answered = true;
    }

    fn fail_now(&mut self, inner: &Inner, error: String) {
        self.answered = true;
        let reason = DeadLetterReason::HandlerFailed { error, code: None, attempts: 1 };
        inner.fail_as_responder(&self.request, self.ticket, reason);
    }
}

#[cfg(not(loom))]
impl Drop for DeferredReply {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade().filter(|_| !self.answered) {
            self.fail_now(&inner, "the deferred reply was dropped without an answer".to_string());
        }
    }
}
