//! `ComponentId`: the address of a component.
//!
//! An id is validated once, when it is made, and then costs one reference-count increment
//! to clone and one `u64` write to hash: the hash of the name is computed at construction
//! and stored beside it, so routing a message never rehashes the name.

use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
// `ComponentId` is a value type, not a synchronization primitive: it uses std's `Arc`
// directly so it stays `Arc<str>` (unsized) under loom too.
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// The address of a component: a short name such as `"orders"` or `"payments/ledger-2"`.
///
/// Allowed: 1 to [`MAX_ID_LEN`] bytes of ASCII letters, digits and `- _ . : / @`.
/// Cloning is an `Arc` increment; hashing writes one precomputed `u64`.
///
/// ```
/// use switchyard::ComponentId;
///
/// let id = ComponentId::new("payments/ledger-2")?;
/// assert_eq!(id.as_str(), "payments/ledger-2");
/// assert!(ComponentId::new("").is_err());
/// assert!(ComponentId::new("has space").is_err());
/// # Ok::<(), switchyard::IdError>(())
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ComponentId {
    hash: u64,
    name: Arc<str>,
}

/// Why a string is not a valid [`ComponentId`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdError {
    /// The id was empty.
    Empty,
    /// The id was longer than [`MAX_ID_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The id held a character outside ASCII letters, digits and `- _ . : / @`.
    InvalidChar {
        /// The offending character.
        ch: char,
        /// Its byte offset.
        at: usize,
    },
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdError::Empty => write!(f, "component id is empty"),
            IdError::TooLong { len } => {
                write!(f, "component id is {len} bytes long; the limit is {MAX_ID_LEN}")
            }
            IdError::InvalidChar { ch, at } => {
                write!(f, "component id has {ch:?} at byte {at}; allowed are ASCII letters, digits and - _ . : / @")
            }
        }
    }
}

impl std::error::Error for IdError {}

impl ComponentId {
    /// Validates `name` and makes an id of it.
    ///
    /// # Errors
    /// [`IdError`] when `name` is empty, too long, or holds a character not allowed.
    pub fn new(name: impl AsRef<str>) -> Result<Self, IdError> {
        let name = name.as_ref();
        validate(name)?;
        Ok(Self { hash: hash_name(name.as_bytes()), name: Arc::from(name) })
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.name
    }
}

fn validate(name: &str) -> Result<(), IdError> {
    if name.is_empty() {
        return Err(IdError::Empty);
    }
    if name.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { len: name.len() });
    }
    for (at, ch) in name.char_indices() {
        let ok = ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.' | ':' | '/' | '@');
        if !ok {
            return Err(IdError::InvalidChar { ch, at });
        }
    }
    Ok(())
}

/// FNV-1a over the bytes, then a splitmix64 finalizer so every bit of the result depends
/// on every input byte (DashMap picks its shard from the high bits).
fn hash_name(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl PartialEq for ComponentId {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && (Arc::ptr_eq(&self.name, &other.name) || self.name == other.name)
    }
}

impl Eq for ComponentId {}

impl Hash for ComponentId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialOrd for ComponentId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ComponentId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name.cmp(&other.name)
    }
}

impl fmt::Debug for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ComponentId({:?})", &*self.name)
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl TryFrom<String> for ComponentId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        ComponentId::new(s)
    }
}

impl TryFrom<&str> for ComponentId {
    type Error = IdError;
    fn try_from(s: &str) -> Result<Self, IdError> {
        ComponentId::new(s)
    }
}

impl std::str::FromStr for ComponentId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        ComponentId::new(s)
    }
}

impl From<ComponentId> for String {
    fn from(id: ComponentId) -> String {
        id.name.to_string()
    }
}

impl AsRef<str> for ComponentId {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

/// A hasher for maps keyed by [`ComponentId`]: it passes the precomputed hash through.
///
/// Other keys (strings) fall back to FNV-1a with the same finalizer.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = hash_name(bytes) ^ self.0.rotate_left(5);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n ^ self.0.rotate_left(5);
    }
}

/// `BuildHasher` for [`IdHasher`].
pub(crate) type IdBuildHasher = BuildHasherDefault<IdHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_are_accepted_and_keep_their_text() {
        for s in ["a", "orders", "payments/ledger-2", "x.y:z@v1", &"a".repeat(MAX_ID_LEN)] {
            let id = ComponentId::new(s).unwrap();
            assert_eq!(id.as_str(), s);
            assert_eq!(id.to_string(), s);
        }
    }

    #[test]
    fn empty_id_is_rejected() {
        assert_eq!(ComponentId::new(""), Err(IdError::Empty));
    }

    #[test]
    fn too_long_id_is_rejected() {
        let s = "a".repeat(MAX_ID_LEN + 1);
        assert_eq!(ComponentId::new(&s), Err(IdError::TooLong { len: MAX_ID_LEN + 1 }));
    }

    #[test]
    fn bad_characters_are_rejected_with_position() {
        assert_eq!(ComponentId::new("ab cd"), Err(IdError::InvalidChar { ch: ' ', at: 2 }));
        assert_eq!(ComponentId::new("é"), Err(IdError::InvalidChar { ch: 'é', at: 0 }));
        assert!(ComponentId::new("a\0").is_err());
    }

    #[test]
    fn equal_names_give_equal_ids_and_hashes() {
        use std::collections::hash_map::DefaultHasher;
        let a = ComponentId::new("same").unwrap();
        let b = ComponentId::new(String::from("same")).unwrap();
        assert_eq!(a, b);
        let h = |id: &ComponentId| {
            let mut s = DefaultHasher::new();
            id.hash(&mut s);
            s.finish()
        };
        assert_eq!(h(&a), h(&b));
        assert_ne!(a, ComponentId::new("other").unwrap());
    }

    #[test]
    fn id_serde_round_trips_and_validates() {
        let id = ComponentId::new("svc/a").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"svc/a\"");
        let back: ComponentId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<ComponentId>("\"bad id\"").is_err());
    }
}
