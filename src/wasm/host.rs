//! [`WasmHost`]: one shared wasmtime engine and linker, loading compiled components,
//! turning them into specs the runtime registers, the table of registered components (for
//! upgrades and stats), and the code slot each component's instances read.
//!
//! Each message runs with a fresh fuel budget and a wall-clock deadline (epoch
//! interruption, driven by the host's ticker in `ticker.rs`), in a `Store` whose memory and
//! tables are capped (`state.rs`). A trap ends only that call: see `instance.rs`. The
//! mailbox is kept.

use std::fmt;
use std::path::Path;
// Not in `crate::sync`, which has no 64-bit atomic for state (see the module doc of `wasm`).
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::RwLock;
use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};

use super::bindings::GuestPre;
use super::cache::{self, CompileCache, CompileCacheStats};
use super::config::{WasmConfig, WasmOptions};
use super::footprint::{Footprint, Pool, Reservation, Slots};
use super::imports::Holdings;
use super::imports::logging::{LogQueue, LogSink, stderr_sink};
use super::instance::{DetachedInstance, WasmHandler};
use super::load::{self, LIFECYCLE_EXPORT, LoadError, WasmKind};
use super::state::HostState;
use super::stats::{WasmStats, WasmStatsSnapshot};
use super::ticker::EpochTicker;
use super::wasi::{ClaimGuard, DirClaims, LookupBudget, OpenedDirs, Resolver};
use crate::error::{HandlerError, RegisterError};
use crate::handle::RuntimeHandle;
use crate::handler::Handler;
use crate::id::ComponentId;
use crate::spec::{ComponentSpec, RegistryHook};
use crate::storage::RedbBackend;
use crate::sync::{Arc, Ordering};

/// Compiled guest code, checked against our world; cheap to clone.
#[derive(Clone)]
pub struct WasmComponent {
    pub(super) pre: GuestPre<HostState>,
    pub(super) has_init: bool,
    pub(super) has_health: bool,
    /// What one instance takes from the engine (`footprint.rs`).
    pub(super) footprint: Footprint,
}

impl fmt::Debug for WasmComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmComponent").field("has_init", &self.has_init).field("has_health", &self.has_health).finish()
    }
}

impl WasmComponent {
    /// True when the component exports the optional `lifecycle.init`.
    pub fn has_init(&self) -> bool {
        self.has_init
    }

    /// True when the component exports the optional `lifecycle.health` (without it, a
    /// health check finds the component healthy while it runs).
    pub fn has_health(&self) -> bool {
        self.has_health
    }
}

/// Why a hot upgrade was refused (the running code is untouched).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpgradeError {
    /// No WASM component of this host is registered under this id.
    NoSuchComponent(ComponentId),
    /// The new code does not load.
    Load(LoadError),
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpgradeError::NoSuchComponent(id) => write!(f, "no WASM component {id} on this host"),
            UpgradeError::Load(e) => write!(f, "the new code does not load: {e}"),
        }
    }
}

impl std::error::Error for UpgradeError {}

/// The code a component runs, swappable for hot upgrades.
pub(super) struct CodeSlot {
    /// The current code and its generation. parking_lot's lock directly (`crate::sync`
    /// names the same lock, for storage): written once per upgrade, read once per new
    /// instance.
    pub(super) code: RwLock<(u64, WasmComponent)>,
    /// The generation in `code`, readable without the lock: instances compare it before
    /// every call (one load instead of a lock and unlock per message). Stored under the
    /// write lock with `Release` in [`WasmHost::upgrade`], loaded with `Acquire` in
    /// `WasmHandler::follow_upgrades`.
    pub(super) generation: AtomicU64,
}

impl CodeSlot {
    fn new(code: &WasmComponent) -> Self {
        Self { code: RwLock::new((0, code.clone())), generation: AtomicU64::new(0) }
    }
}

