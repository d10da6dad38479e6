//! `switchyard component new` and `switchyard component inspect`.

mod common;

use std::time::Duration;

use common::*;

const CORE_WITHOUT_HANDLER: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0)))"#;

#[test]
fn checked_in_pipeline_components_match_a_rebuild_from_their_wat_sources() {
    let dir = TempDir::new("rebuild");
    for name in ["ingest", "transform", "store"] {
        let src = repo().join(format!("examples/pipeline/{name}.wat"));
        let out = dir.path().join(format!("{name}.wasm"));
        let ran = run_in(dir.path(), &["component", "new", src.to_str().unwrap(), "-o", out.to_str().unwrap()], "");
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
        assert!(ran.stdout.contains("satisfies switchyard:component@0.1.0"), "{}", ran.stdout);
        let rebuilt = std::fs::read(&out).unwrap();
        let checked_in = std::fs::read(repo().join(format!("examples/pipeline/{name}.wasm"))).unwrap();
        assert!(
            rebuilt == checked_in,
            "examples/pipeline/{name}.wasm is stale: rebuild it with `switchyard component new examples/pipeline/{name}.wat -o examples/pipeline/{name}.wasm`"
        );
    }
}

#[test]
fn component_new_refuses_a_module_without_the_handler_export() {
    let dir = TempDir::new("no-handler");
    let src = write(&dir, "bad.wat", CORE_WITHOUT_HANDLER);
    let ran = run_in(dir.path(), &["component", "new", src.to_str().unwrap(), "-o", "out.wasm"], "");
    assert_eq!(ran.code, Some(1));
    assert!(ran.stderr.contains("cannot turn the core module into a component"), "{}", ran.stderr);
    assert!(ran.stderr.contains("handle-message"), "{}", ran.stderr);
    assert!(!dir.path().join("out.wasm").exists());
}

#[test]
fn component_new_on_a_missing_file_is_a_clear_error() {
    let dir = TempDir::new("new-missing");
    let ran = run_in(dir.path(), &["component", "new", "absent.wasm", "-o", "out.wasm"], "");
    assert_eq!(ran.code, Some(1));
    assert!(ran.stderr.contains("cannot read absent.wasm"), "{}", ran.stderr);
}

#[test]
fn component_new_refuses_a_component() {
    let dir = TempDir::new("new-twice");
    let src = repo().join("examples/pipeline/store.wasm");
    let ran = run_in(dir.path(), &["component", "new", src.to_str().unwrap(), "-o", "out.wasm"], "");
    assert_eq!(ran.code, Some(1));
    assert!(ran.stderr.contains("already a component"), "{}", ran.stderr);
}

#[test]
fn inspect_lists_imports_and_exports_of_a_component_our_world_accepts() {
    let dir = TempDir::new("inspect");
    let file = repo().join("examples/pipeline/store.wasm");
    let ran = run_in(dir.path(), &["component", "inspect", file.to_str().unwrap()], "");
    assert_eq!(ran.code, Some(0), "{}", ran.stdout);
    assert!(ran.stdout.contains("switchyard:component/storage@0.1.0 (instance)"), "{}", ran.stdout);
    assert!(ran.stdout.contains("get: func(key: list<u8>) -> result<option<list<u8>>"), "{}", ran.stdout);
    assert!(ran.stdout.contains("handle-message: func(msg: record"), "{}", ran.stdout);
    assert!(ran.stdout.contains("verdict: satisfies switchyard:component@0.1.0 world guest"), "{}", ran.stdout);
}

#[test]
fn inspect_explains_that_a_core_module_needs_converting() {
    let dir = TempDir::new("inspect-core");
    let file = repo().join("examples/pipeline/ingest.wat");
    let ran = run_in(dir.path(), &["component", "inspect", file.to_str().unwrap()], "");
    assert_eq!(ran.code, Some(1));
    assert!(ran.stdout.contains("kind: core WebAssembly module, not a component"), "{}", ran.stdout);
    assert!(ran.stdout.contains("switchyard:component/messaging@0.1.0 send-message"), "{}", ran.stdout);
    assert!(ran.stdout.contains("switchyard component new"), "{}", ran.stdout);
}

#[test]
fn inspect_spells_out_an_import_the_host_lacks() {
    let dir = TempDir::new("inspect-mismatch");
    // A world whose messaging interface has one more function, and a guest that imports it.
    let wit = switchyard::WIT
        .replace("    self-id: func() -> string;", "    self-id: func() -> string;\n    teleport: func();");
    std::fs::create_dir(dir.path().join("wit")).unwrap();
    write(&dir, "wit/switchyard.wit", &wit);
    let echo = std::fs::read_to_string(repo().join("examples/pipeline/ingest.wat")).unwrap().replace(
        "(memory (export \"memory\") 1)",
        "(import \"switchyard:component/messaging@0.1.0\" \"teleport\" (func))\n  (memory (export \"memory\") 1)",
    );
    let src = write(&dir, "teleporter.wat", &echo);
    let made = run_in(dir.path(), &["component", "new", src.to_str().unwrap(), "--wit", "wit", "-o", "t.wasm"], "");
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    assert!(made.stdout.contains("warning: this host cannot run it"), "{}", made.stdout);
    let ran = run_in(dir.path(), &["component", "inspect", "t.wasm"], "");
    assert_eq!(ran.code, Some(1), "{}", ran.stdout);
    assert!(ran.stdout.contains("verdict: does not satisfy switchyard:component@0.1.0"), "{}", ran.stdout);
    assert!(
        ran.stdout.contains("imports switchyard:component/messaging@0.1.0#teleport, which the host does not provide"),
        "{}",
        ran.stdout
    );
}

