//! `ComponentId`: the address of a component, and the seeded hasher of the maps keyed by
//! names that users and guests choose.
//!
//! An id is validated once, when it is made, and then costs a 24-byte copy to clone (up to
//! 22 bytes are kept inline; longer ids share a reference-counted string) and one `u64`
//! write to hash: the hash of the name is computed at construction
//! and stored beside it, so routing a message never rehashes the name.
//!
//! Hashes are keyed with a seed drawn at random once per process (foldhash, seeded from
//! std's OS-random `RandomState`), so nobody can precompute names that collide in our maps
//! (hash flooding through component ids, topics or request ids). Loom builds use a fixed
//! seed, so models are deterministic.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
// `ComponentId` is a value type, not a synchronization primitive: it uses std's `Arc`
// directly so it stays `Arc<str>` (unsized) under loom too.
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// The address of a component: a short name such as `"orders"` or `"payments/ledger-2"`.
///
/// Allowed: 1 to [`MAX_ID_LEN`] bytes of ASCII letters, digits and `- _ . : / @`.
/// Cloning copies 24 bytes for ids of up to 22 bytes (no heap, no shared counter: the
/// sender that clones an id into an envelope and the worker that drops it do not contend
/// on a cache line) and bumps a reference count for longer ones; hashing writes one
/// precomputed `u64`.
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
    name: Name,
}

/// Longest id kept inline, without a heap allocation or a shared reference count.
const INLINE: usize = 22;

/// An id's text: inline when short (cloning copies 24 bytes; no counter shared between
/// the threads that clone and drop it, so a sender and the worker dropping its envelope do
/// not bounce a cache line), reference-counted when longer.
#[derive(Clone)]
enum Name {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Arc<str>),
}

impl Name {
    fn new(name: &str) -> Self {
        if name.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            Name::Inline { len: name.len() as u8, bytes }
        } else {
            Name::Heap(Arc::from(name))
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Name::Inline { len, bytes } => &bytes[..*len as usize],
            Name::Heap(s) => s.as_bytes(),
        }
    }

    /// Equal texts. Inline names are zero-padded, so their fixed-size arrays compare whole.
    #[inline]
    fn same(&self, other: &Name) -> bool {
        match (self, other) {
            (Name::Inline { len: a, bytes: x }, Name::Inline { len: b, bytes: y }) => a == b && x == y,
            (Name::Heap(a), Name::Heap(b)) => Arc::ptr_eq(a, b) || a == b,
            // A name has one form, decided by its length.
            _ => false,
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Validated ASCII when made: the check cannot fail.
            Name::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Name::Heap(s) => s,
        }
    }
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
        Ok(Self { hash: hash_name(name.as_bytes()), name: Name::new(name) })
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        self.name.as_str()
    }

    /// The id's seeded 64-bit hash: equal ids have equal hashes, and two different ids
    /// share one only by a 2^-64 accident that nobody can arrange (the seed is drawn at
    /// random per process and never shown). Lets a table remember "which id" without
    /// holding (and reference-counting) the id itself.
    pub(crate) fn fingerprint(&self) -> u64 {
        self.hash
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

/// The process's hash seed: random per process (fixed under loom).
fn process_seed() -> u64 {
    #[cfg(loom)]
    return 0x5eed_0f5e_ed0f_5eed;
    #[cfg(not(loom))]
    {
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        // std's RandomState is keyed from the OS's random source once per process.
        *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x9e37_79b9_7f4a_7c15_u64))
    }
}

/// The seeded hash of a name (what [`ComponentId`] stores).
fn hash_name(bytes: &[u8]) -> u64 {
    IdBuildHasher::default().hash_one(bytes)
}

impl PartialEq for ComponentId {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.name.same(&other.name)
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
        self.name.as_bytes().cmp(other.name.as_bytes())
    }
}

impl fmt::Debug for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ComponentId({:?})", self.as_str())
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
        id.as_str().to_string()
    }
}

impl AsRef<str> for ComponentId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// The `BuildHasher` of the maps keyed by names users and guests choose as strings
/// (topics, request ids): foldhash keyed with the process seed.
#[derive(Clone)]
pub(crate) struct IdBuildHasher(foldhash::fast::FixedState);

