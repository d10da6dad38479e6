//! How a `(namespace, key)` pair becomes one redb key, and the input limits checked before it
//! is built.
//!
//! All namespaces share one redb table. Each stored key is
//!
//! ```text
//! [namespace length: u16, big-endian][namespace bytes][key bytes]
//! ```
//!
//! The encoding is injective: the length header says exactly where the namespace ends, so no
//! choice of namespace and key (with `:`, `/`, NUL or any other bytes) can produce the stored key
//! of another pair. All keys of one namespace share the prefix `[len][namespace]`, and redb orders
//! `&[u8]` keys bytewise, so a namespace is one contiguous key range sorted by user key, and a
//! prefix listing is a range scan starting at `[len][namespace][prefix]`.

use crate::storage::error::StorageError;

/// The longest namespace accepted, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 1024;

// The length header is a u16, so the maximum must fit in it.
const _: () = assert!(MAX_NAMESPACE_LEN <= u16::MAX as usize);

/// The configured maximum key and value sizes, copied into each transaction so that
/// `add_operation` can reject bad input without reaching the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_key_size: usize,
    pub(crate) max_value_size: usize,
}

impl Limits {
    /// Checks a namespace (non-empty, at most [`MAX_NAMESPACE_LEN`] bytes).
    pub(crate) fn check_namespace(namespace: &str) -> Result<(), StorageError> {
        if namespace.is_empty() {
            return Err(StorageError::InvalidNamespace { len: 0, reason: "namespace is empty" });
        }
        if namespace.len() > MAX_NAMESPACE_LEN {
            return Err(StorageError::InvalidNamespace {
                len: namespace.len(),
                reason: "namespace is longer than MAX_NAMESPACE_LEN bytes",
            });
        }
        Ok(())
    }

    /// Checks a namespace and a key.
    pub(crate) fn check_key(&self, namespace: &str, key: &[u8]) -> Result<(), StorageError> {
        Self::check_namespace(namespace)?;
        if key.len() > self.max_key_size {
            return Err(StorageError::KeyTooLarge { len: key.len(), max: self.max_key_size });
        }
        Ok(())
    }

    /// Checks a namespace, a key and a value.
    pub(crate) fn check_entry(&self, namespace: &str, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.check_key(namespace, key)?;
        if value.len() > self.max_value_size {
            return Err(StorageError::ValueTooLarge { len: value.len(), max: self.max_value_size });
        }
        Ok(())
    }
}

/// Builds the stored key of `(namespace, key)`. The namespace must have passed
/// [`Limits::check_namespace`]; a longer one would be a bug, and is reported as invalid rather
/// than truncated.
pub(crate) fn encode(namespace: &str, key: &[u8]) -> Result<Vec<u8>, StorageError> {
    let len = u16::try_from(namespace.len()).map_err(|_| StorageError::InvalidNamespace {
        len: namespace.len(),
        reason: "namespace is longer than MAX_NAMESPACE_LEN bytes",
    })?;
    let mut out = Vec::with_capacity(2 + namespace.len() + key.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(namespace.as_bytes());
    out.extend_from_slice(key);
    Ok(out)
}

/// The user key of a stored key whose namespace header is `header_len` bytes long
/// (`2 + namespace.len()`).
pub(crate) fn user_key(stored: &[u8], header_len: usize) -> Vec<u8> {
    stored.get(header_len..).unwrap_or_default().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_separates_namespace_from_key_even_with_colons() {
        let a = encode("a:b", b"c").expect("valid namespace");
        let b = encode("a", b"b:c").expect("valid namespace");
        assert_ne!(a, b);
        assert_eq!(user_key(&a, 2 + 3), b"c".to_vec());
        assert_eq!(user_key(&b, 2 + 1), b"b:c".to_vec());
    }

    #[test]
    fn namespace_prefix_of_another_does_not_share_its_range() {
        // "ab" with key "" must not start with the prefix of namespace "a".
        let ns_a = encode("a", b"").expect("valid namespace");
        let ns_ab = encode("ab", b"").expect("valid namespace");
        assert!(!ns_ab.starts_with(&ns_a));
    }

    #[test]
    fn empty_and_oversized_namespaces_are_rejected() {
        assert!(Limits::check_namespace("").is_err());
        assert!(Limits::check_namespace(&"x".repeat(MAX_NAMESPACE_LEN)).is_ok());
        assert!(Limits::check_namespace(&"x".repeat(MAX_NAMESPACE_LEN + 1)).is_err());
    }
}
