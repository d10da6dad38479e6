//! Spans and events through [`tracing`](https://docs.rs/tracing) (the `tracing` feature).
//!
//! Every span and event carries the component id as the field `component`; targets are
//! `switchyard`. With no subscriber installed each call site costs a check of a static
//! flag. What is emitted:
//!
//! | name / message | kind, level | fields |
//! |---|---|---|
//! | `turn` | span, debug | `component`: one turn of a component on its worker |
//! | `message` | span, trace | `component`, `message_id`, `attempt`: one message in the handler |
//! | `handler failed` | event, warn | `component`, `message_id`, `attempt`, `reason` |
//! | `trap` | event, warn | `component`, `kind`, `detail`: a WASM trap |
//! | `restart` | event, info | `component`, `backoff_ms` |
//! | `component stopped` | event, warn | `component`: supervision gave up |
//! | `dead letter` | event, warn | `component` (the target), `from`, `message_id`, `reason`, `detail` |
//! | `request` | event, debug | `component` (the target), `from`, `request_id`, `timeout_ms` |
//! | `request outcome` | event, debug | `component` (the requester; `host` or `remote` for those), `request_id`, `outcome` (`response`, `timeout`, `failed`) |
//! | guest log lines | event at the guest's level | `component`, `stream` (`log`, `stdout`, `stderr`) |
//!
//! Text that came from outside the host (a guest's error or log line, a trap's backtrace,
//! another node's error) is escaped in every event ([`crate::text::printable`]): a
//! subscriber writing lines to a terminal shows it as one line of plain text.

use std::time::Duration;

use crate::deadletter::DeadLetterReason;
use crate::envelope::MessageEnvelope;
use crate::id::ComponentId;
use crate::text::printable;

/// The span of one turn of `id`.
pub(crate) fn turn(id: &ComponentId) -> tracing::span::EnteredSpan {
    tracing::debug_span!(target: "switchyard", "turn", component = %id).entered()
}

/// The span of one message in the handler.
pub(crate) fn message(id: &ComponentId, env: &MessageEnvelope, attempt: u32) -> tracing::span::EnteredSpan {
    tracing::trace_span!(target: "switchyard", "message", component = %id, message_id = %env.message_id, attempt)
        .entered()
}

/// A handler attempt failed (error, panic, trap).
pub(crate) fn handler_failed(id: &ComponentId, env: &MessageEnvelope, attempt: u32, reason: &DeadLetterReason) {
    tracing::warn!(
        target: "switchyard",
        component = %id,
        message_id = %env.message_id,
        attempt,
        reason = reason.name(),
        "handler failed: {}",
        printable(&reason.to_string())
    );
}

/// A WASM guest trapped.
#[cfg(feature = "wasm")]
pub(crate) fn trap(id: &ComponentId, kind: crate::TrapKind, detail: &str) {
    tracing::warn!(target: "switchyard", component = %id, kind = kind.name(), detail = %printable(detail), "trap");
}

/// Supervision restarts `id` after `backoff`.
pub(crate) fn restart(id: &ComponentId, backoff: Duration) {
    tracing::info!(target: "switchyard", component = %id, backoff_ms = backoff.as_millis() as u64, "restart");
}

/// Supervision stopped `id` for good.
pub(crate) fn stopped(id: &ComponentId) {
    tracing::warn!(target: "switchyard", component = %id, "component stopped");
}

/// A message was dead-lettered.
pub(crate) fn dead_letter(env: &MessageEnvelope, reason: &DeadLetterReason) {
    tracing::warn!(
        target: "switchyard",
        component = %env.to,
        from = %env.from,
        message_id = %env.message_id,
        reason = reason.name(),
        detail = %printable(&reason.to_string()),
        "dead letter"
    );
}

/// A request was made (`component`: the target).
pub(crate) fn request(env: &MessageEnvelope, timeout: Duration) {
    tracing::debug!(
        target: "switchyard",
        component = %env.to,
        from = %env.from,
        request_id = %env.message_id,
        timeout_ms = timeout.as_millis() as u64,
        "request"
    );
}

/// A request reached its one outcome (`component`: the requester, `host` for a host
/// thread, `remote` for another node).
pub(crate) fn request_outcome(requester: &str, request_id: &str, outcome: &'static str) {
    tracing::debug!(target: "switchyard", component = requester, request_id, outcome, "request outcome");
}

/// A guest's log line (or a line of its stdout or stderr) as an event at its level.
#[cfg(feature = "wasm")]
pub(crate) fn guest_line(id: &ComponentId, level: &str, stream: &str, line: &str) {
    // Escaped by the sandbox already; escaping is idempotent, so a sink of the host's own
    // that hands lines here unescaped is covered too.
    let line = printable(line);
    match level {
        "trace" => tracing::trace!(target: "switchyard::guest", component = %id, stream, "{line}"),
        "debug" => tracing::debug!(target: "switchyard::guest", component = %id, stream, "{line}"),
        "warn" => tracing::warn!(target: "switchyard::guest", component = %id, stream, "{line}"),
        "error" => tracing::error!(target: "switchyard::guest", component = %id, stream, "{line}"),
        _ => tracing::info!(target: "switchyard::guest", component = %id, stream, "{line}"),
    }
}
