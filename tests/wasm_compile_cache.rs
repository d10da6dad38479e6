//! The compile cache: a load of bytes compiled before reads the compiled code back; corrupt
//! entries, entries of another engine configuration and entries under the wrong name are
//! detected, counted and rebuilt; hosts sharing a directory at once all succeed.
#![cfg(feature = "wasm")]

mod common;
mod wasm_guests;

use std::path::{Path, PathBuf};
use std::sync::Barrier;

use common::*;
use switchyard::{CompileCacheStats, WasmComponent, WasmConfig, WasmHost, WasmOptions};
use switchyard_bench_support::storage::TempDir;
use wasm_guests as guests;

fn cached(dir: &Path) -> WasmConfig {
    // No pooling: these tests build many hosts and need no reserved instance slots.
    WasmConfig { cache_dir: Some(dir.to_path_buf()), pooling: false, ..WasmConfig::default() }
}

fn host(config: WasmConfig) -> WasmHost {
    WasmHost::new(config).expect("host starts")
}

fn stats(host: &WasmHost) -> CompileCacheStats {
    host.cache_stats().expect("the host has a cache")
}

/// The entries in `dir`, sorted.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("cache dir lists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "entry"))
        .collect();
    v.sort();
    v
}

/// Everything in `dir` that is not an entry (temporary files left behind, for instance).
fn others(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("cache dir lists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_none_or(|x| x != "entry"))
        .collect()
}

fn the_entry(dir: &Path) -> PathBuf {
    let all = entries(dir);
    assert_eq!(all.len(), 1, "one entry expected in {}: {all:?}", dir.display());
    all.into_iter().next().expect("one entry")
}

/// Runs one request through `code` on `host` and checks the echo.
fn echoes(host: &WasmHost, code: &WasmComponent) {
    let echo = id("echo");
    let mut instance = host.instantiate_detached(&echo, code, WasmOptions::default()).expect("instantiates");
    let reply = instance.call(&req(&echo, b"cached code runs")).expect("the call succeeds");
    assert_eq!(reply.as_deref(), Some(&b"cached code runs"[..]));
}

/// A cache that loaded the echo guest once: the directory holds its one entry.
fn warmed(dir: &Path, echo: &[u8]) -> PathBuf {
    let first = host(cached(dir));
    first.load(echo).expect("echo loads");
    let s = stats(&first);
    assert_eq!((s.hits, s.misses, s.written), (0, 1, 1), "{s:?}");
    the_entry(dir)
}

#[test]
fn second_load_of_the_same_bytes_hits_the_cache_and_runs() {
    let dir = TempDir::new("cache-hit");
    let echo = guests::component_bytes(&guests::echo());
    warmed(dir.path(), &echo);
    let second = host(cached(dir.path()));
    let code = second.load(&echo).expect("echo loads from the cache");
    let s = stats(&second);
    assert_eq!((s.hits, s.misses, s.written, s.corrupt, s.incompatible), (1, 0, 0, 0, 0), "{s:?}");
    assert_eq!(s.last_problem, None);
    echoes(&second, &code);
    // The same host again: another hit, and still one entry.
    second.load(&echo).expect("echo loads again");
    assert_eq!(stats(&second).hits, 2);
    the_entry(dir.path());
}

#[test]
fn a_flipped_byte_in_an_entry_is_detected_and_rebuilt() {
    let dir = TempDir::new("cache-flip");
    let echo = guests::component_bytes(&guests::echo());
    let entry = warmed(dir.path(), &echo);
    let mut bytes = std::fs::read(&entry).expect("entry reads");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&entry, &bytes).expect("entry rewritten");

    let second = host(cached(dir.path()));
    let code = second.load(&echo).expect("echo loads despite the corrupt entry");
    let s = stats(&second);
    assert_eq!((s.hits, s.misses, s.corrupt, s.written), (0, 1, 1, 1), "{s:?}");
    let problem = s.last_problem.expect("the corrupt entry is reported");
    assert!(problem.contains("SHA-256"), "{problem}");
    echoes(&second, &code);
    // Rebuilt: the next host hits.
    let third = host(cached(dir.path()));
    third.load(&echo).expect("echo loads");
    assert_eq!(stats(&third).hits, 1);
}

