//! `switchyard new guest|host NAME`: the crates it writes build with the real toolchain, pass
//! clippy with warnings denied, and run (the guest hosted by `switchyard run` with the
//! manifest it came with, the host with `cargo run`); bad names and occupied directories are
//! refused, and nothing already there is touched.
//!
//! The generated crates are written to fixed places under the test's target directory
//! (`new-scaffolds/crates/`, inside a workspace they are not members of: the crates must
//! not be swallowed by it) and built into `new-scaffolds/target/`, so a later run rebuilds
//! only the generated crate itself. When the `wasm32-wasip2` target is not installed the
//! guest test says so and passes without running, unless `SWITCHYARD_REQUIRE_TOOLCHAINS` is
//! set (`.ci/run` sets it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// `new-scaffolds/` under the target directory the CLI was built in.
fn scaffolds() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_switchyard"));
    bin.parent().and_then(Path::parent).expect("the binary is in <target>/<profile>/").join("new-scaffolds")
}

/// A fresh (removed) place for the crates of one test, under a directory whose Cargo.toml
/// declares a workspace the generated crates are not members of.
fn crates_dir(test: &str) -> PathBuf {
    let crates = scaffolds().join("crates");
    std::fs::create_dir_all(&crates).expect("create the crates directory");
    std::fs::write(
        crates.join("Cargo.toml"),
        "# An enclosing workspace the generated crates must not join.\n[workspace]\nmembers = []\n",
    )
    .expect("write the enclosing workspace");
    let dir = crates.join(test);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `cargo ARGS` in `dir`, building into the shared scaffold target directory; its output.
fn cargo(dir: &Path, args: &[&str]) -> Ran {
    let out = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", scaffolds().join("target"))
        .output()
        .expect("cargo runs");
    let ran = Ran::from(out);
    assert_eq!(
        ran.code,
        Some(0),
        "cargo {}: failed in {}:\n{}{}",
        args.join(" "),
        dir.display(),
        ran.stdout,
        ran.stderr
    );
    ran
}

/// `switchyard new ARGS` run in `cwd`.
fn new_in(cwd: &Path, args: &[&str]) -> Ran {
    let mut all = vec!["new"];
    all.extend_from_slice(args);
    switchyard_in(cwd, &all).output().expect("run switchyard new").into()
}

/// Whether the wasm32-wasip2 target is installed (failing when it is not and the
/// toolchains are required).
fn wasm_target_installed() -> bool {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == "wasm32-wasip2"));
    if !installed {
        assert!(
            std::env::var_os("SWITCHYARD_REQUIRE_TOOLCHAINS").is_none(),
            "the wasm32-wasip2 target is not installed (rustup target add wasm32-wasip2)"
        );
        eprintln!("skipped: the wasm32-wasip2 target is not installed (rustup target add wasm32-wasip2)");
    }
    installed
}

#[test]
fn new_guest_builds_for_wasm32_wasip2_and_runs_with_its_manifest_keeping_its_count() {
    if !wasm_target_installed() {
        return;
    }
    let dir = crates_dir("guest");
    let cwd = TempDir::new("new-guest");
    let made = new_in(cwd.path(), &["guest", "tally", "--dir", dir.to_str().unwrap()]);
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    assert!(made.stdout.contains("created guest crate tally in "), "{}", made.stdout);
    assert!(made.stdout.contains("switchyard run tally.toml"), "{}", made.stdout);
    let krate = dir.join("tally");
    for file in ["Cargo.toml", "Cargo.lock", "src/lib.rs", "tally.toml", "README.md", ".gitignore"] {
        assert!(krate.join(file).is_file(), "{file} was not written");
    }
    let readme = std::fs::read_to_string(krate.join("README.md")).unwrap();
    assert!(readme.contains("cargo build --release --target wasm32-wasip2"), "{readme}");
    assert!(readme.contains("switchyard run tally.toml"), "{readme}");

    cargo(&krate, &["build", "--release", "--target", "wasm32-wasip2"]);
    cargo(&krate, &["clippy", "--release", "--target", "wasm32-wasip2", "--", "-D", "warnings"]);
    // The manifest names the component where a build without CARGO_TARGET_DIR writes it.
    let wasm = scaffolds().join("target/wasm32-wasip2/release/tally.wasm");
    let expected = krate.join("target/wasm32-wasip2/release/tally.wasm");
    std::fs::create_dir_all(expected.parent().unwrap()).unwrap();
    std::fs::copy(&wasm, &expected).expect("copy the component where the manifest names it");

    let input = "{\"to\": \"tally\", \"payload\": {\"Add\": 41}}\n{\"to\": \"tally\", \"payload\": \"Get\", \"codec\": \"json\"}\n";
    let first = run_in(&krate, &["run", "--request", "tally.toml"], input);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    for reply in [
        r#"{"codec":"json","from":"tally","input":"manifest:message[0]","payload":1}"#,
        r#"{"codec":"json","from":"tally","input":"stdin:1","payload":42}"#,
        r#"{"codec":"json","from":"tally","input":"stdin:2","payload":42}"#,
    ] {
        assert!(first.stdout.lines().any(|l| l == reply), "no {reply} in:\n{}", first.stdout);
    }
    // received, handled, failed, dead letters, restarts: all three handled.
    assert_eq!(row(&first.stderr, "tally")[..5], [3, 3, 0, 0, 0], "{}", first.stderr);
    assert!(first.stderr.contains("[info] tally: added 41: the count is 42"), "{}", first.stderr);

    // A second run: the count was kept in ./switchyard.redb, so the manifest's Add(1) makes 43.
    let second = run_in(&krate, &["run", "tally.toml"], "");
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(second.stdout.contains(r#""input":"manifest:message[0]","payload":43"#), "{}", second.stdout);
    assert_eq!(stored_keys(&second.stderr, "tally"), (1, 1), "{}", second.stderr);
}

#[test]
fn new_host_runs_a_typed_component_natively_with_cargo_run() {
    let dir = crates_dir("host");
    let cwd = TempDir::new("new-host");
    let made = new_in(cwd.path(), &["host", "tally-host", "--dir", dir.to_str().unwrap()]);
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    assert!(made.stdout.contains("created host crate tally-host in "), "{}", made.stdout);
    let krate = dir.join("tally-host");
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("default-features = false"), "the host builds no wasmtime:\n{manifest}");

    let ran = cargo(&krate, &["run", "--quiet"]);
    assert_eq!(ran.stdout, "count: 42\nshut down, every message handled or dead-lettered: true\n", "{}", ran.stderr);
    cargo(&krate, &["clippy", "--all-targets", "--", "-D", "warnings"]);
}

/// Every file under `dir` with its contents, sorted.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read a directory") {
            let path = entry.expect("an entry").path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
                all.push((path, Vec::new()));
            } else if meta.file_type().is_symlink() {
                all.push((path.clone(), std::fs::read_link(&path).unwrap().into_os_string().into_encoded_bytes()));
            } else {
                all.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    all.sort();
    all
}

