//! The stats table printed when `switchyard run` ends.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use switchyard::text::printable;
use switchyard::{ComponentId, ComponentStatsSnapshot, DeadLetter, ShutdownReport, WasmStatsSnapshot};

use crate::run::Stop;

/// One component's counters.
pub struct ComponentRow {
    /// The component.
    pub id: ComponentId,
    /// Its runtime counters.
    pub stats: ComponentStatsSnapshot,
    /// Its WASM counters.
    pub wasm: WasmStatsSnapshot,
}

/// One component's storage namespace before and after the run.
pub struct StorageRow {
    /// The component (its namespace).
    pub id: ComponentId,
    /// Keys stored when the run started (left by earlier runs).
    pub keys_before: u64,
    /// Keys stored at exit.
    pub keys_after: u64,
    /// Bytes stored at exit.
    pub bytes_after: u64,
}

/// Everything the table shows.
pub struct Summary<'a> {
    /// Why the run ended.
    pub stop: Stop,
    /// How long it ran.
    pub elapsed: Duration,
    /// The runtime's shutdown report.
    pub report: &'a ShutdownReport,
    /// Per-component counters.
    pub components: &'a [ComponentRow],
    /// The storage file, when one was used.
    pub storage_path: Option<&'a Path>,
    /// Per-namespace storage.
    pub storage: &'a [StorageRow],
    /// The dead letters still queued.
    pub dead_letters: &'a [DeadLetter],
    /// Inputs that were rejected.
    pub rejected_inputs: u64,
}

/// How many dead letters are listed one by one.
const LISTED_DEAD_LETTERS: usize = 10;

fn grid(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| if i == 0 { format!("{c:<w$}") } else { format!("{c:>w$}") })
            .collect();
        let _ = writeln!(out, "  {}", parts.join("  "));
    };
    line(headers.iter().map(|h| h.to_string()).collect(), &mut out);
    for r in rows {
        line(r.clone(), &mut out);
    }
    out
}

/// The table as text.
pub fn render(s: &Summary<'_>) -> String {
    let mut out = String::new();
    let stats = &s.report.stats;
    let _ = writeln!(out, "\nswitchyard: stopped ({}) after {:.2} s", s.stop, s.elapsed.as_secs_f64());
    let rows: Vec<Vec<String>> = s
        .components
        .iter()
        .map(|c| {
            vec![
                c.id.to_string(),
                c.stats.received.to_string(),
                c.stats.handled.to_string(),
                c.stats.failed.to_string(),
                c.stats.dead_lettered.to_string(),
                c.stats.restarts.to_string(),
                c.wasm.fuel_consumed.to_string(),
                c.wasm.total_traps().to_string(),
                c.wasm.capability_denials.to_string(),
            ]
        })
        .collect();
    out.push_str(&grid(
        &["component", "received", "handled", "failed", "dead letters", "restarts", "fuel used", "traps", "denied"],
        &rows,
    ));
    let by_reason = stats.dead_letters_named();
    let reasons = if by_reason.is_empty() {
        "none".to_string()
    } else {
        by_reason.iter().map(|(name, n)| format!("{name} {n}")).collect::<Vec<_>>().join(", ")
    };
    let _ = writeln!(out, "\ndead letters by reason: {reasons}");
    // Messages other nodes of a cluster took are a term of their own (only when there are).
    let forwarded = if stats.messages_forwarded > 0 {
        format!(" + taken by other nodes {}", stats.messages_forwarded)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "accounting: sent {} = handled {} + dead-lettered {} + rejected at send {}{forwarded} ({})",
        stats.messages_sent,
        stats.messages_handled,
        stats.messages_dead_lettered,
        stats.routing_failures,
        if stats.is_balanced() { "balanced" } else { "NOT balanced" }
    );
    if !s.report.drained {
        let _ = writeln!(out, "shutdown: not drained in time; {} message(s) dead-lettered", s.report.dead_lettered);
    }
    if s.rejected_inputs > 0 {
        let _ = writeln!(out, "rejected inputs: {} (see the errors above)", s.rejected_inputs);
    }
    let log_dropped: u64 = s.components.iter().map(|c| c.wasm.log_lines_dropped).sum();
    if log_dropped > 0 {
        let _ = writeln!(out, "log: {log_dropped} guest line(s) dropped: the log sink fell behind (stderr not read)");
    }
    if let Some(path) = s.storage_path {
        let _ = writeln!(out, "storage {}:", path.display());
        for r in s.storage {
            let _ = writeln!(
                out,
                "  {}: {} keys at start, {} keys at exit ({} bytes)",
                r.id, r.keys_before, r.keys_after, r.bytes_after
            );
        }
    }
    let failed_starts: Vec<_> =
        s.components.iter().filter_map(|r| r.stats.last_start_failure.as_ref().map(|why| (&r.id, why))).collect();
    if !failed_starts.is_empty() {
        let _ = writeln!(out, "failed starts (the last reason of each):");
        for (id, why) in failed_starts {
            let _ = writeln!(out, "  {id}: {}", printable(&one_line(why)));
        }
    }
    if !s.dead_letters.is_empty() {
        let _ = writeln!(out, "dead letters:");
        for d in s.dead_letters.iter().take(LISTED_DEAD_LETTERS) {
            let _ = writeln!(out, "  to {} from {}: {}", d.envelope.to, d.envelope.from, shown(&d.reason));
        }
        if s.dead_letters.len() > LISTED_DEAD_LETTERS {
            let _ = writeln!(out, "  ... and {} more", s.dead_letters.len() - LISTED_DEAD_LETTERS);
        }
    }
    out
}

