//! Component storage: a namespaced key-value store with atomic transactions, quotas and
//! crash-safe durability, on an embedded redb database.
//!
//! # The pieces
//!
//! - [`StorageBackend`], [`StorageOperation`], [`StorageTransaction`]: the backend-independent
//!   contract (async, object-safe, so hosts hold an `Arc<dyn StorageBackend>`).
//! - [`RedbBackend`]: the implementation, opened on a file ([`RedbBackend::open`], the
//!   default for hosts) or in memory ([`RedbBackend::in_memory`]), configured through
//!   [`StorageConfig`] (size limits, [`DurabilityMode`], quotas).
//! - [`RedbTransaction`]: its transaction, which also returns what its reads saw
//!   ([`RedbTransaction::commit_with_results`]).
//! - [`block_on`]: drives any storage future from a plain worker thread, without a runtime.
//! - [`StorageError`]: the one error type, saying what happened and what was left behind.
//!
//! # Namespaces
//!
//! Each component gets a namespace (a string, for example its id). No namespace can read or
//! overwrite another's keys, whatever bytes either contains: the stored key is
//! `[u16 namespace length][namespace][key]`, not a `"component:<id>:"` string prefix, which
//! would let namespace `"a:b"` with key `"c"` collide with namespace `"a"` and key `"b:c"`.
//!
//! # Guarantees
//!
//! - A write call or transaction commit that returns `Ok` is durable.
//! - A transaction is applied entirely or not at all, and never observed half-applied.
//! - A write that fails on input, size or quota leaves nothing behind.
//! - Per-namespace usage ([`RedbBackend::usage`]) is exact, kept in the same redb transaction
//!   as the data.
//!
//! # Example
//!
//! ```
//! use switchyard::{RedbBackend, StorageError, StorageOperation, StorageQuota};
//!
//! let store = RedbBackend::builder()
//!     .quota("component:a", StorageQuota::new(64, 4))
//!     .in_memory()?;
//!
//! // Two keys, atomically.
//! let mut tx = store.transaction();
//! for key in [&b"x"[..], b"y"] {
//!     tx.add_operation(StorageOperation::Set {
//!         namespace: "component:a".into(),
//!         key: key.to_vec(),
//!         value: vec![0; 8],
//!     })?;
//! }
//! tx.commit()?;
//! assert_eq!(store.list_keys("component:a", b"")?, vec![b"x".to_vec(), b"y".to_vec()]);
//!
//! // Over quota: refused, nothing written.
//! let err = store.set("component:a", b"big", &[0; 60]).unwrap_err();
//! assert!(matches!(err, StorageError::QuotaExceeded { .. }));
//! assert_eq!(store.usage("component:a")?.key_count, 2);
//! # Ok::<(), StorageError>(())
//! ```

mod backend;
mod block_on;
mod config;
mod error;
mod group_commit;
mod keys;
mod quota;
mod redb;
mod transaction;

pub use self::backend::{StorageBackend, StorageOperation, StorageTransaction};
pub use self::block_on::block_on;
pub use self::config::{DEFAULT_MAX_KEY_SIZE, DEFAULT_MAX_VALUE_SIZE, DurabilityMode, StorageConfig};
pub use self::error::{QuotaResource, StorageError};
pub use self::keys::MAX_NAMESPACE_LEN;
pub use self::quota::{StorageQuota, StorageUsage};
pub use self::redb::RedbBackend;
pub use self::transaction::{OperationResult, RedbTransaction};
