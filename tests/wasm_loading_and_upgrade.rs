//! Loading guest code with typed errors, and hot upgrades.
#![cfg(feature = "wasm")]

mod common;
mod wasm_guests;

use std::path::Path;
use std::time::Duration;

use common::*;
use switchyard::{LoadError, MAX_COMPONENT_FILE_BYTES, RegisterError, UpgradeError, WasmConfig, WasmHost, WasmOptions};
use switchyard_bench_support::storage::TempDir;
use wasm_guests as guests;

fn host() -> WasmHost {
    WasmHost::new(WasmConfig::default()).expect("host starts")
}

#[test]
fn component_text_loads_directly() {
    let host = host();
    let binary = guests::component_bytes(&guests::echo());
    let text = wasmprinter::print_bytes(&binary).expect("prints as text");
    assert!(text.trim_start().starts_with("(component"));
    let code = host.load(text.as_bytes()).expect("component text loads");
    assert!(!code.has_init());
}

#[test]
fn random_bytes_are_not_wasm() {
    assert_eq!(host().load(b"definitely not wasm").unwrap_err(), LoadError::NotWasm);
}

#[test]
fn broken_text_is_invalid_text() {
    assert!(matches!(host().load(b"(component (func $x (unknown-instr)))").unwrap_err(), LoadError::InvalidText(_)));
}

#[test]
fn core_module_is_refused_with_a_hint() {
    let core = wat::parse_str(guests::echo()).unwrap();
    let err = host().load(&core).unwrap_err();
    assert_eq!(err, LoadError::CoreModule);
    assert!(err.to_string().contains("switchyard component new"));
}

#[test]
fn component_without_our_exports_reports_the_missing_export() {
    let err = host().load(b"(component)").unwrap_err();
    assert_eq!(err, LoadError::MissingExport(switchyard::HANDLER_EXPORT.to_string()));
}

#[test]
fn component_of_another_world_version_is_refused() {
    // The same guest built against version 0.2.0 of our package.
    let next = guests::echo();
    let wit = switchyard::WIT.replace("package switchyard:component@0.1.0;", "package switchyard:component@0.2.0;");
    let dir = std::env::temp_dir().join(format!("sy-wit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("world.wit"), wit).unwrap();
    let next_core = wat::parse_str(next.replace("@0.1.0", "@0.2.0")).unwrap();
    let bytes = switchyard::componentize_with_wit(&next_core, &dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    match host().load(&bytes).unwrap_err() {
        LoadError::WrongWorldVersion { found, expected } => {
            assert_eq!(found, "switchyard:component/handler@0.2.0");
            assert_eq!(expected, switchyard::HANDLER_EXPORT);
        }
        other => panic!("expected WrongWorldVersion, got {other:?}"),
    }
}

#[test]
fn component_importing_unknown_host_functions_is_refused() {
    let text = r#"(component
        (import "acme:evil/backdoor" (instance (export "open" (func))))
    )"#;
    let err = host().load(text.as_bytes()).unwrap_err();
    // The handler export is checked first; both are clear, typed refusals.
    assert!(matches!(err, LoadError::MissingExport(_) | LoadError::UnsatisfiedImport(_)), "{err:?}");
}

#[test]
fn invalid_component_binary_is_a_compile_error() {
    let mut bytes = guests::component_bytes(&guests::echo());
    let n = bytes.len();
    bytes.truncate(n - 10);
    assert!(matches!(host().load(&bytes).unwrap_err(), LoadError::Compile(_)));
}

#[test]
fn missing_file_is_an_io_error() {
    assert!(matches!(host().load_file("/nonexistent/guest.wasm").unwrap_err(), LoadError::Io { .. }));
}

/// Loads `path` on another thread; `None` if it is still loading after `limit` (the
/// thread is then left behind, and ends with the test process).
fn load_file_within(path: &Path, limit: Duration) -> Option<Result<(), LoadError>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(host().load_file(&path).map(|_| ()));
    });
    rx.recv_timeout(limit).ok()
}

