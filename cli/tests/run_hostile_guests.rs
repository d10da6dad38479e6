//! `switchyard run` against a hostile guest (tests/guests/hostile, a real Rust component
//! built by cargo for wasm32-wasip2): its error text cannot flood the host or write to the
//! operator's terminal, grants cannot be made to overlap across components nor redirected
//! by a link one of them planted, and no guest may write what the host reads or runs as
//! native code (the compile cache, the manifest, a component file, the storage file).

mod common;
#[path = "../../tests/common/guests.rs"]
mod guests;

use std::path::{Path, PathBuf};

use common::*;

/// A manifest hosting the hostile guest as each `(id, extra lines)` component, then `messages`.
fn manifest(dir: &Path, guest: &Path, components: &[(&str, &str)], messages: &str) -> PathBuf {
    let mut text = String::new();
    for (id, extra) in components {
        text.push_str(&format!("[[component]]\nid = {id:?}\nfile = {:?}\n{extra}\n", guest.display().to_string()));
    }
    text.push_str(messages);
    let path = dir.join("manifest.toml");
    std::fs::write(&path, text).expect("manifest");
    path
}

#[test]
fn a_guest_error_is_bounded_and_cannot_write_to_the_operators_terminal() {
    let Some(guest) = guests::hostile() else { return };
    let dir = TempDir::new("hostile-errors");
    // The forged line first: the table lists the first few dead letters one by one. The run
    // drains every message before it ends, however slow the machine (the default drain of
    // 5 s would dead-letter what is left as `shutdown`).
    let mut messages = String::from(
        "[runtime]\ndrain_timeout_ms = 600000\n[[message]]\nto = \"hostile\"\npayload = { Fail = { text = \"\\u001b[2J\\rswitchyard: forged\", len = 26 } }\n",
    );
    for _ in 0..20 {
        messages.push_str("[[message]]\nto = \"hostile\"\npayload = { Fail = { text = \"x\", len = 8388608 } }\n");
    }
    let m = manifest(
        dir.path(),
        &guest,
        &[("hostile", "memory_limit = \"64MiB\"\nfuel_per_message = 100000000000\ndeadline_ms = 20000")],
        &messages,
    );
    let ran = run_in(dir.path(), &["run", m.to_str().unwrap()], "");
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(!ran.stderr.contains('\x1b') && !ran.stderr.contains('\r'), "raw terminal bytes reached stderr");
    assert!(ran.stderr.contains("\\u{1b}[2J\\rswitchyard: forged"), "shown escaped:\n{}", tail(&ran.stderr));
    // 21 dead letters, each message kept at its bound (8 MiB each before).
    assert!(ran.stderr.contains("handler_failed 21"), "{}", tail(&ran.stderr));
    for line in ran.stderr.lines() {
        assert!(line.len() <= 4096 + 256, "a line of {} bytes: {}...", line.len(), &line[..200]);
    }
    assert!(ran.stderr.contains("bytes cut)"), "the cut is said: {}", tail(&ran.stderr));
    assert!(ran.stderr.len() < 256 << 10, "stderr is {} bytes", ran.stderr.len());
}

fn tail(s: &str) -> &str {
    &s[s.len().saturating_sub(3000)..]
}

