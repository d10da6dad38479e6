//! The native backend (feature `native`): a [`Component`] registered in-process as a
//! switchyard handler, at full speed, with the same messages, replies and storage as the
//! same component run sandboxed.
//!
//! ```
//! use std::sync::Arc;
//! use switchyard::{RedbBackend, Runtime};
//! use switchyard_guest::{Component, Context, Error};
//!
//! #[derive(Default)]
//! struct Echo;
//!
//! impl Component for Echo {
//!     type Message = String;
//!     type Reply = String;
//!     fn handle(&mut self, _ctx: &mut Context<'_>, s: String) -> Result<String, Error> {
//!         Ok(s)
//!     }
//! }
//!
//! let rt = Runtime::builder().workers(1).build()?;
//! let storage = Arc::new(RedbBackend::in_memory()?);
//! let echo = rt.spawn_spec("echo", switchyard_guest::native::spec::<Echo>(Some(storage)))?;
//! assert_eq!(echo.ask::<String>(&"hi").wait()?, "hi");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What differs from the sandbox is what a native component is trusted with: it runs in
//! the host's process, unmetered, and its capabilities are not checked (its calls succeed
//! wherever the host's own would). Its storage is the namespace named by its component id
//! in the backend given to [`spec`], as a guest's is in its host's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard::{
    ComponentId, ComponentSpec, DeferredReply, ForwardError, Handler, HandlerError, Health, MessageEnvelope,
    RedbBackend, RequestError, SendError, SendErrorKind, StorageError,
};

use crate::context::{self, Backend, Context, Dropped, Envelope, Level, MessageType};
use crate::{Component, Error, ErrorCode};

/// Most requests a native component keeps to answer later (as a guest instance).
const MAX_KEPT: usize = 1024;

/// Where a native component's log lines go: `(component, level, message)`.
pub type LogFn = Arc<dyn Fn(&str, &str, &str) + Send + Sync>;

/// A spec that runs `C` natively, with its storage in `storage` (none: storage calls
/// fail with `permission-denied`, as for a guest without storage rights) and its log lines
/// on stderr as `[level] component: message` (what the WASM host's default sink writes).
pub fn spec<C: Component + Send>(storage: Option<Arc<RedbBackend>>) -> ComponentSpec {
    let log: LogFn = Arc::new(|id: &str, level: &str, msg: &str| eprintln!("[{level}] {id}: {msg}"));
    spec_with_log::<C>(storage, log)
}

/// As [`spec`], with the log lines given to `log`.
pub fn spec_with_log<C: Component + Send>(storage: Option<Arc<RedbBackend>>, log: LogFn) -> ComponentSpec {
    ComponentSpec::new(move || Native {
        component: C::default(),
        storage: storage.clone(),
        kept: HashMap::new(),
        dropped: Dropped::default(),
        log: log.clone(),
    })
}

struct Native<C> {
    component: C,
    storage: Option<Arc<RedbBackend>>,
    kept: HashMap<String, DeferredReply>,
    dropped: Dropped,
    log: LogFn,
}

fn handler_error(e: Error) -> HandlerError {
    HandlerError::new(e.message)
}

fn view(e: &MessageEnvelope) -> Envelope<'_> {
    Envelope {
        message_type: match e.message_type {
            switchyard::MessageType::FireAndForget => MessageType::FireAndForget,
            switchyard::MessageType::Request => MessageType::Request,
            switchyard::MessageType::Response => MessageType::Response,
            switchyard::MessageType::Publish => MessageType::Publish,
        },
        from: e.from.as_str(),
        to: e.to.as_str(),
        topic: e.topic.as_deref(),
        payload: &e.payload,
        codec: e.codec,
        message_id: &e.message_id,
        correlation_id: e.correlation_id.as_deref(),
    }
}

