//! Every numeric field of the pipeline manifest, set to 0, -1, 2^32, 2^63-1 and 2^64-1 one
//! at a time: `switchyard run` either runs (exit 0) or refuses the manifest (exit 1) with an
//! error that names the field and its line and column. Never a panic, an abort, a signal or
//! a hang.
//!
//! The fields are found by walking the parsed manifest (every integer in it), so a numeric
//! field added to the example is mutated too. The example sets only some of them; the base
//! manifest adds the rest (restart sub-fields on a component without restart, an integer
//! `memory_limit`, `max_payload_bytes`, a numeric codec and a byte-array payload).

mod common;

use std::time::{Duration, Instant};

use common::*;
use toml::de::{DeTable, DeValue};

/// The values each field is set to, as written in TOML.
const EXTREMES: [&str; 5] = ["0", "-1", "4294967296", "9223372036854775807", "18446744073709551615"];

/// A run that takes longer than this is a hang (a normal run takes well under a second).
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Every numeric field the manifest knows, by its last path segment; the walk must find all.
const NUMERIC_FIELDS: [&str; 16] = [
    "workers",
    "drain_timeout_ms",
    "request_timeout_ms",
    "fuel_per_message",
    "deadline_ms",
    "memory_limit",
    "mailbox_capacity",
    "max_restarts",
    "window_ms",
    "backoff_initial_ms",
    "backoff_max_ms",
    "max_bytes",
    "max_keys",
    "max_payload_bytes",
    "codec",
    "payload",
];

/// Replaces `from` (which must occur exactly once) with `to`.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "examples/pipeline/manifest.toml changed: {from:?} is not there once");
    text.replacen(from, to, 1)
}

/// The pipeline manifest with absolute component paths and every numeric field set.
fn base_manifest() -> String {
    let mut text = std::fs::read_to_string(pipeline_manifest()).expect("read the pipeline manifest");
    for name in ["ingest", "transform", "store"] {
        let file = repo().join(format!("examples/pipeline/{name}.wasm"));
        text = edit(&text, &format!("file = \"{name}.wasm\""), &format!("file = {:?}", file.to_str().unwrap()));
    }
    // Ingest is the first component: an integer memory limit, a restart policy, a payload cap.
    text = text.replacen("memory_limit = \"1MiB\"", "memory_limit = 1_048_576", 1);
    text = edit(
        &text,
        "capabilities = { send = [\"transform\"] }",
        "restart = { policy = \"transient\", max_restarts = 3, window_ms = 1_000, backoff_initial_ms = 5, \
         backoff_max_ms = 50 }\ncapabilities = { send = [\"transform\"], max_payload_bytes = 65_536 }",
    );
    text.push_str("\n[[message]]\nto = \"ingest\"\npayload = [104, 105]\ncodec = 85\n");
    text
}

/// An integer of the manifest: the path of its field, the byte range of the literal, and
/// where an error about it must point (the literal; for a byte of an array payload, the
/// array, which is the field).
struct Site {
    field: String,
    span: std::ops::Range<usize>,
    at: usize,
}

fn collect(path: &str, value: &toml::Spanned<DeValue<'_>>, at: Option<usize>, out: &mut Vec<Site>) {
    match value.get_ref() {
        DeValue::Integer(_) => {
            out.push(Site { field: path.to_string(), span: value.span(), at: at.unwrap_or(value.span().start) })
        }
        DeValue::Table(table) => collect_table(path, table, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if item.get_ref().is_table() {
                    collect(&format!("{path}[{i}]"), item, None, out);
                } else {
                    collect(path, item, Some(value.span().start), out);
                }
            }
        }
        _ => {}
    }
}

fn collect_table(path: &str, table: &DeTable<'_>, out: &mut Vec<Site>) {
    for (key, value) in table.iter() {
        let field = if path.is_empty() { key.get_ref().to_string() } else { format!("{path}.{}", key.get_ref()) };
        collect(&field, value, None, out);
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = offset - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[test]
fn every_numeric_field_at_an_extreme_exits_0_or_1_and_errors_name_the_field_with_line_and_column() {
    let dir = TempDir::new("extremes");
    let base = base_manifest();
    let table = DeTable::parse(&base).expect("the base manifest parses");
    let mut sites = Vec::new();
    collect_table("", table.get_ref(), &mut sites);
    for name in NUMERIC_FIELDS {
        assert!(
            sites.iter().any(|s| s.field.rsplit('.').next() == Some(name)),
            "the base manifest sets no {name}: {:?}",
            sites.iter().map(|s| &s.field).collect::<Vec<_>>()
        );
    }

    let started = Instant::now();
    let mut failures = Vec::new();
    let mut runs = 0;
    for site in &sites {
        let (line, col) = line_col(&base, site.at);
        for value in EXTREMES {
            let text = format!("{}{value}{}", &base[..site.span.start], &base[site.span.end..]);
            let manifest = write(&dir, "m.toml", &text);
            let what = format!("{} = {value} (line {line})", site.field);
            runs += 1;
            let storage = dir.path().join("s.redb");
            let args = ["run", "--storage", storage.to_str().unwrap(), manifest.to_str().unwrap()];
            let Some(out) = run_within(dir.path(), &args, RUN_LIMIT) else {
                failures.push(format!("{what}: still running after {RUN_LIMIT:?}"));
                continue;
            };
            let stderr = String::from_utf8_lossy(&out.stderr);
            // The telling line: a panic, an allocation failure or an error, else the last one.
            let last = stderr
                .lines()
                .find(|l| ["panicked at", "memory allocation", "error:"].iter().any(|m| l.contains(m)))
                .or_else(|| stderr.lines().last())
                .unwrap_or("");
            match out.status.code() {
                Some(0) => {}
                Some(1) => {
                    let expected = format!("m.toml:{line}:{col}: {}:", site.field);
                    if !stderr.contains(&expected) {
                        failures.push(format!("{what}: exit 1 without {expected:?}: {last}"));
                    }
                }
                Some(code) => failures.push(format!("{what}: exit {code}: {last}")),
                None => failures.push(format!("{what}: killed by a signal ({:?}): {last}", out.status)),
            }
            if stderr.contains("panicked") {
                failures.push(format!("{what}: panicked: {last}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {runs} runs went wrong:\n{}", failures.len(), failures.join("\n"));
    eprintln!("{runs} runs in {:.1} s", started.elapsed().as_secs_f64());
}
