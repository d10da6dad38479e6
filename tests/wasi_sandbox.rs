//! What a guest can reach through WASI, tested with a guest that calls WASI directly
//! (tests/wasi_guests): no sockets without a network grant, the network grant reaching other
//! machines only (this one with `loopback`, binding with `listen`), a cap on the host
//! resources an instance holds, and waits inside WASI calls ended at the call's deadline.
#![cfg(all(feature = "wasm", unix))]

mod common;
mod wasi_guests;
mod wasm_guests;

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use common::*;
use switchyard::{
    Capabilities, ComponentSpec, DeadLetterReason, RequestError, RestartPolicy, TrapKind, WasiGrants, WasmComponent,
    WasmConfig, WasmHost, WasmOptions, handler_fn,
};
use wasi_guests::ACCESS_DENIED;

fn host() -> (WasmHost, WasmComponent) {
    let host = WasmHost::new(WasmConfig { pooling: false, ..WasmConfig::default() }).expect("host starts");
    let probe = host.load(&wasi_guests::probe()).expect("the probe loads");
    (host, probe)
}

fn grants(grants: WasiGrants) -> WasmOptions {
    WasmOptions::default()
        .capabilities(Capabilities { wasi: grants, ..Capabilities::default() })
        .restart_policy(RestartPolicy::Permanent)
        .restart_limit(100, Duration::from_secs(600))
        .restart_backoff(Duration::ZERO, Duration::ZERO)
}

const NETWORK: WasiGrants = WasiGrants {
    env: Vec::new(),
    args: Vec::new(),
    dirs: Vec::new(),
    network: true,
    outbound: Vec::new(),
    listen: false,
    loopback: false,
};

/// One call of the probe, outside any runtime.
fn call(host: &WasmHost, probe: &WasmComponent, options: WasmOptions, payload: &[u8]) -> (Vec<u8>, u64) {
    let mut instance = host.instantiate_detached(&id("probe"), probe, options).expect("instantiates");
    let reply = instance.call(&req(&id("probe"), payload)).expect("the call returns").expect("a reply");
    (reply, instance.stats().capability_denials)
}

fn connect_to(ip: Ipv4Addr, port: u16, op: u8) -> Vec<u8> {
    let mut p = vec![op];
    p.extend_from_slice(&ip.octets());
    p.extend_from_slice(&port.to_be_bytes());
    p
}

#[test]
fn a_guest_without_a_network_grant_cannot_create_sockets() {
    let (host, probe) = host();
    let (reply, denials) = call(&host, &probe, grants(WasiGrants::default()), b"S");
    assert_eq!(reply, [ACCESS_DENIED, ACCESS_DENIED], "TCP and UDP sockets refused");
    assert_eq!(denials, 2, "each refusal counted as a capability denial");
    let (reply, denials) = call(&host, &probe, grants(NETWORK), b"S");
    assert_eq!((reply, denials), (vec![0, 0], 0), "with the grant both are made");
}

#[test]
fn the_network_grant_does_not_reach_this_machine() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local service");
    let port = listener.local_addr().expect("port").port();
    let (host, probe) = host();
    let (reply, denials) = call(&host, &probe, grants(NETWORK), &connect_to(Ipv4Addr::LOCALHOST, port, b'C'));
    assert_eq!(reply, [3, ACCESS_DENIED], "refused when the connection is finished");
    assert!(denials >= 1, "counted");
    let (reply, _) = call(&host, &probe, grants(NETWORK), &connect_to(Ipv4Addr::UNSPECIFIED, port, b'C'));
    assert_eq!(reply[1], ACCESS_DENIED, "0.0.0.0 reaches this machine too: {reply:?}");
    // With `loopback` the same connection goes through.
    let local = WasiGrants { loopback: true, ..NETWORK };
    let (reply, _) = call(&host, &probe, grants(local), &connect_to(Ipv4Addr::LOCALHOST, port, b'C'));
    assert_eq!(reply, [0, 0], "connected");
    listener.accept().expect("the guest's connection arrived");
}

#[test]
fn binding_a_port_needs_the_listen_grant() {
    let free = TcpListener::bind("0.0.0.0:0").expect("a free port").local_addr().expect("port").port();
    let (host, probe) = host();
    let bind = [b'L', (free >> 8) as u8, free as u8];
    let (reply, denials) = call(&host, &probe, grants(NETWORK), &bind);
    assert_eq!((reply[0], denials), (ACCESS_DENIED, 1), "no serving on 0.0.0.0 with the network grant");
    let (reply, _) = call(&host, &probe, grants(WasiGrants { listen: true, ..WasiGrants::default() }), &bind);
    assert_eq!(reply[0], 0, "bound with the listen grant");
}