impl<C: Component + Send> Native<C> {
    /// Runs `f` with the component and a context of its own on `ctx`; then fails the kept
    /// requests whose `Deferred` was dropped.
    fn with<R>(&mut self, ctx: &mut switchyard::Context<'_>, f: impl FnOnce(&mut C, &mut dyn Backend) -> R) -> R {
        let Native { component, storage, kept, dropped, log } = self;
        let mut backend = Engine { ctx, storage: storage.as_deref(), kept, dropped, log };
        let r = f(component, &mut backend);
        context::fail_dropped(&mut backend);
        r
    }
}

impl<C: Component + Send> Handler for Native<C> {
    fn init(&mut self, ctx: &mut switchyard::Context<'_>) -> Result<(), HandlerError> {
        self.with(ctx, |c, b| c.init(&mut Context::new(b, None))).map_err(handler_error)
    }

    fn handle(
        &mut self,
        ctx: &mut switchyard::Context<'_>,
        msg: &MessageEnvelope,
    ) -> Result<Option<Vec<u8>>, HandlerError> {
        let reply = self.with(ctx, |c, b| context::dispatch(c, b, view(msg))).map_err(handler_error)?;
        if let Some((bytes, code)) = reply {
            ctx.reply(bytes, code)?;
        }
        Ok(None)
    }

    fn handle_callback(
        &mut self,
        ctx: &mut switchyard::Context<'_>,
        request_id: &str,
        outcome: Result<&MessageEnvelope, &RequestError>,
    ) -> Result<(), HandlerError> {
        let outcome = match outcome {
            Ok(env) => Ok(view(env)),
            Err(e) => Err(Error::new(request_code(e), e.to_string())),
        };
        self.with(ctx, |c, b| c.callback(&mut Context::new(b, None), request_id, outcome)).map_err(handler_error)
    }

    fn health(&mut self, ctx: &mut switchyard::Context<'_>) -> Health {
        match self.with(ctx, |c, b| c.health(&mut Context::new(b, None))) {
            Ok(()) => Health::Healthy,
            Err(e) => Health::unhealthy(e.message),
        }
    }
}

fn request_code(e: &RequestError) -> ErrorCode {
    match e {
        RequestError::Timeout => ErrorCode::Timeout,
        RequestError::Failed(_) => ErrorCode::HandlerFailed,
        _ => ErrorCode::Closed,
    }
}

fn send_error(e: &SendError) -> Error {
    let code = match e.kind() {
        SendErrorKind::Full => ErrorCode::MailboxFull,
        SendErrorKind::NoSuchComponent => ErrorCode::NoSuchComponent,
        SendErrorKind::Closed => ErrorCode::Closed,
        SendErrorKind::Timeout => ErrorCode::Timeout,
        SendErrorKind::PayloadTooLarge => ErrorCode::TooLarge,
        SendErrorKind::Invalid => ErrorCode::InvalidArgument,
        _ => ErrorCode::Internal,
    };
    Error::new(code, e.to_string())
}

fn storage_error(e: &StorageError) -> Error {
    let code = match e {
        StorageError::QuotaExceeded { .. } => ErrorCode::QuotaExceeded,
        StorageError::KeyTooLarge { .. } | StorageError::ValueTooLarge { .. } => ErrorCode::TooLarge,
        _ => ErrorCode::Storage,
    };
    Error::new(code, e.to_string())
}

fn forward_error(e: ForwardError) -> Error {
    match e {
        ForwardError::Send(e) => send_error(&e),
        ForwardError::NotPending => Error::new(ErrorCode::Closed, e.to_string()),
        e => Error::new(ErrorCode::InvalidArgument, e.to_string()),
    }
}

fn id(s: &str) -> Result<ComponentId, Error> {
    ComponentId::new(s).map_err(|e| Error::new(ErrorCode::InvalidArgument, e.to_string()))
}

/// The engine, as a [`Backend`].
struct Engine<'c, 'a> {
    ctx: &'c mut switchyard::Context<'a>,
    storage: Option<&'c RedbBackend>,
    kept: &'c mut HashMap<String, DeferredReply>,
    dropped: &'c Dropped,
    log: &'c LogFn,
}

impl Engine<'_, '_> {
    fn store(&self) -> Result<&RedbBackend, Error> {
        self.storage.ok_or_else(|| Error::new(ErrorCode::PermissionDenied, "this component has no storage"))
    }

