//! Dead letters: messages the runtime accepted but could not hand to a handler, or that a
//! handler failed on, each with the reason.
//!
//! Every dead letter is counted by reason (exactly, in the stats). The letters themselves go
//! to the hook the host installed, or else to a bounded queue the host drains with
//! [`crate::RuntimeHandle::dead_letters`]; when that queue is full the oldest letter is dropped
//! and counted in `dead_letters_dropped`, so memory stays bounded and the loss is visible.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::envelope::MessageEnvelope;
use crate::error::RequestError;
use crate::failure::{GuestErrorCode, TrapKind};
use crate::stats::StripedCounter;
use crate::sync::channel::{Receiver, Sender, TrySendError, bounded};

/// Why a message was dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// The runtime could not find the target (for messages it could not hand back).
    NoSuchComponent,
    /// The target's mailbox was full (for messages it could not hand back).
    MailboxFull,
    /// The target was closed (for messages it could not hand back).
    Closed,
    /// The envelope was invalid or too large (for messages it could not hand back).
    Invalid,
    /// The handler returned an error on the last allowed attempt.
    HandlerFailed {
        /// The handler's error text (for a WASM guest: the message of its `error`).
        error: String,
        /// The `error-code` a WASM guest returned; `None` for native handlers.
        code: Option<GuestErrorCode>,
        /// How many times the message was handed to the handler.
        attempts: u32,
    },
    /// The handler panicked on the last allowed attempt.
    HandlerPanicked {
        /// The panic message.
        message: String,
        /// How many times the message was handed to the handler.
        attempts: u32,
    },
    /// A request whose requester had already timed out was skipped, not handled.
    TimedOut,
    /// A response arrived after its request completed or timed out, or for no request.
    LateReply,
    /// The runtime shut down before the message was handled.
    Shutdown,
    /// The target was unregistered before the message was handled.
    Unregistered,
    /// The target stopped (restart limit reached, or a policy that does not restart).
    ComponentStopped,
    /// A publish found no subscriber for its topic.
    NoSubscribers,
    /// An exactly-once message whose id the target already handled.
    Duplicate,
    /// A WASM guest trapped on the last allowed attempt. A trap is treated like a panic:
    /// the instance is discarded and the component restarts from its factory under its
    /// supervision policy (the mailbox is kept).
    Trapped {
        /// Why it trapped.
        kind: TrapKind,
        /// wasmtime's account of the trap, with the guest's backtrace when it has one.
        detail: String,
        /// How many times the message was handed to the handler.
        attempts: u32,
    },
    /// A response to a pending request, from a component other than the one the request
    /// was sent to. The request keeps waiting for its addressee's response.
    UnexpectedResponder,
    /// A message for a component on another node that this node could not hand over:
    /// cut off from the server, no confirmation in time, or the node left the cluster.
    Transport {
        /// What happened.
        detail: String,
    },
}

impl DeadLetterReason {
    /// Number of distinct reasons (for per-reason counters).
    pub const COUNT: usize = 16;

    /// A stable index in `0..COUNT`.
    pub fn index(&self) -> usize {
        match self {
            DeadLetterReason::NoSuchComponent => 0,
            DeadLetterReason::MailboxFull => 1,
            DeadLetterReason::Closed => 2,
            DeadLetterReason::Invalid => 3,
            DeadLetterReason::HandlerFailed { .. } => 4,
            DeadLetterReason::HandlerPanicked { .. } => 5,
            DeadLetterReason::TimedOut => 6,
            DeadLetterReason::LateReply => 7,
            DeadLetterReason::Shutdown => 8,
            DeadLetterReason::Unregistered => 9,
            DeadLetterReason::ComponentStopped => 10,
            DeadLetterReason::NoSubscribers => 11,
            DeadLetterReason::Duplicate => 12,
            DeadLetterReason::Trapped { .. } => 13,
            DeadLetterReason::UnexpectedResponder => 14,
            DeadLetterReason::Transport { .. } => 15,
        }
    }

    /// A short stable name (`"handler_failed"`, ...), the one used in stats.
    pub fn name(&self) -> &'static str {
        REASON_NAMES[self.index()]
    }
}

/// Names of the reasons, indexed by [`DeadLetterReason::index`].
pub const REASON_NAMES: [&str; DeadLetterReason::COUNT] = [
    "no_such_component",
    "mailbox_full",
    "closed",
    "invalid",
    "handler_failed",
    "handler_panicked",
    "timed_out",
    "late_reply",
    "shutdown",
    "unregistered",
    "component_stopped",
    "no_subscribers",
    "duplicate",
    "trapped",
    "unexpected_responder",
    "transport",
];

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeadLetterReason::HandlerFailed { error, code: None, attempts } => {
                write!(f, "handler failed after {attempts} attempt(s): {error}")
            }
            DeadLetterReason::HandlerFailed { error, code: Some(code), attempts } => {
                write!(f, "handler failed after {attempts} attempt(s): {code}: {error}")
            }
            DeadLetterReason::Trapped { kind, detail, attempts } => write!(
                f,
                "trapped ({kind}) after {attempts} attempt(s), handled like a panic (instance discarded, \
                 component restarted under its supervision): {detail}"
            ),
            DeadLetterReason::HandlerPanicked { message, attempts } => {
                write!(f, "handler panicked after {attempts} attempt(s): {message}")
            }
            DeadLetterReason::Transport { detail } => write!(f, "transport: {detail}"),
            other => f.write_str(other.name()),
        }
    }
}

