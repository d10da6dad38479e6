//! Errors, one enum per operation family. Every send error hands the envelope back.

use std::fmt;

use crate::deadletter::DeadLetterReason;
use crate::envelope::MessageEnvelope;
use crate::failure::{GuestErrorCode, TrapKind};
use crate::id::{ComponentId, IdError};

/// A send that did not enqueue its message. The envelope is handed back in every variant.
///
/// The envelope is returned by value (like crossbeam's `TrySendError<T>`), so a failed
/// send allocates nothing.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SendError {
    /// The target's mailbox is at capacity.
    Full(MessageEnvelope),
    /// No component is registered under `to`.
    NoSuchComponent(MessageEnvelope),
    /// The target (or the whole runtime) is closed: unregistered, stopped after its restart
    /// limit, or shutting down.
    Closed(MessageEnvelope),
    /// [`crate::RuntimeHandle::send_timeout`]: the mailbox stayed full until the deadline.
    Timeout(MessageEnvelope),
    /// The payload is larger than the runtime's `max_payload_bytes`.
    PayloadTooLarge(MessageEnvelope),
    /// The envelope cannot be routed as it is.
    Invalid(MessageEnvelope, InvalidEnvelope),
    /// The target is hosted by another node of the cluster, and this node is cut off from
    /// the NATS server (the `cluster` feature).
    Transport(MessageEnvelope),
}

/// Why an envelope is not routable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidEnvelope {
    /// A response without a `correlation_id`.
    ResponseWithoutCorrelation,
    /// A publish without a `topic`.
    PublishWithoutTopic,
    /// `request` was given an envelope that is not a [`crate::MessageType::Request`].
    NotARequest,
    /// `publish` was given an envelope that is not a [`crate::MessageType::Publish`].
    NotAPublish,
    /// A request id that is already pending.
    DuplicateRequestId,
    /// A batch ([`crate::RuntimeHandle::send_batch`]) holds one-way messages
    /// ([`crate::MessageType::FireAndForget`]) to one component: this one is of another
    /// type, or to another component than the batch's first.
    NotInBatch,
    /// A [`crate::ComponentRef`] was given an envelope for another component.
    NotForThisRef,
    /// The target is on another node, and the envelope cannot travel there: a message id,
    /// correlation id or topic holds a carriage return or line feed (NATS headers cannot
    /// carry them), the topic is too long for a subject, or the message asks for a
    /// delivery guarantee the cluster does not give across nodes (at least once or
    /// exactly once for a request or publish, or without JetStream: see
    /// `ClusterConfig::jetstream`).
    NotForTheCluster,
}

/// The kind of a [`SendError`], without the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SendErrorKind {
    /// See [`SendError::Full`].
    Full,
    /// See [`SendError::NoSuchComponent`].
    NoSuchComponent,
    /// See [`SendError::Closed`].
    Closed,
    /// See [`SendError::Timeout`].
    Timeout,
    /// See [`SendError::PayloadTooLarge`].
    PayloadTooLarge,
    /// See [`SendError::Invalid`].
    Invalid,
    /// See [`SendError::Transport`].
    Transport,
}

impl SendError {
    /// The envelope that was not sent.
    pub fn envelope(&self) -> &MessageEnvelope {
        match self {
            SendError::Full(e)
            | SendError::NoSuchComponent(e)
            | SendError::Closed(e)
            | SendError::Timeout(e)
            | SendError::PayloadTooLarge(e)
            | SendError::Transport(e)
            | SendError::Invalid(e, _) => e,
        }
    }

    /// Takes the envelope back.
    pub fn into_envelope(self) -> MessageEnvelope {
        match self {
            SendError::Full(e)
            | SendError::NoSuchComponent(e)
            | SendError::Closed(e)
            | SendError::Timeout(e)
            | SendError::PayloadTooLarge(e)
            | SendError::Transport(e)
            | SendError::Invalid(e, _) => e,
        }
    }

    /// What went wrong, without the envelope.
    pub fn kind(&self) -> SendErrorKind {
        match self {
            SendError::Full(_) => SendErrorKind::Full,
            SendError::NoSuchComponent(_) => SendErrorKind::NoSuchComponent,
            SendError::Closed(_) => SendErrorKind::Closed,
            SendError::Timeout(_) => SendErrorKind::Timeout,
            SendError::PayloadTooLarge(_) => SendErrorKind::PayloadTooLarge,
            SendError::Invalid(..) => SendErrorKind::Invalid,
            SendError::Transport(_) => SendErrorKind::Transport,
        }
    }

