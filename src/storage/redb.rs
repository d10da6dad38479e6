//! [`RedbBackend`]: the [`StorageBackend`] on an embedded redb database.
//!
//! Layout: one data table holds every namespace, keyed by the length-prefixed encoding of
//! `keys.rs`; one usage table holds each namespace's exact `(used_bytes, key_count)`; one meta
//! table holds the group-commit epoch. Reads open a redb read transaction (a snapshot; they run
//! concurrently with the writer). Every write, single or batched, goes through
//! [`Shared::write`]: one redb write transaction that applies the operations, updates the
//! usage table, checks quotas, and commits, or aborts and leaves nothing behind.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crate::sync::RwLock;
use async_trait::async_trait;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use crate::storage::backend::{StorageBackend, StorageOperation, StorageTransaction};
use crate::storage::config::{DurabilityMode, StorageConfig};
use crate::storage::error::StorageError;
use crate::storage::group_commit::GroupCommit;
use crate::storage::keys::{self, Limits};
use crate::storage::quota::{self, Quotas, StorageQuota, StorageUsage, USAGE_TABLE, UsageLedger};
use crate::storage::transaction::{OperationResult, RedbTransaction};

/// encoded (namespace, key) -> value, for all namespaces.
const DATA_TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("switchyard.storage.data");
/// Bookkeeping: the counter each group-commit fsync increments, so that it is never empty.
const META_TABLE: TableDefinition<&str, u64> = TableDefinition::new("switchyard.storage.meta");
const GROUP_EPOCH_KEY: &str = "group_commit_epoch";

/// The namespaced key-value store on redb.
///
/// One `RedbBackend` owns one redb database (a file, or memory) and is shared by all worker
/// threads (`&self` everywhere; wrap it in an `Arc`). Reads run concurrently with each other
/// and with the single writer; writes are serialized by redb.
///
/// Each operation is available twice, with the same name and semantics: as an inherent,
/// blocking method for plain threads, and through the async [`StorageBackend`] trait, whose
/// futures call the inherent methods and complete on first poll.
///
/// # Durability
///
/// A write method returns once its data is durable (see [`DurabilityMode`] for the group-commit
/// mode and its loss window). Dropping the backend, or [`close`](Self::close), makes every
/// committed write durable and closes the file; reopening it gives back exactly the
/// committed data. After a crash, redb repairs the file on open and every write that was
/// acknowledged before the crash is present; no transaction is ever partly visible.
///
/// # What a failure leaves behind
///
/// Input errors and quota errors are detected before commit and leave the store unchanged.
/// After an I/O error during a commit, redb may refuse further writes
/// ([`StorageError::Io`]) until the backend is dropped and the file reopened; the file itself
/// stays consistent.
///
/// ```
/// use switchyard::{RedbBackend, StorageQuota};
///
/// let store = RedbBackend::builder()
///     .default_quota(StorageQuota::new(1024, 10))
///     .in_memory()?;
/// store.set("component:a", b"greeting", b"hello")?;
/// assert_eq!(store.get("component:a", b"greeting")?, Some(b"hello".to_vec()));
/// let usage = store.usage("component:a")?;
/// assert_eq!((usage.used_bytes, usage.key_count), (13, 1));
/// # Ok::<(), switchyard::StorageError>(())
/// ```
pub struct RedbBackend {
    shared: Arc<Shared>,
    /// The database file (canonical), or `None` for a database in memory or on a custom
    /// backend.
    file: Option<std::path::PathBuf>,
    /// The group-commit thread; joined on drop.
    committer: Option<JoinHandle<()>>,
}

/// What the backend, its transactions and its committer thread share.
pub(crate) struct Shared {
    db: Database,
    limits: Limits,
    quotas: RwLock<Quotas>,
    durability: DurabilityMode,
    group: Option<GroupCommit>,
}

