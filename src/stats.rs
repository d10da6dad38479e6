//! Routing statistics (global) and per-component counters, with plain snapshots.
//!
//! Global counters are spread over cache-padded slots and a snapshot sums the slots, so
//! counting a message never bounces a shared cache line between cores. The two counters
//! bumped once per message (`messages_routed` at the send, `messages_handled` on the
//! worker) give each thread a slot of its own and add without a locked instruction
//! ([`PerThreadCounter`]); the others are striped over a fixed set of slots. Every
//! counter is `Relaxed`: counts are exact once the threads that wrote them are quiet
//! (after [`crate::Runtime::shutdown`], or when no message is in flight), and approximate
//! while traffic runs.

use std::cell::Cell;

use serde::{Deserialize, Serialize};

use crate::deadletter::REASON_NAMES;
use crate::sync::Ordering;
use crate::sync::stat::StatCounter;

const STRIPES: usize = 16;

#[repr(align(128))]
#[derive(Default)]
struct Padded(StatCounter);

/// A counter split over cache-padded stripes, one chosen per thread.
pub(crate) struct StripedCounter {
    stripes: [Padded; STRIPES],
}

fn stripe_index() -> usize {
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;
    static NEXT: StdAtomicUsize = StdAtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX.with(|i| {
        let mut v = i.get();
        if v == usize::MAX {
            // Relaxed: only spreads threads over stripes.
            v = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % STRIPES;
            i.set(v);
        }
        v
    })
}

impl StripedCounter {
    pub(crate) fn new() -> Self {
        Self { stripes: std::array::from_fn(|_| Padded::default()) }
    }

