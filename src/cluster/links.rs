//! One-way messages between nodes on links (`session.rs`): the I/O loop's sending side
//! (picking a replica, batching, resending, settling what the acknowledgements say) and the
//! receiving side (a task that settles each batch into the mailboxes and acknowledges it).
//!
//! A batch is one NATS message on the receiving node's link subject
//! (`subject::link`), its headers naming the sender (`sy-node`), the session
//! (`sy-epochs`: the sender's epoch and the receiver's, in hex, dot-separated), the first
//! sequence number (`sy-seq`) and the sender's cumulative acknowledgement so far
//! (`sy-acked`); its payload the messages as frames (`frame.rs`). The acknowledgement goes
//! to the sender's acknowledgement subject (`subject::link_ack`) with `sy-node`,
//! `sy-epochs`, `sy-ack` (every message up to it is settled), `sy-gap: 1` if the batch
//! started past a message the receiver never got (the sender resends at once), and the
//! refusals as payload; or, for a batch the receiver cannot take, `sy-nack`: `epoch` (it is
//! not the session's receiver: it restarted) or `sender` (it does not know the sender's
//! epoch yet).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_nats::{Client, HeaderMap, Message, Subscriber};
use bytes::BytesMut;
use futures_util::StreamExt;

use super::bridge::Bridge;
use super::io::{Loop, bounded};
use super::outbound::{failed, forwarded, reason_of};
use super::session::{Ack, RecvLink, SendLink, Settled};
use super::{frame, subject, wire};
use crate::deadletter::DeadLetterReason;
use crate::envelope::{MessageEnvelope, MessageType};
use crate::runtime::Inner;

/// Messages a link has sent and not seen settled, at most.
pub(super) const WINDOW: usize = 4096;
/// Messages in one batch, at most.
const BATCH_FRAMES: usize = 512;
/// Bytes of one batch's frames, at most (and the server's `max_payload` less room for the
/// headers, if smaller).
const BATCH_BYTES: usize = 512 << 10;

pub(super) const NODE: &str = wire::NODE;
const EPOCHS: &str = "sy-epochs";
const SEQ: &str = "sy-seq";
const ACKED: &str = "sy-acked";
const ACK: &str = "sy-ack";
const NACK: &str = "sy-nack";
const GAP: &str = "sy-gap";

/// Times a message is passed to another replica after a refusal by one that was leaving.
const MAX_PASSES: u32 = 8;

/// A refusal by a node that is going away or no longer runs the component: it took nothing.
fn passes_on(status: &str) -> bool {
    matches!(status, "closed" | "shutdown" | "unregistered" | "no_such_component" | "component_stopped")
}

/// A one-way message on its way to another node.
pub(super) struct Pending {
    pub(super) env: MessageEnvelope,
    /// Held back by an outage: until then, a full mailbox on the receiving node is asked
    /// again rather than final (the burst when the connection comes back).
    pub(super) patience: Option<Instant>,
    /// Times a full mailbox refused it.
    tries: u32,
}

impl Pending {
    pub(super) fn new(env: MessageEnvelope, patience: Option<Instant>) -> Self {
        Self { env, patience, tries: 0 }
    }
}

fn epochs(sender: u64, receiver: u64) -> String {
    format!("{sender:016x}.{receiver:016x}")
}

fn parse_epochs(h: &HeaderMap) -> Option<(u64, u64)> {
    let (s, r) = h.get(EPOCHS)?.as_str().split_once('.')?;
    Some((u64::from_str_radix(s, 16).ok()?, u64::from_str_radix(r, 16).ok()?))
}

fn number(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.as_str().parse().ok()
}

impl Loop {
    /// Puts a one-way message on the link to a node hosting its target (the nodes take turns);
    /// dead-letters it if none does.
    pub(super) fn send_on_link(&mut self, p: Pending) {
        let nodes = self.directory.nodes_hosting(&p.env.to);
        if nodes.is_empty() {
            if let Some(inner) = self.inner.upgrade() {
                failed(&inner, &self.bridge, p.env, DeadLetterReason::NoSuchComponent);
            }
            return;
        }
        self.turn = self.turn.wrapping_add(1);
        let node = nodes[self.turn % nodes.len()].clone();
        let Some(epoch) = self.directory.epoch_of(&node) else { return };
        if p.patience.is_some() {
            self.held += 1;
        }
        self.links.entry(node).or_insert_with(|| SendLink::new(epoch, WINDOW)).push(p);
    }

    /// True while messages that an outage held back are still unsettled: a message sent now
    /// goes behind them and is as patient with a full mailbox.
    pub(super) fn holds(&self) -> bool {
        self.held > 0
    }