impl RedbBackend {
    /// Opens the database file at `path` with the default [`StorageConfig`], creating it if
    /// needed. See [`StorageConfig::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        StorageConfig::new().open(path)
    }

    /// Opens a fresh in-memory database with the default [`StorageConfig`].
    pub fn in_memory() -> Result<Self, StorageError> {
        StorageConfig::new().in_memory()
    }

    /// The default settings, to adjust before opening.
    pub fn builder() -> StorageConfig {
        StorageConfig::new()
    }

    /// The database file, as an absolute path with no symbolic links (`None` for a database
    /// in memory or on a custom backend). The WASM host refuses to grant a guest a
    /// directory that holds it.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    pub(crate) fn with_file(mut self, file: std::path::PathBuf) -> Self {
        self.file = Some(file);
        self
    }

    pub(crate) fn from_database(db: Database, config: StorageConfig) -> Result<Self, StorageError> {
        let txn = db.begin_write()?;
        txn.open_table(DATA_TABLE)?;
        txn.open_table(USAGE_TABLE)?;
        txn.open_table(META_TABLE)?;
        txn.commit()?;

        let group = match config.durability {
            DurabilityMode::GroupCommit { max_delay, max_batch } => Some(GroupCommit::new(max_delay, max_batch)),
            DurabilityMode::Immediate => None,
        };
        let shared = Arc::new(Shared {
            db,
            limits: config.limits,
            quotas: RwLock::new(config.quotas),
            durability: config.durability,
            group,
        });
        let committer = if shared.group.is_some() {
            let thread_shared = Arc::clone(&shared);
            let handle = thread::Builder::new()
                .name("switchyard-storage-committer".into())
                .spawn(move || {
                    if let Some(group) = &thread_shared.group {
                        group.run_committer(|| thread_shared.sync_commit());
                    }
                })
                .map_err(|e| StorageError::Io(Arc::new(redb::Error::Io(e))))?;
            Some(handle)
        } else {
            None
        };
        Ok(RedbBackend { shared, file: None, committer })
    }

    /// Reads the value of `key` in `namespace`; `Ok(None)` if absent. See
    /// [`StorageBackend::get`].
    pub fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.shared.limits.check_key(namespace, key)?;
        self.shared.read(|table| get_in(table, namespace, key))
    }

    /// Stores `value` under `key` in `namespace`; blocks until durable. See
    /// [`StorageBackend::set`].
    pub fn set(&self, namespace: &str, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.shared.limits.check_entry(namespace, key, value)?;
        self.shared.write(|scope| scope.set(namespace, key, value).map(drop))
    }

    /// Removes `key` from `namespace`; absent keys are not an error. See
    /// [`StorageBackend::delete`].
    pub fn delete(&self, namespace: &str, key: &[u8]) -> Result<(), StorageError> {
        self.shared.limits.check_key(namespace, key)?;
        self.shared.write(|scope| scope.delete(namespace, key).map(drop))
    }

    /// Lists the keys of `namespace` starting with `prefix`, sorted, without the namespace.
    /// See [`StorageBackend::list_keys`].
    pub fn list_keys(&self, namespace: &str, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StorageError> {
        Limits::check_namespace(namespace)?;
        self.shared.read(|table| list_in(table, namespace, prefix))
    }

    /// Starts a transaction. Unlike [`StorageBackend::begin_transaction`] it returns the
    /// concrete type, whose [`commit_with_results`](RedbTransaction::commit_with_results)
    /// returns what its `Get` and `List` operations read.
    pub fn transaction(&self) -> RedbTransaction {
        RedbTransaction::new(Arc::downgrade(&self.shared), self.shared.limits)
    }

    /// The stored bytes, key count and quota of `namespace` (zero for an unused namespace).
    ///
    /// Exact: usage is updated in the same redb transaction as the data.
    pub fn usage(&self, namespace: &str) -> Result<StorageUsage, StorageError> {
        Limits::check_namespace(namespace)?;
        let txn = self.shared.db.begin_read()?;
        let table = txn.open_table(USAGE_TABLE)?;
        let used = quota::read_usage(&table, namespace)?;
        Ok(StorageUsage {
            used_bytes: used.bytes,
            key_count: used.keys,
            quota: self.shared.quotas.read().get(namespace),
        })
    }

    /// Sets the quota of `namespace`, replacing the default or a previous value.
    ///
    /// Applies to writes that commit after this call; data already stored is kept even if it
    /// is over the new quota (see [`StorageQuota`] for what is then allowed).
    pub fn set_quota(&self, namespace: &str, quota: StorageQuota) -> Result<(), StorageError> {
        Limits::check_namespace(namespace)?;
        self.shared.quotas.write().overrides.insert(namespace.to_owned(), quota);
        Ok(())
    }

    /// Sets the quota of a component's namespace, which is its id. Cannot fail: a component
    /// id is always a valid namespace (1 to `MAX_ID_LEN` bytes, at most `MAX_NAMESPACE_LEN`).
    #[cfg(feature = "wasm")]
    pub(crate) fn set_component_quota(&self, id: &crate::id::ComponentId, quota: StorageQuota) {
        const _: () = assert!(crate::id::MAX_ID_LEN <= keys::MAX_NAMESPACE_LEN);
        self.shared.quotas.write().overrides.insert(id.as_str().to_owned(), quota);
    }

    /// The durability mode the backend was opened with.
    pub fn durability(&self) -> DurabilityMode {
        self.shared.durability
    }

    /// Makes every write committed so far durable, and waits for it.
    ///
    /// In group-commit mode this closes the current batch at once instead of waiting for
    /// `max_delay`; in [`DurabilityMode::Immediate`] everything is durable already and it
    /// returns at once.
    pub fn flush(&self) -> Result<(), StorageError> {
        match &self.shared.group {
            Some(group) => group.flush(|| self.shared.sync_commit()),
            None => Ok(()),
        }
    }

    /// Makes everything durable and closes the database, reporting errors that dropping the
    /// backend would ignore.
    ///
    /// If a transaction obtained from this backend is committing at this moment, the file is
    /// closed when that commit ends; transactions committed afterwards fail with
    /// [`StorageError::Closed`].
    pub fn close(self) -> Result<(), StorageError> {
        let flushed = self.flush();
        let shared = Arc::clone(&self.shared);
        drop(self);
        if let Some(shared) = Arc::into_inner(shared) {
            shared.db.close()?;
        }
        flushed
    }
}

