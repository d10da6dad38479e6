//! [`Context`]: what a component can do while it handles a message, the same whether it
//! runs sandboxed (the calls are the WIT imports) or natively (the calls go to the engine).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{self, CBOR, JSON};
use crate::{Component, Error};

/// The calls a component makes, by backend (`wasm.rs`, `native.rs`). Payloads are already
/// encoded; keys and values are bytes.
pub(crate) trait Backend {
    fn self_id(&mut self) -> String;
    fn send(&mut self, to: &str, payload: Vec<u8>, codec: u64) -> Result<(), Error>;
    fn request(&mut self, to: &str, payload: Vec<u8>, codec: u64, timeout: Duration) -> Result<String, Error>;
    fn publish(&mut self, topic: &str, payload: Vec<u8>, codec: u64) -> Result<u32, Error>;
    fn subscribe(&mut self, topic: &str) -> Result<(), Error>;
    fn unsubscribe(&mut self, topic: &str) -> Result<(), Error>;
    fn forward(&mut self, to: &str) -> Result<(), Error>;
    fn forward_with(&mut self, to: &str, payload: Vec<u8>, codec: u64) -> Result<(), Error>;
    fn defer(&mut self) -> Result<String, Error>;
    fn reply_deferred(&mut self, request_id: &str, payload: Vec<u8>, codec: u64) -> Result<(), Error>;
    fn fail_deferred(&mut self, request_id: &str, message: &str) -> Result<(), Error>;
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, Error>;
    fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error>;
    fn delete(&mut self, key: &[u8]) -> Result<(), Error>;
    fn list(&mut self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, Error>;
    fn log(&mut self, level: Level, message: &str);
    /// Where this component's dropped [`Deferred`]s leave their request ids.
    fn dropped(&mut self) -> Dropped;
}

/// The ids of kept requests whose [`Deferred`] was dropped unanswered, one list per
/// component: [`fail_dropped`] fails them when the call in which they were dropped returns.
pub(crate) type Dropped = Arc<Mutex<Vec<String>>>;

/// What the requester of a kept request reads when its [`Deferred`] was dropped (the
/// host's own words for a dropped deferred reply).
const DROPPED: &str = "the deferred reply was dropped without an answer";

/// Fails every kept request whose [`Deferred`] was dropped: each backend calls it as a
/// call into the component returns, so the requester hears at once, not at its deadline.
pub(crate) fn fail_dropped(backend: &mut dyn Backend) {
    let ids = std::mem::take(&mut *backend.dropped().lock().unwrap_or_else(PoisonError::into_inner));
    for id in ids {
        // Not kept any more (the instance was restarted since): nothing is waiting.
        let _ = backend.fail_deferred(&id, DROPPED);
    }
}

/// The messaging pattern of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// One way, no answer expected.
    FireAndForget,
    /// Expects an answer.
    Request,
    /// An answer.
    Response,
    /// A copy of a publish on a topic.
    Publish,
}

/// A message, as the component sees it (borrowed for the call).
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// Its pattern.
    pub message_type: MessageType,
    /// Who sent it.
    pub from: &'a str,
    /// Whom it was sent to.
    pub to: &'a str,
    /// Its topic, for a publish.
    pub topic: Option<&'a str>,
    /// Its payload.
    pub payload: &'a [u8],
    /// The payload's multicodec code.
    pub codec: u64,
    /// Its id.
    pub message_id: &'a str,
    /// For an answer: the id of the request answered.
    pub correlation_id: Option<&'a str>,
}

impl Envelope<'_> {
    /// The payload as a `T`, by its codec (JSON or CBOR).
    ///
    /// # Errors
    /// Another codec, or bytes that are not a `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(codec::decode(self.codec, self.payload)?)
    }
}

/// A log line's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Trace.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
}

/// A request kept to answer later ([`Context::defer`]): answer it with
/// [`Context::reply_deferred`] or [`Context::fail_deferred`], from any later call.
/// Dropping it unanswered fails the request as the call it was dropped in returns (as the
/// host's `DeferredReply` does), so its requester does not wait out its deadline.
#[derive(Debug)]
pub struct Deferred {
    request_id: String,
    /// Where the id goes if this is dropped unanswered (`None` once answered).
    dropped: Option<Dropped>,
}

