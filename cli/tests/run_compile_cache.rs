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
fn a_second_run_loads_its_components_from_the_users_cache_not_the_working_directory() {
    let dir = TempDir::new("cache-default");
    let cache = user_cache(dir.path());
    let first = run_in(dir.path(), &["run", &manifest()], "");
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let line = format!("compile cache {}: 0 loaded from it, 3 compiled", cache.display());
    assert!(first.stderr.contains(&line), "{}", first.stderr);
    assert_eq!(entries(&cache), 3);
    assert!(!dir.path().join("switchyard-cache").exists(), "nothing compiled is left in the working directory");
    let second = run_in(dir.path(), &["run", &manifest()], "");
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    let line = format!("compile cache {}: 3 loaded from it, 0 compiled", cache.display());
    assert!(second.stderr.contains(&line), "{}", second.stderr);
    // The storage file elsewhere changes nothing: the cache is the user's.
    std::fs::create_dir(dir.path().join("data")).expect("data dir");
    let moved = run_in(dir.path(), &["run", "--storage", "data/s.redb", &manifest()], "");
    assert!(moved.stderr.contains("3 loaded from it, 0 compiled"), "{}", moved.stderr);
    assert!(!dir.path().join("data/switchyard-cache").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache).expect("cache").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "created private to the user");
    }
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
    write(&dir, "blocked", "a file where a directory would go");
    let asked = run_in(dir.path(), &["run", "--cache-dir", "blocked/sub", &manifest()], "");
    assert_eq!(asked.code, Some(1), "{}", asked.stderr);
    assert!(asked.stderr.contains("cannot create"), "{}", asked.stderr);
    write(&dir, "xdg-cache", "a file where the user's cache directory would go");
    let default = run_in(dir.path(), &["run", &manifest()], "");
    assert_eq!(default.code, Some(0), "{}", default.stderr);
    assert!(default.stderr.contains("warning: running without a compile cache"), "{}", default.stderr);
}

/// The cache's entries are native code: a directory someone else could write is refused
/// when asked for, and skipped (with a warning) as the default.
#[cfg(unix)]
#[test]
fn a_cache_dir_others_can_write_is_refused_and_a_default_one_is_skipped() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("cache-open");
    let open = dir.path().join("open");
    std::fs::create_dir(&open).expect("dir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let asked = run_in(dir.path(), &["run", "--cache-dir", "open", &manifest()], "");
    assert_eq!(asked.code, Some(1), "{}", asked.stderr);
    assert!(asked.stderr.contains("is writable by others (mode 777)"), "{}", asked.stderr);
    assert_eq!(std::fs::read_dir(&open).expect("lists").count(), 0, "nothing read or written there");
    let cache = user_cache(dir.path());
    std::fs::create_dir_all(&cache).expect("cache");
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let default = run_in(dir.path(), &["run", &manifest()], "");
    assert_eq!(default.code, Some(0), "{}", default.stderr);
    assert!(default.stderr.contains("warning: running without a compile cache"), "{}", default.stderr);
    assert!(default.stderr.contains("writable by others"), "{}", default.stderr);
    assert_eq!(entries(&cache), 0);
}

/// A guest granted the directory of the storage file could read every component's
/// namespace; one granted the cache read-write could plant native code.
#[test]
fn a_grant_that_reaches_the_storage_file_or_the_cache_is_refused_at_start() {
    let dir = TempDir::new("cache-grant");
    let store = repo().join("examples/pipeline/store.wasm");
    let component = |dirs: &str| {
        format!(
            "[[component]]\nid = \"store\"\nfile = {:?}\ncapabilities = {{ storage = \"read-write\", dirs = [{dirs}] }}\n",
            store.to_str().expect("UTF-8 path")
        )
    };
    let storage = write(&dir, "over-storage.toml", &component(r#"{ host = ".", guest = "/d" }"#));
    let ran = run_in(dir.path(), &["run", storage.to_str().expect("UTF-8")], "");
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("holds the storage file"), "{}", ran.stderr);
    std::fs::create_dir_all(user_cache(dir.path())).expect("cache");
    std::fs::create_dir(dir.path().join("elsewhere")).expect("dir");
    let cache =
        write(&dir, "over-cache.toml", &component(r#"{ host = "xdg-cache", guest = "/c", mode = "read-write" }"#));
    let ran = run_in(dir.path(), &["run", "--storage", "elsewhere/s.redb", cache.to_str().expect("UTF-8")], "");
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("holds the compile cache"), "{}", ran.stderr);
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
