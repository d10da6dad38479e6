//! A registered component: its bounded mailbox, its state word, its handler and the turn a
//! worker runs on it.
//!
//! A component has two queues, both guarded by the one state word of
//! [`crate::mailbox`]:
//! - the **mailbox**, a bounded crossbeam channel of messages (capacity per component), and
//! - the **outcome lane**, an unbounded channel of outcomes of requests this component
//!   made (responses, timeouts). It is unbounded so that the one outcome of each request
//!   can always be delivered; its length is bounded by the component's pending requests.
//!
//! A turn takes at most `batch` items (outcomes first, then redeliveries, then the
//! mailbox) and yields, so one busy component cannot starve the others on its worker.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crate::deadletter::DeadLetterReason;
use crate::envelope::{DeliveryGuarantee, MessageEnvelope};
use crate::error::{HandlerError, RegisterError, RequestError};
use crate::handler::{Context, Handler};
use crate::id::ComponentId;
use crate::mailbox::{MailboxState, TurnEnd};
use crate::runtime::Inner;
use crate::stats::ComponentStats;
use crate::supervisor::{Exit, RestartHistory, Supervision, Verdict};
use crate::sync::channel::{Receiver, Sender, bounded, unbounded};
use crate::sync::{Arc, AtomicBool, AtomicUsize, CacheAligned, Mutex, Ordering};
use crate::timer::TimerEvent;

/// Makes a component's handler: at registration and after every restart.
///
/// A plain `std` `Arc`: the factory is shared immutable data, not a synchronization point,
/// and loom's `Arc` cannot hold a trait object.
pub type HandlerFactory = std::sync::Arc<dyn Fn() -> Result<Box<dyn Handler>, HandlerError> + Send + Sync>;

/// Largest mailbox capacity: its slots are allocated up front (about 190 bytes each).
pub const MAX_MAILBOX_CAPACITY: usize = 1 << 20;

/// Per-component settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentConfig {
    /// Mailbox capacity in messages. The mailbox's slots are allocated up front, so memory
    /// per component grows with it (about 190 bytes per slot on 64-bit targets).
    pub mailbox_capacity: usize,
    /// Most messages handled per turn before the component yields its worker.
    pub batch: usize,
    /// Restart policy, limit and backoff.
    pub supervision: Supervision,
    /// Most times an at-least-once message is handed to the handler before it is
    /// dead-lettered (1 means no redelivery).
    pub max_attempts: u32,
    /// Exactly-once deduplication window: how many recently handled exactly-once message
    /// ids the component remembers. A duplicate that arrives after this many later ids
    /// were handled is not recognised.
    #[cfg(feature = "exactly-once-delivery")]
    pub dedup_window: usize,
}

impl Default for ComponentConfig {
    fn default() -> Self {
        Self {
            mailbox_capacity: 128,
            batch: 64,
            supervision: Supervision::default(),
            max_attempts: 3,
            #[cfg(feature = "exactly-once-delivery")]
            dedup_window: 4096,
        }
    }
}

impl ComponentConfig {
    pub(crate) fn validate(&self) -> Result<(), RegisterError> {
        if self.mailbox_capacity == 0 {
            return Err(RegisterError::InvalidConfig("mailbox_capacity must be at least 1"));
        }
        if self.mailbox_capacity > MAX_MAILBOX_CAPACITY {
            return Err(RegisterError::InvalidConfig(
                "mailbox_capacity must be at most MAX_MAILBOX_CAPACITY (1048576)",
            ));
        }
        if self.batch == 0 {
            return Err(RegisterError::InvalidConfig("batch must be at least 1"));
        }
        if self.max_attempts == 0 {
            return Err(RegisterError::InvalidConfig("max_attempts must be at least 1"));
        }
        #[cfg(feature = "exactly-once-delivery")]
        if self.dedup_window == 0 || self.dedup_window > MAX_MAILBOX_CAPACITY {
            return Err(RegisterError::InvalidConfig("dedup_window must be from 1 to 1048576"));
        }
        Ok(())
    }
}