impl Deferred {
    /// The request's id.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The id, for an answer: the request is no longer this value's to fail.
    fn answer(mut self) -> String {
        self.dropped = None;
        std::mem::take(&mut self.request_id)
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        if let Some(dropped) = self.dropped.take() {
            dropped.lock().unwrap_or_else(PoisonError::into_inner).push(std::mem::take(&mut self.request_id));
        }
    }
}

/// What a component can do while it handles a message, an answer or a health check.
pub struct Context<'a> {
    backend: &'a mut dyn Backend,
    message: Option<Envelope<'a>>,
    answered: bool,
}

/// How long an [`Context::ask`] waits unless told otherwise (the host's default too).
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

impl<'a> Context<'a> {
    pub(crate) fn new(backend: &'a mut dyn Backend, message: Option<Envelope<'a>>) -> Self {
        Self { backend, message, answered: false }
    }

    /// This component's id.
    pub fn id(&mut self) -> String {
        self.backend.self_id()
    }

    /// The message being handled (`None` in `init`, `health` and callbacks).
    pub fn message(&self) -> Option<&Envelope<'a>> {
        self.message.as_ref()
    }

    /// Sends `msg` (as JSON) to component `to`, one way.
    ///
    /// # Errors
    /// The send was refused (no such component, a full mailbox, a capability).
    pub fn tell(&mut self, to: &str, msg: &(impl Serialize + ?Sized)) -> Result<(), Error> {
        self.backend.send(to, codec::encode(JSON, msg)?, JSON)
    }

    /// Asks component `to` with `msg` (as JSON); the answer arrives later in
    /// [`Component::callback`] with the returned request id (after 5 s without one, a
    /// timeout does).
    ///
    /// # Errors
    /// The request was refused.
    pub fn ask(&mut self, to: &str, msg: &(impl Serialize + ?Sized)) -> Result<String, Error> {
        self.ask_within(to, msg, ASK_TIMEOUT)
    }

    /// As [`Context::ask`], with a timeout of its own.
    ///
    /// # Errors
    /// As [`Context::ask`].
    pub fn ask_within(
        &mut self,
        to: &str,
        msg: &(impl Serialize + ?Sized),
        timeout: Duration,
    ) -> Result<String, Error> {
        self.backend.request(to, codec::encode(JSON, msg)?, JSON, timeout)
    }

    /// Publishes `msg` (as JSON) on `topic`; returns how many subscribers took it.
    ///
    /// # Errors
    /// The publish was refused.
    pub fn publish(&mut self, topic: &str, msg: &(impl Serialize + ?Sized)) -> Result<u32, Error> {
        self.backend.publish(topic, codec::encode(JSON, msg)?, JSON)
    }

    /// Subscribes this component to `topic`.
    ///
    /// # Errors
    /// Not allowed by its capabilities.
    pub fn subscribe(&mut self, topic: &str) -> Result<(), Error> {
        self.backend.subscribe(topic)
    }

    /// Unsubscribes this component from `topic`.
    ///
    /// # Errors
    /// The runtime is gone.
    pub fn unsubscribe(&mut self, topic: &str) -> Result<(), Error> {
        self.backend.unsubscribe(topic)
    }

    /// Hands the request being handled to component `to`: its answer or failure becomes
    /// the requester's, under the request's deadline; this handler's reply is ignored.
    ///
    /// # Errors
    /// Not a request, no longer this component's, or `to` did not take it (then the
    /// request is still this component's to answer).
    pub fn forward(&mut self, to: &str) -> Result<(), Error> {
        self.backend.forward(to)?;
        self.answered = true;
        Ok(())
    }

    /// As [`Context::forward`], handing the request on with `msg` (as JSON) as its new
    /// payload: the new responder answers the original requester.
    ///
    /// # Errors
    /// As [`Context::forward`].
    pub fn forward_with(&mut self, to: &str, msg: &(impl Serialize + ?Sized)) -> Result<(), Error> {
        self.backend.forward_with(to, codec::encode(JSON, msg)?, JSON)?;
        self.answered = true;
        Ok(())
    }

    /// Keeps the request being handled to answer later; this handler's reply is ignored.
    ///
    /// # Errors
    /// Not a request, or too many kept already.
    pub fn defer(&mut self) -> Result<Deferred, Error> {
        let request_id = self.backend.defer()?;
        self.answered = true;
        Ok(Deferred { request_id, dropped: Some(self.backend.dropped()) })
    }

    /// Answers a kept request with `value` (JSON).
    ///
    /// # Errors
    /// It is not kept (it timed out, or the instance restarted since), or `value` cannot be
    /// encoded (then the request is failed with the reason).
    pub fn reply_deferred(&mut self, deferred: Deferred, value: &(impl Serialize + ?Sized)) -> Result<(), Error> {
        let bytes = match codec::encode(JSON, value) {
            Ok(bytes) => bytes,
            // The request fails with the reason (as the host's `reply_with` does).
            Err(e) => {
                let _ = self.backend.fail_deferred(&deferred.answer(), &e.to_string());
                return Err(e.into());
            }
        };
        self.backend.reply_deferred(&deferred.answer(), bytes, JSON)
    }

    /// Fails a kept request with `message`.
    ///
    /// # Errors
    /// It is not kept (answered already).
    pub fn fail_deferred(&mut self, deferred: Deferred, message: &str) -> Result<(), Error> {
        self.backend.fail_deferred(&deferred.answer(), message)
    }

    /// This component's storage (its own namespace).
    pub fn storage(&mut self) -> Storage<'_, 'a> {
        Storage { ctx: self }
    }

    /// Writes a log line.
    pub fn log(&mut self, level: Level, message: &str) {
        self.backend.log(level, message);
    }

    pub(crate) fn answered(&self) -> bool {
        self.answered
    }
}