#[test]
fn an_instance_holds_at_most_max_resources_host_resources() {
    let (host, probe) = host();
    let options = grants(NETWORK).max_resources(16);
    let mut instance = host.instantiate_detached(&id("probe"), &probe, options).expect("instantiates");
    let err = instance.call(&req(&id("probe"), &[b'M', 100])).expect_err("the 17th resource is refused");
    assert_eq!(err.trap_kind(), Some(TrapKind::ResourceLimit), "{err}");
    // Under the cap nothing is refused.
    let options = grants(NETWORK).max_resources(64);
    let (reply, _) = call(&host, &probe, options, &[b'M', 40]);
    assert_eq!(reply, [40, 0]);
}

/// A guest blocked inside a WASI call (a one-hour clock pollable) is stopped at its deadline:
/// a native component on the same worker still answers, and shutdown is bounded.
#[test]
fn a_guest_blocked_in_a_wasi_call_is_stopped_at_its_deadline() {
    let (rt, dead) = runtime(1);
    let (host, probe) = host();
    let options = grants(WasiGrants::default()).deadline(Duration::from_millis(200));
    host.register(&rt.handle(), id("sleeper"), &probe, options).expect("registers");
    rt.register(id("echo"), ComponentSpec::new(|| handler_fn(|_c, m| Ok(Some(m.payload.clone()))))).unwrap();
    let blocked = rt.request(req(&id("sleeper"), b"B"), WAIT).expect("accepted");
    let echoed = rt.request(req(&id("echo"), b"still here"), Duration::from_secs(5)).expect("accepted");
    assert_eq!(echoed.wait().expect("the echo on the same worker answers").payload, b"still here");
    match blocked.wait() {
        Err(RequestError::Failed(DeadLetterReason::Trapped { kind: TrapKind::Deadline, .. })) => {}
        other => panic!("expected a deadline trap, got {other:?}"),
    }
    let d = recv(&dead);
    assert!(matches!(d.reason, DeadLetterReason::Trapped { kind: TrapKind::Deadline, .. }), "{:?}", d.reason);
    assert_eq!(host.stats(&id("sleeper")).expect("stats").traps_of(TrapKind::Deadline), 1);
    let started = Instant::now();
    assert!(rt.shutdown(WAIT).is_balanced());
    assert!(started.elapsed() < WAIT, "shutdown is bounded");
}

/// A blocking read on a socket whose peer never writes ends at the deadline too.
#[test]
fn a_blocking_socket_read_ends_at_the_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a silent peer");
    let port = listener.local_addr().expect("port").port();
    let (host, probe) = host();
    let local = WasiGrants { loopback: true, ..WasiGrants::default() };
    let options = grants(local).deadline(Duration::from_millis(300));
    let mut instance = host.instantiate_detached(&id("probe"), &probe, options).expect("instantiates");
    let started = Instant::now();
    let err = instance.call(&req(&id("probe"), &connect_to(Ipv4Addr::LOCALHOST, port, b'R'))).expect_err("trapped");
    assert_eq!(err.trap_kind(), Some(TrapKind::Deadline), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let (mut peer, _) = listener.accept().expect("the guest connected");
    peer.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut buf = [0u8; 1];
    // The instance is gone with the trap: its connection is closed.
    drop(instance);
    assert_eq!(peer.read(&mut buf).expect("end of stream"), 0);
}

/// A guest that reads files through `wasi_snapshot_preview1`: payload `r<path>` opens
/// `<path>` in its first preopened directory (fd 3) and replies with up to 64 bytes of it
/// (or `errno <n>`); payload `x` traps.
fn file_reader() -> String {
    wasm_guests::module(
        r#"
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))"#,
        &format!(
            r#"{}
  (data (i32.const 256) "errno ")
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (local $p i32) (local $errno i32)
    (local.set $p (call $payload_ptr (local.get $env)))
    (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 120)) (then unreachable))
    ;; path_open(3, 0, path, len, 0, FD_READ, 0, 0, &fd @ 512)
    (local.set $errno (call $path_open (i32.const 3) (i32.const 0)
      (i32.add (local.get $p) (i32.const 1)) (i32.sub (call $payload_len (local.get $env)) (i32.const 1))
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 512)))
    (if (local.get $errno)
      (then
        (i32.store8 (i32.const 262) (i32.add (i32.const 48) (i32.rem_u (local.get $errno) (i32.const 10))))
        (return (call $ok_some (i32.const 256) (i32.const 7)))))
    ;; fd_read(fd, iovec @ 520 = {{buf @ 600, 64}}, 1, &n @ 528)
    (i32.store (i32.const 520) (i32.const 600))
    (i32.store (i32.const 524) (i32.const 64))
    (drop (call $fd_read (i32.load (i32.const 512)) (i32.const 520) (i32.const 1) (i32.const 528)))
    (call $ok_some (i32.const 600) (i32.load (i32.const 528))))"#,
            wasm_guests::IGNORE_CALLBACKS
        ),
    )
}

