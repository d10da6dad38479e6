//! # switchyard
//!
//! An in-process messaging engine: components addressed by [`ComponentId`] receive
//! [`MessageEnvelope`]s in bounded mailboxes and run on a pool of worker threads, one worker
//! at a time per component. A send resolves its target in a sharded map and pushes
//! straight into the target's mailbox: there is no broker, no broadcast and no router
//! thread, and no async runtime is needed.
//!
//! ## A first component
//!
//! A component is a [`Handler`]; the runtime makes it from a factory (so it can restart it
//! after a panic) and calls it with a [`Context`] for each message.
//!
//! ```
//! use std::time::Duration;
//! use switchyard::{codec, handler_fn, ComponentId, ComponentSpec, MessageEnvelope, MessageType, Runtime};
//!
//! let rt = Runtime::builder().workers(2).pin_workers(false).build()?;
//! let echo = ComponentId::new("echo")?;
//! // Replies to each request with its own payload.
//! rt.register(echo.clone(), ComponentSpec::new(|| handler_fn(|_ctx, msg| Ok(Some(msg.payload.clone())))))?;
//!
//! let me = ComponentId::new("host")?;
//! let req = MessageEnvelope::new(MessageType::Request, me, echo, b"ping".to_vec(), codec::RAW, switchyard::new_message_id());
//! let reply = rt.request(req, Duration::from_secs(1))?.wait()?;
//! assert_eq!(reply.payload, b"ping");
//!
//! let report = rt.shutdown(Duration::from_secs(1));
//! assert!(report.stats.is_balanced());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Backpressure: nothing is lost silently
//!
//! Mailboxes are bounded. [`RuntimeHandle::try_send`] returns at once and hands the
//! envelope back in the error ([`SendError::Full`], [`SendError::NoSuchComponent`],
//! [`SendError::Closed`], ...); [`RuntimeHandle::send_timeout`] waits for space up to a
//! deadline, except on a worker thread, where it never waits. Messages the runtime accepted
//! but could not handle are dead-lettered with a [`DeadLetterReason`].
//!
//! ```
//! use switchyard::{codec, handler_fn, ComponentId, ComponentSpec, MessageEnvelope, MessageType, Runtime, SendError};
//!
//! let rt = Runtime::builder().workers(1).pin_workers(false).build()?;
//! let nobody = ComponentId::new("nobody")?;
//! let env = MessageEnvelope::new(MessageType::FireAndForget, nobody.clone(), nobody, vec![1], codec::RAW, "m-1");
//! match rt.try_send(env) {
//!     Err(SendError::NoSuchComponent(back)) => assert_eq!(back.payload, vec![1]),
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Patterns
//!
//! - **Fire-and-forget**: `try_send` / `send_timeout` / [`Context::send`].
//! - **Request-response**: from the host, [`RuntimeHandle::request`] returns a
//!   [`ReplyHandle`] to block on (`wait`, `wait_timeout`) or `.await`; from a component,
//!   [`Context::request`] returns a request id and the outcome arrives later through
//!   [`Handler::handle_callback`], never by blocking a worker. Either way the requester
//!   gets exactly one outcome: the response, or a timeout enforced by the runtime's timer.
//! - **Publish-subscribe**: [`RuntimeHandle::subscribe`] / [`Context::subscribe`], then
//!   [`RuntimeHandle::publish`] pushes a copy straight into each subscriber's mailbox.
//!
//! ## Typed messages, and handing requests on
//!
//! The wire is bytes plus a multicodec code; the typed layer sits on it. A [`Component`]
//! is state plus a function of its typed message returning its typed reply;
//! [`RuntimeHandle::spawn`] registers one and returns a [`ComponentRef`], whose
//! [`tell`](ComponentRef::tell) and [`ask`](ComponentRef::ask) encode with the runtime's
//! codec (JSON or CBOR, [`codec`]) and decode the answer ([`Ask::wait`] or `.await`). A
//! handler can hand the request it is handling to another component
//! ([`Context::forward`], [`Context::forward_with`]), whose answer is then the requester's
//! one outcome under the original deadline, or keep it to answer later
//! ([`Context::defer`], [`DeferredReply`]). See the `typed` examples in `examples/` and, for
//! components written once and run natively or sandboxed, the `switchyard-guest` crate.
//!
//! ## Supervision and delivery guarantees
//!
//! A panicking handler is caught (a WebAssembly trap is handled the same way); the message
//! is redelivered ([`DeliveryGuarantee::AtLeastOnce`]) or dead-lettered with a typed
//! [`DeadLetterReason`] (`HandlerPanicked`, `Trapped` with its [`TrapKind`], `HandlerFailed`
//! with a guest's [`GuestErrorCode`]), a waiting requester gets that reason in
//! [`RequestError::Failed`], and the component is restarted from its factory under its
//! [`Supervision`] ([`RestartPolicy`], backoff, restart limit) with its mailbox kept. With the `exactly-once-delivery` feature, `DeliveryGuarantee::ExactlyOnce`
//! adds deduplication by message id within a bounded window.
//!
//! ## Health and readiness
//!
//! [`RuntimeHandle::health`] asks one component whether it is well ([`Handler::health`];
//! a WASM guest's optional `health` export): the question goes into the lane that request
//! outcomes use, ahead of the mailbox, so a component whose mailbox is full still answers
//! at its next step. The [`HealthStatus`] also says when the component cannot answer:
//! restarting, stopped, busy past the timeout, or not registered.
//! [`RuntimeHandle::readiness`] sums up every component without asking any ([`Readiness`]).
//!
//! ## Accounting
//!
//! [`RuntimeHandle::stats`] returns a [`RoutingStatsSnapshot`]; once no message is in flight,
//! `messages_sent == messages_handled + messages_dead_lettered + routing_failures +
//! messages_forwarded` (the last counts what other nodes of a cluster took).
//! [`Runtime::shutdown`] drains up to a deadline, dead-letters the rest and joins every thread.
//!
//! ## Correctness
//!
//! The concurrency core (state word, run queues, parking, request completion, close and
//! drain) is model-checked with loom: see `loom-tests/` and the command in the README.
//!
//! ## WebAssembly components
//!
//! With the `wasm` feature (on by default), a [`WasmHost`] loads components of the world in
//! `wit/switchyard.wit` and registers them next to native handlers: same workers, same
//! mailboxes, with per-message fuel and deadline, a memory cap and [`Capabilities`] (whom
//! a component may send to, what it may do with its storage namespace, which is named by
//! its plain component id). A core module
//! written against the canonical ABI becomes such a component with [`componentize`]
//! (`switchyard component new`).
//!
//! ```
//! # #[cfg(feature = "wasm")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use switchyard::{
//!     codec, handler_fn, Capabilities, ComponentId, ComponentSpec, MessageEnvelope, MessageType, Runtime,
//!     TargetPattern, WasmConfig, WasmHost, WasmOptions,
//! };
//!
//! let rt = Runtime::builder().workers(2).pin_workers(false).build()?;
//! let host = WasmHost::new(WasmConfig::default())?;
//! // Built by `switchyard component new` from examples/pipeline/transform.wat: upper-cases a
//! // record, sends it on to "store", and replies to a request with it.
//! let code = host.load_file(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pipeline/transform.wasm"))?;
//! let options = WasmOptions::default()
//!     .capabilities(Capabilities { send: vec![TargetPattern::parse("store")], ..Capabilities::default() })
//!     .fuel_per_message(1_000_000);
//! let transform = ComponentId::new("transform")?;
//! host.register(&rt.handle(), transform.clone(), &code, options)?;
//! // Here "store" is a native handler: WASM and native components mix freely.
//! rt.register(ComponentId::new("store")?, ComponentSpec::new(|| handler_fn(|_ctx, _msg| Ok(None))))?;
//!
//! let me = ComponentId::new("host")?;
//! let req = MessageEnvelope::new(MessageType::Request, me, transform.clone(), b"hello".to_vec(), codec::RAW, "r-1");
//! assert_eq!(rt.request(req, Duration::from_secs(5))?.wait()?.payload, b"HELLO");
//! assert!(host.stats(&transform).map_or(0, |s| s.fuel_consumed) > 0);
//! rt.shutdown(Duration::from_secs(1));
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "wasm"))]
//! # fn main() {}
//! ```
//!
//! ## The command line
//!
//! The `switchyard` command (the `switchyard-cli` package in `cli/`) runs WASM components
//! from a TOML manifest, with storage in a redb file, messages from stdin and a stats table
//! at exit; it also builds and inspects components and runs the compare report. See the
//! README and `examples/pipeline/manifest.toml`.
#![warn(missing_docs)]
// A failed send hands the envelope back by value (as crossbeam's `TrySendError<T>` does) so
// the failure path allocates nothing; the large `Err` is deliberate.
#![allow(clippy::result_large_err)]
// Loom builds compile the whole crate but the models drive only the core.
#![cfg_attr(loom, allow(dead_code))]

