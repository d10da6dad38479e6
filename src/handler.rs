//! The executor trait a component's behaviour implements, and the context a handler gets.
//!
//! [`Handler`] is the one seam between the engine and what a component does: native Rust
//! handlers implement it directly (or through [`handler_fn`]); the WASM executor implements
//! it for guest instances. The engine calls a handler on one worker thread at a time, so a
//! handler is `&mut self` and needs no locks of its own.

use std::time::Duration;

use crate::component::Component;
#[cfg(not(loom))]
use crate::delegation::DeferredReply;
use crate::delegation::ForwardError;
use crate::envelope::{DeliveryGuarantee, MessageEnvelope, MessageType, new_message_id};
use crate::error::{BatchError, HandlerError, ReplyError, RequestError, SendError};
use crate::health::Health;
use crate::id::ComponentId;
use crate::request::Ticket;
use crate::runtime::Inner;
use crate::send::Origin;
use crate::sync::Arc;
use crate::topics::PublishReport;

/// What a component does with its messages.
///
/// Called on the component's worker thread, one message at a time. Must not block for
/// long: a handler that blocks holds up every component sharing its worker. Use
/// [`Context::request`] (the response arrives later through [`Handler::handle_callback`])
/// instead of waiting for a response.
///
/// A panic in any method is caught: the message is redelivered or dead-lettered, and the
/// component is restarted from its factory under its [`crate::Supervision`].
pub trait Handler: Send + 'static {
    /// Runs once when the handler is made (at registration and after each restart),
    /// before any message. An error counts as a crash.
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
        let _ = ctx;
        Ok(())
    }

    /// Handles one message.
    ///
    /// For a [`MessageType::Request`], returning `Ok(Some(payload))` replies with that
    /// payload (in the request's codec) unless the handler already replied through
    /// [`Context::reply`]; returning `Ok(None)` leaves the request to be answered later or
    /// to time out. An `Err` fails the message: it is redelivered (at-least-once) or
    /// dead-lettered, and a waiting requester gets [`RequestError::Failed`].
    fn handle(&mut self, ctx: &mut Context<'_>, msg: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError>;

    /// Receives the outcome of a request this component made with [`Context::request`]:
    /// the response envelope, or why there is none (timeout, failure, shutdown).
    fn handle_callback(
        &mut self,
        ctx: &mut Context<'_>,
        request_id: &str,
        outcome: Result<&MessageEnvelope, &RequestError>,
    ) -> Result<(), HandlerError> {
        let _ = (ctx, request_id, outcome);
        Ok(())
    }

    /// Answers a health check ([`crate::RuntimeHandle::health`]): whether the component
    /// can do its job. Called on the component's worker between two messages, before the
    /// rest of its mailbox; it should answer from what the handler knows (keep a flag
    /// that `handle` updates rather than call out, since a slow check holds the worker as
    /// a slow message does). The default answers [`Health::Healthy`].
    ///
    /// A panic is caught: the check is answered [`crate::HealthStatus::Unhealthy`] with
    /// the panic's text, and the component is restarted as after a crash.
    fn health(&mut self, ctx: &mut Context<'_>) -> Health {
        let _ = ctx;
        Health::Healthy
    }
}

/// A [`Handler`] made of a closure; see [`handler_fn`].
pub struct FnHandler<F>(F);

