//! Text that comes from outside the host (a guest's error, health reason or log line, a
//! trap's backtrace naming guest functions, an error another node sent), made safe to keep
//! and to show: cut to a bound when it enters ([`cap`]), and escaped where a person reads it
//! ([`printable`]).
//!
//! - **Bounded.** A guest can return an error of any length, as often as it is called; the
//!   dead-letter log, the failed-start note and the health answer keep that text. So it is
//!   cut to [`MAX_FOREIGN_TEXT_BYTES`] at the boundary (at a character boundary, with a note
//!   of how much was cut): a guest cannot make the host hold more than that per message.
//! - **Escaped.** Control characters (C0, DEL, C1: newlines, carriage returns, escape
//!   sequences) and the Unicode bidirectional overrides are written as `\n`, `\r`, `\t` or
//!   `\u{..}`, so that such text cannot start a line that passes for the host's own, move
//!   the cursor, clear or recolour the operator's terminal, or reorder what is shown. Text is
//!   kept as it came (bounded) and escaped where it is shown: the CLI's tables and status
//!   lines, `tracing` events, the default log sink. Escaping is idempotent: escaped text has
//!   nothing left to escape.

use std::borrow::Cow;
use std::fmt::Write as _;

/// The most bytes of one piece of foreign text the host keeps (a guest's error message,
/// health reason or `fail` text, a trap's detail, another node's error): as a guest's log
/// line (`MAX_LINE_BYTES` of the sandbox's output).
pub const MAX_FOREIGN_TEXT_BYTES: usize = 4096;

/// `text` cut to at most `max` bytes (at a character boundary), with `"... (N bytes cut)"`
/// appended when anything was cut. The result may exceed `max` by that note (at most 32
/// bytes).
pub fn cap(text: impl Into<String>, max: usize) -> String {
    let mut text = text.into();
    if text.len() > max {
        let keep = floor_char_boundary(&text, max);
        let cut = text.len() - keep;
        text.truncate(keep);
        let _ = write!(text, "... ({cut} bytes cut)");
    }
    text
}

/// [`cap`] at [`MAX_FOREIGN_TEXT_BYTES`].
pub(crate) fn cap_foreign(text: impl Into<String>) -> String {
    cap(text, MAX_FOREIGN_TEXT_BYTES)
}

/// The largest index `<= at` that is a character boundary of `s`.
pub(crate) fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

/// `text` with every control character and bidirectional override escaped (module doc),
/// fit for a terminal, a log line or a table cell. Borrowed when nothing needed escaping.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_character_boundary_and_says_so() {
        let text = "é".repeat(10); // 20 bytes
        let capped = cap(text.clone(), 5);
        assert_eq!(capped, "éé... (16 bytes cut)");
        assert_eq!(cap(text.clone(), 20), text, "at the bound: kept whole");
        let big = cap("x".repeat(8 << 20), MAX_FOREIGN_TEXT_BYTES);
        assert!(big.len() <= MAX_FOREIGN_TEXT_BYTES + 32, "{}", big.len());
        assert!(big.ends_with(&format!("... ({} bytes cut)", (8 << 20) - MAX_FOREIGN_TEXT_BYTES)));
    }

    #[test]
    fn terminal_sequences_and_line_breaks_are_escaped_once() {
        let forged = "\x1b[2J\rswitchyard: forged\n[info] other: \u{202e}txt.exe";
        let shown = printable(forged);
        assert_eq!(shown, "\\u{1b}[2J\\rswitchyard: forged\\n[info] other: \\u{202e}txt.exe");
        assert!(!shown.chars().any(needs_escape));
        assert_eq!(printable(&shown), shown, "idempotent");
        assert!(matches!(printable("plain text, ünïcode"), Cow::Borrowed(_)));
    }
}
