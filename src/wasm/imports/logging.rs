//! The `logging` interface: a guest's log lines, bounded in length and attributed to its
//! component, handed to the host's [`LogSink`].

use wasmtime::component::HasData;

use super::Principal;
use crate::id::ComponentId;
use crate::sync::Arc;
use crate::wasm::bindings::switchyard::component::logging::{Host, Level};
use crate::wasm::wasi::output::{OutputBudget, escape};

/// Where guest log lines go: `(component, level, message)`.
pub type LogSink = Arc<dyn Fn(&ComponentId, &str, &str) + Send + Sync>;

/// The sink of a host built without one: `[level] component: message` on stderr.
pub(crate) fn stderr_sink() -> LogSink {
    Arc::new(|id: &ComponentId, level: &str, msg: &str| eprintln!("[{level}] {id}: {msg}"))
}

/// A sink that makes every guest line a `tracing` event (the `tracing` feature): a
/// `logging.log` call at its level, a line of the guest's stdout at info and of its stderr
/// at warn, with the fields `component` and `stream` (`log`, `stdout`, `stderr`), target
/// `switchyard::guest`. Give it to [`crate::WasmHost::build`].
#[cfg(feature = "tracing")]
pub fn tracing_log_sink() -> LogSink {
    Arc::new(|id: &ComponentId, level: &str, msg: &str| match level {
        "stdout" => crate::trace::guest_line(id, "info", "stdout", msg),
        "stderr" => crate::trace::guest_line(id, "warn", "stderr", msg),
        level => crate::trace::guest_line(id, level, "log", msg),
    })
}

/// The longest message one `log` call emits, in characters; the rest is dropped.
const MAX_LOG_CHARS: usize = 4096;

/// Names [`LoggingView`] to the generated `logging::add_to_linker`.
pub(crate) struct Logging;

impl HasData for Logging {
    type Data<'a> = LoggingView<'a>;
}

/// What the logging calls of one instance reach: the host's sink, and the output budget
/// of the call running now (shared with stdout and stderr).
pub(crate) struct LoggingCtx {
    sink: LogSink,
    budget: Arc<OutputBudget>,
}

impl LoggingCtx {
    pub(crate) fn new(sink: LogSink, budget: Arc<OutputBudget>) -> Self {
        Self { sink, budget }
    }
}

/// The logging calls' view of the Store: the calling component and its context.
pub(crate) struct LoggingView<'a> {
    pub(crate) principal: &'a Principal,
    pub(crate) ctx: &'a mut LoggingCtx,
}

impl Host for LoggingView<'_> {
    fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        // Bound what one call can emit, escape what could pass for the host's own output
        // (a newline, a terminal sequence), and charge it to the guest call's budget.
        let message: String = message.chars().take(MAX_LOG_CHARS).collect();
        let message = escape(&message);
        let message = self.ctx.budget.take(&message);
        if !message.is_empty() {
            (self.ctx.sink)(&self.principal.id, level, message);
        }
    }
}
