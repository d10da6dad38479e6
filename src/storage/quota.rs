//! Per-namespace quotas and the exact usage accounting that enforces them.
//!
//! Usage is not estimated: a redb table maps each namespace to `(used_bytes, key_count)` and is
//! updated inside the same write transaction as the data, so the two can never disagree, even
//! after a crash. `used_bytes` counts what the namespace stores, `key.len() + value.len()` for
//! every key, not redb's page overhead.
//!
//! A write transaction collects the usage changes of all its operations in a [`UsageLedger`];
//! before commit the ledger checks each touched namespace against its quota. A failed check
//! aborts the whole redb transaction, so a write over quota writes nothing.

use std::collections::HashMap;

use redb::{ReadableTable, TableDefinition};

use crate::storage::error::{QuotaResource, StorageError};

/// namespace -> (used_bytes, key_count). Namespaces with no keys have no row.
pub(crate) const USAGE_TABLE: TableDefinition<&str, (u64, u64)> = TableDefinition::new("switchyard.storage.usage");

/// The limits of one namespace.
///
/// A write (or transaction) fails with [`StorageError::QuotaExceeded`] when, after all its
/// operations, the namespace would hold more than `max_bytes` bytes or more than `max_keys` keys
/// *and* the write increases that figure. Writes that shrink a namespace are always allowed, so a
/// namespace left over a lowered quota can still delete and overwrite with smaller values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StorageQuota {
    /// Maximum of the sum of key and value lengths in the namespace.
    pub max_bytes: u64,
    /// Maximum number of keys in the namespace.
    pub max_keys: u64,
}

impl StorageQuota {
    /// No limit on bytes or keys; the default for every namespace.
    pub const UNLIMITED: StorageQuota = StorageQuota { max_bytes: u64::MAX, max_keys: u64::MAX };

    /// A quota of at most `max_bytes` stored bytes and `max_keys` keys.
    pub const fn new(max_bytes: u64, max_keys: u64) -> Self {
        StorageQuota { max_bytes, max_keys }
    }
}

impl Default for StorageQuota {
    fn default() -> Self {
        StorageQuota::UNLIMITED
    }
}

/// What a namespace stores now, and what it may store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StorageUsage {
    /// Sum of `key.len() + value.len()` over the namespace's keys.
    pub used_bytes: u64,
    /// Number of keys in the namespace.
    pub key_count: u64,
    /// The quota currently applied to the namespace.
    pub quota: StorageQuota,
}

/// The default quota and the per-namespace overrides.
#[derive(Debug, Clone, Default)]
pub(crate) struct Quotas {
    pub(crate) default: StorageQuota,
    pub(crate) overrides: HashMap<String, StorageQuota>,
}

impl Quotas {
    pub(crate) fn get(&self, namespace: &str) -> StorageQuota {
        self.overrides.get(namespace).copied().unwrap_or(self.default)
    }
}

/// `(used_bytes, key_count)` of one namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) bytes: u64,
    pub(crate) keys: u64,
}

/// Reads the stored usage of a namespace (zero when it has no row).
pub(crate) fn read_usage(
    table: &impl ReadableTable<&'static str, (u64, u64)>,
    namespace: &str,
) -> Result<Usage, StorageError> {
    Ok(table
        .get(namespace)?
        .map(|guard| {
            let (bytes, keys) = guard.value();
            Usage { bytes, keys }
        })
        .unwrap_or_default())
}

/// Usage before and after the operations of one write transaction, per touched namespace.
#[derive(Debug, Default)]
pub(crate) struct UsageLedger {
    entries: HashMap<String, (Usage, Usage)>,
}

impl UsageLedger {
    /// Records that `namespace` now stores `key` with a value of `new_len` bytes (`None`: the key
    /// was removed), where it stored `old_len` (`None`: the key was absent).
    pub(crate) fn record(
        &mut self,
        table: &impl ReadableTable<&'static str, (u64, u64)>,
        namespace: &str,
        key_len: usize,
        old_len: Option<usize>,
        new_len: Option<usize>,
    ) -> Result<(), StorageError> {
        if !self.entries.contains_key(namespace) {
            let stored = read_usage(table, namespace)?;
            self.entries.insert(namespace.to_owned(), (stored, stored));
        }
        let Some((_, now)) = self.entries.get_mut(namespace) else {
            return Ok(());
        };
        let entry_size = |value_len: usize| (key_len as u64).saturating_add(value_len as u64);
        // Saturating arithmetic: a usage row damaged outside this code must not panic here.
        if let Some(old) = old_len {
            now.bytes = now.bytes.saturating_sub(entry_size(old));
            now.keys = now.keys.saturating_sub(1);
        }
        if let Some(new) = new_len {
            now.bytes = now.bytes.saturating_add(entry_size(new));
            now.keys = now.keys.saturating_add(1);
        }
        Ok(())
    }

    /// Fails with [`StorageError::QuotaExceeded`] if a touched namespace grew past its quota.
    pub(crate) fn check(&self, quotas: &Quotas) -> Result<(), StorageError> {
        for (namespace, (before, after)) in &self.entries {
            let quota = quotas.get(namespace);
            let over = |resource, limit: u64, before: u64, after: u64| {
                if after > limit && after > before {
                    Err(StorageError::QuotaExceeded { namespace: namespace.clone(), resource, limit, requested: after })
                } else {
                    Ok(())
                }
            };
            over(QuotaResource::Keys, quota.max_keys, before.keys, after.keys)?;
            over(QuotaResource::Bytes, quota.max_bytes, before.bytes, after.bytes)?;
        }
        Ok(())
    }

    /// Writes the new usage rows (removing rows of namespaces left without keys).
    pub(crate) fn store(&self, table: &mut redb::Table<&str, (u64, u64)>) -> Result<(), StorageError> {
        for (namespace, (before, after)) in &self.entries {
            if before == after {
                continue;
            }
            if after.keys == 0 {
                table.remove(namespace.as_str())?;
            } else {
                table.insert(namespace.as_str(), (after.bytes, after.keys))?;
            }
        }
        Ok(())
    }
}