impl Default for IdBuildHasher {
    fn default() -> Self {
        Self(foldhash::fast::FixedState::with_seed(process_seed()))
    }
}

impl BuildHasher for IdBuildHasher {
    type Hasher = foldhash::fast::FoldHasher<'static>;

    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

/// The `BuildHasher` of the registry, keyed by [`ComponentId`]: an id's hash is computed
/// once, seeded, when the id is made, and passes through as is, so a send's lookup does
/// no hashing at all.
#[derive(Clone, Copy, Default)]
pub(crate) struct PrehashedBuildHasher;

impl BuildHasher for PrehashedBuildHasher {
    type Hasher = PrehashedHasher;

    fn build_hasher(&self) -> PrehashedHasher {
        PrehashedHasher(0)
    }
}

/// The hasher of [`PrehashedBuildHasher`].
pub(crate) struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    /// Not used by `ComponentId` (which writes one `u64`); hashed with the seeded hasher
    /// so that no key type can bypass the seed.
    fn write(&mut self, bytes: &[u8]) {
        self.0 = IdBuildHasher::default().hash_one(bytes) ^ self.0.rotate_left(5);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n ^ self.0.rotate_left(5);
    }
}

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

    /// The map hash of 94c2e8a: FNV-1a with a splitmix64 finalizer, the same in every
    /// process, so colliding names could be computed offline.
    fn unseeded_map_hash(s: &str) -> u64 {
        fn fnv(bytes: &[u8]) -> u64 {
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
        // `str`'s Hash writes the bytes, then 0xff.
        fnv(&[0xff]) ^ fnv(s.as_bytes()).rotate_left(5)
    }

    #[test]
    fn names_chosen_to_collide_offline_spread_over_the_maps() {
        // An attacker's offline search: 64 topic names whose hashes share the low 12 bits
        // (one bucket of a map with 4096 buckets) under a hash that is the same everywhere.
        const MASK: u64 = (1 << 12) - 1;
        let target = unseeded_map_hash("t0") & MASK;
        let colliding: Vec<String> =
            (0u64..).map(|i| format!("t{i}")).filter(|s| unseeded_map_hash(s) & MASK == target).take(64).collect();
        let ours = IdBuildHasher::default();
        let buckets: std::collections::HashSet<u64> =
            colliding.iter().map(|s| ours.hash_one(s.as_str()) & MASK).collect();
        assert!(buckets.len() > 32, "{} buckets for 64 names precomputed to collide", buckets.len());
    }

    #[test]
    fn the_map_hash_is_keyed_by_a_seed() {
        let a = foldhash::fast::FixedState::with_seed(1).hash_one("orders");
        let b = foldhash::fast::FixedState::with_seed(2).hash_one("orders");
        assert_ne!(a, b);
        assert_eq!(IdBuildHasher::default().hash_one("orders"), IdBuildHasher::default().hash_one("orders"));
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

#[cfg(all(test, not(loom)))]
mod inline_tests {
    use super::*;

    #[test]
    fn short_and_long_ids_compare_hash_order_and_print_by_their_text() {
        let short = ComponentId::new("a".repeat(INLINE)).unwrap();
        let long = ComponentId::new("a".repeat(INLINE + 1)).unwrap();
        assert!(matches!(short.name, Name::Inline { .. }) && matches!(long.name, Name::Heap(_)));
        assert_eq!(short.as_str().len(), INLINE);
        assert_eq!(long.as_str().len(), INLINE + 1);
        assert_ne!(short, long);
        assert!(short < long, "ordered by text, whatever the form");
        assert_eq!(short, ComponentId::new("a".repeat(INLINE)).unwrap());
        assert_eq!(long.clone(), long);
        assert_eq!(format!("{short}"), "a".repeat(INLINE));
        let max = ComponentId::new("z".repeat(MAX_ID_LEN)).unwrap();
        assert_eq!(serde_json::to_string(&max).unwrap(), format!("\"{}\"", "z".repeat(MAX_ID_LEN)));
    }
}
