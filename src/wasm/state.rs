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
//! WASI 0.2 sits beside ours the same way: a `WasiCtx` built from the component's
//! [`crate::WasiGrants`] (`wasi/`) and a `WasiHttpCtx` with hooks that refuse outgoing
//! requests, reached through `WasiView` / `WasiHttpView` over the same `ResourceTable`,
//! linked interface by interface (`wasi::add_to_linker`), where the interfaces that wait
//! see the deadline of the guest call running now ([`HostState::arm`]).

use std::time::{Duration, Instant};

use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::sockets::WasiSocketsCtxView;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::switchyard::component as wit;
use super::host::{ComponentShared, HostShared};
use super::imports::logging::{Logging, LoggingCtx, LoggingView};
use super::imports::messaging::{Messaging, MessagingCtx, MessagingView};
use super::imports::storage::{Storage, StorageCtx, StorageView};
use super::imports::types::Types;
use super::imports::{GuestLimits, Principal};
use super::stats::WasmStats;
use super::trap::Limiter;
use super::wasi::output::{GuestStdio, OutputBudget};
use super::wasi::{
    self, BoundedFs, BoundedIo, DenyHttp, GuardedLookup, GuardedSockets, LookupBudget, Outbound, Resolver,
};
use crate::handler::Context;
use crate::sync::Arc;

/// Everything one guest instance's `Store` holds.
pub(crate) struct HostState {
    /// The resources guests hold handles to: WASI's (streams, descriptors, sockets, HTTP
    /// bodies), reached through `WasiView` and `WasiHttpView`. None of ours defines one.
    /// Capped at the component's `max_resources`.
    table: ResourceTable,
    wasi: WasiCtx,
    /// The instance's stdout and stderr (also inside `wasi`), ended after each call.
    output: GuestStdio,
    /// When the guest call running now must end: the WASI calls that wait stop waiting
    /// then (`wasi/bounded.rs`). Set by [`HostState::arm`] before every call.
    deadline: Instant,
    stats: Arc<WasmStats>,
    http: WasiHttpCtx,
    http_hooks: DenyHttp,
    /// The component this instance acts for; every view borrows it.
    principal: Principal,
    messaging: MessagingCtx,
    storage: StorageCtx,
    logging: LoggingCtx,
    /// The instance's memory and table caps.
    limits: Limiter,
    /// Its network policy and what its lookups learned (`wasi/network.rs`).
    outbound: Arc<Outbound>,
    /// Its component's lookup budget, and the host's resolver (`wasi/lookup.rs`).
    lookups: Arc<LookupBudget>,
    resolver: Arc<Resolver>,
}

impl HostState {
    /// The state of a new instance of `component`: reaching no runtime until
    /// [`HostState::attach`], and the host's storage and log sink.
    ///
    /// # Errors
    /// A directory granted to the component cannot be opened.
    pub(crate) fn new(host: &HostShared, component: &ComponentShared) -> Result<Self, String> {
        let budget = Arc::new(OutputBudget::new(component.options.max_output_bytes));
        let output = GuestStdio::new(&component.id, &host.log, budget.clone(), component.stats.clone());
        let outbound = Arc::new(Outbound::new(component.caps.wasi.policy(), component.stats.clone()));
        let wasi = component.caps.wasi.context(&component.dirs, &output, &outbound)?;
        let mut table = ResourceTable::new();
        table.set_max_capacity(component.options.max_resources);
        Ok(Self {
            table,
            wasi,
            output,
            deadline: Instant::now() + component.options.deadline,
            stats: component.stats.clone(),
            http: WasiHttpCtx::new(),
            http_hooks: DenyHttp { stats: component.stats.clone() },
            principal: Principal::new(
                component.id.clone(),
                component.caps.clone(),
                component.holdings.clone(),
                GuestLimits::of(&component.options),
                component.stats.clone(),
            ),
            messaging: MessagingCtx::detached(),
            storage: StorageCtx::new(host.storage.clone()),
            logging: LoggingCtx::new(host.log.clone(), budget),
            limits: Limiter::new(component.options.memory_limit, component.options.table_limit, host.counts()),
            outbound,
            lookups: component.lookups.clone(),
            resolver: host.resolver.clone(),
        })
    }

    /// Defines every interface our world imports in `linker`, each on its own view.
    ///
    /// # Errors
    /// When an interface is defined twice in `linker`.
    pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        wit::types::add_to_linker::<Self, Types>(linker, |_| ())?;
        wit::messaging::add_to_linker::<Self, Messaging>(linker, Self::messaging)?;
        wit::delegation::add_to_linker::<Self, Messaging>(linker, Self::messaging)?;
        wit::storage::add_to_linker::<Self, Storage>(linker, Self::storage)?;
        wit::logging::add_to_linker::<Self, Logging>(linker, Self::logging)?;
        // WASI 0.2 (every 0.2.x patch version a guest imports resolves to these: wasmtime
        // matches semver-compatible instance names), and wasi:http over the same io types.
        wasi::add_to_linker(linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(linker)?;
        Ok(())
    }

    /// Starts a `handle-message` call for `msg` (the request `forward` and `defer` act on).
    pub(crate) fn begin_message(
        &mut self,
        msg: &crate::envelope::MessageEnvelope,
        ticket: Option<crate::request::Ticket>,
    ) {
        self.messaging.begin_message(msg, ticket);
    }

    /// Ends it: true when the guest handed its request on or kept it.
    pub(crate) fn end_message(&mut self) -> bool {
        self.messaging.end_message()
    }

    /// Connects the instance's messaging to the runtime and component of `ctx`.
    pub(crate) fn attach(&mut self, ctx: &Context<'_>) {
        self.messaging.attach(ctx);
    }

    /// Starts a guest call that must end within `deadline` (the WASI calls that wait stop
    /// waiting then).
    pub(crate) fn arm(&mut self, deadline: Duration) {
        self.deadline = Instant::now() + deadline;
    }

    /// Ends a guest call's output: what it left unfinished on stdout and stderr, and what
    /// it wrote past its budget (`wasi/output.rs`).
    pub(crate) fn end_call(&self) {
        self.output.end_call();
    }

    pub(super) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    pub(super) fn bounded_io(&mut self) -> BoundedIo<'_> {
        BoundedIo { table: &mut self.table, deadline: self.deadline }
    }

    pub(super) fn bounded_fs(&mut self) -> BoundedFs<'_> {
        let deadline = self.deadline;
        BoundedFs { view: wasmtime_wasi::filesystem::WasiFilesystemView::filesystem(self), deadline }
    }

    pub(super) fn guarded_lookup(&mut self) -> GuardedLookup<'_> {
        GuardedLookup {
            view: WasiSocketsCtxView { ctx: self.wasi.sockets(), table: &mut self.table },
            outbound: &self.outbound,
            budget: &self.lookups,
            resolver: &self.resolver,
        }
    }

    pub(super) fn guarded_sockets(&mut self) -> GuardedSockets<'_> {
        let allowed = self.outbound.policy.sockets();
        GuardedSockets {
            view: WasiSocketsCtxView { ctx: self.wasi.sockets(), table: &mut self.table },
            allowed,
            stats: &self.stats,
        }
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

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.http_hooks }
    }
}