/// A grant is opened once, at registration: a restarted instance gets the same directory
/// even after someone with write access above it has put a link to elsewhere in its place.
#[test]
fn a_restarted_guest_keeps_its_granted_directory_when_a_link_replaces_it() {
    let dir = switchyard_bench_support::storage::TempDir::new("wasi-relink");
    let (granted, outside) = (dir.path().join("granted"), dir.path().join("outside"));
    std::fs::create_dir(&granted).expect("dir");
    std::fs::create_dir(&outside).expect("dir");
    std::fs::write(granted.join("marker"), b"inside").expect("file");
    std::fs::write(outside.join("marker"), b"outside").expect("file");
    let (rt, dead) = runtime(1);
    let host = WasmHost::new(WasmConfig { pooling: false, ..WasmConfig::default() }).expect("host starts");
    let reader = host.load(&wasm_guests::component_bytes(&file_reader())).expect("loads");
    let mut grant = WasiGrants::default();
    grant.dirs.push(switchyard::DirGrant { host: granted.clone(), guest: "/g".into(), writable: false });
    host.register(&rt.handle(), id("reader"), &reader, grants(grant)).expect("registers");
    let read = || rt.request(req(&id("reader"), b"rmarker"), WAIT).expect("accepted").wait().expect("answered").payload;
    assert_eq!(read(), b"inside");
    std::fs::rename(&granted, dir.path().join("moved")).expect("moved away");
    std::os::unix::fs::symlink(&outside, &granted).expect("a link in its place");
    rt.try_send(ff(&id("reader"), b"x")).expect("accepted");
    assert!(matches!(recv(&dead).reason, DeadLetterReason::Trapped { kind: TrapKind::Unreachable, .. }));
    assert_eq!(read(), b"inside", "the restarted instance still sees the directory it was granted");
    assert_eq!(host.stats(&id("reader")).expect("stats").instantiations, 2, "it was restarted");
    assert!(rt.shutdown(WAIT).is_balanced());
}

#[test]
fn overlapping_directory_grants_are_refused() {
    let dir = switchyard_bench_support::storage::TempDir::new("wasi-nested");
    std::fs::create_dir_all(dir.path().join("data/cfg")).expect("dirs");
    let (rt, _dead) = runtime(1);
    let host = WasmHost::new(WasmConfig { pooling: false, ..WasmConfig::default() }).expect("host starts");
    let reader = host.load(&wasm_guests::component_bytes(&file_reader())).expect("loads");
    let mut grant = WasiGrants::default();
    grant.dirs.push(switchyard::DirGrant { host: dir.path().join("data"), guest: "/data".into(), writable: true });
    grant.dirs.push(switchyard::DirGrant { host: dir.path().join("data/cfg"), guest: "/cfg".into(), writable: false });
    match host.register(&rt.handle(), id("nested"), &reader, grants(grant)) {
        Err(switchyard::RegisterError::UnusableGrant(why)) => assert!(why.contains("overlap"), "{why}"),
        other => panic!("expected the overlap to be refused, got {other:?}"),
    }
}

/// A file read that waits for a writer (a FIFO) ends at the deadline: the open waits
/// inside a `wasi:filesystem` call.
#[test]
fn a_file_read_that_waits_for_a_writer_ends_at_the_deadline() {
    let dir = switchyard_bench_support::storage::TempDir::new("wasi-fifo");
    let fifo = dir.path().join("fifo");
    let path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: `path` is a NUL-terminated path; mkfifo reads it and nothing else.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");
    let host = WasmHost::new(WasmConfig { pooling: false, ..WasmConfig::default() }).expect("host starts");
    let reader = host.load(&wasm_guests::component_bytes(&file_reader())).expect("loads");
    let mut grant = WasiGrants::default();
    grant.dirs.push(switchyard::DirGrant { host: dir.path().to_path_buf(), guest: "/d".into(), writable: false });
    let options = grants(grant).deadline(Duration::from_millis(300));
    let mut instance = host.instantiate_detached(&id("reader"), &reader, options).expect("instantiates");
    let started = Instant::now();
    let err = instance.call(&req(&id("reader"), b"rfifo")).expect_err("trapped at the deadline");
    assert_eq!(err.trap_kind(), Some(TrapKind::Deadline), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    // Let the open still waiting on tokio's blocking pool finish.
    use std::os::unix::fs::OpenOptionsExt;
    drop(std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&fifo));
}

