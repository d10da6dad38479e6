//! The node directory: which other node (at which epoch) hosts which component id, as
//! membership (`membership.rs`) learns it. Pure bookkeeping, owned by the I/O thread; it
//! reports the ids that became reachable or unreachable so the I/O thread can update the
//! registry.
//!
//! A node is known by its name and its *epoch* (drawn at random when it starts): a new
//! epoch under a known name is the node restarted, and everything known of the old one is
//! dropped. What a node hosts is summed up by its *digest*, an order-independent hash of
//! its ids ([`digest_of`]) that it announces with every heartbeat: a digest that does not
//! match what the directory holds for the node means the directory must fetch the node's
//! ids again (`membership.rs`); a change announcement carries the digest before and after,
//! so the next can be applied directly when nothing was missed.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::id::ComponentId;

/// An id that became reachable through other nodes, or stopped being.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    Reachable(ComponentId),
    Unreachable(ComponentId),
}

/// The digest of a set of ids: the wrapping sum of a 64-bit hash of each, so that adding
/// or removing one changes it in O(1) and the order does not matter. For noticing a change,
/// not for security: the nodes of a cluster trust each other (their own NATS account).
pub(crate) fn digest_of<'a>(ids: impl IntoIterator<Item = &'a ComponentId>) -> u64 {
    ids.into_iter().fold(0u64, |d, id| d.wrapping_add(id_hash(id)))
}

/// FNV-1a of the id's bytes, then a finalizing mix (splitmix64's): stable across builds,
/// platforms and processes, unlike std's hasher.
pub(crate) fn id_hash(id: &ComponentId) -> u64 {
    let h =
        id.as_str().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Node {
    epoch: u64,
    ids: HashSet<ComponentId>,
    seen: Instant,
    /// Its own heartbeat, as it says.
    heartbeat: Duration,
    /// The digest it last announced; the ids are current when `digest_of(ids)` equals it.
    announced: u64,
    /// The digest of the last fetch applied, whole or cut at the bound: a node that hosts
    /// more than fits is not fetched again until it announces another digest.
    settled: Option<u64>,
}

impl Node {
    fn needs_fetch(&self) -> bool {
        self.settled != Some(self.announced) && digest_of(&self.ids) != self.announced
    }
}

/// What the directory learned from an announcement.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Learned {
    pub(crate) changes: Vec<Change>,
    /// The node's ids are not known as they are now: fetch them.
    pub(crate) fetch: bool,
    /// The node is new, or came back with a new epoch (links to it start over).
    pub(crate) new_epoch: bool,
}

/// What the other nodes host.
pub(crate) struct Directory {
    me: String,
    nodes: HashMap<String, Node>,
    /// How many other nodes host each id (only ids with at least one).
    hosts: HashMap<ComponentId, usize>,
    /// The bounds: other nodes, and (node, id) entries over all of them.
    max_nodes: usize,
    max_entries: usize,
    /// (node, id) entries now.
    entries: usize,
    /// Announcements dropped, or cut, at a bound, or malformed.
    pub(crate) refused: u64,
}

impl Directory {
    pub(crate) fn new(me: &str, max_nodes: usize, max_entries: usize) -> Self {
        Self {
            me: me.to_string(),
            nodes: HashMap::new(),
            hosts: HashMap::new(),
            max_nodes,
            max_entries,
            entries: 0,
            refused: 0,
        }
    }

    fn gain(hosts: &mut HashMap<ComponentId, usize>, id: ComponentId, out: &mut Vec<Change>) {
        let n = hosts.entry(id.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            out.push(Change::Reachable(id));
        }
    }

    fn lose(hosts: &mut HashMap<ComponentId, usize>, id: &ComponentId, out: &mut Vec<Change>) {
        if let Some(n) = hosts.get_mut(id) {
            *n -= 1;
            if *n == 0 {
                hosts.remove(id);
                out.push(Change::Unreachable(id.clone()));
            }
        }
    }