    /// Sends what the links may send now, in batches.
    pub(super) async fn flush_links(&mut self) {
        if !self.bridge.connected.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let max_bytes = BATCH_BYTES.min(self.bridge.max_payload().saturating_sub(wire::HEADER_ROOM)).max(1);
        let nodes: Vec<String> = self.links.iter().filter(|(_, l)| l.can_send()).map(|(n, _)| n.clone()).collect();
        for node in nodes {
            while let Some(link) = self.links.get_mut(&node).filter(|l| l.can_send()) {
                let peer = link.peer_epoch();
                let mut bytes = 0;
                let Some(batch) = link.next_batch(now, BATCH_FRAMES, |p| {
                    bytes += frame::size(&p.env);
                    bytes <= max_bytes
                }) else {
                    break;
                };
                let (first, acked) = (batch.first, batch.acked);
                self.link_buf.clear();
                for p in &batch.messages {
                    frame::encode(&p.env, &mut self.link_buf);
                }
                let payload = self.link_buf.split().freeze();
                self.publish_batch(&node, peer, first, acked, payload).await;
            }
        }
    }

    async fn publish_batch(&self, node: &str, peer: u64, first: u64, acked: u64, payload: bytes::Bytes) {
        let mut h = HeaderMap::new();
        h.insert(NODE, self.bridge.node.as_str());
        h.insert(EPOCHS, epochs(self.bridge.epoch, peer).as_str());
        h.insert(SEQ, first.to_string().as_str());
        h.insert(ACKED, acked.to_string().as_str());
        self.bridge.counters.link_batches.fetch_add(1, Ordering::Relaxed);
        // A publish that does not get into the client (it is reconnecting) is lost like one
        // lost on the way: the link resends it.
        let _ = bounded(self.client.publish_with_headers(subject::link(&self.bridge.cluster, node), h, payload)).await;
    }

    /// Resends what each link has unsettled: the connection came back (`only_due` false:
    /// what was in flight may be lost, and the give-up clocks start over), or an
    /// acknowledgement is late. Nothing while cut off: the reconnection resends it all.
    pub(super) async fn resend_links(&mut self, only_due: bool) {
        if !self.bridge.connected.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        if !only_due {
            for link in self.links.values_mut() {
                link.reconnected(now);
            }
        }
        let timeout = self.ack_timeout;
        let give_up = self.link_give_up;
        let nodes: Vec<String> = self
            .links
            .iter()
            .filter(|(_, l)| l.unsettled() > 0 && (!only_due || l.due(now, timeout) || l.stalled_for(now, give_up)))
            .map(|(n, _)| n.clone())
            .collect();
        for node in nodes {
            self.resend_link(&node, now).await;
        }
    }

    /// Resends what the link to `node` has unsettled, or gives up on it (no progress for
    /// the give-up time).
    async fn resend_link(&mut self, node: &str, now: Instant) {
        let give_up = self.link_give_up;
        let Some(link) = self.links.get_mut(node) else { return };
        if link.stalled_for(now, give_up) {
            // Asked long enough: what it holds ends unknown (the node may have taken some of
            // it), and the link starts over with the rest.
            let why = format!("{node} did not acknowledge it within {give_up:?}: delivered or not, unknown");
            let (unknown, queued) = link.close(&why);
            let epoch = link.peer_epoch();
            *link = SendLink::new(epoch, WINDOW);
            for q in queued {
                link.push(q);
            }
            for s in unknown {
                self.end_link_message(node, s);
            }
            return;
        }
        let peer = link.peer_epoch();
        let batches: Vec<(u64, u64, bytes::Bytes)> = link
            .resend(now, BATCH_FRAMES)
            .into_iter()
            .map(|b| {
                let mut buf = BytesMut::new();
                for p in &b.messages {
                    frame::encode(&p.env, &mut buf);
                }
                (b.first, b.acked, buf.freeze())
            })
            .collect();
        self.bridge.counters.link_resends.fetch_add(batches.len() as u64, Ordering::Relaxed);
        for (first, acked, payload) in batches {
            self.publish_batch(node, peer, first, acked, payload).await;
        }
    }

