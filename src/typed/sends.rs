//! Typed sends: `tell`, `ask`, `publish_on` and `spawn` on [`RuntimeHandle`],
//! [`ComponentRef`] and [`Context`]. Each encodes the value with the runtime's codec into
//! an envelope and hands it to the untyped send of the same name's family, so the promises
//! are theirs: a failed send hands the envelope back ([`TellError::Send`]), nothing blocks
//! a worker.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ask::{Ask, AskError};
use crate::codec::{self, CodecError};
use crate::component_ref::ComponentRef;
use crate::envelope::{MessageEnvelope, MessageId};
use crate::error::{HandlerError, RegisterError, SendError};
use crate::handle::RuntimeHandle;
use crate::handler::{Context, Handler};
use crate::id::ComponentId;
use crate::runtime::Inner;
use crate::spec::ComponentSpec;
use crate::topics::PublishReport;

/// A typed one-way send or publish failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum TellError {
    /// The value could not be encoded (nothing was sent).
    Encode(CodecError),
    /// The send was refused; the envelope is handed back.
    Send(SendError),
}

impl fmt::Display for TellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TellError::Encode(e) => write!(f, "the message could not be encoded: {e}"),
            TellError::Send(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for TellError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TellError::Encode(e) => Some(e),
            TellError::Send(e) => Some(e),
        }
    }
}

impl From<CodecError> for TellError {
    fn from(e: CodecError) -> Self {
        TellError::Encode(e)
    }
}

impl From<SendError> for TellError {
    fn from(e: SendError) -> Self {
        TellError::Send(e)
    }
}

impl From<TellError> for HandlerError {
    fn from(e: TellError) -> Self {
        HandlerError::new(e)
    }
}

impl Inner {
    /// The envelope of a typed send from `from`, encoded with the runtime's codec.
    fn typed(
        &self,
        make: fn(ComponentId, ComponentId, Vec<u8>, u64) -> MessageEnvelope,
        from: &ComponentId,
        to: &ComponentId,
        msg: &(impl Serialize + ?Sized),
    ) -> Result<MessageEnvelope, CodecError> {
        let e = codec::encode(self.config.codec, msg)?;
        Ok(make(from.clone(), to.clone(), e.bytes, e.code))
    }

    fn typed_publish(
        &self,
        from: &ComponentId,
        topic: &str,
        msg: &(impl Serialize + ?Sized),
    ) -> Result<MessageEnvelope, CodecError> {
        let e = codec::encode(self.config.codec, msg)?;
        Ok(MessageEnvelope::publish(from.clone(), topic, e.bytes, e.code))
    }
}

impl RuntimeHandle {
    /// Registers a component made by `factory` (called again after each crash) under `id`,
    /// with the default [`ComponentSpec`] settings, and returns a reference to send to it.
    ///
    /// # Errors
    /// [`RegisterError::InvalidConfig`] for an invalid id, and as [`RuntimeHandle::register`].
    pub fn spawn<H: Handler, F: Fn() -> H + Send + Sync + 'static>(
        &self,
        id: &str,
        factory: F,
    ) -> Result<ComponentRef, RegisterError> {
        self.spawn_spec(id, ComponentSpec::new(factory))
    }

    /// Registers `spec` under `id` and returns a reference to send to it.
    ///
    /// # Errors
    /// As [`RuntimeHandle::spawn`].
    pub fn spawn_spec(&self, id: &str, spec: ComponentSpec) -> Result<ComponentRef, RegisterError> {
        let id = ComponentId::new(id).map_err(|_| RegisterError::InvalidConfig("the id is not a valid ComponentId"))?;
        self.register(id.clone(), spec)?;
        // Resolved right after: only an unregistration in between (by another thread)
        // makes it vanish, and then the reference's sends are refused as closed.
        self.resolve(&id).ok_or(RegisterError::InvalidConfig("the component was unregistered as it was spawned"))
    }

    /// Sends `msg` to `to` as a one-way message from the host ([`crate::RuntimeBuilder::host_id`]),
    /// encoded with the runtime's codec. Never blocks: as [`RuntimeHandle::try_send`].
    ///
    /// # Errors
    /// [`TellError::Encode`], or [`TellError::Send`] with the envelope handed back.
    pub fn tell(&self, to: &ComponentId, msg: &(impl Serialize + ?Sized)) -> Result<(), TellError> {
        let inner = self.inner();
        let env = inner.typed(MessageEnvelope::fire_and_forget, &inner.config.host_id, to, msg)?;
        Ok(self.try_send(env)?)
    }

    /// Asks `to` with `msg` (a request from the host, with the runtime's ask timeout); wait
    /// for the typed answer with [`Ask::wait`] or `.await`.
    pub fn ask<R: DeserializeOwned>(&self, to: &ComponentId, msg: &(impl Serialize + ?Sized)) -> Ask<R> {
        self.ask_within(to, msg, self.inner().config.ask_timeout)
    }

    /// As [`RuntimeHandle::ask`], with a timeout of its own.
    pub fn ask_within<R: DeserializeOwned>(
        &self,
        to: &ComponentId,
        msg: &(impl Serialize + ?Sized),
        timeout: Duration,
    ) -> Ask<R> {
        let inner = self.inner();
        match inner.typed(MessageEnvelope::request, &inner.config.host_id, to, msg) {
            Ok(env) => match self.request(env, timeout) {
                Ok(handle) => Ask::sent(handle),
                Err(e) => Ask::refused(AskError::Send(e)),
            },
            Err(e) => Ask::refused(AskError::Encode(e)),
        }
    }

    /// Publishes `msg` on `topic` from the host, to every subscriber.
    ///
    /// # Errors
    /// [`TellError::Encode`], or [`TellError::Send`] as [`RuntimeHandle::publish`].
    pub fn publish_on(&self, topic: &str, msg: &(impl Serialize + ?Sized)) -> Result<PublishReport, TellError> {
        let inner = self.inner();
        let env = inner.typed_publish(&inner.config.host_id, topic, msg)?;
        Ok(self.publish(env)?)
    }
}