impl Drop for RedbBackend {
    fn drop(&mut self) {
        if let Some(group) = &self.shared.group {
            group.shutdown();
        }
        if let Some(handle) = self.committer.take() {
            // The committer only panics if a lock or redb panics; the database stays
            // consistent either way, so there is nothing more to do with the result here.
            let _ = handle.join();
        }
    }
}

impl fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbBackend")
            .field("limits", &self.shared.limits)
            .field("durability", &self.shared.durability)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl StorageBackend for RedbBackend {
    async fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        RedbBackend::get(self, namespace, key)
    }

    async fn set(&self, namespace: &str, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        RedbBackend::set(self, namespace, key, value)
    }

    async fn delete(&self, namespace: &str, key: &[u8]) -> Result<(), StorageError> {
        RedbBackend::delete(self, namespace, key)
    }

    async fn list_keys(&self, namespace: &str, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StorageError> {
        RedbBackend::list_keys(self, namespace, prefix)
    }

    async fn begin_transaction(&self) -> Result<Box<dyn StorageTransaction>, StorageError> {
        Ok(Box::new(self.transaction()))
    }
}

impl Shared {
    /// Runs `f` on a snapshot of the data table.
    pub(crate) fn read<R>(
        &self,
        f: impl FnOnce(&redb::ReadOnlyTable<&'static [u8], &'static [u8]>) -> Result<R, StorageError>,
    ) -> Result<R, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(DATA_TABLE)?;
        f(&table)
    }

    /// Runs `f` in one redb write transaction, then checks quotas, stores usage and commits;
    /// returns once the commit is durable.
    ///
    /// If `f` or the quota check fails, the transaction is aborted: nothing is written. If `f`
    /// changed nothing, nothing is committed (no fsync), but the call still waits until what
    /// it observed is durable.
    pub(crate) fn write<R>(
        &self,
        f: impl FnOnce(&mut WriteScope<'_, '_>) -> Result<R, StorageError>,
    ) -> Result<R, StorageError> {
        let mut txn = self.db.begin_write()?;
        if self.group.is_some() {
            txn.set_durability(Durability::None)?;
        }
        let (result, changed) = match self.apply(&txn, f) {
            Ok(done) => done,
            Err(err) => {
                // The original error says what went wrong; an abort failure adds nothing the
                // caller can act on, and redb reports it again on the next write.
                let _ = txn.abort();
                return Err(err);
            }
        };
        let seq = match (&self.group, changed) {
            (Some(group), true) => Some(group.commit_and_record(|| txn.commit())?),
            (Some(group), false) => {
                txn.abort()?;
                Some(group.last_seq())
            }
            (None, true) => {
                txn.commit()?;
                None
            }
            (None, false) => {
                txn.abort()?;
                None
            }
        };
        if let (Some(group), Some(seq)) = (&self.group, seq) {
            group.wait_durable(seq, || self.sync_commit())?;
        }
        Ok(result)
    }

    /// The part of [`write`](Self::write) that borrows the transaction's tables.
    fn apply<R>(
        &self,
        txn: &WriteTransaction,
        f: impl FnOnce(&mut WriteScope<'_, '_>) -> Result<R, StorageError>,
    ) -> Result<(R, bool), StorageError> {
        let mut data = txn.open_table(DATA_TABLE)?;
        let mut usage = txn.open_table(USAGE_TABLE)?;
        let mut scope = WriteScope {
            data: &mut data,
            usage: &usage,
            limits: self.limits,
            ledger: UsageLedger::default(),
            changed: false,
        };
        let result = f(&mut scope)?;
        let WriteScope { ledger, changed, .. } = scope;
        ledger.check(&self.quotas.read())?;
        ledger.store(&mut usage)?;
        Ok((result, changed))
    }

    /// Runs the operations of a transaction, in order, atomically; see
    /// [`RedbTransaction::commit_with_results`].
    pub(crate) fn run(&self, ops: &[StorageOperation]) -> Result<Vec<OperationResult>, StorageError> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let reads: Vec<ReadOp<'_>> = ops.iter().filter_map(ReadOp::of).collect();
        if reads.len() == ops.len() {
            // Reads only: one snapshot gives the same isolation without taking the write lock.
            self.read(|table| reads.into_iter().map(|op| read_op(table, self.limits, op)).collect())
        } else {
            self.write(|scope| ops.iter().map(|op| scope.apply(op)).collect())
        }
    }

    /// One durable commit that persists every earlier non-durable commit (group-commit mode).
    fn sync_commit(&self) -> Result<(), StorageError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut meta = txn.open_table(META_TABLE)?;
            let epoch = meta.get(GROUP_EPOCH_KEY)?.map(|g| g.value()).unwrap_or(0);
            meta.insert(GROUP_EPOCH_KEY, epoch.wrapping_add(1))?;
        }
        txn.commit()?;
        Ok(())
    }
}

