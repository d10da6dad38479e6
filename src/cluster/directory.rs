//! The node directory: which other node hosts which component id, as the nodes' `state`,
//! `add`, `remove` and `bye` announcements and their silence say (see the cluster module
//! docs). Pure bookkeeping, owned by the I/O thread; it reports the ids that became
//! reachable or unreachable so the I/O thread can update the registry.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::id::ComponentId;

/// An id that became reachable through other nodes, or stopped being.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    Reachable(ComponentId),
    Unreachable(ComponentId),
}

struct Node {
    ids: HashSet<ComponentId>,
    seen: Instant,
    /// Its own heartbeat, as its announcements say (`sy-heartbeat-ms`).
    heartbeat: Option<Duration>,
}

/// What the other nodes host.
pub(crate) struct Directory {
    me: String,
    nodes: HashMap<String, Node>,
    /// How many other nodes host each id (only ids with at least one).
    hosts: HashMap<ComponentId, usize>,
    /// The bounds: other nodes, and (node, id) entries over all of them. Anyone who may
    /// publish on the directory subjects could otherwise grow this without end.
    max_nodes: usize,
    max_entries: usize,
    /// (node, id) entries now.
    entries: usize,
    /// Announcements dropped, or cut, at a bound.
    pub(crate) refused: u64,
    /// Bumped whenever a node starts or stops hosting an id.
    generation: u64,
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
            generation: 0,
        }
    }

    fn gain(&mut self, id: ComponentId, out: &mut Vec<Change>) {
        self.generation += 1;
        let n = self.hosts.entry(id.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            out.push(Change::Reachable(id));
        }
    }

    fn lose(&mut self, id: &ComponentId, out: &mut Vec<Change>) {
        self.generation += 1;
        if let Some(n) = self.hosts.get_mut(id) {
            *n -= 1;
            if *n == 0 {
                self.hosts.remove(id);
                out.push(Change::Unreachable(id.clone()));
            }
        }
    }

    fn node(&mut self, node: &str, now: Instant) -> Option<&mut Node> {
        if node == self.me {
            return None;
        }
        if !self.nodes.contains_key(node) && self.nodes.len() >= self.max_nodes {
            self.refused += 1;
            return None;
        }
        let n = self.nodes.entry(node.to_string()).or_insert_with(|| Node {
            ids: HashSet::new(),
            seen: now,
            heartbeat: None,
        });
        n.seen = now;
        Some(n)
    }

    /// `node` was heard from.
    pub(crate) fn touch(&mut self, node: &str, now: Instant) {
        let _ = self.node(node, now);
    }

    /// `node` says it announces itself every `heartbeat` (bounded as a node's own
    /// heartbeat is, 10 ms to one hour).
    pub(crate) fn heartbeat(&mut self, node: &str, heartbeat: Duration, now: Instant) {
        if let Some(n) = self.node(node, now) {
            n.heartbeat = Some(heartbeat.clamp(Duration::from_millis(10), Duration::from_secs(3600)));
        }
    }

    /// `node` hosts exactly `ids` (its periodic or answering state).
    pub(crate) fn state(&mut self, node: &str, mut ids: HashSet<ComponentId>, now: Instant) -> Vec<Change> {
        let mut out = Vec::new();
        let (others, max) = (self.entries, self.max_entries);
        let Some(n) = self.node(node, now) else {
            return out;
        };
        // What fits in the bound on entries: those it hosted already first.
        let room = max.saturating_sub(others - n.ids.len());
        let cut = ids.len() > room;
        if cut {
            let (kept, new): (Vec<_>, Vec<_>) = ids.into_iter().partition(|id| n.ids.contains(id));
            ids = kept.into_iter().chain(new).take(room).collect();
        }
        let old = std::mem::replace(&mut n.ids, ids.clone());
        self.entries = others - old.len() + ids.len();
        self.refused += u64::from(cut);
        for id in ids.difference(&old) {
            self.gain(id.clone(), &mut out);
        }
        for id in old.difference(&ids) {
            self.lose(id, &mut out);
        }
        out
    }

    /// `node` started hosting `id`.
    pub(crate) fn add(&mut self, node: &str, id: ComponentId, now: Instant) -> Vec<Change> {
        let mut out = Vec::new();
        let full = self.entries >= self.max_entries;
        let Some(n) = self.node(node, now) else {
            return out;
        };
        if n.ids.contains(&id) {
            return out;
        }
        if full {
            self.refused += 1;
            return out;
        }
        n.ids.insert(id.clone());
        self.entries += 1;
        self.gain(id, &mut out);
        out
    }

    /// `node` stopped hosting `id`.
    pub(crate) fn remove(&mut self, node: &str, id: &ComponentId, now: Instant) -> Vec<Change> {
        let mut out = Vec::new();
        if let Some(n) = self.node(node, now)
            && n.ids.remove(id)
        {
            self.entries -= 1;
            self.lose(id, &mut out);
        }
        out
    }

    /// `node` left.
    pub(crate) fn bye(&mut self, node: &str) -> Vec<Change> {
        let mut out = Vec::new();
        if let Some(n) = self.nodes.remove(node) {
            self.entries -= n.ids.len();
            for id in &n.ids {
                self.lose(id, &mut out);
            }
        }
        out
    }

    /// Forgets the nodes silent for three of their own heartbeats (`heartbeat` for a node
    /// that did not say its own). Returns the changes and how many nodes were forgotten.
    pub(crate) fn expire(&mut self, now: Instant, heartbeat: Duration) -> (Vec<Change>, usize) {
        let silent: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| now.duration_since(n.seen) > n.heartbeat.unwrap_or(heartbeat) * 3)
            .map(|(k, _)| k.clone())
            .collect();
        (silent.iter().flat_map(|node| self.bye(node)).collect(), silent.len())
    }

    /// Changes with every change of which node hosts which id.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
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