impl ComponentRef {
    /// Sends `msg` as a one-way message from the host ([`crate::RuntimeBuilder::host_id`]),
    /// encoded with the runtime's codec. Never blocks: as [`ComponentRef::try_send`].
    ///
    /// # Errors
    /// [`TellError::Encode`], or [`TellError::Send`] with the envelope handed back.
    pub fn tell(&self, msg: &(impl Serialize + ?Sized)) -> Result<(), TellError> {
        let inner = self.runtime();
        let env = inner.typed(MessageEnvelope::fire_and_forget, &inner.config.host_id, self.id(), msg)?;
        Ok(self.try_send(env)?)
    }

    /// Asks the component with `msg` (a request from the host, with the runtime's ask
    /// timeout); wait for the typed answer with [`Ask::wait`] or `.await`.
    pub fn ask<R: DeserializeOwned>(&self, msg: &(impl Serialize + ?Sized)) -> Ask<R> {
        self.ask_within(msg, self.runtime().config.ask_timeout)
    }

    /// As [`ComponentRef::ask`], with a timeout of its own.
    pub fn ask_within<R: DeserializeOwned>(&self, msg: &(impl Serialize + ?Sized), timeout: Duration) -> Ask<R> {
        let inner = self.runtime();
        match inner.typed(MessageEnvelope::request, &inner.config.host_id, self.id(), msg) {
            Ok(env) => match self.request(env, timeout) {
                Ok(handle) => Ask::sent(handle),
                Err(e) => Ask::refused(AskError::Send(e)),
            },
            Err(e) => Ask::refused(AskError::Encode(e)),
        }
    }
}

impl Context<'_> {
    /// Sends `msg` to `to` as a one-way message from this component, encoded with the
    /// runtime's codec. Never blocks.
    ///
    /// # Errors
    /// [`TellError::Encode`], or [`TellError::Send`] with the envelope handed back.
    pub fn tell(&mut self, to: &ComponentId, msg: &(impl Serialize + ?Sized)) -> Result<(), TellError> {
        let env = self.runtime().typed(MessageEnvelope::fire_and_forget, self.id(), to, msg)?;
        Ok(self.send(env)?)
    }

    /// Asks `to` with `msg` (with the runtime's ask timeout): the answer, or why there is
    /// none, arrives later in the component's callback ([`crate::Component::callback`],
    /// [`Handler::handle_callback`]) with the returned request id. Never blocks.
    ///
    /// # Errors
    /// [`TellError::Encode`], or [`TellError::Send`] with the envelope handed back (then no
    /// callback will come).
    pub fn ask(&mut self, to: &ComponentId, msg: &(impl Serialize + ?Sized)) -> Result<MessageId, TellError> {
        let timeout = self.runtime().config.ask_timeout;
        self.ask_within(to, msg, timeout)
    }

    /// As [`Context::ask`], with a timeout of its own.
    ///
    /// # Errors
    /// As [`Context::ask`].
    pub fn ask_within(
        &mut self,
        to: &ComponentId,
        msg: &(impl Serialize + ?Sized),
        timeout: Duration,
    ) -> Result<MessageId, TellError> {
        let env = self.runtime().typed(MessageEnvelope::request, self.id(), to, msg)?;
        Ok(self.request(env, timeout)?)
    }

    /// Publishes `msg` on `topic` from this component, to every subscriber. Never blocks.
    ///
    /// # Errors
    /// [`TellError::Encode`], or [`TellError::Send`] as [`Context::publish`].
    pub fn publish_on(&mut self, topic: &str, msg: &(impl Serialize + ?Sized)) -> Result<PublishReport, TellError> {
        let env = self.runtime().typed_publish(self.id(), topic, msg)?;
        Ok(self.publish(env)?)
    }

    /// Answers the request being handled with a typed value, in the request's codec when
    /// it is JSON or CBOR, else the runtime's.
    ///
    /// # Errors
    /// As [`Context::reply`], and when the value cannot be encoded.
    pub fn reply_with(&mut self, value: &(impl Serialize + ?Sized)) -> Result<(), HandlerError> {
        let request_codec = self.message().map_or(0, |m| m.codec);
        let code = if codec::is_serde(request_codec) { request_codec } else { self.default_codec() };
        let e = codec::encode(code, value)?;
        Ok(self.reply(e.bytes, e.code)?)
    }
}