/// The open tables of one write transaction, and the operations run inside it.
pub(crate) struct WriteScope<'s, 'txn> {
    data: &'s mut redb::Table<'txn, &'static [u8], &'static [u8]>,
    usage: &'s redb::Table<'txn, &'static str, (u64, u64)>,
    limits: Limits,
    ledger: UsageLedger,
    changed: bool,
}

impl WriteScope<'_, '_> {
    /// Runs one operation of a transaction.
    fn apply(&mut self, op: &StorageOperation) -> Result<OperationResult, StorageError> {
        match op {
            StorageOperation::Set { namespace, key, value } => self.set(namespace, key, value),
            StorageOperation::Delete { namespace, key } => self.delete(namespace, key),
            StorageOperation::Get { namespace, key } => {
                read_op(&*self.data, self.limits, ReadOp::Get { namespace, key })
            }
            StorageOperation::List { namespace, prefix } => {
                read_op(&*self.data, self.limits, ReadOp::List { namespace, prefix })
            }
        }
    }

    fn set(&mut self, namespace: &str, key: &[u8], value: &[u8]) -> Result<OperationResult, StorageError> {
        self.limits.check_entry(namespace, key, value)?;
        let stored = keys::encode(namespace, key)?;
        let old_len = self.data.insert(stored.as_slice(), value)?.map(|old| old.value().len());
        self.ledger.record(self.usage, namespace, key.len(), old_len, Some(value.len()))?;
        self.changed = true;
        Ok(OperationResult::Set)
    }