/// Told when the runtime inserts a component made from a spec into its registry, and when
/// it removes it: lets whoever made the spec (the WASM host) keep its own table of
/// components in step with the registry, whichever API registered the spec.
pub(crate) trait RegistryHook: Send + Sync {
    /// The runtime registered `id` (called after the insert succeeded).
    fn registered(&self, id: &ComponentId);
    /// The runtime unregistered `id` (called after its removal from the registry).
    fn unregistered(&self, id: &ComponentId);
}

/// What to register: a handler factory and its settings.
///
/// ```
/// use switchyard::{handler_fn, ComponentSpec, RestartPolicy};
/// let spec = ComponentSpec::new(|| handler_fn(|_ctx, msg| Ok(Some(msg.payload.clone()))))
///     .mailbox_capacity(256)
///     .restart_policy(RestartPolicy::Transient);
/// # let _ = spec;
/// ```
#[derive(Clone)]
pub struct ComponentSpec {
    pub(crate) factory: HandlerFactory,
    pub(crate) config: ComponentConfig,
    /// A plain `std` `Arc`, as for the factory.
    pub(crate) registry_hook: Option<std::sync::Arc<dyn RegistryHook>>,
}

impl ComponentSpec {
    /// A spec whose factory makes a fresh `H` each time.
    pub fn new<H: Handler, F: Fn() -> H + Send + Sync + 'static>(factory: F) -> Self {
        Self {
            factory: std::sync::Arc::new(move || Ok(Box::new(factory()) as Box<dyn Handler>)),
            config: ComponentConfig::default(),
            registry_hook: None,
        }
    }

    /// A spec whose factory may fail (a failure counts as a crash).
    pub fn try_new<F>(factory: F) -> Self
    where
        F: Fn() -> Result<Box<dyn Handler>, HandlerError> + Send + Sync + 'static,
    {
        Self { factory: std::sync::Arc::new(factory), config: ComponentConfig::default(), registry_hook: None }
    }

    /// Sets the hook told when the runtime registers and unregisters this component.
    #[cfg_attr(not(feature = "wasm"), allow(dead_code))]
    pub(crate) fn registry_hook(mut self, hook: std::sync::Arc<dyn RegistryHook>) -> Self {
        self.registry_hook = Some(hook);
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: ComponentConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the mailbox capacity.
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.config.mailbox_capacity = capacity;
        self
    }

    /// Sets the batch size per turn.
    pub fn batch(mut self, batch: usize) -> Self {
        self.config.batch = batch;
        self
    }

    /// Sets the supervision settings.
    pub fn supervision(mut self, supervision: Supervision) -> Self {
        self.config.supervision = supervision;
        self
    }

    /// Sets the restart policy, keeping the other supervision settings.
    pub fn restart_policy(mut self, policy: crate::RestartPolicy) -> Self {
        self.config.supervision.policy = policy;
        self
    }

    /// Sets how many times an at-least-once message may be handed to the handler.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.config.max_attempts = attempts;
        self
    }
}

/// A queued message with its delivery metadata.
pub(crate) struct Letter {
    pub(crate) env: MessageEnvelope,
    pub(crate) guarantee: DeliveryGuarantee,
    /// Times handed to the handler so far.
    pub(crate) attempts: u32,
    /// A request made through `request`, whose requester waits in the pending table.
    pub(crate) tracked: bool,
}

/// The outcome of a request this component made.
pub(crate) struct Outcome {
    pub(crate) request_id: String,
    pub(crate) result: Result<MessageEnvelope, RequestError>,
}

/// State only the component's current owner touches.
pub(crate) struct Runner {
    handler: Option<Box<dyn Handler>>,
    retry: VecDeque<Letter>,
    history: RestartHistory,
    #[cfg(feature = "exactly-once-delivery")]
    dedup: crate::dedup::DedupWindow,
}

impl Runner {
    /// The next letter awaiting redelivery, if any.
    fn pop_retry(&mut self, comp: &Component) -> Option<Letter> {
        let letter = self.retry.pop_front()?;
        comp.note_retry_len(self.retry.len());
        Some(letter)
    }
}

/// Close reasons stored in `Component::close_reason` (0 = open).
const REASON_UNREGISTERED: usize = 1;
const REASON_STOPPED: usize = 2;
const REASON_SHUTDOWN: usize = 3;