    /// `node` at `epoch` was heard from, announcing `digest` and its `heartbeat`: the node
    /// entry (made, or started over for a new epoch), and what that changed.
    fn heard(&mut self, node: &str, epoch: u64, heartbeat: Duration, digest: u64, now: Instant) -> Option<Learned> {
        if node == self.me {
            return None;
        }
        let mut learned = Learned::default();
        let full = self.nodes.len() >= self.max_nodes;
        match self.nodes.get_mut(node) {
            Some(n) if n.epoch == epoch => {}
            Some(n) => {
                // Restarted: what the old one hosted is gone with it.
                self.entries -= n.ids.len();
                for id in n.ids.drain() {
                    Self::lose(&mut self.hosts, &id, &mut learned.changes);
                }
                n.epoch = epoch;
                n.settled = None;
                learned.new_epoch = true;
            }
            None if full => {
                self.refused += 1;
                return None;
            }
            None => {
                self.nodes.insert(
                    node.to_string(),
                    Node { epoch, ids: HashSet::new(), seen: now, heartbeat, announced: 0, settled: None },
                );
                learned.new_epoch = true;
            }
        }
        let n = self.nodes.get_mut(node).expect("the node entry");
        n.seen = now;
        n.heartbeat = heartbeat.clamp(Duration::from_millis(10), Duration::from_secs(3600));
        n.announced = digest;
        learned.fetch = n.needs_fetch();
        Some(learned)
    }

    /// A heartbeat (or an answer to this node's hello): `node` at `epoch` hosts ids whose
    /// digest is `digest`.
    pub(crate) fn beat(&mut self, node: &str, epoch: u64, heartbeat: Duration, digest: u64, now: Instant) -> Learned {
        self.heard(node, epoch, heartbeat, digest, now).unwrap_or_default()
    }

    /// `node` at `epoch` now hosts exactly `ids` (a fetch of its state, whose digest was
    /// `digest`). Ignored for another epoch, and if the node announced another digest since
    /// (a later fetch brings that). Ids past the bound on entries are dropped and counted.
    pub(crate) fn state(&mut self, node: &str, epoch: u64, digest: u64, mut ids: HashSet<ComponentId>) -> Vec<Change> {
        let mut out = Vec::new();
        let others = self.entries;
        let max = self.max_entries;
        let Some(n) = self.nodes.get_mut(node).filter(|n| n.epoch == epoch && n.announced == digest) else {
            return out;
        };
        let room = max.saturating_sub(others - n.ids.len());
        if ids.len() > room {
            // What fits: those it hosted already first.
            let (kept, new): (Vec<_>, Vec<_>) = ids.into_iter().partition(|id| n.ids.contains(id));
            ids = kept.into_iter().chain(new).take(room).collect();
            self.refused += 1;
        }
        n.settled = Some(digest);
        let old = std::mem::replace(&mut n.ids, ids);
        self.entries = others - old.len() + n.ids.len();
        for id in n.ids.difference(&old) {
            Self::gain(&mut self.hosts, id.clone(), &mut out);
        }
        for id in old.difference(&n.ids) {
            Self::lose(&mut self.hosts, id, &mut out);
        }
        out
    }

