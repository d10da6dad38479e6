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
pub const IGNORE_CALLBACKS: &str = r#"
  (func (export "switchyard:component/handler@0.1.0#handle-callback") (param i32) (result i32)
    (call $ok_unit))
"#;

/// A guest core module: `imports`, the shared prelude, then `body`.
pub fn module(imports: &str, body: &str) -> String {
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

const MESSAGING: &str = r#"
  (import "switchyard:component/messaging@0.1.0" "send-message" (func $send (param i32 i32 i32 i32 i64 i32)))
  (import "switchyard:component/messaging@0.1.0" "send-request" (func $request (param i32 i32 i32 i32 i64 i32 i32)))
  (import "switchyard:component/messaging@0.1.0" "publish" (func $publish (param i32 i32 i32 i32 i64 i32)))
  (import "switchyard:component/messaging@0.1.0" "subscribe" (func $subscribe (param i32 i32 i32)))
"#;

const STORAGE: &str = r#"
  (import "switchyard:component/storage@0.1.0" "get" (func $get (param i32 i32 i32)))
  (import "switchyard:component/storage@0.1.0" "set" (func $set (param i32 i32 i32 i32 i32)))
"#;

/// Replies to a request with one status byte: 0 for ok, else 1 + the error code found in
/// the `result<_, error>` at `$area`; fire-and-forget messages get no reply.
const STATUS_REPLY: &str = r#"
  (func $status_reply (param $env i32) (param $area i32) (result i32)
    (if (i32.eqz (call $is_request (local.get $env))) (then (return (call $ok_none))))
    (if (i32.eqz (i32.load8_u (local.get $area)))
      (then (i32.store8 (i32.const 200) (i32.const 0)))
      (else (i32.store8 (i32.const 200) (i32.add (i32.const 1) (i32.load8_u (i32.add (local.get $area) (i32.const 4)))))))
    (call $ok_some (i32.const 200) (i32.const 1)))
"#;

/// Keeps a u64 counter under key "count" in its storage; replies with the new value
/// (8 bytes little-endian). A storage error fails the message.
pub fn counter() -> String {
    module(
        STORAGE,
        &format!(
            r#"{IGNORE_CALLBACKS}
  (data (i32.const 128) "count")
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (local $n i64)
    (call $get (i32.const 128) (i32.const 5) (i32.const 160))
    (if (i32.load8_u (i32.const 160)) (then (return (call $err))))
    (if (i32.and (i32.load8_u (i32.const 164)) (i32.eq (i32.load (i32.const 172)) (i32.const 8)))
      (then (local.set $n (i64.load (i32.load (i32.const 168))))))
    (i64.store (i32.const 208) (i64.add (local.get $n) (i64.const 1)))
    (call $set (i32.const 128) (i32.const 5) (i32.const 208) (i32.const 8) (i32.const 176))
    (if (i32.load8_u (i32.const 176)) (then (return (call $err))))
    (if (result i32) (call $is_request (local.get $env))
      (then (call $ok_some (i32.const 208) (i32.const 8)))
      (else (call $ok_none))))"#
        ),
    )
}

/// Stores its payload under key "k"; replies to a request with the status of that write
/// (see `STATUS_REPLY`).
pub fn setter() -> String {
    module(
        STORAGE,
        &format!(
            r#"{IGNORE_CALLBACKS}{STATUS_REPLY}
  (data (i32.const 128) "k")
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (call $set (i32.const 128) (i32.const 1)
      (call $payload_ptr (local.get $env)) (call $payload_len (local.get $env)) (i32.const 240))
    (call $status_reply (local.get $env) (i32.const 240)))"#
        ),
    )
}

/// Sends its payload to the component named in the message's topic; replies to a request
/// with the status of that send (see `STATUS_REPLY`).
pub fn forwarder() -> String {
    module(
        MESSAGING,
        &format!(
            r#"{IGNORE_CALLBACKS}{STATUS_REPLY}
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (call $send
      (i32.load (i32.add (local.get $env) (i32.const 24)))
      (i32.load (i32.add (local.get $env) (i32.const 28)))
      (call $payload_ptr (local.get $env)) (call $payload_len (local.get $env))
      (i64.const 0x55) (i32.const 240))
    (call $status_reply (local.get $env) (i32.const 240)))"#
        ),
    )
}

