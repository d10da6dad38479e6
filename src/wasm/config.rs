//! Settings of the WASM host (engine-wide) and of each WASM component (limits, rights).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::wasi::WasiGrants;
use crate::error::RegisterError;
use crate::spec::ComponentConfig;
use crate::storage::StorageQuota;
use crate::supervisor::RestartPolicy;

/// Engine-wide settings of the [`crate::WasmHost`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmConfig {
    /// Meter guest execution with fuel. When off, `fuel_per_message` is ignored (and
    /// calls run a little faster). Default: on.
    pub fuel_metering: bool,
    /// Period of the epoch ticker that enforces wall-clock deadlines. Default: 1 ms.
    pub epoch_tick: Duration,
    /// Use wasmtime's pooling instance allocator (instances reuse pre-reserved slots).
    /// Default: on.
    pub pooling: bool,
    /// With pooling: most component instances alive at once. Default: 1000.
    pub pool_instances: u32,
    /// With pooling: most linear-memory bytes per instance (also caps `memory_limit`).
    /// Default: 64 MiB.
    pub pool_memory_bytes: usize,
    /// Most core module instances one instance of a component may make (a component is
    /// many core modules, instantiated by its own code). A component over it fails to load
    /// ([`crate::LoadError::OverLimits`]); wasmtime refuses any instantiation past it too.
    /// Default: 100.
    pub max_core_instances: u32,
    /// Most linear memories one instance of a component may have; together they are
    /// bounded by the component's `memory_limit`. Checked at load, as `max_core_instances`.
    /// Default: 16.
    pub max_memories: u32,
    /// Most tables one instance of a component may have; together they are bounded by the
    /// component's `table_limit`. Checked at load, as `max_core_instances`. Default: 100.
    pub max_tables: u32,
    /// Directory of the compile cache: [`crate::WasmHost::load`] keeps what Cranelift
    /// compiled there, and later loads of the same component bytes by an engine whose
    /// compiled code is compatible (this host or another, in this process or another)
    /// read it instead of compiling again. Entries are checked before use; a corrupt or
    /// stale one is rebuilt (see [`crate::CompileCacheStats`]). The directory is created
    /// (with its parents, private to this user) when the host is built. An entry is native
    /// code, so a directory someone else could change is refused when the host is built
    /// (owned by another user, writable by group or others, or under a directory others
    /// can write without the sticky bit), and so is an entry someone else could have
    /// written (it is compiled anew and replaced).
    ///
    /// Default: `None`, no cache (every load compiles; a library writes no files unless
    /// asked). `switchyard run` uses the user's cache directory
    /// (`$XDG_CACHE_HOME/switchyard/compile`, else `~/.cache/switchyard/compile`).
    pub cache_dir: Option<PathBuf>,
}

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            fuel_metering: true,
            epoch_tick: Duration::from_millis(1),
            pooling: true,
            pool_instances: 1000,
            pool_memory_bytes: 64 << 20,
            max_core_instances: 100,
            max_memories: 16,
            max_tables: 100,
            cache_dir: None,
        }
    }
}

/// Which targets (or topics) a component may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPattern {
    /// Exactly this id or topic.
    Exact(String),
    /// Every id or topic starting with this prefix.
    Prefix(String),
    /// Anything.
    Any,
}

impl TargetPattern {
    /// Parses `"*"` (any), `"prefix*"` (prefix) or an exact name.
    pub fn parse(s: &str) -> Self {
        if s == "*" {
            TargetPattern::Any
        } else if let Some(prefix) = s.strip_suffix('*') {
            TargetPattern::Prefix(prefix.to_string())
        } else {
            TargetPattern::Exact(s.to_string())
        }
    }

    /// True when `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            TargetPattern::Exact(e) => e == name,
            TargetPattern::Prefix(p) => name.starts_with(p.as_str()),
            TargetPattern::Any => true,
        }
    }
}

/// What a component may do with its storage namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageRights {
    /// No storage at all.
    #[default]
    None,
    /// `get` and `list-keys`.
    Read,
    /// Everything.
    ReadWrite,
}