#[cfg(all(feature = "cluster", not(loom)))]
pub mod cluster;
pub mod codec;
mod component;
mod component_ref;
mod deadletter;
#[cfg(feature = "exactly-once-delivery")]
mod dedup;
mod delegation;
mod envelope;
mod error;
mod failure;
#[cfg(not(loom))]
mod handle;
mod handler;
mod health;
mod id;
mod idle;
mod mailbox;
mod message_id;
#[cfg(all(feature = "metrics", not(loom)))]
pub mod metrics;
mod parker;
mod registry;
mod reply;
mod request;
mod routing;
mod runtime;
mod send;
mod spec;
mod stats;
// Storage is I/O-bound and not model-checked; loom builds leave it (and redb) out.
#[cfg(not(loom))]
mod storage;
mod supervisor;
mod sync;
pub mod text;
mod timer;
mod topics;
#[cfg(all(feature = "tracing", not(loom)))]
mod trace;
mod turn;
#[cfg(not(loom))]
mod typed;
#[cfg(all(feature = "wasm", not(loom)))]
mod wasm;
mod workers;

#[cfg(loom)]
pub mod model;

// README's code blocks are compiled and run with the doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The attribute macro [`StorageBackend`] and [`StorageTransaction`] are written with,
/// re-exported so a custom backend needs no `async-trait` dependency of its own.
pub use async_trait::async_trait;
pub use component_ref::ComponentRef;
pub use deadletter::{DeadLetter, DeadLetterHook, DeadLetterReason, REASON_NAMES};
#[cfg(not(loom))]
pub use delegation::DeferredReply;
pub use delegation::ForwardError;
pub use envelope::{DeliveryGuarantee, MessageEnvelope, MessageType, new_message_id};
pub use error::{
    BatchError, BuildError, Error, HandlerError, InvalidEnvelope, RegisterError, ReplyError, RequestError, SendError,
    SendErrorKind, UnregisterError, WaitTimeoutError,
};
pub use failure::{GuestErrorCode, TrapKind};
#[cfg(not(loom))]
pub use handle::RuntimeHandle;
pub use handler::{Context, FnHandler, Handler, handler_fn};
pub use health::{Health, HealthStatus, Readiness};
pub use id::{ComponentId, IdError, MAX_ID_LEN};
pub use idle::{DEFAULT_SPINS, IdleStrategy, MAX_BACKOFF_STEPS};
pub use message_id::MessageId;
pub use reply::ReplyHandle;
#[cfg(not(loom))]
pub use routing::DirectRouting;
pub use routing::RoutingStrategy;
pub use runtime::{MAX_DEAD_LETTER_CAPACITY, MAX_WORKERS, RuntimeConfig, ShutdownReport, StuckComponent};
#[cfg(not(loom))]
pub use runtime::{Runtime, RuntimeBuilder};
pub use spec::{ComponentConfig, ComponentSpec, HandlerFactory, MAX_MAILBOX_CAPACITY};
pub use stats::{ComponentStatsSnapshot, RoutingStatsSnapshot};
#[cfg(not(loom))]
pub use storage::{
    DEFAULT_MAX_KEY_SIZE, DEFAULT_MAX_VALUE_SIZE, DurabilityMode, MAX_NAMESPACE_LEN, OperationResult, QuotaResource,
    RedbBackend, RedbTransaction, StorageBackend, StorageConfig, StorageError, StorageOperation, StorageQuota,
    StorageTransaction, StorageUsage, block_on,
};
pub use supervisor::{RestartPolicy, Supervision};
pub use topics::PublishReport;
#[cfg(not(loom))]
pub use typed::{Ask, AskError, Component, TellError};
#[cfg(all(feature = "wasm", feature = "tracing", not(loom)))]
pub use wasm::tracing_log_sink;
#[cfg(all(feature = "wasm", not(loom)))]
pub use wasm::{
    Capabilities, CompileCacheStats, DetachedInstance, DirGrant, HANDLER_EXPORT, HostError, LIFECYCLE_EXPORT,
    LoadError, LogSink, MAX_COMPONENT_FILE_BYTES, OutboundRule, StorageRights, TargetPattern, UpgradeError, WIT,
    WORLD_PACKAGE, WasiGrants, WasmComponent, WasmConfig, WasmHost, WasmOptions, WasmStatsSnapshot, componentize,
    componentize_with_wit, read_component_file,
};