    /// `node` at `epoch` changed what it hosts from digest `before` to `after`: `added` and
    /// `removed`. Applied if the directory held exactly `before`; otherwise `fetch`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn change(
        &mut self,
        node: &str,
        epoch: u64,
        heartbeat: Duration,
        before: u64,
        after: u64,
        added: Vec<ComponentId>,
        removed: Vec<ComponentId>,
        now: Instant,
    ) -> Learned {
        let full = self.entries;
        let max = self.max_entries;
        let Some(mut learned) = self.heard(node, epoch, heartbeat, after, now) else {
            return Learned::default();
        };
        let n = self.nodes.get_mut(node).expect("the node entry");
        if digest_of(&n.ids) != before {
            learned.fetch = true;
            return learned;
        }
        let mut entries = full;
        for id in removed {
            if n.ids.remove(&id) {
                entries -= 1;
                Self::lose(&mut self.hosts, &id, &mut learned.changes);
            }
        }
        for id in added {
            if entries >= max {
                self.refused += 1;
                break;
            }
            if n.ids.insert(id.clone()) {
                entries += 1;
                Self::gain(&mut self.hosts, id, &mut learned.changes);
            }
        }
        self.entries = entries;
        learned.fetch = n.needs_fetch();
        learned
    }

    /// `node` left (its epoch `epoch`, or any with `None`).
    pub(crate) fn bye(&mut self, node: &str, epoch: Option<u64>) -> Vec<Change> {
        let mut out = Vec::new();
        if self.nodes.get(node).is_some_and(|n| epoch.is_none_or(|e| e == n.epoch))
            && let Some(n) = self.nodes.remove(node)
        {
            self.entries -= n.ids.len();
            for id in &n.ids {
                Self::lose(&mut self.hosts, id, &mut out);
            }
        }
        out
    }

    /// Forgets the nodes silent for three of their own heartbeats. Returns the changes and
    /// the nodes forgotten.
    pub(crate) fn expire(&mut self, now: Instant) -> (Vec<Change>, Vec<String>) {
        let silent: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| now.duration_since(n.seen) > n.heartbeat * 3)
            .map(|(k, _)| k.clone())
            .collect();
        (silent.iter().flat_map(|node| self.bye(node, None)).collect(), silent)
    }

    /// The other nodes hosting `id`, in name order.
    pub(crate) fn nodes_hosting(&self, id: &ComponentId) -> Vec<String> {
        if !self.hosts.contains_key(id) {
            return Vec::new();
        }
        let mut nodes: Vec<String> =
            self.nodes.iter().filter(|(_, n)| n.ids.contains(id)).map(|(name, _)| name.clone()).collect();
        nodes.sort_unstable();
        nodes
    }

    /// True if some other node hosts `id`.
    pub(crate) fn hosted_elsewhere(&self, id: &ComponentId) -> bool {
        self.hosts.contains_key(id)
    }

    /// The epoch of `node`, if it is known.
    pub(crate) fn epoch_of(&self, node: &str) -> Option<u64> {
        self.nodes.get(node).map(|n| n.epoch)
    }

    /// Every known node and its epoch.
    pub(crate) fn epochs(&self) -> HashMap<String, u64> {
        self.nodes.iter().map(|(k, n)| (k.clone(), n.epoch)).collect()
    }

    /// The nodes whose ids are not current (their digest does not match): to fetch.
    pub(crate) fn stale(&self) -> Vec<(String, u64, u64)> {
        self.nodes.iter().filter(|(_, n)| n.needs_fetch()).map(|(k, n)| (k.clone(), n.epoch, n.announced)).collect()
    }

    /// Counts every known node as heard from now (after a reconnection: the silence was
    /// ours).
    pub(crate) fn touch_all(&mut self, now: Instant) {
        for n in self.nodes.values_mut() {
            n.seen = now;
        }
    }

    /// The ids other nodes host.
    pub(crate) fn ids(&self) -> Vec<ComponentId> {
        self.hosts.keys().cloned().collect()
    }

    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn id_count(&self) -> usize {
        self.hosts.len()
    }
}

/// Ids per page of a state fetch: at most 128 bytes each, so a page stays well under the
/// server's 1 MB message limit.
pub(crate) const IDS_PER_PAGE: usize = 4096;

/// Ids as a page's payload: one id per line.
pub(crate) fn encode(ids: &[ComponentId]) -> Vec<u8> {
    ids.iter().map(ComponentId::as_str).collect::<Vec<_>>().join("\n").into_bytes()
}

