//! The compare report's model and rendering: a [`Row`] per figure, with its target, rendered
//! as the text table, the markdown table and the JSON report.
//!
//! A row holds one figure per engine (switchyard, baseline, floor, in [`Engine`] order) and
//! derives the ratios switchyard/baseline and switchyard/floor from them; a target, when the
//! row has one, is checked against the switchyard figure or its ratio to the floor.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use switchyard_bench_support::workloads::Engine;

use super::Plan;
use super::machine::Machine;

/// A target a row is checked against: the switchyard figure, or its ratio to the floor.
#[derive(Clone, Copy)]
pub(super) enum Check {
    AtMost(f64),
    AtLeast(f64),
    RatioToFloorAtMost(f64),
    RatioToFloorAtLeast(f64),
}

/// One line of the report.
pub(super) struct Row {
    pub(super) id: &'static str,
    pub(super) workload: &'static str,
    pub(super) metric: String,
    pub(super) unit: &'static str,
    pub(super) values: [Option<f64>; 3],
    pub(super) target: Option<(&'static str, Check)>,
    /// The latency samples behind a percentile row, one histogram per engine (in [`Engine`]
    /// order): the latency workloads attach them to their p50 row for the charts. Not part
    /// of the tables or the JSON.
    pub(super) latencies: [Option<Histogram<u64>>; 3],
}

impl Row {
    pub(super) fn new(id: &'static str, workload: &'static str, metric: impl Into<String>, unit: &'static str) -> Self {
        Row {
            id,
            workload,
            metric: metric.into(),
            unit,
            values: [None; 3],
            target: None,
            latencies: Default::default(),
        }
    }

    pub(super) fn set(mut self, engine: Engine, value: f64) -> Self {
        self.values[engine as usize] = Some(value);
        self
    }

    pub(super) fn target(mut self, text: &'static str, check: Check) -> Self {
        self.target = Some((text, check));
        self
    }

    fn ratio(&self, other: Engine) -> Option<f64> {
        match (self.values[0], self.values[other as usize]) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        }
    }

    /// `Some(true)` met, `Some(false)` missed, `None` no target or no figure.
    pub(super) fn status(&self) -> Option<bool> {
        let (_, check) = self.target?;
        Some(match check {
            Check::AtMost(t) => self.values[0]? <= t,
            Check::AtLeast(t) => self.values[0]? >= t,
            Check::RatioToFloorAtMost(t) => self.ratio(Engine::Floor)? <= t,
            Check::RatioToFloorAtLeast(t) => self.ratio(Engine::Floor)? >= t,
        })
    }
}

/// The median of a workload's runs: the figure its row reports.
pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A figure with three significant digits or so; `-` when there is none.
pub(super) fn fmt(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn fmt_ratio(v: Option<f64>) -> String {
    v.map_or("-".into(), |r| format!("{r:.2}x"))
}

/// `met`, `MISSED`, `n/a` (a target but no figure) or empty (no target).
pub(super) fn status_text(row: &Row) -> &'static str {
    match row.status() {
        Some(true) => "met",
        Some(false) => "MISSED",
        None if row.target.is_some() => "n/a",
        None => "",
    }
}

const HEADERS: [&str; 9] =
    ["workload", "metric", "unit", "switchyard", "baseline", "floor", "sy/baseline", "sy/floor", "target: status"];

fn cells(row: &Row) -> [String; 9] {
    let target = match row.target {
        Some((text, _)) => format!("{text}: {}", status_text(row)),
        None => String::new(),
    };
    [
        row.workload.into(),
        row.metric.clone(),
        row.unit.into(),
        fmt(row.values[0]),
        fmt(row.values[1]),
        fmt(row.values[2]),
        fmt_ratio(row.ratio(Engine::Baseline)),
        fmt_ratio(row.ratio(Engine::Floor)),
        target,
    ]
}

/// The table printed to stdout: columns padded to their widest cell.
pub(super) fn text_table(rows: &[Row]) -> String {
    let all: Vec<[String; 9]> = rows.iter().map(cells).collect();
    let mut widths = HEADERS.map(str::len);
    for r in &all {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String], out: &mut String| {
        let parts: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", parts.join(" | ").trim_end());
    };
    line(&HEADERS.map(String::from), &mut out);
    let _ = writeln!(out, "{}", widths.map(|w| "-".repeat(w)).join("-+-"));
    for r in &all {
        line(r, &mut out);
    }
    out
}

