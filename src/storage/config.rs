//! The settings a [`RedbBackend`](crate::storage::RedbBackend) is opened with: size limits,
//! durability mode and quotas.

use std::path::Path;
use std::time::Duration;

use crate::storage::error::StorageError;
use crate::storage::keys::Limits;
use crate::storage::quota::{Quotas, StorageQuota};
use crate::storage::redb::RedbBackend;

/// Default [`StorageConfig::max_key_size`]: 4 KiB.
pub const DEFAULT_MAX_KEY_SIZE: usize = 4 * 1024;
/// Default [`StorageConfig::max_value_size`]: 1 MiB.
pub const DEFAULT_MAX_VALUE_SIZE: usize = 1024 * 1024;

/// When a committed write reaches the disk.
///
/// Whatever the mode, a write call (or transaction commit) returns only once its data is
/// durable: an acknowledged write survives a process crash or power loss. The modes differ in how
/// many fsyncs that costs and in what *other* callers can observe before then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DurabilityMode {
    /// Every commit is its own durable redb commit (`redb::Durability::Immediate`): one fsync
    /// per write call or transaction. The default.
    #[default]
    Immediate,
    /// Commits from many callers share one fsync.
    ///
    /// Each write commits with `redb::Durability::None` (visible at once, not yet on disk), and
    /// its caller then waits. A background committer thread makes everything committed so far
    /// durable with one `Durability::Immediate` commit as soon as `max_batch` commits are
    /// waiting, or `max_delay` after the first of them, whichever comes first.
    ///
    /// **Window of possible loss.** No acknowledged write is lost. What a crash can lose is the
    /// commits of the current batch: writes whose callers are still waiting, at most `max_batch`
    /// commits from at most `max_delay` (plus the fsync time). Those writes are already visible
    /// to readers during that window, so another thread may read a value that a crash then
    /// takes back. Callers that act on what they read must tolerate that, or use
    /// [`Immediate`](Self::Immediate). Plain `Durability::None` without the committer would
    /// lose everything since the last durable commit, unbounded; the committer is what bounds
    /// the window.
    GroupCommit {
        /// Longest time the first commit of a batch waits for others (and so for its fsync).
        max_delay: Duration,
        /// Number of waiting commits that triggers the fsync at once. `0` is treated as `1`.
        max_batch: usize,
    },
}

/// Settings for opening a [`RedbBackend`]; build one, then call [`open`](Self::open),
/// [`in_memory`](Self::in_memory) or [`open_with_backend`](Self::open_with_backend).
///
/// ```
/// use std::time::Duration;
/// use switchyard::{DurabilityMode, StorageConfig, StorageQuota};
///
/// let backend = StorageConfig::new()
///     .max_key_size(256)
///     .max_value_size(64 * 1024)
///     .durability(DurabilityMode::GroupCommit {
///         max_delay: Duration::from_millis(2),
///         max_batch: 64,
///     })
///     .default_quota(StorageQuota::new(1 << 20, 10_000))
///     .quota("component:billing", StorageQuota::new(16 << 20, 100_000))
///     .in_memory()?;
/// assert_eq!(backend.usage("component:billing")?.quota.max_keys, 100_000);
/// # Ok::<(), switchyard::StorageError>(())
/// ```
#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub(crate) limits: Limits,
    pub(crate) durability: DurabilityMode,
    pub(crate) quotas: Quotas,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            limits: Limits { max_key_size: DEFAULT_MAX_KEY_SIZE, max_value_size: DEFAULT_MAX_VALUE_SIZE },
            durability: DurabilityMode::Immediate,
            quotas: Quotas::default(),
        }
    }
}

impl StorageConfig {
    /// The defaults: 4 KiB keys, 1 MiB values, [`DurabilityMode::Immediate`], no quotas.
    pub fn new() -> Self {
        Self::default()
    }

    /// Longest key accepted, in bytes; longer keys fail with [`StorageError::KeyTooLarge`].
    pub fn max_key_size(mut self, bytes: usize) -> Self {
        self.limits.max_key_size = bytes;
        self
    }

    /// Longest value accepted, in bytes; longer values fail with
    /// [`StorageError::ValueTooLarge`].
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.limits.max_value_size = bytes;
        self
    }

    /// When commits reach the disk; see [`DurabilityMode`].
    pub fn durability(mut self, mode: DurabilityMode) -> Self {
        self.durability = mode;
        self
    }

    /// The quota of every namespace without its own [`quota`](Self::quota).
    pub fn default_quota(mut self, quota: StorageQuota) -> Self {
        self.quotas.default = quota;
        self
    }

    /// The quota of one namespace. Can also be changed later with
    /// [`RedbBackend::set_quota`].
    pub fn quota(mut self, namespace: impl Into<String>, quota: StorageQuota) -> Self {
        self.quotas.overrides.insert(namespace.into(), quota);
        self
    }

    /// Opens the database file at `path`, creating it if it does not exist.
    ///
    /// Fails with [`StorageError::AlreadyOpen`] if another backend or process has it open, and
    /// with [`StorageError::Io`] or [`StorageError::Corruption`] if it cannot be read. An
    /// interrupted previous run is repaired by redb during this call (it may take a while on a
    /// large file); commits that were durable before the interruption are kept.
    pub fn open(self, path: impl AsRef<Path>) -> Result<RedbBackend, StorageError> {
        let path = path.as_ref();
        let db = redb::Database::builder().create(path)?;
        let file = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(RedbBackend::from_database(db, self)?.with_file(file))
    }

    /// Opens a fresh database held in memory; everything is lost when the backend is dropped.
    pub fn in_memory(self) -> Result<RedbBackend, StorageError> {
        self.open_with_backend(redb::backends::InMemoryBackend::new())
    }

    /// Opens (or creates) a database on a custom redb storage backend, for example one that
    /// injects faults or records what was synced.
    pub fn open_with_backend(self, backend: impl redb::StorageBackend) -> Result<RedbBackend, StorageError> {
        let db = redb::Database::builder().create_with_backend(backend)?;
        RedbBackend::from_database(db, self)
    }
}
