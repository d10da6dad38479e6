//! The host's side of a request: [`ReplyHandle`], and the slot its one outcome lands in.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};
#[cfg(not(loom))]
use std::time::{Duration, Instant};

use crate::envelope::MessageEnvelope;
use crate::error::RequestError;
#[cfg(not(loom))]
use crate::error::WaitTimeoutError;
use crate::sync::{Arc, Condvar, Mutex};
use crate::timer::{Timer, TimerKey};

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

    /// True once the outcome was stored.
    fn is_done(&self) -> bool {
        // Acquire pairs with the Release store in `complete`.
        self.done.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The outcome, taken out; [`RequestError::Taken`] once it was (a request has one
    /// outcome, and whoever asks again must not wait for a second).
    pub(crate) fn try_take(&self) -> Option<Outcome> {
        let mut s = self.state.lock();
        Self::take_from(&mut s, self.is_done())
    }

    /// The outcome under the lock: `done` says whether one was ever stored.
    fn take_from(s: &mut SlotState, done: bool) -> Option<Outcome> {
        match s.outcome.take() {
            Some(o) => Some(o),
            None if done => Some(Err(RequestError::Taken)),
            None => None,
        }
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
    request_id: crate::envelope::MessageId,
    /// The request's deadline entry, cancelled when the handle goes (the outcome taken or
    /// given up on): the requester's thread does that bookkeeping, not the responder's.
    timer: Arc<Timer>,
    deadline: TimerKey,
}

impl Drop for ReplyHandle {
    fn drop(&mut self) {
        // An answered request needs its deadline no more: take the entry out now rather
        // than leave it in the timer until due. A request still pending keeps it, so the
        // deadline still clears its pending entry even though nobody waits any more.
        if self.slot.is_done() {
            self.timer.cancel(self.deadline);
        }
    }
}

impl std::fmt::Debug for ReplyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyHandle").field("request_id", &self.request_id).finish()
    }
}

impl ReplyHandle {
    pub(crate) fn new(
        slot: Arc<ReplySlot>,
        request_id: crate::envelope::MessageId,
        timer: Arc<Timer>,
        deadline: TimerKey,
    ) -> Self {
        Self { slot, request_id, timer, deadline }
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
        if crate::workers::on_worker_thread() {
            return self.try_wait().unwrap_or(Err(RequestError::WouldBlockWorker));
        }
        #[cfg(not(loom))]
        self.spin_briefly();
        let mut s = self.slot.state.lock();
        loop {
            if let Some(o) = ReplySlot::take_from(&mut s, self.slot.is_done()) {
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
        if crate::workers::on_worker_thread() {
            return Ok(self.try_wait().unwrap_or(Err(RequestError::WouldBlockWorker))?);
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut s = self.slot.state.lock();
        loop {
            if let Some(o) = ReplySlot::take_from(&mut s, self.slot.is_done()) {
                return Ok(o?);
            }
            match deadline {
                Some(d) => {
                    if self.slot.cvar.wait_until(&mut s, d).timed_out() {
                        let o = ReplySlot::take_from(&mut s, self.slot.is_done());
                        return Ok(o.ok_or(WaitTimeoutError::Pending)??);
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
        if let Some(o) = ReplySlot::take_from(&mut s, self.slot.is_done()) {
            return Poll::Ready(o);
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