/// What a WASM component is allowed to do. Checked by the host on every call.
///
/// The default allows nothing but replying: no sends, requests, publishes, subscriptions
/// or storage.
///
/// A component's storage is the namespace named by its plain component id (`"store"` for
/// the component registered as `store`) in the host's storage backend: the host can read
/// it there (for example with `RedbBackend::get("store", key)`), and its quota is that
/// namespace's quota.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Targets of `send-message`.
    pub send: Vec<TargetPattern>,
    /// Targets of `send-request`.
    pub request: Vec<TargetPattern>,
    /// Topics of `publish`.
    pub publish: Vec<TargetPattern>,
    /// Topics of `subscribe`.
    pub subscribe: Vec<TargetPattern>,
    /// Storage rights over the component's own namespace (named by its component id).
    pub storage: StorageRights,
    /// Storage quota of that namespace (`None`: the backend's default), applied when the
    /// component is registered. Needs a host with storage.
    pub storage_quota: Option<StorageQuota>,
    /// Largest payload the component may send (bytes). `None`: the runtime's limit.
    pub max_payload_bytes: Option<usize>,
    /// What it may reach through WASI 0.2 beyond the basics (see [`WasiGrants`]).
    pub wasi: WasiGrants,
}

impl Capabilities {
    /// Everything allowed (trusted components, tests).
    pub fn all() -> Self {
        Self {
            send: vec![TargetPattern::Any],
            request: vec![TargetPattern::Any],
            publish: vec![TargetPattern::Any],
            subscribe: vec![TargetPattern::Any],
            storage: StorageRights::ReadWrite,
            storage_quota: None,
            max_payload_bytes: None,
            wasi: WasiGrants::default(),
        }
    }

    /// True when the component may block on host I/O: durable storage writes (an fsync,
    /// or a wait for its group commit), files, sockets. Such a component is homed on the
    /// runtime's I/O workers ([`crate::ComponentSpec::blocking_io`]).
    pub fn blocks_on_io(&self) -> bool {
        self.storage == StorageRights::ReadWrite || self.wasi.blocks_on_io()
    }

    pub(crate) fn allows(patterns: &[TargetPattern], name: &str) -> bool {
        patterns.iter().any(|p| p.matches(name))
    }
}

/// [`WasmOptions::max_resources`] by default.
pub const DEFAULT_MAX_RESOURCES: usize = 256;
/// [`WasmOptions::max_output_bytes`] by default: 64 KiB.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 64 << 10;
/// [`WasmOptions::max_subscriptions`] by default.
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 1024;
/// [`WasmOptions::max_pending_requests`] by default.
pub const DEFAULT_MAX_PENDING_REQUESTS: usize = 1024;
/// [`WasmOptions::max_request_timeout`] by default: one hour.
pub const DEFAULT_MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(3600);

/// Per-component settings of a WASM component.
///
/// Set the common ones with the builder-style setters, the rest through the fields:
///
/// ```
/// use std::time::Duration;
/// use switchyard::{Capabilities, RestartPolicy, StorageRights, WasmOptions};
///
/// let options = WasmOptions::default()
///     .capabilities(Capabilities { storage: StorageRights::ReadWrite, ..Capabilities::default() })
///     .fuel_per_message(1_000_000)
///     .deadline(Duration::from_millis(50))
///     .memory_limit(4 << 20)
///     .mailbox_capacity(256)
///     .restart_policy(RestartPolicy::Permanent)
///     .restart_backoff(Duration::from_millis(10), Duration::from_secs(1))
///     .restart_limit(5, Duration::from_secs(60));
/// assert_eq!(options.component.supervision.max_restarts, 5);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmOptions {
    /// What it may do.
    pub capabilities: Capabilities,
    /// Fuel budget of one call (message, callback or init). Default: 10 000 000.
    pub fuel_per_message: u64,
    /// Wall-clock deadline of one call. Default: 1 s.
    pub deadline: Duration,
    /// Most linear memory the instance may grow to (bytes), all its memories together.
    /// Default: 16 MiB.
    pub memory_limit: usize,
    /// Most table elements, all its tables together. Default: 10 000.
    pub table_limit: usize,
    /// Most host resources an instance holds at once (WASI streams, files, directories,
    /// sockets, pollables): each may hold a file descriptor of the host process. A guest
    /// that asks for more gets an error (or a trap where WASI has no error to give).
    /// Default: 256.
    pub max_resources: usize,
    /// Most bytes one guest call emits through stdout, stderr and `log` together; the rest
    /// is dropped and counted, and the call's last line says how much. Default: 64 KiB.
    pub max_output_bytes: usize,
    /// Most topics the guest may be subscribed to at once (each holds host memory); a
    /// `subscribe` past it is refused with `quota-exceeded`, counted as a capability
    /// denial. Default: 1024.
    pub max_subscriptions: usize,
    /// Most requests the guest may have waiting for their outcome at once (each holds an
    /// entry of the runtime's pending table and its timer); a `send-request` past it is
    /// refused with `quota-exceeded`, counted as a capability denial. A request's place is
    /// freed when its outcome reaches the guest's `handle-callback`. Default: 1024.
    pub max_pending_requests: usize,
    /// The longest a guest's request may wait for its answer: a longer `timeout-ms` is cut
    /// to it. Default: one hour.
    pub max_request_timeout: Duration,
    /// Mailbox, batch, supervision and redelivery settings.
    pub component: ComponentConfig,
}