/// Per-component data shared by all of its instances.
pub(super) struct ComponentShared {
    pub(super) id: ComponentId,
    pub(super) code: CodeSlot,
    pub(super) options: WasmOptions,
    pub(super) caps: Arc<super::config::Capabilities>,
    /// The granted directories, opened once for every instance (`wasi/dirs.rs`).
    pub(super) dirs: OpenedDirs,
    pub(super) stats: Arc<WasmStats>,
    /// Its name lookups in flight and per second (`wasi/lookup.rs`).
    pub(super) lookups: Arc<LookupBudget>,
    /// Its subscriptions and requests in flight (`imports/mod.rs`).
    pub(super) holdings: Arc<Holdings>,
    /// Its claim on its granted directories among the host's components (`wasi/dirs.rs`)
    /// and its slots in the instance pool, with pooling (`footprint.rs`): held until it is
    /// unregistered (or dropped, if it never was registered).
    held: parking_lot::Mutex<Option<(ClaimGuard, Option<Reservation>)>>,
}

impl ComponentShared {
    /// A component's shared data; opens its granted directories and claims them among the
    /// host's components.
    fn new(
        host: &HostShared,
        id: &ComponentId,
        code: &WasmComponent,
        options: WasmOptions,
    ) -> Result<Self, RegisterError> {
        let slots =
            host.pool.as_ref().map(|pool| pool.reserve(code.footprint)).transpose().map_err(RegisterError::PoolFull)?;
        let dirs = OpenedDirs::open(&options.capabilities.wasi.dirs).map_err(RegisterError::UnusableGrant)?;
        let claim = dirs.claim(id, &host.claims).map_err(RegisterError::UnusableGrant)?;
        Ok(Self {
            id: id.clone(),
            code: CodeSlot::new(code),
            caps: Arc::new(options.capabilities.clone()),
            dirs,
            options,
            stats: Arc::default(),
            lookups: Arc::default(),
            holdings: Arc::default(),
            held: parking_lot::Mutex::new(Some((claim, slots))),
        })
    }

    /// Gives back its directory claim and pool slots: it was unregistered, and will make no
    /// instance again (the runtime may keep the closed component a while).
    fn release(&self) {
        self.held.lock().take();
    }
}

/// A WASM component as a spec holds it: made into instances by the spec's factory, and
/// entered into (removed from) the host's table when the runtime registers (unregisters) it.
struct HostedComponent {
    host: Arc<HostShared>,
    component: Arc<ComponentShared>,
}

impl RegistryHook for HostedComponent {
    fn registered(&self, id: &ComponentId) {
        if let (Some(store), Some(quota)) = (&self.host.storage, self.component.caps.storage_quota) {
            store.set_component_quota(&self.component.id, quota);
        }
        self.host.components.insert(id.clone(), self.component.clone());
    }

    fn unregistered(&self, id: &ComponentId) {
        // Only our own entry: the id may have been registered anew since.
        self.host.components.remove_if(id, |_, c| Arc::ptr_eq(c, &self.component));
        self.component.release();
    }

    fn wasm_stats(&self) -> Option<WasmStatsSnapshot> {
        Some(self.host.snapshot(&self.component))
    }
}

/// What the host, every spec's factory and every instance share: the engine and linker,
/// the settings, storage, the log sink and the table of registered components.
pub(super) struct HostShared {
    pub(super) engine: Engine,
    linker: Linker<HostState>,
    pub(super) config: WasmConfig,
    pub(super) storage: Option<Arc<RedbBackend>>,
    /// The queue in front of the host's log sink (`imports/logging.rs`), and a sink that
    /// writes into it.
    logs: Arc<LogQueue>,
    pub(super) log: LogSink,
    /// The compile cache, when `config.cache_dir` names one.
    cache: Option<CompileCache>,
    /// Where guests' name lookups run (`wasi/lookup.rs`).
    pub(super) resolver: Arc<Resolver>,
    /// The granted directories of its components (`wasi/dirs.rs`).
    claims: Arc<DirClaims>,
    /// With pooling: the allocator's slots and their reservations (`footprint.rs`).
    pool: Option<Arc<Pool>>,
    /// The registered components of this host. A `DashMap` directly, not the core's
    /// `crate::sync::map`: its entries change only at registration and unregistration, and
    /// nothing here is model-checked.
    components: DashMap<ComponentId, Arc<ComponentShared>>,
    /// Shared by the host, every spec's factory and every instance: the ticker runs while
    /// any of them is alive, and stops when the last one drops this.
    _ticker: EpochTicker,
}