/// A dead letter's reason on one line, escaped: a trap's as [`one_line`] makes it, any
/// other whole (its text may be a guest's or another node's, with line breaks and terminal
/// sequences of their choosing: escaped, they show as text).
fn shown(reason: &switchyard::DeadLetterReason) -> String {
    match reason {
        switchyard::DeadLetterReason::Trapped { .. } => printable(&one_line(&reason.to_string())).into_owned(),
        _ => printable(&reason.to_string()).into_owned(),
    }
}

/// A trap's reason carries a multi-line wasm backtrace: keep its first line and the trap
/// message on its last line.
fn one_line(reason: &str) -> String {
    let mut lines = reason.lines();
    let first = lines.next().unwrap_or_default().trim_end_matches(" at wasm backtrace:");
    match lines.last().and_then(|l| l.split_once("wasm trap: ")) {
        Some((_, trap)) => format!("{first}: {trap}"),
        None => first.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{one_line, shown};

    #[test]
    fn trap_reasons_fit_on_one_line() {
        let reason = switchyard::DeadLetterReason::Trapped {
            kind: switchyard::TrapKind::Unreachable,
            detail: "error while executing at wasm backtrace:\n    \
                     0:    0x46f - <unknown>!<wasm function 5>: wasm trap: wasm `unreachable` instruction executed"
                .into(),
            attempts: 1,
        };
        assert_eq!(
            one_line(&reason.to_string()),
            "trapped (unreachable) after 1 attempt(s), handled like a panic (instance discarded, component restarted \
             under its supervision): error while executing: wasm `unreachable` instruction executed"
        );
        assert_eq!(one_line("handler failed: empty record"), "handler failed: empty record");
    }

    #[test]
    fn a_guest_error_cannot_clear_the_terminal_or_start_a_line_of_its_own() {
        let reason = switchyard::DeadLetterReason::HandlerFailed {
            error: "\x1b[2J\rswitchyard: forged\nline two".into(),
            code: Some(switchyard::GuestErrorCode::HandlerFailed),
            attempts: 1,
        };
        let row = shown(&reason);
        assert!(row.contains("\\u{1b}[2J\\rswitchyard: forged\\nline two"), "{row}");
        assert!(!row.chars().any(char::is_control), "{row}");
    }
}