#[test]
fn occupied_directories_bad_names_and_wrong_sdks_are_refused_and_nothing_is_touched() {
    let dir = TempDir::new("new-refused");
    let root = dir.path();
    let sub = |p: &str| root.join(p).to_str().unwrap().to_string();
    std::fs::create_dir(root.join("taken")).unwrap();
    std::fs::write(root.join("taken/keep.txt"), "mine").unwrap();
    std::fs::create_dir(root.join("taken/src")).unwrap();
    std::fs::write(root.join("taken/src/lib.rs"), "// mine").unwrap();
    std::fs::write(root.join("a-file"), "not a directory").unwrap();
    std::os::unix::fs::symlink(root.join("taken"), root.join("linked")).unwrap();
    let before = snapshot(root);

    // An existing non-empty directory, a file, a symbolic link: exit 1, nothing written.
    for (kind, name, said) in [
        ("guest", "taken", "the directory already exists and is not empty; nothing was written"),
        ("host", "taken", "the directory already exists and is not empty; nothing was written"),
        ("guest", "a-file", "already exists and is not a directory; nothing was written"),
        ("host", "linked", "is a symbolic link"),
    ] {
        let ran = new_in(root, &[kind, name]);
        assert_eq!(ran.code, Some(1), "new {kind} {name}: {}", ran.stderr);
        assert!(ran.stderr.contains(&format!("switchyard: error: ./{name}: {said}")), "{}", ran.stderr);
        assert_eq!(snapshot(root), before, "new {kind} {name} changed the directory");
    }
    // --dir a file: the crate's directory cannot be made under it.
    let ran = new_in(root, &["guest", "tally", "--dir", &sub("a-file")]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("a-file/tally: cannot create the crate's directory there: Not a directory"),
        "{}",
        ran.stderr
    );
    // An --sdk that is not the crate asked for: exit 1, nothing written.
    let not_sdk = repo().join("cli");
    for kind in ["guest", "host"] {
        let ran = new_in(root, &[kind, "tally", "--sdk", not_sdk.to_str().unwrap()]);
        assert_eq!(ran.code, Some(1), "{}", ran.stderr);
        assert!(ran.stderr.contains("this is not the switchyard"), "{}", ran.stderr);
        assert!(ran.stderr.contains("(its package is \"switchyard-cli\")"), "{}", ran.stderr);
    }
    let ran = new_in(root, &["guest", "tally", "--sdk", &sub("nowhere")]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("cannot read the switchyard-guest crate's Cargo.toml"), "{}", ran.stderr);
    assert_eq!(snapshot(root), before);

    // Names that are not crate names: bad usage, exit 2, nothing written.
    let long = "x".repeat(65);
    for name in [
        "",
        "1tally",
        "-tally",
        "Tally",
        "../escape",
        "a/b",
        "a.b",
        "tally\n",
        "fn",
        "test",
        "switchyard-guest",
        long.as_str(),
    ] {
        for kind in ["guest", "host"] {
            // After `--`, so that "-tally" is taken as a name.
            let ran = new_in(root, &[kind, "--", name]);
            assert_eq!(ran.code, Some(2), "new {kind} {name:?}: {}", ran.stderr);
            assert!(ran.stderr.contains("invalid value"), "{}", ran.stderr);
            assert!(
                ran.stderr.contains("a crate name is 1 to 64 lowercase ASCII letters")
                    || ran.stderr.contains("is reserved"),
                "{}",
                ran.stderr
            );
        }
    }
    // No kind, an unknown kind, a name that is an unknown flag: bad usage.
    assert_eq!(new_in(root, &[]).code, Some(2));
    assert_eq!(new_in(root, &["guest", "-tally"]).code, Some(2));
    assert_eq!(new_in(root, &["plugin", "tally"]).code, Some(2));
    assert_eq!(snapshot(root), before);

    // An empty directory is used as it is.
    std::fs::create_dir(root.join("empty")).unwrap();
    let ran = new_in(root, &["host", "empty"]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(root.join("empty/src/main.rs").is_file());
}