    /// The dead-letter reason to use when a caller gives up on this envelope.
    pub fn as_dead_letter_reason(&self) -> DeadLetterReason {
        match self.kind() {
            SendErrorKind::Full | SendErrorKind::Timeout => DeadLetterReason::MailboxFull,
            SendErrorKind::NoSuchComponent => DeadLetterReason::NoSuchComponent,
            SendErrorKind::Closed => DeadLetterReason::Closed,
            SendErrorKind::PayloadTooLarge | SendErrorKind::Invalid => DeadLetterReason::Invalid,
            SendErrorKind::Transport => {
                DeadLetterReason::Transport { detail: "this node is cut off from the cluster's server".into() }
            }
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let to = &self.envelope().to;
        match self {
            SendError::Full(_) => write!(f, "mailbox of {to} is full"),
            SendError::NoSuchComponent(_) => write!(f, "no component is registered as {to}"),
            SendError::Closed(_) => write!(f, "{to} is closed"),
            SendError::Timeout(_) => write!(f, "mailbox of {to} stayed full until the deadline"),
            SendError::Transport(_) => write!(f, "{to} is on another node and this node is cut off from the cluster"),
            SendError::PayloadTooLarge(e) => {
                write!(f, "payload of {} bytes to {to} exceeds the runtime's limit", e.payload.len())
            }
            SendError::Invalid(_, why) => write!(f, "envelope to {to} is invalid: {why}"),
        }
    }
}

impl std::error::Error for SendError {}

impl fmt::Display for InvalidEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidEnvelope::ResponseWithoutCorrelation => "a response needs a correlation_id",
            InvalidEnvelope::PublishWithoutTopic => "a publish needs a topic",
            InvalidEnvelope::NotARequest => "request() needs a MessageType::Request envelope",
            InvalidEnvelope::NotAPublish => "publish() needs a MessageType::Publish envelope",
            InvalidEnvelope::DuplicateRequestId => "a request with this message_id is already pending",
            InvalidEnvelope::NotInBatch => "a batch holds one-way messages to the component its first one is for",
            InvalidEnvelope::NotForThisRef => "the envelope is for another component than the reference's",
            InvalidEnvelope::NotForTheCluster => {
                "the envelope cannot go to another node (a CR or LF in an id or the topic, a topic over 256 \
                 bytes, or a delivery guarantee beyond at most once that the cluster does not store: a request, a \
                 publish, or any message without JetStream)"
            }
        })
    }
}

/// A batch that did not go in whole ([`crate::RuntimeHandle::send_batch`]): the envelopes
/// before the refused one went in, in order; the refused one is in `error` and the ones
/// after it, never tried, are in `rest`, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchError {
    /// How many envelopes went in (the first `sent` of the batch).
    pub sent: usize,
    /// Why the next one did not, with that envelope.
    pub error: SendError,
    /// The envelopes after the refused one, not tried.
    pub rest: Vec<MessageEnvelope>,
}

impl BatchError {
    /// Every envelope that was not sent, in batch order (the refused one first).
    pub fn into_unsent(self) -> Vec<MessageEnvelope> {
        let mut unsent = Vec::with_capacity(1 + self.rest.len());
        unsent.push(self.error.into_envelope());
        unsent.extend(self.rest);
        unsent
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} sent, then {} ({} more not tried)", self.sent, self.error, self.rest.len())
    }
}

impl std::error::Error for BatchError {}

/// The outcome of a request that produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// No response arrived before the request's deadline.
    Timeout,
    /// The request was dead-lettered before a response was made (the handler failed,
    /// panicked or trapped, the target stopped or was unregistered, ...). The reason is
    /// typed: [`DeadLetterReason::Trapped`] carries the trap's kind, and
    /// [`DeadLetterReason::HandlerFailed`] the error code of a WASM guest.
    Failed(DeadLetterReason),
    /// The runtime shut down while the request was pending.
    Shutdown,
    /// [`crate::ReplyHandle::wait`] was called on a worker thread before the outcome
    /// arrived. Blocking there would stall every component homed on that worker; the
    /// request stays pending. Inside a handler, use [`crate::Context::request`] and receive
    /// the outcome in [`crate::Handler::handle_callback`].
    WouldBlockWorker,
    /// The outcome was taken already (a handle polled or waited on again after it
    /// completed): a request has one outcome, and it went to the first taker.
    Taken,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Timeout => write!(f, "request timed out"),
            RequestError::Failed(reason) => write!(f, "request failed: {reason}"),
            RequestError::Shutdown => write!(f, "runtime shut down before a response arrived"),
            RequestError::WouldBlockWorker => write!(
                f,
                "waiting for a reply on a worker thread would block it; use Context::request and handle_callback"
            ),
            RequestError::Taken => write!(f, "the request's outcome was taken already"),
        }
    }
}

impl std::error::Error for RequestError {}

/// [`crate::ReplyHandle::wait_timeout`] returned without a response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitTimeoutError {
    /// No outcome yet: the request is still pending; wait again or drop the handle.
    Pending,
    /// The request ended without a response.
    Failed(RequestError),
}

