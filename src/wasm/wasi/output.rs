//! What a guest writes for people to read: its stdout and stderr, gathered into lines, and
//! the messages of its `logging.log` calls. All of it reaches the host's log sink as text
//! that cannot pass for the host's own, and no call can emit more than its budget.
//!
//! - **Escaped** ([`crate::text::printable`]): control characters and the Unicode
//!   bidirectional overrides are written as `\n`, `\r`, `\t` or `\u{..}`, so a guest cannot
//!   start a new line that looks like another component's (`[info] other: ...`), move the
//!   cursor, recolour the terminal or reorder what is shown.
//! - **Lines.** stdout and stderr are split at `\n`; a line longer than [`MAX_LINE_BYTES`]
//!   is split at the last character boundary before it, so a split never cuts a UTF-8
//!   character in two. An unfinished line is emitted when the guest call that wrote it
//!   ends.
//! - **Budget.** One guest call (a message, a callback, `init`, `health`) may emit
//!   [`crate::WasmOptions::max_output_bytes`] bytes in all, over stdout, stderr and `log`;
//!   the rest is dropped, counted ([`crate::WasmStatsSnapshot::output_dropped_bytes`]), and
//!   reported once at the end of the call by a `stderr` line saying how much. So a guest
//!   cannot hold its worker writing to a slow sink past what its budget allows.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::super::imports::logging::LogSink;
use super::super::stats::WasmStats;
use crate::id::ComponentId;
use crate::sync::{Arc, Mutex, Ordering};
use crate::text::{floor_char_boundary, printable};

/// The longest line a guest's stdout or stderr emits, in bytes; a longer one is split.
pub(crate) const MAX_LINE_BYTES: usize = 4096;

/// What the guest may still emit in the current call, shared by its stdout, stderr and
/// `log` calls. Reset before every call.
pub(crate) struct OutputBudget {
    per_call: usize,
    /// Bytes left in this call, and bytes dropped in it.
    state: Mutex<(usize, u64)>,
}

impl OutputBudget {
    pub(crate) fn new(per_call: usize) -> Self {
        Self { per_call, state: Mutex::new((per_call, 0)) }
    }

    /// The part of `text` that fits (cut at a character boundary); the rest is counted
    /// as dropped.
    pub(crate) fn take<'t>(&self, text: &'t str) -> &'t str {
        let mut state = self.state.lock();
        let fits = floor_char_boundary(text, state.0);
        state.0 -= fits;
        state.1 += (text.len() - fits) as u64;
        &text[..fits]
    }

    /// Starts a new call's budget; returns the bytes dropped in the call that ended.
    pub(crate) fn reset(&self) -> u64 {
        let mut state = self.state.lock();
        let dropped = state.1;
        *state = (self.per_call, 0);
        dropped
    }
}

/// An instance's stdout and stderr, and the budget they share with its `log` calls.
pub(crate) struct GuestStdio {
    stdout: GuestOutput,
    stderr: GuestOutput,
    budget: Arc<OutputBudget>,
    stats: Arc<WasmStats>,
}

impl GuestStdio {
    pub(crate) fn new(id: &ComponentId, log: &LogSink, budget: Arc<OutputBudget>, stats: Arc<WasmStats>) -> Self {
        Self {
            stdout: GuestOutput::new(id.clone(), "stdout", log.clone(), budget.clone()),
            stderr: GuestOutput::new(id.clone(), "stderr", log.clone(), budget.clone()),
            budget,
            stats,
        }
    }

    pub(crate) fn stdout(&self) -> GuestOutput {
        self.stdout.clone()
    }

    pub(crate) fn stderr(&self) -> GuestOutput {
        self.stderr.clone()
    }

    /// Ends a call: emits the unfinished line of each stream, says how much was dropped
    /// (if anything), and starts the next call's budget.
    pub(crate) fn end_call(&self) {
        self.stdout.flush_partial();
        self.stderr.flush_partial();
        let dropped = self.budget.reset();
        if dropped > 0 {
            self.stats.output_dropped_bytes.fetch_add(dropped, Ordering::Relaxed);
            let line = format!(
                "[{dropped} bytes of output dropped: over the budget of {} bytes per call]",
                self.budget.per_call
            );
            (self.stderr.sink)(&self.stderr.id, "stderr", &line);
        }
    }
}

/// A guest's stdout or stderr: bytes gathered into lines, each handed to the log sink as
/// `(component, "stdout" | "stderr", line)`, escaped and within the call's budget. An
/// unfinished line is emitted when the guest call that wrote it ends (not at the guest's
/// flushes: runtimes flush after every write, mid-line).
#[derive(Clone)]
pub(crate) struct GuestOutput {
    id: ComponentId,
    stream: &'static str,
    sink: LogSink,
    budget: Arc<OutputBudget>,
    /// Bytes of the current, unfinished line (shared by every handle the guest opens).
    pending: Arc<Mutex<Vec<u8>>>,
}

