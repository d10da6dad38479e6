//! Membership: which nodes form the cluster now and which ids each hosts, on NATS
//! request/reply and publish within the nodes' own account (the trust boundary: see the
//! module docs, "Two accounts").
//!
//! | subject | who publishes | carries |
//! |---|---|---|
//! | `sy.<c>.n.hello` | a node joining, with a reply inbox | its epoch, heartbeat and digest; every node answers to the inbox with its own |
//! | `sy.<c>.n.beat` | every node, every heartbeat | its epoch, heartbeat, and the digest of the ids it hosts (no ids) |
//! | `sy.<c>.n.change` | a node whose ids changed | its digest before and after, and the ids added (`+id`) and removed (`-id`), one per line |
//! | `sy.<c>.n.bye` | a node leaving | its epoch |
//! | `sy.<c>.s.<node>` | a node that needs `<node>`'s ids, with a reply inbox and `sy-page: k` | answered with page `k` of the ids, `sy-pages`, and the epoch and digest they are of |
//!
//! So membership traffic grows with the nodes and with the changes, not with heartbeats
//! times ids: a heartbeat is a few dozen bytes whatever a node hosts, and a node's ids are
//! fetched only when its digest says the directory's copy is not current (it joined, it
//! missed a change, it restarted).
//!
//! **Joining means knowing the cluster.** A node joins by saying `hello` and gathering the
//! answers (until none came for a moment, at most two seconds), then fetching the ids of
//! every node that hosts any: only then does the runtime's build return (and the CLI take
//! input). For one heartbeat after that (a node that answered late is heard from within its
//! heartbeat), a send to an id no node is known to host waits for membership to learn of
//! it, up to the send's time, rather than fail (`Outbound::Unresolved`).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::{Client, HeaderMap, Message, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;

use super::bridge::{Bridge, RemoteTarget};
use super::directory::{self, Change, Learned, digest_of};
use super::io::{Loop, bounded};
use super::{subject, wire};
use crate::id::ComponentId;

const EPOCH: &str = "sy-epoch";
const HEARTBEAT_MS: &str = "sy-heartbeat-ms";
const DIGEST: &str = "sy-digest";
const BEFORE: &str = "sy-before";
const PAGE: &str = "sy-page";
const PAGES: &str = "sy-pages";

/// How long a joining node gathers answers to its hello after the last one came (and at
/// least this long in all), and at most.
const GATHER_QUIET: Duration = Duration::from_millis(100);
const GATHER_MAX: Duration = Duration::from_secs(2);
/// How long a fetch of a node's ids may take in all.
const FETCH_TIME: Duration = Duration::from_secs(5);

fn hex(h: &HeaderMap, name: &str) -> Option<u64> {
    u64::from_str_radix(h.get(name)?.as_str(), 16).ok()
}

/// A node's announcement as its headers say: name, epoch, heartbeat, digest.
fn announced(h: Option<&HeaderMap>) -> Option<(String, u64, Duration, u64)> {
    let h = h?;
    let node = h.get(wire::NODE)?.as_str().to_string();
    if !subject::valid_cluster_name(&node) {
        return None;
    }
    let heartbeat = Duration::from_millis(h.get(HEARTBEAT_MS)?.as_str().parse().ok()?);
    Some((node, hex(h, EPOCH)?, heartbeat, hex(h, DIGEST)?))
}

/// The ids of another node, fetched: (node, epoch, digest, ids).
pub(super) type Fetched = (String, u64, u64, HashSet<ComponentId>);