impl HostShared {
    /// The counters of `component`, with its log lines dropped by the queue.
    pub(super) fn snapshot(&self, component: &ComponentShared) -> WasmStatsSnapshot {
        WasmStatsSnapshot { log_lines_dropped: self.logs.dropped(&component.id), ..component.stats.snapshot() }
    }

    /// How many core instances, memories and tables one instance of a component may make.
    pub(super) fn counts(&self) -> super::trap::Counts {
        let n = |v: u32| usize::try_from(v).unwrap_or(usize::MAX);
        super::trap::Counts {
            instances: n(self.config.max_core_instances),
            memories: n(self.config.max_memories),
            tables: n(self.config.max_tables),
        }
    }
}

/// Loads and runs WebAssembly components: one shared wasmtime `Engine`, components
/// compiled once, an epoch ticker thread for deadlines, optional storage for guests.
///
/// With storage, each guest's `storage` imports reach one namespace of the backend: the
/// one named by its plain component id (component `store` keeps its keys in namespace
/// `"store"`), so the host reads and writes a guest's data through that name.
///
/// The host may be dropped before the runtime that runs its components: their factories
/// and instances keep what they need, the ticker included, so deadlines stay enforced.
/// The ticker thread stops once the host and the last of them are gone.
pub struct WasmHost {
    shared: Arc<HostShared>,
}

impl fmt::Debug for WasmHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmHost").field("config", &self.shared.config).finish()
    }
}

/// Building a [`WasmHost`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError(String);

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot start the WASM host: {}", self.0)
    }
}

impl std::error::Error for HostError {}

impl WasmHost {
    /// A host with the given settings, without storage for guests.
    ///
    /// # Errors
    /// [`HostError`] when wasmtime rejects the configuration, the compile cache's directory
    /// cannot be created, or the ticker cannot start.
    pub fn new(config: WasmConfig) -> Result<Self, HostError> {
        Self::build(config, None, None)
    }

    /// A host whose guests keep state in `storage`, each in the namespace named by its
    /// component id.
    ///
    /// # Errors
    /// As [`WasmHost::new`].
    pub fn with_storage(config: WasmConfig, storage: Arc<RedbBackend>) -> Result<Self, HostError> {
        Self::build(config, Some(storage), None)
    }