/// Ids per part of a state announcement: at most 128 bytes each, so a part stays well
/// under the server's 1 MB message limit.
pub(crate) const IDS_PER_PART: usize = 4096;

/// Header: the announcing node's heartbeat, in ms (on every directory message).
pub(crate) const HEARTBEAT_MS: &str = "sy-heartbeat-ms";

/// Header: the generation of a state announcement.
pub(crate) const STATE_GEN: &str = "sy-state-gen";

/// Header: which part of it (`i/k`).
pub(crate) const STATE_PART: &str = "sy-state-part";

/// `(generation, i, k)` of a state part, if the message says.
pub(crate) fn part_of(h: Option<&async_nats::HeaderMap>) -> Option<(u64, usize, usize)> {
    let h = h?;
    let generation = h.get(STATE_GEN)?.as_str().parse().ok()?;
    let (i, k) = h.get(STATE_PART)?.as_str().split_once('/')?;
    let (i, k): (usize, usize) = (i.parse().ok()?, k.parse().ok()?);
    (1..=k).contains(&i).then_some((generation, i, k))
}

/// Parts of state announcements being assembled, per node (the newest generation only):
/// at most `max_nodes` assemblies, of at most `max_entries` ids each; one not complete
/// within a while of its first part is dropped ([`StateParts::expire`]).
pub(crate) struct StateParts {
    nodes: HashMap<String, Assembly>,
    max_nodes: usize,
    max_entries: usize,
}

struct Assembly {
    generation: u64,
    k: usize,
    parts: HashSet<usize>,
    ids: HashSet<ComponentId>,
    started: Instant,
}

impl StateParts {
    pub(crate) fn new(max_nodes: usize, max_entries: usize) -> Self {
        Self { nodes: HashMap::new(), max_nodes, max_entries }
    }

    /// Adds part `i` of `k` of `node`'s announcement `generation`; the whole state once
    /// every part came. Parts of an older generation are dropped, and an announcement that
    /// would not fit the bounds is refused (`Err`).
    pub(crate) fn add(
        &mut self,
        node: &str,
        generation: u64,
        i: usize,
        k: usize,
        payload: &[u8],
        now: Instant,
    ) -> Result<Option<HashSet<ComponentId>>, ()> {
        if k > self.max_entries.div_ceil(IDS_PER_PART).max(1) {
            return Err(());
        }
        if !self.nodes.contains_key(node) && self.nodes.len() >= self.max_nodes {
            return Err(());
        }
        let fresh = || Assembly { generation, k, parts: HashSet::new(), ids: HashSet::new(), started: now };
        let entry = self.nodes.entry(node.to_string()).or_insert_with(fresh);
        if generation < entry.generation {
            return Ok(None);
        }
        if generation > entry.generation {
            *entry = fresh();
        }
        let part = decode(payload);
        if part.len() > IDS_PER_PART || entry.ids.len() + part.len() > self.max_entries {
            self.nodes.remove(node);
            return Err(());
        }
        entry.parts.insert(i);
        entry.ids.extend(part);
        if entry.parts.len() == entry.k {
            return Ok(self.nodes.remove(node).map(|a| a.ids));
        }
        Ok(None)
    }

    /// Drops the assemblies begun more than `ttl` before `now`.
    pub(crate) fn expire(&mut self, now: Instant, ttl: Duration) {
        self.nodes.retain(|_, a| now.duration_since(a.started) <= ttl);
    }
}

/// A node's ids as a `state` payload: one id per line.
pub(crate) fn encode(ids: &[ComponentId]) -> Vec<u8> {
    ids.iter().map(ComponentId::as_str).collect::<Vec<_>>().join("\n").into_bytes()
}

