//! The storage contract: [`StorageBackend`], [`StorageOperation`] and [`StorageTransaction`].
//!
//! These are backend-independent. [`RedbBackend`](crate::storage::RedbBackend) is the
//! implementation shipped with the crate; the trait exists so that hosts and tests can hold an
//! `Arc<dyn StorageBackend>` without naming it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::storage::error::StorageError;

/// A namespaced key-value store shared by all components.
///
/// Every method takes a `namespace` (a component's identity); keys of one namespace are never
/// visible through another, whatever bytes the namespace or key contain. Namespaces are
/// non-empty strings of at most [`MAX_NAMESPACE_LEN`](crate::storage::MAX_NAMESPACE_LEN)
/// bytes; keys and values are arbitrary bytes within the backend's size limits.
///
/// # What a failure leaves behind
///
/// A write method that returns an error other than
/// [`StorageError::NotDurable`] has changed nothing. Each write is atomic on its own; use
/// [`begin_transaction`](Self::begin_transaction) to make several writes atomic together.
///
/// # Blocking
///
/// The methods are `async` so that the trait can be backed by remote stores, but
/// [`RedbBackend`](crate::storage::RedbBackend)'s futures do their work on the first poll
/// (including the fsync), without ever returning `Pending`. Plain threads call them through
/// [`block_on`](crate::storage::block_on), or call `RedbBackend`'s inherent methods of the
/// same names directly.
///
/// ```
/// use std::sync::Arc;
/// use switchyard::{block_on, RedbBackend, StorageBackend};
///
/// let store: Arc<dyn StorageBackend> = Arc::new(RedbBackend::in_memory()?);
/// block_on(store.set("component:a", b"config", b"v1"))?;
/// assert_eq!(block_on(store.get("component:a", b"config"))?, Some(b"v1".to_vec()));
/// assert_eq!(block_on(store.get("component:b", b"config"))?, None);
/// # Ok::<(), switchyard::StorageError>(())
/// ```
///
/// # Implementing a backend
///
/// The trait is written with [`async_trait`](crate::async_trait), which switchyard
/// re-exports so an implementation needs no dependency of its own. A minimal in-memory
/// backend (no transactions):
///
/// ```
/// use std::collections::BTreeMap;
/// use std::sync::Mutex;
/// use switchyard::{async_trait, block_on, StorageBackend, StorageError, StorageTransaction};
///
/// #[derive(Default)]
/// struct MemoryBackend {
///     data: Mutex<BTreeMap<(String, Vec<u8>), Vec<u8>>>,
/// }
///
/// #[async_trait]
/// impl StorageBackend for MemoryBackend {
///     async fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
///         Ok(self.data.lock().unwrap().get(&(namespace.to_string(), key.to_vec())).cloned())
///     }
///
///     async fn set(&self, namespace: &str, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
///         self.data.lock().unwrap().insert((namespace.to_string(), key.to_vec()), value.to_vec());
///         Ok(())
///     }
///
///     async fn delete(&self, namespace: &str, key: &[u8]) -> Result<(), StorageError> {
///         self.data.lock().unwrap().remove(&(namespace.to_string(), key.to_vec()));
///         Ok(())
///     }
///
///     async fn list_keys(&self, namespace: &str, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StorageError> {
///         let data = self.data.lock().unwrap();
///         Ok(data
///             .keys()
///             .filter(|(ns, key)| ns == namespace && key.starts_with(prefix))
///             .map(|(_, key)| key.clone())
///             .collect())
///     }
///
///     async fn begin_transaction(&self) -> Result<Box<dyn StorageTransaction>, StorageError> {
///         Err(StorageError::Unsupported("transactions"))
///     }
/// }
///
/// let store = MemoryBackend::default();
/// block_on(store.set("a", b"k", b"v"))?;
/// assert_eq!(block_on(store.list_keys("a", b""))?, vec![b"k".to_vec()]);
/// assert_eq!(block_on(store.get("b", b"k"))?, None);
/// # Ok::<(), StorageError>(())
/// ```
#[async_trait]
pub trait StorageBackend: Send + Sync {
    /// Reads the value of `key` in `namespace`.
    ///
    /// Returns `Ok(Some(value))` if the key exists and `Ok(None)` if it does not; `Err` on an
    /// invalid namespace or an I/O error.
    async fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Stores `value` under `key` in `namespace`, creating the key or overwriting its value.
    ///
    /// Returns `Ok(())` once the write is durable. Fails, writing nothing, with
    /// [`StorageError::KeyTooLarge`], [`StorageError::ValueTooLarge`],
    /// [`StorageError::QuotaExceeded`] or an I/O error.
    async fn set(&self, namespace: &str, key: &[u8], value: &[u8]) -> Result<(), StorageError>;

    /// Removes `key` from `namespace`.
    ///
    /// Deleting a key that does not exist is not an error and writes nothing. Returns `Ok(())`
    /// once the deletion is durable; `Err` on an invalid namespace or key, or an I/O error.
    async fn delete(&self, namespace: &str, key: &[u8]) -> Result<(), StorageError>;

