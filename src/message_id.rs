//! `MessageId`: a message's id, kept inline when short.
//!
//! Every envelope carries one, and every request clones its id into the pending table and
//! the reply handle, and a response carries it as its correlation id. Kept inline up to 38
//! bytes (a generated id, a UUIDv7 in text, is 36), making, cloning and dropping an id
//! costs no allocation and no shared counter; longer ids (users may choose their own) live
//! on the heap.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest id kept inline.
const INLINE: usize = 38;

/// A message id: any UTF-8 text, compared, hashed and ordered as its text. Derefs to `str`,
/// converts from and into `String`, and compares with `str`, `&str` and `String`.
///
/// ```
/// use switchyard::{MessageId, new_message_id};
///
/// let id = MessageId::from("order-17");
/// assert_eq!(id, "order-17");
/// assert_eq!(id.len(), 8); // a `str` method, through `Deref`
/// let generated = new_message_id();
/// assert_eq!(generated.as_str().len(), 36);
/// let text: String = generated.into();
/// assert_eq!(text.len(), 36);
/// ```
#[derive(Clone)]
pub struct MessageId(Repr);

#[derive(Clone)]
enum Repr {
    /// Invariant: `bytes[..len]` is UTF-8 (copied whole from a `str`).
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Heap(Box<str>),
}

impl MessageId {
    /// The id's text.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                let text = &bytes[..*len as usize];
                // SAFETY: `Repr::Inline` is only made by `From<&str>` and
                // `from_ascii_uuid`, which copy a whole `str` (or ASCII) into `bytes`, so
                // `bytes[..len]` is valid UTF-8.
                unsafe { std::str::from_utf8_unchecked(text) }
            }
            Repr::Heap(s) => s,
        }
    }

    /// A generated id's 36 ASCII bytes, inline.
    pub(crate) fn from_ascii_uuid(text: [u8; 36]) -> Self {
        debug_assert!(text.is_ascii());
        let mut bytes = [0; INLINE];
        bytes[..36].copy_from_slice(&text);
        if !text.is_ascii() {
            // Unreachable by construction; kept safe rather than trusted.
            return MessageId::from(String::from_utf8_lossy(&text).as_ref());
        }
        MessageId(Repr::Inline { len: 36, bytes })
    }
}

impl From<&str> for MessageId {
    fn from(s: &str) -> Self {
        if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            MessageId(Repr::Inline { len: s.len() as u8, bytes })
        } else {
            MessageId(Repr::Heap(s.into()))
        }
    }
}

impl From<String> for MessageId {
    fn from(s: String) -> Self {
        if s.len() <= INLINE { MessageId::from(s.as_str()) } else { MessageId(Repr::Heap(s.into_boxed_str())) }
    }
}

impl From<&String> for MessageId {
    fn from(s: &String) -> Self {
        MessageId::from(s.as_str())
    }
}

impl From<MessageId> for String {
    fn from(id: MessageId) -> String {
        match id.0 {
            Repr::Heap(s) => s.into_string(),
            Repr::Inline { .. } => id.as_str().to_string(),
        }
    }
}

impl Default for MessageId {
    fn default() -> Self {
        MessageId::from("")
    }
}

impl Deref for MessageId {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for MessageId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Hashes and compares as its text, so maps keyed by ids are looked up with a `&str`.
impl Borrow<str> for MessageId {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Hash for MessageId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq for MessageId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for MessageId {}

impl PartialOrd for MessageId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MessageId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialEq<str> for MessageId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for MessageId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for MessageId {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<MessageId> for String {
    fn eq(&self, other: &MessageId) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<MessageId> for &str {
    fn eq(&self, other: &MessageId) -> bool {
        *self == other.as_str()
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for MessageId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(MessageId::from)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn short_and_long_ids_behave_as_their_text() {
        let short = MessageId::from("a".repeat(INLINE));
        let long = MessageId::from("a".repeat(INLINE + 1));
        assert!(matches!(short.0, Repr::Inline { .. }) && matches!(long.0, Repr::Heap(_)));
        assert_eq!(short, "a".repeat(INLINE));
        assert!(short < long);
        assert_eq!(String::from(long.clone()), "a".repeat(INLINE + 1));
        let mut map = HashMap::new();
        map.insert(short.clone(), 1);
        map.insert(long.clone(), 2);
        assert_eq!((map.get("a".repeat(INLINE).as_str()), map.get(long.as_str())), (Some(&1), Some(&2)));
        assert_eq!(format!("{short:?}"), format!("{:?}", "a".repeat(INLINE)));
        let multibyte = MessageId::from("ü-ü");
        assert_eq!(multibyte.as_str(), "ü-ü");
        assert_eq!(serde_json::to_string(&multibyte).unwrap(), "\"ü-ü\"");
        let back: MessageId = serde_json::from_str("\"x-1\"").unwrap();
        assert_eq!(back, "x-1");
    }
}
