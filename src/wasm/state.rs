//! The per-`Store` host state: one [`HostState`] per guest instance, with a context per
//! imported interface, the views its host calls run on, and the linker wiring between them.
//!
//! The shape is wasmtime-wasi's: the state holds a `ResourceTable` and one context per
//! interface; each interface is linked by its own generated
//! `add_to_linker::<HostState, D>(linker, getter)`, where the `HasData` marker `D` names the
//! view the getter returns (as `WasiClocks` names `WasiClocksCtxView`). A host call sees only
//! its own interface's context and the calling [`Principal`]: messaging cannot reach the
//! storage backend, logging cannot send.
//!
//! WASI 0.2 plugs in beside ours with one field and one call: a `wasi: WasiCtx` field built
//! in [`HostState::new`] from the component's capabilities, `impl WasiView for HostState`
//! returning `WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }`, and
//! `wasmtime_wasi::p2::add_to_linker_sync(linker)` in [`HostState::add_to_linker`].

use wasmtime::component::{Linker, ResourceTable};

use super::bindings::switchyard::component as wit;
use super::host::{ComponentShared, HostShared};
use super::imports::Principal;
use super::imports::logging::{Logging, LoggingCtx, LoggingView};
use super::imports::messaging::{Messaging, MessagingCtx, MessagingView};
use super::imports::storage::{Storage, StorageCtx, StorageView};
use super::imports::types::Types;
use super::trap::Limiter;
use crate::handler::Context;

/// Everything one guest instance's `Store` holds.
pub(crate) struct HostState {
    /// The resources guests hold handles to. None of our interfaces defines a resource;
    /// WASI's do (streams, descriptors), and reach this table through `WasiView`.
    #[expect(dead_code, reason = "no linked interface defines a resource until WASI is added")]
    table: ResourceTable,
    /// The component this instance acts for; every view borrows it.
    principal: Principal,
    messaging: MessagingCtx,
    storage: StorageCtx,
    logging: LoggingCtx,
    /// The instance's memory and table caps.
    limits: Limiter,
}

impl HostState {
    /// The state of a new instance of `component`: reaching no runtime until
    /// [`HostState::attach`], and the host's storage and log sink.
    pub(crate) fn new(host: &HostShared, component: &ComponentShared) -> Self {
        Self {
            table: ResourceTable::new(),
            principal: Principal::new(component.id.clone(), component.caps.clone(), component.stats.clone()),
            messaging: MessagingCtx::detached(),
            storage: StorageCtx::new(host.storage.clone()),
            logging: LoggingCtx::new(host.log.clone()),
            limits: Limiter::new(component.options.memory_limit, component.options.table_limit),
        }
    }

    /// Defines every interface our world imports in `linker`, each on its own view.
    ///
    /// # Errors
    /// When an interface is defined twice in `linker`.
    pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        wit::types::add_to_linker::<Self, Types>(linker, |_| ())?;
        wit::messaging::add_to_linker::<Self, Messaging>(linker, Self::messaging)?;
        wit::storage::add_to_linker::<Self, Storage>(linker, Self::storage)?;
        wit::logging::add_to_linker::<Self, Logging>(linker, Self::logging)?;
        Ok(())
    }

    /// Connects the instance's messaging to the runtime and component of `ctx`.
    pub(crate) fn attach(&mut self, ctx: &Context<'_>) {
        self.messaging.attach(ctx);
    }

    /// The instance's memory and table caps, for `Store::limiter`.
    pub(crate) fn limiter(&mut self) -> &mut Limiter {
        &mut self.limits
    }

    fn messaging(&mut self) -> MessagingView<'_> {
        MessagingView { principal: &self.principal, ctx: &mut self.messaging }
    }

    fn storage(&mut self) -> StorageView<'_> {
        StorageView { principal: &self.principal, ctx: &mut self.storage }
    }

    fn logging(&mut self) -> LoggingView<'_> {
        LoggingView { principal: &self.principal, ctx: &mut self.logging }
    }
}
