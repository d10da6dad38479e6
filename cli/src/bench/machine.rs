//! The machine probe: CPU model, core count, kernel, compiler and commit, for the report's
//! header, its JSON and PERF.md.
//!
//! Each item is read from `/proc` or from a command's output; one that cannot be read is
//! reported as `unknown` (or empty for the kernel) rather than failing the report.

use std::process::Command;

/// What the report says about the machine it ran on.
pub(super) struct Machine {
    pub(super) cpu: String,
    pub(super) cores: usize,
    pub(super) rustc: String,
    pub(super) commit: String,
    pub(super) kernel: String,
}

/// The trimmed stdout of `cmd args`, or `unknown` when it cannot run or fails.
fn run_text(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Probes this machine (runs `rustc -V` and `git rev-parse --short HEAD`).
pub(super) fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".into(), |(_, m)| m.trim().to_string());
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        rustc: run_text("rustc", &["-V"]),
        commit: run_text("git", &["rev-parse", "--short", "HEAD"]),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string(),
    }
}
