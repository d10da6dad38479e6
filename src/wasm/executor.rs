//! The WASM executor: a shared engine, compiled components, and the `Handler` that runs a
//! guest instance for one component on its worker.
//!
//! Each message runs with a fresh fuel budget and a wall-clock deadline (epoch
//! interruption, driven by one ticker thread per host), in a `Store` whose memory and
//! tables are capped by `StoreLimits`. A trap ends only that call: the handler reports a
//! crash, the runtime dead-letters the message with the trap's reason and restarts the
//! component from its factory, which instantiates a fresh instance from the `InstancePre`
//! (a trapped instance cannot be entered again). The mailbox is kept.

use std::fmt;
use std::path::Path;
use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::RwLock;
use wasmtime::component::{HasSelf, InstancePre, Linker};
use wasmtime::{Engine, Store, StoreLimitsBuilder, Trap};

use super::bindings::switchyard::component::types::{Envelope, MessageType as GuestMessageType};
use super::bindings::{Guest, GuestPre};
use super::config::{WasmConfig, WasmOptions};
use super::host::{GuestError, HostState};
use super::load::{self, LIFECYCLE_EXPORT, LoadError, WasmKind};
use crate::component::{ComponentSpec, RegistryHook};
use crate::envelope::{MessageEnvelope, MessageType};
use crate::error::{HandlerError, RegisterError, RequestError};
use crate::handler::{Context, Handler};
use crate::id::ComponentId;
use crate::runtime::RuntimeHandle;
use crate::storage::RedbBackend;
use crate::sync::Arc;

/// Where guest log lines go: `(component, level, message)`.
pub type LogSink = Arc<dyn Fn(&ComponentId, &str, &str) + Send + Sync>;

/// Why a guest call trapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TrapKind {
    /// The fuel budget of the call ran out.
    OutOfFuel,
    /// The wall-clock deadline of the call passed.
    Deadline,
    /// The instance tried to grow memory or tables past its cap.
    ResourceLimit,
    /// `unreachable` was executed (a guest panic or abort).
    Unreachable,
    /// An out-of-bounds memory or table access.
    OutOfBounds,
    /// The guest passed data the host could not read (a pointer or length outside its
    /// memory, invalid UTF-8, a bad discriminant).
    InvalidData,
    /// Stack overflow, integer traps and other faults.
    Other,
}

impl TrapKind {
    /// All kinds, in the order of [`WasmStatsSnapshot::traps`].
    pub const ALL: [TrapKind; 7] = [
        TrapKind::OutOfFuel,
        TrapKind::Deadline,
        TrapKind::ResourceLimit,
        TrapKind::Unreachable,
        TrapKind::OutOfBounds,
        TrapKind::InvalidData,
        TrapKind::Other,
    ];

    /// A short stable name.
    pub fn name(self) -> &'static str {
        match self {
            TrapKind::OutOfFuel => "out_of_fuel",
            TrapKind::Deadline => "deadline",
            TrapKind::ResourceLimit => "resource_limit",
            TrapKind::Unreachable => "unreachable",
            TrapKind::OutOfBounds => "out_of_bounds",
            TrapKind::InvalidData => "invalid_data",
            TrapKind::Other => "other",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|k| *k == self).expect("listed")
    }

    /// Classifies an error returned by a guest call.
    pub(crate) fn of(e: &wasmtime::Error) -> TrapKind {
        if let Some(trap) = e.downcast_ref::<Trap>() {
            return match trap {
                Trap::OutOfFuel => TrapKind::OutOfFuel,
                Trap::Interrupt => TrapKind::Deadline,
                Trap::UnreachableCodeReached => TrapKind::Unreachable,
                Trap::MemoryOutOfBounds | Trap::TableOutOfBounds => TrapKind::OutOfBounds,
                _ => TrapKind::Other,
            };
        }
        let text = format!("{e:#}");
        if text.contains("forcing trap when growing") || text.contains("resource limit") {
            TrapKind::ResourceLimit
        } else if text.contains("out of bounds")
            || text.contains("utf-8")
            || text.contains("UTF-8")
            || text.contains("invalid")
            || text.contains("realloc")
            || text.contains("unaligned")
        {
            TrapKind::InvalidData
        } else {
            TrapKind::Other
        }
    }
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Per-component WASM counters.
#[derive(Default)]
pub(crate) struct WasmStats {
    pub(crate) fuel_consumed: AtomicU64,
    pub(crate) calls: AtomicU64,
    pub(crate) instantiations: AtomicU64,
    pub(crate) upgrades: AtomicU64,
    pub(crate) capability_denials: AtomicU64,
    traps: [AtomicU64; 7],
}

