//! A component's mailbox: its bounded queue of messages, its outcome lane, the state word
//! that schedules it, and the senders blocked waiting for room.
//!
//! [`Mailbox`] is the one type a sender and the component's worker share. Senders push
//! ([`Mailbox::push_pinned`], [`Mailbox::push_counted`], [`Mailbox::push_outcome`]) and
//! learn from the state word whether they made the component runnable; its owner (the
//! worker running it) pops and, after a turn with nothing left, releases it
//! ([`Mailbox::finish_turn`]). The protocol is in `docs/design.md` ("The state word").
//!
//! The two queues:
//! - the **queue**, a bounded crossbeam channel of [`Letter`]s (capacity per component);
//! - the **outcome lane**, an unbounded channel of [`LaneEntry`]s: the [`Outcome`]s of
//!   requests the component made (responses, timeouts), and health probes from the host
//!   (`crate::health`). The owner reads it before the queue. It is unbounded so that the
//!   one outcome of each request can always be delivered, and a probe reaches a component
//!   whose queue is full; its length is bounded by the component's pending requests and
//!   one probe.
//!
//! The state word and its transitions are in `state.rs`.
//!
//! # Senders waiting for room
//!
//! A `send_timeout` that finds the queue full waits in [`Mailbox::wait_for_room`] until
//! the owner has drained the queue to half its capacity (one wake-up per half queue, not
//! one per message), the mailbox closes, or its deadline passes. The hand-shake, with
//! `waiting` the count of blocked senders:
//!
//! * a blocked sender, holding the waiters' lock: `waiting += 1` (SeqCst), then reads the
//!   queue's length (SeqCst loads in crossbeam), then sleeps on the condition variable
//!   (which releases the lock);
//! * the owner, after each pop (a SeqCst CAS in crossbeam): reads `waiting` (SeqCst); if
//!   it is not 0 and the queue is at half or less, takes the lock and notifies.
//!
//! In the single total order of SeqCst operations either the sender's increment comes
//! before the owner's read (the owner sees a waiter and notifies; the lock keeps the notify
//! from slipping in before the sender sleeps) or the owner's pop comes before the sender's
//! length read (the sender sees the room and does not sleep). So no wake-up is lost; the
//! loom model `blocked_send_woken_by_room` checks it (loom never times a wait out), and
//! shows that an owner that skips the wake-up strands the sender. A sleeping sender also
//! looks on its own every [`ROOM_RECHECK`] and then takes any free slot, so a slow owner
//! delays it by at most that much.

mod state;

use std::time::{Duration, Instant};

use crate::envelope::{DeliveryGuarantee, MessageEnvelope};
use crate::error::RequestError;
use crate::health::HealthProbe;
use crate::sync::channel::{Receiver, Sender, TrySendError, bounded, unbounded};
use crate::sync::{AtomicUsize, CacheAligned, Condvar, Gate, GateHold, Lazy, Mutex, Ordering};

#[cfg(loom)]
pub use state::Fault;
pub use state::{Closed, MailboxState, SendPermit, TurnEnd, Wake};

/// A queued message with its delivery metadata.
pub(crate) struct Letter {
    pub(crate) env: MessageEnvelope,
    pub(crate) guarantee: DeliveryGuarantee,
    /// Times handed to the handler so far.
    pub(crate) attempts: u32,
    /// A request made through `request`, whose requester waits in the pending table under
    /// this registration of its id.
    pub(crate) ticket: Option<crate::request::Ticket>,
    /// An at-least-once message the cluster's stream offered: the turn settles it with the
    /// stream once done with it (see `crate::cluster`).
    #[cfg(all(feature = "cluster", not(loom)))]
    pub(crate) receipt: Option<Box<crate::cluster::Receipt>>,
}

impl Letter {
    /// A letter not yet handed to a handler.
    #[inline(always)]
    pub(crate) fn new(
        env: MessageEnvelope,
        guarantee: DeliveryGuarantee,
        ticket: Option<crate::request::Ticket>,
    ) -> Self {
        Self {
            env,
            guarantee,
            attempts: 0,
            ticket,
            #[cfg(all(feature = "cluster", not(loom)))]
            receipt: None,
        }
    }
}

/// The outcome of a request the component made.
pub(crate) struct Outcome {
    pub(crate) request_id: String,
    pub(crate) result: Result<MessageEnvelope, RequestError>,
}

