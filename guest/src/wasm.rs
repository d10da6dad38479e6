//! The sandboxed backend: the bindings of `wit/switchyard.wit` (world `guest-with-init`),
//! and the adapter that exports a [`Component`] through them.
//!
//! One component per WebAssembly module: its state lives in a thread-local slot (a
//! component instance runs one call at a time, on one thread), made with `Default` at the
//! first call. A trap ends the instance, and the host makes a fresh one, whose state
//! starts over.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::time::Duration;

use crate::context::{self, Backend, Context, Dropped, Envelope, Level, MessageType};
use crate::{Component, Error, ErrorCode};

/// The generated bindings (used by the `export!` macro from the component's crate).
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "guest-with-init",
        pub_export_macro: true,
        export_macro_name: "__export_guest",
        default_bindings_module: "switchyard_guest::__bindings",
    });
}

use bindings::exports::switchyard::component::{handler, lifecycle};
use bindings::switchyard::component::{delegation, logging, messaging, storage, types};

thread_local! {
    static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    static DROPPED: Dropped = Dropped::default();
}

/// Runs `f` on the module's component, made with `Default` the first time; then fails
/// the kept requests whose `Deferred` the call dropped.
fn with_component<C: Component, R>(f: impl FnOnce(&mut C) -> R) -> R {
    let r = STATE.with(|slot| {
        let mut slot = slot.borrow_mut();
        let any = slot.get_or_insert_with(|| Box::new(C::default()));
        let component = any.downcast_mut::<C>().expect("one component type per module");
        f(component)
    });
    context::fail_dropped(&mut Imports);
    r
}

/// Exports component `C` (through `switchyard_guest::export!`).
#[doc(hidden)]
pub struct Adapter<C>(PhantomData<C>);

fn view(e: &types::Envelope) -> Envelope<'_> {
    Envelope {
        message_type: match e.message_type {
            types::MessageType::FireAndForget => MessageType::FireAndForget,
            types::MessageType::Request => MessageType::Request,
            types::MessageType::Response => MessageType::Response,
            types::MessageType::Publish => MessageType::Publish,
        },
        from: &e.from,
        to: &e.to,
        topic: e.topic.as_deref(),
        payload: &e.payload,
        codec: e.codec,
        message_id: &e.message_id,
        correlation_id: e.correlation_id.as_deref(),
    }
}

fn to_wit(e: Error) -> types::Error {
    use types::ErrorCode as W;
    let code = match e.code {
        ErrorCode::NoSuchComponent => W::NoSuchComponent,
        ErrorCode::MailboxFull => W::MailboxFull,
        ErrorCode::Closed => W::Closed,
        ErrorCode::TooLarge => W::TooLarge,
        ErrorCode::InvalidArgument => W::InvalidArgument,
        ErrorCode::PermissionDenied => W::PermissionDenied,
        ErrorCode::QuotaExceeded => W::QuotaExceeded,
        ErrorCode::Storage => W::Storage,
        ErrorCode::Timeout => W::Timeout,
        ErrorCode::HandlerFailed => W::HandlerFailed,
        ErrorCode::Internal => W::Internal,
    };
    types::Error { code, message: e.message }
}

fn from_wit(e: types::Error) -> Error {
    use types::ErrorCode as W;
    let code = match e.code {
        W::NoSuchComponent => ErrorCode::NoSuchComponent,
        W::MailboxFull => ErrorCode::MailboxFull,
        W::Closed => ErrorCode::Closed,
        W::TooLarge => ErrorCode::TooLarge,
        W::InvalidArgument => ErrorCode::InvalidArgument,
        W::PermissionDenied => ErrorCode::PermissionDenied,
        W::QuotaExceeded => ErrorCode::QuotaExceeded,
        W::Storage => ErrorCode::Storage,
        W::Timeout => ErrorCode::Timeout,
        W::HandlerFailed => ErrorCode::HandlerFailed,
        W::Internal => ErrorCode::Internal,
    };
    Error { code, message: e.message }
}