impl WasmStats {
    fn trap(&self, kind: TrapKind) {
        self.traps[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> WasmStatsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WasmStatsSnapshot {
            fuel_consumed: l(&self.fuel_consumed),
            calls: l(&self.calls),
            instantiations: l(&self.instantiations),
            upgrades: l(&self.upgrades),
            capability_denials: l(&self.capability_denials),
            traps: std::array::from_fn(|i| l(&self.traps[i])),
        }
    }
}

/// A plain copy of one WASM component's counters.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct WasmStatsSnapshot {
    /// Fuel consumed by all calls (0 with fuel metering off).
    pub fuel_consumed: u64,
    /// Guest calls made (init, messages, callbacks).
    pub calls: u64,
    /// Instances made (the first, restarts, upgrades).
    pub instantiations: u64,
    /// Code upgrades applied.
    pub upgrades: u64,
    /// Host calls refused by the capability checks.
    pub capability_denials: u64,
    /// Traps by kind, indexed like [`TrapKind::ALL`].
    pub traps: [u64; 7],
}

impl WasmStatsSnapshot {
    /// Traps of one kind.
    pub fn traps_of(&self, kind: TrapKind) -> u64 {
        self.traps[kind.index()]
    }

    /// All traps.
    pub fn total_traps(&self) -> u64 {
        self.traps.iter().sum()
    }
}

/// Compiled guest code, checked against our world; cheap to clone.
#[derive(Clone)]
pub struct WasmComponent {
    pre: GuestPre<HostState>,
    has_init: bool,
}

impl fmt::Debug for WasmComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmComponent").field("has_init", &self.has_init).finish()
    }
}