    /// An acknowledgement (or refusal) of one of this node's batches.
    pub(super) async fn link_ack(&mut self, m: Message) {
        let Some(h) = m.headers.as_ref() else { return };
        let (Some(node), Some((sender, receiver))) = (h.get(NODE).map(|v| v.as_str().to_string()), parse_epochs(h))
        else {
            return;
        };
        if sender != self.bridge.epoch {
            return; // for an earlier run of this node
        }
        let Some(link) = self.links.get_mut(&node) else { return };
        if let Some(why) = h.get(NACK) {
            if why.as_str() == "epoch" && receiver != link.peer_epoch() {
                // The receiving node restarted: what the old one may have taken is unknown.
                let text = format!("{node} restarted after it was sent: delivered or not, unknown");
                for s in link.peer_restarted(receiver, &text) {
                    self.end_link_message(&node, s);
                }
            }
            // `sender`: the receiving node does not know this node's epoch yet; the batch
            // is sent again when the acknowledgement is late.
            return;
        }
        let (Some(cum), Some(refused)) = (number(h, ACK), frame::decode_refusals(&m.payload)) else {
            return;
        };
        let now = Instant::now();
        let settled = link.on_ack(receiver, cum, &refused, now);
        let resend = h.get(GAP).is_some() && receiver == link.peer_epoch() && link.gap_reported(now);
        for s in settled {
            self.end_link_message(&node, s);
        }
        if resend {
            self.resend_link(&node, now).await;
        }
    }

    /// How a message on a link ended: counted forwarded, dead-lettered here, or (a full
    /// mailbox, while the outage's patience lasts) sent again after a pause.
    fn end_link_message(&mut self, node: &str, s: Settled<Pending>) {
        let Some(inner) = self.inner.upgrade() else { return };
        let p = match &s {
            Settled::Taken(p) | Settled::Refused(p, _) | Settled::Unknown(p, _) => p,
        };
        if p.patience.is_some() {
            self.held = self.held.saturating_sub(1);
        }
        match s {
            Settled::Taken(_) => forwarded(&inner, &self.bridge),
            Settled::Refused(mut p, (status, text)) => {
                let now = Instant::now();
                if status == "mailbox_full" && p.patience.is_some_and(|until| now < until) {
                    p.tries += 1;
                    let pause = Duration::from_millis(5 * u64::from(p.tries.min(50)));
                    self.held += 1;
                    self.delayed.push_back((now + pause, p));
                } else if passes_on(&status) && p.tries < MAX_PASSES {
                    // The node is leaving (it took nothing): another replica may take it, once
                    // membership has its bye (the pause).
                    p.tries += 1;
                    if p.patience.is_some() {
                        self.held += 1;
                    }
                    let pause = Duration::from_millis(20 * u64::from(p.tries));
                    self.delayed.push_back((now + pause, p));
                } else {
                    let _ = node;
                    failed(&inner, &self.bridge, p.env, reason_of(&status, &text));
                }
            }
            Settled::Unknown(p, why) => {
                failed(&inner, &self.bridge, p.env, DeadLetterReason::Transport { detail: why })
            }
        }
    }

    /// Sends again the messages a full mailbox refused whose pause is over.
    pub(super) fn retry_delayed(&mut self) {
        let now = Instant::now();
        if self.next_delayed().is_none_or(|at| at > now) {
            return;
        }
        let (due, later): (VecDeque<_>, VecDeque<_>) =
            std::mem::take(&mut self.delayed).into_iter().partition(|(at, _)| *at <= now);
        self.delayed = later;
        for (_, p) in due {
            if p.patience.is_some() {
                self.held = self.held.saturating_sub(1);
            }
            self.send_on_link(p);
        }
    }

    /// When the next delayed message is due.
    pub(super) fn next_delayed(&self) -> Option<Instant> {
        self.delayed.iter().map(|(at, _)| *at).min()
    }

    /// `node` restarted (a new epoch): its link starts a new session.
    pub(super) fn link_peer_restarted(&mut self, node: &str, epoch: u64) {
        let Some(link) = self.links.get_mut(node) else { return };
        if link.peer_epoch() == epoch {
            return;
        }
        let text = format!("{node} restarted after it was sent: delivered or not, unknown");
        for s in link.peer_restarted(epoch, &text) {
            self.end_link_message(node, s);
        }
    }

    /// `node` left (or fell silent): what its link had not sent goes to another replica
    /// (or is dead-lettered: no node hosts its target). What it sent stays, waiting for
    /// the acknowledgement a node that left while draining still sends (or the link gives
    /// up on it).
    pub(super) fn link_peer_gone(&mut self, node: &str) {
        let Some(link) = self.links.get_mut(node) else { return };
        let queued = link.take_queued();
        if link.unsettled() == 0 {
            self.links.remove(node);
        }
        for p in queued {
            if p.patience.is_some() {
                self.held = self.held.saturating_sub(1);
            }
            self.send_on_link(p);
        }
    }