/// Fetches `node`'s ids, page by page, as of `digest` at `epoch`; `None` if the node
/// changed meanwhile or did not answer (a later heartbeat says what to fetch next). Stops
/// once it holds more than `max` (the directory keeps what fits), and never asks for more
/// pages than `max` ids fill, whatever the node says it has.
async fn fetch(client: Client, cluster: String, node: String, epoch: u64, digest: u64, max: usize) -> Option<Fetched> {
    let max_pages = max.div_ceil(directory::IDS_PER_PAGE) + 1;
    let run = async {
        let mut ids = HashSet::new();
        let mut page = 0;
        loop {
            let mut h = HeaderMap::new();
            h.insert(PAGE, page.to_string().as_str());
            let req = async_nats::Request::new().headers(h).timeout(Some(FETCH_TIME));
            let m = client.send_request(subject::state(&cluster, &node), req).await.ok()?;
            let h = m.headers.as_ref()?;
            if hex(h, EPOCH)? != epoch || hex(h, DIGEST)? != digest {
                return None;
            }
            let pages: usize = h.get(PAGES)?.as_str().parse().ok()?;
            ids.extend(directory::decode(&m.payload, directory::IDS_PER_PAGE));
            page += 1;
            if page >= pages.min(max_pages) || ids.len() > max {
                return Some((node, epoch, digest, ids));
            }
        }
    };
    tokio::time::timeout(FETCH_TIME, run).await.ok().flatten()
}

impl Loop {
    /// The headers of this node's announcements.
    fn announcement(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(wire::NODE, self.bridge.node.as_str());
        h.insert(EPOCH, format!("{:016x}", self.bridge.epoch).as_str());
        h.insert(HEARTBEAT_MS, self.heartbeat.as_millis().to_string().as_str());
        h.insert(DIGEST, format!("{:016x}", self.digest).as_str());
        h
    }

    /// Joins: says hello, gathers the answers, fetches what the nodes that answered host
    /// (see the module docs). Returns once the directory knows the cluster.
    pub(super) async fn join(&mut self) -> Result<(), String> {
        let inbox = self.client.new_inbox();
        let mut answers = self.client.subscribe(inbox.clone()).await.map_err(|e| e.to_string())?;
        let hello = subject::membership(&self.bridge.cluster, "hello");
        self.client
            .publish_with_reply_and_headers(hello, inbox, self.announcement(), Bytes::new())
            .await
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        let mut fetches = Vec::new();
        loop {
            let quiet = if started.elapsed() < GATHER_QUIET { GATHER_QUIET } else { GATHER_QUIET / 2 };
            let left = GATHER_MAX.saturating_sub(started.elapsed());
            let Ok(Some(m)) = tokio::time::timeout(quiet.min(left), answers.next()).await else { break };
            if let Some((node, epoch, heartbeat, digest)) = announced(m.headers.as_ref()) {
                let learned = self.directory.beat(&node, epoch, heartbeat, digest, Instant::now());
                if learned.fetch {
                    let (client, cluster, max) =
                        (self.client.clone(), self.bridge.cluster.clone(), self.config.max_remote_ids);
                    fetches.push(fetch(client, cluster, node, epoch, digest, max));
                }
                self.learned(learned, None);
            }
            if started.elapsed() >= GATHER_MAX {
                break;
            }
        }
        let _ = answers.unsubscribe().await;
        for (node, epoch, digest, ids) in futures_util::future::join_all(fetches).await.into_iter().flatten() {
            let changes = self.directory.state(&node, epoch, digest, ids);
            self.apply(changes);
        }
        self.sync_epochs();
        self.bridge.warm_until(Instant::now() + self.heartbeat);
        Ok(())
    }

    /// The heartbeat: this node's epoch and digest.
    pub(super) async fn beat(&self) {
        let beat = subject::membership(&self.bridge.cluster, "beat");
        let _ = bounded(self.client.publish_with_headers(beat, self.announcement(), Bytes::new())).await;
    }

    /// This node now hosts `added` more, and not `removed` (the digest is already the new
    /// one: `before` was the old).
    pub(super) async fn announce_change(&self, before: u64, added: &[ComponentId], removed: &[ComponentId]) {
        let mut h = self.announcement();
        h.insert(BEFORE, format!("{before:016x}").as_str());
        let mut ops = String::new();
        for (sign, ids) in [('+', added), ('-', removed)] {
            for id in ids {
                ops.push(sign);
                ops.push_str(id.as_str());
                ops.push('\n');
            }
        }
        let change = subject::membership(&self.bridge.cluster, "change");
        let _ = bounded(self.client.publish_with_headers(change, h, Bytes::from(ops))).await;
    }