/// Wraps a closure as a [`Handler`] (the closure may own state: it is `FnMut`).
///
/// ```
/// use switchyard::{handler_fn, Handler};
/// let mut count = 0u64;
/// let h = handler_fn(move |_ctx, _msg| {
///     count += 1;
///     Ok(None)
/// });
/// # fn is_handler(_: impl Handler) {}
/// # is_handler(h);
/// ```
pub fn handler_fn<F>(f: F) -> FnHandler<F>
where
    F: FnMut(&mut Context<'_>, &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> + Send + 'static,
{
    FnHandler(f)
}

impl<F> Handler for FnHandler<F>
where
    F: FnMut(&mut Context<'_>, &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> + Send + 'static,
{
    fn handle(&mut self, ctx: &mut Context<'_>, msg: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
        (self.0)(ctx, msg)
    }
}

/// What a handler can do while it runs: send, request, publish, reply, subscribe, stop.
///
/// Sends from a handler never block: a full target returns [`SendError::Full`] at once
/// with the envelope, which the handler may retry later, drop knowingly, or return as an
/// error.
pub struct Context<'a> {
    inner: &'a Inner,
    me: &'a Arc<Component>,
    current: Option<&'a MessageEnvelope>,
    /// The registration of the current request's id (see `crate::request::Ticket`).
    ticket: Option<Ticket>,
    attempt: u32,
    replied: bool,
    stop: bool,
    crashed: bool,
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        inner: &'a Inner,
        me: &'a Arc<Component>,
        current: Option<&'a MessageEnvelope>,
        attempt: u32,
    ) -> Self {
        Self { inner, me, current, ticket: None, attempt, replied: false, stop: false, crashed: false }
    }

    /// The context of a letter: its request is the registration `ticket` names.
    pub(crate) fn ticketed(mut self, ticket: Option<Ticket>) -> Self {
        self.ticket = ticket;
        self
    }

    /// The registration of the current request's id.
    #[cfg(feature = "wasm")]
    pub(crate) fn ticket(&self) -> Option<Ticket> {
        self.ticket
    }

    /// This component's id.
    pub fn id(&self) -> &ComponentId {
        &self.me.id
    }

    /// Which delivery of the current message this is: 1 for the first, more for
    /// redeliveries of a failed at-least-once message.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// True when the current message was handed to this component before and failed.
    pub fn is_redelivery(&self) -> bool {
        self.attempt > 1
    }

    /// An envelope from this component with a fresh message id.
    pub fn envelope(
        &self,
        message_type: MessageType,
        to: ComponentId,
        payload: Vec<u8>,
        codec: u64,
    ) -> MessageEnvelope {
        MessageEnvelope::new(message_type, self.me.id.clone(), to, payload, codec, new_message_id())
    }

    /// Sends a message (at-most-once). Never blocks.
    ///
    /// # Errors
    /// [`SendError`] with the envelope handed back.
    pub fn send(&mut self, env: MessageEnvelope) -> Result<(), SendError> {
        self.inner.send(env, DeliveryGuarantee::AtMostOnce, Origin::Worker)
    }

    /// Sends a batch of one-way messages to one component with one routing (see
    /// [`crate::RuntimeHandle::send_batch`]): for a handler that fans out many messages to
    /// the same component. Never blocks.
    ///
    /// # Errors
    /// [`BatchError`]: how many went in, and the rest handed back in order.
    pub fn send_batch(&mut self, batch: Vec<MessageEnvelope>) -> Result<(), BatchError> {
        self.inner.send_batch(batch, DeliveryGuarantee::AtMostOnce, Origin::Worker)
    }

    /// Sends a message with the given delivery guarantee. Never blocks.
    ///
    /// # Errors
    /// [`SendError`] with the envelope handed back.
    pub fn send_with(&mut self, env: MessageEnvelope, guarantee: DeliveryGuarantee) -> Result<(), SendError> {
        self.inner.send(env, guarantee, Origin::Worker)
    }

    /// Sends a request; its outcome arrives later through [`Handler::handle_callback`] with
    /// the returned request id (the request's `message_id`): the response, or
    /// [`RequestError::Timeout`] after `timeout`. Never blocks.
    ///
    /// # Errors
    /// [`SendError`] with the envelope handed back; then no callback will come.
    pub fn request(&mut self, env: MessageEnvelope, timeout: Duration) -> Result<crate::MessageId, SendError> {
        self.inner.request_from_component(self.me, env, timeout)
    }

    /// Publishes to every subscriber of the envelope's topic. Never blocks.
    ///
    /// # Errors
    /// [`SendError`] when the envelope is not a publish with a topic, or too large.
    pub fn publish(&mut self, env: MessageEnvelope) -> Result<PublishReport, SendError> {
        self.inner.publish(env, Origin::Worker)
    }

    /// Subscribes this component to `topic`.
    pub fn subscribe(&mut self, topic: &str) {
        self.inner.subscribe(topic, self.me.id.clone());
    }

    /// Unsubscribes this component from `topic`.
    pub fn unsubscribe(&mut self, topic: &str) {
        self.inner.unsubscribe(topic, &self.me.id);
    }

    /// Answers the request being handled.
    ///
    /// # Errors
    /// [`ReplyError::NotARequest`] outside a request, [`ReplyError::AlreadyReplied`] on a
    /// second reply. A reply that arrives after the requester timed out is dead-lettered as
    /// [`crate::DeadLetterReason::LateReply`] (not an error for the replier).
    pub fn reply(&mut self, payload: Vec<u8>, codec: u64) -> Result<(), ReplyError> {
        let Some(req) = self.current.filter(|m| m.is_request()) else {
            return Err(ReplyError::NotARequest);
        };
        if self.replied {
            return Err(ReplyError::AlreadyReplied);
        }
        self.replied = true;
        let resp = req.reply_to(payload, codec, new_message_id());
        self.inner.deliver_response_to(resp, self.ticket);
        Ok(())
    }

    /// The runtime, for the typed layer's sends.
    pub(crate) fn runtime(&self) -> &Inner {
        self.inner
    }

    /// The codec typed sends and replies use when the request's is not one of them.
    pub(crate) fn default_codec(&self) -> u64 {
        self.inner.config.codec
    }

    /// The message being handled (`None` in `init`, a callback or a health check).
    pub fn message(&self) -> Option<&MessageEnvelope> {
        self.current
    }

    /// Hands the request being handled on to component `to`: its answer, or its failure,
    /// becomes the requester's one outcome, under the request's own deadline; this
    /// component's reply (the handler's return value included) is then ignored. `to` may be
    /// on another node. Never blocks.
    ///
    /// # Errors
    /// [`ForwardError::NotARequest`] outside a request, [`ForwardError::NotPending`] when
    /// it is no longer this component's to hand on (answered, handed on, timed out), and
    /// [`ForwardError::Send`] when `to` did not take it (then the request is still this
    /// component's to answer).
    pub fn forward(&mut self, to: &ComponentId) -> Result<(), ForwardError> {
        let Some(req) = self.current.filter(|m| m.is_request()) else {
            return Err(ForwardError::NotARequest);
        };
        if self.replied {
            return Err(ForwardError::NotPending);
        }
        self.inner.forward(&self.me.id, req, self.ticket, to, None, Origin::Worker)?;
        self.replied = true;
        Ok(())
    }

    /// As [`Context::forward`], handing the request on with a new payload: a typed value,
    /// encoded with the runtime's codec. The new responder answers the original requester,
    /// under the original deadline.
    ///
    /// # Errors
    /// As [`Context::forward`], and [`ForwardError::Encode`].
    pub fn forward_with(
        &mut self,
        to: &ComponentId,
        msg: &(impl serde::Serialize + ?Sized),
    ) -> Result<(), ForwardError> {
        let e = crate::codec::encode(self.inner.config.codec, msg).map_err(ForwardError::Encode)?;
        self.forward_payload(to, e.bytes, e.code)
    }

    /// As [`Context::forward_with`], with the new payload's bytes and codec as they are.
    ///
    /// # Errors
    /// As [`Context::forward`].
    pub fn forward_payload(&mut self, to: &ComponentId, payload: Vec<u8>, codec: u64) -> Result<(), ForwardError> {
        let Some(req) = self.current.filter(|m| m.is_request()) else {
            return Err(ForwardError::NotARequest);
        };
        if self.replied {
            return Err(ForwardError::NotPending);
        }
        self.inner.forward(&self.me.id, req, self.ticket, to, Some((payload, codec)), Origin::Worker)?;
        self.replied = true;
        Ok(())
    }

    /// Keeps the request being handled to answer later: the returned [`DeferredReply`]
    /// answers it (or fails it) from anywhere, at any time before its deadline; dropping
    /// it unanswered fails the request at once. The handler's return value is then ignored.
    ///
    /// # Errors
    /// [`ReplyError::NotARequest`] outside a request, [`ReplyError::AlreadyReplied`] after a
    /// reply, a forward or an earlier `defer`.
    #[cfg(not(loom))]
    pub fn defer(&mut self) -> Result<DeferredReply, ReplyError> {
        let Some(req) = self.current.filter(|m| m.is_request()) else {
            return Err(ReplyError::NotARequest);
        };
        if self.replied {
            return Err(ReplyError::AlreadyReplied);
        }
        self.replied = true;
        Ok(DeferredReply::new(self.inner.weak(), req, self.ticket))
    }

    /// Asks the runtime to stop this component after the current message. Under
    /// [`crate::RestartPolicy::Permanent`] it is restarted; otherwise it stops and its
    /// queued messages are dead-lettered.
    pub fn stop(&mut self) {
        self.stop = true;
    }

    /// Weak handles to the runtime and this component, for executors that keep state
    /// across calls.
    #[cfg(all(not(loom), feature = "wasm"))]
    pub(crate) fn handles(&self) -> (std::sync::Weak<Inner>, std::sync::Weak<Component>) {
        (self.inner.weak(), Arc::downgrade(self.me))
    }

    pub(crate) fn replied(&self) -> bool {
        self.replied
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.stop
    }

    /// Reports, from a call that returns no error (a health check), that the handler
    /// must not be used again (a WASM instance that trapped): the component restarts.
    #[cfg_attr(not(all(feature = "wasm", not(loom))), allow(dead_code))]
    pub(crate) fn report_crash(&mut self) {
        self.crashed = true;
    }

    pub(crate) fn crash_reported(&self) -> bool {
        self.crashed
    }
}