    pub(crate) fn add(&self, n: u64) {
        self.stripes[stripe_index()].0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.stripes.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

/// A counter bumped once per message: every thread that adds to it gets a slot of its own
/// (its own cache line), so a slot has a single writer, which adds with a plain load and
/// store instead of a locked read-modify-write. A snapshot sums the slots.
///
/// Each thread finds its slots through a small thread-local list. When the thread exits,
/// its thread-local's destructor folds each slot's count into the counter's `retired`
/// total and removes the slot, so a host that sends from many short-lived threads keeps
/// one slot per *live* thread: memory and snapshot time stay flat. A thread that can no
/// longer reach its thread-locals (during its own teardown) adds to a shared slot with a
/// locked add instead.
pub(crate) struct PerThreadCounter {
    key: u64,
    shared: std::sync::Arc<CounterSlots>,
}

/// The slots of one [`PerThreadCounter`], shared with the threads that hold one.
///
/// Plain `std` types, outside loom like every stats counter (see `crate::sync::stat`): the
/// lock only keeps the slot list and the retired total consistent for a snapshot, and
/// orders no message.
struct CounterSlots {
    slots: std::sync::Mutex<Vec<std::sync::Arc<Padded>>>,
    /// Counts of the slots of exited threads. Changed only under `slots`' lock, together
    /// with the removal of the slot, so a sum never counts a slot twice or not at all.
    retired: Padded,
    /// Adds from threads past their thread-locals.
    fallback: Padded,
}

impl CounterSlots {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<std::sync::Arc<Padded>>> {
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Folds an exiting thread's slot into `retired` and forgets it.
    fn retire(&self, slot: &std::sync::Arc<Padded>) {
        let mut slots = self.lock();
        if let Some(at) = slots.iter().position(|s| std::sync::Arc::ptr_eq(s, slot)) {
            slots.swap_remove(at);
            self.retired.0.fetch_add(slot.0.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

/// One thread's slot of one counter: `(counter key, the counter's slots, the slot)`.
type ThreadSlot = (u64, std::sync::Weak<CounterSlots>, std::sync::Arc<Padded>);

/// One thread's slots.
struct ThreadSlots(std::cell::RefCell<Vec<ThreadSlot>>);

impl Drop for ThreadSlots {
    fn drop(&mut self) {
        for (_, counter, slot) in self.0.get_mut().drain(..) {
            if let Some(counter) = counter.upgrade() {
                counter.retire(&slot);
            }
        }
    }
}

thread_local! {
    /// This thread's slots, by counter key.
    static THREAD_SLOTS: ThreadSlots = const { ThreadSlots(std::cell::RefCell::new(Vec::new())) };
}

/// Past this many slots a thread drops those of counters that no longer exist.
const THREAD_SLOTS_PRUNE_AT: usize = 16;

impl PerThreadCounter {
    pub(crate) fn new() -> Self {
        use std::sync::atomic::AtomicU64 as StdAtomicU64;
        // Keys only need to be unique in the process; 0 is never handed out.
        static NEXT_KEY: StdAtomicU64 = StdAtomicU64::new(1);
        Self {
            key: NEXT_KEY.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            shared: std::sync::Arc::new(CounterSlots {
                slots: std::sync::Mutex::new(Vec::new()),
                retired: Padded::default(),
                fallback: Padded::default(),
            }),
        }
    }

    #[inline]
    pub(crate) fn add(&self, n: u64) {
        let added = THREAD_SLOTS.try_with(|slots| {
            // A re-entrant borrow cannot happen (nothing below calls back into a counter),
            // but fall back to the shared slot rather than panic if it ever did.
            let Ok(mut slots) = slots.0.try_borrow_mut() else { return false };
            if let Some((_, _, slot)) = slots.iter().find(|(k, _, _)| *k == self.key) {
                // Single writer: this thread is the only one that writes `slot`.
                slot.0.store(slot.0.load(Ordering::Relaxed) + n, Ordering::Relaxed);
                return true;
            }
            self.add_to_new_slot(&mut slots, n);
            true
        });
        if added != Ok(true) {
            self.shared.fallback.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    #[cold]
    fn add_to_new_slot(&self, slots: &mut Vec<ThreadSlot>, n: u64) {
        if slots.len() >= THREAD_SLOTS_PRUNE_AT {
            // The slots of counters that were dropped.
            slots.retain(|(_, counter, _)| counter.strong_count() > 0);
        }
        let slot = std::sync::Arc::new(Padded::default());
        slot.0.store(n, Ordering::Relaxed);
        self.shared.lock().push(slot.clone());
        slots.push((self.key, std::sync::Arc::downgrade(&self.shared), slot));
    }

    pub(crate) fn sum(&self) -> u64 {
        let slots = self.shared.lock();
        slots.iter().map(|s| s.0.load(Ordering::Relaxed)).sum::<u64>()
            + self.shared.retired.0.load(Ordering::Relaxed)
            + self.shared.fallback.0.load(Ordering::Relaxed)
    }

    /// Slots held for live threads (what a snapshot walks).
    #[cfg(test)]
    fn live_slots(&self) -> usize {
        self.shared.lock().len()
    }
}

/// The runtime's routing counters (seed names kept where they exist).
pub(crate) struct RoutingStats {
    pub(crate) messages_routed: PerThreadCounter,
    pub(crate) components_not_found: StripedCounter,
    pub(crate) mailbox_send_failures: StripedCounter,
    pub(crate) closed_rejections: StripedCounter,
    pub(crate) send_timeouts: StripedCounter,
    pub(crate) invalid_rejections: StripedCounter,
    pub(crate) dead_lettered_at_send: StripedCounter,
    pub(crate) messages_handled: PerThreadCounter,
    pub(crate) redeliveries: StripedCounter,
    pub(crate) requests_timed_out: StripedCounter,
    pub(crate) restarts: StripedCounter,
    /// Sends refused because the target is on another node and this node is cut off.
    pub(crate) transport_rejections: StripedCounter,
    /// Messages another node took (the `cluster` feature).
    pub(crate) messages_forwarded: StripedCounter,
}

impl RoutingStats {
    pub(crate) fn new() -> Self {
        Self {
            messages_routed: PerThreadCounter::new(),
            components_not_found: StripedCounter::new(),
            mailbox_send_failures: StripedCounter::new(),
            closed_rejections: StripedCounter::new(),
            send_timeouts: StripedCounter::new(),
            invalid_rejections: StripedCounter::new(),
            dead_lettered_at_send: StripedCounter::new(),
            messages_handled: PerThreadCounter::new(),
            redeliveries: StripedCounter::new(),
            requests_timed_out: StripedCounter::new(),
            restarts: StripedCounter::new(),
            transport_rejections: StripedCounter::new(),
            messages_forwarded: StripedCounter::new(),
        }
    }
}

/// A plain copy of the routing counters.
///
/// The accounting identity: once no message is in flight,
/// `messages_sent == messages_handled + messages_dead_lettered + routing_failures +
/// messages_forwarded`. Every send attempt is counted once in `messages_sent`; it ends
/// either rejected at send (envelope handed back: `routing_failures`), handled by a handler
/// or delivered to a host reply handle (`messages_handled`), dead-lettered
/// (`messages_dead_lettered`), or taken by another node of the cluster
/// (`messages_forwarded`, always 0 without the `cluster` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RoutingStatsSnapshot {
    /// Send attempts: accepted + rejected + dead-lettered at the send itself.
    pub messages_sent: u64,
    /// Messages accepted into a mailbox (or a host reply handle).
    pub messages_routed: u64,
    /// Sends rejected with the envelope handed back (sum of the four kinds below and
    /// invalid envelopes).
    pub routing_failures: u64,
    /// Rejections because no component had the target id.
    pub components_not_found: u64,
    /// Rejections because the target's mailbox was full (including send timeouts).
    pub mailbox_send_failures: u64,
    /// Rejections because the target or runtime was closed.
    pub closed_rejections: u64,
    /// Rejections because the envelope was invalid or its payload too large.
    pub invalid_rejections: u64,
    /// Rejections because the target is on another node and this node is cut off from the
    /// cluster's server (the `cluster` feature).
    pub transport_rejections: u64,
    /// Messages another node of the cluster took: one-way messages it confirmed,
    /// requests it answered (or refused, having accounted for them), responses to its
    /// requests. They count here as handled messages count on the node that handles them.
    pub messages_forwarded: u64,
    /// Messages taken by a handler that completed (or delivered to a host reply handle).
    pub messages_handled: u64,
    /// Messages dead-lettered, for any reason.
    pub messages_dead_lettered: u64,
    /// Dead letters lost because the dead-letter queue was full (counted above too).
    pub dead_letters_dropped: u64,
    /// Calls of the dead-letter hook that panicked (contained; the letters are counted
    /// above).
    pub dead_letter_hook_panics: u64,
    /// Redeliveries of failed at-least-once messages.
    pub redeliveries: u64,
    /// Requests whose requester got a timeout.
    pub requests_timed_out: u64,
    /// Component restarts after a panic or a failed start.
    pub restarts: u64,
    /// Dead letters per reason, indexed like [`crate::DeadLetterReason::index`].
    pub dead_letters_by_reason: [u64; crate::DeadLetterReason::COUNT],
}

impl RoutingStatsSnapshot {
    /// True when the accounting identity holds.
    pub fn is_balanced(&self) -> bool {
        self.messages_sent
            == self.messages_handled + self.messages_dead_lettered + self.routing_failures + self.messages_forwarded
    }

    /// Dead-letter counts with their reason names, skipping zeros.
    pub fn dead_letters_named(&self) -> Vec<(&'static str, u64)> {
        REASON_NAMES
            .iter()
            .zip(self.dead_letters_by_reason)
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| (*name, n))
            .collect()
    }
}

/// Per-component counters. Written by the component's own worker (single writer) except
/// `rejected_full`, which senders bump.
#[derive(Default)]
pub(crate) struct ComponentStats {
    /// Owner-only (see [`ComponentStats::bump_owned`]).
    pub(crate) received: StatCounter,
    /// Owner-only (see [`ComponentStats::bump_owned`]).
    pub(crate) handled: StatCounter,
    pub(crate) failed: StatCounter,
    pub(crate) dead_lettered: StatCounter,
    pub(crate) redelivered: StatCounter,
    pub(crate) restarts: StatCounter,
    pub(crate) high_water: StatCounter,
    pub(crate) rejected_full: StatCounter,
    /// Not a counter: true while the handler holds a message (inside `handle`, or
    /// `handle_callback` with a response), for a shutdown that gives up on a stuck worker.
    /// Here because the owner writes it twice per message: on the owner's cache lines,
    /// away from what senders read.
    pub(crate) in_call: std::sync::atomic::AtomicBool,
    /// Not a counter: letters waiting in the runner for redelivery (for the same reader).
    pub(crate) retry_len: std::sync::atomic::AtomicUsize,
}

impl ComponentStats {
    pub(crate) fn bump(c: &StatCounter) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds one to a counter that only the component's owner writes, while it holds the
    /// component's runner lock (so writes never race): a plain load and store, not a
    /// locked read-modify-write, on the per-message path.
    pub(crate) fn bump_owned(c: &StatCounter) {
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    pub(crate) fn observe_len(&self, len: usize) {
        // fetch_max keeps it monotonic whoever observes; the load skips the locked RMW
        // when nothing changes (the common case).
        let len = len as u64;
        if len > self.high_water.load(Ordering::Relaxed) {
            self.high_water.fetch_max(len, Ordering::Relaxed);
        }
    }
}

/// A plain copy of one component's counters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ComponentStatsSnapshot {
    /// Messages taken from the mailbox by the worker (redeliveries not counted again).
    pub received: u64,
    /// Messages whose handler completed.
    pub handled: u64,
    /// Handler attempts that failed (error or panic), retried or not.
    pub failed: u64,
    /// Messages of this component that were dead-lettered.
    pub dead_lettered: u64,
    /// Redeliveries of failed at-least-once messages.
    pub redelivered: u64,
    /// Restarts after a panic or a failed start.
    pub restarts: u64,
    /// Largest mailbox length seen (sampled at each turn; equals the capacity once a send
    /// found the mailbox full).
    pub mailbox_high_water: u64,
    /// Sends rejected because the mailbox was full.
    pub rejected_full: u64,
    /// Messages in the mailbox now.
    pub mailbox_len: usize,
    /// Mailbox capacity.
    pub mailbox_capacity: usize,
    /// True once the component stopped accepting messages.
    pub closed: bool,
    /// Senders blocked in `send_timeout` on the full mailbox now.
    pub blocked_senders: usize,
    /// Why the handler last failed to start (its factory or `init` failed, a WASM
    /// instance could not be made: for example the text says how much memory it needed
    /// beyond its cap), if it ever did.
    pub last_start_failure: Option<String>,
    /// A WASM component's own counters (fuel, calls, instances, traps by kind); `None` for
    /// a native handler.
    #[cfg(feature = "wasm")]
    pub wasm: Option<crate::wasm::WasmStatsSnapshot>,
}

impl ComponentStats {
    pub(crate) fn snapshot(&self, mailbox_len: usize, mailbox_capacity: usize, closed: bool) -> ComponentStatsSnapshot {
        let l = |c: &StatCounter| c.load(Ordering::Relaxed);
        ComponentStatsSnapshot {
            received: l(&self.received),
            handled: l(&self.handled),
            failed: l(&self.failed),
            dead_lettered: l(&self.dead_lettered),
            redelivered: l(&self.redelivered),
            restarts: l(&self.restarts),
            mailbox_high_water: l(&self.high_water),
            rejected_full: l(&self.rejected_full),
            mailbox_len,
            mailbox_capacity,
            closed,
            blocked_senders: 0,
            last_start_failure: None,
            #[cfg(feature = "wasm")]
            wasm: None,
        }
    }
}

impl crate::runtime::Inner {
    /// A snapshot of the routing counters.
    pub(crate) fn snapshot(&self) -> RoutingStatsSnapshot {
        let s = &self.stats;
        let routed = s.messages_routed.sum();
        let not_found = s.components_not_found.sum();
        let full = s.mailbox_send_failures.sum() + s.send_timeouts.sum();
        let closed = s.closed_rejections.sum();
        let invalid = s.invalid_rejections.sum();
        let transport = s.transport_rejections.sum();
        let failures = not_found + full + closed + invalid + transport;
        RoutingStatsSnapshot {
            messages_sent: routed + failures + s.dead_lettered_at_send.sum(),
            messages_routed: routed,
            routing_failures: failures,
            components_not_found: not_found,
            mailbox_send_failures: full,
            closed_rejections: closed,
            invalid_rejections: invalid,
            transport_rejections: transport,
            messages_forwarded: s.messages_forwarded.sum(),
            messages_handled: s.messages_handled.sum(),
            messages_dead_lettered: self.dead.total(),
            dead_letters_dropped: self.dead.dropped.sum(),
            dead_letter_hook_panics: self.dead.hook_panics.sum(),
            redeliveries: s.redeliveries.sum(),
            requests_timed_out: s.requests_timed_out.sum(),
            restarts: s.restarts.sum(),
            dead_letters_by_reason: std::array::from_fn(|i| self.dead.by_reason[i].sum()),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn per_thread_counter_sums_the_adds_of_every_thread() {
        let c = std::sync::Arc::new(PerThreadCounter::new());
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.add(t + 1);
                    }
                })
            })
            .collect();
        c.add(5);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.sum(), 1000 * (1 + 2 + 3 + 4) + 5);
    }

    #[test]
    fn per_thread_counters_keep_their_own_counts_on_one_thread() {
        let a = PerThreadCounter::new();
        let b = PerThreadCounter::new();
        for _ in 0..10 {
            a.add(1);
            b.add(2);
        }
        assert_eq!((a.sum(), b.sum()), (10, 20));
    }

    #[test]
    fn a_thread_drops_the_slots_of_counters_that_no_longer_exist() {
        std::thread::spawn(|| {
            for _ in 0..(3 * THREAD_SLOTS_PRUNE_AT) {
                let c = PerThreadCounter::new();
                c.add(1);
                assert_eq!(c.sum(), 1);
            }
            let held = THREAD_SLOTS.with(|s| s.0.borrow().len());
            assert!(held <= THREAD_SLOTS_PRUNE_AT, "{held} slots held for dropped counters");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn slots_of_exited_threads_are_freed_and_their_counts_kept() {
        let c = std::sync::Arc::new(PerThreadCounter::new());
        let threads = 100_000u64;
        for _ in 0..threads {
            let c = c.clone();
            std::thread::spawn(move || c.add(1)).join().unwrap();
        }
        // One slot per live thread: none of the exited ones is kept, so memory and the
        // cost of a snapshot do not grow with the number of threads that ever sent.
        assert_eq!(c.live_slots(), 0);
        assert_eq!(c.sum(), threads);
        c.add(2);
        assert_eq!((c.live_slots(), c.sum()), (1, threads + 2));
    }
}
