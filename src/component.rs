//! A registered component: its mailbox, its home worker, its handler's runner, and how it
//! closes and drains.
//!
//! A component is made from a [`ComponentSpec`] at registration and lives in the registry
//! until it is unregistered (or the runtime shuts down). Its [`Mailbox`] is shared with
//! every sender; everything else that changes is the owner's: the [`Runner`] (handler,
//! letters awaiting redelivery, restart history) sits behind a lock that only the worker
//! running the component takes. The turn itself is in [`crate::turn`].
//!
//! Closing: [`Component::close`] sets `CLOSED` on the mailbox and records why; whoever
//! then owns the component (its worker, or shutdown once the workers stopped) drains it:
//! every queued letter and response is dead-lettered with the close reason, and every health
//! probe answered `Stopped`, after the registry barrier and the wait for counted senders
//! guarantee that no push can land afterwards (`docs/design.md`, "Close and drain").

use crate::deadletter::DeadLetterReason;
use crate::envelope::MessageEnvelope;
use crate::health::{HealthChecks, HealthStatus};
use crate::id::ComponentId;
use crate::mailbox::{LaneEntry, Letter, Mailbox, MailboxState};
use crate::runtime::Inner;
use crate::spec::{ComponentConfig, ComponentSpec, HandlerFactory, RegistryHook};
use crate::stats::ComponentStats;
use crate::sync::{Arc, AtomicBool, AtomicUsize, CacheAligned, Mutex, Ordering};
use crate::turn::{Runner, drop_quietly, never_run};

/// Close reasons stored in `Component::close_reason` (0 = open).
const REASON_UNREGISTERED: usize = 1;
const REASON_STOPPED: usize = 2;
const REASON_SHUTDOWN: usize = 3;

/// A registered component.
pub(crate) struct Component {
    pub(crate) id: ComponentId,
    pub(crate) mailbox: Mailbox,
    /// Index of the worker that runs this component (its home; it never moves).
    pub(crate) worker: usize,
    pub(crate) config: ComponentConfig,
    /// Written by the owner per message: kept off the senders' lines.
    pub(crate) stats: CacheAligned<ComponentStats>,
    pub(crate) factory: HandlerFactory,
    registry_hook: Option<std::sync::Arc<dyn RegistryHook>>,
    /// Taken by the owner for a turn (`try_lock`: the state word already excludes a
    /// second owner), or by shutdown once the workers stopped.
    pub(crate) runner: Mutex<Runner>,
    close_reason: AtomicUsize,
    /// The health probe in the outcome lane, and whether a restart backoff is under way.
    pub(crate) health: HealthChecks,
    /// Set once the component was closed and drained; it is never scheduled again.
    terminated: AtomicBool,
    /// Why the handler last failed to start (factory or `init`), for the host. A `std`
    /// lock: written on that rare path only, read by stats; a report, not synchronization.
    last_start_failure: std::sync::Mutex<Option<String>>,
    /// Invariant check (debug and loom builds): true while the component sits in a run
    /// queue. A `std` atomic, deliberately invisible to loom: it checks, it does not
    /// synchronize.
    #[cfg(any(loom, debug_assertions))]
    queued: std::sync::atomic::AtomicBool,
    /// The handler-time histogram, with `RuntimeConfig::timing_metrics` on.
    #[cfg(all(feature = "metrics", not(loom)))]
    pub(crate) handler_seconds: Option<metrics::Histogram>,
    /// This registration's number, unique in the runtime and never reused: the metrics
    /// scrapes key what they exported for the component by it (`crate::metrics`).
    #[cfg(all(feature = "metrics", not(loom)))]
    pub(crate) incarnation: u64,
}

impl Component {
    pub(crate) fn new(id: ComponentId, spec: ComponentSpec, worker: usize, state: MailboxState) -> Self {
        Self {
            id,
            mailbox: Mailbox::new(spec.config.mailbox_capacity, spec.config.lazy_mailbox, state),
            worker,
            runner: Mutex::new(Runner::new(&spec.config)),
            config: spec.config,
            stats: CacheAligned(ComponentStats::default()),
            factory: spec.factory,
            registry_hook: spec.registry_hook,
            close_reason: AtomicUsize::new(0),
            health: HealthChecks::new(),
            terminated: AtomicBool::new(false),
            last_start_failure: std::sync::Mutex::new(None),
            #[cfg(any(loom, debug_assertions))]
            queued: std::sync::atomic::AtomicBool::new(false),
            #[cfg(all(feature = "metrics", not(loom)))]
            handler_seconds: None,
            #[cfg(all(feature = "metrics", not(loom)))]
            incarnation: 0,
        }
    }

