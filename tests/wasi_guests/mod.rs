//! A WAT guest that calls WASI 0.2 directly (sockets, clocks, poll, streams), for the
//! sandbox tests: each request's first payload byte picks what it does, and its reply says
//! how far it got. Built into a component against a world that adds those WASI imports to
//! ours (`wit/` holds the WASI packages, as wasmtime-wasi ships them).
//!
//! | op | payload after the op | does | reply |
//! |----|----------------------|------|-------|
//! | `S` | | creates a TCP socket, then a UDP socket | `[tcp, udp]` |
//! | `C` | 4 address bytes, 2 port bytes (big-endian) | connects over TCP | `[stage, code]` |
//! | `R` | as `C` | connects, then a `blocking-read` of one byte | `[stage, code]` |
//! | `L` | 2 port bytes | binds TCP to `0.0.0.0:port` | `[code]` |
//! | `B` | | blocks on a one-hour clock pollable | `[0]` (if it ever returns) |
//! | `M` | a count `n` | creates `n` TCP sockets and keeps them | `[created, code]` |
//!
//! A code is 0 for success, else 1 + the WASI `error-code` (so `2` is `access-denied`). A
//! stage is where it stopped: 1 creating the socket, 2 `start-connect`, 3 `finish-connect`,
//! 4 the read; 0 when it got through.
#![allow(dead_code)]

use std::path::PathBuf;

/// WASI `error-code` `access-denied`, as a reply code.
pub const ACCESS_DENIED: u8 = 2;