    /// Lists the keys of `namespace` that start with `prefix`, without the namespace, sorted
    /// bytewise.
    ///
    /// An empty prefix lists the whole namespace. Returns `Ok(vec![])` when nothing matches.
    /// The listing is one consistent snapshot.
    async fn list_keys(&self, namespace: &str, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StorageError>;

    /// Starts a transaction: operations added to it run atomically when it commits.
    ///
    /// Fails if the backend is closed, or with [`StorageError::Unsupported`] if it does not
    /// support transactions.
    async fn begin_transaction(&self) -> Result<Box<dyn StorageTransaction>, StorageError>;
}

/// One storage operation, as data: what a transaction batches and what an audit log records.
///
/// ```
/// use switchyard::StorageOperation;
///
/// let op = StorageOperation::Set {
///     namespace: "component:a".into(),
///     key: b"k".to_vec(),
///     value: b"v".to_vec(),
/// };
/// assert_eq!(op.namespace(), "component:a");
/// assert_eq!(op.operation_type(), "set");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StorageOperation {
    /// Read `key` of `namespace`.
    Get {
        /// Namespace to read from.
        namespace: String,
        /// Key to read.
        key: Vec<u8>,
    },
    /// Store `value` under `key` of `namespace`.
    Set {
        /// Namespace to write to.
        namespace: String,
        /// Key to write.
        key: Vec<u8>,
        /// Value to store.
        value: Vec<u8>,
    },
    /// Remove `key` from `namespace` (no-op if absent).
    Delete {
        /// Namespace to delete from.
        namespace: String,
        /// Key to delete.
        key: Vec<u8>,
    },
    /// List the keys of `namespace` starting with `prefix`.
    List {
        /// Namespace to list.
        namespace: String,
        /// Prefix the listed keys start with (empty: all keys).
        prefix: Vec<u8>,
    },
}

impl StorageOperation {
    /// The namespace the operation applies to.
    pub fn namespace(&self) -> &str {
        match self {
            StorageOperation::Get { namespace, .. }
            | StorageOperation::Set { namespace, .. }
            | StorageOperation::Delete { namespace, .. }
            | StorageOperation::List { namespace, .. } => namespace,
        }
    }

    /// `"get"`, `"set"`, `"delete"` or `"list"`.
    pub fn operation_type(&self) -> &'static str {
        match self {
            StorageOperation::Get { .. } => "get",
            StorageOperation::Set { .. } => "set",
            StorageOperation::Delete { .. } => "delete",
            StorageOperation::List { .. } => "list",
        }
    }
}

/// A batch of operations that commits atomically: all of them or none.
///
/// Operations are only recorded by [`add_operation`](Self::add_operation); nothing runs, and no
/// lock is held, until [`commit`](Self::commit). `commit` then runs them in the order added,
/// inside one write transaction of the backend, so each operation sees the effects of the ones
/// before it and no reader sees part of the batch. `Get` and `List` operations read inside that
/// transaction; the trait's `commit` discards what they read, and
/// [`RedbTransaction::commit_with_results`](crate::storage::RedbTransaction::commit_with_results)
/// returns it.
///
/// # What a failure leaves behind
///
/// If `commit` fails (invalid input, quota, I/O) nothing of the batch is written, except with
/// [`StorageError::NotDurable`], where the batch was committed as a whole but not made durable.
/// [`rollback`](Self::rollback), or dropping the transaction without committing, discards the
/// batch and writes nothing.
///
/// `commit` and `rollback` take `Box<Self>` so that a finished transaction cannot be reused.
///
/// ```
/// use switchyard::{block_on, RedbBackend, StorageBackend, StorageOperation};
///
/// let store = RedbBackend::in_memory()?;
/// let mut tx = block_on(StorageBackend::begin_transaction(&store))?;
/// for key in [b"a", b"b"] {
///     let op = StorageOperation::Set {
///         namespace: "ns".into(),
///         key: key.to_vec(),
///         value: b"1".to_vec(),
///     };
///     block_on(tx.add_operation(op))?;
/// }
/// block_on(tx.commit())?;
/// assert_eq!(store.list_keys("ns", b"")?, vec![b"a".to_vec(), b"b".to_vec()]);
/// # Ok::<(), switchyard::StorageError>(())
/// ```
#[async_trait]
pub trait StorageTransaction: Send + Sync {
    /// Records `op` to run at commit; does not execute it.
    ///
    /// Fails, recording nothing, if the operation is invalid (namespace, key or value size).
    async fn add_operation(&mut self, op: StorageOperation) -> Result<(), StorageError>;

    /// Runs all recorded operations atomically and makes them durable.
    ///
    /// Returns `Ok(())` if every operation succeeded; otherwise the error of the first that
    /// failed, and nothing is written.
    async fn commit(self: Box<Self>) -> Result<(), StorageError>;

    /// Discards all recorded operations. Always returns `Ok(())`.
    async fn rollback(self: Box<Self>) -> Result<(), StorageError>;
}