/// A registered component.
pub(crate) struct Component {
    pub(crate) id: ComponentId,
    /// Written by every sender: on cache lines of its own.
    pub(crate) state: CacheAligned<MailboxState>,
    pub(crate) tx: Sender<Letter>,
    rx: Receiver<Letter>,
    pub(crate) outcomes_tx: Sender<Outcome>,
    outcomes_rx: Receiver<Outcome>,
    /// Index of the worker that runs this component.
    pub(crate) worker: usize,
    pub(crate) config: ComponentConfig,
    /// Written by the owner per message: kept off the senders' lines.
    pub(crate) stats: CacheAligned<ComponentStats>,
    factory: HandlerFactory,
    registry_hook: Option<std::sync::Arc<dyn RegistryHook>>,
    /// Senders blocked in `send_timeout` on the full mailbox.
    space: SpaceWaiters,
    runner: Mutex<Runner>,
    close_reason: AtomicUsize,
    /// Set once the component was closed and drained; it is never scheduled again.
    terminated: AtomicBool,
    /// True while the handler holds a message (inside `handle`, or `handle_callback` with
    /// a response). Written by the owner around each call, read only by a shutdown that
    /// gave up waiting for a stuck worker. A `std` atomic: a report, not synchronization.
    in_call: std::sync::atomic::AtomicBool,
    /// Letters waiting in the runner for redelivery (mirrors `Runner::retry.len()` for the
    /// same reader as `in_call`).
    retry_len: std::sync::atomic::AtomicUsize,
    /// Invariant check (debug and loom builds): true while the component sits in a run
    /// queue. A `std` atomic, deliberately invisible to loom: it checks, it does not
    /// synchronize.
    #[cfg(any(loom, debug_assertions))]
    queued: std::sync::atomic::AtomicBool,
}

