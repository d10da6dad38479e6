//! [`Ask`]: a typed request in flight, and what can go wrong with it ([`AskError`]).

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use serde::de::DeserializeOwned;

use crate::codec::CodecError;
use crate::error::{RequestError, SendError};
use crate::reply::ReplyHandle;

/// A typed request in flight: [`Ask::wait`] blocks for the answer, `.await` awaits it, and
/// either decodes it into an `R`. Always ends: the request has a deadline
/// ([`crate::RuntimeBuilder::ask_timeout`] unless given one).
#[must_use = "an ask does nothing useful unless its answer is waited for"]
pub struct Ask<R> {
    state: State,
    _reply: PhantomData<fn() -> R>,
}

enum State {
    Sent(ReplyHandle),
    /// Refused before it was sent (kept until waited for).
    Refused(Option<AskError>),
}

impl<R> fmt::Debug for Ask<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            State::Sent(h) => f.debug_struct("Ask").field("request_id", &h.request_id()).finish(),
            State::Refused(e) => f.debug_struct("Ask").field("refused", e).finish(),
        }
    }
}

impl<R: DeserializeOwned> Ask<R> {
    pub(crate) fn sent(handle: ReplyHandle) -> Self {
        Self { state: State::Sent(handle), _reply: PhantomData }
    }

    pub(crate) fn refused(e: AskError) -> Self {
        Self { state: State::Refused(Some(e)), _reply: PhantomData }
    }

    /// The request's id, if it was sent.
    pub fn request_id(&self) -> Option<&str> {
        match &self.state {
            State::Sent(h) => Some(h.request_id()),
            State::Refused(_) => None,
        }
    }

    /// Blocks until the answer arrives (or the request fails) and decodes it. On a worker
    /// thread it never blocks (see [`ReplyHandle::wait`]): handlers ask with
    /// [`crate::Context::ask`] instead.
    ///
    /// # Errors
    /// [`AskError`]: the request could not be encoded or sent, failed or timed out, or its
    /// answer is not an `R`.
    pub fn wait(self) -> Result<R, AskError> {
        match self.state {
            State::Sent(h) => decode(h.wait()),
            State::Refused(e) => Err(e.unwrap_or(AskError::Polled)),
        }
    }
}

fn decode<R: DeserializeOwned>(outcome: Result<crate::MessageEnvelope, RequestError>) -> Result<R, AskError> {
    outcome.map_err(AskError::Failed)?.decode().map_err(AskError::Decode)
}

impl<R: DeserializeOwned> Future for Ask<R> {
    type Output = Result<R, AskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let outcome = match &mut self.state {
            State::Sent(h) => std::task::ready!(Pin::new(h).poll(cx)).map_err(AskError::Failed),
            State::Refused(e) => return Poll::Ready(Err(e.take().unwrap_or(AskError::Polled))),
        };
        // Done: the handle (and its deadline entry) goes now, and a later poll is told so.
        self.state = State::Refused(None);
        Poll::Ready(outcome.and_then(|env| env.decode().map_err(AskError::Decode)))
    }
}

/// A typed request did not bring back an answer of the type asked for.
#[derive(Debug)]
#[non_exhaustive]
pub enum AskError {
    /// The request's value could not be encoded.
    Encode(CodecError),
    /// The request was not sent (the envelope is handed back).
    Send(SendError),
    /// The request failed or timed out.
    Failed(RequestError),
    /// The answer is not of the type asked for.
    Decode(CodecError),
    /// The ask was polled again after it completed.
    Polled,
}

impl fmt::Display for AskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AskError::Encode(e) => write!(f, "the request could not be encoded: {e}"),
            AskError::Send(e) => write!(f, "the request was not sent: {e}"),
            AskError::Failed(e) => write!(f, "the request got no answer: {e}"),
            AskError::Decode(e) => write!(f, "the answer could not be decoded: {e}"),
            AskError::Polled => f.write_str("the ask was polled after it completed"),
        }
    }
}

impl std::error::Error for AskError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AskError::Encode(e) | AskError::Decode(e) => Some(e),
            AskError::Send(e) => Some(e),
            AskError::Failed(e) => Some(e),
            AskError::Polled => None,
        }
    }
}