/// The ids of a page's payload (lines that are not valid ids are skipped), at most `max`.
pub(crate) fn decode(payload: &[u8], max: usize) -> Vec<ComponentId> {
    String::from_utf8_lossy(payload).lines().filter_map(|l| ComponentId::new(l).ok()).take(max).collect()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn id(s: &str) -> ComponentId {
        ComponentId::new(s).unwrap()
    }

    fn ids(v: &[&str]) -> HashSet<ComponentId> {
        v.iter().map(|s| id(s)).collect()
    }

    const HB: Duration = Duration::from_secs(1);

    /// `node` announces it hosts `v` and the directory fetched them.
    fn hosting(d: &mut Directory, node: &str, epoch: u64, v: &[&str], t: Instant) -> Vec<Change> {
        let set = ids(v);
        let digest = digest_of(&set);
        let learned = d.beat(node, epoch, HB, digest, t);
        let mut changes = learned.changes;
        if learned.fetch {
            changes.extend(d.state(node, epoch, digest, set));
        }
        changes
    }

    #[test]
    fn an_id_is_reachable_while_any_other_node_hosts_it() {
        let t = Instant::now();
        let mut d = Directory::new("me", 16, 1024);
        assert_eq!(hosting(&mut d, "b", 1, &["store", "x"], t).len(), 2);
        assert_eq!(hosting(&mut d, "c", 1, &["store"], t), vec![], "a second host changes nothing");
        assert_eq!(hosting(&mut d, "b", 1, &["x"], t), vec![], "c still hosts store");
        assert!(d.hosted_elsewhere(&id("store")));
        assert_eq!(d.bye("c", Some(1)), vec![Change::Unreachable(id("store"))]);
        assert_eq!(hosting(&mut d, "b", 1, &["y"], t), vec![Change::Reachable(id("y")), Change::Unreachable(id("x"))]);
        assert_eq!((d.node_count(), d.id_count()), (1, 1));
    }

    #[test]
    fn a_beat_whose_digest_matches_needs_no_fetch_and_one_that_differs_does() {
        let t = Instant::now();
        let mut d = Directory::new("me", 16, 1024);
        hosting(&mut d, "b", 1, &["a", "b"], t);
        let same = d.beat("b", 1, HB, digest_of(&ids(&["b", "a"])), t);
        assert_eq!(same, Learned::default(), "the order of ids does not matter");
        assert!(d.beat("b", 1, HB, digest_of(&ids(&["a"])), t).fetch);
        assert_eq!(d.stale().len(), 1);
    }

    #[test]
    fn a_change_applies_when_nothing_was_missed_and_asks_for_a_fetch_when_it_was() {
        let t = Instant::now();
        let mut d = Directory::new("me", 16, 1024);
        hosting(&mut d, "b", 1, &["a"], t);
        let (before, after) = (digest_of(&ids(&["a"])), digest_of(&ids(&["a", "c"])));
        let applied = d.change("b", 1, HB, before, after, vec![id("c")], vec![], t);
        assert_eq!((applied.changes, applied.fetch), (vec![Change::Reachable(id("c"))], false));
        // One change missed: the next one's "before" is not what the directory holds.
        let missed = digest_of(&ids(&["a", "c", "d"]));
        let next = digest_of(&ids(&["a", "c", "d", "e"]));
        let l = d.change("b", 1, HB, missed, next, vec![id("e")], vec![], t);
        assert!(l.fetch && l.changes.is_empty());
        assert_eq!(d.state("b", 1, next, ids(&["a", "c", "d", "e"])).len(), 2, "d and e");
        assert!(d.state("b", 1, missed, ids(&["z"])).is_empty(), "a fetch of an older digest is ignored");
    }

    #[test]
    fn a_new_epoch_is_the_node_restarted_and_drops_what_the_old_one_hosted() {
        let t = Instant::now();
        let mut d = Directory::new("me", 16, 1024);
        hosting(&mut d, "b", 1, &["a"], t);
        let l = d.beat("b", 2, HB, digest_of(&ids(&["a"])), t);
        assert_eq!((l.changes, l.new_epoch, l.fetch), (vec![Change::Unreachable(id("a"))], true, true));
        assert_eq!(d.epoch_of("b"), Some(2));
        assert!(d.bye("b", Some(1)).is_empty(), "a bye of the old epoch is not this one's");
    }

    #[test]
    fn own_announcements_are_ignored_and_silent_nodes_expire_by_their_own_heartbeat() {
        let t = Instant::now();
        let mut d = Directory::new("me", 16, 1024);
        assert_eq!(d.beat("me", 1, HB, 5, t), Learned::default());
        hosting(&mut d, "fast", 1, &["a"], t);
        let slow = ids(&["z"]);
        d.beat("slow", 1, Duration::from_secs(2), digest_of(&slow), t);
        d.state("slow", 1, digest_of(&slow), slow);
        let (gone, nodes) = d.expire(t + Duration::from_secs(4));
        assert_eq!((gone, nodes), (vec![Change::Unreachable(id("a"))], vec!["fast".to_string()]));
        assert!(d.hosted_elsewhere(&id("z")), "three of slow's heartbeats are 6 s");
    }

    #[test]
    fn the_directory_stays_within_its_bounds() {
        let t = Instant::now();
        let mut d = Directory::new("me", 2, 3);
        hosting(&mut d, "a", 1, &["1"], t);
        hosting(&mut d, "b", 1, &["2"], t);
        assert_eq!(hosting(&mut d, "c", 1, &["3"], t), vec![], "a third node is refused");
        assert_eq!(d.node_count(), 2);
        hosting(&mut d, "a", 1, &["1", "4", "5"], t);
        assert_eq!(d.id_count(), 3, "the fourth entry is refused");
        assert_eq!(d.refused, 2);
        // The cut state is what the directory keeps for that digest: no fetch again (and
        // again) until node a announces another.
        let cut = digest_of(&ids(&["1", "4", "5"]));
        assert!(!d.beat("a", 1, HB, cut, t).fetch && d.stale().is_empty());
        assert!(d.beat("a", 1, HB, digest_of(&ids(&["1"])), t).fetch);
    }

    #[test]
    fn pages_round_trip_and_stay_bounded() {
        let v = vec![id("a"), id("b/c")];
        assert_eq!(decode(&encode(&v), 10), v);
        assert_eq!(decode(b"ok\nnot valid\n", 10), vec![id("ok")]);
        assert_eq!(decode(b"a\nb\nc", 2).len(), 2);
    }
}