/// True when this process runs as root (CI does): it can then give files to another user.
#[cfg(unix)]
fn root() -> bool {
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// An entry is native code: one that another user owns, that others could write, or that
/// is a symbolic link, is not read; it is compiled anew and replaced by a private one.
#[cfg(unix)]
#[test]
fn an_entry_someone_else_could_have_written_is_refused_and_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("cache-foreign-entry");
    let echo = guests::component_bytes(&guests::echo());
    let entry = warmed(dir.path(), &echo);
    let refused_then_hit = |why: &str| {
        let next = host(cached(dir.path()));
        let code = next.load(&echo).expect("echo loads");
        let s = stats(&next);
        assert_eq!((s.hits, s.misses, s.untrusted, s.written), (0, 1, 1, 1), "{why}: {s:?}");
        assert!(s.last_problem.as_deref().is_some_and(|p| p.contains(why)), "{s:?}");
        echoes(&next, &code);
        let mode = std::fs::symlink_metadata(&entry).expect("entry").permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600, "replaced by a private entry");
        let after = host(cached(dir.path()));
        after.load(&echo).expect("echo loads");
        assert_eq!(stats(&after).hits, 1, "the replacement is used");
    };
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    refused_then_hit("writable by others");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::rename(&entry, &elsewhere).expect("moved");
    std::os::unix::fs::symlink(&elsewhere, &entry).expect("a link in its place");
    refused_then_hit("a symbolic link");
    if root() {
        std::os::unix::fs::chown(&entry, Some(65534), Some(65534)).expect("chown");
        refused_then_hit("owned by user 65534");
    }
}

#[cfg(unix)]
#[test]
fn a_cache_directory_others_could_change_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("cache-foreign-dir");
    let open = dir.path().join("open");
    std::fs::create_dir(&open).expect("dir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let e = WasmHost::new(cached(&open)).expect_err("writable by others");
    assert!(e.to_string().contains("writable by others (mode 777)"), "{e}");
    // A private directory inside a directory others can write (without the sticky bit)
    // could be swapped for theirs.
    let inner = open.join("cache");
    let e = WasmHost::new(cached(&inner)).expect_err("replaceable");
    assert!(e.to_string().contains("without the sticky bit"), "{e}");
    // One that another user owns.
    let (foreign, owner) = if root() {
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).expect("dir");
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).expect("chown");
        (theirs, "owned by user 65534")
    } else {
        // Not root: the root directory is someone else's.
        (PathBuf::from("/"), "owned by user 0")
    };
    let e = WasmHost::new(cached(&foreign)).expect_err("someone else's");
    assert!(e.to_string().contains(owner), "{e}");
    assert_eq!(std::fs::read_dir(&open).expect("lists").count(), 1, "nothing was written in the refused directory");
}

#[test]
fn a_truncated_entry_is_detected_and_rebuilt() {
    let dir = TempDir::new("cache-truncate");
    let echo = guests::component_bytes(&guests::echo());
    let entry = warmed(dir.path(), &echo);
    for keep in [entry.metadata().expect("entry").len() / 2, 40, 0] {
        let file = std::fs::OpenOptions::new().write(true).open(&entry).expect("entry opens");
        file.set_len(keep).expect("entry truncated");
        drop(file);
        let next = host(cached(dir.path()));
        let code = next.load(&echo).expect("echo loads despite the truncated entry");
        let s = stats(&next);
        assert_eq!((s.hits, s.misses, s.corrupt, s.written), (0, 1, 1, 1), "kept {keep} bytes: {s:?}");
        echoes(&next, &code);
    }
    let last = host(cached(dir.path()));
    last.load(&echo).expect("echo loads");
    assert_eq!(stats(&last).hits, 1, "rebuilt");
}

#[test]
fn an_entry_made_with_fuel_metering_is_not_used_without_it() {
    let dir = TempDir::new("cache-fuel");
    let echo = guests::component_bytes(&guests::echo());
    let metered_entry = warmed(dir.path(), &echo);
    let unmetered = host(WasmConfig { fuel_metering: false, ..cached(dir.path()) });
    let code = unmetered.load(&echo).expect("echo loads");
    let s = stats(&unmetered);
    assert_eq!((s.hits, s.misses, s.written), (0, 1, 1), "{s:?}");
    echoes(&unmetered, &code);
    let all = entries(dir.path());
    assert_eq!(all.len(), 2, "one entry per engine configuration: {all:?}");
    assert!(all.contains(&metered_entry));
}