impl Default for WasmOptions {
    fn default() -> Self {
        Self {
            capabilities: Capabilities::default(),
            fuel_per_message: 10_000_000,
            deadline: Duration::from_secs(1),
            memory_limit: 16 << 20,
            table_limit: 10_000,
            max_resources: DEFAULT_MAX_RESOURCES,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
            max_pending_requests: DEFAULT_MAX_PENDING_REQUESTS,
            max_request_timeout: DEFAULT_MAX_REQUEST_TIMEOUT,
            component: ComponentConfig::default(),
        }
    }
}

impl WasmOptions {
    /// Sets what the component may do.
    pub fn capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Sets the fuel budget of one call (ignored when the host meters no fuel).
    pub fn fuel_per_message(mut self, fuel: u64) -> Self {
        self.fuel_per_message = fuel;
        self
    }

    /// Sets the wall-clock deadline of one call.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets the most linear memory (bytes) the instance may grow to.
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Sets the most host resources (streams, files, sockets, ...) an instance holds at once.
    pub fn max_resources(mut self, resources: usize) -> Self {
        self.max_resources = resources;
        self
    }

    /// Sets the most bytes one guest call emits through stdout, stderr and `log` together.
    pub fn max_output_bytes(mut self, bytes: usize) -> Self {
        self.max_output_bytes = bytes;
        self
    }

    /// Sets the most topics the guest may be subscribed to at once.
    pub fn max_subscriptions(mut self, topics: usize) -> Self {
        self.max_subscriptions = topics;
        self
    }

    /// Sets the most requests the guest may have waiting for their outcome at once.
    pub fn max_pending_requests(mut self, requests: usize) -> Self {
        self.max_pending_requests = requests;
        self
    }

    /// Sets the longest a guest's request may wait for its answer.
    pub fn max_request_timeout(mut self, timeout: Duration) -> Self {
        self.max_request_timeout = timeout;
        self
    }

