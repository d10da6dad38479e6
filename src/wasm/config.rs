//! Settings of the WASM host (engine-wide) and of each WASM component (limits, rights).

use std::time::Duration;

use crate::component::ComponentConfig;
use crate::error::RegisterError;
use crate::storage::StorageQuota;

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
}

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            fuel_metering: true,
            epoch_tick: Duration::from_millis(1),
            pooling: true,
            pool_instances: 1000,
            pool_memory_bytes: 64 << 20,
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
    /// Storage rights over the component's own namespace.
    pub storage: StorageRights,
    /// Storage quota of the namespace (`None`: the backend's default).
    pub storage_quota: Option<StorageQuota>,
    /// Largest payload the component may send (bytes). `None`: the runtime's limit.
    pub max_payload_bytes: Option<usize>,
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
        }
    }

    pub(crate) fn allows(patterns: &[TargetPattern], name: &str) -> bool {
        patterns.iter().any(|p| p.matches(name))
    }
}

/// Per-component settings of a WASM component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmOptions {
    /// What it may do.
    pub capabilities: Capabilities,
    /// Fuel budget of one call (message, callback or init). Default: 10 000 000.
    pub fuel_per_message: u64,
    /// Wall-clock deadline of one call. Default: 1 s.
    pub deadline: Duration,
    /// Most linear memory the instance may grow to (bytes). Default: 16 MiB.
    pub memory_limit: usize,
    /// Most table elements. Default: 10 000.
    pub table_limit: usize,
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
            component: ComponentConfig::default(),
        }
    }
}

impl WasmOptions {
    /// Checks the options against the host that will run them.
    pub(crate) fn validate(&self, config: &WasmConfig, host_has_storage: bool) -> Result<(), RegisterError> {
        self.component.validate()?;
        if config.fuel_metering && self.fuel_per_message == 0 {
            return Err(RegisterError::InvalidConfig("fuel_per_message must be at least 1 with fuel metering on"));
        }
        if self.capabilities.storage_quota.is_some() && !host_has_storage {
            return Err(RegisterError::InvalidConfig(
                "capabilities.storage_quota is set but the host has no storage (see WasmHost::with_storage)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(WasmOptions::default().validate(&metered, false), Ok(()));
        let no_fuel = WasmOptions { fuel_per_message: 0, ..WasmOptions::default() };
        assert!(matches!(no_fuel.validate(&metered, false), Err(RegisterError::InvalidConfig(_))));
        let unmetered = WasmConfig { fuel_metering: false, ..WasmConfig::default() };
        assert_eq!(no_fuel.validate(&unmetered, false), Ok(()), "the budget is ignored without metering");
        let mut quota = WasmOptions::default();
        quota.capabilities.storage_quota = Some(StorageQuota::new(1, 1));
        assert!(matches!(quota.validate(&metered, false), Err(RegisterError::InvalidConfig(_))));
        assert_eq!(quota.validate(&metered, true), Ok(()));
        let mut no_mailbox = WasmOptions::default();
        no_mailbox.component.mailbox_capacity = 0;
        assert!(matches!(no_mailbox.validate(&metered, false), Err(RegisterError::InvalidConfig(_))));
    }

    #[test]
    fn default_capabilities_allow_nothing() {
        let c = Capabilities::default();
        assert!(!Capabilities::allows(&c.send, "x"));
        assert_eq!(c.storage, StorageRights::None);
    }
}
