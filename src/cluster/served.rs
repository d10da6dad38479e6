//! The components a node serves to the cluster (subscribed and announced): what a message
//! on its own subject may be for, and what discovery lists. Kept in id order, so that
//! discovery lists the first ones that fit in an answer without sorting them all, and with
//! a count of its changes, so that discovery makes its summary again only when the set
//! changed.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;

use crate::id::ComponentId;

/// The served components, in id order, and how often the set changed.
#[derive(Default)]
pub(crate) struct Served {
    ids: BTreeSet<ById>,
    changes: u64,
}

/// A component id ordered by its text (ids have no order of their own).
struct ById(ComponentId);

impl Borrow<str> for ById {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for ById {}

impl PartialOrd for ById {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ById {
    fn cmp(&self, other: &Self) -> Ordering {
        // The same order as `str`'s, which `Borrow<str>` requires.
        self.0.as_str().cmp(other.0.as_str())
    }
}

impl Served {
    #[cfg(test)]
    pub(crate) fn contains(&self, id: &ComponentId) -> bool {
        self.ids.contains(id.as_str())
    }

    pub(crate) fn insert(&mut self, id: ComponentId) {
        if self.ids.insert(ById(id)) {
            self.changes += 1;
        }
    }

    pub(crate) fn remove(&mut self, id: &ComponentId) {
        if self.ids.remove(id.as_str()) {
            self.changes += 1;
        }
    }

    /// Keeps only the ids `keep` says to.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&ComponentId) -> bool) {
        let before = self.ids.len();
        self.ids.retain(|id| keep(&id.0));
        if self.ids.len() != before {
            self.changes += 1;
        }
    }

    pub(crate) fn clear(&mut self) {
        if !self.ids.is_empty() {
            self.ids.clear();
            self.changes += 1;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// How many times the set changed: equal counts, the same set.
    pub(crate) fn changes(&self) -> u64 {
        self.changes
    }

    /// The ids in order (of their text).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &ComponentId> {
        self.ids.iter().map(|id| &id.0)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn id(s: &str) -> ComponentId {
        ComponentId::new(s).unwrap()
    }

    #[test]
    fn ids_come_in_order_and_only_a_change_counts() {
        let mut s = Served::default();
        for name in ["b", "a.two", "c", "a"] {
            s.insert(id(name));
        }
        assert_eq!(s.changes(), 4);
        s.insert(id("a"));
        s.remove(&id("nobody"));
        s.retain(|_| true);
        assert_eq!(s.changes(), 4, "nothing changed");
        assert_eq!(s.iter().map(|i| i.as_str()).collect::<Vec<_>>(), ["a", "a.two", "b", "c"]);
        assert!(s.contains(&id("a.two")) && !s.contains(&id("d")));
        s.retain(|i| i.as_str() != "b");
        s.remove(&id("c"));
        assert_eq!((s.len(), s.changes()), (2, 6));
        s.clear();
        assert_eq!((s.len(), s.changes()), (0, 7));
    }
}