/// A component's own key-value storage, values as JSON.
pub struct Storage<'c, 'a> {
    ctx: &'c mut Context<'a>,
}

impl Storage<'_, '_> {
    /// The value under `key`, if any.
    ///
    /// # Errors
    /// Not allowed, the backend failed, or the value is not a `T`.
    pub fn get<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>, Error> {
        match self.ctx.backend.get(key.as_bytes())? {
            Some(bytes) => Ok(Some(codec::decode(JSON, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Stores `value` under `key`.
    ///
    /// # Errors
    /// Not allowed, over quota, or the backend failed.
    pub fn set(&mut self, key: &str, value: &(impl Serialize + ?Sized)) -> Result<(), Error> {
        let bytes = codec::encode(JSON, value)?;
        self.ctx.backend.set(key.as_bytes(), &bytes)
    }

    /// Removes `key`.
    ///
    /// # Errors
    /// Not allowed, or the backend failed.
    pub fn delete(&mut self, key: &str) -> Result<(), Error> {
        self.ctx.backend.delete(key.as_bytes())
    }

    /// The keys starting with `prefix`, sorted.
    ///
    /// # Errors
    /// Not allowed, or the backend failed.
    pub fn list(&mut self, prefix: &str) -> Result<Vec<String>, Error> {
        let keys = self.ctx.backend.list(prefix.as_bytes())?;
        Ok(keys.into_iter().map(|k| String::from_utf8_lossy(&k).into_owned()).collect())
    }
}

/// Runs `C::handle` on `msg` and returns the encoded reply to send, if any: a request's
/// reply in its codec (CBOR if it asked in CBOR, else JSON), unless the handler answered
/// it otherwise. Shared by both backends.
pub(crate) fn dispatch<C: Component>(
    component: &mut C,
    backend: &mut dyn Backend,
    msg: Envelope<'_>,
) -> Result<Option<(Vec<u8>, u64)>, Error> {
    let decoded: C::Message = msg.decode()?;
    let mut ctx = Context::new(backend, Some(msg));
    let reply = component.handle(&mut ctx, decoded)?;
    if msg.message_type != MessageType::Request || ctx.answered() {
        return Ok(None);
    }
    let code = if msg.codec == CBOR { CBOR } else { JSON };
    Ok(Some((codec::encode(code, &reply)?, code)))
}
