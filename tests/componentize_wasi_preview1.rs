//! `componentize` links a core module that imports WASI preview 1 (as C built against
//! wasi-libc does) with wasmtime's preview1 reactor adapter: the component imports WASI 0.2
//! interfaces besides our world's, and exports our handler, not a command's `run`.
//! (C built by a real toolchain is checked in cli/tests/toolchain_guests.rs.)
#![cfg(feature = "wasm")]

mod wasm_guests;

use switchyard::{HANDLER_EXPORT, LoadError};

/// The echo guest, importing one WASI preview 1 function (`random_get`) besides our world.
fn echo_importing_preview1() -> Vec<u8> {
    let text = wasm_guests::echo().replacen(
        "(module",
        r#"(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))"#,
        1,
    );
    wat::parse_str(text).expect("fixture WAT parses")
}

/// The names a component imports and exports, at its top level.
fn imports_and_exports(component: &[u8]) -> (Vec<String>, Vec<String>) {
    let engine = wasmtime::Engine::default();
    let component = wasmtime::component::Component::new(&engine, component).expect("the component compiles");
    let ty = component.component_type();
    let imports = ty.imports(&engine).map(|(name, _)| name.to_string()).collect();
    let exports = ty.exports(&engine).map(|(name, _)| name.to_string()).collect();
    (imports, exports)
}

#[test]
fn a_module_importing_wasi_preview1_becomes_a_component_importing_wasi_0_2() {
    let component = switchyard::componentize(&echo_importing_preview1()).expect("componentizes with the adapter");
    let (imports, exports) = imports_and_exports(&component);
    let wasi: Vec<&String> = imports.iter().filter(|name| name.starts_with("wasi:")).collect();
    assert!(!wasi.is_empty(), "WASI 0.2 imports: {imports:?}");
    assert!(wasi.iter().all(|name| name.contains("@0.2.")), "every WASI import is of 0.2: {wasi:?}");
    assert!(imports.iter().any(|name| name.starts_with("wasi:random/random@0.2.")), "random_get's: {imports:?}");
    assert!(!imports.iter().any(|name| name.contains("wasi_snapshot_preview1")), "{imports:?}");
    assert_eq!(
        exports,
        [HANDLER_EXPORT],
        "the handler, and no wasi:cli/run (the reactor adapter, not the command one)"
    );
}

#[test]
fn a_module_without_wasi_imports_gets_no_adapter() {
    let core = wat::parse_str(wasm_guests::echo()).unwrap();
    let component = switchyard::componentize(&core).unwrap();
    let (imports, _) = imports_and_exports(&component);
    assert!(imports.iter().all(|name| name.starts_with("switchyard:component/")), "{imports:?}");
}

#[test]
fn a_wasi_preview1_module_without_our_exports_is_still_refused() {
    // The adapter supplies WASI, not the handler our world needs.
    let core = wat::parse_str(
        r#"(module
  (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
  (memory (export "memory") 1))"#,
    )
    .unwrap();
    let err = switchyard::componentize(&core).unwrap_err();
    assert!(matches!(&err, LoadError::Componentize(m) if m.contains("handle-message")), "{err}");
}
