//! A component's turn on its worker: up to `batch` messages (outcomes first, then
//! redeliveries, then the queue), each handed to the handler with panics caught, and
//! supervision's verdict when the handler crashes.
//!
//! Only the component's owner runs a turn (the state word guarantees one at a time); the
//! [`Runner`] it works on is the owner's alone. A turn yields after `batch` items so one
//! busy component cannot starve the others on its worker.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crate::component::{Component, dead_letter, dead_letter_letter, drain_and_terminate};
use crate::deadletter::DeadLetterReason;
use crate::handler::{Context, Handler};
use crate::health::{HealthProbe, HealthStatus};
use crate::mailbox::{LaneEntry, Letter, Outcome, TurnEnd};
use crate::runtime::Inner;
use crate::spec::ComponentConfig;
use crate::stats::ComponentStats;
use crate::supervisor::{Exit, RestartHistory, Verdict};
use crate::sync::Arc;
use crate::timer::TimerEvent;

/// State only the component's current owner touches.
pub(crate) struct Runner {
    pub(crate) handler: Option<Box<dyn Handler>>,
    retry: VecDeque<Letter>,
    history: RestartHistory,
    #[cfg(feature = "exactly-once-delivery")]
    dedup: crate::dedup::DedupWindow,
}

impl Runner {
    pub(crate) fn new(config: &ComponentConfig) -> Self {
        let _ = config;
        Self {
            handler: None,
            retry: VecDeque::new(),
            history: RestartHistory::default(),
            #[cfg(feature = "exactly-once-delivery")]
            dedup: crate::dedup::DedupWindow::new(config.dedup_window),
        }
    }

