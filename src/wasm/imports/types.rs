//! The `types` interface: the guest's envelope and error, and their conversions from the
//! host's envelopes and failures (send, storage and request errors, guest error codes).
//!
//! `types` declares no functions, so its host side is only these conversions; every other
//! interface and the handler's exports use them.

use wasmtime::component::HasData;

use crate::deadletter::DeadLetterReason;
use crate::envelope::{MessageEnvelope, MessageType};
use crate::error::{HandlerError, RequestError, SendError};
use crate::failure::GuestErrorCode;
use crate::storage::StorageError;
use crate::wasm::bindings::switchyard::component::types;

pub(crate) use types::{Envelope, Error as GuestError, ErrorCode};

/// Names the `types` interface's host side to its generated `add_to_linker`. `types` has no
/// functions, so that side is `()`: its instance is linked empty, as the world's own
/// `add_to_linker` does, so components that import it for its types find it.
pub(crate) struct Types;

impl HasData for Types {
    type Data<'a> = ();
}

impl types::Host for () {}

/// A typed error for the guest.
pub(crate) fn error(code: ErrorCode, message: impl Into<String>) -> GuestError {
    GuestError { code, message: message.into() }
}

/// The guest's view of a refused send, request or publish.
pub(crate) fn send_error(e: &SendError) -> GuestError {
    let code = match e {
        SendError::Full(_) | SendError::Timeout(_) => ErrorCode::MailboxFull,
        SendError::NoSuchComponent(_) => ErrorCode::NoSuchComponent,
        // The WIT has no code of its own for an unreachable node (adding one would break
        // guests built against it); the message says which it was.
        SendError::Closed(_) | SendError::Transport(_) => ErrorCode::Closed,
        SendError::PayloadTooLarge(_) => ErrorCode::TooLarge,
        SendError::Invalid(..) => ErrorCode::InvalidArgument,
    };
    error(code, e.to_string())
}

/// The guest's view of a failed storage call.
pub(crate) fn storage_error(e: &StorageError) -> GuestError {
    let code = match e {
        StorageError::QuotaExceeded { .. } => ErrorCode::QuotaExceeded,
        StorageError::KeyTooLarge { .. } | StorageError::ValueTooLarge { .. } => ErrorCode::TooLarge,
        StorageError::InvalidNamespace { .. } => ErrorCode::InvalidArgument,
        _ => ErrorCode::Storage,
    };
    error(code, e.to_string())
}

/// The guest's view of a request that produced no response: the code says why (a
/// responder's own error code when it returned one), the message gives the details.
pub(crate) fn request_error(e: &RequestError) -> GuestError {
    let code = match e {
        RequestError::Timeout => ErrorCode::Timeout,
        RequestError::Shutdown => ErrorCode::Closed,
        // Only a host thread's blocking wait can fail this way; a guest is never told it.
        RequestError::WouldBlockWorker | RequestError::Taken => ErrorCode::Internal,
        RequestError::Failed(reason) => match reason {
            DeadLetterReason::HandlerFailed { code: Some(code), .. } => ErrorCode::from(*code),
            DeadLetterReason::HandlerFailed { code: None, .. }
            | DeadLetterReason::HandlerPanicked { .. }
            | DeadLetterReason::Trapped { .. } => ErrorCode::HandlerFailed,
            DeadLetterReason::NoSuchComponent => ErrorCode::NoSuchComponent,
            DeadLetterReason::MailboxFull => ErrorCode::MailboxFull,
            DeadLetterReason::Invalid => ErrorCode::InvalidArgument,
            DeadLetterReason::TimedOut => ErrorCode::Timeout,
            DeadLetterReason::Closed
            | DeadLetterReason::Shutdown
            | DeadLetterReason::Unregistered
            | DeadLetterReason::ComponentStopped
            | DeadLetterReason::Transport { .. } => ErrorCode::Closed,
            DeadLetterReason::LateReply
            | DeadLetterReason::NoSubscribers
            | DeadLetterReason::Duplicate
            | DeadLetterReason::UnexpectedResponder => ErrorCode::Internal,
        },
    };
    error(code, e.to_string())
}

/// A guest's own error, returned from one of its exports, as the handler's failure.
pub(crate) fn guest_failure(e: GuestError) -> HandlerError {
    HandlerError::guest(e.code.into(), e.message)
}

/// A host envelope as the guest receives it.
pub(crate) fn guest_envelope(m: &MessageEnvelope) -> Envelope {
    Envelope {
        message_type: guest_message_type(m.message_type),
        from: m.from.to_string(),
        to: m.to.to_string(),
        topic: m.topic.clone(),
        payload: m.payload.clone(),
        codec: m.codec,
        message_id: m.message_id.to_string(),
        correlation_id: m.correlation_id.as_deref().map(str::to_string),
        timestamp_ms: m.timestamp.timestamp_millis(),
    }
}

fn guest_message_type(t: MessageType) -> types::MessageType {
    match t {
        MessageType::FireAndForget => types::MessageType::FireAndForget,
        MessageType::Request => types::MessageType::Request,
        MessageType::Response => types::MessageType::Response,
        MessageType::Publish => types::MessageType::Publish,
    }
}

impl From<ErrorCode> for GuestErrorCode {
    fn from(code: ErrorCode) -> Self {
        match code {
            ErrorCode::NoSuchComponent => GuestErrorCode::NoSuchComponent,
            ErrorCode::MailboxFull => GuestErrorCode::MailboxFull,
            ErrorCode::Closed => GuestErrorCode::Closed,
            ErrorCode::TooLarge => GuestErrorCode::TooLarge,
            ErrorCode::InvalidArgument => GuestErrorCode::InvalidArgument,
            ErrorCode::PermissionDenied => GuestErrorCode::PermissionDenied,
            ErrorCode::QuotaExceeded => GuestErrorCode::QuotaExceeded,
            ErrorCode::Storage => GuestErrorCode::Storage,
            ErrorCode::Timeout => GuestErrorCode::Timeout,
            ErrorCode::HandlerFailed => GuestErrorCode::HandlerFailed,
            ErrorCode::Internal => GuestErrorCode::Internal,
        }
    }
}

impl From<GuestErrorCode> for ErrorCode {
    fn from(code: GuestErrorCode) -> Self {
        match code {
            GuestErrorCode::NoSuchComponent => ErrorCode::NoSuchComponent,
            GuestErrorCode::MailboxFull => ErrorCode::MailboxFull,
            GuestErrorCode::Closed => ErrorCode::Closed,
            GuestErrorCode::TooLarge => ErrorCode::TooLarge,
            GuestErrorCode::InvalidArgument => ErrorCode::InvalidArgument,
            GuestErrorCode::PermissionDenied => ErrorCode::PermissionDenied,
            GuestErrorCode::QuotaExceeded => ErrorCode::QuotaExceeded,
            GuestErrorCode::Storage => ErrorCode::Storage,
            GuestErrorCode::Timeout => ErrorCode::Timeout,
            GuestErrorCode::HandlerFailed => ErrorCode::HandlerFailed,
            GuestErrorCode::Internal => ErrorCode::Internal,
        }
    }
}
