//! WAT guests for the WASM executor tests, turned into components at test time.
//!
//! Each guest is a core module written against the canonical ABI of
//! `wit/switchyard.wit`, converted into a component with `switchyard::componentize`.
//! Shared pieces: a bump allocator (`cabi_realloc`) whose heap is reset by the
//! post-return functions after every call, and a 16-byte return area at 16.
//!
//! Memory layouts used below (canonical ABI, 32-bit):
//! - `envelope` (80 bytes): message-type u8 @0, from @4/8, to @12/16, topic option @20
//!   (string @24/28), payload @32/36, codec u64 @40, message-id @48/52, correlation
//!   option @56 (string @60/64), timestamp s64 @72.
//! - `result<_, error>` / `result<T, error>` (16 bytes): discriminant u8 @0; ok payload or
//!   error at @4 (error: code u8 @4, message @8/12).
#![allow(dead_code)]

use switchyard::{WasmComponent, WasmHost};

/// Allocator, memory, return area, post-return resets. `$heap_base` marks where each
/// call's allocations start.
const PRELUDE: &str = r#"
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (func $realloc (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $ret i32)
    (local.set $ret
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.xor (i32.sub (local.get $align) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $ret) (local.get $size)))
    (block $fits
      (br_if $fits (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
      (if (i32.eq
            (memory.grow (i32.add (i32.div_u (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536))) (i32.const 65536)) (i32.const 1)))
            (i32.const -1))
        (then unreachable)))
    (if (local.get $old_size)
      (then (memory.copy (local.get $ret) (local.get $old) (local.get $old_size))))
    (local.get $ret))
  (func (export "cabi_post_switchyard:component/handler@0.1.0#handle-message") (param i32)
    (global.set $heap (i32.const 4096)))
  (func (export "cabi_post_switchyard:component/handler@0.1.0#handle-callback") (param i32)
    (global.set $heap (i32.const 4096)))
  ;; result<_, error> = ok, at 16
  (func $ok_unit (result i32)
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.const 16))
  ;; result<option<list<u8>>, error> = ok(none), at 16
  (func $ok_none (result i32)
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.store8 (i32.const 20) (i32.const 0))
    (i32.const 16))
  ;; result<option<list<u8>>, error> = ok(some(ptr, len)), at 16
  (func $ok_some (param $ptr i32) (param $len i32) (result i32)
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.store8 (i32.const 20) (i32.const 1))
    (i32.store (i32.const 24) (local.get $ptr))
    (i32.store (i32.const 28) (local.get $len))
    (i32.const 16))
  ;; result<_, error> = err(handler-failed, "guest error"), at 16 (text at 64)
  (data (i32.const 64) "guest error")
  (func $err (result i32)
    (i32.store8 (i32.const 16) (i32.const 1))
    (i32.store8 (i32.const 20) (i32.const 9))
    (i32.store (i32.const 24) (i32.const 64))
    (i32.store (i32.const 28) (i32.const 11))
    (i32.const 16))
  (func $payload_ptr (param $env i32) (result i32) (i32.load (i32.add (local.get $env) (i32.const 32))))
  (func $payload_len (param $env i32) (result i32) (i32.load (i32.add (local.get $env) (i32.const 36))))
  (func $is_request (param $env i32) (result i32) (i32.eq (i32.load8_u (local.get $env)) (i32.const 1)))
"#;

/// A callback export that accepts and ignores every outcome.
const IGNORE_CALLBACKS: &str = r#"
  (func (export "switchyard:component/handler@0.1.0#handle-callback") (param i32) (result i32)
    (call $ok_unit))
"#;

fn module(imports: &str, body: &str) -> String {
    format!("(module\n{imports}\n{PRELUDE}\n{body}\n)")
}

/// Builds a component from a guest's core-module text.
pub fn component_bytes(core_wat: &str) -> Vec<u8> {
    let core = wat::parse_str(core_wat).expect("fixture WAT parses");
    switchyard::componentize(&core).expect("fixture componentizes")
}

/// Loads a fixture into `host`.
pub fn load(host: &WasmHost, core_wat: &str) -> WasmComponent {
    host.load(&component_bytes(core_wat)).expect("fixture loads")
}

/// Replies to every request with its payload.
pub fn echo() -> String {
    module(
        "",
        &format!(
            r#"{IGNORE_CALLBACKS}
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (if (result i32) (call $is_request (local.get $env))
      (then (call $ok_some (call $payload_ptr (local.get $env)) (call $payload_len (local.get $env))))
      (else (call $ok_none))))"#
        ),
    )
}

/// Replies with a payload prefixed by `tag` (for telling versions apart in upgrades).
pub fn tagged_echo(tag: u8) -> String {
    module(
        "",
        &format!(
            r#"{IGNORE_CALLBACKS}
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (local $out i32) (local $len i32)
    (local.set $len (call $payload_len (local.get $env)))
    (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 1) (i32.add (local.get $len) (i32.const 1))))
    (i32.store8 (local.get $out) (i32.const {tag}))
    (memory.copy (i32.add (local.get $out) (i32.const 1)) (call $payload_ptr (local.get $env)) (local.get $len))
    (call $ok_some (local.get $out) (i32.add (local.get $len) (i32.const 1))))"#
        ),
    )
}