    /// Called by the runtime right after it inserted this component into its registry.
    pub(crate) fn registered(&self) {
        if let Some(hook) = &self.registry_hook {
            hook.registered(&self.id);
        }
    }

    /// Called by the runtime right after it removed this component from its registry.
    pub(crate) fn unregistered(&self) {
        if let Some(hook) = &self.registry_hook {
            hook.unregistered(&self.id);
        }
    }

    /// Records that the component entered a run queue; panics if it already was in one
    /// (a double schedule, which the state word rules out).
    #[cfg(any(loom, debug_assertions))]
    pub(crate) fn mark_enqueued(&self) {
        let was = self.queued.swap(true, std::sync::atomic::Ordering::SeqCst);
        assert!(!was, "component {} scheduled twice", self.id);
    }

    /// Records that a worker took the component from its run queue.
    #[cfg(any(loom, debug_assertions))]
    pub(crate) fn mark_dequeued(&self) {
        self.queued.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// A plain copy of the component's counters and mailbox state.
    pub(crate) fn snapshot(&self) -> crate::stats::ComponentStatsSnapshot {
        let mut s = self.stats.snapshot(self.mailbox.len(), self.mailbox.capacity(), self.mailbox.is_closed());
        s.blocked_senders = self.mailbox.blocked_senders();
        #[cfg(feature = "wasm")]
        {
            s.wasm = self.registry_hook.as_ref().and_then(|h| h.wasm_stats());
        }
        s.last_start_failure =
            self.last_start_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        s
    }

    /// Records why the handler failed to start.
    pub(crate) fn note_start_failure(&self, why: &str) {
        *self.last_start_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why.to_string());
    }

    /// Closes the mailbox, recording why. Returns true for the first closer.
    pub(crate) fn close(&self, reason: DeadLetterReason) -> bool {
        let code = match reason {
            DeadLetterReason::Unregistered => REASON_UNREGISTERED,
            DeadLetterReason::Shutdown => REASON_SHUTDOWN,
            _ => REASON_STOPPED,
        };
        // Relaxed: published by the AcqRel RMW of the mailbox's `close` below and read
        // after observing CLOSED (Acquire); the CAS makes the first closer's reason stick.
        let _ = self.close_reason.compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
        self.mailbox.close()
    }

    /// True once a close began. Checked by the owner before each message ahead of the
    /// state word, which senders write on every send: reading that line per message would
    /// bounce it between the sender's and the worker's cores. The state word still decides
    /// (a close that has begun may not have set `CLOSED` yet).
    pub(crate) fn is_closing(&self) -> bool {
        // Relaxed: a hint; `close` publishes CLOSED with its own RMW.
        self.close_reason.load(Ordering::Relaxed) != 0
    }

    pub(crate) fn close_reason(&self) -> DeadLetterReason {
        match self.close_reason.load(Ordering::Relaxed) {
            REASON_UNREGISTERED => DeadLetterReason::Unregistered,
            REASON_SHUTDOWN => DeadLetterReason::Shutdown,
            _ => DeadLetterReason::ComponentStopped,
        }
    }

    /// True once the component was closed and drained.
    pub(crate) fn is_terminated(&self) -> bool {
        // Acquire pairs with the Release store at the end of `drain_and_terminate`.
        self.terminated.load(Ordering::Acquire)
    }

    /// Drains a closed component on the calling thread (used by shutdown, once the workers
    /// stopped or were given up on). Returns the messages dead-lettered, and what a stuck
    /// worker still holds if one is running the component (it holds the runner: its
    /// handler never returned).
    pub(crate) fn drain_closed(comp: &Arc<Self>, inner: &Inner) -> (u64, Option<u64>) {
        let Some(mut runner) = comp.runner.try_lock() else {
            return (drain_queues_of_stuck(inner, comp), Some(comp.held_by_handler()));
        };
        if comp.is_terminated() {
            return (0, None);
        }
        (drain_and_terminate(inner, comp, &mut runner), None)
    }

    /// Messages the handler holds (the one in a call, and those awaiting redelivery).
    fn held_by_handler(&self) -> u64 {
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        u64::from(self.stats.in_call.load(relaxed)) + self.stats.retry_len.load(relaxed) as u64
    }