/// Requests (1 s timeout) from the component named in the topic; each callback forwards
/// what came back to "probe": the response payload, or [0xEE, error code].
pub fn requester() -> String {
    module(
        MESSAGING,
        &format!(
            r#"{STATUS_REPLY}
  (data (i32.const 96) "probe")
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (call $request
      (i32.load (i32.add (local.get $env) (i32.const 24)))
      (i32.load (i32.add (local.get $env) (i32.const 28)))
      (call $payload_ptr (local.get $env)) (call $payload_len (local.get $env))
      (i64.const 0x55) (i32.const 1000) (i32.const 240))
    (call $status_reply (local.get $env) (i32.const 240)))
  (func (export "switchyard:component/handler@0.1.0#handle-callback") (param $p i32) (result i32)
    (if (i32.eqz (i32.load8_u (i32.add (local.get $p) (i32.const 8))))
      (then
        (call $send (i32.const 96) (i32.const 5)
          (i32.load (i32.add (local.get $p) (i32.const 48)))
          (i32.load (i32.add (local.get $p) (i32.const 52)))
          (i64.const 0x55) (i32.const 240)))
      (else
        (i32.store8 (i32.const 232) (i32.const 0xEE))
        (i32.store8 (i32.const 233) (i32.load8_u (i32.add (local.get $p) (i32.const 16))))
        (call $send (i32.const 96) (i32.const 5) (i32.const 232) (i32.const 2) (i64.const 0x55) (i32.const 240))))
    (call $ok_unit))"#
        ),
    )
}

/// Subscribes to "news" in its `init`; forwards every message's payload to "probe".
pub fn subscriber() -> String {
    module(
        MESSAGING,
        &format!(
            r#"{IGNORE_CALLBACKS}
  (data (i32.const 96) "probe")
  (data (i32.const 104) "news")
  (func (export "switchyard:component/lifecycle@0.1.0#init") (result i32)
    (call $subscribe (i32.const 104) (i32.const 4) (i32.const 240))
    (if (result i32) (i32.load8_u (i32.const 240)) (then (call $err)) (else (call $ok_unit))))
  (func (export "cabi_post_switchyard:component/lifecycle@0.1.0#init") (param i32)
    (global.set $heap (i32.const 4096)))
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (call $send (i32.const 96) (i32.const 5)
      (call $payload_ptr (local.get $env)) (call $payload_len (local.get $env)) (i64.const 0x55) (i32.const 240))
    (call $ok_none))"#
        ),
    )
}

/// Publishes its payload on "news"; replies to a request with the publish status.
pub fn publisher() -> String {
    module(
        MESSAGING,
        &format!(
            r#"{IGNORE_CALLBACKS}{STATUS_REPLY}
  (data (i32.const 104) "news")
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (call $publish (i32.const 104) (i32.const 4)
      (call $payload_ptr (local.get $env)) (call $payload_len (local.get $env)) (i64.const 0x55) (i32.const 240))
    (call $status_reply (local.get $env) (i32.const 240)))"#
        ),
    )
}

/// Loops forever on every message.
pub fn spinner() -> String {
    module(
        "",
        &format!(
            r#"{IGNORE_CALLBACKS}
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (loop $forever (br $forever))
    (call $ok_none))"#
        ),
    )
}

/// Grows its memory a page at a time until the host refuses.
pub fn memory_hog() -> String {
    module(
        "",
        &format!(
            r#"{IGNORE_CALLBACKS}
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (loop $more (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (call $ok_none))"#
        ),
    )
}

/// Executes `unreachable` when the payload starts with 'b' (for "boom"); otherwise echoes.
pub fn trapper() -> String {
    module(
        "",
        &format!(
            r#"{IGNORE_CALLBACKS}
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (if (i32.and (i32.gt_u (call $payload_len (local.get $env)) (i32.const 0))
                 (i32.eq (i32.load8_u (call $payload_ptr (local.get $env))) (i32.const 0x62)))
      (then unreachable))
    (if (result i32) (call $is_request (local.get $env))
      (then (call $ok_some (call $payload_ptr (local.get $env)) (call $payload_len (local.get $env))))
      (else (call $ok_none))))"#
        ),
    )
}

/// Fails every message with the error code in the payload's first byte (an index into the
/// WIT `error-code` enum) and the message "refused".
pub fn refuser() -> String {
    module(
        "",
        &format!(
            r#"{IGNORE_CALLBACKS}
  (data (i32.const 96) "refused")
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (i32.store8 (i32.const 16) (i32.const 1))
    (i32.store8 (i32.const 20) (i32.load8_u (call $payload_ptr (local.get $env))))
    (i32.store (i32.const 24) (i32.const 96))
    (i32.store (i32.const 28) (i32.const 7))
    (i32.const 16))"#
        ),
    )
}