/// What loading a path that is not a regular file says it is (it must say so at once).
fn not_a_regular_file(path: &Path) -> &'static str {
    let e = load_file_within(path, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still loading {} after 5 s", path.display()))
        .expect_err("not a component file");
    let text = e.to_string();
    assert!(text.contains(&format!("{} is ", path.display())) && text.contains("not a regular file"), "{text}");
    match e {
        LoadError::NotAFile { path: named, kind } => {
            assert_eq!(named, path.display().to_string());
            kind
        }
        other => panic!("{}: expected NotAFile, got {other:?}", path.display()),
    }
}

#[test]
fn a_device_a_fifo_or_a_directory_is_refused_at_once_as_not_a_regular_file() {
    assert_eq!(not_a_regular_file(Path::new("/dev/zero")), "a character device");
    let dir = TempDir::new("load-not-a-file");
    assert_eq!(not_a_regular_file(dir.path()), "a directory");
    let fifo = dir.path().join("guest.wasm");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    assert_eq!(not_a_regular_file(&fifo), "a FIFO");
    // A symlink is followed: to a regular file it loads, to a device it is refused.
    let good = dir.path().join("echo.wasm");
    std::fs::write(&good, guests::component_bytes(&guests::echo())).unwrap();
    let link = dir.path().join("link.wasm");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    host().load_file(&link).expect("a symlink to a component loads");
    let to_zero = dir.path().join("zero.wasm");
    std::os::unix::fs::symlink("/dev/zero", &to_zero).unwrap();
    assert_eq!(not_a_regular_file(&to_zero), "a character device");
}

#[test]
fn a_component_file_over_the_size_cap_is_refused_without_reading_it() {
    let dir = TempDir::new("load-too-large");
    let path = dir.path().join("huge.wasm");
    // Sparse: no disk space used, and nothing worth reading.
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(MAX_COMPONENT_FILE_BYTES + 1).unwrap();
    let e = load_file_within(&path, Duration::from_secs(5)).expect("refused at once").unwrap_err();
    let text = e.to_string();
    assert!(text.contains("huge.wasm") && text.contains("larger than"), "{text}");
    assert!(text.contains(&MAX_COMPONENT_FILE_BYTES.to_string()), "the error says the cap: {text}");
    assert_eq!(
        e,
        LoadError::TooLarge {
            path: path.display().to_string(),
            size: MAX_COMPONENT_FILE_BYTES + 1,
            limit: MAX_COMPONENT_FILE_BYTES
        }
    );
    assert_eq!(MAX_COMPONENT_FILE_BYTES, 256 << 20);
    // At the cap it is read (and then refused as what it is: zeros are not WebAssembly).
    file.set_len(MAX_COMPONENT_FILE_BYTES).unwrap();
    assert_eq!(switchyard::read_component_file(&path).map(|b| b.len() as u64), Ok(MAX_COMPONENT_FILE_BYTES));
}

#[test]
fn componentize_refuses_a_component_and_garbage() {
    let component = guests::component_bytes(&guests::echo());
    assert!(matches!(switchyard::componentize(&component), Err(LoadError::Componentize(_))));
    assert_eq!(switchyard::componentize(b"junk"), Err(LoadError::NotWasm));
    let no_exports = wat::parse_str("(module (memory (export \"memory\") 1))").unwrap();
    assert!(matches!(switchyard::componentize(&no_exports), Err(LoadError::Componentize(_))));
}

