//! The `messaging` interface: a guest's sends, requests, publishes and subscriptions,
//! checked against its capabilities and handed to the runtime it runs on.
//!
//! Of the WASM host, only this file reaches the runtime's send path (`Inner`, `Origin`,
//! `Component`, `Context::handles`); `host.rs` reaches registration through `RegistryHook`.

// `std::sync::Weak`, not `crate::sync`: the latter has no `Weak`; it is the weak side of
// `crate::sync::Arc`, which outside loom (the WASM host is never built under loom) is std's.
use std::sync::Weak;
use std::time::Duration;

use wasmtime::component::HasData;

use super::Principal;
use super::types::{ErrorCode, GuestError, error, send_error};
use crate::component::Component;
use crate::envelope::{DeliveryGuarantee, MessageEnvelope, MessageType, new_message_id};
use crate::handler::Context;
use crate::id::ComponentId;
use crate::runtime::Inner;
use crate::send::Origin;
use crate::sync::Arc;
use crate::wasm::bindings::switchyard::component::messaging::Host;
use crate::wasm::config::{Capabilities, TargetPattern};

/// Names [`MessagingView`] to the generated `messaging::add_to_linker`.
pub(crate) struct Messaging;

impl HasData for Messaging {
    type Data<'a> = MessagingView<'a>;
}

/// What the messaging calls of one instance reach: the runtime and the component it runs
/// as. Empty until the handler's `init` attaches it, and for ever in a detached instance,
/// whose calls then get a typed `closed`.
pub(crate) struct MessagingCtx {
    runtime: Weak<Inner>,
    me: Weak<Component>,
    /// The request the running `handle-message` call carries (`delegation.rs`).
    pub(super) current: Option<MessageEnvelope>,
    /// The registration of its id (see `crate::request::Ticket`).
    pub(super) ticket: Option<crate::request::Ticket>,
    /// True once that request was handed on or kept.
    pub(super) answered: bool,
    /// Requests kept to answer later, by request id (`delegation.rs`).
    pub(super) kept: std::collections::HashMap<String, crate::delegation::DeferredReply>,
}

impl MessagingCtx {
    /// A context that reaches no runtime yet.
    pub(crate) fn detached() -> Self {
        Self {
            runtime: Weak::new(),
            me: Weak::new(),
            current: None,
            ticket: None,
            answered: false,
            kept: Default::default(),
        }
    }

    /// Reaches the runtime and component of `ctx` from now on. Weak handles: an instance
    /// keeps neither alive.
    pub(crate) fn attach(&mut self, ctx: &Context<'_>) {
        (self.runtime, self.me) = ctx.handles();
    }
}

/// The messaging calls' view of the Store: the calling component and its context.
pub(crate) struct MessagingView<'a> {
    pub(crate) principal: &'a Principal,
    pub(crate) ctx: &'a mut MessagingCtx,
}

impl MessagingView<'_> {
    pub(super) fn runtime(&self) -> Result<(Arc<Inner>, Arc<Component>), GuestError> {
        match (self.ctx.runtime.upgrade(), self.ctx.me.upgrade()) {
            (Some(inner), Some(me)) => Ok((inner, me)),
            _ => Err(error(ErrorCode::Closed, "the runtime is shutting down")),
        }
    }

    pub(super) fn target(&self, to: &str, verb: &str, allowed: &[TargetPattern]) -> Result<ComponentId, GuestError> {
        let id = ComponentId::new(to).map_err(|e| error(ErrorCode::InvalidArgument, e.to_string()))?;
        if !Capabilities::allows(allowed, id.as_str()) {
            return Err(self.principal.denied(&format!("{verb} {id}")));
        }
        Ok(id)
    }

    pub(super) fn check_payload(&self, payload: &[u8]) -> Result<(), GuestError> {
        match self.principal.caps.max_payload_bytes {
            Some(max) if payload.len() > max => {
                Err(error(ErrorCode::TooLarge, format!("payload of {} bytes exceeds {max}", payload.len())))
            }
            _ => Ok(()),
        }
    }

    fn check_topic(&self, topic: &str, verb: &str, allowed: &[TargetPattern]) -> Result<(), GuestError> {
        if topic.is_empty() || topic.len() > 256 {
            return Err(error(ErrorCode::InvalidArgument, "a topic is 1 to 256 bytes"));
        }
        if !Capabilities::allows(allowed, topic) {
            return Err(self.principal.denied(&format!("{verb} topic {topic:?}")));
        }
        Ok(())
    }

    fn envelope(&self, message_type: MessageType, to: ComponentId, payload: Vec<u8>, codec: u64) -> MessageEnvelope {
        MessageEnvelope::new(message_type, self.principal.id.clone(), to, payload, codec, new_message_id())
    }
}

