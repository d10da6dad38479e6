//! The `delegation` interface: a guest hands the request it is handling on to another
//! component, or keeps it to answer later (`crate::delegation` is the runtime's side).
//!
//! The request being handled is known to the instance for the length of the
//! `handle-message` call that carries it ([`MessagingCtx::begin_message`]); a kept one
//! lives in the instance's table of deferred replies, bounded at [`MAX_KEPT`], until it is
//! answered. Dropping the instance (a trap, a restart, an upgrade) drops the table, and
//! each reply still in it fails its request at once.

use super::messaging::{MessagingCtx, MessagingView};
use super::types::{ErrorCode, GuestError, error};
use crate::delegation::{DeferredReply, ForwardError};
use crate::envelope::MessageEnvelope;
use crate::request::Ticket;
use crate::send::Origin;
use crate::wasm::bindings::switchyard::component::delegation::Host;

/// Most requests an instance keeps to answer later.
pub(crate) const MAX_KEPT: usize = 1024;

impl MessagingCtx {
    /// Starts a `handle-message` call for `msg`: a request becomes the one `forward` and
    /// `defer` act on (copied: the instance holds it for the call).
    pub(crate) fn begin_message(&mut self, msg: &MessageEnvelope, ticket: Option<Ticket>) {
        self.current = msg.is_request().then(|| msg.clone());
        self.ticket = ticket;
        self.answered = false;
    }

    /// Ends the call: true when the guest handed its request on or kept it, so the
    /// reply the call returned must not be sent.
    pub(crate) fn end_message(&mut self) -> bool {
        self.current = None;
        std::mem::take(&mut self.answered)
    }
}

impl MessagingView<'_> {
    /// Hands the request being handled on to `to`, with a new payload if given.
    fn hand_on(&mut self, to: &str, payload: Option<(Vec<u8>, u64)>) -> Result<(), GuestError> {
        let to = self.target(to, "forward a request to", &self.principal.caps.request)?;
        let Some(request) = self.ctx.current.as_ref().filter(|_| !self.ctx.answered) else {
            return Err(error(ErrorCode::InvalidArgument, "forward: no request is being handled"));
        };
        let (inner, _) = self.runtime()?;
        match inner.forward(&self.principal.id, request, self.ctx.ticket, &to, payload, Origin::Worker) {
            Ok(()) => {
                self.ctx.answered = true;
                Ok(())
            }
            Err(ForwardError::NotARequest) => Err(error(ErrorCode::InvalidArgument, "forward: not a request")),
            Err(ForwardError::NotPending) => {
                Err(error(ErrorCode::Closed, "forward: the request was answered, handed on or timed out"))
            }
            Err(ForwardError::Send(e)) => Err(super::types::send_error(&e)),
            Err(e) => Err(error(ErrorCode::Internal, e.to_string())),
        }
    }
}

impl MessagingView<'_> {
    fn kept(&mut self, request_id: &str) -> Result<DeferredReply, GuestError> {
        self.ctx
            .kept
            .remove(request_id)
            .ok_or_else(|| error(ErrorCode::InvalidArgument, format!("no request {request_id:?} is kept")))
    }
}

impl Host for MessagingView<'_> {
    fn forward(&mut self, to: String) -> Result<(), GuestError> {
        self.hand_on(&to, None)
    }

    fn forward_with(&mut self, to: String, payload: Vec<u8>, codec: u64) -> Result<(), GuestError> {
        self.check_payload(&payload)?;
        self.hand_on(&to, Some((payload, codec)))
    }
    fn defer(&mut self) -> Result<String, GuestError> {
        let Some(request) = self.ctx.current.as_ref().filter(|_| !self.ctx.answered) else {
            return Err(error(ErrorCode::InvalidArgument, "defer: no request is being handled"));
        };
        if self.ctx.kept.len() >= MAX_KEPT {
            // Requests that timed out (or were failed) are kept no longer.
            self.ctx.kept.retain(|_, d| d.is_pending());
        }
        if self.ctx.kept.len() >= MAX_KEPT {
            return Err(error(ErrorCode::QuotaExceeded, format!("defer: {MAX_KEPT} requests are kept already")));
        }
        let (inner, _) = self.runtime()?;
        let id = request.message_id.to_string();
        self.ctx.kept.insert(id.clone(), DeferredReply::new(inner.weak(), request, self.ctx.ticket));
        self.ctx.answered = true;
        Ok(id)
    }

    fn reply(&mut self, request_id: String, payload: Vec<u8>, codec: u64) -> Result<(), GuestError> {
        self.check_payload(&payload)?;
        self.kept(&request_id)?.reply(payload, codec);
        Ok(())
    }

    fn fail(&mut self, request_id: String, message: String) -> Result<(), GuestError> {
        self.kept(&request_id)?.fail(crate::text::cap_foreign(message));
        Ok(())
    }
}
