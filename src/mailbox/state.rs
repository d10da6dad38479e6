//! A mailbox's state word: who may run the component, whether it is closed, and how many
//! counted senders are mid-push (see `mod.rs` for the queues it guards).
//!
//! # The state word
//!
//! One `AtomicUsize`, laid out as:
//!
//! | bits | name        | meaning                                                            |
//! |------|-------------|--------------------------------------------------------------------|
//! | 0    | `SCHEDULED` | someone owns the right to run the component: it sits in a run queue, is running, or waits in the timer for a restart backoff |
//! | 1    | `CLOSED`    | no new message is accepted; set once, never cleared                |
//! | 2..  | `SENDERS`   | counted senders that passed the `CLOSED` check and have not finished their push |
//!
//! Two kinds of sender push into a mailbox:
//!
//! * **Pinned senders** resolved the component in the registry and hold its entry pinned
//!   (a shard read lock) for the whole push. Every `send`, `try_send`, `publish` and
//!   request from the host or a handler is one. They never touch `SENDERS`: a closer
//!   orders itself after them with a *registry barrier* (it takes the shard's write lock
//!   once, after setting `CLOSED`), which costs the closer a lock and the sender nothing.
//! * **Counted senders** hold an `Arc` of the component outside the registry (a blocking
//!   `send_timeout` that waits for space, the outcome lane that delivers replies and
//!   timeouts to a requesting component). They announce themselves in `SENDERS`.
//!
//! Transitions (each names the operation that performs it):
//!
//! * [`MailboxState::pinned_open`]: reads `CLOSED`; no write.
//! * [`MailboxState::pinned_delivered`]: `SCHEDULED := 1` (one `fetch_or`). If `SCHEDULED`
//!   was 0 (idle -> scheduled) the sender now owns the component and must put it on its
//!   worker's run queue.
//! * [`MailboxState::begin_send`] (counted): `SENDERS += 1` if not `CLOSED`; otherwise
//!   unchanged.
//! * [`SendPermit::delivered`] (counted): `SENDERS -= 1` and `SCHEDULED := 1` in one CAS,
//!   with the same idle -> scheduled hand-over as a pinned delivery.
//! * [`SendPermit::undelivered`] (or dropping the permit): `SENDERS -= 1`.
//! * [`MailboxState::finish_turn`], by the owner after a turn with nothing left to do:
//!   `SCHEDULED := 0` (scheduled -> idle), then re-checks the queues; if a message arrived
//!   meanwhile it tries `SCHEDULED := 1` again (idle -> scheduled) and keeps ownership only
//!   if no sender took it first.
//! * [`MailboxState::close`]: `CLOSED := 1`. Before its final drain the closer (1) passes
//!   the registry barrier for the component's id, so every pinned sender either saw
//!   `CLOSED` or finished its push, and (2) waits until `SENDERS == 0`
//!   ([`MailboxState::senders_in_flight`]). A message is therefore either rejected or in
//!   the queue by the time the drain runs.
//!
//! Why no wake-up is lost: every sender's final step (`fetch_or` or CAS) and the owner's
//! clear are read-modify-writes on the same word, so they are totally ordered. If the
//! sender's comes second it sees `SCHEDULED == 0` and schedules the component itself. If it
//! comes first, the owner's clear (acquire) reads from it (release), so the sender's push
//! happens-before the owner's re-check, which therefore sees the message. The loom model
//! `two_senders_one_worker` checks this, and shows that dropping the re-check loses one.
//!
//! Why the barrier suffices for pinned senders: a pinned sender's read-locked section and
//! the closer's write lock exclude each other. A section that ends before the barrier
//! releases its lock to the barrier, so its push happens-before the drain; a section that
//! starts after the barrier acquires the lock the barrier released after `close`, so its
//! `CLOSED` check sees the close. The loom model `component_stop_racing_send` checks this
//! and shows that skipping the barrier loses a message.
//!

use crate::sync::{AtomicUsize, Ordering};

const SCHEDULED: usize = 1 << 0;
const CLOSED: usize = 1 << 1;
const SENDER: usize = 1 << 2;

