//! [`Component`]: a component written as state plus a function of one typed message.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::envelope::MessageEnvelope;
use crate::error::{HandlerError, RequestError};
use crate::handler::{Context, Handler};
use crate::health::Health;

/// A component as state plus a function of its typed message, returning its typed reply.
///
/// `Message` is usually a serde enum whose variants name the operations. Each message is
/// decoded from its envelope by its codec (JSON or CBOR); one that is not a `Message`
/// fails with a [`HandlerError`] saying what it is and what was expected, and is
/// dead-lettered. For a request, the returned `Reply` is the answer, encoded in the
/// request's codec; for a one-way message or a publish it is dropped. A handler that
/// answered otherwise ([`Context::forward`], [`Context::defer`], [`Context::reply`]) has
/// its return value ignored.
///
/// Every `Component` is a [`Handler`], so it registers as any handler does, from a
/// constructor the runtime calls again after a crash:
/// `rt.spawn("counter", Counter::default)`.
pub trait Component: Send + 'static {
    /// What the component is sent.
    type Message: DeserializeOwned;
    /// What it answers a request with.
    type Reply: Serialize;

    /// Handles one message.
    ///
    /// # Errors
    /// A failure of the message (see [`Handler::handle`]): redelivered or dead-lettered,
    /// and a waiting requester gets it.
    fn handle(&mut self, ctx: &mut Context<'_>, msg: Self::Message) -> Result<Self::Reply, HandlerError>;

    /// Runs once when the component is made (at registration and after each restart).
    ///
    /// # Errors
    /// Counts as a crash.
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
        let _ = ctx;
        Ok(())
    }

    /// The outcome of a request this component made ([`Context::ask`]): the answer (decode
    /// it with [`MessageEnvelope::decode`]) or why there is none.
    ///
    /// # Errors
    /// A failure, as for [`Handler::handle_callback`].
    fn callback(
        &mut self,
        ctx: &mut Context<'_>,
        request_id: &str,
        outcome: Result<&MessageEnvelope, &RequestError>,
    ) -> Result<(), HandlerError> {
        let _ = (ctx, request_id, outcome);
        Ok(())
    }

    /// Answers a health check (see [`Handler::health`]).
    fn health(&mut self, ctx: &mut Context<'_>) -> Health {
        let _ = ctx;
        Health::Healthy
    }
}

impl<C: Component> Handler for C {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
        Component::init(self, ctx)
    }

    fn handle(&mut self, ctx: &mut Context<'_>, msg: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
        let decoded: C::Message = msg.decode()?;
        let reply = Component::handle(self, ctx, decoded)?;
        if msg.is_request() && !ctx.replied() {
            // In the request's codec when it is one of ours, so the asker reads it as it
            // wrote; else in the runtime's.
            let code = if codec::is_serde(msg.codec) { msg.codec } else { ctx.default_codec() };
            let answer = codec::encode(code, &reply)?;
            ctx.reply(answer.bytes, answer.code)?;
        }
        Ok(None)
    }

    fn handle_callback(
        &mut self,
        ctx: &mut Context<'_>,
        request_id: &str,
        outcome: Result<&MessageEnvelope, &RequestError>,
    ) -> Result<(), HandlerError> {
        Component::callback(self, ctx, request_id, outcome)
    }

    fn health(&mut self, ctx: &mut Context<'_>) -> Health {
        Component::health(self, ctx)
    }
}
