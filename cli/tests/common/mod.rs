//! Helpers for running the built `switchyard` binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::time::Duration;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("cli/ has a parent").to_path_buf()
}

/// `examples/pipeline/manifest.toml`.
pub fn pipeline_manifest() -> PathBuf {
    repo().join("examples/pipeline/manifest.toml")
}

/// The binary, with a clean environment for logs.
pub fn switchyard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
}

pub use switchyard_bench_support::storage::TempDir;

/// Writes a file in a scratch directory.
pub fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).expect("write temp file");
    p
}

/// What a finished run printed.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Ran {
    fn from(o: Output) -> Self {
        let ran = Ran {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        };
        assert!(!ran.stderr.contains("panicked"), "the binary panicked:\n{}", ran.stderr);
        ran
    }
}

/// `switchyard ARGS` in `dir`, with a user cache directory of its own under `dir` (where the
/// default compile cache goes), so that runs in different tests share no compiled code.
pub fn switchyard_in(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = switchyard();
    cmd.args(args).current_dir(dir).env("XDG_CACHE_HOME", dir.join("xdg-cache"));
    cmd
}

/// The default compile cache of runs made by [`switchyard_in`] in `dir`.
pub fn user_cache(dir: &Path) -> PathBuf {
    dir.join("xdg-cache/switchyard/compile")
}

/// Starts `switchyard ARGS` in `dir` with stdin, stdout and stderr piped.
pub fn spawn_in(dir: &Path, args: &[&str]) -> Child {
    switchyard_in(dir, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn switchyard")
}

/// Runs `switchyard ARGS` in `dir`, with `stdin` piped in and closed.
pub fn run_in(dir: &Path, args: &[&str], stdin: impl AsRef<[u8]>) -> Ran {
    let mut child = spawn_in(dir, args);
    child.stdin.take().expect("stdin").write_all(stdin.as_ref()).expect("write stdin");
    child.wait_with_output().expect("wait for switchyard").into()
}

/// Runs `switchyard ARGS` in `dir` with stdin empty; `None` if it is still running after
/// `limit`, in which case it is killed (by its pid: it is our own child).
pub fn run_within(dir: &Path, args: &[&str], limit: Duration) -> Option<Output> {
    let child = switchyard_in(dir, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn switchyard");
    let pid = child.id();
    let (tx, rx) = crossbeam_channel::bounded(1);
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output().expect("wait for switchyard"));
    });
    let out = rx.recv_timeout(limit).ok();
    if out.is_none() {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
    waiter.join().expect("waiter thread");
    out
}

/// Makes a FIFO (named pipe) at `path`.
pub fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// The numbers of a component's row in the stats table: received, handled, failed, dead
/// letters, restarts, fuel used, traps, denied.
pub fn row(stderr: &str, id: &str) -> Vec<u64> {
    let line = stderr
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id) && l.starts_with("  "))
        .unwrap_or_else(|| panic!("no stats row for {id} in:\n{stderr}"));
    line.split_whitespace().skip(1).map(|n| n.parse().expect("a count")).collect()
}

/// The key counts `(at start, at exit)` of a component's storage line.
pub fn stored_keys(stderr: &str, id: &str) -> (u64, u64) {
    let prefix = format!("  {id}: ");
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no storage line for {id} in:\n{stderr}"));
    let numbers: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (numbers[0], numbers[1])
}

/// The address a `run --metrics` child serves on, read from its stderr's start line, and
/// the rest of its stderr.
pub fn metrics_addr(child: &mut Child) -> (String, BufReader<ChildStderr>) {
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr piped"));
    let mut line = String::new();
    loop {
        line.clear();
        assert_ne!(stderr.read_line(&mut line).expect("stderr reads"), 0, "exited before serving metrics");
        if let Some(rest) = line.strip_prefix("switchyard: metrics on http://") {
            return (rest.split('/').next().expect("an address").to_string(), stderr);
        }
    }
}
