//! What a host registers: [`ComponentSpec`] (a handler factory and its settings) and
//! [`ComponentConfig`] (mailbox, batch, supervision, redelivery).

use crate::error::{HandlerError, RegisterError};
use crate::handler::Handler;
use crate::id::ComponentId;
use crate::supervisor::Supervision;

/// Makes a component's handler: at registration and after every restart.
///
/// A plain `std` `Arc`: the factory is shared immutable data, not a synchronization point,
/// and loom's `Arc` cannot hold a trait object.
pub type HandlerFactory = std::sync::Arc<dyn Fn() -> Result<Box<dyn Handler>, HandlerError> + Send + Sync>;

/// Largest mailbox capacity (its slots take about 190 bytes each once allocated).
pub const MAX_MAILBOX_CAPACITY: usize = 1 << 20;

/// Per-component settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentConfig {
    /// Mailbox capacity in messages. Once allocated, the mailbox's slots take about 190
    /// bytes each on 64-bit targets.
    pub mailbox_capacity: usize,
    /// Allocate the mailbox's slots when the first message arrives (true, the default) or
    /// at registration (false). A registered component that never gets a message costs
    /// about 1.1 KB lazily, about 25 KB eagerly (capacity 128; measured with 100 000
    /// components). The price of lazy, measured in the compare report: the first message
    /// to each component pays the allocation and its page faults (a pass of one message to
    /// each of 100 000 fresh components runs several times slower than later passes);
    /// steady throughput is the same within noise. Choose eager for components whose first
    /// message must be as fast as the rest.
    pub lazy_mailbox: bool,
    /// Most messages handled per turn before the component yields its worker.
    pub batch: usize,
    /// Restart policy, limit and backoff.
    pub supervision: Supervision,
    /// Most times an at-least-once message is handed to the handler before it is
    /// dead-lettered (1 means no redelivery).
    pub max_attempts: u32,
    /// The handler blocks on I/O (fsyncs, files, sockets): home the component on one of
    /// the runtime's I/O workers, so its waits never hold up the components on the general
    /// workers. Default: false.
    pub blocking_io: bool,
    /// Exactly-once deduplication window: how many recently handled exactly-once message
    /// ids the component remembers. A duplicate that arrives after this many later ids
    /// were handled is not recognised.
    #[cfg(feature = "exactly-once-delivery")]
    pub dedup_window: usize,
}

impl Default for ComponentConfig {
    fn default() -> Self {
        Self {
            mailbox_capacity: 128,
            lazy_mailbox: true,
            batch: 64,
            supervision: Supervision::default(),
            max_attempts: 3,
            blocking_io: false,
            #[cfg(feature = "exactly-once-delivery")]
            dedup_window: 4096,
        }
    }
}

impl ComponentConfig {
    pub(crate) fn validate(&self) -> Result<(), RegisterError> {
        if self.mailbox_capacity == 0 {
            return Err(RegisterError::InvalidConfig("mailbox_capacity must be at least 1"));
        }
        if self.mailbox_capacity > MAX_MAILBOX_CAPACITY {
            return Err(RegisterError::InvalidConfig(
                "mailbox_capacity must be at most MAX_MAILBOX_CAPACITY (1048576)",
            ));
        }
        if self.batch == 0 {
            return Err(RegisterError::InvalidConfig("batch must be at least 1"));
        }
        if self.max_attempts == 0 {
            return Err(RegisterError::InvalidConfig("max_attempts must be at least 1"));
        }
        #[cfg(feature = "exactly-once-delivery")]
        if self.dedup_window == 0 || self.dedup_window > MAX_MAILBOX_CAPACITY {
            return Err(RegisterError::InvalidConfig("dedup_window must be from 1 to 1048576"));
        }
        Ok(())
    }
}

/// Told when the runtime inserts a component made from a spec into its registry, and when
/// it removes it: lets whoever made the spec (the WASM host) keep its own table of
/// components in step with the registry, whichever API registered the spec.
pub(crate) trait RegistryHook: Send + Sync {
    /// The runtime registered `id` (called after the insert succeeded).
    fn registered(&self, id: &ComponentId);
    /// The runtime unregistered `id` (called after its removal from the registry).
    fn unregistered(&self, id: &ComponentId);
    /// The WASM counters of the component, for its snapshot (none for native handlers).
    #[cfg(feature = "wasm")]
    fn wasm_stats(&self) -> Option<crate::wasm::WasmStatsSnapshot> {
        None
    }
}

/// What to register: a handler factory and its settings.
///
/// ```
/// use switchyard::{handler_fn, ComponentSpec, RestartPolicy};
/// let spec = ComponentSpec::new(|| handler_fn(|_ctx, msg| Ok(Some(msg.payload.clone()))))
///     .mailbox_capacity(256)
///     .restart_policy(RestartPolicy::Transient);
/// # let _ = spec;
/// ```
#[derive(Clone)]
pub struct ComponentSpec {
    pub(crate) factory: HandlerFactory,
    pub(crate) config: ComponentConfig,
    /// A plain `std` `Arc`, as for the factory.
    pub(crate) registry_hook: Option<std::sync::Arc<dyn RegistryHook>>,
}

impl ComponentSpec {
    /// A spec whose factory makes a fresh `H` each time.
    pub fn new<H: Handler, F: Fn() -> H + Send + Sync + 'static>(factory: F) -> Self {
        Self {
            factory: std::sync::Arc::new(move || Ok(Box::new(factory()) as Box<dyn Handler>)),
            config: ComponentConfig::default(),
            registry_hook: None,
        }
    }

    /// A spec whose factory may fail (a failure counts as a crash).
    pub fn try_new<F>(factory: F) -> Self
    where
        F: Fn() -> Result<Box<dyn Handler>, HandlerError> + Send + Sync + 'static,
    {
        Self { factory: std::sync::Arc::new(factory), config: ComponentConfig::default(), registry_hook: None }
    }

    /// Sets the hook told when the runtime registers and unregisters this component.
    #[cfg_attr(not(feature = "wasm"), allow(dead_code))]
    pub(crate) fn registry_hook(mut self, hook: std::sync::Arc<dyn RegistryHook>) -> Self {
        self.registry_hook = Some(hook);
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: ComponentConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the mailbox capacity.
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.config.mailbox_capacity = capacity;
        self
    }

    /// Allocates the mailbox on the first message (true, the default) or at registration
    /// (see [`ComponentConfig::lazy_mailbox`]).
    pub fn lazy_mailbox(mut self, lazy: bool) -> Self {
        self.config.lazy_mailbox = lazy;
        self
    }

    /// Sets the batch size per turn.
    pub fn batch(mut self, batch: usize) -> Self {
        self.config.batch = batch;
        self
    }

    /// Sets the supervision settings.
    pub fn supervision(mut self, supervision: Supervision) -> Self {
        self.config.supervision = supervision;
        self
    }

    /// Sets the restart policy, keeping the other supervision settings.
    pub fn restart_policy(mut self, policy: crate::RestartPolicy) -> Self {
        self.config.supervision.policy = policy;
        self
    }

    /// Says whether the handler blocks on I/O (see [`ComponentConfig::blocking_io`]).
    pub fn blocking_io(mut self, blocking: bool) -> Self {
        self.config.blocking_io = blocking;
        self
    }

    /// Sets how many times an at-least-once message may be handed to the handler.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.config.max_attempts = attempts;
        self
    }
}