/// Deliberate bugs, compiled only for loom, that the loom suite must catch.
#[cfg(loom)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// The correct protocol.
    #[default]
    None,
    /// `finish_turn` clears `SCHEDULED` without re-checking the queues: a lost wake-up.
    SkipRecheck,
    /// `close` does not wait for senders in flight: a message can land after the drain.
    CloseWithoutWaiting,
    /// Completing a request peeks at the pending entry and removes it later, so a
    /// response and a timeout can both complete it.
    PeekThenRemove,
    /// A closer skips the registry barrier: a pinned sender can push after the drain.
    SkipRegistryBarrier,
    /// A sender skips the unpark when its thread is a worker with the target's index, of
    /// any runtime: a worker of another runtime is never woken.
    WorkerIndexOnly,
    /// Unsubscribing updates a topic and removes it if empty in two critical sections: a
    /// subscription made between them is removed with the topic.
    SplitUnsubscribe,
    /// The owner never wakes senders blocked on a full queue.
    SkipRoomWake,
    /// Closing a mailbox does not wake the senders blocked on it.
    CloseWithoutWakingSenders,
    /// A request's deadline expires whatever request is pending under its id, even a newer
    /// one that reuses the id.
    ExpireById,
    /// A requester that schedules its deadline after the response already came does not
    /// take the entry out again: answered requests leave timer entries behind.
    SkipDeadlineRecheck,
    /// `unpark` notifies without taking the parker's lock: the notification can slip in
    /// between the parker's "going to sleep" and its sleep.
    NotifyWithoutLock,
    /// A batch send sets `SCHEDULED` after its first push instead of after its last: a
    /// worker that drains the first and goes idle never sees the rest.
    ScheduleAfterFirstPush,
    /// The drain of a closed component drops the health probes in its outcome lane
    /// unanswered: a caller that asked before the close never gets its answer.
    DrainDropsProbes,
    /// Handing a request on takes its pending entry out and inserts a changed one: a
    /// deadline in between completes nothing, and the entry put back is never completed.
    HandOverByReinsert,
    /// A response completes whatever request is pending under its correlation id and from
    /// its responder, ignoring the ticket: the answer to an earlier request completes a
    /// newer one that reuses the id.
    ResponseById,
    /// A closer does not pass the references' gate: a send through a `ComponentRef` can
    /// land after the final drain.
    SkipRefGate,
}

/// The per-component state word. See the module docs for the layout and transitions.
pub struct MailboxState {
    word: AtomicUsize,
    #[cfg(loom)]
    pub(crate) fault: Fault,
}

/// What a sender must do after pushing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Wake {
    /// The component was idle and this sender now owns it: put it on its run queue.
    Schedule,
    /// Someone else owns it already; nothing to do.
    AlreadyScheduled,
}

/// What the owner does after a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum TurnEnd {
    /// Ownership released; the component is idle.
    Idle,
    /// A message arrived while releasing and ownership was taken back: run it again.
    RunAgain,
}

/// The right to push one message; obtained from [`MailboxState::begin_send`].
///
/// Dropping it without calling [`SendPermit::delivered`] counts as undelivered.
#[must_use]
pub struct SendPermit<'a> {
    state: &'a MailboxState,
    done: bool,
}

impl Default for MailboxState {
    fn default() -> Self {
        Self::new()
    }
}

impl MailboxState {
    /// An open, idle mailbox.
    pub fn new() -> Self {
        Self {
            word: AtomicUsize::new(0),
            #[cfg(loom)]
            fault: Fault::None,
        }
    }

    /// An open, idle mailbox with a deliberate bug (loom builds only).
    #[cfg(loom)]
    pub fn with_fault(fault: Fault) -> Self {
        Self { word: AtomicUsize::new(0), fault }
    }

