//! [`ComponentRef`]: a component resolved once and sent to many times, without the
//! registry lookup of a routed send.
//!
//! A reference holds the component itself (an `Arc`); a send through it pins the
//! component's gate for its push, as a routed send pins the registry entry, and a closer
//! passes the gate before its final drain (`docs/design.md`, "Pinned and counted senders";
//! a batch, a waiting send and a request through it are counted senders). A reference
//! therefore never sends into a stale mailbox: once its component is
//! unregistered, stopped or replaced by a new registration under the same id, every send
//! through it is refused with [`SendError::Closed`] and the envelope handed back (resolve
//! again to reach the new one). Modelled in loom (`component_ref_racing_unregister`).

use std::time::Duration;

use crate::component::Component;
use crate::envelope::{DeliveryGuarantee, MessageEnvelope, MessageType};
use crate::error::{BatchError, InvalidEnvelope, SendError};
use crate::id::ComponentId;
use crate::mailbox::{Letter, Refused, Wake};
use crate::reply::ReplyHandle;
use crate::runtime::Inner;
use crate::send::{Origin, Rejected, full};
use crate::sync::Arc;
use crate::sync::channel::TrySendError;
use crate::workers::on_worker_thread;

/// A component resolved once ([`crate::RuntimeHandle::resolve`]): sends through it skip
/// the registry. Cheap to clone; valid until its component closes, then every send is
/// refused with [`SendError::Closed`] and the envelope handed back.
#[derive(Clone)]
pub struct ComponentRef {
    inner: Arc<Inner>,
    comp: Arc<Component>,
}

impl std::fmt::Debug for ComponentRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentRef").field("id", &self.comp.id).field("closed", &self.is_closed()).finish()
    }
}

/// A reference to the component registered as `id` in `inner` now.
pub(crate) fn resolve(inner: &Arc<Inner>, id: &ComponentId) -> Option<ComponentRef> {
    inner.registry.component(id).map(|comp| ComponentRef { inner: inner.clone(), comp })
}

/// Why a send through a reference was turned away before its push.
enum Refusal {
    /// The checks every send makes (payload size, the runtime still accepting).
    Checks(Rejected),
    /// The envelope cannot go through this reference.
    Invalid(InvalidEnvelope),
}

impl Refusal {
    fn with(self, env: MessageEnvelope) -> SendError {
        match self {
            Refusal::Checks(r) => r.with(env),
            Refusal::Invalid(why) => SendError::Invalid(env, why),
        }
    }
}

/// Who sends through a reference: a handler on a worker (allowed while the runtime
/// drains) or the host.
#[inline]
fn origin() -> Origin {
    if on_worker_thread() { Origin::Worker } else { Origin::Host }
}

impl ComponentRef {
    /// The runtime the component belongs to, for the typed layer's sends.
    pub(crate) fn runtime(&self) -> &Inner {
        &self.inner
    }

    /// The component's id.
    pub fn id(&self) -> &ComponentId {
        &self.comp.id
    }

    /// True once the component is closed (unregistered, stopped, or the runtime shut
    /// down): every send through this reference is then refused.
    pub fn is_closed(&self) -> bool {
        self.comp.mailbox.is_closed()
    }

    /// The checks of a send through the reference, by reference.
    #[inline]
    fn check(&self, env: &MessageEnvelope, origin: Origin) -> Result<(), Refusal> {
        self.inner.precheck(env, origin).map_err(Refusal::Checks)?;
        if env.to != self.comp.id {
            return Err(Refusal::Invalid(InvalidEnvelope::NotForThisRef));
        }
        Ok(())
    }

    /// One counted push; `count_full`: record a full mailbox in the component's stats.
    fn push(&self, letter: Letter, count_full: bool) -> Result<(), SendError> {
        match self.comp.mailbox.push_counted(letter) {
            Ok(wake) => {
                self.inner.stats.messages_routed.add(1);
                if wake == Wake::Schedule {
                    self.inner.enqueue(self.comp.clone());
                }
                Ok(())
            }
            Err(Refused::Closed(letter)) => Err(SendError::Closed(letter.env)),
            Err(Refused::Full(letter)) => Err(full(&self.comp, letter.env, count_full)),
        }
    }

    /// Sends without blocking (at-most-once), as [`crate::RuntimeHandle::try_send`] but
    /// without the registry lookup. A response is routed as any response is.
    ///
    /// # Errors
    /// [`SendError`] with the envelope handed back: `Full`, `Closed` (the component is
    /// gone, or the runtime is shutting down), `PayloadTooLarge`, `Invalid` (an envelope
    /// for another component, [`InvalidEnvelope::NotForThisRef`]).
    #[inline]
    pub fn try_send(&self, env: MessageEnvelope) -> Result<(), SendError> {
        let origin = origin();
        if env.message_type == MessageType::Response {
            return self.inner.send(env, DeliveryGuarantee::AtMostOnce, origin);
        }
        let r = self.push_one(env, origin);
        if let Err(e) = &r {
            self.inner.count_rejection(e);
        }
        r
    }

