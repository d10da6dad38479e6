//! Request-response bookkeeping: the table of pending requests, and the host's reply handle.
//!
//! Exactly one outcome per request: a response, the timer's expiry, a dead-lettered request
//! and shutdown all complete a request by *removing* its entry from the pending table, and
//! only the one that removes it delivers an outcome. Whoever comes second finds nothing: a
//! late response is dead-lettered, a late expiry does nothing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};
#[cfg(not(loom))]
use std::time::{Duration, Instant};

use crate::component::Component;
use crate::envelope::MessageEnvelope;
use crate::error::RequestError;
#[cfg(not(loom))]
use crate::error::WaitTimeoutError;
use crate::id::{ComponentId, IdBuildHasher};
use crate::sync::map::ShardedMap;
use crate::sync::{Arc, Condvar, Mutex};
use crate::timer::TimerKey;

/// Who waits for a request's outcome.
#[derive(Clone)]
pub(crate) enum Requester {
    /// A host thread, through a [`ReplyHandle`].
    Host(Arc<ReplySlot>),
    /// A component, through its `handle_callback`.
    Component(Arc<Component>),
}

/// A request awaiting its outcome.
#[derive(Clone)]
pub(crate) struct Pending {
    pub(crate) requester: Requester,
    /// The component the request was sent to: only its response completes the request.
    pub(crate) responder: ComponentId,
    /// The request's entry in the timer, cancelled when another outcome comes first.
    pub(crate) deadline: TimerKey,
}

/// What a response found in the pending table.
pub(crate) enum ResponseMatch {
    /// The request was pending and awaited this responder: it is now the caller's to
    /// complete.
    Taken(Pending),
    /// The request is pending, but for another responder; it stays pending.
    WrongResponder,
    /// No such request is pending (it completed, timed out, or never existed).
    NotPending,
}

/// The pending-request table, keyed by the request's `message_id`.
pub(crate) struct PendingRequests {
    map: ShardedMap<String, Pending, IdBuildHasher>,
    #[cfg(loom)]
    pub(crate) fault: crate::mailbox::Fault,
}

impl PendingRequests {
    pub(crate) fn new() -> Self {
        Self {
            map: ShardedMap::new(),
            #[cfg(loom)]
            fault: crate::mailbox::Fault::None,
        }
    }

    /// Records a request; hands the entry back if the id is already pending.
    pub(crate) fn insert(&self, id: String, pending: Pending) -> Result<(), Pending> {
        self.map.insert_new(id, pending)
    }

    /// Removes the entry if `accept` approves of it: the caller then owns delivering the
    /// request's one outcome. `None` in the first place when nothing is pending under
    /// `id`; `Some(false)` when something is but `accept` refused it.
    fn take_if(&self, id: &str, accept: impl FnOnce(&Pending) -> bool) -> Result<Pending, bool> {
        #[cfg(loom)]
        if self.fault == crate::mailbox::Fault::PeekThenRemove {
            // The classic check-then-act bug: look, act on what was seen, remove later.
            let seen = self.map.with(id, |p| (accept(p), p.clone()));
            crate::sync::yield_now();
            let _ = self.map.remove(id);
            return match seen {
                Some((true, p)) => Ok(p),
                Some((false, _)) => Err(true),
                None => Err(false),
            };
        }
        let mut present = false;
        self.map
            .remove_if(id, |p| {
                present = true;
                accept(p)
            })
            .ok_or(present)
    }

    /// Completion by a response from `from`.
    pub(crate) fn take_response(&self, id: &str, from: &ComponentId) -> ResponseMatch {
        match self.take_if(id, |p| p.responder == *from) {
            Ok(p) => ResponseMatch::Taken(p),
            Err(true) => ResponseMatch::WrongResponder,
            Err(false) => ResponseMatch::NotPending,
        }
    }

    /// Completion by the deadline under `key`: a newer request that reuses the id (with
    /// another deadline entry) is left alone.
    pub(crate) fn take_expired(&self, id: &str, key: TimerKey) -> Option<Pending> {
        self.take_if(id, |p| p.deadline == key).ok()
    }

    /// Completion by the runtime itself (the request was dead-lettered or not delivered).
    pub(crate) fn take(&self, id: &str) -> Option<Pending> {
        self.take_if(id, |_| true).ok()
    }