#[test]
fn an_entry_under_another_keys_name_is_refused() {
    let dir = TempDir::new("cache-renamed");
    let echo = guests::component_bytes(&guests::echo());
    let metered_entry = warmed(dir.path(), &echo);
    host(WasmConfig { fuel_metering: false, ..cached(dir.path()) }).load(&echo).expect("echo loads");
    let unmetered_entry = entries(dir.path()).into_iter().find(|e| *e != metered_entry).expect("a second entry");
    // Code compiled with fuel metering, under the name of the code without it.
    std::fs::copy(&metered_entry, &unmetered_entry).expect("entry copied");

    let unmetered = host(WasmConfig { fuel_metering: false, ..cached(dir.path()) });
    let code = unmetered.load(&echo).expect("echo loads");
    let s = stats(&unmetered);
    assert_eq!((s.hits, s.misses, s.corrupt), (0, 1, 1), "{s:?}");
    assert!(s.last_problem.as_deref().is_some_and(|p| p.contains("another key")), "{s:?}");
    echoes(&unmetered, &code);
}

#[test]
fn hosts_with_and_without_pooling_share_entries() {
    // wasmtime documents compiled code as usable with and without the pooling allocator
    // and leaves pooling out of its compatibility hash.
    let dir = TempDir::new("cache-pooling");
    let echo = guests::component_bytes(&guests::echo());
    let pooled = host(WasmConfig { pooling: true, pool_instances: 4, ..cached(dir.path()) });
    pooled.load(&echo).expect("echo loads");
    assert_eq!(stats(&pooled).written, 1);
    let unpooled = host(cached(dir.path()));
    let code = unpooled.load(&echo).expect("echo loads");
    assert_eq!(stats(&unpooled).hits, 1);
    echoes(&unpooled, &code);
}

#[test]
fn two_hosts_loading_into_the_same_directory_at_once_both_succeed() {
    let dir = TempDir::new("cache-concurrent");
    let echo = guests::component_bytes(&guests::echo());
    let hosts = [host(cached(dir.path())), host(cached(dir.path()))];
    let gate = Barrier::new(hosts.len());
    std::thread::scope(|s| {
        for h in &hosts {
            let (gate, echo) = (&gate, &echo);
            s.spawn(move || {
                gate.wait();
                let code = h.load(echo).expect("echo loads");
                echoes(h, &code);
            });
        }
    });
    for h in &hosts {
        let s = stats(h);
        assert_eq!(s.hits + s.misses, 1, "{s:?}");
        assert_eq!((s.corrupt, s.incompatible, s.write_failures), (0, 0, 0), "{s:?}");
    }
    the_entry(dir.path());
    assert_eq!(others(dir.path()), Vec::<PathBuf>::new(), "no temporary file is left");
    let third = host(cached(dir.path()));
    third.load(&echo).expect("echo loads");
    assert_eq!(stats(&third).hits, 1);
}

#[test]
fn an_entry_that_cannot_be_written_is_counted_and_the_load_succeeds() {
    let learn = TempDir::new("cache-learn");
    let echo = guests::component_bytes(&guests::echo());
    let name = warmed(learn.path(), &echo).file_name().expect("entry name").to_owned();
    // A directory where the entry should be: it is not an entry, and nothing can replace it.
    let dir = TempDir::new("cache-blocked");
    std::fs::create_dir(dir.path().join(&name)).expect("blocking directory");
    let blocked = host(cached(dir.path()));
    let code = blocked.load(&echo).expect("echo loads");
    let s = stats(&blocked);
    assert_eq!((s.misses, s.corrupt, s.written, s.write_failures), (1, 1, 0, 1), "{s:?}");
    assert!(s.last_problem.as_deref().is_some_and(|p| p.contains("not written")), "{s:?}");
    echoes(&blocked, &code);
    assert_eq!(others(dir.path()), Vec::<PathBuf>::new(), "the failed write removed its temporary file");
}

#[test]
fn a_cache_directory_that_cannot_be_created_stops_the_host() {
    let dir = TempDir::new("cache-uncreatable");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").expect("file");
    let e = WasmHost::new(cached(&file.join("cache"))).expect_err("a directory under a file");
    assert!(e.to_string().contains("compile cache"), "{e}");
}

#[test]
fn a_host_without_a_cache_dir_has_no_cache() {
    let plain = host(WasmConfig { pooling: false, ..WasmConfig::default() });
    guests::load(&plain, &guests::echo());
    assert_eq!(plain.cache_stats(), None);
}
