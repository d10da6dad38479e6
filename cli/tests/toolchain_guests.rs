//! The example guests built from source by their real toolchains (`examples/guests/build.sh`:
//! clang-19 with wasi-libc and the WASI preview1 adapter, componentize-js, componentize-py),
//! then run through the CLI (`polyglot.toml`) and through the API.
//!
//! When a toolchain is missing each test says so and passes without running, unless
//! `SWITCHYARD_REQUIRE_TOOLCHAINS=1` (`.ci/run` sets it, after installing every tool): then a
//! missing tool fails the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::*;
use switchyard::{
    Capabilities, ComponentId, DirGrant, MessageEnvelope, MessageType, RedbBackend, Runtime, StorageRights, WasiGrants,
    WasmConfig, WasmHost, WasmOptions, codec, new_message_id,
};

/// The directory the guests were built into, once per test binary (`None`: a tool is missing
/// and the toolchains are not required).
fn built() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let script = repo().join("examples/guests/build.sh");
            let check = Command::new(&script).args(["--check", "c", "js", "python"]).output().expect("run build.sh");
            if !check.status.success() {
                let missing = String::from_utf8_lossy(&check.stderr);
                assert!(
                    std::env::var("SWITCHYARD_REQUIRE_TOOLCHAINS").as_deref() != Ok("1"),
                    "SWITCHYARD_REQUIRE_TOOLCHAINS=1, but {missing}"
                );
                eprintln!("skipped: {missing}");
                return None;
            }
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("toolchain-guests");
            let build = Command::new(&script)
                .args(["-o", out.to_str().unwrap(), "c", "js", "python"])
                .env("SWITCHYARD", env!("CARGO_BIN_EXE_switchyard"))
                .output()
                .expect("run build.sh");
            assert!(
                build.status.success(),
                "build.sh failed:\n{}{}",
                String::from_utf8_lossy(&build.stdout),
                String::from_utf8_lossy(&build.stderr)
            );
            Some(out)
        })
        .as_deref()
}

/// A scratch directory holding `polyglot.toml` and, as `build/`, the built guests.
fn polyglot_dir(built: &Path, name: &str) -> (TempDir, String) {
    let dir = TempDir::new(name);
    let manifest = dir.path().join("polyglot.toml");
    std::fs::copy(repo().join("examples/guests/polyglot.toml"), &manifest).expect("copy the manifest");
    std::os::unix::fs::symlink(built, dir.path().join("build")).expect("link the built guests");
    (dir, manifest.to_str().unwrap().to_string())
}