impl Component {
    pub(crate) fn new(id: ComponentId, spec: ComponentSpec, worker: usize, state: MailboxState) -> Self {
        let (tx, rx) = bounded(spec.config.mailbox_capacity);
        let (outcomes_tx, outcomes_rx) = unbounded();
        #[cfg(feature = "exactly-once-delivery")]
        let dedup = crate::dedup::DedupWindow::new(spec.config.dedup_window);
        Self {
            id,
            state: CacheAligned(state),
            tx,
            rx,
            outcomes_tx,
            outcomes_rx,
            worker,
            config: spec.config,
            stats: CacheAligned(ComponentStats::default()),
            factory: spec.factory,
            registry_hook: spec.registry_hook,
            space: SpaceWaiters::default(),
            runner: Mutex::new(Runner {
                handler: None,
                retry: VecDeque::new(),
                history: RestartHistory::default(),
                #[cfg(feature = "exactly-once-delivery")]
                dedup,
            }),
            close_reason: AtomicUsize::new(0),
            terminated: AtomicBool::new(false),
            in_call: std::sync::atomic::AtomicBool::new(false),
            retry_len: std::sync::atomic::AtomicUsize::new(0),
            #[cfg(any(loom, debug_assertions))]
            queued: std::sync::atomic::AtomicBool::new(false),
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
        let mut s = self.stats.snapshot(self.mailbox_len(), self.config.mailbox_capacity, self.state.is_closed());
        s.blocked_senders = self.space.waiting();
        s
    }

    pub(crate) fn mailbox_len(&self) -> usize {
        self.rx.len()
    }

    pub(crate) fn has_queued(&self) -> bool {
        !self.rx.is_empty() || !self.outcomes_rx.is_empty()
    }

    /// Closes the mailbox, recording why. Returns true for the first closer.
    pub(crate) fn close(&self, reason: DeadLetterReason) -> bool {
        let code = match reason {
            DeadLetterReason::Unregistered => REASON_UNREGISTERED,
            DeadLetterReason::Shutdown => REASON_SHUTDOWN,
            _ => REASON_STOPPED,
        };
        // Relaxed: published by the AcqRel RMW in `close` below and read after observing
        // CLOSED (Acquire); the CAS makes the first closer's reason stick.
        let _ = self.close_reason.compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
        let first = self.state.close();
        // Blocked senders give up at once instead of at their deadline.
        self.space.notify();
        first
    }

    /// Blocks a sender that found the mailbox full until the mailbox has drained to half
    /// its capacity, it closes, or `deadline` passes (then returns false). See
    /// [`SpaceWaiters`].
    #[cfg(not(loom))]
    pub(crate) fn wait_for_room(&self, deadline: Instant) -> bool {
        let space = &self.space;
        let capacity = self.config.mailbox_capacity;
        let mut guard = space.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // SeqCst, with the owner's check in `wake_blocked_senders`: see `SpaceWaiters`.
        space.waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut woken = false;
        let room = loop {
            let len = self.rx.len();
            // Woken by the owner: it saw the mailbox at half. Woken by the re-check timer:
            // any free slot will do (the owner may be slow, or the wake-up raced).
            if self.state.is_closed() || len <= capacity / 2 || (!woken && len < capacity) {
                break true;
            }
            let now = Instant::now();
            if now >= deadline {
                break false;
            }
            let wait = (deadline - now).min(ROOM_RECHECK);
            let (g, timeout) = space.room.wait_timeout(guard, wait).unwrap_or_else(std::sync::PoisonError::into_inner);
            guard = g;
            woken = !timeout.timed_out();
        };
        space.waiting.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        room
    }

    /// Called by the owner after taking a message: wakes blocked senders once the mailbox
    /// is at half its capacity. One relaxed load when nobody waits.
    #[inline]
    fn wake_blocked_senders(&self) {
        if self.space.waiting.load(std::sync::atomic::Ordering::Relaxed) != 0
            && self.rx.len() <= self.config.mailbox_capacity / 2
        {
            self.space.notify();
        }
    }

    /// True once a close began. Checked by the owner before each message ahead of the
    /// state word, which senders write on every send: reading that line per message would
    /// bounce it between the sender's and the worker's cores. The state word still decides
    /// (a close that has begun may not have set `CLOSED` yet).
    pub(crate) fn is_closing(&self) -> bool {
        // Relaxed: a hint; `close` publishes CLOSED with its own RMW.
        self.close_reason.load(Ordering::Relaxed) != 0
    }

    fn close_reason(&self) -> DeadLetterReason {
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
        u64::from(self.in_call.load(relaxed)) + self.retry_len.load(relaxed) as u64
    }

    fn note_retry_len(&self, len: usize) {
        self.retry_len.store(len, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records that the handler took (`true`) or gave back (`false`) a message.
    fn set_in_call(&self, held: bool) {
        self.in_call.store(held, std::sync::atomic::Ordering::Relaxed);
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
        while let Ok(letter) = comp.rx.try_recv() {
            if letter.attempts == 0 {
                ComponentStats::bump(&comp.stats.received);
            }
            dead_letter(inner, comp, letter.env, reason.clone());
            count += 1;
        }
        while let Ok(outcome) = comp.outcomes_rx.try_recv() {
            if let Ok(env) = outcome.result {
                dead_letter(inner, comp, env, reason.clone());
                count += 1;
            }
        }
        if comp.state.senders_in_flight() == 0 && !comp.has_queued() {
            return count;
        }
        crate::sync::yield_now();
    }
}

/// Runs one turn of `comp` on the calling worker. The caller owns the component
/// (`SCHEDULED` is set and it was taken from the run queue).
pub(crate) fn run_turn(inner: &Inner, comp: &Arc<Component>) {
    let mut runner = match comp.runner.try_lock() {
        Some(r) => r,
        None => {
            // The state word makes this unreachable: only the owner runs a turn. Loom
            // builds and debug builds treat it as the bug it is.
            debug_assert!(false, "component {} run by two workers at once", comp.id);
            comp.runner.lock()
        }
    };
    if comp.is_terminated() {
        return;
    }
    if comp.state.is_closed() {
        drain_and_terminate(inner, comp, &mut runner);
        return;
    }
    if runner.handler.is_none()
        && start_handler(inner, comp, &mut runner).is_err()
        && !after_exit(inner, comp, &mut runner, Exit::Crash)
    {
        return;
    }
    comp.stats.observe_len(comp.rx.len());

    let mut budget = comp.config.batch;
    while budget > 0 {
        budget -= 1;
        if (comp.is_closing() && comp.state.is_closed()) || inner.workers_stopping() {
            // Closed mid-turn (unregistered), or the runtime's drain deadline passed: the
            // message in progress has finished; what is queued is drained by whoever
            // closes the component.
            break;
        }
        let step = if let Ok(outcome) = comp.outcomes_rx.try_recv() {
            deliver_outcome(inner, comp, &mut runner, outcome)
        } else if let Some(letter) = runner.pop_retry(comp).or_else(|| comp.rx.try_recv().ok()) {
            comp.wake_blocked_senders();
            handle_letter(inner, comp, &mut runner, letter)
        } else {
            break;
        };
        match step {
            Step::Continue => {}
            Step::Exited(exit) => {
                if !after_exit(inner, comp, &mut runner, exit) {
                    return;
                }
            }
        }
    }

    let more = !runner.retry.is_empty() || comp.has_queued() || comp.state.is_closed();
    drop(runner);
    if more || inner.linger(comp) {
        // Keep ownership and go to the back of the run queue (fairness).
        inner.enqueue(comp.clone());
    } else if comp.state.finish_turn(|| comp.has_queued() || comp.state.is_closed()) == TurnEnd::RunAgain {
        inner.enqueue(comp.clone());
    }
}

enum Step {
    Continue,
    Exited(Exit),
}

/// Senders blocked in `send_timeout` on a full mailbox.
///
/// They sleep until the owner has drained the mailbox to half its capacity, not until the
/// first free slot: one wake-up per half mailbox instead of one per message, and a blocked
/// sender burns no CPU that the workers could use. A sleeping sender also re-checks on its
/// own every [`ROOM_RECHECK`] and then takes any free slot, so a slow owner delays it by at
/// most that much, and a wake-up lost to the race between the owner's check of `waiting`
/// and a sender that is just starting to wait costs at most that much too (the owner does
/// not fence its check; the message path stays free of a full barrier).
///
/// Blocking `send_timeout` is not part of the loom model: plain `std` types.
#[derive(Default)]
pub(crate) struct SpaceWaiters {
    waiting: std::sync::atomic::AtomicUsize,
    lock: std::sync::Mutex<()>,
    room: std::sync::Condvar,
}

/// How often a blocked sender re-checks the mailbox on its own.
#[cfg(not(loom))]
const ROOM_RECHECK: Duration = Duration::from_millis(1);

impl SpaceWaiters {
    fn notify(&self) {
        if self.waiting.load(std::sync::atomic::Ordering::SeqCst) != 0 {
            // Under the lock: a sender between its check and its wait cannot miss it.
            let _guard = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            self.room.notify_all();
        }
    }

    /// Senders blocked on the full mailbox now.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Makes and initialises a handler. On failure the runner holds no handler.
fn start_handler(inner: &Inner, comp: &Arc<Component>, runner: &mut Runner) -> Result<(), String> {
    let made = catch_unwind(AssertUnwindSafe(|| (comp.factory)()));
    let mut handler = match made {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return Err(format!("factory failed: {e}")),
        Err(p) => return Err(format!("factory panicked: {}", panic_message(&*p))),
    };
    let init = catch_unwind(AssertUnwindSafe(|| {
        let mut ctx = Context::new(inner, comp, None, 0);
        handler.init(&mut ctx)
    }));
    match init {
        Ok(Ok(())) => {
            runner.handler = Some(handler);
            Ok(())
        }
        Ok(Err(e)) => {
            drop_quietly(handler);
            Err(format!("init failed: {e}"))
        }
        Err(p) => {
            drop_quietly(handler);
            Err(format!("init panicked: {}", panic_message(&*p)))
        }
    }
}

/// Handles one message. Returns whether the handler exited.
fn handle_letter(inner: &Inner, comp: &Arc<Component>, runner: &mut Runner, mut letter: Letter) -> Step {
    if letter.attempts == 0 {
        ComponentStats::bump_owned(&comp.stats.received);
    }
    let env_is_request = letter.env.is_request();
    if letter.tracked && env_is_request && !inner.pending.contains(&letter.env.message_id) {
        // The requester already got its timeout; handling it now would only make a late
        // reply.
        dead_letter(inner, comp, letter.env, DeadLetterReason::TimedOut);
        return Step::Continue;
    }
    #[cfg(feature = "exactly-once-delivery")]
    if letter.guarantee.is_exactly_once() && runner.dedup.contains(&letter.env.message_id) {
        dead_letter(inner, comp, letter.env, DeadLetterReason::Duplicate);
        return Step::Continue;
    }
    let Some(handler) = runner.handler.as_mut() else {
        // No handler (its start failed and the restart is pending): keep the message.
        runner.retry.push_front(letter);
        comp.note_retry_len(runner.retry.len());
        return Step::Continue;
    };
    letter.attempts += 1;
    let attempt = letter.attempts;
    let env = &letter.env;
    let mut ctx = Context::new(inner, comp, Some(env), attempt);
    comp.set_in_call(true);
    let result = catch_unwind(AssertUnwindSafe(|| handler.handle(&mut ctx, env)));
    comp.set_in_call(false);
    let replied = ctx.replied();
    let stop = ctx.stop_requested();
    match result {
        Ok(Ok(reply)) => {
            if let Some(payload) = reply.filter(|_| env_is_request && !replied) {
                let resp = letter.env.reply_to(payload, letter.env.codec, crate::new_message_id());
                inner.deliver_response(resp);
            }
            #[cfg(feature = "exactly-once-delivery")]
            if letter.guarantee.is_exactly_once() {
                runner.dedup.insert(letter.env.message_id.clone());
            }
            ComponentStats::bump_owned(&comp.stats.handled);
            inner.stats.messages_handled.add(1);
            if stop { Step::Exited(Exit::Normal) } else { Step::Continue }
        }
        Ok(Err(e)) => {
            ComponentStats::bump(&comp.stats.failed);
            let reason = e.dead_letter_reason(attempt);
            retry_or_dead_letter(inner, comp, runner, letter, reason);
            if e.is_crash() {
                Step::Exited(Exit::Crash)
            } else if stop {
                Step::Exited(Exit::Normal)
            } else {
                Step::Continue
            }
        }
        Err(panic) => {
            ComponentStats::bump(&comp.stats.failed);
            let message = panic_message(&*panic);
            drop_quietly_payload(panic);
            let reason = DeadLetterReason::HandlerPanicked { message, attempts: attempt };
            retry_or_dead_letter(inner, comp, runner, letter, reason);
            Step::Exited(Exit::Crash)
        }
    }
}

fn retry_or_dead_letter(
    inner: &Inner,
    comp: &Arc<Component>,
    runner: &mut Runner,
    letter: Letter,
    reason: DeadLetterReason,
) {
    if letter.guarantee.redelivers() && letter.attempts < comp.config.max_attempts {
        ComponentStats::bump(&comp.stats.redelivered);
        inner.stats.redeliveries.add(1);
        runner.retry.push_back(letter);
        comp.note_retry_len(runner.retry.len());
    } else {
        dead_letter(inner, comp, letter.env, reason);
    }
}

fn deliver_outcome(inner: &Inner, comp: &Arc<Component>, runner: &mut Runner, outcome: Outcome) -> Step {
    let Some(handler) = runner.handler.as_mut() else {
        // Only reachable if a start failed; the outcome would otherwise be lost.
        if let Ok(env) = outcome.result {
            dead_letter(inner, comp, env, DeadLetterReason::ComponentStopped);
        }
        return Step::Continue;
    };
    let is_message = outcome.result.is_ok();
    let mut ctx = Context::new(inner, comp, None, 1);
    comp.set_in_call(is_message);
    let result = catch_unwind(AssertUnwindSafe(|| {
        handler.handle_callback(&mut ctx, &outcome.request_id, outcome.result.as_ref())
    }));
    comp.set_in_call(false);
    let stop = ctx.stop_requested();
    let (failure, exit) = match result {
        Ok(Ok(())) => (None, None),
        Ok(Err(e)) => (Some(e.dead_letter_reason(1)), e.is_crash().then_some(Exit::Crash)),
        Err(p) => {
            let message = panic_message(&*p);
            drop_quietly_payload(p);
            (Some(DeadLetterReason::HandlerPanicked { message, attempts: 1 }), Some(Exit::Crash))
        }
    };
    if failure.is_some() {
        ComponentStats::bump(&comp.stats.failed);
    }
    // A response envelope is a message: it ends handled or dead-lettered. A timeout or
    // failure notice is not a message and needs no accounting.
    if is_message {
        match (failure, outcome.result) {
            (None, Ok(_)) => {
                ComponentStats::bump_owned(&comp.stats.handled);
                inner.stats.messages_handled.add(1);
            }
            (Some(reason), Ok(env)) => dead_letter(inner, comp, env, reason),
            (_, Err(_)) => {}
        }
    }
    match exit {
        Some(e) => Step::Exited(e),
        None if stop => Step::Exited(Exit::Normal),
        None => Step::Continue,
    }
}

/// Applies the supervisor's verdict after the handler exited. Returns true when the turn
/// may go on with a fresh handler now; false when the turn is over (the component is
/// waiting out a backoff in the timer, or it stopped).
fn after_exit(inner: &Inner, comp: &Arc<Component>, runner: &mut Runner, exit: Exit) -> bool {
    if let Some(h) = runner.handler.take() {
        drop_quietly(h);
    }
    match runner.history.on_exit(&comp.config.supervision, exit, Instant::now()) {
        Verdict::Restart(backoff) => {
            ComponentStats::bump(&comp.stats.restarts);
            inner.stats.restarts.add(1);
            if backoff == Duration::ZERO {
                match start_handler(inner, comp, runner) {
                    Ok(()) => true,
                    Err(_) => after_exit(inner, comp, runner, Exit::Crash),
                }
            } else {
                // The timer becomes the owner until the backoff ends (SCHEDULED stays set,
                // so senders do not schedule it meanwhile); the handler is made then.
                if let Err(TimerEvent::Resume(c)) =
                    inner.timer.schedule_at(Instant::now() + backoff, TimerEvent::Resume(comp.clone()))
                {
                    // The timer stopped: the runtime is shutting down and will drain it.
                    drop(c);
                }
                false
            }
        }
        Verdict::Stop => {
            comp.close(DeadLetterReason::ComponentStopped);
            drain_and_terminate(inner, comp, runner);
            false
        }
    }
}

/// Dead-letters everything queued for a closed component, waiting out senders still in
/// flight (pinned ones through the registry barrier, counted ones through `SENDERS`), then
/// marks it terminated. It stays owned (SCHEDULED) forever after, so it is
/// never scheduled again. Returns the number of messages dead-lettered.
fn drain_and_terminate(inner: &Inner, comp: &Arc<Component>, runner: &mut Runner) -> u64 {
    let reason = comp.close_reason();
    if let Some(h) = runner.handler.take() {
        drop_quietly(h);
    }
    let mut count = 0u64;
    let mut drain = |runner: &mut Runner| {
        while let Some(letter) = runner.pop_retry(comp) {
            dead_letter(inner, comp, letter.env, reason.clone());
            count += 1;
        }
        while let Ok(letter) = comp.rx.try_recv() {
            if letter.attempts == 0 {
                ComponentStats::bump_owned(&comp.stats.received);
            }
            dead_letter(inner, comp, letter.env, reason.clone());
            count += 1;
        }
        while let Ok(outcome) = comp.outcomes_rx.try_recv() {
            if let Ok(env) = outcome.result {
                dead_letter(inner, comp, env, reason.clone());
                count += 1;
            }
        }
    };
    // Pinned senders (see `mailbox`): after the barrier each one either saw CLOSED or
    // has pushed, so the drains below catch every message they delivered.
    debug_assert!(comp.state.is_closed(), "drain of an open component");
    inner.registry_barrier(comp);
    loop {
        drain(runner);
        if comp.state.senders_in_flight() == 0 {
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

/// Dead-letters a message of `comp`, failing its request if one waits.
pub(crate) fn dead_letter(inner: &Inner, comp: &Component, env: MessageEnvelope, reason: DeadLetterReason) {
    ComponentStats::bump(&comp.stats.dead_lettered);
    inner.dead_letter(env, reason);
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Drops a handler, containing a panic in its `Drop`.
fn drop_quietly(h: Box<dyn Handler>) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(h)));
}

/// Drops a panic payload, containing a panic in its `Drop`.
fn drop_quietly_payload(p: Box<dyn std::any::Any + Send>) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(p)));
}