#[test]
fn inspect_of_text_that_is_not_wasm_is_a_clear_error() {
    let dir = TempDir::new("inspect-text");
    write(&dir, "x.wasm", "hello");
    let ran = run_in(dir.path(), &["component", "inspect", "x.wasm"], "");
    assert_eq!(ran.code, Some(1));
    assert!(ran.stderr.contains("x.wasm: invalid WebAssembly text"), "{}", ran.stderr);
}

/// `switchyard ARGS` must end at once with exit 1 and say that `file` is `kind`.
fn refuses_at_once(dir: &TempDir, args: &[&str], file: &str, kind: &str) {
    let out = run_within(dir.path(), args, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{args:?}: still running after 10 s"));
    let ran = Ran::from(out);
    assert_eq!(ran.code, Some(1), "{args:?}: {}", ran.stderr);
    let expected = format!("{file} is {kind}, not a regular file");
    assert!(ran.stderr.contains(&expected), "{args:?}: expected {expected:?} in:\n{}", ran.stderr);
}

#[test]
fn inspect_and_new_refuse_a_device_or_a_fifo_at_once() {
    let dir = TempDir::new("inspect-device");
    refuses_at_once(&dir, &["component", "inspect", "/dev/zero"], "/dev/zero", "a character device");
    refuses_at_once(&dir, &["component", "new", "/dev/zero", "-o", "out.wasm"], "/dev/zero", "a character device");
    let fifo = dir.path().join("core.wasm");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    refuses_at_once(&dir, &["component", "inspect", fifo], fifo, "a FIFO");
    refuses_at_once(&dir, &["component", "new", fifo, "-o", "out.wasm"], fifo, "a FIFO");
    assert!(!dir.path().join("out.wasm").exists());
}

#[test]
fn component_new_refuses_a_wit_path_that_is_a_device_at_once() {
    let dir = TempDir::new("wit-device");
    let src = repo().join("examples/pipeline/ingest.wat");
    let args = ["component", "new", src.to_str().unwrap(), "--wit", "/dev/zero", "-o", "out.wasm"];
    let ran = Ran::from(run_within(dir.path(), &args, Duration::from_secs(10)).expect("ends at once"));
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("--wit /dev/zero is neither a directory nor a regular file"), "{}", ran.stderr);
    assert!(!dir.path().join("out.wasm").exists());
}

#[test]
fn inspect_lists_wasi_imports_with_their_defaults_and_the_manifests_grants() {
    let dir = TempDir::new("inspect-wasi");
    // The pipeline's ingest, also importing one WASI preview 1 function: `component new`
    // links it through the preview1 adapter, which imports WASI 0.2 interfaces.
    let wat = std::fs::read_to_string(repo().join("examples/pipeline/ingest.wat")).unwrap();
    let with_wasi = wat.replacen(
        "(module",
        "(module\n  (import \"wasi_snapshot_preview1\" \"random_get\" (func (param i32 i32) (result i32)))",
        1,
    );
    assert_ne!(with_wasi, wat);
    let core = write(&dir, "wasi.wat", &with_wasi);
    let component = dir.path().join("wasi.wasm");
    let made = run_in(dir.path(), &["component", "new", core.to_str().unwrap(), "-o", component.to_str().unwrap()], "");
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let other = repo().join("examples/pipeline/store.wasm");
    let manifest = write(
        &dir,
        "m.toml",
        &format!(
            r#"
[[component]]
id = "granted"
file = "wasi.wasm"
capabilities = {{ env = {{ LANG = "C" }}, dirs = [{{ host = "data", guest = "/data", mode = "read-write" }}] }}

[[component]]
id = "plain"
file = "wasi.wasm"

[[component]]
id = "other"
file = "{}"
"#,
            other.display()
        ),
    );
    let ran = run_in(
        dir.path(),
        &["component", "inspect", component.to_str().unwrap(), "--manifest", manifest.to_str().unwrap()],
        "",
    );
    assert_eq!(ran.code, Some(0), "{}{}", ran.stdout, ran.stderr);
    let line = |prefix: &str| {
        ran.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix}: {}", ran.stdout))
    };
    // The WASI section: each imported interface and what it gets without a grant.
    let section: Vec<&str> = ran.stdout.lines().skip_while(|l| !l.starts_with("wasi: imports")).collect();
    assert!(section[0].ends_with("without a grant (deny by default):"), "{}", ran.stdout);
    let policy = |prefix: &str| {
        section
            .iter()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix}: {}", ran.stdout))
    };
    assert!(policy("wasi:random/random@0.2.").ends_with("  available"), "{}", ran.stdout);
    assert!(policy("wasi:cli/stderr@0.2.").ends_with("lines go to the log, tagged with the component's id"));
    let granted = line("wasi: component granted");
    assert!(granted.contains("env LANG") && granted.contains("at /data (read-write)"), "{granted}");
    assert_eq!(
        line("wasi: component plain"),
        "wasi: component plain of the manifest is granted nothing beyond the defaults"
    );
    assert!(!ran.stdout.contains("component other"), "other uses another file: {}", ran.stdout);
    assert!(ran.stdout.contains("verdict: satisfies switchyard:component@0.1.0"), "{}", ran.stdout);

    // A manifest in which no component uses the file is an error, not an empty answer.
    let unused = write(&dir, "unused.toml", &format!("[[component]]\nid = \"x\"\nfile = \"{}\"\n", other.display()));
    let ran = run_in(
        dir.path(),
        &["component", "inspect", component.to_str().unwrap(), "--manifest", unused.to_str().unwrap()],
        "",
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stdout);
    assert!(ran.stderr.contains("no component uses"), "{}", ran.stderr);
}
