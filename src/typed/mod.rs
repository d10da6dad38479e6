//! The typed layer: components and sends in terms of your own serde types, over the same
//! envelopes (bytes plus a multicodec code, see [`crate::codec`]).
//!
//! - **Sends.** [`crate::ComponentRef::tell`] / [`crate::ComponentRef::ask`] (and the same on
//!   [`crate::RuntimeHandle`] by id, and on [`crate::Context`] inside a handler) encode a
//!   value with the runtime's codec ([`crate::RuntimeBuilder::codec`], JSON by default)
//!   and build the envelope; `publish_on` publishes one on a topic. The host's sends come
//!   from [`crate::RuntimeBuilder::host_id`]. An [`Ask`] is waited on ([`Ask::wait`]) or
//!   awaited, and decodes the answer into the type asked for.
//! - **Components.** A type implementing [`Component`] is state plus a function of one
//!   typed message (a serde enum names the operations) returning a typed reply; it is a
//!   [`crate::Handler`] as it is, so [`crate::RuntimeHandle::spawn`] registers it from a
//!   constructor (`rt.spawn("counter", Counter::default)`), which also makes it anew after
//!   a crash.
//!
//! Nothing here is on the send path of code that does not use it: a typed send is an
//! encode and then the same `try_send` / `request` as any other.
//!
//! ```
//! use switchyard::{Component, Context, HandlerError, Runtime};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! enum Counter { Inc(u64), Get }
//!
//! #[derive(Default)]
//! struct Count(u64);
//!
//! impl Component for Count {
//!     type Message = Counter;
//!     type Reply = u64;
//!     fn handle(&mut self, _ctx: &mut Context<'_>, msg: Counter) -> Result<u64, HandlerError> {
//!         if let Counter::Inc(n) = msg {
//!             self.0 += n;
//!         }
//!         Ok(self.0)
//!     }
//! }
//!
//! let rt = Runtime::builder().workers(1).build()?;
//! let counter = rt.spawn("counter", Count::default)?;
//! counter.tell(&Counter::Inc(2))?;
//! let n: u64 = counter.ask(&Counter::Get).wait()?;
//! assert_eq!(n, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ask;
mod component;
mod sends;

pub use ask::{Ask, AskError};
pub use component::Component;
pub use sends::TellError;
