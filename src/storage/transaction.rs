//! [`RedbTransaction`]: the [`StorageTransaction`] of [`RedbBackend`](crate::storage::RedbBackend).
//!
//! A transaction is a list of [`StorageOperation`]s. Adding one only validates and records it;
//! no redb transaction is open and no lock is held until commit, so a transaction that is kept
//! open for a long time does not block other writers, and dropping it needs no cleanup.

use std::sync::Weak;

use async_trait::async_trait;

use crate::storage::backend::{StorageOperation, StorageTransaction};
use crate::storage::error::StorageError;
use crate::storage::keys::Limits;
use crate::storage::redb::Shared;

/// What one operation of a committed transaction produced, in the order the operations were
/// added.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OperationResult {
    /// A `Get`: the value at that point of the transaction (`None` if absent), including the
    /// effect of earlier operations of the same transaction.
    Get(Option<Vec<u8>>),
    /// A `Set` was applied.
    Set,
    /// A `Delete` was applied (or the key was already absent).
    Delete,
    /// A `List`: the matching keys at that point of the transaction, sorted.
    List(Vec<Vec<u8>>),
}

/// A batch of operations on a [`RedbBackend`](crate::storage::RedbBackend) that commits
/// atomically.
///
/// Commit runs the operations in order inside one redb write transaction: every operation
/// sees the effects of the ones before it, no reader sees part of the batch, and the batch is
/// serialized with all other writes (redb has a single writer). Usage and quotas are checked on
/// the final state of each namespace the batch touched. A batch of only `Get` and `List`
/// operations runs on one read snapshot instead, with the same isolation.
///
/// # What a failure leaves behind
///
/// A failed commit writes nothing (except [`StorageError::NotDurable`]: committed as a whole,
/// not yet durable). [`rollback`](Self::rollback) and dropping without commit write nothing.
/// The transaction holds only a weak reference to the backend: once the backend is dropped,
/// commit fails with [`StorageError::Closed`].
///
/// ```
/// use switchyard::{OperationResult, RedbBackend, StorageOperation};
///
/// let store = RedbBackend::in_memory()?;
/// store.set("ns", b"balance", b"10")?;
///
/// let mut tx = store.transaction();
/// tx.add_operation(StorageOperation::Get { namespace: "ns".into(), key: b"balance".to_vec() })?;
/// tx.add_operation(StorageOperation::Set {
///     namespace: "ns".into(),
///     key: b"balance".to_vec(),
///     value: b"7".to_vec(),
/// })?;
/// tx.add_operation(StorageOperation::Get { namespace: "ns".into(), key: b"balance".to_vec() })?;
/// let results = tx.commit_with_results()?;
/// assert_eq!(results[0], OperationResult::Get(Some(b"10".to_vec())));
/// assert_eq!(results[2], OperationResult::Get(Some(b"7".to_vec())));
/// # Ok::<(), switchyard::StorageError>(())
/// ```
#[derive(Debug)]
pub struct RedbTransaction {
    shared: Weak<Shared>,
    limits: Limits,
    ops: Vec<StorageOperation>,
}

impl RedbTransaction {
    pub(crate) fn new(shared: Weak<Shared>, limits: Limits) -> Self {
        RedbTransaction { shared, limits, ops: Vec::new() }
    }

    /// Validates `op` (namespace, key and value sizes) and records it to run at commit.
    ///
    /// On error nothing is recorded and the transaction stays usable.
    pub fn add_operation(&mut self, op: StorageOperation) -> Result<(), StorageError> {
        match &op {
            StorageOperation::Get { namespace, key } | StorageOperation::Delete { namespace, key } => {
                self.limits.check_key(namespace, key)?
            }
            StorageOperation::Set { namespace, key, value } => self.limits.check_entry(namespace, key, value)?,
            StorageOperation::List { namespace, .. } => Limits::check_namespace(namespace)?,
        }
        self.ops.push(op);
        Ok(())
    }

    /// The operations recorded so far, in order.
    pub fn operations(&self) -> &[StorageOperation] {
        &self.ops
    }

    /// Commits atomically and returns what each operation produced, in order; blocks until
    /// the batch is durable.
    ///
    /// Fails with the error of the first failing operation, or
    /// [`StorageError::QuotaExceeded`], or an I/O error; nothing is then written.
    pub fn commit_with_results(self) -> Result<Vec<OperationResult>, StorageError> {
        let shared = self.shared.upgrade().ok_or(StorageError::Closed)?;
        shared.run(&self.ops)
    }

    /// Commits atomically, discarding the results of `Get` and `List` operations.
    pub fn commit(self) -> Result<(), StorageError> {
        self.commit_with_results().map(drop)
    }

    /// Discards the recorded operations; nothing was written, so this cannot fail.
    pub fn rollback(self) {
        drop(self);
    }
}

#[async_trait]
impl StorageTransaction for RedbTransaction {
    async fn add_operation(&mut self, op: StorageOperation) -> Result<(), StorageError> {
        RedbTransaction::add_operation(self, op)
    }

    async fn commit(self: Box<Self>) -> Result<(), StorageError> {
        RedbTransaction::commit(*self)
    }

    async fn rollback(self: Box<Self>) -> Result<(), StorageError> {
        RedbTransaction::rollback(*self);
        Ok(())
    }
}