impl WasmComponent {
    /// True when the component exports the optional `lifecycle.init`.
    pub fn has_init(&self) -> bool {
        self.has_init
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
struct CodeSlot {
    code: RwLock<(u64, WasmComponent)>,
    /// The generation in `code`, readable without the lock: instances compare it before
    /// every call (one plain load instead of a lock and unlock per message).
    generation: AtomicU64,
}

impl CodeSlot {
    fn new(code: &WasmComponent) -> Self {
        Self { code: RwLock::new((0, code.clone())), generation: AtomicU64::new(0) }
    }
}

/// Per-component data shared by all of its instances.
struct ComponentShared {
    id: ComponentId,
    code: CodeSlot,
    options: WasmOptions,
    caps: Arc<super::config::Capabilities>,
    stats: Arc<WasmStats>,
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
    }
}

struct HostShared {
    engine: Engine,
    linker: Linker<HostState>,
    config: WasmConfig,
    storage: Option<Arc<RedbBackend>>,
    log: LogSink,
    components: DashMap<ComponentId, Arc<ComponentShared>>,
    /// Shared by the host, every spec's factory and every instance: the ticker runs while
    /// any of them is alive, and stops when the last one drops this.
    _ticker: EpochTicker,
}

/// The thread that advances the engine's epoch once per tick, which is what ends a call
/// at its deadline. Dropping it stops and joins the thread.
struct EpochTicker {
    stop: Option<crossbeam_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new().name("switchyard-epoch".into()).spawn(move || {
            // One tick per period until the sender is dropped.
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                engine.increment_epoch();
            }
        })?;
        Ok(Self { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        // Disconnecting ends the thread's wait at once.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Loads and runs WebAssembly components: one shared wasmtime `Engine`, components
/// compiled once, an epoch ticker thread for deadlines, optional storage for guests.
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
    /// [`HostError`] when wasmtime rejects the configuration or the ticker cannot start.
    pub fn new(config: WasmConfig) -> Result<Self, HostError> {
        Self::build(config, None, None)
    }

    /// A host whose guests keep state in `storage` (each in its own namespace).
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
        if config.pooling {
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_component_instances(config.pool_instances);
            pool.total_core_instances(config.pool_instances.saturating_mul(4));
            pool.total_memories(config.pool_instances.saturating_mul(2));
            pool.total_tables(config.pool_instances.saturating_mul(2));
            pool.max_memory_size(config.pool_memory_bytes);
            wc.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&wc).map_err(|e| HostError(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        Guest::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| HostError(format!("{e:#}")))?;
        let log = log
            .unwrap_or_else(|| Arc::new(|id: &ComponentId, level: &str, msg: &str| eprintln!("[{level}] {id}: {msg}")));
        let tick = config.epoch_tick.max(Duration::from_micros(100));
        let ticker = EpochTicker::start(engine.clone(), tick).map_err(|e| HostError(e.to_string()))?;
        Ok(Self {
            shared: Arc::new(HostShared {
                engine,
                linker,
                config,
                storage,
                log,
                components: DashMap::new(),
                _ticker: ticker,
            }),
        })
    }

    /// Loads a component from bytes: a binary component, or component text (`.wat`).
    ///
    /// # Errors
    /// [`LoadError`]: not WebAssembly, a core module, missing exports, another world
    /// version, unsatisfied imports, or a compile failure.
    pub fn load(&self, bytes: &[u8]) -> Result<WasmComponent, LoadError> {
        let (binary, kind) = load::to_binary(bytes)?;
        if kind == WasmKind::CoreModule {
            return Err(LoadError::CoreModule);
        }
        let engine = &self.shared.engine;
        let component =
            wasmtime::component::Component::new(engine, &binary).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        let has_init = load::check_exports(engine, &component)?;
        let pre: InstancePre<HostState> = self
            .shared
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::UnsatisfiedImport(format!("{e:#}")))?;
        let pre = GuestPre::new(pre).map_err(|e| LoadError::MissingExport(format!("{e:#}")))?;
        if has_init {
            // Check the optional init has the right shape now, not at the first start.
            let idx = component.get_export_index(None, LIFECYCLE_EXPORT);
            let func = idx.and_then(|i| component.get_export_index(Some(&i), "init"));
            if func.is_none() {
                return Err(LoadError::MissingExport(format!("{LIFECYCLE_EXPORT}#init")));
            }
        }
        Ok(WasmComponent { pre, has_init })
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
        options.validate(&self.shared.config, self.shared.storage.is_some())?;
        let hosted = Arc::new(HostedComponent {
            host: self.shared.clone(),
            component: Arc::new(ComponentShared {
                id: id.clone(),
                code: CodeSlot::new(code),
                caps: Arc::new(options.capabilities.clone()),
                options: options.clone(),
                stats: Arc::default(),
            }),
        });
        let factory = hosted.clone();
        let spec = ComponentSpec::try_new(move || {
            Ok(Box::new(WasmHandler::instantiate(&factory.host, &factory.component)?) as Box<dyn Handler>)
        })
        .config(options.component)
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
        // Release (under the write lock): an instance that sees the new generation then
        // takes the read lock and finds the new code.
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
        self.shared.components.get(id).map(|c| c.stats.snapshot())
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
        let shared = Arc::new(ComponentShared {
            id: id.clone(),
            code: CodeSlot::new(code),
            caps: Arc::new(options.capabilities.clone()),
            options,
            stats: Arc::default(),
        });
        let mut handler = WasmHandler::instantiate(&self.shared, &shared)?;
        handler.call_init()?;
        Ok(DetachedInstance { handler })
    }
}

/// A guest instance called directly on the caller's thread; see
/// [`WasmHost::instantiate_detached`].
pub struct DetachedInstance {
    handler: WasmHandler,
}

impl DetachedInstance {
    /// Calls the guest's `handle-message` with `msg`, under the same fuel budget and
    /// deadline as a registered component. Returns the guest's reply payload, if any.
    ///
    /// # Errors
    /// A guest failure, or a trap ([`HandlerError::is_crash`]). After a trap this instance
    /// cannot be entered again: make a new one.
    pub fn call(&mut self, msg: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
        self.handler.call_handle_message(msg)
    }