const IMPORTS: &str = r#"
  (import "wasi:sockets/tcp-create-socket@0.2.12" "create-tcp-socket" (func $create_tcp (param i32 i32)))
  (import "wasi:sockets/udp-create-socket@0.2.12" "create-udp-socket" (func $create_udp (param i32 i32)))
  (import "wasi:sockets/instance-network@0.2.12" "instance-network" (func $network (result i32)))
  (import "wasi:sockets/tcp@0.2.12" "[method]tcp-socket.start-connect"
    (func $start_connect (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "wasi:sockets/tcp@0.2.12" "[method]tcp-socket.start-bind"
    (func $start_bind (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "wasi:sockets/tcp@0.2.12" "[method]tcp-socket.finish-connect" (func $finish_connect (param i32 i32)))
  (import "wasi:sockets/tcp@0.2.12" "[method]tcp-socket.subscribe" (func $tcp_subscribe (param i32) (result i32)))
  (import "wasi:io/poll@0.2.12" "[method]pollable.block" (func $block (param i32)))
  (import "wasi:io/streams@0.2.12" "[method]input-stream.blocking-read" (func $blocking_read (param i32 i64 i32)))
  (import "wasi:clocks/monotonic-clock@0.2.12" "subscribe-duration" (func $after (param i64) (result i32)))
"#;

/// Import results land at 1024; replies are written at 2048.
const BODY: &str = r#"
  ;; reply [a, b]
  (func $two (param $a i32) (param $b i32) (result i32)
    (i32.store8 (i32.const 2048) (local.get $a))
    (i32.store8 (i32.const 2049) (local.get $b))
    (call $ok_some (i32.const 2048) (i32.const 2)))
  ;; 0 when the result at 1024 is ok, else 1 + its error code (a u8 at 1028)
  (func $code (result i32)
    (if (result i32) (i32.eqz (i32.load8_u (i32.const 1024)))
      (then (i32.const 0))
      (else (i32.add (i32.const 1) (i32.load8_u (i32.const 1028))))))
  (func $byte (param $p i32) (param $i i32) (result i32)
    (i32.load8_u (i32.add (local.get $p) (local.get $i))))
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (local $p i32) (local $op i32) (local $sock i32) (local $n i32) (local $made i32) (local $last i32)
    (local.set $p (call $payload_ptr (local.get $env)))
    (local.set $op (call $byte (local.get $p) (i32.const 0)))
    ;; S: a TCP socket, then a UDP socket
    (if (i32.eq (local.get $op) (i32.const 83))
      (then
        (call $create_tcp (i32.const 0) (i32.const 1024))
        (local.set $last (call $code))
        (call $create_udp (i32.const 0) (i32.const 1024))
        (return (call $two (local.get $last) (call $code)))))
    ;; B: block on a one-hour clock pollable
    (if (i32.eq (local.get $op) (i32.const 66))
      (then
        (call $block (call $after (i64.const 3600000000000)))
        (return (call $two (i32.const 0) (i32.const 0)))))
    ;; M: n sockets, kept
    (if (i32.eq (local.get $op) (i32.const 77))
      (then
        (local.set $n (call $byte (local.get $p) (i32.const 1)))
        (block $done
          (loop $more
            (br_if $done (i32.ge_u (local.get $made) (local.get $n)))
            (call $create_tcp (i32.const 0) (i32.const 1024))
            (local.set $last (call $code))
            (br_if $done (local.get $last))
            (local.set $made (i32.add (local.get $made) (i32.const 1)))
            (br $more)))
        (return (call $two (local.get $made) (local.get $last)))))
    ;; every other op starts with a TCP socket
    (call $create_tcp (i32.const 0) (i32.const 1024))
    (if (call $code) (then (return (call $two (i32.const 1) (call $code)))))
    (local.set $sock (i32.load (i32.const 1028)))
    ;; L: bind 0.0.0.0:port
    (if (i32.eq (local.get $op) (i32.const 76))
      (then
        (call $start_bind (local.get $sock) (call $network) (i32.const 0)
          (i32.or (i32.shl (call $byte (local.get $p) (i32.const 1)) (i32.const 8)) (call $byte (local.get $p) (i32.const 2)))
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
          (i32.const 1024))
        (return (call $two (call $code) (i32.const 0)))))
    ;; C and R: connect to a.b.c.d:port
    (call $start_connect (local.get $sock) (call $network) (i32.const 0)
      (i32.or (i32.shl (call $byte (local.get $p) (i32.const 5)) (i32.const 8)) (call $byte (local.get $p) (i32.const 6)))
      (call $byte (local.get $p) (i32.const 1)) (call $byte (local.get $p) (i32.const 2))
      (call $byte (local.get $p) (i32.const 3)) (call $byte (local.get $p) (i32.const 4))
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.const 1024))
    (if (call $code) (then (return (call $two (i32.const 2) (call $code)))))
    (call $block (call $tcp_subscribe (local.get $sock)))
    (call $finish_connect (local.get $sock) (i32.const 1024))
    (if (call $code) (then (return (call $two (i32.const 3) (call $code)))))
    (if (i32.eq (local.get $op) (i32.const 82))
      (then
        ;; R: read one byte from the connection, waiting for it
        (call $blocking_read (i32.load (i32.const 1028)) (i64.const 1) (i32.const 1040))
        (return (call $two (i32.const 4) (i32.load8_u (i32.const 1040))))))
    (call $two (i32.const 0) (i32.const 0)))
"#;

/// The probe as a component of our world plus the WASI imports it makes.
pub fn probe() -> Vec<u8> {
    let core =
        wat::parse_str(crate::wasm_guests::module(IMPORTS, &format!("{}{BODY}", crate::wasm_guests::IGNORE_CALLBACKS)))
            .expect("the probe's WAT parses");
    let wit = wit_dir();
    let component = switchyard::componentize_with_wit(&core, &wit).expect("the probe componentizes");
    let _ = std::fs::remove_dir_all(&wit);
    component
}

/// A WIT directory of a world `guest` that is ours plus the WASI interfaces the probe
/// imports, with the packages it needs under `deps/`.
fn wit_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-wasi-probe-wit-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let deps = dir.join("deps");
    std::fs::create_dir_all(&deps).expect("wit dir");
    let write = |name: &str, text: &str| std::fs::write(deps.join(name), text).expect("wit written");
    write("switchyard.wit", switchyard::WIT);
    write("io.wit", include_str!("wit/io.wit"));
    write("clocks.wit", include_str!("wit/clocks.wit"));
    write("sockets.wit", include_str!("wit/sockets.wit"));
    std::fs::write(
        dir.join("world.wit"),
        r#"package test:probe;

world guest {
  include switchyard:component/guest@0.1.0;
  import wasi:sockets/tcp-create-socket@0.2.12;
  import wasi:sockets/udp-create-socket@0.2.12;
  import wasi:sockets/instance-network@0.2.12;
  import wasi:sockets/tcp@0.2.12;
  import wasi:io/poll@0.2.12;
  import wasi:io/streams@0.2.12;
  import wasi:clocks/monotonic-clock@0.2.12;
}
"#,
    )
    .expect("world written");
    dir
}