#[test]
fn hot_upgrade_switches_code_at_a_message_boundary_and_keeps_the_mailbox() {
    let (rt, _dl) = runtime(1);
    let host = host();
    let v1 = guests::load(&host, &guests::tagged_echo(1));
    let v2 = guests::load(&host, &guests::tagged_echo(2));
    host.register(&rt.handle(), id("svc"), &v1, WasmOptions::default()).unwrap();
    // Hold the (single) worker so two requests queue up, then upgrade in between.
    assert_eq!(rt.request(req(&id("svc"), b"a"), WAIT).unwrap().wait().unwrap().payload, b"\x01a");
    let gate = Gate::new();
    hold_worker(&rt, &gate);
    let queued = rt.request(req(&id("svc"), b"b"), WAIT).unwrap();
    host.upgrade(&id("svc"), &v2).unwrap();
    gate.open(1);
    assert_eq!(queued.wait().unwrap().payload, b"\x02b", "the next message runs on the new code");
    let s = host.stats(&id("svc")).unwrap();
    assert_eq!(s.upgrades, 1);
    assert_eq!(s.instantiations, 2);
}

#[test]
fn failed_upgrade_leaves_the_old_code_running() {
    let (rt, _dl) = runtime(1);
    let host = host();
    host.register(&rt.handle(), id("svc"), &guests::load(&host, &guests::tagged_echo(1)), WasmOptions::default())
        .unwrap();
    let err = host.upgrade_from_bytes(&id("svc"), b"(component)").unwrap_err();
    assert!(matches!(err, UpgradeError::Load(LoadError::MissingExport(_))));
    assert!(matches!(host.upgrade_from_bytes(&id("nope"), b""), Err(UpgradeError::NoSuchComponent(_))));
    assert_eq!(rt.request(req(&id("svc"), b"x"), WAIT).unwrap().wait().unwrap().payload, b"\x01x");
    assert_eq!(host.stats(&id("svc")).unwrap().upgrades, 0);
}

fn ask(rt: &switchyard::Runtime, to: &str, payload: &[u8]) -> Vec<u8> {
    rt.request(req(&id(to), payload), WAIT).unwrap().wait().unwrap().payload
}

#[test]
fn upgrade_after_a_refused_registration_reaches_the_running_component() {
    let (rt, _dl) = runtime(1);
    let host = host();
    let v1 = guests::load(&host, &guests::tagged_echo(1));
    host.register(&rt.handle(), id("svc"), &v1, WasmOptions::default()).unwrap();
    let v2 = guests::load(&host, &guests::tagged_echo(2));
    let refused = host.register(&rt.handle(), id("svc"), &v2, WasmOptions::default());
    assert!(matches!(refused, Err(RegisterError::AlreadyRegistered(_))), "{refused:?}");
    host.upgrade(&id("svc"), &guests::load(&host, &guests::tagged_echo(3))).unwrap();
    assert_eq!(ask(&rt, "svc", b"x"), b"\x03x", "the upgrade reached the running component");
    assert_eq!(host.stats(&id("svc")).unwrap().upgrades, 1);
}

#[test]
fn host_knows_exactly_the_components_the_runtime_has_registered() {
    let (rt, _dl) = runtime(1);
    let host = host();
    let v1 = guests::load(&host, &guests::tagged_echo(1));
    let v2 = guests::load(&host, &guests::tagged_echo(2));
    // A spec registered by the user through the runtime, not through the host.
    let spec = host.spec(&id("svc"), &v1, WasmOptions::default()).unwrap();
    let early = host.upgrade(&id("svc"), &v2);
    assert!(matches!(early, Err(UpgradeError::NoSuchComponent(_))), "not registered yet: {early:?}");
    assert_eq!(host.stats(&id("svc")), None);
    rt.register(id("svc"), spec).unwrap();
    host.upgrade(&id("svc"), &v2).unwrap();
    assert_eq!(ask(&rt, "svc", b"x"), b"\x02x");
    rt.unregister(&id("svc")).unwrap();
    let late = host.upgrade(&id("svc"), &v1);
    assert!(matches!(late, Err(UpgradeError::NoSuchComponent(_))), "unregistered: {late:?}");
    assert_eq!(host.stats(&id("svc")), None);
}
