//! `switchyard run` and `component inspect` with the compile cache: where it lives, the
//! flags that move or disable it, and runs that share it.

mod common;

use std::path::Path;

use common::*;

fn manifest() -> String {
    pipeline_manifest().to_str().expect("UTF-8 path").to_string()
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("cache dir lists")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "entry")))
        .count()
}

fn all_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).expect("cache dir lists").count()
}

#[test]
fn a_second_run_loads_its_components_from_the_cache_beside_the_storage_file() {
    let dir = TempDir::new("cache-default");
    let first = run_in(dir.path(), &["run", &manifest()], "");
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert!(first.stderr.contains("compile cache switchyard-cache: 0 loaded from it, 3 compiled"), "{}", first.stderr);
    assert_eq!(entries(&dir.path().join("switchyard-cache")), 3);
    let second = run_in(dir.path(), &["run", &manifest()], "");
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(
        second.stderr.contains("compile cache switchyard-cache: 3 loaded from it, 0 compiled"),
        "{}",
        second.stderr
    );
    // With the storage file elsewhere, the cache follows it.
    std::fs::create_dir(dir.path().join("data")).expect("data dir");
    let moved = run_in(dir.path(), &["run", "--storage", "data/s.redb", &manifest()], "");
    assert_eq!(moved.code, Some(0), "{}", moved.stderr);
    assert_eq!(entries(&dir.path().join("data/switchyard-cache")), 3);
}

#[test]
fn cache_dir_chooses_the_directory_and_no_cache_keeps_nothing() {
    let dir = TempDir::new("cache-flags");
    let ran = run_in(dir.path(), &["run", "--cache-dir", "mine", &manifest()], "");
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(entries(&dir.path().join("mine")), 3);
    assert!(!dir.path().join("switchyard-cache").exists());
    let off = run_in(dir.path(), &["run", "--no-cache", "--storage", "off.redb", &manifest()], "");
    assert_eq!(off.code, Some(0), "{}", off.stderr);
    assert!(!off.stderr.contains("compile cache"), "{}", off.stderr);
    assert!(!dir.path().join("switchyard-cache").exists());
    let both = run_in(dir.path(), &["run", "--no-cache", "--cache-dir", "mine", &manifest()], "");
    assert_eq!(both.code, Some(2), "contradictory flags are a usage error: {}", both.stderr);
}

#[test]
fn a_cache_dir_that_cannot_be_made_stops_the_run_and_a_default_one_does_not() {
    let dir = TempDir::new("cache-blocked");
    write(&dir, "switchyard-cache", "a file where the default cache would go");
    let asked = run_in(dir.path(), &["run", "--cache-dir", "switchyard-cache/sub", &manifest()], "");
    assert_eq!(asked.code, Some(1), "{}", asked.stderr);
    assert!(asked.stderr.contains("cannot create the compile cache"), "{}", asked.stderr);
    let default = run_in(dir.path(), &["run", &manifest()], "");
    assert_eq!(default.code, Some(0), "{}", default.stderr);
    assert!(default.stderr.contains("warning: running without a compile cache"), "{}", default.stderr);
}

#[test]
fn two_runs_sharing_a_cache_at_once_both_succeed() {
    let dir = TempDir::new("cache-shared");
    let runs: Vec<_> = ["a.redb", "b.redb"]
        .into_iter()
        .map(|storage| spawn_in(dir.path(), &["run", "--cache-dir", "shared", "--storage", storage, &manifest()]))
        .collect();
    for mut child in runs {
        drop(child.stdin.take());
        let ran: Ran = child.wait_with_output().expect("run ends").into();
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
        assert!(ran.stderr.contains("(balanced)"), "{}", ran.stderr);
    }
    let shared = dir.path().join("shared");
    assert_eq!((entries(&shared), all_files(&shared)), (3, 3), "three entries, no temporary file left");
    let third = run_in(dir.path(), &["run", "--cache-dir", "shared", &manifest()], "");
    assert!(third.stderr.contains("3 loaded from it, 0 compiled"), "{}", third.stderr);
}

#[test]
fn inspect_with_a_cache_dir_compiles_once_and_a_run_finds_its_entry() {
    let dir = TempDir::new("cache-inspect");
    let store = repo().join("examples/pipeline/store.wasm");
    let store = store.to_str().expect("UTF-8 path");
    let inspected = run_in(dir.path(), &["component", "inspect", "--cache-dir", "c", store], "");
    assert_eq!(inspected.code, Some(0), "{}", inspected.stderr);
    // Compiled for its types, then read back for the check.
    assert!(inspected.stdout.contains("compile cache c: 1 loaded from it, 1 compiled"), "{}", inspected.stdout);
    let ran = run_in(dir.path(), &["run", "--cache-dir", "c", &manifest()], "");
    assert!(ran.stderr.contains("compile cache c: 1 loaded from it, 2 compiled"), "{}", ran.stderr);
}