/// The same table in markdown, for PERF.md.
pub(super) fn markdown_table(rows: &[Row]) -> String {
    let mut out = format!("| {} |\n|{}\n", HEADERS.join(" | "), "---|".repeat(HEADERS.len()));
    for r in rows {
        let _ = writeln!(out, "| {} |", cells(r).join(" | "));
    }
    out
}

/// The JSON report: the run's settings, the machine, and every row with its ratios.
pub(super) fn json_report(rows: &[Row], machine: &Machine, plan: &Plan) -> Value {
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "workload": r.workload,
                "metric": r.metric,
                "unit": r.unit,
                "switchyard": r.values[0],
                "baseline": r.values[1],
                "floor": r.values[2],
                "ratio_switchyard_baseline": r.ratio(Engine::Baseline),
                "ratio_switchyard_floor": r.ratio(Engine::Floor),
                "target": r.target.map(|t| t.0),
                "target_met": r.status(),
            })
        })
        .collect();
    json!({
        "mode": if plan.quick { "quick" } else { "full" },
        "machine": { "cpu": machine.cpu, "cores": machine.cores, "rustc": machine.rustc, "commit": machine.commit },
        "workers": plan.workers,
        "pin_workers": plan.pin,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine { cpu: "cpu".into(), cores: 2, rustc: "rustc".into(), commit: "abc1234".into(), kernel: "k".into() }
    }

    fn row() -> Row {
        Row::new("routing", "1 routing cost", "send", "ns/op")
            .set(Engine::Switchyard, 60.0)
            .set(Engine::Baseline, 180.0)
            .set(Engine::Floor, 30.0)
            .target("<= 1.5x floor", Check::RatioToFloorAtMost(1.5))
    }

    #[test]
    fn status_follows_the_check_and_needs_a_figure() {
        assert_eq!(row().status(), Some(false));
        assert_eq!(row().target("<= 100", Check::AtMost(100.0)).status(), Some(true));
        assert_eq!(row().target(">= 100", Check::AtLeast(100.0)).status(), Some(false));
        assert_eq!(row().target(">= 1x floor", Check::RatioToFloorAtLeast(1.0)).status(), Some(true));
        let no_floor = Row::new("x", "9 x", "x", "x").set(Engine::Switchyard, 1.0);
        assert_eq!(no_floor.target("t", Check::RatioToFloorAtMost(2.0)).status(), None);
        assert_eq!(Row::new("x", "9 x", "x", "x").set(Engine::Switchyard, 1.0).status(), None);
    }

    #[test]
    fn json_report_has_the_documented_keys() {
        let report = json_report(&[row()], &machine(), &Plan::new(true, 2, false));
        let keys = |v: &Value| {
            let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&report), ["machine", "mode", "pin_workers", "rows", "workers"]);
        assert_eq!(keys(&report["machine"]), ["commit", "cores", "cpu", "rustc"]);
        assert_eq!(
            keys(&report["rows"][0]),
            [
                "baseline",
                "floor",
                "id",
                "metric",
                "ratio_switchyard_baseline",
                "ratio_switchyard_floor",
                "switchyard",
                "target",
                "target_met",
                "unit",
                "workload"
            ]
        );
        assert_eq!(report["rows"][0]["ratio_switchyard_floor"], 2.0);
        assert_eq!(report["rows"][0]["target_met"], false);
        assert_eq!(report["mode"], "quick");
    }

    #[test]
    fn tables_show_figures_ratios_and_status() {
        let rows = [row(), Row::new("plain", "2 x", "plain", "x")];
        let text = text_table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "header, rule, one line per row");
        assert!(lines[0].starts_with("workload"));
        assert!(lines[2].contains("| 60.0 ") && lines[2].contains("| 0.33x ") && lines[2].contains("MISSED"));
        // No target: the status cell is empty and the line is trimmed after its separator.
        assert!(lines[3].ends_with("| -        |"), "{:?}", lines[3]);
        let md = markdown_table(&rows);
        assert_eq!(md.lines().count(), 4);
        assert!(md.lines().nth(2).expect("row").ends_with("| <= 1.5x floor: MISSED |"));
    }
}