    /// Ends every link (this node stops): the unsettled end unknown, the unsent were never
    /// sent.
    pub(super) fn close_links(&mut self, why: &str) {
        let links: Vec<(String, SendLink<Pending>)> = self.links.drain().collect();
        for (node, mut link) in links {
            let (unknown, queued) = link.close(why);
            for s in unknown {
                self.end_link_message(&node, s);
            }
            if let Some(inner) = self.inner.upgrade() {
                for p in queued {
                    let detail = "this node left the cluster before sending it".to_string();
                    failed(&inner, &self.bridge, p.env, DeadLetterReason::Transport { detail });
                }
            }
        }
        if let Some(inner) = self.inner.upgrade() {
            for (_, p) in self.delayed.drain(..) {
                let detail = "this node left the cluster before sending it".to_string();
                failed(&inner, &self.bridge, p.env, DeadLetterReason::Transport { detail });
            }
        }
        self.held = 0;
    }

    /// Messages on links not yet settled (sent or not).
    pub(super) fn links_busy(&self) -> bool {
        self.link_load() > 0
    }

    /// Messages the links hold (queued, sent and not settled, waiting to be sent again):
    /// they count against the node's outbound capacity, with the round trips in flight.
    pub(super) fn link_load(&self) -> usize {
        self.delayed.len() + self.links.values().map(|l| l.unsettled() + l.queued()).sum::<usize>()
    }
}

/// Reads this node's link subject: settles each batch into the mailboxes (`RecvLink`) and
/// acknowledges it to its sender. Sessions are kept per sending node, for the sender's
/// epoch that membership knows (a batch from an epoch it does not know is refused: it may
/// be a late batch of an earlier run of that node).
pub(super) async fn receive(mut sub: Subscriber, client: Client, bridge: Arc<Bridge>, inner: Weak<Inner>) {
    let mut links: HashMap<String, (u64, RecvLink)> = HashMap::new();
    while let Some(m) = sub.next().await {
        let Some(h) = m.headers.as_ref() else {
            bridge.counters.inbound_refused.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        // The sender's name becomes the subject of the acknowledgement: a name that is no
        // subject token is nobody's.
        let node = h.get(NODE).map(|v| v.as_str().to_string()).filter(|n| subject::valid_cluster_name(n));
        let (Some(node), Some((sender, receiver)), Some(first), Some(acked)) =
            (node, parse_epochs(h), number(h, SEQ), number(h, ACKED))
        else {
            // This node's own probe when it joined (its permission to publish here) is no
            // batch; anything else like it is nobody's.
            if h.get(NODE).is_none_or(|n| n.as_str() != bridge.node) {
                bridge.counters.inbound_refused.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        };
        let refusal = if receiver != bridge.epoch {
            Some("epoch")
        } else if bridge.epoch_of(&node) != Some(sender) {
            Some("sender")
        } else {
            None
        };
        let mut ack = HeaderMap::new();
        ack.insert(NODE, bridge.node.as_str());
        ack.insert(EPOCHS, epochs(sender, bridge.epoch).as_str());
        let to = subject::link_ack(&bridge.cluster, &node);
        if let Some(why) = refusal {
            bridge.counters.inbound_refused.fetch_add(1, Ordering::Relaxed);
            ack.insert(NACK, why);
            let _ = client.publish_with_headers(to, ack, bytes::Bytes::new()).await;
            continue;
        }
        // Nodes that left take their sessions with them.
        links.retain(|n, _| bridge.epoch_of(n).is_some());
        let link = links.entry(node).or_insert_with(|| (sender, RecvLink::default()));
        if link.0 != sender {
            *link = (sender, RecvLink::default());
        }
        let Some(inner) = inner.upgrade() else { return };
        let c = &bridge.counters;
        let Ack { cum, refused, gap } = link.1.on_batch(first, acked, frame::decode(&m.payload), |f| {
            c.inbound.fetch_add(1, Ordering::Relaxed);
            let refuse = |status: &str, text: String| {
                c.inbound_refused.fetch_add(1, Ordering::Relaxed);
                Err((status.to_string(), text))
            };
            match f {
                Ok(env) if matches!(env.message_type, MessageType::FireAndForget | MessageType::Publish) => {
                    match inner.send_from_cluster(env) {
                        Ok(()) => Ok(()),
                        Err(e) => {
                            // The sending node holds the message and dead-letters it.
                            inner.count_rejection(&e);
                            refuse(e.as_dead_letter_reason().name(), e.to_string())
                        }
                    }
                }
                Ok(_) => refuse("invalid", "only one-way messages and publishes travel on links".to_string()),
                Err(why) => refuse("invalid", why),
            }
        });
        ack.insert(ACK, cum.to_string().as_str());
        if gap {
            ack.insert(GAP, "1");
        }
        let payload = if refused.is_empty() { bytes::Bytes::new() } else { frame::encode_refusals(&refused).freeze() };
        let _ = client.publish_with_headers(to, ack, payload).await;
    }
}
