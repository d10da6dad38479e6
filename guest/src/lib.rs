//! # switchyard-guest
//!
//! Write a switchyard component in Rust once, and run it either way:
//!
//! - **sandboxed**: built for `wasm32-wasip2`, it is a WebAssembly component of the world in
//!   `wit/switchyard.wit` (the WIT and its bindings are inside this crate: nothing to copy),
//!   hosted by `switchyard run` or `WasmHost`, under fuel, deadlines, memory caps and
//!   capabilities;
//! - **native**: built for the host with the `native` feature, the same type registers
//!   in-process as a switchyard handler ([`native::spec`]), at full speed.
//!
//! Its callers cannot tell which: the messages, the replies and the stored state are the
//! same (a test runs one component both ways against the same messages).
//!
//! A component is a type with state (`&mut self`), made with `Default`, and one `handle`
//! function of its typed message (a serde enum names the operations) returning its typed
//! reply; `init`, `health` and `callback` have defaults. Messages and replies are JSON on
//! the wire (CBOR is read too), as the host's typed layer writes them.
//!
//! ```
//! use switchyard_guest::{Component, Context, Error};
//!
//! #[derive(serde::Deserialize)]
//! enum Op { Inc(u64), Get }
//!
//! #[derive(Default)]
//! struct Counter(u64);
//!
//! impl Component for Counter {
//!     type Message = Op;
//!     type Reply = u64;
//!     fn handle(&mut self, ctx: &mut Context<'_>, op: Op) -> Result<u64, Error> {
//!         if let Op::Inc(n) = op {
//!             self.0 += n;
//!             ctx.storage().set("count", &self.0)?;
//!         }
//!         Ok(self.0)
//!     }
//! }
//!
//! switchyard_guest::export!(Counter);
//! ```
//!
//! Build the sandboxed one with `cargo build --release --target wasm32-wasip2` (the
//! `.wasm` file is a component: `switchyard run` hosts it as it is). See
//! `examples/guests/rust/` in the repository.

// Built for neither backend (no `native` feature, not wasm32), the SDK's types compile but
// nothing calls the backend's side.
#![cfg_attr(not(any(target_arch = "wasm32", feature = "native")), allow(dead_code))]

mod codec;
mod context;
#[cfg(feature = "native")]
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_arch = "wasm32")]
mod wasm;

pub use codec::CodecError;
pub use context::{Context, Deferred, Envelope, Level, MessageType, Storage};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A switchyard component: state plus a function of its typed message.
///
/// `Default` makes it: when the component starts, and again after a crash (a WebAssembly
/// trap, a native panic), when its in-memory state starts over. What must survive goes in
/// [`Context::storage`].
pub trait Component: Default + 'static {
    /// What the component is sent (JSON or CBOR on the wire).
    type Message: DeserializeOwned;
    /// What it answers a request with (JSON, or the request's codec when it is CBOR).
    type Reply: Serialize;

    /// Handles one message. For a request the reply is its answer (unless the handler
    /// answered otherwise: [`Context::forward`], [`Context::defer`]); for a one-way message
    /// or a publish it is dropped.
    ///
    /// # Errors
    /// The message fails: it is dead-lettered, and a waiting requester gets the error.
    fn handle(&mut self, ctx: &mut Context<'_>, msg: Self::Message) -> Result<Self::Reply, Error>;

    /// Runs once when the component starts (and after each restart), before any message.
    ///
    /// # Errors
    /// The component does not start (counted as a crash).
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<(), Error> {
        let _ = ctx;
        Ok(())
    }

    /// The outcome of a request made with [`Context::ask`]: the answer, or why there is none.
    ///
    /// # Errors
    /// The callback fails (the answer is dead-lettered).
    fn callback(
        &mut self,
        ctx: &mut Context<'_>,
        request_id: &str,
        outcome: Result<Envelope<'_>, Error>,
    ) -> Result<(), Error> {
        let _ = (ctx, request_id, outcome);
        Ok(())
    }

    /// Whether the component can do its job (a health check). `Err` carries the reason.
    ///
    /// # Errors
    /// Unhealthy, with the reason.
    fn health(&mut self, ctx: &mut Context<'_>) -> Result<(), Error> {
        let _ = ctx;
        Ok(())
    }
}

/// What went wrong, as the WIT `error` carries it: a code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The kind of failure.
    pub code: ErrorCode,
    /// Its text.
    pub message: String,
}

/// The kinds of failure (the WIT `error-code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// No component is registered under the id.
    NoSuchComponent,
    /// The target's mailbox is full.
    MailboxFull,
    /// The target (or the runtime) is closed.
    Closed,
    /// A payload, key or value is too large.
    TooLarge,
    /// An argument is malformed.
    InvalidArgument,
    /// The component's capabilities do not allow it.
    PermissionDenied,
    /// A storage quota would be exceeded.
    QuotaExceeded,
    /// The storage backend failed.
    Storage,
    /// A request timed out.
    Timeout,
    /// The handler failed (the default for a component's own errors).
    HandlerFailed,
    /// Something in the host failed.
    Internal,
}

impl Error {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// A handler failure with `message`.
    pub fn msg(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::HandlerFailed, message)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::msg(message)
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::msg(message)
    }
}

impl From<CodecError> for Error {
    fn from(e: CodecError) -> Self {
        Error::new(ErrorCode::InvalidArgument, e.to_string())
    }
}

/// Exports a [`Component`] as the component this WebAssembly module is (call it once, at
/// the crate's top level). Built for another target it does nothing: the type is then run
/// natively with [`native::spec`] (feature `native`).
#[macro_export]
macro_rules! export {
    ($component:ty) => {
        // wit-bindgen's export macro takes an identifier: name the adapter of `$component`.
        #[cfg(target_arch = "wasm32")]
        type __SwitchyardComponent = $crate::__Adapter<$component>;
        #[cfg(target_arch = "wasm32")]
        $crate::__bindings::__export_guest!(__SwitchyardComponent with_types_in $crate::__bindings);
    };
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub use wasm::{Adapter as __Adapter, bindings as __bindings};