#[test]
fn c_javascript_and_python_guests_run_the_pipeline_keep_storage_across_runs_and_log_their_stdout() {
    let Some(built) = built() else { return };
    let (dir, manifest) = polyglot_dir(built, "polyglot");

    let first = run_in(dir.path(), &["run", &manifest], "");
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    // store (Python) is asked for its count before the records; ingest (C) answers with its own.
    assert!(
        first.stdout.contains(r#""from":"py-store","input":"manifest:message[0]","payload":"0""#),
        "{}",
        first.stdout
    );
    assert!(first.stdout.contains(r#""payload":"accepted #3""#), "{}", first.stdout);
    // transform (JavaScript) prints with console.log: the lines reach the log, tagged.
    assert!(first.stderr.contains("[stdout] js-transform: second record -> SECOND RECORD"), "{}", first.stderr);
    assert!(first.stderr.contains("[info] py-store: py-store kept record #3: THIRD RECORD"), "{}", first.stderr);
    assert!(first.stderr.contains("[warn] c-ingest: refused an empty record"), "{}", first.stderr);
    // received, handled, failed, dead letters
    assert_eq!(row(&first.stderr, "c-ingest")[..4], [4, 3, 1, 1], "{}", first.stderr);
    assert_eq!(row(&first.stderr, "js-transform")[..4], [3, 3, 0, 0], "{}", first.stderr);
    assert_eq!(row(&first.stderr, "py-store")[..4], [4, 4, 0, 0], "{}", first.stderr);
    assert_eq!(stored_keys(&first.stderr, "py-store"), (0, 4), "three records and the count");

    let second = run_in(dir.path(), &["run", &manifest], "");
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(second.stdout.contains(r#""input":"manifest:message[0]","payload":"3""#), "{}", second.stdout);
    assert!(second.stdout.contains(r#""payload":"accepted #6""#), "{}", second.stdout);
    assert_eq!(stored_keys(&second.stderr, "py-store"), (4, 7), "{}", second.stderr);
    // The first run compiled the three guests into the cache beside the storage file.
    assert!(second.stderr.contains("3 loaded from it, 0 compiled"), "{}", second.stderr);
}

#[test]
fn guests_without_grants_are_refused_files_and_http_and_the_refusal_is_counted() {
    let Some(built) = built() else { return };
    let (dir, manifest) = polyglot_dir(built, "polyglot-denied");
    let asked = concat!(
        r#"{"to": "py-store", "payload": "read /etc/passwd"}"#,
        "\n",
        r#"{"to": "js-transform", "payload": "fetch http://127.0.0.1:9/"}"#,
        "\n"
    );
    let ran = run_in(dir.path(), &["run", "--request", &manifest], asked);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    // No directory is granted: Python's open() fails in the guest, the guest answers.
    assert!(
        ran.stdout.contains(r#""input":"stdin:1","payload":"refused: FileNotFoundError: No such file or directory""#),
        "{}",
        ran.stdout
    );
    // No HTTP is granted: the host refuses the outgoing request and counts it.
    assert!(ran.stdout.contains(r#""payload":"fetch started: http://127.0.0.1:9/""#), "{}", ran.stdout);
    // ... received, handled, failed, dead letters, restarts, fuel used, traps, denied
    let transform = row(&ran.stderr, "js-transform");
    assert_eq!((transform[2], transform[6], transform[7]), (0, 0, 1), "{}", ran.stderr);
    assert_eq!(row(&ran.stderr, "py-store")[7], 0, "a missing preopen is the guest's own refusal: {}", ran.stderr);
}

/// One run of the Python guest through the API: a runtime, a WASM host on `storage`, the
/// guest registered as "store" with `dir` granted read-only at `/data`; sends each payload as
/// a request and returns the replies and the log lines.
fn python_store_run(
    python: &Path,
    storage: &Path,
    cache: &Path,
    dir: &Path,
    asks: &[&str],
) -> (Vec<String>, Vec<String>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink_lines = lines.clone();
    let sink: switchyard::LogSink = Arc::new(move |id: &ComponentId, level: &str, msg: &str| {
        sink_lines.lock().unwrap().push(format!("[{level}] {id}: {msg}"))
    });
    let store = Arc::new(RedbBackend::open(storage).expect("redb opens"));
    let config = WasmConfig { cache_dir: Some(cache.to_path_buf()), ..WasmConfig::default() };
    let host = WasmHost::build(config, Some(store), Some(sink)).expect("host");
    let code = host.load_file(python).expect("the Python guest loads");
    let rt = Runtime::builder().workers(1).build().expect("runtime");
    let id = ComponentId::new("store").unwrap();
    let wasi = WasiGrants {
        dirs: vec![DirGrant { host: dir.to_path_buf(), guest: "/data".into(), writable: false }],
        ..WasiGrants::default()
    };
    let options = WasmOptions::default()
        .memory_limit(64 << 20)
        .fuel_per_message(1_000_000_000)
        .deadline(Duration::from_secs(30))
        .capabilities(Capabilities { storage: StorageRights::ReadWrite, wasi, ..Capabilities::default() });
    host.register(&rt.handle(), id.clone(), &code, options).expect("registers");
    let me = ComponentId::new("test").unwrap();
    let replies = asks
        .iter()
        .map(|ask| {
            let req = MessageEnvelope::new(
                MessageType::Request,
                me.clone(),
                id.clone(),
                ask.as_bytes().to_vec(),
                codec::RAW,
                new_message_id(),
            );
            let reply = rt.request(req, Duration::from_secs(60)).expect("sent").wait().expect("store replies");
            String::from_utf8(reply.payload.to_vec()).expect("text")
        })
        .collect();
    rt.shutdown(Duration::from_secs(10));
    let logged = lines.lock().unwrap().clone();
    (replies, logged)
}

#[test]
fn python_guest_through_the_api_reads_only_its_granted_directory_and_keeps_storage_across_runtimes() {
    let Some(built) = built() else { return };
    let dir = TempDir::new("python-api");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("hello.txt"), "hello from the host\nsecond line\n").unwrap();
    let (storage, cache) = (dir.path().join("s.redb"), dir.path().join("cache"));
    let python = built.join("python/store.wasm");

    let (replies, logged) = python_store_run(
        &python,
        &storage,
        &cache,
        &data,
        &["read /data/hello.txt", "read /etc/passwd", "a record", "count?"],
    );
    assert_eq!(replies[0], "read 32 bytes: hello from the host");
    assert_eq!(replies[1], "refused: FileNotFoundError: No such file or directory", "outside the grant");
    assert_eq!(replies[2..], ["stored #1", "1"]);
    assert!(logged.iter().any(|l| l == "[info] store: store kept record #1: a record"), "{logged:?}");
    assert!(logged.iter().any(|l| l.starts_with("[warn] store: could not read /etc/passwd")), "{logged:?}");

    // A second runtime on the same storage file finds the record (and the compiled code).
    let (replies, _) = python_store_run(&python, &storage, &cache, &data, &["another", "count?"]);
    assert_eq!(replies, ["stored #2", "2"]);
}

#[test]
fn c_javascript_and_python_guests_run_the_pipeline_through_the_api() {
    let Some(built) = built() else { return };
    let dir = TempDir::new("polyglot-api");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let tx = Mutex::new(tx);
    let sink: switchyard::LogSink = Arc::new(move |id: &ComponentId, level: &str, msg: &str| {
        let _ = tx.lock().unwrap().send(format!("[{level}] {id}: {msg}"));
    });
    let store = Arc::new(RedbBackend::open(dir.path().join("s.redb")).expect("redb opens"));
    let host = WasmHost::build(WasmConfig::default(), Some(store), Some(sink)).expect("host");
    let rt = Runtime::builder().workers(2).build().expect("runtime");
    // As examples/guests/polyglot.toml: each may send only to the next stage.
    for (id, file, next) in [
        ("c-ingest", "c/ingest.wasm", Some("js-transform")),
        ("js-transform", "js/transform.wasm", Some("py-store")),
        ("py-store", "python/store.wasm", None),
    ] {
        let code = host.load_file(built.join(file)).unwrap_or_else(|e| panic!("{file} loads: {e}"));
        let send = next.map(|n| vec![switchyard::TargetPattern::parse(n)]).unwrap_or_default();
        let options = WasmOptions::default()
            .memory_limit(64 << 20)
            .fuel_per_message(1_000_000_000)
            .deadline(Duration::from_secs(30))
            .capabilities(Capabilities { send, storage: StorageRights::ReadWrite, ..Capabilities::default() });
        host.register(&rt.handle(), ComponentId::new(id).unwrap(), &code, options).expect("registers");
    }
    let me = ComponentId::new("test").unwrap();
    let ask = |to: &str, payload: &str| {
        let req = MessageEnvelope::new(
            MessageType::Request,
            me.clone(),
            ComponentId::new(to).unwrap(),
            payload.as_bytes().to_vec(),
            codec::RAW,
            new_message_id(),
        );
        let reply = rt.request(req, Duration::from_secs(60)).expect("sent").wait();
        reply.map(|r| String::from_utf8(r.payload.to_vec()).expect("text"))
    };
    assert_eq!(ask("c-ingest", "  one  ").as_deref(), Ok("accepted #1"));
    assert_eq!(ask("c-ingest", "two").as_deref(), Ok("accepted #2"));
    // An empty record is the C guest's own error, typed, not a trap.
    let refused = ask("c-ingest", "   ").expect_err("refused");
    assert!(refused.to_string().contains("empty record"), "{refused}");
    // Both records reach py-store, through the JavaScript guest (upper-cased there).
    let mut kept = Vec::new();
    while kept.len() < 2 {
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("py-store logs each record it keeps");
        if line.starts_with("[info] py-store: py-store kept record") {
            kept.push(line);
        }
    }
    assert_eq!(
        kept,
        ["[info] py-store: py-store kept record #1: ONE", "[info] py-store: py-store kept record #2: TWO"]
    );
    assert_eq!(ask("py-store", "count?").as_deref(), Ok("2"));
    let report = rt.shutdown(Duration::from_secs(10));
    assert!(report.stats.is_balanced(), "{:?}", report.stats);
}

/// The Rust guests built by cargo for `wasm32-wasip2` (`build.sh rust`), once per test
/// binary, into a scratch directory (`None`: the target is missing and not required).
fn built_rust() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let script = repo().join("examples/guests/build.sh");
            let check = Command::new(&script).args(["--check", "rust"]).output().expect("run build.sh");
            if !check.status.success() {
                let missing = String::from_utf8_lossy(&check.stderr);
                assert!(
                    std::env::var("SWITCHYARD_REQUIRE_TOOLCHAINS").as_deref() != Ok("1"),
                    "SWITCHYARD_REQUIRE_TOOLCHAINS=1, but {missing}"
                );
                eprintln!("skipped: {missing}");
                return None;
            }
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rust-guests");
            let build = Command::new(&script).args(["-o", out.to_str().unwrap(), "rust"]).output().expect("build.sh");
            assert!(build.status.success(), "build.sh rust failed:\n{}", String::from_utf8_lossy(&build.stderr));
            Some(out)
        })
        .as_deref()
}

#[test]
fn a_rust_guest_built_by_cargo_runs_through_switchyard_run_and_keeps_its_storage() {
    let Some(built) = built_rust() else { return };
    let dir = TempDir::new("rust-guest");
    let manifest = dir.path().join("inventory.toml");
    std::fs::copy(repo().join("examples/guests/inventory.toml"), &manifest).expect("copy the manifest");
    std::os::unix::fs::symlink(built, dir.path().join("build")).expect("link the built guests");
    let manifest = manifest.to_str().unwrap();
    let first = run_in(dir.path(), &["run", manifest], "");
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    for answer in [r#""payload":{"Count":5}"#, r#""payload":{"Count":3}"#, r#""payload":{"Items":[["apple",3]]}"#] {
        assert!(first.stdout.contains(answer), "{answer} missing:\n{}", first.stdout);
    }
    assert!(first.stdout.contains("only 0 pear in stock"), "{}", first.stdout);
    assert!(first.stderr.contains("[info] inventory: apple: 0 -> 5"), "{}", first.stderr);
    assert!(first.stderr.contains("(balanced)"), "{}", first.stderr);
    // The second run starts from the first one's apples.
    let second = run_in(dir.path(), &["run", manifest], "");
    assert!(second.stdout.contains(r#""payload":{"Count":8}"#), "{}", second.stdout);
}