#[test]
fn grants_that_overlap_across_components_are_refused_unless_all_are_read_only() {
    let Some(guest) = guests::hostile() else { return };
    let dir = TempDir::new("hostile-overlap");
    std::fs::create_dir_all(dir.path().join("data/pub")).expect("dirs");
    let writer = "capabilities = { dirs = [{ host = \"data\", guest = \"/data\", mode = \"read-write\" }] }";
    let reader = "capabilities = { dirs = [{ host = \"data/pub\", guest = \"/pub\" }] }";
    let m = manifest(dir.path(), &guest, &[("w", writer), ("r", reader)], "");
    let ran = run_in(dir.path(), &["run", m.to_str().unwrap()], "");
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let located =
        ran.stderr.contains("manifest.toml:8:") && ran.stderr.contains("component[1].capabilities.dirs[0].host");
    assert!(located, "{}", ran.stderr);
    assert!(ran.stderr.contains("overlaps") && ran.stderr.contains("of component w (read-write)"), "{}", ran.stderr);
    // Read-only grants may overlap.
    let reader_too = "capabilities = { dirs = [{ host = \"data\", guest = \"/data\" }] }";
    let m = manifest(
        dir.path(),
        &guest,
        &[("w", reader_too), ("r", reader)],
        "[[message]]\nto = \"r\"\npayload = { List = \"/pub\" }\nrequest = true\n",
    );
    let ran = run_in(dir.path(), &["run", m.to_str().unwrap()], "");
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(ran.stdout.contains(r#""payload":"ok ""#), "{}", ran.stdout);
}

#[test]
fn a_link_a_guest_planted_in_an_earlier_run_does_not_move_a_later_runs_grant() {
    let Some(guest) = guests::hostile() else { return };
    let dir = TempDir::new("hostile-link");
    std::fs::create_dir_all(dir.path().join("data/pub")).expect("dirs");
    std::fs::write(dir.path().join("secret-above"), "not for guests").expect("a file two levels above pub");
    // Run 1: `w` may write `data`; it moves `pub` away and puts a link `../..` in its place.
    let writer = "capabilities = { dirs = [{ host = \"data\", guest = \"/data\", mode = \"read-write\" }] }";
    let plant = "[[message]]\nto = \"w\"\npayload = { Rename = { from = \"/data/pub\", to = \"/data/moved\" } }\n\
                 request = true\n[[message]]\nto = \"w\"\n\
                 payload = { Symlink = { target = \"../..\", link = \"/data/pub\" } }\nrequest = true\n";
    let m = manifest(dir.path(), &guest, &[("w", writer)], plant);
    let ran = run_in(dir.path(), &["run", m.to_str().unwrap()], "");
    assert!(ran.stdout.contains(r#""payload":"ok linked""#), "the guest planted its link:\n{}", ran.stdout);
    assert!(std::fs::symlink_metadata(dir.path().join("data/pub")).expect("pub").file_type().is_symlink());
    // Run 2: `r` may read `data/pub`, now the link: refused at start, naming the link.
    let reader = "capabilities = { dirs = [{ host = \"data/pub\", guest = \"/pub\" }] }";
    let list = "[[message]]\nto = \"r\"\npayload = { List = \"/pub\" }\nrequest = true\n";
    let m = manifest(dir.path(), &guest, &[("r", reader)], list);
    let ran = run_in(dir.path(), &["run", m.to_str().unwrap()], "");
    assert!(!ran.stdout.contains("secret-above"), "the grant followed the link:\n{}", ran.stdout);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("is a symbolic link"), "{}", ran.stderr);
}

#[test]
fn a_read_write_grant_over_what_the_host_reads_or_runs_is_refused_whatever_the_cache_setting() {
    let Some(guest) = guests::hostile() else { return };
    let dir = TempDir::new("hostile-reach");
    // The user's default compile cache of runs in `dir` (XDG_CACHE_HOME, see `switchyard_in`).
    std::fs::create_dir_all(user_cache(dir.path())).expect("cache dir");
    let grant = |host: &str| {
        format!("capabilities = {{ dirs = [{{ host = {host:?}, guest = \"/g\", mode = \"read-write\" }}] }}")
    };
    let refused = |grant: String, args: &[&str], what: &str| {
        let m = manifest(dir.path(), &guest, &[("g", &grant)], "");
        let mut argv = vec!["run", m.to_str().unwrap()];
        argv.extend_from_slice(args);
        let ran = run_in(dir.path(), &argv, "");
        assert_eq!(ran.code, Some(1), "{what}: {}", ran.stderr);
        assert!(ran.stderr.contains("component[0].capabilities.dirs[0].host"), "{what}: {}", ran.stderr);
        assert!(ran.stderr.contains(what), "{what}: {}", ran.stderr);
    };
    refused(grant("xdg-cache"), &["--no-cache"], "holds the compile cache");
    refused(grant("xdg-cache/switchyard"), &["--cache-dir", "elsewhere"], "holds the compile cache");
    std::fs::create_dir_all(dir.path().join("mine")).expect("cache dir");
    refused(grant("mine"), &["--cache-dir", "mine/cache"], "holds the compile cache");
    refused(grant("."), &["--no-cache"], "holds the manifest");
    // The component file: a guest that rewrites it chooses the next run's code.
    let code_dir = dir.path().join("code");
    std::fs::create_dir_all(&code_dir).expect("code dir");
    let copy = code_dir.join("hostile.wasm");
    std::fs::copy(&guest, &copy).expect("copy the guest");
    let m = manifest(dir.path(), &copy, &[("g", &grant("code"))], "");
    let ran = run_in(dir.path(), &["run", m.to_str().unwrap(), "--no-cache"], "");
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("holds the component file"), "{}", ran.stderr);
    // The storage file, even one that does not exist yet.
    std::fs::create_dir_all(dir.path().join("state")).expect("state dir");
    refused(grant("state"), &["--no-cache", "--storage", "state/db.redb"], "holds the storage file");
    // Read-only, the cache is fine.
    let m = manifest(
        dir.path(),
        &guest,
        &[("g", "capabilities = { dirs = [{ host = \"xdg-cache\", guest = \"/g\" }] }")],
        "",
    );
    let ran = run_in(dir.path(), &["run", m.to_str().unwrap(), "--no-cache"], "");
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
}