impl GuestOutput {
    fn new(id: ComponentId, stream: &'static str, sink: LogSink, budget: Arc<OutputBudget>) -> Self {
        Self { id, stream, sink, budget, pending: Arc::new(Mutex::new(Vec::new())) }
    }

    /// Appends `bytes`, emitting every complete (or over-long) line.
    fn take(&self, bytes: &[u8]) {
        let mut pending = self.pending.lock();
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut *pending);
                self.emit(&line);
            } else {
                pending.push(b);
                if pending.len() >= MAX_LINE_BYTES {
                    let cut = utf8_cut(&pending);
                    let rest = pending.split_off(cut);
                    let line = std::mem::replace(&mut *pending, rest);
                    self.emit(&line);
                }
            }
        }
    }

    /// Emits the pending bytes as one line (if any).
    fn flush_partial(&self) {
        let line = std::mem::take(&mut *self.pending.lock());
        if !line.is_empty() {
            self.emit(&line);
        }
    }

    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        let line = printable(line);
        let line = self.budget.take(&line);
        if !line.is_empty() {
            (self.sink)(&self.id, self.stream, line);
        }
    }
}

/// Where to cut a full line buffer: after its last complete UTF-8 character (a character
/// cut by the cap stays for the next line), or at the end when the bytes are not UTF-8
/// there anyway (they are shown as replacement characters).
fn utf8_cut(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => e.valid_up_to(),
        _ => bytes.len(),
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// Always writable; every write lands at once (the sink is called synchronously).
#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.take(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Nothing is buffered but the current line, which waits for its newline.
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LINE_BYTES)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.take(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        self.flush_partial();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `(stream, line)` a recording sink was given.
    type Lines = Arc<Mutex<Vec<(String, String)>>>;

    /// A sink that keeps every line it is given.
    fn recording() -> (LogSink, Lines) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let keep = lines.clone();
        let sink: LogSink = Arc::new(move |_id: &ComponentId, stream: &str, line: &str| {
            keep.lock().push((stream.to_string(), line.to_string()));
        });
        (sink, lines)
    }

    fn stdio(budget: usize) -> (GuestStdio, Lines, Arc<WasmStats>) {
        let (sink, lines) = recording();
        let stats = Arc::new(WasmStats::default());
        let id = ComponentId::new("g").expect("id");
        (GuestStdio::new(&id, &sink, Arc::new(OutputBudget::new(budget)), stats.clone()), lines, stats)
    }

    #[test]
    fn control_characters_cannot_forge_lines_or_terminal_sequences() {
        let (io, lines, _) = stdio(1 << 20);
        io.stdout().take(b"ok\r\n[info] other: forged\x1b[2J\x07\tend\n\xe2\x80\xaeevil\n");
        io.end_call();
        let got: Vec<String> = lines.lock().iter().map(|(_, l)| l.clone()).collect();
        assert_eq!(got, ["ok", "[info] other: forged\\u{1b}[2J\\u{7}\\tend", "\\u{202e}evil"]);
        assert_eq!(printable("a\nb\rc"), "a\\nb\\rc");
        assert!(matches!(printable("plain text, ünïcode"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn a_long_line_is_split_on_a_character_boundary() {
        let (io, lines, _) = stdio(1 << 20);
        // 4095 ASCII bytes, then a 3-byte character: the cap falls inside it.
        let mut text = vec![b'a'; MAX_LINE_BYTES - 1];
        text.extend_from_slice("€tail\n".as_bytes());
        io.stderr().take(&text);
        io.end_call();
        let got = lines.lock().clone();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].1.len(), MAX_LINE_BYTES - 1);
        assert_eq!(got[1].1, "€tail", "the character is whole, on the next line");
    }

    #[test]
    fn a_call_emits_at_most_its_budget_and_says_what_it_dropped() {
        let (io, lines, stats) = stdio(10);
        io.stdout().take(b"12345678\nabcdefgh\nmore\n");
        io.end_call();
        let got = lines.lock().clone();
        assert_eq!(got[0], ("stdout".to_string(), "12345678".to_string()));
        assert_eq!(got[1], ("stdout".to_string(), "ab".to_string()), "cut at the budget");
        assert_eq!(got[2].0, "stderr");
        assert!(got[2].1.contains("10 bytes of output dropped"), "{got:?}");
        assert_eq!(got.len(), 3);
        assert_eq!(stats.output_dropped_bytes.load(Ordering::Relaxed), 10);
        // The next call has a fresh budget.
        io.stdout().take(b"next\n");
        io.end_call();
        assert_eq!(lines.lock().last().map(|l| l.1.clone()).as_deref(), Some("next"));
    }

    #[test]
    fn the_budget_never_cuts_a_character() {
        let budget = OutputBudget::new(4);
        assert_eq!(budget.take("ab€"), "ab", "the 3-byte character does not fit in the 2 left");
        assert_eq!(budget.take("c"), "c");
        assert_eq!(budget.reset(), 3, "the character was dropped");
    }
}