/// A guest that writes for people to read: payload `L` logs a line made to pass for another
/// component's and to clear the terminal; `W` writes the same to stdout; `F` floods stdout
/// with 1 MiB in 256 writes.
fn writer() -> String {
    wasm_guests::module(
        r#"
  (import "switchyard:component/logging@0.1.0" "log" (func $log (param i32 i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))"#,
        &format!(
            r#"{}
  (data (i32.const 256) "ok\n[info] other: forged\1b[2J")
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (local $op i32) (local $i i32)
    (local.set $op (i32.load8_u (call $payload_ptr (local.get $env))))
    (if (i32.eq (local.get $op) (i32.const 76))
      (then (call $log (i32.const 2) (i32.const 256) (i32.const 27))))
    ;; iovec @ 512 = {{256, 27}}
    (i32.store (i32.const 512) (i32.const 256))
    (i32.store (i32.const 516) (i32.const 27))
    (if (i32.eq (local.get $op) (i32.const 87))
      (then (drop (call $fd_write (i32.const 1) (i32.const 512) (i32.const 1) (i32.const 520)))))
    (if (i32.eq (local.get $op) (i32.const 70))
      (then
        ;; 4 KiB of 'a' at 8192, written 256 times
        (memory.fill (i32.const 8192) (i32.const 97) (i32.const 4096))
        (i32.store (i32.const 512) (i32.const 8192))
        (i32.store (i32.const 516) (i32.const 4096))
        (block $done
          (loop $more
            (br_if $done (i32.ge_u (local.get $i) (i32.const 256)))
            (drop (call $fd_write (i32.const 1) (i32.const 512) (i32.const 1) (i32.const 520)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $more)))))
    (call $ok_none))"#,
            wasm_guests::IGNORE_CALLBACKS
        ),
    )
}

/// Every `(stream, line)` a recording log sink was given.
type Lines = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// A host whose log sink keeps every `(stream, line)` it is given.
fn recording_host() -> (WasmHost, Lines) {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = lines.clone();
    let sink: switchyard::LogSink =
        std::sync::Arc::new(move |_id: &switchyard::ComponentId, stream: &str, line: &str| {
            keep.lock().unwrap().push((stream.to_string(), line.to_string()));
        });
    let config = WasmConfig { pooling: false, ..WasmConfig::default() };
    (WasmHost::build(config, None, Some(sink)).expect("host starts"), lines)
}

#[test]
fn guest_text_cannot_forge_lines_or_terminal_sequences() {
    let (host, lines) = recording_host();
    let code = host.load(&wasm_guests::component_bytes(&writer())).expect("loads");
    let mut instance = host.instantiate_detached(&id("w"), &code, WasmOptions::default()).expect("instantiates");
    instance.call(&req(&id("w"), b"L")).expect("logs");
    instance.call(&req(&id("w"), b"W")).expect("writes");
    assert!(host.flush_logs(WAIT), "the log thread wrote every line");
    let lines = lines.lock().unwrap().clone();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (_, line) in &lines {
        assert!(!line.contains('\n') && !line.contains('\x1b'), "a control character got through: {line:?}");
    }
    assert_eq!(lines[0], ("info".to_string(), "ok\\n[info] other: forged\\u{1b}[2J".to_string()));
    // stdout splits at the newline: two lines, neither able to start a line of its own.
    assert_eq!(lines[1], ("stdout".to_string(), "ok".to_string()));
    assert_eq!(lines[2], ("stdout".to_string(), "[info] other: forged\\u{1b}[2J".to_string()));
}

#[test]
fn one_call_emits_at_most_its_output_budget_and_counts_the_rest() {
    let (host, lines) = recording_host();
    let code = host.load(&wasm_guests::component_bytes(&writer())).expect("loads");
    let options = WasmOptions::default().max_output_bytes(64 << 10);
    let mut instance = host.instantiate_detached(&id("w"), &code, options).expect("instantiates");
    instance.call(&req(&id("w"), b"F")).expect("floods");
    assert!(host.flush_logs(WAIT), "the log thread wrote every line");
    let lines = lines.lock().unwrap().clone();
    let emitted: usize = lines.iter().filter(|(s, _)| s == "stdout").map(|(_, l)| l.len()).sum();
    assert_eq!(emitted, 64 << 10, "the budget, and not a byte more");
    let last = lines.last().expect("a notice");
    assert_eq!(last.0, "stderr");
    assert!(last.1.contains(&format!("{} bytes of output dropped", (1 << 20) - (64 << 10))), "{last:?}");
    assert_eq!(instance.stats().output_dropped_bytes, (1 << 20) - (64 << 10));
}
