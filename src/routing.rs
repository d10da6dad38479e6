//! `RoutingStrategy`: the routing contract of the earlier design, and the runtime's direct
//! implementation of it.

use crate::envelope::MessageEnvelope;
use crate::error::SendError;

/// Routes an envelope to its destination.
///
/// The contract: validate the envelope, resolve its target, deliver it (or fail without
/// side effects on the target), and count the outcome. Implementations must be cheap and
/// non-blocking; they are called on senders' threads.
///
/// The envelope is borrowed, so an implementation that delivers it clones it; a failure
/// returns that clone in the [`SendError`].
pub trait RoutingStrategy: Send + Sync {
    /// Routes `envelope`.
    ///
    /// # Errors
    /// [`SendError`] describing why it was not delivered.
    fn route(&self, envelope: &MessageEnvelope) -> Result<(), SendError>;
}

/// The runtime's own strategy: direct delivery into the target's mailbox (at-most-once,
/// non-blocking), the same path as [`crate::RuntimeHandle::try_send`].
#[cfg(not(loom))]
#[derive(Clone)]
pub struct DirectRouting {
    handle: crate::RuntimeHandle,
}

#[cfg(not(loom))]
impl DirectRouting {
    /// Routes through `handle`'s runtime.
    pub fn new(handle: crate::RuntimeHandle) -> Self {
        Self { handle }
    }
}

#[cfg(not(loom))]
impl RoutingStrategy for DirectRouting {
    fn route(&self, envelope: &MessageEnvelope) -> Result<(), SendError> {
        self.handle.try_send(envelope.clone())
    }
}
