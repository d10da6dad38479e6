//! The `logging` interface: a guest's log lines, bounded in length and attributed to its
//! component, handed to the host's [`LogSink`].

use wasmtime::component::HasData;

use super::Principal;
use crate::id::ComponentId;
use crate::sync::{Arc, Ordering};
use crate::text::printable;
use crate::wasm::bindings::switchyard::component::logging::{Host, Level};
use crate::wasm::wasi::output::OutputBudget;

/// Where guest log lines go: `(component, level, message)`.
pub type LogSink = Arc<dyn Fn(&ComponentId, &str, &str) + Send + Sync>;

/// The sink of a host built without one: `[level] component: message` on stderr.
pub(crate) fn stderr_sink() -> LogSink {
    Arc::new(|id: &ComponentId, level: &str, msg: &str| eprintln!("[{level}] {id}: {msg}"))
}

/// Lines queued for the host's sink at most.
pub(crate) const MAX_QUEUED_LINES: usize = 4096;
/// Bytes of queued lines at most.
pub(crate) const MAX_QUEUED_BYTES: usize = 4 << 20;

/// The host's log sink behind a bounded queue and a thread of its own.
///
/// A sink writes somewhere that can stall: an operator's pipe that stops reading
/// (`switchyard run ... 2>&1 | less`, paused), a full disk, a slow `tracing` subscriber.
/// Called on a worker, it would stall that worker, and every component homed on it, for as
/// long. So guests' lines are queued ([`MAX_QUEUED_LINES`], [`MAX_QUEUED_BYTES`]) and written
/// by the `switchyard-log` thread; a line that finds the queue full is dropped and counted
/// for its component ([`crate::WasmStatsSnapshot::log_lines_dropped`]), and once the thread
/// catches up it writes, for each such component, how many of its lines were dropped. The
/// thread ends when the host and every instance are gone and the queue is written.
pub(crate) struct LogQueue {
    tx: crossbeam_channel::Sender<Entry>,
    bytes: crate::sync::AtomicUsize,
    dropped: crate::sync::Mutex<Dropped>,
}

enum Entry {
    Line {
        id: ComponentId,
        level: String,
        text: String,
    },
    /// Answered once everything queued before it is written.
    Flush(crossbeam_channel::Sender<()>),
}

/// Lines dropped per component: in all, and not yet reported through the sink.
#[derive(Default)]
struct Dropped {
    total: std::collections::HashMap<ComponentId, u64>,
    unreported: std::collections::HashMap<ComponentId, u64>,
}

impl LogQueue {
    /// Starts the queue's thread in front of `sink`.
    ///
    /// # Errors
    /// The thread could not be started.
    pub(crate) fn start(sink: LogSink) -> std::io::Result<Arc<LogQueue>> {
        let (tx, rx) = crossbeam_channel::bounded(MAX_QUEUED_LINES);
        let queue = Arc::new(LogQueue {
            tx,
            bytes: crate::sync::AtomicUsize::new(0),
            dropped: crate::sync::Mutex::new(Dropped::default()),
        });
        let weak = Arc::downgrade(&queue);
        std::thread::Builder::new().name("switchyard-log".into()).spawn(move || {
            for entry in rx {
                match entry {
                    Entry::Line { id, level, text } => {
                        if let Some(queue) = weak.upgrade() {
                            queue.bytes.fetch_sub(text.len(), Ordering::Relaxed);
                        }
                        sink(&id, &level, &text);
                    }
                    Entry::Flush(done) => {
                        let _ = done.send(());
                    }
                }
                if let Some(queue) = weak.upgrade().filter(|q| q.tx.is_empty()) {
                    let unreported = std::mem::take(&mut queue.dropped.lock().unreported);
                    for (id, n) in unreported {
                        sink(&id, "stderr", &format!("[{n} log line(s) dropped: the host's log sink fell behind]"));
                    }
                }
            }
        })?;
        Ok(queue)
    }

    /// Queues a line, or drops and counts it when the queue is full.
    pub(crate) fn push(&self, id: &ComponentId, level: &str, text: &str) {
        // Relaxed: a bound on memory, not an ordering; it may be exceeded by the lines of
        // the workers racing past it at once (each at most a line).
        let queued = self.bytes.fetch_add(text.len(), Ordering::Relaxed);
        let line = Entry::Line { id: id.clone(), level: level.to_string(), text: text.to_string() };
        if queued + text.len() > MAX_QUEUED_BYTES || self.tx.try_send(line).is_err() {
            self.bytes.fetch_sub(text.len(), Ordering::Relaxed);
            let mut dropped = self.dropped.lock();
            *dropped.total.entry(id.clone()).or_default() += 1;
            *dropped.unreported.entry(id.clone()).or_default() += 1;
        }
    }

    /// Lines of `id` dropped so far.
    pub(crate) fn dropped(&self, id: &ComponentId) -> u64 {
        self.dropped.lock().total.get(id).copied().unwrap_or(0)
    }

    /// Waits (at most `timeout`) until every line queued before the call is written.
    /// Returns false if they were not.
    pub(crate) fn flush(&self, timeout: std::time::Duration) -> bool {
        let until = std::time::Instant::now() + timeout;
        let (done, written) = crossbeam_channel::bounded(1);
        self.tx.send_deadline(Entry::Flush(done), until).is_ok() && written.recv_deadline(until).is_ok()
    }

    /// A [`LogSink`] that queues.
    pub(crate) fn sink(self: &Arc<Self>) -> LogSink {
        let queue = self.clone();
        Arc::new(move |id: &ComponentId, level: &str, text: &str| queue.push(id, level, text))
    }
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
        let message = printable(&message);
        let message = self.ctx.budget.take(&message);
        if !message.is_empty() {
            (self.ctx.sink)(&self.principal.id, level, message);
        }
    }
}