    /// Sets the mailbox capacity (messages).
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.component.mailbox_capacity = capacity;
        self
    }

    /// Sets the restart policy, keeping the other supervision settings.
    pub fn restart_policy(mut self, policy: RestartPolicy) -> Self {
        self.component.supervision.policy = policy;
        self
    }

    /// Sets the delay before the first restart and its upper bound (it doubles for each
    /// further restart in the window).
    pub fn restart_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.component.supervision.backoff_initial = initial;
        self.component.supervision.backoff_max = max;
        self
    }

    /// Sets how many restarts are allowed within `window`; one more crash stops the
    /// component.
    pub fn restart_limit(mut self, max_restarts: u32, window: Duration) -> Self {
        self.component.supervision.max_restarts = max_restarts;
        self.component.supervision.window = window;
        self
    }

    /// Checks the options against the host that will run them: `storage_file` is the
    /// host's storage file, if it has storage (`Some(None)`: storage in memory).
    pub(crate) fn validate(
        &self,
        config: &WasmConfig,
        storage_file: Option<Option<&Path>>,
    ) -> Result<(), RegisterError> {
        let host_has_storage = storage_file.is_some();
        self.component.validate()?;
        if self.max_resources == 0 {
            return Err(RegisterError::InvalidConfig("max_resources must be at least 1"));
        }
        if self.max_request_timeout.is_zero() {
            return Err(RegisterError::InvalidConfig("max_request_timeout must be more than zero"));
        }
        if config.fuel_metering && self.fuel_per_message == 0 {
            return Err(RegisterError::InvalidConfig("fuel_per_message must be at least 1 with fuel metering on"));
        }
        if self.capabilities.storage_quota.is_some() && !host_has_storage {
            return Err(RegisterError::InvalidConfig(
                "capabilities.storage_quota is set but the host has no storage (see WasmHost::with_storage)",
            ));
        }
        self.capabilities.wasi.check().map_err(RegisterError::UnusableGrant)?;
        self.capabilities
            .wasi
            .check_reach(config.cache_dir.as_deref(), storage_file.flatten())
            .map_err(RegisterError::UnusableGrant)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::Supervision;

    #[test]
    fn components_that_may_wait_on_host_io_are_marked_blocking() {
        let none = Capabilities::default();
        assert!(!none.blocks_on_io());
        let read = Capabilities { storage: StorageRights::Read, ..Capabilities::default() };
        assert!(!read.blocks_on_io(), "reads do not fsync");
        let write = Capabilities { storage: StorageRights::ReadWrite, ..Capabilities::default() };
        assert!(write.blocks_on_io());
        let mut files = Capabilities::default();
        files.wasi.dirs.push(super::super::wasi::DirGrant { host: ".".into(), guest: "/d".into(), writable: false });
        assert!(files.blocks_on_io());
        let mut net = Capabilities::default();
        net.wasi.network = true;
        assert!(net.blocks_on_io());
    }

    #[test]
    fn patterns_match_exact_prefix_and_any() {
        assert!(TargetPattern::parse("a").matches("a"));
        assert!(!TargetPattern::parse("a").matches("ab"));
        assert!(TargetPattern::parse("svc/*").matches("svc/x"));
        assert!(!TargetPattern::parse("svc/*").matches("other"));
        assert!(TargetPattern::parse("*").matches("anything"));
    }

    #[test]
    fn options_that_cannot_run_are_refused() {
        let metered = WasmConfig::default();
        assert_eq!(WasmOptions::default().validate(&metered, None), Ok(()));
        let no_fuel = WasmOptions { fuel_per_message: 0, ..WasmOptions::default() };
        assert!(matches!(no_fuel.validate(&metered, None), Err(RegisterError::InvalidConfig(_))));
        let unmetered = WasmConfig { fuel_metering: false, ..WasmConfig::default() };
        assert_eq!(no_fuel.validate(&unmetered, None), Ok(()), "the budget is ignored without metering");
        let mut quota = WasmOptions::default();
        quota.capabilities.storage_quota = Some(StorageQuota::new(1, 1));
        assert!(matches!(quota.validate(&metered, None), Err(RegisterError::InvalidConfig(_))));
        assert_eq!(quota.validate(&metered, Some(None)), Ok(()));
        let mut no_mailbox = WasmOptions::default();
        no_mailbox.component.mailbox_capacity = 0;
        assert!(matches!(no_mailbox.validate(&metered, None), Err(RegisterError::InvalidConfig(_))));
    }

    #[test]
    fn setters_change_only_their_own_settings() {
        let set = WasmOptions::default()
            .capabilities(Capabilities::all())
            .mailbox_capacity(8)
            .restart_policy(RestartPolicy::Transient)
            .restart_backoff(Duration::from_millis(5), Duration::from_secs(2))
            .restart_limit(7, Duration::from_secs(30))
            .fuel_per_message(500)
            .deadline(Duration::from_millis(20))
            .memory_limit(1 << 20);
        let expected = WasmOptions {
            capabilities: Capabilities::all(),
            fuel_per_message: 500,
            deadline: Duration::from_millis(20),
            memory_limit: 1 << 20,
            component: ComponentConfig {
                mailbox_capacity: 8,
                supervision: Supervision {
                    policy: RestartPolicy::Transient,
                    max_restarts: 7,
                    window: Duration::from_secs(30),
                    backoff_initial: Duration::from_millis(5),
                    backoff_max: Duration::from_secs(2),
                },
                ..ComponentConfig::default()
            },
            ..WasmOptions::default()
        };
        assert_eq!(set, expected);
    }

    #[test]
    fn default_capabilities_allow_nothing() {
        let c = Capabilities::default();
        assert!(!Capabilities::allows(&c.send, "x"));
        assert_eq!(c.storage, StorageRights::None);
    }
}