    /// A host with storage (optional) and a sink for guest log lines.
    ///
    /// # Errors
    /// As [`WasmHost::new`].
    pub fn build(
        config: WasmConfig,
        storage: Option<Arc<RedbBackend>>,
        log: Option<LogSink>,
    ) -> Result<Self, HostError> {
        let mut wc = wasmtime::Config::new();
        wc.wasm_component_model(true);
        wc.consume_fuel(config.fuel_metering);
        wc.epoch_interruption(true);
        let mut pool_slots = None;
        if config.pooling {
            let slots = Slots {
                components: u64::from(config.pool_instances),
                footprint: Footprint {
                    core_instances: u64::from(config.pool_instances.saturating_mul(4)),
                    memories: u64::from(config.pool_instances.saturating_mul(2)),
                    tables: u64::from(config.pool_instances.saturating_mul(2)),
                },
            };
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_component_instances(config.pool_instances);
            pool.total_core_instances(config.pool_instances.saturating_mul(4));
            pool.total_memories(config.pool_instances.saturating_mul(2));
            pool.total_tables(config.pool_instances.saturating_mul(2));
            pool.max_memory_size(config.pool_memory_bytes);
            pool.max_core_instances_per_component(config.max_core_instances);
            pool.max_memories_per_component(config.max_memories);
            pool.max_tables_per_component(config.max_tables);
            wc.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
            pool_slots = Some(Arc::new(Pool::new(slots)));
        }
        let engine = Engine::new(&wc).map_err(|e| HostError(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        HostState::add_to_linker(&mut linker).map_err(|e| HostError(format!("{e:#}")))?;
        let logs = LogQueue::start(log.unwrap_or_else(stderr_sink))
            .map_err(|e| HostError(format!("cannot start the log thread: {e}")))?;
        let log = logs.sink();
        let cache = match &config.cache_dir {
            Some(dir) => Some(
                CompileCache::open(dir, &engine)
                    .map_err(|e| HostError(format!("compile cache {}: {e}", dir.display())))?,
            ),
            None => None,
        };
        let tick = config.epoch_tick.max(Duration::from_micros(100));
        let ticker = EpochTicker::start(engine.clone(), tick).map_err(|e| HostError(e.to_string()))?;
        Ok(Self {
            shared: Arc::new(HostShared {
                engine,
                linker,
                config,
                storage,
                logs,
                log,
                cache,
                resolver: Arc::default(),
                claims: Arc::default(),
                pool: pool_slots,
                components: DashMap::new(),
                _ticker: ticker,
            }),
        })
    }

    /// Loads a component from bytes: a binary component, or component text (`.wat`).
    ///
    /// With a compile cache ([`WasmConfig::cache_dir`]), code compiled earlier for the
    /// same binary bytes and a compatible engine is read from it instead of being compiled
    /// again, and newly compiled code is written to it ([`WasmHost::cache_stats`] counts
    /// which). Compiling a large component takes seconds; reading it back, a fraction.
    ///
    /// # Errors
    /// [`LoadError`]: not WebAssembly, a core module, missing exports, another world
    /// version, unsatisfied imports, or a compile failure.
    pub fn load(&self, bytes: &[u8]) -> Result<WasmComponent, LoadError> {
        let (binary, kind) = load::to_binary(bytes)?;
        if kind == WasmKind::CoreModule {
            return Err(LoadError::CoreModule);
        }
        let component = self.compile_binary(&binary)?;
        let footprint = Footprint::of(&binary, &component);
        let config = &self.shared.config;
        for (what, count, limit, setting) in [
            ("core instances", footprint.core_instances, config.max_core_instances, "max_core_instances"),
            ("linear memories", footprint.memories, config.max_memories, "max_memories"),
            ("tables", footprint.tables, config.max_tables, "max_tables"),
        ] {
            if count > u64::from(limit) {
                return Err(LoadError::OverLimits { what, count, limit: u64::from(limit), setting });
            }
        }
        let engine = &self.shared.engine;
        let has_lifecycle = load::check_exports(engine, &component)?;
        let pre: InstancePre<HostState> = self
            .shared
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::UnsatisfiedImport(format!("{e:#}")))?;
        let pre = GuestPre::new(pre).map_err(|e| LoadError::MissingExport(format!("{e:#}")))?;
        // The lifecycle functions are optional one by one: looked up individually, so a
        // component built before `health` existed (exporting `init` alone) still loads.
        let exports = |name: &str| {
            let idx = component.get_export_index(None, LIFECYCLE_EXPORT);
            has_lifecycle && idx.and_then(|i| component.get_export_index(Some(&i), name)).is_some()
        };
        let (has_init, has_health) = (exports("init"), exports("health"));
        if has_lifecycle && !has_init && !has_health {
            return Err(LoadError::MissingExport(format!("{LIFECYCLE_EXPORT}#init (or #health)")));
        }
        Ok(WasmComponent { pre, has_init, has_health, footprint })
    }

    /// Compiles a component (binary or text) without checking it against our world, through
    /// the compile cache as [`WasmHost::load`] does: for tools that look at a component's
    /// types (`switchyard component inspect`) before loading it.
    ///
    /// # Errors
    /// [`LoadError::NotWasm`], [`LoadError::InvalidText`], [`LoadError::CoreModule`] or
    /// [`LoadError::Compile`].
    pub fn compile(&self, bytes: &[u8]) -> Result<Component, LoadError> {
        let (binary, kind) = load::to_binary(bytes)?;
        if kind == WasmKind::CoreModule {
            return Err(LoadError::CoreModule);
        }
        self.compile_binary(&binary)
    }

    fn compile_binary(&self, binary: &[u8]) -> Result<Component, LoadError> {
        match &self.shared.cache {
            Some(cache) => cache.load(&self.shared.engine, binary),
            None => cache::compile(&self.shared.engine, binary),
        }
    }

    /// Loads a component from a `.wasm` or `.wat` file.
    ///
    /// # Errors
    /// As [`WasmHost::load`], plus [`LoadError::Io`].
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<WasmComponent, LoadError> {
        self.load(&load::read_file(path.as_ref())?)
    }

    /// A [`ComponentSpec`] that runs `code` as component `id` with `options`. Register it
    /// under the same `id` with [`RuntimeHandle::register`] (or use [`WasmHost::register`]).
    ///
    /// The host knows the component (for [`WasmHost::upgrade`] and [`WasmHost::stats`])
    /// from the moment the runtime registers it until the runtime unregisters it, whichever
    /// API registered it; a spec that was never registered is not known. The storage quota
    /// of `options` is applied to the namespace `id` when the runtime registers the spec,
    /// so a refused registration leaves a running component's quota alone.
    ///
    /// # Errors
    /// [`RegisterError::InvalidConfig`] for unusable options: a bad
    /// [`ComponentConfig`](crate::ComponentConfig), a zero fuel budget with fuel metering
    /// on, or a storage quota on a host without storage.
    pub fn spec(
        &self,
        id: &ComponentId,
        code: &WasmComponent,
        options: WasmOptions,
    ) -> Result<ComponentSpec, RegisterError> {
        options.validate(&self.shared.config, self.shared.storage.as_ref().map(|s| s.file()))?;
        let component = ComponentShared::new(&self.shared, id, code, options.clone())?;
        let hosted = Arc::new(HostedComponent { host: self.shared.clone(), component: Arc::new(component) });
        let factory = hosted.clone();
        let mut config = options.component;
        // A guest that may wait on host I/O gets a home on the I/O workers.
        config.blocking_io |= options.capabilities.blocks_on_io();
        let spec = ComponentSpec::try_new(move || {
            Ok(Box::new(WasmHandler::instantiate(&factory.host, &factory.component)?) as Box<dyn Handler>)
        })
        .config(config)
        .registry_hook(hosted);
        Ok(spec)
    }

    /// Registers `code` as component `id` on `runtime`.
    ///
    /// # Errors
    /// As [`WasmHost::spec`] and [`RuntimeHandle::register`]; nothing is registered then.
    pub fn register(
        &self,
        runtime: &RuntimeHandle,
        id: ComponentId,
        code: &WasmComponent,
        options: WasmOptions,
    ) -> Result<(), RegisterError> {
        let spec = self.spec(&id, code, options)?;
        runtime.register(id, spec)
    }

    /// Registers `code` as component `id` on `runtime` and returns a reference to send to
    /// it (the short form of [`WasmHost::register`] and [`RuntimeHandle::resolve`]).
    ///
    /// # Errors
    /// As [`WasmHost::register`], and [`RegisterError::InvalidConfig`] for an invalid id.
    pub fn spawn(
        &self,
        runtime: &RuntimeHandle,
        id: &str,
        code: &WasmComponent,
        options: WasmOptions,
    ) -> Result<crate::ComponentRef, RegisterError> {
        let id = ComponentId::new(id).map_err(|_| RegisterError::InvalidConfig("the id is not a valid ComponentId"))?;
        runtime.spawn_spec(id.as_str(), self.spec(&id, code, options)?)
    }

    /// Replaces the code of a running component. The message in flight finishes on the
    /// old instance; the next message runs on a new instance of `code`. Mailbox and
    /// storage are untouched. The new code was loaded (and so checked) already; an
    /// instance that then fails to start counts as a crash under the component's
    /// supervision.
    ///
    /// # Errors
    /// [`UpgradeError::NoSuchComponent`] when no component of this host is registered as `id`.
    pub fn upgrade(&self, id: &ComponentId, code: &WasmComponent) -> Result<(), UpgradeError> {
        let comp = self.shared.components.get(id).ok_or_else(|| UpgradeError::NoSuchComponent(id.clone()))?;
        let mut slot = comp.code.code.write();
        *slot = (slot.0 + 1, code.clone());
        // Release, paired with the Acquire load in `WasmHandler::follow_upgrades`: an instance
        // that sees the new generation sees everything written before it. It then reads the
        // code itself under the read lock, which this write lock also orders.
        comp.code.generation.store(slot.0, Ordering::Release);
        Ok(())
    }

    /// Loads `bytes` and upgrades `id` to it; a load failure leaves the old code running.
    ///
    /// # Errors
    /// [`UpgradeError::Load`] or [`UpgradeError::NoSuchComponent`].
    pub fn upgrade_from_bytes(&self, id: &ComponentId, bytes: &[u8]) -> Result<(), UpgradeError> {
        if !self.shared.components.contains_key(id) {
            return Err(UpgradeError::NoSuchComponent(id.clone()));
        }
        let code = self.load(bytes).map_err(UpgradeError::Load)?;
        self.upgrade(id, &code)
    }

    /// The WASM counters of a component of this host, while it is registered.
    pub fn stats(&self, id: &ComponentId) -> Option<WasmStatsSnapshot> {
        self.shared.components.get(id).map(|c| self.shared.snapshot(&c))
    }

    /// Waits until every guest log line queued so far has been handed to the log sink, or
    /// `timeout` has passed (the sink is stalled): true when they all were. Lines go to the
    /// sink from a thread of the host's own, through a bounded queue, so that a sink that
    /// stalls stalls no worker; call this before writing something that should follow them
    /// (a final report).
    pub fn flush_logs(&self, timeout: Duration) -> bool {
        self.shared.logs.flush(timeout)
    }

    /// What the compile cache did since this host was built; `None` without a cache
    /// ([`WasmConfig::cache_dir`]).
    pub fn cache_stats(&self) -> Option<CompileCacheStats> {
        self.shared.cache.as_ref().map(CompileCache::stats)
    }

    /// The wasmtime engine (to compile or call components directly, e.g. in benches).
    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    /// Instantiates `code` outside any runtime, to be called synchronously on the caller's
    /// thread: for testing a guest's logic, and for measuring the bare call (the floor of
    /// the WASM dispatch benchmark). Fuel, deadline, memory cap, capabilities and storage
    /// apply exactly as for a registered component; messaging calls (`send`, `request`,
    /// `publish`) get a typed `closed` error, as there is no runtime to deliver to.
    ///
    /// # Errors
    /// [`HandlerError`] if instantiation or the guest's `init` fails.
    pub fn instantiate_detached(
        &self,
        id: &ComponentId,
        code: &WasmComponent,
        options: WasmOptions,
    ) -> Result<DetachedInstance, HandlerError> {
        let shared = Arc::new(ComponentShared::new(&self.shared, id, code, options).map_err(HandlerError::crash)?);
        let mut handler = WasmHandler::instantiate(&self.shared, &shared)?;
        handler.call_init()?;
        Ok(DetachedInstance { handler })
    }

    /// Checks that `code` can start with `options`: makes one instance (running the
    /// component's start code, not its `init`) and drops it. A host calls it before
    /// registering, to report a component that could never start (its memory cap too low
    /// for it, a granted directory gone) at once, rather than as restarts and then
    /// `component_stopped` dead letters.
    ///
    /// # Errors
    /// Why no instance could be made; for a memory cap, the text says how much the
    /// instance asked for.
    pub fn check_start(
        &self,
        id: &ComponentId,
        code: &WasmComponent,
        options: &WasmOptions,
    ) -> Result<(), HandlerError> {
        options
            .validate(&self.shared.config, self.shared.storage.as_ref().map(|s| s.file()))
            .map_err(|e| HandlerError::crash(e.to_string()))?;
        let shared =
            Arc::new(ComponentShared::new(&self.shared, id, code, options.clone()).map_err(HandlerError::crash)?);
        WasmHandler::instantiate(&self.shared, &shared).map(drop)
    }
}