/// The ids of a `state` payload (lines that are not valid ids are skipped).
pub(crate) fn decode(payload: &[u8]) -> HashSet<ComponentId> {
    String::from_utf8_lossy(payload).lines().filter_map(|l| ComponentId::new(l).ok()).collect()
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

    #[test]
    fn an_id_is_reachable_while_any_other_node_hosts_it() {
        let t = Instant::now();
        let mut d = Directory::new("me", 16, 1024);
        assert_eq!(d.state("b", ids(&["store", "x"]), t).len(), 2);
        assert_eq!(d.add("c", id("store"), t), vec![], "a second host changes nothing");
        assert_eq!(d.remove("b", &id("store"), t), vec![], "c still hosts it");
        assert!(d.hosted_elsewhere(&id("store")));
        assert_eq!(d.bye("c"), vec![Change::Unreachable(id("store"))]);
        assert_eq!(d.state("b", ids(&["y"]), t), vec![Change::Reachable(id("y")), Change::Unreachable(id("x"))]);
        assert_eq!((d.node_count(), d.id_count()), (1, 1));
    }

    #[test]
    fn own_announcements_are_ignored_and_silent_nodes_expire() {
        let t = Instant::now();
        let mut d = Directory::new("me", 16, 1024);
        assert_eq!(d.add("me", id("a"), t), vec![]);
        d.add("b", id("a"), t);
        d.add("c", id("z"), t + Duration::from_secs(2));
        let (gone, n) = d.expire(t + Duration::from_secs(4), Duration::from_secs(1));
        assert_eq!((gone, n), (vec![Change::Unreachable(id("a"))], 1), "b was silent for 4 s, c for 2 s");
        assert!(d.hosted_elsewhere(&id("z")));
    }

    #[test]
    fn a_node_is_forgotten_after_three_of_its_own_heartbeats() {
        let t = Instant::now();
        let mut d = Directory::new("me", 16, 1024);
        d.add("slow", id("a"), t);
        d.heartbeat("slow", Duration::from_secs(2), t);
        d.add("fast", id("b"), t);
        // Silent for 4 s: three of slow's heartbeats are 6 s, three of ours (1 s) are 3 s.
        let (gone, n) = d.expire(t + Duration::from_secs(4), Duration::from_secs(1));
        assert_eq!((gone, n), (vec![Change::Unreachable(id("b"))], 1));
        assert!(d.hosted_elsewhere(&id("a")));
    }

    #[test]
    fn a_state_in_parts_applies_once_complete_and_only_its_newest_generation() {
        let t = Instant::now();
        let mut p = StateParts::new(4, 1 << 20);
        assert_eq!(p.add("b", 7, 1, 2, b"x", t), Ok(None));
        assert_eq!(p.add("b", 6, 2, 2, b"old", t), Ok(None), "an older generation's part is dropped");
        assert_eq!(p.add("b", 7, 2, 2, b"y", t), Ok(Some(ids(&["x", "y"]))));
        assert_eq!(p.add("b", 8, 1, 1, b"", t), Ok(Some(ids(&[]))), "an empty state is one empty part");
        let mut h = async_nats::HeaderMap::new();
        h.insert(STATE_GEN, "3");
        h.insert(STATE_PART, "2/5");
        assert_eq!(part_of(Some(&h)), Some((3, 2, 5)));
        h.insert(STATE_PART, "6/5");
        assert_eq!(part_of(Some(&h)), None, "no part 6 of 5");
    }

    #[test]
    fn the_directory_and_its_assemblies_stay_within_their_bounds() {
        let t = Instant::now();
        let mut d = Directory::new("me", 2, 3);
        d.add("a", id("1"), t);
        d.add("b", id("2"), t);
        assert_eq!(d.add("c", id("3"), t), vec![], "a third node is refused");
        assert_eq!(d.node_count(), 2);
        d.add("a", id("4"), t);
        assert_eq!(d.add("a", id("5"), t), vec![], "a fourth entry is refused");
        assert_eq!(d.state("b", ids(&["2", "6", "7"]), t), vec![], "b keeps what it had, no room for more");
        d.remove("a", &id("4"), t);
        assert_eq!(d.state("b", ids(&["2", "6", "7"]), t).len(), 1, "room for one more now");
        assert_eq!(d.id_count(), 3);
        assert_eq!(d.refused, 4);

        let mut p = StateParts::new(1, 8192);
        assert_eq!(p.add("b", 1, 1, 1_000_000, b"x", t), Err(()), "more parts than the bound could hold");
        assert_eq!(p.add("b", 1, 1, 2, b"x", t), Ok(None));
        assert_eq!(p.add("c", 1, 1, 2, b"y", t), Err(()), "one assembly at a time");
        p.expire(t + Duration::from_secs(10), Duration::from_secs(3));
        assert_eq!(p.add("c", 1, 1, 2, b"y", t), Ok(None), "the stale one was dropped");
    }

    #[test]
    fn state_payloads_round_trip() {
        let v = vec![id("a"), id("b/c")];
        assert_eq!(decode(&encode(&v)), v.into_iter().collect());
        assert_eq!(decode(b"ok\nnot valid\n"), ids(&["ok"]));
    }
}