/// Abuses the host-call ABI, chosen by the payload's first byte:
/// 1 out-of-range pointer, 2 invalid UTF-8 id, 3 oversize length, 4 a 60 000-byte payload
/// (in bounds), 5 a malformed id, 6 a target it may not reach, 7 a result with an
/// impossible discriminant. Replies with the status.
pub fn hostile() -> String {
    module(
        MESSAGING,
        &format!(
            r#"{IGNORE_CALLBACKS}{STATUS_REPLY}
  (data (i32.const 96) "probe")
  (data (i32.const 112) "\ff\fe\fd")
  (data (i32.const 120) "bad id!")
  (data (i32.const 136) "forbidden")
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (local $mode i32)
    (local.set $mode (i32.load8_u (call $payload_ptr (local.get $env))))
    (if (i32.eq (local.get $mode) (i32.const 1))
      (then (call $send (i32.const 0xFFFFFF00) (i32.const 200) (i32.const 0) (i32.const 0) (i64.const 0x55) (i32.const 240))))
    (if (i32.eq (local.get $mode) (i32.const 2))
      (then (call $send (i32.const 112) (i32.const 3) (i32.const 0) (i32.const 0) (i64.const 0x55) (i32.const 240))))
    (if (i32.eq (local.get $mode) (i32.const 3))
      (then (call $send (i32.const 96) (i32.const 5) (i32.const 0) (i32.const 0x7FFFFFFF) (i64.const 0x55) (i32.const 240))))
    (if (i32.eq (local.get $mode) (i32.const 4))
      (then (call $send (i32.const 96) (i32.const 5) (i32.const 0) (i32.const 60000) (i64.const 0x55) (i32.const 240))))
    (if (i32.eq (local.get $mode) (i32.const 5))
      (then (call $send (i32.const 120) (i32.const 7) (i32.const 0) (i32.const 0) (i64.const 0x55) (i32.const 240))))
    (if (i32.eq (local.get $mode) (i32.const 6))
      (then (call $send (i32.const 136) (i32.const 9) (i32.const 0) (i32.const 1) (i64.const 0x55) (i32.const 240))))
    (if (i32.eq (local.get $mode) (i32.const 7))
      (then (i32.store8 (i32.const 16) (i32.const 2)) (return (i32.const 16))))
    (call $status_reply (local.get $env) (i32.const 240)))"#
        ),
    )
}

/// Logs each message's payload at level warn through the host's `logging.log`.
pub fn logger() -> String {
    module(
        r#"(import "switchyard:component/logging@0.1.0" "log" (func $log (param i32 i32 i32)))"#,
        &format!(
            r#"{IGNORE_CALLBACKS}
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (call $log (i32.const 3) (call $payload_ptr (local.get $env)) (call $payload_len (local.get $env)))
    (call $ok_none))"#
        ),
    )
}

/// How a guest of [`with_health`] answers its health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthAnswer {
    /// `ok`.
    Ok,
    /// `err(handler-failed, "backend down")`.
    Error,
    /// Executes `unreachable`.
    Trap,
    /// Loops until its fuel runs out.
    Spin,
}

/// Echoes like [`echo`], and exports `lifecycle.health` answering as `answer` says; with
/// `init`, also exports `lifecycle.init` (which succeeds).
pub fn with_health(answer: HealthAnswer, init: bool) -> String {
    let health = match answer {
        HealthAnswer::Ok => "(call $ok_unit)",
        HealthAnswer::Error => {
            "(i32.store8 (i32.const 16) (i32.const 1))
    (i32.store8 (i32.const 20) (i32.const 9))
    (i32.store (i32.const 24) (i32.const 96))
    (i32.store (i32.const 28) (i32.const 12))
    (i32.const 16)"
        }
        HealthAnswer::Trap => "unreachable",
        HealthAnswer::Spin => "(loop $forever (br $forever)) (call $ok_unit)",
    };
    let init = if init {
        r#"(func (export "switchyard:component/lifecycle@0.1.0#init") (result i32) (call $ok_unit))"#
    } else {
        ""
    };
    module(
        "",
        &format!(
            r#"{IGNORE_CALLBACKS}
  (data (i32.const 96) "backend down")
  {init}
  (func (export "switchyard:component/lifecycle@0.1.0#health") (result i32)
    {health})
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (if (result i32) (call $is_request (local.get $env))
      (then (call $ok_some (call $payload_ptr (local.get $env)) (call $payload_len (local.get $env))))
      (else (call $ok_none))))"#
        ),
    )
}
