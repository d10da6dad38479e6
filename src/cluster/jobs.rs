//! The jobs the bridge hands to the I/O thread (`bridge.rs` queues them, `io.rs` runs
//! them), and what rides with a message for another node: where a remote component's
//! messages go, where a remote request's outcome goes, how a stored message is settled.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::Sender;

use super::ReconnectBuffer;
use super::bridge::Bridge;
use crate::envelope::MessageEnvelope;
use crate::error::RequestError;
use crate::id::ComponentId;

/// A component hosted by other nodes: where its messages go.
pub(crate) struct RemoteTarget {
    pub(crate) id: ComponentId,
    pub(crate) bridge: Arc<Bridge>,
}

/// A request that came from another node: where its one outcome goes.
pub(crate) struct RemoteReply {
    /// The requester's NATS reply subject.
    pub(crate) reply_to: String,
    pub(crate) bridge: Arc<Bridge>,
}

/// An at-least-once message the stream offered to this node: how its one settlement (ack,
/// give back, stop offering) gets back to the stream. It rides in the mailbox with the
/// message; the turn settles it when the handler returned.
pub(crate) struct Receipt {
    msg: async_nats::jetstream::Message,
    bridge: Arc<Bridge>,
    /// The stream's delivery count of this offer (1 for the first).
    pub(crate) delivered: u32,
    /// The component's attempt limit: a failed handling of this offer or a later one is
    /// the last (the consumer itself sets no delivery cap).
    pub(crate) max_attempts: u32,
}

impl Receipt {
    pub(crate) fn new(
        msg: async_nats::jetstream::Message,
        bridge: Arc<Bridge>,
        delivered: u32,
        max_attempts: u32,
    ) -> Self {
        Self { msg, bridge, delivered, max_attempts }
    }

    /// The stored message's payload.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.msg.payload
    }

    /// True when a failed handling of this offer dead-letters the message.
    pub(crate) fn is_last(&self) -> bool {
        self.delivered >= self.max_attempts
    }

    /// Handled: the stream forgets the message.
    pub(crate) fn ack(self) {
        self.settle(async_nats::jetstream::AckKind::Ack);
    }

    /// Not handled here: the stream offers it again (to this node or another), after
    /// `delay` if given.
    pub(crate) fn give_back(self, delay: Option<Duration>) {
        self.bridge.counters.durable_returned.fetch_add(1, Ordering::Relaxed);
        self.settle(async_nats::jetstream::AckKind::Nak(delay));
    }

    /// Dead-lettered here for good: the stream stops offering it.
    pub(crate) fn stop_offering(self) {
        self.settle(async_nats::jetstream::AckKind::Term);
    }

    fn settle(self, kind: async_nats::jetstream::AckKind) {
        let bridge = self.bridge.clone();
        // Unbounded: at most the consumer's pending limit of receipts exist per component.
        // If the bridge stopped, the stream offers the message again after its ack wait.
        bridge.control(Control::Settle { msg: Box::new(self.msg), kind });
    }
}

/// A job for the I/O thread that a sender may be refused (the bounded outbound queue).
pub(crate) enum Outbound {
    /// A one-way message, on a link to a node hosting its target (`links.rs`).
    Send { env: MessageEnvelope },
    /// An at-least-once message, stored in the cluster's stream (`subject` is the
    /// component's `sy.<cluster>.d.<id>`).
    Durable { subject: String, env: MessageEnvelope, guarantee: crate::DeliveryGuarantee },
    /// A request; its answer completes the pending request here (the one under
    /// `deadline`, if the requester waits in the pending table).
    Request { subject: String, env: MessageEnvelope, timeout: Duration, deadline: Option<crate::timer::TimerKey> },
    /// A publish to the other nodes' subscribers of its topic.
    Publish { env: MessageEnvelope },
    /// A send to an id no node was known to host while membership was warming up: it
    /// waits (up to `timeout`) for a node that does (`Bridge::forward_unresolved`).
    Unresolved {
        env: MessageEnvelope,
        guarantee: crate::DeliveryGuarantee,
        timeout: Duration,
        deadline: Option<crate::timer::TimerKey>,
    },
}

/// A job in the outbound queue, and what it holds of the reconnect buffer.
pub(crate) struct Queued {
    pub(crate) job: Outbound,
    /// The bytes it reserved in the reconnect buffer (sent while cut off), given back when
    /// it leaves the node or ends there.
    pub(crate) reserved: Option<usize>,
}

impl Outbound {
    fn env(&self) -> &MessageEnvelope {
        match self {
            Outbound::Send { env, .. }
            | Outbound::Durable { env, .. }
            | Outbound::Request { env, .. }
            | Outbound::Unresolved { env, .. }
            | Outbound::Publish { env } => env,
        }
    }

    /// What a message counts in the reconnect buffer's bytes.
    pub(super) fn buffered_size(&self) -> usize {
        self.env().payload.len() + ReconnectBuffer::OVERHEAD
    }

    /// The component it is for (the publisher, for a publish).
    pub(crate) fn target(&self) -> &ComponentId {
        &self.env().to
    }

    pub(super) fn payload_len(&self) -> usize {
        self.env().payload.len()
    }

    pub(crate) fn into_envelope(self) -> MessageEnvelope {
        match self {
            Outbound::Send { env, .. }
            | Outbound::Durable { env, .. }
            | Outbound::Request { env, .. }
            | Outbound::Unresolved { env, .. }
            | Outbound::Publish { env } => env,
        }
    }
}

/// A job for the I/O thread that must not be refused (an unbounded queue: each is bounded
/// by something else, the components registered or the requests pending).
// The answer variant holds an envelope by value: one per request from another node, moved
// once; boxing it would add an allocation to each.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Control {
    /// Serve this local component to the cluster.
    Host(ComponentId),
    /// Stop serving it.
    Unhost(ComponentId),
    /// The outcome of a request from another node.
    Answer { reply_to: String, result: Result<MessageEnvelope, RequestError> },
    /// The settlement of an at-least-once message the stream offered.
    Settle { msg: Box<async_nats::jetstream::Message>, kind: async_nats::jetstream::AckKind },
    /// Ask the nodes serving these subjects' components for their health, within the timeout.
    Health { subjects: Vec<String>, timeout: Duration, reply: Sender<Vec<(Option<String>, crate::HealthStatus)>> },
    /// Stop taking at-least-once messages from the stream (the runtime is shutting down:
    /// what it would take now it could only give back).
    StopReading,
    /// Drain the client, which ends its connection task: the one way to have it gone
    /// (as if it had panicked) without a bug in the client (`client.rs`' tests).
    #[cfg(test)]
    EndClientTask,
    /// Leave the cluster's membership and stop serving the components here (the runtime
    /// starts to shut down), while what is in flight still gets its outcome.
    Leave,
    /// Leave the cluster: finish what is queued, wait up to the grace for answers in
    /// flight, dead-letter the rest, say `bye`, close.
    Stop { grace: Duration },
}