    fn delete(&mut self, namespace: &str, key: &[u8]) -> Result<OperationResult, StorageError> {
        self.limits.check_key(namespace, key)?;
        let stored = keys::encode(namespace, key)?;
        let old_len = self.data.remove(stored.as_slice())?.map(|old| old.value().len());
        if old_len.is_some() {
            self.ledger.record(self.usage, namespace, key.len(), old_len, None)?;
            self.changed = true;
        }
        Ok(OperationResult::Delete)
    }
}

/// A `Get` or `List` operation, borrowed from a [`StorageOperation`].
#[derive(Clone, Copy)]
enum ReadOp<'a> {
    Get { namespace: &'a str, key: &'a [u8] },
    List { namespace: &'a str, prefix: &'a [u8] },
}

impl<'a> ReadOp<'a> {
    /// The read operation `op` is, or `None` for a write.
    fn of(op: &'a StorageOperation) -> Option<Self> {
        match op {
            StorageOperation::Get { namespace, key } => Some(ReadOp::Get { namespace, key }),
            StorageOperation::List { namespace, prefix } => Some(ReadOp::List { namespace, prefix }),
            StorageOperation::Set { .. } | StorageOperation::Delete { .. } => None,
        }
    }
}

/// Runs a read operation on any view of the data table.
fn read_op(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    limits: Limits,
    op: ReadOp<'_>,
) -> Result<OperationResult, StorageError> {
    match op {
        ReadOp::Get { namespace, key } => {
            limits.check_key(namespace, key)?;
            get_in(table, namespace, key).map(OperationResult::Get)
        }
        ReadOp::List { namespace, prefix } => {
            Limits::check_namespace(namespace)?;
            list_in(table, namespace, prefix).map(OperationResult::List)
        }
    }
}

/// `get` on any view of the data table (a read snapshot or the open write transaction).
fn get_in(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    namespace: &str,
    key: &[u8],
) -> Result<Option<Vec<u8>>, StorageError> {
    let stored = keys::encode(namespace, key)?;
    Ok(table.get(stored.as_slice())?.map(|v| v.value().to_vec()))
}

/// `list_keys` on any view of the data table: a range scan from `[len][namespace][prefix]`
/// that stops at the first key without that prefix.
fn list_in(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    namespace: &str,
    prefix: &[u8],
) -> Result<Vec<Vec<u8>>, StorageError> {
    let start = keys::encode(namespace, prefix)?;
    let header_len = 2 + namespace.len();
    let mut out = Vec::new();
    for entry in table.range::<&[u8]>(start.as_slice()..)? {
        let (stored, _) = entry?;
        let stored = stored.value();
        if !stored.starts_with(&start) {
            break;
        }
        out.push(keys::user_key(stored, header_len));
    }
    Ok(out)
}
