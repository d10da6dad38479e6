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
use crate::id::IdBuildHasher;
use crate::sync::map::ShardedMap;
use crate::sync::{Arc, Condvar, Mutex};

/// Who waits for a request's outcome.
#[derive(Clone)]
pub(crate) enum Requester {
    /// A host thread, through a [`ReplyHandle`].
    Host(Arc<ReplySlot>),
    /// A component, through its `handle_callback`.
    Component(Arc<Component>),
}

/// The pending-request table, keyed by the request's `message_id`.
pub(crate) struct PendingRequests {
    map: ShardedMap<String, Requester, IdBuildHasher>,
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

    /// Records a request; hands the requester back if the id is already pending.
    pub(crate) fn insert(&self, id: String, requester: Requester) -> Result<(), Requester> {
        self.map.insert_new(id, requester)
    }

    /// Removes the entry: the caller now owns delivering the request's one outcome.
    pub(crate) fn take(&self, id: &str) -> Option<Requester> {
        #[cfg(loom)]
        if self.fault == crate::mailbox::Fault::PeekThenRemove {
            // The classic check-then-act bug: look, act on what was seen, remove later.
            let seen = self.map.with(id, Requester::clone);
            crate::sync::yield_now();
            let _ = self.map.remove(id);
            return seen;
        }
        self.map.remove(id)
    }

    /// True while the request awaits its outcome.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.map.with(id, |_| ()).is_some()
    }

    /// Removes every entry (shutdown).
    pub(crate) fn drain(&self) -> Vec<(String, Requester)> {
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
    pub fn wait(self) -> Result<MessageEnvelope, RequestError> {
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

    /// Blocks up to `timeout` for the outcome; hands the handle back if it has not arrived
    /// (the request stays pending and can be waited on again).
    #[cfg(not(loom))]
    pub fn wait_timeout(self, timeout: Duration) -> Result<Result<MessageEnvelope, RequestError>, ReplyHandle> {
        let deadline = Instant::now() + timeout;
        {
            let mut s = self.slot.state.lock();
            loop {
                if let Some(o) = s.outcome.take() {
                    return Ok(o);
                }
                if self.slot.cvar.wait_until(&mut s, deadline).timed_out() {
                    if let Some(o) = s.outcome.take() {
                        return Ok(o);
                    }
                    break;
                }
            }
        }
        Err(self)
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