/// A message the runtime gave up on, with why and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The message.
    pub envelope: MessageEnvelope,
    /// Why it was dead-lettered.
    pub reason: DeadLetterReason,
    /// When.
    pub at: DateTime<Utc>,
}

/// A function that receives every dead letter, on the thread that dead-letters it (a worker,
/// the timer, or a sender). Keep it short and non-blocking.
pub type DeadLetterHook = Box<dyn Fn(DeadLetter) + Send + Sync>;

/// Where dead letters go: a hook, or a bounded drop-oldest queue.
pub(crate) struct DeadLetterSink {
    hook: Option<DeadLetterHook>,
    tx: Sender<DeadLetter>,
    rx: Receiver<DeadLetter>,
    pub(crate) by_reason: [StripedCounter; DeadLetterReason::COUNT],
    pub(crate) dropped: StripedCounter,
    /// Calls of the hook that panicked (the panic is contained; see [`Self::put`]).
    pub(crate) hook_panics: StripedCounter,
}

impl DeadLetterSink {
    pub(crate) fn new(capacity: usize, hook: Option<DeadLetterHook>) -> Self {
        let (tx, rx) = bounded(capacity.max(1));
        Self {
            hook,
            tx,
            rx,
            by_reason: std::array::from_fn(|_| StripedCounter::new()),
            dropped: StripedCounter::new(),
            hook_panics: StripedCounter::new(),
        }
    }

    /// Records one dead letter.
    ///
    /// The hook is the host's code running on whatever thread dead-letters (a worker, the
    /// timer, a sender): a panic in it is caught and counted, never allowed to unwind
    /// through the runtime (a worker that unwound would strand every component homed on
    /// it). The letter still counts as dead-lettered.
    pub(crate) fn put(&self, envelope: MessageEnvelope, reason: DeadLetterReason) {
        self.by_reason[reason.index()].add(1);
        #[cfg(all(feature = "tracing", not(loom)))]
        crate::trace::dead_letter(&envelope, &reason);
        let letter = DeadLetter { envelope, reason, at: Utc::now() };
        if let Some(hook) = &self.hook {
            let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(letter)));
            if let Err(payload) = called {
                self.hook_panics.add(1);
                // A payload whose own drop panics must not unwind either.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload)));
            }
            return;
        }
        let mut letter = letter;
        loop {
            match self.tx.try_send(letter) {
                Ok(()) => return,
                Err(TrySendError::Full(back)) => {
                    // Drop the oldest to keep memory bounded; the drop is counted.
                    if self.rx.try_recv().is_ok() {
                        self.dropped.add(1);
                    }
                    letter = back;
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.dropped.add(1);
                    return;
                }
            }
        }
    }

    /// Takes the queued dead letters (empty when a hook is installed).
    pub(crate) fn drain(&self) -> Vec<DeadLetter> {
        std::iter::from_fn(|| self.rx.try_recv().ok()).collect()
    }

    /// Total dead letters recorded.
    pub(crate) fn total(&self) -> u64 {
        self.by_reason.iter().map(StripedCounter::sum).sum()
    }
}

impl crate::runtime::Inner {
    /// Dead-letters a message that was accepted earlier. A request's waiting requester gets
    /// [`RequestError::Failed`].
    pub(crate) fn dead_letter(&self, env: MessageEnvelope, reason: DeadLetterReason) {
        self.dead_letter_ticketed(env, reason, None);
    }

    /// As [`Inner::dead_letter`], for a copy of the request registration `ticket` names: a
    /// copy of an earlier request under a reused id fails nobody.
    pub(crate) fn dead_letter_ticketed(
        &self,
        env: MessageEnvelope,
        reason: DeadLetterReason,
        ticket: Option<crate::request::Ticket>,
    ) {
        // A request fails its requester only if it is still the addressee's to answer: a
        // component that handed it on (`crate::delegation`) fails its own copy alone.
        let responder = env.to.fingerprint();
        let pending =
            env.is_request().then(|| self.pending.take_responded_by(&env.message_id, responder, ticket)).flatten();
        if let Some(pending) = pending {
            self.cancel_deadline(&pending.requester, pending.deadline);
            self.complete(pending, &env.message_id, Err(RequestError::Failed(reason.clone())));
        }
        self.dead.put(env, reason);
    }

    /// Records a dead letter without touching the pending table (the cluster bridge fails
    /// its requests itself, by deadline entry, so that a newer request reusing the id is
    /// left alone).
    #[cfg(all(feature = "cluster", not(loom)))]
    pub(crate) fn dead_letter_only(&self, env: MessageEnvelope, reason: DeadLetterReason) {
        self.dead.put(env, reason);
    }

    /// Dead-letters a send attempt that was never accepted (counted as sent).
    pub(crate) fn dead_letter_at_send(&self, env: MessageEnvelope, reason: DeadLetterReason) {
        self.stats.dead_lettered_at_send.add(1);
        self.dead_letter(env, reason);
    }

    pub(crate) fn take_dead_letters(&self) -> Vec<DeadLetter> {
        self.dead.drain()
    }
}