/// What the outcome lane carries: what the owner takes before the next letter.
// Outcomes are nearly all the lane carries: boxing them to shrink the rare probe's entry
// would cost every response delivered to a component an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum LaneEntry {
    /// The outcome of a request the component made.
    Outcome(Outcome),
    /// A health check waiting for the handler's answer (see `crate::health`).
    Probe(HealthProbe),
}

/// Why a push did not enqueue its letter (handed back).
pub(crate) enum Refused {
    /// The mailbox is closed.
    Closed(Letter),
    /// The queue is at capacity.
    Full(Letter),
}

/// How often a blocked sender looks at the queue on its own.
const ROOM_RECHECK: Duration = Duration::from_millis(1);

/// A component's queue, outcome lane, state word and blocked senders. See the module docs.
pub(crate) struct Mailbox {
    /// Written by every sender: on cache lines of its own.
    state: CacheAligned<MailboxState>,
    /// Held by a send through a `ComponentRef` for its push, passed by a closer: on cache
    /// lines of its own too, away from what the worker touches per message.
    gate: CacheAligned<Gate>,
    /// The queue: allocated by the first push (a lazy mailbox, the default: an idle
    /// component holds no slots), or now.
    queue: Lazy<(Sender<Letter>, Receiver<Letter>)>,
    /// The outcome lane, allocated by the first outcome or probe.
    outcomes: Lazy<(Sender<LaneEntry>, Receiver<LaneEntry>)>,
    capacity: usize,
    /// Senders blocked in `send_timeout` (see "Senders waiting for room").
    waiting: AtomicUsize,
    room_lock: Mutex<()>,
    room: Condvar,
}

impl Mailbox {
    /// An open, idle mailbox whose queue holds `capacity` letters, allocated now or, if
    /// `lazy`, by the first push.
    pub(crate) fn new(capacity: usize, lazy: bool, state: MailboxState) -> Self {
        Self {
            state: CacheAligned(state),
            gate: CacheAligned(Gate::new()),
            queue: if lazy { Lazy::new(|| bounded(capacity)) } else { Lazy::ready(bounded(capacity)) },
            outcomes: Lazy::new(unbounded),
            capacity,
            waiting: AtomicUsize::new(0),
            room_lock: Mutex::new(()),
            room: Condvar::new(),
        }
    }

    // ----- senders ----------------------------------------------------------------------

    /// A pinned sender's push, in three steps the caller writes out (see `Inner::route`):
    /// [`Mailbox::pinned_open`] (is it open?), then [`Mailbox::queue`]`.try_send(letter)`,
    /// then, if that worked, [`Mailbox::pinned_delivered`] (`SCHEDULED := 1`). Not one
    /// method taking the letter: a letter passed by value through one more call costs a
    /// copy of the envelope (about 15 ns a send, measured), even inlined.
    #[inline]
    pub(crate) fn pinned_open(&self) -> bool {
        self.state.pinned_open()
    }

    /// The queue's sending end, for a pinned sender's push (see [`Mailbox::pinned_open`]).
    #[inline]
    pub(crate) fn queue(&self) -> &Sender<Letter> {
        &self.queue.get_or_init(|| bounded(self.capacity)).0
    }

    /// The queue's receiving end, if the queue was made.
    #[inline]
    fn rx(&self) -> Option<&Receiver<Letter>> {
        self.queue.get().map(|(_, rx)| rx)
    }

    /// After a pinned sender's successful push: `SCHEDULED := 1`. `Wake::Schedule` means the
    /// component was idle and the caller now owns it.
    #[inline]
    pub(crate) fn pinned_delivered(&self) -> Wake {
        self.state.pinned_delivered()
    }

