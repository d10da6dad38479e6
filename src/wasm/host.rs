//! The host side of our world: one `HostState` per `Store`, and the imports a guest calls.
//!
//! Every import acts only for the calling component: storage uses its own namespace,
//! sends are checked against its capabilities, and every bad argument comes back as a
//! typed `error`, never as a trap or a panic of the host.

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::bindings::switchyard::component::{logging, messaging, storage, types};
use super::config::{Capabilities, StorageRights};
use super::executor::LogSink;
use super::stats::WasmStats;
use super::trap::Limiter;
use crate::component::Component;
use crate::deadletter::DeadLetterReason;
use crate::envelope::{DeliveryGuarantee, MessageEnvelope, MessageType, new_message_id};
use crate::error::{RequestError, SendError};
use crate::failure::GuestErrorCode;
use crate::id::ComponentId;
use crate::runtime::Inner;
use crate::send::Origin;
use crate::storage::{RedbBackend, StorageError, StorageOperation};
use crate::sync::Arc;

pub(crate) use types::{Error as GuestError, ErrorCode};

/// Everything one guest instance's `Store` holds.
pub(crate) struct HostState {
    pub(crate) id: ComponentId,
    /// Set by the handler's `init`, from the runtime's context.
    pub(crate) runtime: Weak<Inner>,
    pub(crate) me: Weak<Component>,
    pub(crate) caps: Arc<Capabilities>,
    pub(crate) storage: Option<Arc<RedbBackend>>,
    pub(crate) limits: Limiter,
    pub(crate) stats: Arc<WasmStats>,
    pub(crate) log: LogSink,
}

fn error(code: ErrorCode, message: impl Into<String>) -> GuestError {
    GuestError { code, message: message.into() }
}

fn send_error(e: &SendError) -> GuestError {
    let code = match e {
        SendError::Full(_) | SendError::Timeout(_) => ErrorCode::MailboxFull,
        SendError::NoSuchComponent(_) => ErrorCode::NoSuchComponent,
        SendError::Closed(_) => ErrorCode::Closed,
        SendError::PayloadTooLarge(_) => ErrorCode::TooLarge,
        SendError::Invalid(..) => ErrorCode::InvalidArgument,
    };
    error(code, e.to_string())
}

fn storage_error(e: &StorageError) -> GuestError {
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
        RequestError::WouldBlockWorker => ErrorCode::Internal,
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
            | DeadLetterReason::ComponentStopped => ErrorCode::Closed,
            DeadLetterReason::LateReply
            | DeadLetterReason::NoSubscribers
            | DeadLetterReason::Duplicate
            | DeadLetterReason::UnexpectedResponder => ErrorCode::Internal,
        },
    };
    error(code, e.to_string())
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

impl HostState {
    fn runtime(&self) -> Result<(Arc<Inner>, Arc<Component>), GuestError> {
        match (self.runtime.upgrade(), self.me.upgrade()) {
            (Some(inner), Some(me)) => Ok((inner, me)),
            _ => Err(error(ErrorCode::Closed, "the runtime is shutting down")),
        }
    }

    fn denied(&self, what: &str) -> GuestError {
        self.stats.capability_denials.fetch_add(1, Ordering::Relaxed);
        error(ErrorCode::PermissionDenied, format!("{} may not {what}", self.id))
    }

    fn target(
        &self,
        to: &str,
        verb: &str,
        allowed: &[super::config::TargetPattern],
    ) -> Result<ComponentId, GuestError> {
        let id = ComponentId::new(to).map_err(|e| error(ErrorCode::InvalidArgument, e.to_string()))?;
        if !Capabilities::allows(allowed, id.as_str()) {
            return Err(self.denied(&format!("{verb} {id}")));
        }
        Ok(id)
    }

    fn check_payload(&self, payload: &[u8]) -> Result<(), GuestError> {
        match self.caps.max_payload_bytes {
            Some(max) if payload.len() > max => {
                Err(error(ErrorCode::TooLarge, format!("payload of {} bytes exceeds {max}", payload.len())))
            }
            _ => Ok(()),
        }
    }

    fn check_topic(&self, topic: &str, verb: &str, allowed: &[super::config::TargetPattern]) -> Result<(), GuestError> {
        if topic.is_empty() || topic.len() > 256 {
            return Err(error(ErrorCode::InvalidArgument, "a topic is 1 to 256 bytes"));
        }
        if !Capabilities::allows(allowed, topic) {
            return Err(self.denied(&format!("{verb} topic {topic:?}")));
        }
        Ok(())
    }