impl<C: Component> handler::Guest for Adapter<C> {
    fn handle_message(msg: types::Envelope) -> Result<Option<Vec<u8>>, types::Error> {
        // The host answers in the request's codec: `dispatch` encodes in that one.
        with_component::<C, _>(|c| context::dispatch(c, &mut Imports, view(&msg)))
            .map(|reply| reply.map(|(bytes, _code)| bytes))
            .map_err(to_wit)
    }

    fn handle_callback(request_id: String, outcome: Result<types::Envelope, types::Error>) -> Result<(), types::Error> {
        with_component::<C, _>(|c| {
            let mut imports = Imports;
            let mut ctx = Context::new(&mut imports, None);
            let outcome = match &outcome {
                Ok(env) => Ok(view(env)),
                Err(e) => Err(from_wit(e.clone())),
            };
            c.callback(&mut ctx, &request_id, outcome)
        })
        .map_err(to_wit)
    }
}

impl<C: Component> lifecycle::Guest for Adapter<C> {
    fn init() -> Result<(), types::Error> {
        with_component::<C, _>(|c| c.init(&mut Context::new(&mut Imports, None))).map_err(to_wit)
    }

    fn health() -> Result<(), types::Error> {
        with_component::<C, _>(|c| c.health(&mut Context::new(&mut Imports, None))).map_err(to_wit)
    }
}

/// The WIT imports, as a [`Backend`].
struct Imports;

impl Backend for Imports {
    fn self_id(&mut self) -> String {
        messaging::self_id()
    }

    fn send(&mut self, to: &str, payload: Vec<u8>, codec: u64) -> Result<(), Error> {
        messaging::send_message(to, &payload, codec).map_err(from_wit)
    }

    fn request(&mut self, to: &str, payload: Vec<u8>, codec: u64, timeout: Duration) -> Result<String, Error> {
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        messaging::send_request(to, &payload, codec, ms).map_err(from_wit)
    }

    fn publish(&mut self, topic: &str, payload: Vec<u8>, codec: u64) -> Result<u32, Error> {
        messaging::publish(topic, &payload, codec).map_err(from_wit)
    }

    fn subscribe(&mut self, topic: &str) -> Result<(), Error> {
        messaging::subscribe(topic).map_err(from_wit)
    }

    fn unsubscribe(&mut self, topic: &str) -> Result<(), Error> {
        messaging::unsubscribe(topic).map_err(from_wit)
    }

    fn forward(&mut self, to: &str) -> Result<(), Error> {
        delegation::forward(to).map_err(from_wit)
    }

    fn forward_with(&mut self, to: &str, payload: Vec<u8>, codec: u64) -> Result<(), Error> {
        delegation::forward_with(to, &payload, codec).map_err(from_wit)
    }

    fn defer(&mut self) -> Result<String, Error> {
        delegation::defer().map_err(from_wit)
    }

    fn reply_deferred(&mut self, request_id: &str, payload: Vec<u8>, codec: u64) -> Result<(), Error> {
        delegation::reply(request_id, &payload, codec).map_err(from_wit)
    }

    fn fail_deferred(&mut self, request_id: &str, message: &str) -> Result<(), Error> {
        delegation::fail(request_id, message).map_err(from_wit)
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        storage::get(key).map_err(from_wit)
    }

    fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        storage::set(key, value).map_err(from_wit)
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), Error> {
        storage::delete(key).map_err(from_wit)
    }

    fn list(&mut self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
        storage::list_keys(prefix).map_err(from_wit)
    }

    fn log(&mut self, level: Level, message: &str) {
        let level = match level {
            Level::Trace => logging::Level::Trace,
            Level::Debug => logging::Level::Debug,
            Level::Info => logging::Level::Info,
            Level::Warn => logging::Level::Warn,
            Level::Error => logging::Level::Error,
        };
        logging::log(level, message);
    }

    fn dropped(&mut self) -> Dropped {
        DROPPED.with(Dropped::clone)
    }
}