    /// The next letter awaiting redelivery, if any.
    pub(crate) fn pop_retry(&mut self, comp: &Component) -> Option<Letter> {
        let letter = self.retry.pop_front()?;
        comp.note_retry_len(self.retry.len());
        Some(letter)
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
    #[cfg(all(feature = "tracing", not(loom)))]
    let _turn = crate::trace::turn(&comp.id);
    if comp.mailbox.is_closed() {
        drain_and_terminate(inner, comp, &mut runner);
        return;
    }
    if runner.handler.is_none()
        && start_handler(inner, comp, &mut runner).is_err()
        && !after_exit(inner, comp, &mut runner, Exit::Crash)
    {
        return;
    }
    comp.stats.observe_len(comp.mailbox.len());

    let mut budget = comp.config.batch;
    while budget > 0 {
        budget -= 1;
        if (comp.is_closing() && comp.mailbox.is_closed()) || inner.workers_stopping() {
            // Closed mid-turn (unregistered), or the runtime's drain deadline passed: the
            // message in progress has finished; what is queued is drained by whoever
            // closes the component.
            break;
        }
        let step = if let Some(entry) = comp.mailbox.pop_outcome() {
            match entry {
                LaneEntry::Outcome(outcome) => deliver_outcome(inner, comp, &mut runner, outcome),
                LaneEntry::Probe(probe) => check_health(inner, comp, &mut runner, &probe),
            }
        } else if let Some(letter) = runner.pop_retry(comp).or_else(|| comp.mailbox.pop()) {
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

    let more = !runner.retry.is_empty() || comp.mailbox.has_queued() || comp.mailbox.is_closed();
    drop(runner);
    if more || inner.linger(comp) {
        // Keep ownership and go to the back of the run queue (fairness).
        inner.enqueue(comp.clone());
    } else if comp.mailbox.finish_turn() == TurnEnd::RunAgain {
        inner.enqueue(comp.clone());
    }
}

enum Step {
    Continue,
    Exited(Exit),
}

/// Makes and initialises a handler. On failure the runner holds no handler.
fn start_handler(inner: &Inner, comp: &Arc<Component>, runner: &mut Runner) -> Result<(), String> {
    let started = try_start_handler(inner, comp, runner);
    if let Err(why) = &started {
        // Kept for the host: a component that never starts only ever shows its restarts
        // and then `component_stopped` dead letters otherwise, never why.
        comp.note_start_failure(why);
    }
    started
}

fn try_start_handler(inner: &Inner, comp: &Arc<Component>, runner: &mut Runner) -> Result<(), String> {
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
    if let Some(ticket) = letter.ticket.filter(|_| env_is_request)
        && !inner.pending.holds(&letter.env.message_id, ticket)
    {
        // The requester already got its timeout (and may have asked again under the same
        // id): handling this copy now would only make a late reply.
        dead_letter_letter(inner, comp, letter, DeadLetterReason::TimedOut);
        return Step::Continue;
    }
    #[cfg(feature = "exactly-once-delivery")]
    if letter.guarantee.is_exactly_once() && runner.dedup.contains(&letter.env.message_id) {
        // Handled before: the stream (if it offered this copy) may forget it.
        #[cfg(all(feature = "cluster", not(loom)))]
        if let Some(receipt) = letter.receipt.take() {
            receipt.ack();
        }
        dead_letter_letter(inner, comp, letter, DeadLetterReason::Duplicate);
        return Step::Continue;
    }
    let Some(handler) = runner.handler.as_mut() else {
        // No handler (its start failed and the restart is pending): keep the message.
        runner.retry.push_front(letter);
        comp.note_retry_len(runner.retry.len());
        return Step::Continue;
    };
    letter.attempts += 1;
    // An offer of the cluster's stream is numbered by the stream (it counts the offers
    // made to every node).
    #[cfg(all(feature = "cluster", not(loom)))]
    let attempt = letter.receipt.as_ref().map_or(letter.attempts, |r| r.delivered);
    #[cfg(not(all(feature = "cluster", not(loom))))]
    let attempt = letter.attempts;
    let env = &letter.env;
    let mut ctx = Context::new(inner, comp, Some(env), attempt).ticketed(letter.ticket);
    #[cfg(all(feature = "tracing", not(loom)))]
    let _message = crate::trace::message(&comp.id, env, attempt);
    comp.set_in_call(true);
    #[cfg(all(feature = "metrics", not(loom)))]
    let started = comp.handler_seconds.as_ref().map(|_| Instant::now());
    let result = catch_unwind(AssertUnwindSafe(|| handler.handle(&mut ctx, env)));
    #[cfg(all(feature = "metrics", not(loom)))]
    if let (Some(h), Some(t)) = (&comp.handler_seconds, started) {
        h.record(t.elapsed().as_secs_f64());
    }
    comp.set_in_call(false);
    let replied = ctx.replied();
    let stop = ctx.stop_requested();
    match result {
        Ok(Ok(reply)) => {
            if let Some(payload) = reply.filter(|_| env_is_request && !replied) {
                let resp = letter.env.reply_to(payload, letter.env.codec, crate::new_message_id());
                inner.deliver_response_to(resp, letter.ticket);
            }
            #[cfg(feature = "exactly-once-delivery")]
            if letter.guarantee.is_exactly_once() {
                runner.dedup.insert(letter.env.message_id.clone());
            }
            ComponentStats::bump_owned(&comp.stats.handled);
            inner.stats.messages_handled.add(1);
            // Acknowledged only now that the handler returned (at least once across nodes).
            #[cfg(all(feature = "cluster", not(loom)))]
            if let Some(receipt) = letter.receipt.take() {
                receipt.ack();
            }
            if stop { Step::Exited(Exit::Normal) } else { Step::Continue }
        }
        Ok(Err(e)) => {
            ComponentStats::bump(&comp.stats.failed);
            let reason = e.dead_letter_reason(attempt);
            #[cfg(all(feature = "tracing", not(loom)))]
            crate::trace::handler_failed(&comp.id, &letter.env, attempt, &reason);
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
            #[cfg(all(feature = "tracing", not(loom)))]
            crate::trace::handler_failed(&comp.id, &letter.env, attempt, &reason);
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
    // A message from the cluster's stream is redelivered by the stream (to this node or
    // another hosting the component), which counts the offers; the last one allowed by
    // the component's `max_attempts` ends here, dead-lettered.
    #[cfg(all(feature = "cluster", not(loom)))]
    let mut letter = letter;
    #[cfg(all(feature = "cluster", not(loom)))]
    if let Some(receipt) = letter.receipt.take() {
        if receipt.is_last() {
            receipt.stop_offering();
            dead_letter_letter(inner, comp, letter, reason);
        } else {
            ComponentStats::bump(&comp.stats.redelivered);
            inner.stats.redeliveries.add(1);
            give_back(inner, receipt);
        }
        return;
    }
    if letter.guarantee.redelivers() && letter.attempts < comp.config.max_attempts {
        ComponentStats::bump(&comp.stats.redelivered);
        inner.stats.redeliveries.add(1);
        runner.retry.push_back(letter);
        comp.note_retry_len(runner.retry.len());
    } else {
        dead_letter_letter(inner, comp, letter, reason);
    }
}

/// Gives an at-least-once message back to the cluster's stream, unhandled here: it left
/// this node, as a message another node took does (counted as forwarded).
#[cfg(all(feature = "cluster", not(loom)))]
pub(crate) fn give_back(inner: &Inner, receipt: Box<crate::cluster::Receipt>) {
    inner.stats.messages_forwarded.add(1);
    receipt.give_back(None);
}

/// A letter its component will never run (it stopped, or is closing): dead-lettered, or,
/// if the cluster's stream offered it, given back for another offer. Returns 1 if it was
/// dead-lettered, else 0.
pub(crate) fn never_run(inner: &Inner, comp: &Component, letter: Letter, reason: DeadLetterReason) -> u64 {
    #[cfg(all(feature = "cluster", not(loom)))]
    if let Some(receipt) = letter.receipt {
        give_back(inner, receipt);
        return 0;
    }
    dead_letter_letter(inner, comp, letter, reason);
    1
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

/// Answers a health probe with the handler's own check (see `crate::health`). A panic in
/// the check, or a crash it reports (a WASM guest's check that trapped), answers unhealthy
/// and replaces the handler with a fresh one from the factory, at once and without counting
/// a restart: whoever can ask for a health check (an HTTP endpoint, say) must not be able
/// to drive the component's supervision to stop it. Only a handler that cannot be made
/// again is a crash.
fn check_health(inner: &Inner, comp: &Arc<Component>, runner: &mut Runner, probe: &HealthProbe) -> Step {
    if probe.is_answered() {
        // Answered `Restarting` by a backoff that began after it was pushed.
        return Step::Continue;
    }
    let Some(handler) = runner.handler.as_mut() else {
        comp.health.answer(probe, HealthStatus::Restarting);
        return Step::Continue;
    };
    let mut ctx = Context::new(inner, comp, None, 0);
    let result = catch_unwind(AssertUnwindSafe(|| handler.health(&mut ctx)));
    let (status, crashed) = match result {
        Ok(health) => (HealthStatus::from(health), ctx.crash_reported()),
        Err(p) => {
            let reason = format!("health check panicked: {}", panic_message(&*p));
            drop_quietly_payload(p);
            (HealthStatus::Unhealthy { reason }, true)
        }
    };
    comp.health.answer(probe, status);
    if crashed {
        if let Some(h) = runner.handler.take() {
            drop_quietly(h);
        }
        return match start_handler(inner, comp, runner) {
            Ok(()) => Step::Continue,
            Err(_) => Step::Exited(Exit::Crash),
        };
    }
    if ctx.stop_requested() { Step::Exited(Exit::Normal) } else { Step::Continue }
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
            #[cfg(all(feature = "tracing", not(loom)))]
            crate::trace::restart(&comp.id, backoff);
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
                comp.health.enter_backoff();
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
            #[cfg(all(feature = "tracing", not(loom)))]
            crate::trace::stopped(&comp.id);
            comp.close(DeadLetterReason::ComponentStopped);
            // Stopped for good: no longer served to the cluster (other nodes hosting the
            // id take its messages, and its stream offers, from now on).
            #[cfg(all(feature = "cluster", not(loom)))]
            if let Some(bridge) = inner.cluster.get() {
                bridge.unhost(comp.id.clone());
            }
            drain_and_terminate(inner, comp, runner);
            false
        }
    }
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
pub(crate) fn drop_quietly(h: Box<dyn Handler>) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(h)));
}

/// Drops a panic payload, containing a panic in its `Drop`.
fn drop_quietly_payload(p: Box<dyn std::any::Any + Send>) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(p)));
}
