//! The exactly-once deduplication window of one component.
//!
//! Remembers the ids of the last `capacity` exactly-once messages the component handled
//! successfully, in a set for lookup and a FIFO for eviction. A message whose id is in the
//! window is dead-lettered as a duplicate instead of being handled. Only successful handling
//! records an id, so a sender may retry a message whose handling failed for good.
//!
//! The window is per component and in memory: it does not survive a process restart, and a
//! duplicate arriving after `capacity` newer ids were handled is not recognised.

use std::collections::{HashSet, VecDeque};

use crate::envelope::MessageId;

pub(crate) struct DedupWindow {
    seen: HashSet<MessageId>,
    order: VecDeque<MessageId>,
    capacity: usize,
}

impl DedupWindow {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { seen: HashSet::new(), order: VecDeque::new(), capacity: capacity.max(1) }
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.seen.contains(id)
    }

    pub(crate) fn insert(&mut self, id: MessageId) {
        if self.seen.contains(&id) {
            return;
        }
        if self.order.len() == self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(id.clone());
        self.order.push_back(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_forgets_the_oldest_id_when_full() {
        let mut w = DedupWindow::new(2);
        w.insert("a".into());
        w.insert("b".into());
        assert!(w.contains("a") && w.contains("b"));
        w.insert("c".into());
        assert!(!w.contains("a"));
        assert!(w.contains("b") && w.contains("c"));
    }
}