impl Host for MessagingView<'_> {
    fn send_message(&mut self, to: String, payload: Vec<u8>, codec: u64) -> Result<(), GuestError> {
        let to = self.target(&to, "send to", &self.principal.caps.send)?;
        self.check_payload(&payload)?;
        let (inner, _) = self.runtime()?;
        let env = self.envelope(MessageType::FireAndForget, to, payload, codec);
        inner.send(env, DeliveryGuarantee::AtMostOnce, Origin::Worker).map_err(|e| send_error(&e))
    }

    fn send_request(
        &mut self,
        to: String,
        payload: Vec<u8>,
        codec: u64,
        timeout_ms: u32,
    ) -> Result<String, GuestError> {
        let to = self.target(&to, "request from", &self.principal.caps.request)?;
        self.check_payload(&payload)?;
        let (inner, me) = self.runtime()?;
        let limits = self.principal.limits;
        let holdings = &self.principal.holdings;
        if !holdings.take_request(limits.max_pending_requests) {
            return Err(self.principal.over_quota(format!(
                "{} requests are waiting for their outcome already (max_pending_requests)",
                limits.max_pending_requests
            )));
        }
        let timeout = Duration::from_millis(u64::from(timeout_ms)).min(limits.max_request_timeout);
        let env = self.envelope(MessageType::Request, to, payload, codec);
        inner.request_from_component(&me, env, timeout).map(String::from).map_err(|e| {
            // Refused: no outcome will come for it.
            holdings.request_done();
            send_error(&e)
        })
    }

    fn publish(&mut self, topic: String, payload: Vec<u8>, codec: u64) -> Result<u32, GuestError> {
        self.check_topic(&topic, "publish to", &self.principal.caps.publish)?;
        self.check_payload(&payload)?;
        let (inner, _) = self.runtime()?;
        let env = self.envelope(MessageType::Publish, self.principal.id.clone(), payload, codec).with_topic(topic);
        let report = inner.publish(env, Origin::Worker).map_err(|e| send_error(&e))?;
        Ok(u32::try_from(report.delivered).unwrap_or(u32::MAX))
    }

    fn subscribe(&mut self, topic: String) -> Result<(), GuestError> {
        self.check_topic(&topic, "subscribe to", &self.principal.caps.subscribe)?;
        let (inner, _) = self.runtime()?;
        let max = self.principal.limits.max_subscriptions;
        let mut topics = self.principal.holdings.topics.lock();
        if !topics.contains(&topic) {
            if topics.len() >= max {
                drop(topics);
                return Err(self
                    .principal
                    .over_quota(format!("it is subscribed to {max} topics already (max_subscriptions)")));
            }
            topics.insert(topic.clone());
        }
        inner.subscribe(&topic, self.principal.id.clone());
        Ok(())
    }

    fn unsubscribe(&mut self, topic: String) -> Result<(), GuestError> {
        let (inner, _) = self.runtime()?;
        self.principal.holdings.topics.lock().remove(&topic);
        inner.unsubscribe(&topic, &self.principal.id);
        Ok(())
    }

    fn self_id(&mut self) -> String {
        self.principal.id.to_string()
    }
}