    /// This node leaves: the others stop sending to it now (its links still settle what is
    /// in flight while it drains).
    pub(super) async fn say_bye(&self) {
        let bye = subject::membership(&self.bridge.cluster, "bye");
        let _ = bounded(self.client.publish_with_headers(bye, self.announcement(), Bytes::new())).await;
    }

    /// A message on `sy.<c>.n.*` from another node.
    pub(super) async fn membership_message(&mut self, m: Message) {
        // `sy.<cluster>.n.<verb>`: the cluster's name holds no dot.
        let verb = m.subject.as_str().splitn(4, '.').nth(3).unwrap_or("");
        let Some((node, epoch, heartbeat, digest)) = announced(m.headers.as_ref()) else {
            // Nobody's announcement (no or a bad `sy-node`, epoch, digest): dropped, counted.
            self.directory.refused += 1;
            self.apply(Vec::new());
            return;
        };
        if node == self.bridge.node {
            return;
        }
        let now = Instant::now();
        match verb {
            "hello" => {
                if let Some(reply) = m.reply.clone().filter(|r| wire::answerable(r)) {
                    let _ = bounded(self.client.publish_with_headers(reply, self.announcement(), Bytes::new())).await;
                }
                let learned = self.directory.beat(&node, epoch, heartbeat, digest, now);
                self.learned(learned, Some((&node, epoch, digest)));
            }
            "beat" => {
                let learned = self.directory.beat(&node, epoch, heartbeat, digest, now);
                self.learned(learned, Some((&node, epoch, digest)));
            }
            "change" => {
                let before = m.headers.as_ref().and_then(|h| hex(h, BEFORE));
                let (mut added, mut removed) = (Vec::new(), Vec::new());
                for line in String::from_utf8_lossy(&m.payload).lines().take(directory::IDS_PER_PAGE) {
                    let (sign, id) = line.split_at(line.len().min(1));
                    match (sign, ComponentId::new(id)) {
                        ("+", Ok(id)) => added.push(id),
                        ("-", Ok(id)) => removed.push(id),
                        _ => {}
                    }
                }
                let learned = match before {
                    Some(before) => self.directory.change(&node, epoch, heartbeat, before, digest, added, removed, now),
                    None => self.directory.beat(&node, epoch, heartbeat, digest, now),
                };
                self.learned(learned, Some((&node, epoch, digest)));
            }
            "bye" => {
                let changes = self.directory.bye(&node, Some(epoch));
                self.apply(changes);
                self.sync_epochs();
                self.link_peer_gone(&node);
            }
            _ => {
                self.directory.refused += 1;
                self.apply(Vec::new());
            }
        }
    }

    /// Acts on what the directory learned from `node` (at `epoch`, announcing `digest`):
    /// the registry, the links, a fetch.
    fn learned(&mut self, learned: Learned, from: Option<(&str, u64, u64)>) {
        let Learned { changes, fetch, new_epoch } = learned;
        self.apply(changes);
        let Some((node, epoch, digest)) = from else { return };
        if new_epoch {
            self.sync_epochs();
            self.link_peer_restarted(node, epoch);
        }
        if fetch {
            self.start_fetch(node, epoch, digest);
        }
    }

    /// Fetches `node`'s ids in a task of its own (one at a time per node); the result comes
    /// back to the loop (`Loop::fetched`).
    fn start_fetch(&mut self, node: &str, epoch: u64, digest: u64) {
        if !self.fetching.insert(node.to_string()) {
            return;
        }
        self.bridge.counters.state_fetches.fetch_add(1, Ordering::Relaxed);
        let (client, cluster, max) = (self.client.clone(), self.bridge.cluster.clone(), self.config.max_remote_ids);
        let tx = self.fetched_tx.clone();
        let node = node.to_string();
        self.inflight.spawn(async move {
            let got = fetch(client, cluster, node.clone(), epoch, digest, max).await;
            let _ = tx.send((node, got)).await;
        });
    }