impl fmt::Display for WaitTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitTimeoutError::Pending => write!(f, "no reply yet; the request is still pending"),
            WaitTimeoutError::Failed(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for WaitTimeoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WaitTimeoutError::Pending => None,
            WaitTimeoutError::Failed(e) => Some(e),
        }
    }
}

impl From<RequestError> for WaitTimeoutError {
    fn from(e: RequestError) -> Self {
        WaitTimeoutError::Failed(e)
    }
}

/// Replying from a handler failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyError {
    /// The message being handled is not a request.
    NotARequest,
    /// This request was already answered.
    AlreadyReplied,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplyError::NotARequest => "the message being handled is not a request",
            ReplyError::AlreadyReplied => "this request was already answered",
        })
    }
}

impl std::error::Error for ReplyError {}

/// Registering a component failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// A component with this id is already registered.
    AlreadyRegistered(ComponentId),
    /// The runtime is shutting down.
    ShuttingDown,
    /// The configuration is unusable (the text says which field).
    InvalidConfig(&'static str),
    /// A grant cannot be honoured (a directory granted to a WASM component is missing or
    /// not a directory; the text says which).
    UnusableGrant(String),
    /// The WASM host's instance pool has no room for one more instance of the component
    /// beside those registered (the text gives what it needs and what is left).
    PoolFull(String),
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::AlreadyRegistered(id) => write!(f, "{id} is already registered"),
            RegisterError::ShuttingDown => write!(f, "the runtime is shutting down"),
            RegisterError::InvalidConfig(why) => write!(f, "invalid component configuration: {why}"),
            RegisterError::UnusableGrant(why) => write!(f, "unusable grant: {why}"),
            RegisterError::PoolFull(why) => write!(f, "no room in the instance pool: {why}"),
        }
    }
}

impl std::error::Error for RegisterError {}

/// Starting a runtime failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting is out of range; the text names it and the limit.
    InvalidConfig(String),
    /// The OS refused to start a thread; the threads already started were stopped.
    Spawn(std::io::Error),
    /// The runtime could not join its cluster (the server is unreachable, refused the
    /// connection, or did not answer in time); the text says which.
    Cluster(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::InvalidConfig(why) => write!(f, "invalid runtime configuration: {why}"),
            BuildError::Spawn(e) => write!(f, "cannot start a runtime thread: {e}"),
            BuildError::Cluster(why) => write!(f, "cannot join the cluster: {why}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::InvalidConfig(_) | BuildError::Cluster(_) => None,
            BuildError::Spawn(e) => Some(e),
        }
    }
}

/// Unregistering a component failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnregisterError {
    /// No component is registered under this id.
    NoSuchComponent(ComponentId),
}

impl fmt::Display for UnregisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnregisterError::NoSuchComponent(id) => write!(f, "no component is registered as {id}"),
        }
    }
}

impl std::error::Error for UnregisterError {}

/// A handler's failure to handle a message; the message is redelivered or dead-lettered
/// with a reason made from it ([`DeadLetterReason::HandlerFailed`] with its text, or
/// [`DeadLetterReason::Trapped`]).
///
/// [`HandlerError::crash`] additionally says the handler itself is broken (corrupted
/// state): the runtime then treats it like a panic, discards the handler and restarts the
/// component from its factory under its supervision policy. A WebAssembly trap is such a
/// crash with a [`TrapKind`] ([`HandlerError::trap_kind`]): it is dead-lettered as
/// [`DeadLetterReason::Trapped`]. An error a WASM guest returned carries the guest's
/// [`GuestErrorCode`] ([`HandlerError::guest_code`]), kept in
/// [`DeadLetterReason::HandlerFailed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    message: String,
    crash: bool,
    cause: Cause,
}

/// What the runtime knows of a failure beyond its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Unknown,
    Trap(TrapKind),
    Guest(GuestErrorCode),
}

impl HandlerError {
    /// An error with the given text: the message failed, the handler is fine.
    pub fn new(message: impl fmt::Display) -> Self {
        Self { message: message.to_string(), crash: false, cause: Cause::Unknown }
    }

    /// An error after which the handler must not be used again: the component restarts.
    pub fn crash(message: impl fmt::Display) -> Self {
        Self { message: message.to_string(), crash: true, cause: Cause::Unknown }
    }

    /// A WebAssembly trap: a crash of the given kind, `detail` being wasmtime's account
    /// (bounded: its backtrace names the guest's functions, as the guest chose them).
    #[cfg_attr(not(feature = "wasm"), allow(dead_code))]
    pub(crate) fn trap(kind: TrapKind, detail: impl fmt::Display) -> Self {
        Self { message: crate::text::cap_foreign(detail.to_string()), crash: true, cause: Cause::Trap(kind) }
    }