    /// One send's checks and counted push, written out as `Inner::route` writes its push:
    /// the envelope is moved once, into the letter the queue takes (each extra move of a
    /// letter through a call is a copy of nearly 200 bytes on the hot path).
    #[inline]
    fn push_one(&self, env: MessageEnvelope, origin: Origin) -> Result<(), SendError> {
        let letter = Letter::new(env, DeliveryGuarantee::AtMostOnce, None);
        if let Err(why) = self.check(&letter.env, origin) {
            return Err(why.with(letter.env));
        }
        // Pinned through the gate for the push (not counted on the state word, which the
        // worker touches too: one RMW there instead of two).
        let mailbox = &self.comp.mailbox;
        let _pin = mailbox.hold_gate();
        if !mailbox.pinned_open() {
            return Err(SendError::Closed(letter.env));
        }
        match mailbox.queue().try_send(letter) {
            Ok(()) => {
                self.inner.stats.messages_routed.add(1);
                if mailbox.pinned_delivered() == Wake::Schedule {
                    self.inner.enqueue(self.comp.clone());
                }
                Ok(())
            }
            Err(TrySendError::Full(letter)) | Err(TrySendError::Disconnected(letter)) => {
                Err(full(&self.comp, letter.env, true))
            }
        }
    }

    /// Sends, waiting up to `timeout` for room, as [`crate::RuntimeHandle::send_timeout`]
    /// (on a worker thread it does not wait).
    ///
    /// # Errors
    /// As [`ComponentRef::try_send`], and `Timeout` when the mailbox stayed full.
    pub fn send_timeout(&self, env: MessageEnvelope, timeout: Duration) -> Result<(), SendError> {
        if on_worker_thread() || env.message_type == MessageType::Response {
            return self.try_send(env);
        }
        let r = match self.check(&env, Origin::Host) {
            Ok(()) => self.inner.push_waiting(&self.comp, env, DeliveryGuarantee::AtMostOnce, timeout),
            Err(why) => Err(why.with(env)),
        };
        if let Err(e) = &r {
            self.inner.count_rejection(e);
        }
        r
    }

    /// Sends a batch of one-way messages, as [`crate::RuntimeHandle::send_batch`]: one
    /// sender registration for the whole batch and at most one schedule.
    ///
    /// # Errors
    /// [`BatchError`]: how many went in, the refused envelope, and the rest in order.
    pub fn send_batch(&self, batch: Vec<MessageEnvelope>) -> Result<(), BatchError> {
        let origin = origin();
        let mut envelopes = batch.into_iter();
        let Some(first) = envelopes.next() else {
            return Ok(());
        };
        let (sent, refused) = self.push_batch(first, &mut envelopes, origin);
        match refused {
            None => Ok(()),
            Some(error) => {
                self.inner.count_rejection(&error);
                Err(BatchError { sent, error, rest: envelopes.collect() })
            }
        }
    }

    /// The pushes of a batch under one sender permit: `SENDERS += 1`, k pushes, then one
    /// `SENDERS -= 1, SCHEDULED := 1` that publishes them all (as a pinned batch's RMW does).
    fn push_batch(
        &self,
        first: MessageEnvelope,
        rest: &mut std::vec::IntoIter<MessageEnvelope>,
        origin: Origin,
    ) -> (usize, Option<SendError>) {
        let one_way = |env: &MessageEnvelope| env.message_type == MessageType::FireAndForget;
        let Ok(permit) = self.comp.mailbox.begin_send() else {
            return (0, Some(SendError::Closed(first)));
        };
        let mut sent = 0;
        let mut next = Some(first);
        let refused = loop {
            let Some(env) = next.take().or_else(|| rest.next()) else {
                break None;
            };
            if let Err(why) = self.check(&env, origin) {
                break Some(why.with(env));
            }
            if !one_way(&env) {
                break Some(SendError::Invalid(env, InvalidEnvelope::NotInBatch));
            }
            let letter = Letter::new(env, DeliveryGuarantee::AtMostOnce, None);
            match self.comp.mailbox.queue().try_send(letter) {
                Ok(()) => sent += 1,
                Err(crate::sync::channel::TrySendError::Full(letter))
                | Err(crate::sync::channel::TrySendError::Disconnected(letter)) => {
                    break Some(full(&self.comp, letter.env, true));
                }
            }
        };
        if sent == 0 {
            permit.undelivered();
        } else {
            self.inner.stats.messages_routed.add(sent as u64);
            if permit.delivered() == Wake::Schedule {
                self.inner.enqueue(self.comp.clone());
            }
        }
        (sent, refused)
    }

    /// Sends a request from the host, as [`crate::RuntimeHandle::request`] but without the
    /// registry lookup.
    ///
    /// # Errors
    /// As [`crate::RuntimeHandle::request`]; `Closed` once the component is gone.
    pub fn request(&self, env: MessageEnvelope, timeout: Duration) -> Result<ReplyHandle, SendError> {
        if let Err(why) = self.check(&env, Origin::Host) {
            let e = why.with(env);
            self.inner.count_rejection(&e);
            return Err(e);
        }
        self.inner.request_host_with(env, timeout, |env, ticket| {
            self.push(Letter::new(env, DeliveryGuarantee::AtMostOnce, Some(ticket)), true)
        })
    }
}
