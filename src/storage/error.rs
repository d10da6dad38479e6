//! The one error type of the storage module, and how redb's errors map onto it.
//!
//! Every fallible storage call returns [`StorageError`]. Input errors (namespace, sizes, quota)
//! are detected before anything is written, so they always leave the store unchanged. Errors that
//! come from redb keep the original redb error as their [`source`](std::error::Error::source).

use std::fmt;
use std::sync::Arc;

/// Which part of a namespace's quota a write would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaResource {
    /// The sum of key and value lengths stored in the namespace.
    Bytes,
    /// The number of keys stored in the namespace.
    Keys,
}

impl fmt::Display for QuotaResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuotaResource::Bytes => f.write_str("bytes"),
            QuotaResource::Keys => f.write_str("keys"),
        }
    }
}

/// Everything a storage operation can fail with.
///
/// The variants say what happened and what the failure left behind:
///
/// - [`InvalidNamespace`](Self::InvalidNamespace), [`KeyTooLarge`](Self::KeyTooLarge),
///   [`ValueTooLarge`](Self::ValueTooLarge) and [`QuotaExceeded`](Self::QuotaExceeded) are
///   detected before the write commits: nothing of the call (or of the whole transaction) was
///   written.
/// - [`NotDurable`](Self::NotDurable) (group-commit mode only) means the write *did* commit and
///   is visible to readers, but the fsync of its batch failed, so it may be lost in a crash.
/// - [`Io`](Self::Io), [`Corruption`](Self::Corruption) and [`Backend`](Self::Backend) come from
///   redb. A write that fails with them was not acknowledged; redb applies a commit fully or not
///   at all, but after a failed commit it may refuse further writes until the store is reopened.
/// - [`Closed`](Self::Closed): the backend was closed; nothing was done.
///
/// The enum is `Clone` (redb sources are shared behind an [`Arc`]) so that one failed group
/// commit can be reported to every caller in the batch.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StorageError {
    /// The namespace is empty or longer than [`MAX_NAMESPACE_LEN`](crate::storage::MAX_NAMESPACE_LEN).
    InvalidNamespace {
        /// Length of the rejected namespace in bytes.
        len: usize,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A key is longer than the backend's configured maximum.
    KeyTooLarge {
        /// Length of the rejected key.
        len: usize,
        /// Configured maximum key length.
        max: usize,
    },
    /// A value is longer than the backend's configured maximum.
    ValueTooLarge {
        /// Length of the rejected value.
        len: usize,
        /// Configured maximum value length.
        max: usize,
    },
    /// The write would take a namespace over its quota; nothing was written.
    QuotaExceeded {
        /// The namespace whose quota would be exceeded.
        namespace: String,
        /// Which limit would be exceeded.
        resource: QuotaResource,
        /// The configured limit.
        limit: u64,
        /// The usage the write would have produced.
        requested: u64,
    },
    /// The backend was closed (or dropped) before the operation could run.
    Closed,
    /// The database file is already opened by another `RedbBackend` or process.
    AlreadyOpen(Arc<redb::Error>),
    /// An I/O error from the file (or a previous I/O error that redb remembers until reopen).
    Io(Arc<redb::Error>),
    /// redb found the file corrupted or in a format it cannot read.
    Corruption(Arc<redb::Error>),
    /// The write committed and is visible, but the fsync of its group-commit batch failed: it
    /// may be lost in a crash. Carries the error of the failed fsync commit.
    NotDurable(Box<StorageError>),
    /// Any other redb error (kept as the source).
    Backend(Arc<redb::Error>),
    /// The backend does not offer this operation (a custom backend without transactions,
    /// say); nothing was done. The text names the operation.
    Unsupported(&'static str),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::InvalidNamespace { len, reason } => {
                write!(f, "invalid namespace of {len} bytes: {reason}")
            }
            StorageError::KeyTooLarge { len, max } => {
                write!(f, "key of {len} bytes exceeds the maximum of {max} bytes")
            }
            StorageError::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes exceeds the maximum of {max} bytes")
            }
            StorageError::QuotaExceeded { namespace, resource, limit, requested } => {
                write!(f, "namespace {namespace:?} would use {requested} {resource}, over its quota of {limit}")
            }
            StorageError::Closed => f.write_str("storage backend is closed"),
            StorageError::AlreadyOpen(_) => f.write_str("database is already open elsewhere"),
            StorageError::Io(_) => f.write_str("storage I/O error"),
            StorageError::Corruption(_) => f.write_str("storage is corrupted"),
            StorageError::NotDurable(_) => {
                f.write_str("write committed but its group commit could not be made durable")
            }
            StorageError::Backend(_) => f.write_str("storage backend error"),
            StorageError::Unsupported(what) => write!(f, "the storage backend does not support {what}"),
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::AlreadyOpen(e)
            | StorageError::Io(e)
            | StorageError::Corruption(e)
            | StorageError::Backend(e) => Some(&**e),
            StorageError::NotDurable(e) => Some(&**e),
            _ => None,
        }
    }
}

impl From<redb::Error> for StorageError {
    fn from(err: redb::Error) -> Self {
        match err {
            redb::Error::DatabaseClosed => StorageError::Closed,
            redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => {
                StorageError::AlreadyOpen(Arc::new(err))
            }
            redb::Error::Io(_) | redb::Error::PreviousIo => StorageError::Io(Arc::new(err)),
            redb::Error::Corrupted(_) | redb::Error::UpgradeRequired(_) => StorageError::Corruption(Arc::new(err)),
            other => StorageError::Backend(Arc::new(other)),
        }
    }
}

/// Implements `From<$redb_error>` through redb's own conversion into [`redb::Error`], so the
/// classification above is written once.
macro_rules! from_redb_error {
    ($($ty:ty),* $(,)?) => {
        $(
            impl From<$ty> for StorageError {
                fn from(err: $ty) -> Self {
                    StorageError::from(redb::Error::from(err))
                }
            }
        )*
    };
}

from_redb_error!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError,
    redb::SetDurabilityError,
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn redb_errors_map_to_what_happened_and_keep_their_source() {
        let io = StorageError::from(redb::StorageError::Io(std::io::Error::other("disk")));
        assert!(matches!(io, StorageError::Io(_)));
        assert!(io.source().is_some());

        let corrupt = StorageError::from(redb::StorageError::Corrupted("bad page".into()));
        assert!(matches!(corrupt, StorageError::Corruption(_)));

        let closed = StorageError::from(redb::StorageError::DatabaseClosed);
        assert!(matches!(closed, StorageError::Closed));

        let open = StorageError::from(redb::DatabaseError::DatabaseAlreadyOpen);
        assert!(matches!(open, StorageError::AlreadyOpen(_)));
    }

    #[test]
    fn not_durable_names_the_failed_fsync_as_source() {
        let inner = StorageError::from(redb::StorageError::Io(std::io::Error::other("fsync")));
        let err = StorageError::NotDurable(Box::new(inner));
        let source = err.source().map(|s| s.to_string());
        assert_eq!(source.as_deref(), Some("storage I/O error"));
    }
}