    fn kept(&mut self, request_id: &str) -> Result<DeferredReply, Error> {
        self.kept
            .remove(request_id)
            .ok_or_else(|| Error::new(ErrorCode::InvalidArgument, format!("no request {request_id:?} is kept")))
    }
}

impl Backend for Engine<'_, '_> {
    fn self_id(&mut self) -> String {
        self.ctx.id().to_string()
    }

    fn send(&mut self, to: &str, payload: Vec<u8>, codec: u64) -> Result<(), Error> {
        let env = MessageEnvelope::fire_and_forget(self.ctx.id().clone(), id(to)?, payload, codec);
        self.ctx.send(env).map_err(|e| send_error(&e))
    }

    fn request(&mut self, to: &str, payload: Vec<u8>, codec: u64, timeout: Duration) -> Result<String, Error> {
        let env = MessageEnvelope::request(self.ctx.id().clone(), id(to)?, payload, codec);
        self.ctx.request(env, timeout).map(String::from).map_err(|e| send_error(&e))
    }

    fn publish(&mut self, topic: &str, payload: Vec<u8>, codec: u64) -> Result<u32, Error> {
        let env = MessageEnvelope::publish(self.ctx.id().clone(), topic, payload, codec);
        let report = self.ctx.publish(env).map_err(|e| send_error(&e))?;
        Ok(u32::try_from(report.delivered).unwrap_or(u32::MAX))
    }

    fn subscribe(&mut self, topic: &str) -> Result<(), Error> {
        self.ctx.subscribe(topic);
        Ok(())
    }

    fn unsubscribe(&mut self, topic: &str) -> Result<(), Error> {
        self.ctx.unsubscribe(topic);
        Ok(())
    }

    fn forward(&mut self, to: &str) -> Result<(), Error> {
        self.ctx.forward(&id(to)?).map_err(forward_error)
    }

    fn forward_with(&mut self, to: &str, payload: Vec<u8>, codec: u64) -> Result<(), Error> {
        self.ctx.forward_payload(&id(to)?, payload, codec).map_err(forward_error)
    }

    fn defer(&mut self) -> Result<String, Error> {
        if self.kept.len() >= MAX_KEPT {
            // Requests that timed out (or were failed) are kept no longer.
            self.kept.retain(|_, d| d.is_pending());
        }
        if self.kept.len() >= MAX_KEPT {
            return Err(Error::new(ErrorCode::QuotaExceeded, format!("{MAX_KEPT} requests are kept already")));
        }
        let deferred = self.ctx.defer().map_err(|e| Error::new(ErrorCode::InvalidArgument, e.to_string()))?;
        let request_id = deferred.request_id().to_string();
        self.kept.insert(request_id.clone(), deferred);
        Ok(request_id)
    }

    fn reply_deferred(&mut self, request_id: &str, payload: Vec<u8>, codec: u64) -> Result<(), Error> {
        self.kept(request_id)?.reply(payload, codec);
        Ok(())
    }

    fn fail_deferred(&mut self, request_id: &str, message: &str) -> Result<(), Error> {
        self.kept(request_id)?.fail(message);
        Ok(())
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let ns = self.ctx.id().clone();
        self.store()?.get(ns.as_str(), key).map_err(|e| storage_error(&e))
    }

    fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        let ns = self.ctx.id().clone();
        self.store()?.set(ns.as_str(), key, value).map_err(|e| storage_error(&e))
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), Error> {
        let ns = self.ctx.id().clone();
        self.store()?.delete(ns.as_str(), key).map_err(|e| storage_error(&e))
    }

    fn list(&mut self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
        let ns = self.ctx.id().clone();
        self.store()?.list_keys(ns.as_str(), prefix).map_err(|e| storage_error(&e))
    }

    fn log(&mut self, level: Level, message: &str) {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        (self.log)(self.ctx.id().as_str(), level, message);
    }

    fn dropped(&mut self) -> Dropped {
        self.dropped.clone()
    }
}