    /// A fetch ended: its ids into the directory (if they are still current), and a new
    /// fetch if the node changed meanwhile. A fetch that failed (the node did not answer,
    /// or changed while it was read) is tried again at the node's next heartbeat, not at
    /// once: a node that never answers costs one fetch a heartbeat, not a loop.
    pub(super) fn fetched(&mut self, node: String, got: Option<Fetched>) {
        self.fetching.remove(&node);
        let Some((node, epoch, digest, ids)) = got else { return };
        let changes = self.directory.state(&node, epoch, digest, ids);
        self.apply(changes);
        if let Some((_, epoch, digest)) = self.directory.stale().into_iter().find(|(n, _, _)| *n == node) {
            self.start_fetch(&node, epoch, digest);
        }
    }

    /// Forgets the nodes silent for three of their own heartbeats.
    pub(super) fn expire_nodes(&mut self, now: Instant) {
        let (changes, gone) = self.directory.expire(now);
        self.bridge.counters.nodes_expired.fetch_add(gone.len() as u64, Ordering::Relaxed);
        self.apply(changes);
        if !gone.is_empty() {
            self.sync_epochs();
        }
        for node in gone {
            self.link_peer_gone(&node);
        }
    }

    /// Tells the link receiver which epochs membership knows.
    fn sync_epochs(&self) {
        self.bridge.set_epochs(self.directory.epochs());
    }

    /// Puts ids other nodes host into the registry as remote destinations, and takes out
    /// those no node hosts any more (a local component of the same id is left alone).
    pub(super) fn apply(&self, changes: Vec<Change>) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        for c in changes {
            match c {
                Change::Reachable(id) => {
                    let target = Arc::new(RemoteTarget { id: id.clone(), bridge: self.bridge.clone() });
                    inner.registry.add_remote(id, target);
                }
                Change::Unreachable(id) => inner.registry.remove_remote(&id),
            }
        }
        let c = &self.bridge.counters;
        c.remote_nodes.store(self.directory.node_count(), Ordering::Relaxed);
        c.remote_components.store(self.directory.id_count(), Ordering::Relaxed);
        c.directory_refused.store(self.directory.refused, Ordering::Relaxed);
        self.bridge.notify_changed();
    }

    /// Takes the digest of what this node serves now (after a change); returns the one
    /// before.
    pub(super) fn rehash(&mut self) -> u64 {
        let before = self.digest;
        self.digest = digest_of(self.bridge.served.read().iter());
        before
    }
}

/// Answers other nodes' fetches of this node's ids (`sy.<c>.s.<node>`): page `sy-page` of
/// them in name order (the order `Served` keeps them in), from a copy made once per change
/// of the set (not per request).
pub(super) async fn serve_state(mut sub: Subscriber, client: Client, bridge: Arc<Bridge>) {
    // (the set's change count, its digest, its ids)
    let mut copy: (Option<u64>, u64, Arc<Vec<ComponentId>>) = (None, 0, Arc::new(Vec::new()));
    while let Some(m) = sub.next().await {
        let Some(reply) = m.reply.clone().filter(|r| wire::answerable(r)) else { continue };
        let page: usize =
            m.headers.as_ref().and_then(|h| h.get(PAGE)).and_then(|v| v.as_str().parse().ok()).unwrap_or(0);
        let (digest, ids) = {
            let served = bridge.served.read();
            if copy.0 != Some(served.changes()) {
                copy = (Some(served.changes()), digest_of(served.iter()), Arc::new(served.iter().cloned().collect()));
            }
            (copy.1, copy.2.clone())
        };
        let pages = ids.len().div_ceil(directory::IDS_PER_PAGE).max(1);
        let from = (page * directory::IDS_PER_PAGE).min(ids.len());
        let to = (from + directory::IDS_PER_PAGE).min(ids.len());
        let mut h = HeaderMap::new();
        h.insert(wire::NODE, bridge.node.as_str());
        h.insert(EPOCH, format!("{:016x}", bridge.epoch).as_str());
        h.insert(DIGEST, format!("{digest:016x}").as_str());
        h.insert(PAGES, pages.to_string().as_str());
        let _ = client.publish_with_headers(reply, h, Bytes::from(directory::encode(&ids[from..to]))).await;
    }
}