    /// An error a WASM guest returned: its code and message (the handler is fine). The
    /// message is the guest's own text: cut to [`crate::text::MAX_FOREIGN_TEXT_BYTES`].
    #[cfg_attr(not(feature = "wasm"), allow(dead_code))]
    pub(crate) fn guest(code: GuestErrorCode, message: impl fmt::Display) -> Self {
        Self { message: crate::text::cap_foreign(message.to_string()), crash: false, cause: Cause::Guest(code) }
    }

    /// The error's text.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True when the handler asked to be restarted (a crash, a trap).
    pub fn is_crash(&self) -> bool {
        self.crash
    }

    /// The kind of the WebAssembly trap this error is, if it is one.
    pub fn trap_kind(&self) -> Option<TrapKind> {
        match self.cause {
            Cause::Trap(kind) => Some(kind),
            _ => None,
        }
    }

    /// The error code a WASM guest returned with this error, if it did.
    pub fn guest_code(&self) -> Option<GuestErrorCode> {
        match self.cause {
            Cause::Guest(code) => Some(code),
            _ => None,
        }
    }

    /// The dead-letter reason of a message this error failed after `attempts` attempts.
    pub(crate) fn dead_letter_reason(&self, attempts: u32) -> DeadLetterReason {
        match self.cause {
            Cause::Trap(kind) => DeadLetterReason::Trapped { kind, detail: self.message.clone(), attempts },
            Cause::Guest(code) => {
                DeadLetterReason::HandlerFailed { error: self.message.clone(), code: Some(code), attempts }
            }
            Cause::Unknown => DeadLetterReason::HandlerFailed { error: self.message.clone(), code: None, attempts },
        }
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause {
            Cause::Unknown => f.write_str(&self.message),
            Cause::Trap(kind) => write!(f, "trap ({kind}): {}", self.message),
            Cause::Guest(code) => write!(f, "{code}: {}", self.message),
        }
    }
}

impl std::error::Error for HandlerError {}

impl From<&str> for HandlerError {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for HandlerError {
    fn from(message: String) -> Self {
        Self { message, crash: false, cause: Cause::Unknown }
    }
}

/// An invalid id built in a handler fails the message.
impl From<crate::id::IdError> for HandlerError {
    fn from(e: crate::id::IdError) -> Self {
        HandlerError::new(e)
    }
}

/// A payload that cannot be decoded (or a reply that cannot be encoded) fails the message.
impl From<crate::codec::CodecError> for HandlerError {
    fn from(e: crate::codec::CodecError) -> Self {
        HandlerError::new(e)
    }
}

impl From<SendError> for HandlerError {
    fn from(e: SendError) -> Self {
        Self::new(e)
    }
}

impl From<ReplyError> for HandlerError {
    fn from(e: ReplyError) -> Self {
        Self::new(e)
    }
}

/// Any switchyard error; each operation's error converts into it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An invalid component id.
    Id(IdError),
    /// A failed send.
    Send(SendError),
    /// A request without a response.
    Request(RequestError),
    /// A runtime that did not start.
    Build(BuildError),
    /// A failed registration.
    Register(RegisterError),
    /// A failed unregistration.
    Unregister(UnregisterError),
    /// A failed reply.
    Reply(ReplyError),
    /// A handler failure.
    Handler(HandlerError),
    /// A storage failure.
    #[cfg(not(loom))]
    Storage(crate::storage::StorageError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Id(e) => e.fmt(f),
            Error::Send(e) => e.fmt(f),
            Error::Request(e) => e.fmt(f),
            Error::Build(e) => e.fmt(f),
            Error::Register(e) => e.fmt(f),
            Error::Unregister(e) => e.fmt(f),
            Error::Reply(e) => e.fmt(f),
            Error::Handler(e) => e.fmt(f),
            #[cfg(not(loom))]
            Error::Storage(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(match self {
            Error::Id(e) => e,
            Error::Send(e) => e,
            Error::Request(e) => e,
            Error::Build(e) => e,
            Error::Register(e) => e,
            Error::Unregister(e) => e,
            Error::Reply(e) => e,
            Error::Handler(e) => e,
            #[cfg(not(loom))]
            Error::Storage(e) => e,
        })
    }
}

macro_rules! into_error {
    ($($t:ident => $v:ident),* $(,)?) => {
        $(impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::$v(e)
            }
        })*
    };
}

into_error!(
    IdError => Id,
    SendError => Send,
    RequestError => Request,
    BuildError => Build,
    RegisterError => Register,
    UnregisterError => Unregister,
    ReplyError => Reply,
    HandlerError => Handler,
);

#[cfg(not(loom))]
impl From<crate::storage::StorageError> for Error {
    fn from(e: crate::storage::StorageError) -> Self {
        Error::Storage(e)
    }
}