    pub(crate) fn note_retry_len(&self, len: usize) {
        // A report, not synchronization (read only by a shutdown that gave up on the owner).
        self.stats.retry_len.store(len, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records that the handler took (`true`) or gave back (`false`) a message.
    pub(crate) fn set_in_call(&self, held: bool) {
        // A report, not synchronization, on the owner's own cache lines (see `ComponentStats`).
        self.stats.in_call.store(held, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Dead-letters the queued messages of a closed component whose runner a stuck worker
/// holds. Both queues are multi-consumer channels, so this needs no runner; the letters
/// awaiting redelivery live in the runner and stay with the stuck handler (reported as
/// held).
fn drain_queues_of_stuck(inner: &Inner, comp: &Arc<Component>) -> u64 {
    let reason = comp.close_reason();
    inner.registry_barrier(comp);
    let mut count = 0u64;
    loop {
        while let Some(letter) = comp.mailbox.pop() {
            if letter.attempts == 0 {
                ComponentStats::bump(&comp.stats.received);
            }
            count += never_run(inner, comp, letter, reason.clone());
        }
        count += drain_lane(inner, comp, &reason);
        if comp.mailbox.senders_in_flight() == 0 && !comp.mailbox.has_queued() {
            return count;
        }
        crate::sync::yield_now();
    }
}

/// Dead-letters everything queued for a closed component, waiting out senders still in
/// flight (pinned ones through the registry barrier, counted ones through `SENDERS`), then
/// marks it terminated. It stays owned (SCHEDULED) forever after, so it is never scheduled
/// again. Returns the number of messages dead-lettered.
pub(crate) fn drain_and_terminate(inner: &Inner, comp: &Arc<Component>, runner: &mut Runner) -> u64 {
    let reason = comp.close_reason();
    if let Some(h) = runner.handler.take() {
        drop_quietly(h);
    }
    let mut count = 0u64;
    let mut drain = |runner: &mut Runner| {
        while let Some(letter) = runner.pop_retry(comp) {
            count += never_run(inner, comp, letter, reason.clone());
        }
        while let Some(letter) = comp.mailbox.pop() {
            if letter.attempts == 0 {
                ComponentStats::bump_owned(&comp.stats.received);
            }
            count += never_run(inner, comp, letter, reason.clone());
        }
        count += drain_lane(inner, comp, &reason);
    };
    // Pinned senders (see `mailbox`): after the barrier each one either saw CLOSED or
    // has pushed, so the drains below catch every message they delivered.
    debug_assert!(comp.mailbox.is_closed(), "drain of an open component");
    inner.registry_barrier(comp);
    loop {
        drain(runner);
        if comp.mailbox.senders_in_flight() == 0 {
            // Every sender that passed the closed check has pushed (or given up), and
            // its push happened-before this point: one last drain catches it.
            drain(runner);
            break;
        }
        crate::sync::yield_now();
    }
    // Release pairs with the Acquire load in `is_terminated`.
    comp.terminated.store(true, Ordering::Release);
    count
}

/// Empties the outcome lane of a closed component: responses are dead-lettered with
/// `reason` (a timeout or failure notice is not a message and goes nowhere), health probes
/// answered `Stopped`. Returns the messages dead-lettered.
fn drain_lane(inner: &Inner, comp: &Component, reason: &DeadLetterReason) -> u64 {
    let mut count = 0;
    while let Some(entry) = comp.mailbox.pop_outcome() {
        match entry {
            LaneEntry::Outcome(outcome) => {
                if let Ok(env) = outcome.result {
                    dead_letter(inner, comp, env, reason.clone());
                    count += 1;
                }
            }
            #[cfg(loom)]
            LaneEntry::Probe(_) if comp.mailbox.drops_probes() => {}
            LaneEntry::Probe(probe) => comp.health.answer(&probe, HealthStatus::Stopped),
        }
    }
    count
}

/// Dead-letters a message of `comp`, failing its request if one waits.
pub(crate) fn dead_letter(inner: &Inner, comp: &Component, env: MessageEnvelope, reason: DeadLetterReason) {
    dead_letter_ticketed(inner, comp, env, reason, None);
}

/// Dead-letters a letter of `comp`, failing its request if it is the registration that
/// waits (not an earlier one under a reused id).
pub(crate) fn dead_letter_letter(inner: &Inner, comp: &Component, letter: Letter, reason: DeadLetterReason) {
    dead_letter_ticketed(inner, comp, letter.env, reason, letter.ticket);
}

fn dead_letter_ticketed(
    inner: &Inner,
    comp: &Component,
    env: MessageEnvelope,
    reason: DeadLetterReason,
    ticket: Option<crate::request::Ticket>,
) {
    ComponentStats::bump(&comp.stats.dead_lettered);
    #[cfg(all(feature = "metrics", not(loom)))]
    crate::metrics::component_dead_letter(&comp.id, &reason);
    inner.dead_letter_ticketed(env, reason, ticket);
}