    /// Registers a sender; fails if the mailbox is closed.
    ///
    /// Transition: `SENDERS += 1` unless `CLOSED`.
    pub fn begin_send(&self) -> Result<SendPermit<'_>, Closed> {
        // Acquire pairs with nothing in particular on success; on failure it pairs with
        // the Release of `close` so a rejected sender observes the close fully. The RMW
        // itself is what orders this sender against `close` (both are RMWs on `word`).
        let prev = self.word.fetch_add(SENDER, Ordering::Acquire);
        if prev & CLOSED != 0 {
            // Release pairs with the closer's Acquire load in `senders_in_flight`.
            self.word.fetch_sub(SENDER, Ordering::Release);
            return Err(Closed);
        }
        Ok(SendPermit { state: self, done: false })
    }

    /// For a pinned sender (one holding the component's registry entry pinned for the
    /// whole push): true unless the mailbox is closed. See the module docs for why the
    /// pin makes a plain load enough.
    #[inline]
    pub fn pinned_open(&self) -> bool {
        // Acquire pairs with the closer's RMW in `close`, which the registry barrier
        // orders before this load whenever the close came first.
        self.word.load(Ordering::Acquire) & CLOSED == 0
    }

    /// For a pinned sender, after a successful push: `SCHEDULED := 1`.
    #[inline]
    pub fn pinned_delivered(&self) -> Wake {
        // AcqRel: Release publishes the push to the owner's `finish_turn` (Acquire);
        // Acquire pairs with the previous owner's release when this sender becomes owner.
        if self.word.fetch_or(SCHEDULED, Ordering::AcqRel) & SCHEDULED == 0 {
            Wake::Schedule
        } else {
            Wake::AlreadyScheduled
        }
    }

    /// True if closers must skip the registry barrier (a loom fault).
    #[cfg(loom)]
    pub fn skips_registry_barrier(&self) -> bool {
        self.fault == Fault::SkipRegistryBarrier
    }

    /// Tries to take ownership of an idle component (idle -> scheduled) without a push,
    /// e.g. to let its worker drain it after a close.
    pub fn try_schedule(&self) -> bool {
        // AcqRel: Acquire pairs with the Release of the previous owner's `finish_turn`, so
        // its writes to the component are visible; Release publishes ours to the next.
        self.word.fetch_or(SCHEDULED, Ordering::AcqRel) & SCHEDULED == 0
    }

    /// Releases ownership after a turn, re-checking for work that raced the release.
    ///
    /// Call only as the owner, and only after finding the queues empty. `has_work` reports
    /// whether any queue of the component holds a message.
    pub fn finish_turn(&self, has_work: impl Fn() -> bool) -> TurnEnd {
        // AcqRel: Release hands the component's runner state to the next owner; Acquire
        // pairs with the Release CAS in `SendPermit::delivered`, so any push whose CAS came
        // before this clear is visible to the re-check below.
        self.word.fetch_and(!SCHEDULED, Ordering::AcqRel);
        #[cfg(loom)]
        if self.fault == Fault::SkipRecheck {
            return TurnEnd::Idle;
        }
        if has_work() && self.try_schedule() {
            return TurnEnd::RunAgain;
        }
        TurnEnd::Idle
    }

    /// Marks the mailbox closed. Returns true for the first caller only.
    pub fn close(&self) -> bool {
        // AcqRel: Release makes the close visible to senders' `begin_send` (Acquire);
        // Acquire orders the closer after earlier permits' releases.
        self.word.fetch_or(CLOSED, Ordering::AcqRel) & CLOSED == 0
    }

    /// True once [`Self::close`] ran.
    pub fn is_closed(&self) -> bool {
        // Acquire pairs with the Release half of `close`'s RMW: a reader that sees CLOSED
        // also sees the close reason recorded before it.
        self.word.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Senders that passed the closed check and have not finished.
    pub fn senders_in_flight(&self) -> usize {
        #[cfg(loom)]
        if self.fault == Fault::CloseWithoutWaiting {
            return 0;
        }
        // Acquire pairs with the Release decrement of each permit, so once this reads 0
        // after `close`, every accepted push happened-before the caller's final drain.
        self.word.load(Ordering::Acquire) / SENDER
    }

    /// True while someone owns the component (a hint for the quiescence check, which
    /// re-checks until stable).
    pub fn is_scheduled(&self) -> bool {
        // Acquire pairs with the Release of `finish_turn`'s clear, so a component seen idle
        // has its last turn's effects (the emptied queue) visible too.
        self.word.load(Ordering::Acquire) & SCHEDULED != 0
    }
}

impl SendPermit<'_> {
    /// Finishes a successful push: `SENDERS -= 1`, `SCHEDULED := 1`.
    pub fn delivered(mut self) -> Wake {
        self.done = true;
        let word = &self.state.word;
        let mut cur = word.load(Ordering::Relaxed);
        loop {
            let next = (cur - SENDER) | SCHEDULED;
            // AcqRel on success: Release publishes the push to the owner's `finish_turn`
            // (Acquire) and to a closer's `senders_in_flight` (Acquire); Acquire pairs with
            // the previous owner's release when this sender becomes the owner.
            match word.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(prev) => {
                    return if prev & SCHEDULED == 0 { Wake::Schedule } else { Wake::AlreadyScheduled };
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// Finishes a failed push: `SENDERS -= 1`.
    pub fn undelivered(mut self) {
        self.release();
    }

    fn release(&mut self) {
        if !self.done {
            self.done = true;
            // Release pairs with the closer's Acquire in `senders_in_flight`.
            self.state.word.fetch_sub(SENDER, Ordering::Release);
        }
    }
}

impl Drop for SendPermit<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// The mailbox was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;