    /// Calls, fuel and traps of this instance so far.
    pub fn stats(&self) -> WasmStatsSnapshot {
        self.handler.shared.stats.snapshot()
    }
}

/// One guest instance running as a component's handler.
struct WasmHandler {
    host: Arc<HostShared>,
    shared: Arc<ComponentShared>,
    store: Store<HostState>,
    guest: Guest,
    instance: wasmtime::component::Instance,
    generation: u64,
    has_init: bool,
}

impl WasmHandler {
    fn instantiate(host: &Arc<HostShared>, shared: &Arc<ComponentShared>) -> Result<Self, HandlerError> {
        let (generation, code) = shared.code.code.read().clone();
        let state = HostState {
            id: shared.id.clone(),
            runtime: Weak::new(),
            me: Weak::new(),
            caps: shared.caps.clone(),
            storage: host.storage.clone(),
            limits: StoreLimitsBuilder::new()
                .memory_size(shared.options.memory_limit)
                .table_elements(shared.options.table_limit)
                .trap_on_grow_failure(true)
                .build(),
            stats: shared.stats.clone(),
            log: host.log.clone(),
        };
        let mut store = Store::new(&host.engine, state);
        store.limiter(|s| &mut s.limits);
        Self::arm(&host.config, &shared.options, &mut store)?;
        let instance = code.pre.instance_pre().instantiate(&mut store).map_err(|e| {
            let kind = TrapKind::of(&e);
            shared.stats.trap(kind);
            HandlerError::crash(format!("instantiation failed ({kind}): {e:#}"))
        })?;
        let guest = Guest::new(&mut store, &instance).map_err(|e| HandlerError::crash(format!("{e:#}")))?;
        shared.stats.instantiations.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            host: host.clone(),
            shared: shared.clone(),
            store,
            guest,
            instance,
            generation,
            has_init: code.has_init,
        })
    }

    /// Sets the fuel budget and deadline for the next call.
    fn arm(config: &WasmConfig, options: &WasmOptions, store: &mut Store<HostState>) -> Result<(), HandlerError> {
        if config.fuel_metering {
            store.set_fuel(options.fuel_per_message).map_err(|e| HandlerError::crash(format!("{e:#}")))?;
        }
        let tick = config.epoch_tick.max(Duration::from_micros(100)).as_nanos();
        let ticks = options.deadline.as_nanos().div_ceil(tick).max(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        Ok(())
    }

    /// Accounts for one finished call; turns a trap into a crash.
    fn finish<T>(&mut self, result: wasmtime::Result<T>) -> Result<T, HandlerError> {
        let stats = &self.shared.stats;
        stats.calls.fetch_add(1, Ordering::Relaxed);
        if self.host.config.fuel_metering {
            let left = self.store.get_fuel().unwrap_or(0);
            stats.fuel_consumed.fetch_add(self.shared.options.fuel_per_message.saturating_sub(left), Ordering::Relaxed);
        }
        result.map_err(|e| {
            let kind = TrapKind::of(&e);
            stats.trap(kind);
            HandlerError::crash(format!("trap ({kind}): {e:#}"))
        })
    }

    fn call_init(&mut self) -> Result<(), HandlerError> {
        if !self.has_init {
            return Ok(());
        }
        Self::arm(&self.host.config, &self.shared.options, &mut self.store)?;
        let store = &mut self.store;
        let instance = self.instance;
        let r = (|| {
            let iface = instance
                .get_export_index(&mut *store, None, LIFECYCLE_EXPORT)
                .ok_or_else(|| wasmtime::Error::msg("lifecycle export vanished"))?;
            let func = instance
                .get_export_index(&mut *store, Some(&iface), "init")
                .ok_or_else(|| wasmtime::Error::msg("init export vanished"))?;
            let init = instance.get_typed_func::<(), (Result<(), GuestError>,)>(&mut *store, &func)?;
            let (out,) = init.call(&mut *store, ())?;
            Ok(out)
        })();
        match self.finish(r)? {
            Ok(()) => Ok(()),
            Err(e) => Err(HandlerError::new(format!("init: {:?}: {}", e.code, e.message))),
        }
    }

    /// One `handle-message` call under a fresh fuel budget and deadline.
    fn call_handle_message(&mut self, msg: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
        Self::arm(&self.host.config, &self.shared.options, &mut self.store)?;
        let handler = self.guest.switchyard_component_handler();
        let r = handler.call_handle_message(&mut self.store, &guest_envelope(msg));
        self.finish(r)?.map_err(guest_failure)
    }

    /// Switches to upgraded code at a message boundary.
    fn follow_upgrades(&mut self, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
        // Acquire pairs with the Release store in `upgrade`.
        let current = self.shared.code.generation.load(Ordering::Acquire);
        if current == self.generation {
            return Ok(());
        }
        let mut fresh = Self::instantiate(&self.host, &self.shared)?;
        fresh.init(ctx)?;
        *self = fresh;
        self.shared.stats.upgrades.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn guest_message_type(t: MessageType) -> GuestMessageType {
    match t {
        MessageType::FireAndForget => GuestMessageType::FireAndForget,
        MessageType::Request => GuestMessageType::Request,
        MessageType::Response => GuestMessageType::Response,
        MessageType::Publish => GuestMessageType::Publish,
    }
}

fn guest_envelope(m: &MessageEnvelope) -> Envelope {
    Envelope {
        message_type: guest_message_type(m.message_type),
        from: m.from.to_string(),
        to: m.to.to_string(),
        topic: m.topic.clone(),
        payload: m.payload.clone(),
        codec: m.codec,
        message_id: m.message_id.clone(),
        correlation_id: m.correlation_id.clone(),
        timestamp_ms: m.timestamp.timestamp_millis(),
    }
}

fn guest_failure(e: GuestError) -> HandlerError {
    HandlerError::new(format!("{:?}: {}", e.code, e.message))
}

impl Handler for WasmHandler {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
        let (runtime, me) = ctx.handles();
        let state = self.store.data_mut();
        state.runtime = runtime;
        state.me = me;
        self.call_init()
    }

    fn handle(&mut self, ctx: &mut Context<'_>, msg: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
        self.follow_upgrades(ctx)?;
        self.call_handle_message(msg)
    }

    fn handle_callback(
        &mut self,
        ctx: &mut Context<'_>,
        request_id: &str,
        outcome: Result<&MessageEnvelope, &RequestError>,
    ) -> Result<(), HandlerError> {
        self.follow_upgrades(ctx)?;
        Self::arm(&self.host.config, &self.shared.options, &mut self.store)?;
        let outcome = match outcome {
            Ok(env) => Ok(guest_envelope(env)),
            Err(e) => Err(super::host::request_error(e)),
        };
        let handler = self.guest.switchyard_component_handler();
        let r = handler.call_handle_callback(&mut self.store, request_id, outcome.as_ref());
        self.finish(r)?.map_err(guest_failure)
    }
}