    /// A send through a `ComponentRef`: held for its push, which it then makes as a pinned
    /// sender does ([`Mailbox::pinned_open`], the push, [`Mailbox::pinned_delivered`]).
    #[inline]
    pub(crate) fn hold_gate(&self) -> GateHold<'_> {
        self.gate.hold()
    }

    /// A closer's pass through the gate (after `close`): every send through a reference
    /// that held it saw `CLOSED` or has pushed.
    pub(crate) fn pass_gate(&self) {
        #[cfg(loom)]
        if self.state.fault == Fault::SkipRefGate {
            return;
        }
        self.gate.pass();
    }

    /// Registers a counted sender for several pushes (a batch through a
    /// [`crate::ComponentRef`]): push with [`Mailbox::queue`], then finish with the
    /// permit's `delivered` (after the last push) or `undelivered`.
    pub(crate) fn begin_send(&self) -> Result<SendPermit<'_>, Closed> {
        self.state.begin_send()
    }

    /// Pushes for a counted sender (one holding the component outside the registry).
    pub(crate) fn push_counted(&self, letter: Letter) -> Result<Wake, Refused> {
        let Ok(permit) = self.state.begin_send() else {
            return Err(Refused::Closed(letter));
        };
        match self.queue().try_send(letter) {
            Ok(()) => Ok(permit.delivered()),
            Err(TrySendError::Full(letter)) | Err(TrySendError::Disconnected(letter)) => {
                permit.undelivered();
                Err(Refused::Full(letter))
            }
        }
    }

    /// Delivers a request's outcome into the outcome lane (a counted sender; the lane is
    /// unbounded, so only a closed mailbox refuses, handing the outcome back).
    pub(crate) fn push_outcome(&self, outcome: Outcome) -> Result<Wake, Outcome> {
        self.push_lane(outcome, LaneEntry::Outcome)
    }

    /// Puts a health probe into the outcome lane, as [`Mailbox::push_outcome`] does an
    /// outcome: a full queue does not refuse it, a closed mailbox hands it back.
    pub(crate) fn push_probe(&self, probe: HealthProbe) -> Result<Wake, HealthProbe> {
        self.push_lane(probe, LaneEntry::Probe)
    }

    fn push_lane<T>(&self, item: T, entry: impl FnOnce(T) -> LaneEntry) -> Result<Wake, T> {
        let Ok(permit) = self.state.begin_send() else {
            return Err(item);
        };
        // Unbounded lane: cannot be full, and we hold its receiver.
        let _ = self.outcomes.get_or_init(unbounded).0.send(entry(item));
        Ok(permit.delivered())
    }

    /// Blocks a sender that found the queue full until the owner has drained it to half
    /// its capacity, the mailbox closes, or `deadline` passes (then false). A sender woken
    /// by its own re-check takes any free slot.
    pub(crate) fn wait_for_room(&self, deadline: Instant) -> bool {
        let mut guard = self.room_lock.lock();
        // SeqCst: the store half of the hand-shake with `wake_blocked_senders` (see the
        // module docs); the length read below is the load half.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut woken = false;
        let room = loop {
            let len = self.len();
            if self.state.is_closed() || len <= self.capacity / 2 || (!woken && len < self.capacity) {
                break true;
            }
            let now = Instant::now();
            if now >= deadline {
                break false;
            }
            woken = !self.room.wait_until(&mut guard, deadline.min(now + ROOM_RECHECK)).timed_out();
        };
        // Release: nothing to publish, but keeps the count exact for `blocked_senders`.
        self.waiting.fetch_sub(1, Ordering::Release);
        room
    }

    /// Wakes every sender blocked on the queue.
    fn notify_blocked_senders(&self) {
        // Under the lock: a sender between its check and its sleep cannot miss it.
        let _guard = self.room_lock.lock();
        self.room.notify_all();
    }

    /// Senders blocked on the full queue now.
    pub(crate) fn blocked_senders(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    // ----- the owner --------------------------------------------------------------------

    /// Takes the next letter, if any, and wakes blocked senders once the queue is at half
    /// its capacity. Owner only.
    #[inline]
    pub(crate) fn pop(&self) -> Option<Letter> {
        let letter = self.rx()?.try_recv().ok()?;
        self.wake_blocked_senders();
        Some(letter)
    }

    /// Takes the next entry of the outcome lane, if any. Owner (or a closer draining) only.
    pub(crate) fn pop_outcome(&self) -> Option<LaneEntry> {
        self.outcomes.get()?.1.try_recv().ok()
    }

    /// The load half of the room hand-shake (see the module docs).
    #[inline]
    fn wake_blocked_senders(&self) {
        #[cfg(loom)]
        if self.state.fault == Fault::SkipRoomWake {
            return;
        }
        // SeqCst: pairs with the blocked sender's SeqCst increment in `wait_for_room`
        // (after this thread's SeqCst pop); a weaker load could miss a sender that missed
        // the pop. On x86 it is a plain load.
        if self.waiting.load(Ordering::SeqCst) != 0 && self.len() <= self.capacity / 2 {
            self.notify_blocked_senders();
        }
    }

    /// True when the queue or the outcome lane holds something.
    pub(crate) fn has_queued(&self) -> bool {
        self.rx().is_some_and(|rx| !rx.is_empty()) || self.outcomes.get().is_some_and(|(_, rx)| !rx.is_empty())
    }

    /// Letters in the queue now.
    pub(crate) fn len(&self) -> usize {
        self.rx().map_or(0, Receiver::len)
    }

    /// The queue's capacity.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Takes ownership of an idle component without a push (idle -> scheduled).
    pub(crate) fn try_schedule(&self) -> bool {
        self.state.try_schedule()
    }

    /// Releases ownership after a turn that found the queues empty, re-checking for work
    /// that raced the release.
    pub(crate) fn finish_turn(&self) -> TurnEnd {
        self.state.finish_turn(|| self.has_queued() || self.state.is_closed())
    }

    /// True while someone owns the component.
    pub(crate) fn is_scheduled(&self) -> bool {
        self.state.is_scheduled()
    }

    // ----- closing ----------------------------------------------------------------------

    /// Closes the mailbox (`CLOSED := 1`) and wakes blocked senders so they give up at
    /// once. True for the first closer only.
    pub(crate) fn close(&self) -> bool {
        let first = self.state.close();
        #[cfg(loom)]
        if self.state.fault == Fault::CloseWithoutWakingSenders {
            return first;
        }
        self.notify_blocked_senders();
        first
    }

    /// True once [`Mailbox::close`] ran.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.is_closed()
    }

    /// Counted senders between their `CLOSED` check and the end of their push.
    pub(crate) fn senders_in_flight(&self) -> usize {
        self.state.senders_in_flight()
    }

    /// True if closers must skip the registry barrier (a loom fault).
    #[cfg(loom)]
    pub(crate) fn skips_registry_barrier(&self) -> bool {
        self.state.skips_registry_barrier()
    }

    /// True if a batch sender must set `SCHEDULED` after its first push (a loom fault).
    #[cfg(loom)]
    pub(crate) fn schedules_after_first_push(&self) -> bool {
        self.state.fault == Fault::ScheduleAfterFirstPush
    }

    /// True if a drain must drop health probes unanswered (a loom fault).
    #[cfg(loom)]
    pub(crate) fn drops_probes(&self) -> bool {
        self.state.fault == Fault::DrainDropsProbes
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn first_delivery_schedules_and_later_ones_do_not() {
        let s = MailboxState::new();
        assert_eq!(s.begin_send().unwrap().delivered(), Wake::Schedule);
        assert_eq!(s.begin_send().unwrap().delivered(), Wake::AlreadyScheduled);
        assert!(s.is_scheduled());
        assert_eq!(s.senders_in_flight(), 0);
    }

    #[test]
    fn pinned_delivery_schedules_once_and_a_close_turns_pinned_senders_away() {
        let s = MailboxState::new();
        assert!(s.pinned_open());
        assert_eq!(s.pinned_delivered(), Wake::Schedule);
        assert_eq!(s.pinned_delivered(), Wake::AlreadyScheduled);
        assert_eq!(s.senders_in_flight(), 0, "pinned senders are not counted");
        assert!(s.close());
        assert!(!s.pinned_open());
    }

    #[test]
    fn finish_turn_with_work_takes_ownership_back() {
        let s = MailboxState::new();
        let _ = s.begin_send().unwrap().delivered();
        assert_eq!(s.finish_turn(|| true), TurnEnd::RunAgain);
        assert!(s.is_scheduled());
        assert_eq!(s.finish_turn(|| false), TurnEnd::Idle);
        assert!(!s.is_scheduled());
    }

    #[test]
    fn closed_mailbox_rejects_senders_and_counts_in_flight() {
        let s = MailboxState::new();
        let permit = s.begin_send().unwrap();
        assert!(s.close());
        assert!(!s.close(), "only the first close reports true");
        assert_eq!(s.senders_in_flight(), 1);
        assert!(s.begin_send().is_err());
        drop(permit);
        assert_eq!(s.senders_in_flight(), 0);
        assert!(s.is_closed());
    }
}