    fn store(&self, write: bool) -> Result<&RedbBackend, GuestError> {
        let allowed = match self.caps.storage {
            StorageRights::None => false,
            StorageRights::Read => !write,
            StorageRights::ReadWrite => true,
        };
        if !allowed {
            return Err(self.denied(if write { "write storage" } else { "read storage" }));
        }
        self.storage.as_deref().ok_or_else(|| error(ErrorCode::Storage, "the host has no storage configured"))
    }

    fn envelope(&self, message_type: MessageType, to: ComponentId, payload: Vec<u8>, codec: u64) -> MessageEnvelope {
        MessageEnvelope::new(message_type, self.id.clone(), to, payload, codec, new_message_id())
    }
}

impl types::Host for HostState {}

impl messaging::Host for HostState {
    fn send_message(&mut self, to: String, payload: Vec<u8>, codec: u64) -> Result<(), GuestError> {
        let to = self.target(&to, "send to", &self.caps.send.clone())?;
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
        let to = self.target(&to, "request from", &self.caps.request.clone())?;
        self.check_payload(&payload)?;
        let (inner, me) = self.runtime()?;
        let env = self.envelope(MessageType::Request, to, payload, codec);
        inner.request_from_component(&me, env, Duration::from_millis(u64::from(timeout_ms))).map_err(|e| send_error(&e))
    }

    fn publish(&mut self, topic: String, payload: Vec<u8>, codec: u64) -> Result<u32, GuestError> {
        self.check_topic(&topic, "publish to", &self.caps.publish.clone())?;
        self.check_payload(&payload)?;
        let (inner, _) = self.runtime()?;
        let env = self.envelope(MessageType::Publish, self.id.clone(), payload, codec).with_topic(topic);
        let report = inner.publish(env, Origin::Worker).map_err(|e| send_error(&e))?;
        Ok(u32::try_from(report.delivered).unwrap_or(u32::MAX))
    }

    fn subscribe(&mut self, topic: String) -> Result<(), GuestError> {
        self.check_topic(&topic, "subscribe to", &self.caps.subscribe.clone())?;
        let (inner, _) = self.runtime()?;
        inner.subscribe(&topic, self.id.clone());
        Ok(())
    }

    fn unsubscribe(&mut self, topic: String) -> Result<(), GuestError> {
        let (inner, _) = self.runtime()?;
        inner.unsubscribe(&topic, &self.id);
        Ok(())
    }

    fn self_id(&mut self) -> String {
        self.id.to_string()
    }
}

impl storage::Host for HostState {
    fn get(&mut self, key: Vec<u8>) -> Result<Option<Vec<u8>>, GuestError> {
        self.store(false)?.get(self.id.as_str(), &key).map_err(|e| storage_error(&e))
    }

    fn set(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), GuestError> {
        self.store(true)?.set(self.id.as_str(), &key, &value).map_err(|e| storage_error(&e))
    }

    fn delete(&mut self, key: Vec<u8>) -> Result<(), GuestError> {
        self.store(true)?.delete(self.id.as_str(), &key).map_err(|e| storage_error(&e))
    }

    fn list_keys(&mut self, prefix: Vec<u8>) -> Result<Vec<Vec<u8>>, GuestError> {
        self.store(false)?.list_keys(self.id.as_str(), &prefix).map_err(|e| storage_error(&e))
    }

    fn batch(&mut self, writes: Vec<storage::Write>) -> Result<(), GuestError> {
        let store = self.store(true)?;
        let namespace = self.id.as_str().to_string();
        let mut tx = store.transaction();
        for w in writes {
            let op = match w {
                storage::Write::Set((key, value)) => StorageOperation::Set { namespace: namespace.clone(), key, value },
                storage::Write::Delete(key) => StorageOperation::Delete { namespace: namespace.clone(), key },
            };
            tx.add_operation(op).map_err(|e| storage_error(&e))?;
        }
        tx.commit().map_err(|e| storage_error(&e))
    }
}

impl logging::Host for HostState {
    fn log(&mut self, level: logging::Level, message: String) {
        let level = match level {
            logging::Level::Trace => "trace",
            logging::Level::Debug => "debug",
            logging::Level::Info => "info",
            logging::Level::Warn => "warn",
            logging::Level::Error => "error",
        };
        // Bound what one call can emit.
        let message: String = message.chars().take(4096).collect();
        (self.log)(&self.id, level, &message);
    }
}