    /// True while the request awaits its outcome.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.map.with(id, |_| ()).is_some()
    }

    /// True while the request awaits its outcome under this deadline entry.
    pub(crate) fn is_pending_with(&self, id: &str, key: TimerKey) -> bool {
        self.map.with(id, |p| p.deadline == key).unwrap_or(false)
    }

    /// The deadline entry of a pending request.
    #[cfg(loom)]
    pub(crate) fn deadline_of(&self, id: &str) -> Option<TimerKey> {
        self.map.with(id, |p| p.deadline)
    }

    /// Removes every entry (shutdown).
    pub(crate) fn drain(&self) -> Vec<(String, Pending)> {
        self.map.drain()
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

type Outcome = Result<MessageEnvelope, RequestError>;

struct SlotState {
    outcome: Option<Outcome>,
    waker: Option<Waker>,
}

/// Where a host request's outcome lands; completed exactly once.
pub(crate) struct ReplySlot {
    state: Mutex<SlotState>,
    cvar: Condvar,
    /// Set (after the outcome is stored) by `complete`: lets a waiter spin briefly on one
    /// cache line before it sleeps on the condvar. A `std` atomic: under loom the waiter
    /// never spins, so it only ever hints.
    done: std::sync::atomic::AtomicBool,
}

/// How long a blocking `wait` spins (then yields) for the outcome before it sleeps: a
/// round trip through an idle worker takes a few microseconds, and sleeping costs a
/// futex wake-up on each side.
#[cfg(not(loom))]
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(50);

impl ReplySlot {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(SlotState { outcome: None, waker: None }),
            cvar: Condvar::new(),
            done: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Stores the outcome and wakes the waiter (thread or task).
    pub(crate) fn complete(&self, outcome: Outcome) {
        let waker = {
            let mut s = self.state.lock();
            debug_assert!(s.outcome.is_none(), "a request completes once");
            s.outcome = Some(outcome);
            // Release: a spinning waiter that sees it then takes the lock, which orders it
            // after the store above anyway; the flag only ends the spin.
            self.done.store(true, std::sync::atomic::Ordering::Release);
            s.waker.take()
        };
        self.cvar.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub(crate) fn try_take(&self) -> Option<Outcome> {
        self.state.lock().outcome.take()
    }
}

/// The host's side of a request: wait for the response (or the runtime's timeout).
///
/// The runtime guarantees an outcome: the response, [`RequestError::Timeout`] at the
/// request's deadline, [`RequestError::Failed`] if the request was dead-lettered, or
/// [`RequestError::Shutdown`]. Waiting is possible by blocking ([`ReplyHandle::wait`],
/// [`ReplyHandle::wait_timeout`]) or by `.await` (the handle is a `Future` that needs no
/// particular async runtime).
#[must_use = "the response is only observable through the handle"]
pub struct ReplyHandle {
    slot: Arc<ReplySlot>,
    request_id: String,
}

impl std::fmt::Debug for ReplyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyHandle").field("request_id", &self.request_id).finish()
    }
}

impl ReplyHandle {
    pub(crate) fn new(slot: Arc<ReplySlot>, request_id: String) -> Self {
        Self { slot, request_id }
    }

    /// The request's `message_id` (the response's `correlation_id`).
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The outcome, if it has arrived, without blocking.
    pub fn try_wait(&self) -> Option<Result<MessageEnvelope, RequestError>> {
        self.slot.try_take()
    }

    /// Blocks until the outcome arrives. Always returns: the runtime enforces the
    /// request's timeout.
    ///
    /// # Errors
    /// The request's failure ([`RequestError`]). On a worker thread (inside a handler, of
    /// any runtime) it never blocks: unless the outcome is already there it returns
    /// [`RequestError::WouldBlockWorker`] at once, because a blocked worker stalls every
    /// component homed on it (the one that would answer, perhaps). Handlers ask with
    /// [`crate::Context::request`] and get the outcome in
    /// [`crate::Handler::handle_callback`].
    pub fn wait(self) -> Result<MessageEnvelope, RequestError> {
        if crate::runtime::on_worker_thread() {
            return self.try_wait().unwrap_or(Err(RequestError::WouldBlockWorker));
        }
        #[cfg(not(loom))]
        self.spin_briefly();
        let mut s = self.slot.state.lock();
        loop {
            if let Some(o) = s.outcome.take() {
                return o;
            }
            self.slot.cvar.wait(&mut s);
        }
    }

    /// Spins, then yields, for up to [`SPIN_BEFORE_SLEEP`] while the outcome is not there.
    #[cfg(not(loom))]
    fn spin_briefly(&self) {
        use std::sync::atomic::Ordering::Acquire;
        for _ in 0..64 {
            if self.slot.done.load(Acquire) {
                return;
            }
            std::hint::spin_loop();
        }
        let until = Instant::now() + SPIN_BEFORE_SLEEP;
        while !self.slot.done.load(Acquire) && Instant::now() < until {
            std::thread::yield_now();
        }
    }

    /// Blocks up to `timeout` for the outcome.
    ///
    /// # Errors
    /// [`WaitTimeoutError::Pending`] if the outcome has not arrived by then: the request
    /// stays pending and the handle can be waited on again.
    /// [`WaitTimeoutError::Failed`] with the request's failure. On a worker thread it never
    /// blocks (see [`ReplyHandle::wait`]): `Failed(RequestError::WouldBlockWorker)` unless
    /// the outcome is already there.
    #[cfg(not(loom))]
    pub fn wait_timeout(&self, timeout: Duration) -> Result<MessageEnvelope, WaitTimeoutError> {
        if crate::runtime::on_worker_thread() {
            return Ok(self.try_wait().unwrap_or(Err(RequestError::WouldBlockWorker))?);
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut s = self.slot.state.lock();
        loop {
            if let Some(o) = s.outcome.take() {
                return Ok(o?);
            }
            match deadline {
                Some(d) => {
                    if self.slot.cvar.wait_until(&mut s, d).timed_out() {
                        return Ok(s.outcome.take().ok_or(WaitTimeoutError::Pending)??);
                    }
                }
                None => self.slot.cvar.wait(&mut s),
            }
        }
    }
}

impl Future for ReplyHandle {
    type Output = Result<MessageEnvelope, RequestError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut s = self.slot.state.lock();
        if let Some(o) = s.outcome.take() {
            return Poll::Ready(o);
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
